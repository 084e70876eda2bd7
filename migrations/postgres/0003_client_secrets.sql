-- Client secrets of confidential applications (web, m2m). Only the SHA-256 of a secret is kept, with
-- its first and last characters for recognition.
create table client_secret (
    client_secret_id text primary key,
    application_id   text not null references application (application_id) on delete cascade,
    secret_hash      text not null unique,
    prefix           text not null,
    last_four        text not null,
    created_by       text,
    created_at       bigint not null,
    expires_at       bigint,
    revoked_at       bigint,
    last_used_at     bigint
);
create index client_secret_application_idx on client_secret (application_id);
