-- Issue 3, second half: per-application return URLs, session policy overrides, environment-wide
-- defaults, and application-scoped API keys.

-- Single URIs, validated by identity::redirect_uris; null when unset.
alter table application add column default_redirect_uri text;
alter table application add column initiate_login_uri text;
alter table application add column backchannel_logout_uri text;
alter table application add column return_url text;
-- JSON object of the session-policy values this application overrides; absent keys inherit.
alter table application add column session_policy text not null default '{}';
create index application_created_idx on application (created_at, application_id);

-- Environment-wide settings, one row per key, JSON values (e.g. the default session policy).
create table environment_setting (
    setting_key text primary key,
    value       text not null,
    updated_by  text,
    updated_at  bigint not null
);

-- API keys of one application, for its backend to call the management API within that application.
create table app_api_key (
    app_api_key_id text primary key,
    application_id text not null references application (application_id) on delete cascade,
    name           text not null,
    prefix         text not null,
    key_hash       text not null unique,
    -- JSON array of scopes, from identity::app_keys::Scope.
    scopes         text not null,
    created_by     text,
    created_at     bigint not null,
    expires_at     bigint,
    revoked_at     bigint,
    last_used_at   bigint,
    last_used_ip   text
);
create index app_api_key_application_idx on app_api_key (application_id);
