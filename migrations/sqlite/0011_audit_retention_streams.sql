-- Issue 7: retention with signed checkpoints, and webhook streams to a SIEM.

-- A purge removes the oldest events up to `through_seq` and records the chain head at that point
-- (`through_hash`, the hash of the last purged row), signed with a key published in the JWKS, so
-- the first remaining event still links to something a verifier can trust. Append-only.
create table audit_checkpoint (
    through_seq  bigint primary key,
    through_hash text not null,
    purged       bigint not null,
    cutoff       bigint not null,
    kid          text not null,
    signature    text not null,
    created_at   bigint not null
);
create trigger audit_checkpoint_no_update before update on audit_checkpoint
begin
    select raise(abort, 'audit_checkpoint is append-only');
end;
create trigger audit_checkpoint_no_delete before delete on audit_checkpoint
begin
    select raise(abort, 'audit_checkpoint is append-only');
end;

-- Events stay undeletable, except those a checkpoint already covers (the retention purge).
drop trigger audit_event_no_delete;
create trigger audit_event_no_delete before delete on audit_event
when old.seq > coalesce((select max(through_seq) from audit_checkpoint), 0)
begin
    select raise(abort, 'audit_event is append-only');
end;

-- A webhook stream: events matching `filter` (an audit filter as JSON) are POSTed in order, in
-- batches, signed with HMAC-SHA256 under `secret_sealed` (sealed with the master key). `cursor_seq`
-- is the last event considered delivered; a failing batch is retried with backoff (`attempts`,
-- `next_attempt_at`) and the cursor only moves when the endpoint acknowledged it (at least once).
create table audit_stream (
    audit_stream_id  text primary key,
    name             text not null,
    url              text not null,
    filter           text not null,
    secret_sealed    text not null,
    secret_hint      text not null,
    status           text not null check (status in ('active', 'paused')),
    cursor_seq       bigint not null,
    attempts         integer not null default 0,
    next_attempt_at  bigint not null,
    lease_until      bigint,
    last_error       text,
    last_success_at  bigint,
    created_by       text,
    created_at       bigint not null,
    updated_at       bigint not null
);

-- Every attempt: the events it carried (by seq range), how it went. A redelivery asked for from the
-- dashboard is queued here as `pending` and sent once by the dispatcher.
create table audit_stream_delivery (
    audit_stream_delivery_id text primary key,
    audit_stream_id          text not null references audit_stream (audit_stream_id) on delete cascade,
    kind                     text not null check (kind in ('stream', 'redelivery')),
    status                   text not null check (status in ('pending', 'sending', 'delivered', 'failed')),
    first_seq                bigint not null,
    last_seq                 bigint not null,
    events                   integer not null,
    attempt                  integer not null,
    status_code              integer,
    error                    text,
    duration_ms              integer,
    requested_by             text,
    created_at               bigint not null,
    completed_at             bigint
);
create index audit_stream_delivery_stream_idx on audit_stream_delivery (audit_stream_id, created_at);
create index audit_stream_delivery_pending_idx on audit_stream_delivery (status, created_at);
