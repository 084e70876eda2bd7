-- Applications: one per product surface, over the shared user pool.
create table application (
    application_id            text primary key,
    name                      text not null unique,
    description               text not null,
    app_type                  text not null check (app_type in ('web', 'spa', 'native', 'm2m')),
    client_id                 text not null unique,
    status                    text not null check (status in ('active', 'disabled')),
    is_default                bigint not null,
    -- JSON arrays of URIs, validated by identity::redirect_uris before they are stored.
    redirect_uris             text not null,
    post_logout_redirect_uris text not null,
    created_by                text,
    updated_by                text,
    created_at                bigint not null,
    updated_at                bigint not null
);
-- At most one default application, even when two replicas start at once.
create unique index application_one_default on application (is_default) where is_default = 1;
