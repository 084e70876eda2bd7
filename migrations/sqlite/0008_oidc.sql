-- Issue 5: the OAuth 2.1 / OpenID Connect provider.

-- An authorization request waiting while the user signs in on the hosted pages. Referenced by a random
-- id in the sign-in URL; nothing from it is trusted again without the checks made when it was stored.
create table authorization_request (
    request_id     text primary key,
    application_id text not null references application (application_id) on delete cascade,
    params         text not null,
    created_at     bigint not null,
    expires_at     bigint not null,
    -- SHA-256 of the random value in the browser's pc_authz cookie: only the browser that started
    -- the request can finish it.
    binding_hash   text not null
);
create index authorization_request_expiry_idx on authorization_request (expires_at);

-- Authorization codes: single use, ≤ 60 s, bound to client, redirect URI and PKCE challenge. Only the
-- SHA-256 of the code is stored. `family_id` names the refresh-token family issued from it, so a
-- second use can revoke what the first one produced.
create table authorization_code (
    code_hash       text primary key,
    application_id  text not null references application (application_id) on delete cascade,
    user_id         text not null references end_user (user_id) on delete cascade,
    user_session_id text not null,
    redirect_uri    text not null,
    scope           text not null,
    nonce           text,
    code_challenge  text not null,
    auth_time       bigint not null,
    created_at      bigint not null,
    expires_at      bigint not null,
    used_at         bigint,
    family_id       text
);
create index authorization_code_expiry_idx on authorization_code (expires_at);

-- A chain of refresh tokens from one authorization. Revoking the family ends every token in it
-- (access tokens carry the family in their `jti`).
create table token_family (
    family_id       text primary key,
    application_id  text not null references application (application_id) on delete cascade,
    user_id         text not null references end_user (user_id) on delete cascade,
    user_session_id text,
    scope           text not null,
    auth_time       bigint not null,
    created_at      bigint not null,
    expires_at      bigint not null,
    revoked_at      bigint,
    revoked_reason  text
);
create index token_family_session_idx on token_family (user_session_id);
create index token_family_user_idx on token_family (user_id);

create table refresh_token (
    token_hash text primary key,
    family_id  text not null references token_family (family_id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    used_at    bigint
);
create index refresh_token_family_idx on refresh_token (family_id);

-- Access tokens revoked one by one (RFC 7009) before they expire.
create table revoked_access_token (
    jti        text primary key,
    expires_at bigint not null
);

-- The applications that took part in a sign-in session: who gets a back-channel logout.
create table session_application (
    user_session_id text not null references user_session (user_session_id) on delete cascade,
    application_id  text not null references application (application_id) on delete cascade,
    first_at        bigint not null,
    primary key (user_session_id, application_id)
);

-- Back-channel logout tokens waiting for delivery, and the record of each delivery.
create table logout_delivery (
    logout_delivery_id text primary key,
    application_id     text not null references application (application_id) on delete cascade,
    user_session_id    text not null,
    user_id            text not null,
    url                text not null,
    token              text not null,
    created_at         bigint not null,
    attempts           bigint not null default 0,
    next_attempt_at    bigint,
    delivered_at       bigint,
    failed_at          bigint,
    last_error         text
);
create index logout_delivery_due_idx on logout_delivery (next_attempt_at);
create index logout_delivery_app_idx on logout_delivery (application_id, created_at);

-- How the ID tokens of an application are signed (some clients only know RS256).
alter table application add column id_token_alg text not null default 'ES256';
-- The scopes a machine-to-machine application may ask for with client_credentials (JSON array).
alter table application add column allowed_scopes text not null default '[]';
