-- Issue 5 foundation: token signing keys, shared by every replica. The private key is sealed
-- (AES-256-GCM) with the master key from configuration or the data directory's key file.
create table signing_key (
    kid          text primary key,
    alg          text not null check (alg in ('ES256', 'RS256')),
    -- next: published, not yet signing; current: signing; previous: published for verification;
    -- retired: kept for the record only.
    status       text not null check (status in ('next', 'current', 'previous', 'retired')),
    public_jwk   text not null,
    private_key  text not null,
    created_at   bigint not null,
    activated_at bigint,
    retired_at   bigint
);
-- One current and one next key per algorithm, even when replicas start at once.
create unique index signing_key_one_current on signing_key (alg) where status = 'current';
create unique index signing_key_one_next on signing_key (alg) where status = 'next';
