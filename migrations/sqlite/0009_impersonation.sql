-- Issue 6: audited impersonation. Support staff sign in as a user inside one application, with a
-- reason, a time limit and optional approval; every step is an audit event.

-- The policy of one application (no row: impersonation is off).
create table impersonation_policy (
    application_id    text primary key references application (application_id) on delete cascade,
    enabled           integer not null default 0,
    max_duration_secs bigint not null default 3600,
    require_approval  integer not null default 0,
    mode              text not null default 'full' check (mode in ('full', 'read_only')),
    notify_user       integer not null default 0,
    updated_at        bigint not null
);

-- Who may impersonate in which application (owners assign).
create table impersonation_assignment (
    application_id text not null references application (application_id) on delete cascade,
    staff_id       text not null references staff (staff_id) on delete cascade,
    created_at     bigint not null,
    primary key (application_id, staff_id)
);
create index impersonation_assignment_staff_idx on impersonation_assignment (staff_id);

-- One impersonation, from request to end. Kept after the end (history); the audit log holds the story.
--   pending  → approved | denied | expired (not decided within 30 minutes)
--   approved → active (started) | expired (not started within 30 minutes)
--   active   → ended (by someone, or at ends_at)
create table impersonation (
    impersonation_id text primary key,
    application_id   text not null references application (application_id) on delete cascade,
    user_id          text not null references end_user (user_id) on delete cascade,
    staff_id         text not null references staff (staff_id),
    staff_email      text not null,
    reason           text not null,
    ticket           text,
    mode             text not null check (mode in ('full', 'read_only')),
    duration_secs    bigint not null,
    notify_user      integer not null,
    status           text not null check (status in ('pending', 'approved', 'denied', 'expired', 'active', 'ended')),
    requested_at     bigint not null,
    decided_by       text,
    decided_at       bigint,
    decision_comment text,
    started_at       bigint,
    ends_at          bigint,
    ended_at         bigint,
    ended_by         text,
    end_reason       text,
    user_session_id  text
);
create index impersonation_staff_idx on impersonation (staff_id, status);
create index impersonation_status_idx on impersonation (status, requested_at);
create index impersonation_user_idx on impersonation (user_id, requested_at);

-- The sign-in session an impersonation runs in (its own, never the user's or the staff member's),
-- and the token families issued under it.
alter table user_session add column impersonation_id text;
alter table token_family add column impersonation_id text;
alter table authorization_code add column impersonation_id text;
create index token_family_impersonation_idx on token_family (impersonation_id);
