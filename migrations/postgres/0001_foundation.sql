-- Foundation: staff, their sessions and invitations, admin API keys, sign-in throttling, audit chain.
-- Times are milliseconds since the Unix epoch (bigint); ids are text (UUIDv7).

create table staff (
    staff_id      text primary key,
    email         text not null unique,
    password_hash text,
    role          text not null check (role in ('owner', 'operator', 'support', 'auditor')),
    status        text not null check (status in ('invited', 'active', 'disabled')),
    created_at    bigint not null,
    updated_at    bigint not null
);

create table staff_invitation (
    staff_invitation_id text primary key,
    staff_id            text not null references staff (staff_id),
    token_hash          text not null unique,
    created_by          text,
    created_at          bigint not null,
    expires_at          bigint not null,
    used_at             bigint
);

create table staff_session (
    staff_session_id text primary key,
    staff_id         text not null references staff (staff_id),
    token_hash       text not null unique,
    csrf_token       text not null,
    ip               text,
    user_agent       text,
    created_at       bigint not null,
    last_seen_at     bigint not null,
    expires_at       bigint not null,
    revoked_at       bigint
);
create index staff_session_staff_idx on staff_session (staff_id);

create table api_key (
    api_key_id   text primary key,
    name         text not null,
    prefix       text not null,
    key_hash     text not null unique,
    role         text not null check (role in ('owner', 'operator', 'support', 'auditor')),
    created_by   text,
    created_at   bigint not null,
    updated_at   bigint not null,
    last_used_at bigint,
    revoked_at   bigint
);

create table sign_in_failure (
    sign_in_failure_id bigserial primary key,
    subject            text not null,
    created_at         bigint not null
);
create index sign_in_failure_subject_idx on sign_in_failure (subject, created_at);

create table audit_event (
    seq         bigint primary key,
    event_id    text not null unique,
    event       text not null,
    outcome     text not null,
    actor_type  text not null,
    actor_id    text,
    actor_label text,
    target_type text,
    target_id   text,
    ip          text,
    user_agent  text,
    request_id  text,
    detail      text not null,
    created_at  bigint not null,
    prev_hash   text not null,
    hash        text not null
);
create index audit_event_created_idx on audit_event (created_at);

-- The chain head: one row, updated in the same transaction as every append. Its row lock serialises
-- writers across connections and replicas, so the chain stays one line.
create table audit_head (
    audit_head_id integer primary key check (audit_head_id = 1),
    seq           bigint not null,
    hash          text not null
);
insert into audit_head (audit_head_id, seq, hash)
values (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

create function audit_event_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_event is append-only';
end;
$$;
create trigger audit_event_no_change before update or delete on audit_event
    for each row execute function audit_event_append_only();
