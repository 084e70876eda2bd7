-- audit_event keyed by its sequence number. `seq bigint primary key` is not SQLite's rowid (only
-- `integer primary key` is), so every row carried a hidden rowid plus a separate unique index on
-- seq: each audit write paid one more B-tree insert, and every read by seq (verification, export,
-- keyset pages through the other indexes) one more B-tree search per row. Rebuilt with
-- `seq integer primary key`: the table itself is ordered by seq.
--
-- The copy keeps every stored value (the hash chain covers them). Dropping the old table does not
-- fire its delete trigger, and its indexes and triggers go with it; they are recreated below as
-- they stood after migrations 0001, 0005, 0010, 0011 and 0012.
create table audit_event_by_seq (
    seq            integer primary key,
    event_id       text not null unique,
    event          text not null,
    outcome        text not null,
    actor_type     text not null,
    actor_id       text,
    actor_label    text,
    target_type    text,
    target_id      text,
    ip             text,
    user_agent     text,
    request_id     text,
    detail         text not null,
    created_at     bigint not null,
    prev_hash      text not null,
    hash           text not null,
    category       text,
    application_id text,
    user_id        text
);
insert into audit_event_by_seq (seq, event_id, event, outcome, actor_type, actor_id, actor_label,
    target_type, target_id, ip, user_agent, request_id, detail, created_at, prev_hash, hash,
    category, application_id, user_id)
select seq, event_id, event, outcome, actor_type, actor_id, actor_label, target_type, target_id,
    ip, user_agent, request_id, detail, created_at, prev_hash, hash, category, application_id, user_id
from audit_event order by seq;
drop table audit_event;
alter table audit_event_by_seq rename to audit_event;

create index audit_event_created_idx on audit_event (created_at);
create index audit_event_target_idx on audit_event (target_type, target_id, seq);
create index audit_event_category_idx on audit_event (category, seq) where category is not null;
create index audit_event_application_idx on audit_event (application_id, seq)
    where application_id is not null;
create index audit_event_user_idx on audit_event (user_id, seq) where user_id is not null;

create trigger audit_event_no_update before update on audit_event
begin
    select raise(abort, 'audit_event is append-only');
end;
create trigger audit_event_no_delete before delete on audit_event
when old.seq > coalesce((select max(through_seq) from audit_checkpoint), 0)
begin
    select raise(abort, 'audit_event is append-only');
end;
