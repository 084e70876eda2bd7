-- refresh_token is looked up and inserted by a random key (the SHA-256 of the token). As a rowid
-- table it was two B-trees (the rows by a hidden rowid, and the unique index on token_hash), so
-- every rotation paid two inserts, and the random one dirtied a different index page each time.
-- WITHOUT ROWID keeps the rows in the token_hash B-tree itself: one insert, one search.
create table refresh_token_by_hash (
    token_hash text primary key,
    family_id  text not null references token_family (family_id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    used_at    bigint
) without rowid;
insert into refresh_token_by_hash (token_hash, family_id, created_at, expires_at, used_at)
select token_hash, family_id, created_at, expires_at, used_at from refresh_token;
drop table refresh_token;
alter table refresh_token_by_hash rename to refresh_token;
create index refresh_token_family_idx on refresh_token (family_id);
