-- Issue 4: the shared user pool. One account per person, whichever application they use.

create table end_user (
    user_id         text primary key,
    -- Normalised (trimmed, lowercased) by identity::email; unique, so case never makes two accounts.
    -- Byte order ("C"), so prefix searches as index range scans are exact whatever the locale.
    email           text collate "C" not null unique,
    email_verified  bigint not null,
    name            text not null,
    -- argon2id PHC string; null until the user sets a password (invited).
    password_hash   text,
    status          text not null check (status in ('active', 'disabled', 'invited')),
    -- A small JSON object.
    metadata        text not null,
    -- Lowercased name for case-insensitive prefix search on both databases.
    name_lower      text collate "C" not null,
    created_at      bigint not null,
    updated_at      bigint not null,
    last_sign_in_at bigint
);
create index end_user_name_idx on end_user (name_lower, user_id);
create index end_user_created_idx on end_user (created_at, user_id);

create table organization (
    organization_id text primary key,
    name            text not null unique,
    created_at      bigint not null,
    updated_at      bigint not null
);

create table organization_member (
    organization_id text not null references organization (organization_id) on delete cascade,
    user_id         text not null references end_user (user_id) on delete cascade,
    role            text not null check (role in ('admin', 'member')),
    created_at      bigint not null,
    primary key (organization_id, user_id)
);
create index organization_member_user_idx on organization_member (user_id);

-- Roles are defined per application and mean nothing elsewhere.
create table app_role (
    app_role_id    text primary key,
    application_id text not null references application (application_id) on delete cascade,
    name           text not null,
    description    text not null,
    -- JSON array of permission strings.
    permissions    text not null,
    created_at     bigint not null,
    updated_at     bigint not null,
    unique (application_id, name)
);

create table user_app_role (
    user_id        text not null references end_user (user_id) on delete cascade,
    app_role_id    text not null references app_role (app_role_id) on delete cascade,
    application_id text not null references application (application_id) on delete cascade,
    created_at     bigint not null,
    primary key (user_id, app_role_id)
);
create index user_app_role_app_idx on user_app_role (application_id, user_id);

-- One-time links (password reset, invitation): only the SHA-256 is kept; single use.
create table user_token (
    user_token_id  text primary key,
    user_id        text not null references end_user (user_id) on delete cascade,
    kind           text not null check (kind in ('reset', 'invitation')),
    token_hash     text not null unique,
    -- The application the flow started from, whose return URL the user goes back to.
    application_id text references application (application_id) on delete set null,
    created_at     bigint not null,
    expires_at     bigint not null,
    used_at        bigint
);
create index user_token_user_idx on user_token (user_id);

-- A user's sign-in session in the browser, started from one application.
create table user_session (
    user_session_id text primary key,
    user_id         text not null references end_user (user_id) on delete cascade,
    application_id  text references application (application_id) on delete set null,
    token_hash      text not null unique,
    ip              text,
    user_agent      text,
    created_at      bigint not null,
    last_seen_at    bigint not null,
    expires_at      bigint not null,
    revoked_at      bigint
);
create index user_session_user_idx on user_session (user_id);

-- Outgoing mail when no SMTP server is configured (and a record of what was sent when one is).
create table outbox_message (
    outbox_message_id text primary key,
    to_email          text not null,
    subject           text not null,
    body              text not null,
    created_at        bigint not null,
    sent_at           bigint,
    -- Delivery attempts through SMTP, and when the next one may run (exponential backoff).
    attempts          bigint not null default 0,
    next_attempt_at   bigint,
    error             text
);
create index outbox_created_idx on outbox_message (created_at);

-- Per-application switch for self sign-up on the hosted pages (off by default).
alter table application add column allow_sign_up bigint not null default 0;

create index audit_event_target_idx on audit_event (target_type, target_id, seq);
