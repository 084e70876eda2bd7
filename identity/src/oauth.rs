//! The OAuth 2.1 / OpenID Connect provider: authorization requests, codes, the token endpoint's
//! grants, revocation (RFC 7009), introspection (RFC 7662), userinfo and RP-initiated logout.
//!
//! What an operator configured is what is enforced here: redirect URIs (exact match), the
//! application's type (public clients use PKCE and no secret; only `m2m` gets `client_credentials`),
//! its status, its session policy (lifetimes, refresh on/off, rotation, maximum session age) and its
//! roles (access tokens carry the user's roles in that application only).
//!
//! Hot paths stay off the write lock where they can: clients are cached for a few seconds, secret
//! last-use is written at most once a minute, and `client_credentials` audit events are group
//! committed (the answer still waits for its event's commit).

use crate::applications::{self, AppType, Application, Status as AppStatus};
use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::error::{Context, Error, Result};
use crate::redirect_uris;
use crate::secret::{constant_time_eq, new_id, random_token, token_hash};
use crate::session_policy::{self, Effective};
use crate::time::Timestamp;
use crate::users::{self, Status as UserStatus, User};
use crate::{Identity, RequestMeta};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Authorization codes live at most this long.
pub const CODE_TTL_SECS: i64 = 60;
/// A pending authorization request waits this long for the user to sign in.
pub const REQUEST_TTL_SECS: i64 = 15 * 60;
/// Other replicas see a changed or disabled client after at most this long (this replica at once).
pub const CLIENT_CACHE_MS: i64 = 5_000;
/// A client secret's last use is written at most this often.
const LAST_USED_EVERY_MS: i64 = 60_000;
/// The scopes Portcullis understands.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// What ID tokens say about how the user authenticated.
const AMR_PASSWORD: &str = "pwd";

// ---- Errors ----

/// An error answered to an OAuth client: `error` is the registered code (RFC 6749 §5.2).
#[derive(Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: &'static str,
    pub status: u16,
}

impl OAuthError {
    pub const fn new(error: &'static str, description: &'static str) -> Self {
        Self {
            error,
            description,
            status: 400,
        }
    }

    pub const fn invalid_client() -> Self {
        Self {
            error: "invalid_client",
            description: "Client authentication failed.",
            status: 401,
        }
    }

    const fn invalid_grant(description: &'static str) -> Self {
        Self::new("invalid_grant", description)
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        tracing::error!(error = %e, source = ?std::error::Error::source(&e), "token endpoint failure");
        Self {
            error: "server_error",
            description: "Something went wrong on our side.",
            status: 500,
        }
    }
}

type OResult<T> = std::result::Result<T, OAuthError>;

// ---- Clients ----

/// An application as the provider uses it, with its effective session policy.
#[derive(Clone, Debug)]
pub struct Client {
    pub app: Application,
    pub policy: Effective,
}

struct CachedSecret {
    secret_id: String,
    client_id: String,
    expires_at: Option<i64>,
    fetched_at: i64,
}

/// Short-lived caches in front of the database for the token endpoint.
#[derive(Default)]
pub(crate) struct ClientCache {
    clients: RwLock<HashMap<String, (Arc<Client>, i64)>>,
    secrets: RwLock<HashMap<String, CachedSecret>>,
    last_used: RwLock<HashMap<String, i64>>,
}

impl ClientCache {
    /// Forgets everything (an application or a secret changed on this replica).
    pub(crate) fn clear(&self) {
        if let Ok(mut c) = self.clients.write() {
            c.clear();
        }
        if let Ok(mut s) = self.secrets.write() {
            s.clear();
        }
    }
}

/// The client with this client ID (any status), from the cache when fresh.
pub async fn client(
    identity: &Identity,
    client_id: &str,
    now: Timestamp,
) -> Result<Option<Arc<Client>>> {
    let cache = identity.clients();
    if let Ok(map) = cache.clients.read()
        && let Some((c, at)) = map.get(client_id)
        && now.millis() - at < CLIENT_CACHE_MS
    {
        return Ok(Some(c.clone()));
    }
    let mut conn = identity.db().connection().await?;
    let app = match applications::find_by_client_id(&mut conn, client_id).await {
        Ok(app) => app,
        Err(Error::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let env = crate::settings::session_policy_on(&mut conn).await?;
    let policy = session_policy::resolve(app.app_type, &env, &app.session_policy);
    let c = Arc::new(Client { app, policy });
    if let Ok(mut map) = cache.clients.write() {
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(client_id.to_owned(), (c.clone(), now.millis()));
    }
    Ok(Some(c))
}

/// How a client presented itself at the token, revocation or introspection endpoint. (No `Debug`:
/// it carries the secret.)
#[derive(Clone, Default)]
pub struct ClientAuth {
    /// From HTTP Basic (`client_secret_basic`), already form-decoded.
    pub basic: Option<(String, String)>,
    /// `client_id` in the body.
    pub client_id: Option<String>,
    /// `client_secret` in the body (`client_secret_post`).
    pub client_secret: Option<String>,
}

/// Authenticates the client: confidential clients with an active secret (basic or post), public
/// clients by client ID alone (`none`). Disabled applications are refused.
pub async fn authenticate(
    identity: &Identity,
    auth: &ClientAuth,
    now: Timestamp,
) -> OResult<Arc<Client>> {
    let (client_id, secret) = match (&auth.basic, &auth.client_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "Use one client authentication method.",
            ));
        }
        (Some((id, secret)), None) => {
            if auth.client_id.as_deref().is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_client());
            }
            (id.as_str(), Some(secret.as_str()))
        }
        (None, secret) => match auth.client_id.as_deref() {
            Some(id) => (id, secret.as_deref()),
            None => return Err(OAuthError::invalid_client()),
        },
    };
    let Some(client) = client(identity, client_id, now).await? else {
        return Err(OAuthError::invalid_client());
    };
    if client.app.status != AppStatus::Active {
        return Err(OAuthError::invalid_client());
    }
    match (client.app.app_type.is_confidential(), secret) {
        (true, Some(secret)) if check_secret(identity, client_id, secret, now).await? => Ok(client),
        (false, None) => Ok(client),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// True when `secret` is an active secret of `client_id`. The lookup is by the SHA-256 of a 256-bit
/// secret, so its timing tells nothing useful.
async fn check_secret(
    identity: &Identity,
    client_id: &str,
    secret: &str,
    now: Timestamp,
) -> Result<bool> {
    let hash = token_hash(secret);
    let cache = identity.clients();
    let cached = cache.secrets.read().ok().and_then(|m| {
        m.get(&hash)
            .filter(|s| now.millis() - s.fetched_at < CLIENT_CACHE_MS)
            .map(|s| (s.secret_id.clone(), s.client_id.clone(), s.expires_at))
    });
    let (secret_id, owner, expires_at) = match cached {
        Some(c) => c,
        None => {
            let row = sqlx::query(
                "select s.client_secret_id, s.expires_at, a.client_id from client_secret s \
                 join application a on a.application_id = s.application_id \
                 where s.secret_hash = $1 and s.revoked_at is null",
            )
            .bind(&hash)
            .fetch_optional(identity.db().pool())
            .await
            .context("Failed to check a client secret")?;
            let Some(row) = row else { return Ok(false) };
            let c: (String, String, Option<i64>) = (
                row.try_get("client_secret_id")
                    .context("client_secret.id")?,
                row.try_get("client_id").context("application.client_id")?,
                row.try_get("expires_at")
                    .context("client_secret.expires_at")?,
            );
            if let Ok(mut m) = cache.secrets.write() {
                if m.len() > 10_000 {
                    m.clear();
                }
                m.insert(
                    hash,
                    CachedSecret {
                        secret_id: c.0.clone(),
                        client_id: c.1.clone(),
                        expires_at: c.2,
                        fetched_at: now.millis(),
                    },
                );
            }
            c
        }
    };
    if !constant_time_eq(&owner, client_id) || expires_at.is_some_and(|e| e <= now.millis()) {
        return Ok(false);
    }
    let due = cache.last_used.read().ok().is_none_or(|m| {
        m.get(&secret_id)
            .is_none_or(|at| now.millis() - at >= LAST_USED_EVERY_MS)
    });
    if due {
        if let Ok(mut m) = cache.last_used.write() {
            m.insert(secret_id.clone(), now.millis());
        }
        sqlx::query("update client_secret set last_used_at = $1 where client_secret_id = $2")
            .bind(now.millis())
            .bind(&secret_id)
            .execute(identity.db().writer())
            .await
            .context("Failed to record a secret's use")?;
    }
    Ok(true)
}

// ---- Authorization ----

/// The authorization request's parameters as received.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub response_mode: Option<String>,
}

/// A checked authorization request (what a pending request stores).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Checked {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    max_age: Option<i64>,
    prompt_none: bool,
    prompt_login: bool,
    login_hint: Option<String>,
}

/// What the authorization endpoint answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Authorization {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    ErrorPage { code: &'static str },
    /// Back to the client (a code, or an error), with `state` and `iss`.
    Redirect(String),
    /// The user must sign in first; the hosted page resumes `request_id` afterwards. `binding`
    /// (new requests only) goes into the browser's `pc_authz` cookie: only that browser may resume.
    SignIn {
        client_id: String,
        request_id: String,
        login_hint: Option<String>,
        binding: Option<String>,
    },
}

pub(crate) fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = redirect_uri.to_owned();
    let mut sep = if redirect_uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
        sep = '&';
    }
    out
}

fn error_redirect(
    issuer: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Authorization {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    Authorization::Redirect(redirect_with(redirect_uri, &params))
}

fn is_pkce_text(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Normalises a scope parameter: known values only, no duplicates, original order.
fn parse_scope(input: Option<&str>) -> std::result::Result<String, ()> {
    let mut out: Vec<&str> = Vec::new();
    for s in input
        .unwrap_or("openid")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !SCOPES.contains(&s) {
            return Err(());
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out.join(" "))
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// The authorization endpoint (GET or POST): checks the request and answers with a code when the
/// shared sign-in session allows it.
pub async fn authorize(
    identity: &Identity,
    params: AuthorizeParams,
    cookies: SessionCookies<'_>,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<Authorization> {
    let issuer = identity.settings().issuer.clone();
    let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(Authorization::ErrorPage {
            code: "invalid_client",
        });
    };
    let Some(client) = client(identity, client_id, now).await? else {
        return Ok(Authorization::ErrorPage {
            code: "invalid_client",
        });
    };
    if client.app.status != AppStatus::Active {
        return Ok(Authorization::ErrorPage {
            code: "application_disabled",
        });
    }
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(r) if redirect_uris::matches(&client.app.redirect_uris, r, client.app.app_type) => {
            r.to_owned()
        }
        _ => {
            return Ok(Authorization::ErrorPage {
                code: "invalid_redirect_uri",
            });
        }
    };
    // From here on the client is known and the redirect URI is its own: errors go back to it.
    let state = params.state.clone().filter(|s| !s.is_empty());
    let fail = |error: &str, description: &str| {
        Ok(error_redirect(
            &issuer,
            &redirect_uri,
            state.as_deref(),
            error,
            description,
        ))
    };
    if state.as_ref().is_some_and(|s| s.len() > 2048) {
        return fail("invalid_request", "state is too long.");
    }
    if params.request.is_some() {
        return fail(
            "request_not_supported",
            "Request objects are not supported.",
        );
    }
    if params.request_uri.is_some() {
        return fail("request_uri_not_supported", "request_uri is not supported.");
    }
    if params
        .response_mode
        .as_deref()
        .is_some_and(|m| m != "query")
    {
        return fail("invalid_request", "Only response_mode=query is supported.");
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None | Some("") => return fail("invalid_request", "response_type is required."),
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            );
        }
    }
    if client.app.app_type == AppType::M2m {
        return fail(
            "unauthorized_client",
            "Machine-to-machine applications have no users.",
        );
    }
    match params.code_challenge_method.as_deref() {
        Some("S256") => {}
        _ => {
            return fail(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required.",
            );
        }
    }
    let Some(challenge) = params.code_challenge.clone().filter(|c| is_pkce_text(c)) else {
        return fail("invalid_request", "code_challenge is missing or malformed.");
    };
    let Ok(scope) = parse_scope(params.scope.as_deref()) else {
        return fail("invalid_scope", "Unknown scope.");
    };
    if params.nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return fail("invalid_request", "nonce is too long.");
    }
    let prompts: Vec<&str> = params
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| !["none", "login", "consent", "select_account"].contains(p))
        || (prompts.contains(&"none") && prompts.len() > 1)
    {
        return fail("invalid_request", "Unsupported prompt value.");
    }
    let max_age = match params.max_age.as_deref() {
        None | Some("") => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => return fail("invalid_request", "max_age must be a non-negative integer."),
        },
    };
    let checked = Checked {
        client_id: client.app.client_id.clone(),
        redirect_uri,
        scope,
        state,
        nonce: params.nonce.filter(|n| !n.is_empty()),
        code_challenge: challenge,
        max_age,
        prompt_none: prompts.contains(&"none"),
        prompt_login: prompts.contains(&"login"),
        login_hint: params
            .login_hint
            .filter(|h| !h.is_empty() && h.len() <= 320),
    };
    decide(identity, &client, checked, cookies, None, meta, now).await
}

/// The browser's sign-in cookies: its shared session (`pc_user`) and, in a support person's
/// browser, an impersonation session (`pc_imp`) that counts only for its own application.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionCookies<'a> {
    pub session: Option<&'a str>,
    pub impersonation: Option<&'a str>,
}

/// A live shared sign-in session of an active user.
struct LiveSession {
    id: String,
    user: User,
    auth_time: Timestamp,
    /// The impersonation this session belongs to.
    impersonation_id: Option<String>,
}

/// The impersonation session behind `pc_imp`, when it is live and for this application.
async fn impersonation_session(
    identity: &Identity,
    token: &str,
    application_id: &str,
    now: Timestamp,
) -> Result<Option<LiveSession>> {
    let Some((id, user_id, impersonation_id, started)) =
        crate::impersonation::session_for(identity, token, application_id, now).await?
    else {
        return Ok(None);
    };
    let user = users::find(&mut *identity.db().connection().await?, &user_id).await?;
    if user.status != UserStatus::Active {
        return Ok(None);
    }
    Ok(Some(LiveSession {
        id,
        user,
        auth_time: started,
        impersonation_id: Some(impersonation_id),
    }))
}

async fn live_session(
    identity: &Identity,
    token: &str,
    now: Timestamp,
) -> Result<Option<LiveSession>> {
    // Never an impersonation session: those answer only to their own cookie and application.
    let query = "select user_session_id, user_id, created_at from user_session where token_hash = $1 \
         and revoked_at is null and expires_at > $2 and impersonation_id is null";
    let mut row = sqlx::query(query)
        .bind(token_hash(token))
        .bind(now.millis())
        .fetch_optional(identity.db().pool())
        .await
        .context("Failed to read a sign-in session")?;
    if row.is_none() {
        // Right after signing in, a SQLite reader may not see the new session yet: ask the writer.
        row = sqlx::query(query)
            .bind(token_hash(token))
            .bind(now.millis())
            .fetch_optional(identity.db().writer())
            .await
            .context("Failed to read a sign-in session")?;
    }
    let Some(row) = row else { return Ok(None) };
    let user_id: String = row.try_get("user_id").context("user_session.user_id")?;
    let user = users::find(&mut *identity.db().connection().await?, &user_id).await?;
    if user.status != UserStatus::Active {
        return Ok(None);
    }
    Ok(Some(LiveSession {
        id: row.try_get("user_session_id").context("user_session.id")?,
        user,
        auth_time: Timestamp::from_millis(
            row.try_get("created_at")
                .context("user_session.created_at")?,
        ),
        impersonation_id: None,
    }))
}

/// Code now, sign in first, or (`prompt=none`) `login_required`. `resumed` is when the pending
/// request was stored: a sign-in after it satisfies `prompt=login` and `max_age`.
async fn decide(
    identity: &Identity,
    client: &Client,
    checked: Checked,
    cookies: SessionCookies<'_>,
    resumed: Option<(String, Timestamp)>,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<Authorization> {
    let impersonated = match cookies.impersonation {
        Some(t) => impersonation_session(identity, t, &client.app.id, now).await?,
        None => None,
    };
    let session = match (impersonated, cookies.session) {
        (Some(s), _) => Some(s),
        (None, Some(t)) => live_session(identity, t, now).await?,
        (None, None) => None,
    };
    let age_ok = |s: &LiveSession| {
        let age = (now.millis() - s.auth_time.millis()) / 1000;
        age <= client.policy.session_max_age_secs.value && checked.max_age.is_none_or(|m| age <= m)
    };
    let usable = match (&session, &resumed) {
        // The staff member authenticated to start it; the user cannot be asked to sign in.
        (Some(s), _) if s.impersonation_id.is_some() => true,
        (Some(s), Some((_, asked_at))) => s.auth_time >= *asked_at,
        (Some(s), None) => !checked.prompt_login && age_ok(s),
        (None, _) => false,
    };
    if let (true, Some(s)) = (usable, session) {
        if let Some((request_id, _)) = &resumed {
            // Single use: of two parallel resumes, one gets the code.
            let done = sqlx::query("delete from authorization_request where request_id = $1")
                .bind(request_id)
                .execute(identity.db().writer())
                .await
                .context("Failed to finish an authorization request")?;
            if done.rows_affected() != 1 {
                return Ok(Authorization::ErrorPage {
                    code: "request_expired",
                });
            }
        }
        return issue_code(identity, client, &checked, &s, meta, now).await;
    }
    if checked.prompt_none {
        let issuer = &identity.settings().issuer;
        return Ok(error_redirect(
            issuer,
            &checked.redirect_uri,
            checked.state.as_deref(),
            "login_required",
            "The user is not signed in.",
        ));
    }
    let (request_id, binding) = match resumed {
        Some((id, _)) => (id, None),
        None => {
            let id = random_token();
            let binding = random_token();
            sqlx::query("delete from authorization_request where expires_at <= $1")
                .bind(now.millis())
                .execute(identity.db().writer())
                .await
                .context("Failed to prune authorization requests")?;
            sqlx::query(
                "insert into authorization_request (request_id, application_id, params, created_at, \
                 expires_at, binding_hash) values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(&client.app.id)
            .bind(serde_json::to_string(&checked).context("Failed to encode a request")?)
            .bind(now.millis())
            .bind(now.plus_secs(REQUEST_TTL_SECS).millis())
            .bind(token_hash(&binding))
            .execute(identity.db().writer())
            .await
            .context("Failed to store an authorization request")?;
            (id, Some(binding))
        }
    };
    Ok(Authorization::SignIn {
        client_id: client.app.client_id.clone(),
        request_id,
        login_hint: checked.login_hint,
        binding,
    })
}

/// After signing in on the hosted pages: continues the pending request `request_id`, in the browser
/// that started it (`binding`, from its `pc_authz` cookie) and for the application whose page the
/// user signed in on (`client_id`).
pub async fn resume(
    identity: &Identity,
    request_id: &str,
    binding: Option<&str>,
    signed_in_for: Option<&str>,
    cookies: SessionCookies<'_>,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<Authorization> {
    let row = sqlx::query(
        "select r.params, r.created_at, r.binding_hash, a.client_id from authorization_request r \
         join application a on a.application_id = r.application_id \
         where r.request_id = $1 and r.expires_at > $2",
    )
    .bind(request_id)
    .bind(now.millis())
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an authorization request")?;
    let Some(row) = row else {
        return Ok(Authorization::ErrorPage {
            code: "request_expired",
        });
    };
    let params: String = row
        .try_get("params")
        .context("authorization_request.params")?;
    let checked: Checked = serde_json::from_str(&params).context("Failed to decode a request")?;
    let asked_at = Timestamp::from_millis(
        row.try_get("created_at")
            .context("authorization_request.created_at")?,
    );
    let client_id: String = row.try_get("client_id").context("application.client_id")?;
    let bound: String = row
        .try_get("binding_hash")
        .context("authorization_request.binding_hash")?;
    let same_browser = binding.is_some_and(|b| constant_time_eq(&token_hash(b), &bound));
    if !same_browser || signed_in_for.is_some_and(|c| c != client_id) {
        return Ok(Authorization::ErrorPage {
            code: "request_other_browser",
        });
    }
    let Some(client) = client(identity, &client_id, now).await? else {
        return Ok(Authorization::ErrorPage {
            code: "invalid_client",
        });
    };
    if client.app.status != AppStatus::Active {
        return Ok(Authorization::ErrorPage {
            code: "application_disabled",
        });
    }
    // The redirect URI may have been removed while the user signed in.
    if !redirect_uris::matches(
        &client.app.redirect_uris,
        &checked.redirect_uri,
        client.app.app_type,
    ) {
        return Ok(Authorization::ErrorPage {
            code: "invalid_redirect_uri",
        });
    }
    let checked = Checked {
        prompt_none: false,
        ..checked
    };
    decide(
        identity,
        &client,
        checked,
        cookies,
        Some((request_id.to_owned(), asked_at)),
        meta,
        now,
    )
    .await
}

async fn issue_code(
    identity: &Identity,
    client: &Client,
    checked: &Checked,
    session: &LiveSession,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<Authorization> {
    let code = random_token();
    let mut tx = identity.db().begin().await?;
    sqlx::query(
        "insert into authorization_code (code_hash, application_id, user_id, user_session_id, redirect_uri, \
         scope, nonce, code_challenge, auth_time, created_at, expires_at, impersonation_id) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(token_hash(&code))
    .bind(&client.app.id)
    .bind(&session.user.id)
    .bind(&session.id)
    .bind(&checked.redirect_uri)
    .bind(&checked.scope)
    .bind(&checked.nonce)
    .bind(&checked.code_challenge)
    .bind(session.auth_time.millis())
    .bind(now.millis())
    .bind(now.plus_secs(CODE_TTL_SECS).millis())
    .bind(&session.impersonation_id)
    .execute(&mut *tx)
    .await
    .context("Failed to store an authorization code")?;
    sqlx::query(
        "insert into session_application (user_session_id, application_id, first_at) values ($1, $2, $3) \
         on conflict do nothing",
    )
    .bind(&session.id)
    .bind(&client.app.id)
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to record a session's application")?;
    // Used codes stay a day so a late replay is still recognised (and revokes); then they go.
    sqlx::query("delete from authorization_code where expires_at <= $1")
        .bind(now.minus_secs(24 * 60 * 60).millis())
        .execute(&mut *tx)
        .await
        .context("Failed to prune old codes")?;
    audit::commit_with(
        tx,
        &Actor::User {
            id: session.user.id.clone(),
            email: session.user.email.to_string(),
        },
        meta,
        Entry::success(
            Event::AuthorizationCodeIssued,
            Some(Target::user(&session.user.id)),
            json!({ "application_id": client.app.id, "client_id": client.app.client_id,
                    "session_id": session.id, "scope": checked.scope,
                    "impersonation_id": session.impersonation_id }),
        ),
        now,
        "Failed to commit an authorization code",
    )
    .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &checked.state {
        params.push(("state", s));
    }
    let issuer = identity.settings().issuer.clone();
    params.push(("iss", &issuer));
    Ok(Authorization::Redirect(redirect_with(
        &checked.redirect_uri,
        &params,
    )))
}

// ---- Tokens ----

/// The token endpoint's form body. (No `Debug`: it carries codes, verifiers and secrets.)
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

/// RFC 9068 access token claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// RFC 8693: the staff member acting as `sub` (impersonation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
    /// The impersonation's id, mode and end (impersonation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonation: Option<Value>,
}

/// The token endpoint.
pub async fn token(
    identity: &Identity,
    request: TokenRequest,
    auth: ClientAuth,
    meta: &RequestMeta,
    now: Timestamp,
) -> OResult<TokenResponse> {
    let grant = request.grant_type.as_deref().unwrap_or("");
    if grant.is_empty() {
        return Err(OAuthError::new(
            "invalid_request",
            "grant_type is required.",
        ));
    }
    if !matches!(
        grant,
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            "Supported grants: authorization_code, refresh_token, client_credentials.",
        ));
    }
    let client = authenticate(identity, &auth, now).await?;
    match grant {
        "authorization_code" => code_grant(identity, &client, request, meta, now).await,
        "refresh_token" => refresh_grant(identity, &client, request, meta, now).await,
        _ => client_credentials(identity, &client, request, meta, now).await,
    }
}

fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The `jti` of an access token from a token family names the family, so revoking the family
/// makes its access tokens inactive too.
fn family_jti(family_id: &str) -> String {
    format!("{family_id}.{}", &random_token()[..22])
}

fn family_of(jti: &str) -> Option<&str> {
    jti.split_once('.').map(|(f, _)| f).filter(|f| *f != "cc")
}

async fn revoke_family(tx: &mut Tx, family_id: &str, reason: &str, now: Timestamp) -> Result<()> {
    sqlx::query(
        "update token_family set revoked_at = $1, revoked_reason = $2 where family_id = $3 and revoked_at is null",
    )
    .bind(now.millis())
    .bind(reason)
    .bind(family_id)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .context("Failed to revoke a token family")
}

/// A user's roles and their permissions in one application only.
type Roles = (Vec<String>, Vec<String>);

/// The user's roles and their permissions in this application only.
async fn roles_in(conn: &mut AnyConnection, user_id: &str, application_id: &str) -> Result<Roles> {
    let rows = sqlx::query(
        "select r.name as role_name, r.permissions as role_permissions from user_app_role g \
         join app_role r on r.app_role_id = g.app_role_id \
         where g.user_id = $1 and g.application_id = $2 order by r.name",
    )
    .bind(user_id)
    .bind(application_id)
    .fetch_all(conn)
    .await
    .context("Failed to read a user's roles")?;
    roles_of(&rows)
}

/// Roles from rows with `role_name` and `role_permissions` (null in a left join's empty row).
fn roles_of(rows: &[sqlx::any::AnyRow]) -> Result<Roles> {
    let mut roles = Vec::new();
    let mut permissions: Vec<String> = Vec::new();
    for r in rows {
        let Some(name) = r
            .try_get::<Option<String>, _>("role_name")
            .context("app_role.name")?
        else {
            continue;
        };
        roles.push(name);
        let p: Option<String> = r
            .try_get("role_permissions")
            .context("app_role.permissions")?;
        for perm in serde_json::from_str::<Vec<String>>(&p.unwrap_or_default()).unwrap_or_default()
        {
            if !permissions.contains(&perm) {
                permissions.push(perm);
            }
        }
    }
    Ok((roles, permissions))
}

/// What a user grant issues from: a family (one sign-in's tokens for one client).
struct Family {
    id: String,
    user: User,
    session_id: Option<String>,
    scope: String,
    auth_time: i64,
    expires_at: i64,
    /// Set when the family was issued under an impersonation.
    impersonation: Option<crate::impersonation::TokenContext>,
    /// The user's roles here when already read (the refresh grant reads them with the token).
    roles: Option<Roles>,
}

impl Family {
    /// The event a grant writes: under impersonation, one about the impersonation.
    fn event(&self, event: Event, detail: Value) -> Entry {
        match &self.impersonation {
            None => Entry::success(event, Some(Target::user(&self.user.id)), detail),
            Some(imp) => {
                let mut d = imp.detail.clone();
                if let (Some(d), Some(extra)) = (d.as_object_mut(), detail.as_object()) {
                    d.extend(extra.clone());
                    d.insert("event".into(), json!(event.name()));
                }
                Entry::success(
                    Event::ImpersonationTokenIssued,
                    Some(Target::impersonation(&imp.id)),
                    d,
                )
            }
        }
    }
}

struct Issued {
    response: TokenResponse,
    jti: String,
}

/// Signs the access token (and, with `openid`, the ID token) and stores a new refresh token when
/// the policy allows one.
async fn issue_user_tokens(
    identity: &Identity,
    conn: &mut AnyConnection,
    client: &Client,
    family: &Family,
    nonce: Option<&str>,
    with_refresh: bool,
    now: Timestamp,
) -> Result<Issued> {
    let issuer = identity.settings().issuer.clone();
    let policy = &client.policy;
    let (roles, permissions) = match &family.roles {
        Some(r) => r.clone(),
        None => roles_in(conn, &family.user.id, &client.app.id).await?,
    };
    let iat = now.millis() / 1000;
    // Nothing issued under an impersonation outlives it.
    let cap = |ttl: i64| match &family.impersonation {
        Some(imp) => ttl.min(imp.ends_at.millis() / 1000 - iat).max(1),
        None => ttl,
    };
    let access_ttl = cap(policy.access_token_ttl_secs.value);
    let (act, impersonation) = match &family.impersonation {
        Some(imp) => {
            let (a, i) = imp.claims();
            (Some(a), Some(i))
        }
        None => (None, None),
    };
    let jti = family_jti(&family.id);
    let claims = AccessClaims {
        iss: issuer.clone(),
        sub: family.user.id.clone(),
        aud: client.app.client_id.clone(),
        client_id: client.app.client_id.clone(),
        scope: family.scope.clone(),
        sid: family.session_id.clone(),
        jti: jti.clone(),
        iat,
        exp: iat + access_ttl,
        auth_time: Some(family.auth_time / 1000),
        roles,
        permissions,
        act: act.clone(),
        impersonation: impersonation.clone(),
    };
    let access_token = crate::keys::sign(identity, "at+jwt", &claims)?;
    let id_token = if has_scope(&family.scope, "openid") {
        let digest = Sha256::digest(access_token.as_bytes());
        let mut id = json!({
            "iss": issuer, "sub": family.user.id, "aud": client.app.client_id,
            "iat": iat, "exp": iat + cap(policy.id_token_ttl_secs.value),
            "auth_time": family.auth_time / 1000, "at_hash": URL_SAFE_NO_PAD.encode(&digest[..16]),
            "amr": [AMR_PASSWORD],
        });
        if let Some(sid) = &family.session_id {
            id["sid"] = json!(sid);
        }
        if let Some(n) = nonce {
            id["nonce"] = json!(n);
        }
        if let (Some(a), Some(i)) = (&act, &impersonation) {
            id["act"] = a.clone();
            id["impersonation"] = i.clone();
        }
        if has_scope(&family.scope, "email") {
            id["email"] = json!(family.user.email.to_string());
            id["email_verified"] = json!(family.user.email_verified);
        }
        if has_scope(&family.scope, "profile") {
            id["name"] = json!(family.user.name);
        }
        Some(crate::keys::sign_as(
            identity,
            client.app.id_token_alg,
            "JWT",
            &id,
        )?)
    } else {
        None
    };
    let refresh_token = with_refresh.then(random_token);
    Ok(Issued {
        response: TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: access_ttl,
            refresh_token,
            id_token,
            scope: family.scope.clone(),
        },
        jti,
    })
}

/// Stores the refresh token `issue_user_tokens` minted (if any), idle-limited by the policy and
/// never past the family's absolute end.
async fn store_refresh(
    tx: &mut Tx,
    client: &Client,
    family: &Family,
    token: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let Some(token) = token else { return Ok(()) };
    let idle = now
        .plus_secs(client.policy.refresh_idle_ttl_secs.value)
        .millis()
        .min(family.expires_at);
    insert_refresh(tx, &token_hash(token), &family.id, idle, now).await
}

/// Stores a refresh token's hash in its family (the refresh grant's successors are stored in
/// batches by `audit::apply_claims`).
async fn insert_refresh(
    tx: &mut Tx,
    hash: &str,
    family_id: &str,
    expires_at: i64,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "insert into refresh_token (token_hash, family_id, created_at, expires_at) values ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(family_id)
    .bind(now.millis())
    .bind(expires_at)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .context("Failed to store a refresh token")
}

fn user_actor(user: &User) -> Actor {
    Actor::User {
        id: user.id.clone(),
        email: user.email.to_string(),
    }
}

fn client_actor(client: &Client) -> Actor {
    Actor::Client {
        id: client.app.id.clone(),
        client_id: client.app.client_id.clone(),
    }
}

/// A code used a second time: whatever its first use produced is revoked, and the attempt audited.
async fn code_replayed(
    identity: &Identity,
    client: &Client,
    code: &str,
    user_id: &str,
    meta: &RequestMeta,
    now: Timestamp,
) -> OResult<TokenResponse> {
    let mut tx = identity.db().begin().await?;
    let family: Option<String> =
        sqlx::query("select family_id from authorization_code where code_hash = $1")
            .bind(token_hash(code))
            .fetch_optional(&mut *tx)
            .await
            .context("Failed to read a code")?
            .map(|r| r.try_get("family_id"))
            .transpose()
            .context("authorization_code.family_id")?
            .flatten();
    if let Some(f) = &family {
        revoke_family(&mut tx, f, "code_replay", now).await?;
    }
    audit::commit_with(
        tx,
        &client_actor(client),
        meta,
        Entry::failure(
            Event::TokenReuseDetected,
            Some(Target::user(user_id)),
            json!({ "kind": "authorization_code", "application_id": client.app.id,
                    "client_id": client.app.client_id, "family_id": family }),
        ),
        now,
        "Failed to commit a code replay",
    )
    .await?;
    Err(OAuthError::invalid_grant(
        "The authorization code is invalid, expired or already used.",
    ))
}

async fn code_grant(
    identity: &Identity,
    client: &Client,
    request: TokenRequest,
    meta: &RequestMeta,
    now: Timestamp,
) -> OResult<TokenResponse> {
    const BAD_CODE: &str = "The authorization code is invalid, expired or already used.";
    let Some(code) = request.code.filter(|c| !c.is_empty()) else {
        return Err(OAuthError::new("invalid_request", "code is required."));
    };
    let mut tx = identity.db().begin().await?;
    let row = sqlx::query(
        "select application_id, user_id, user_session_id, redirect_uri, scope, nonce, code_challenge, \
         auth_time, expires_at, used_at, family_id, impersonation_id from authorization_code \
         where code_hash = $1",
    )
    .bind(token_hash(&code))
    .fetch_optional(&mut *tx)
    .await
    .context("Failed to read an authorization code")?;
    let Some(row) = row else {
        return Err(OAuthError::invalid_grant(BAD_CODE));
    };
    let get_s =
        |c: &'static str| -> Result<String> { row.try_get(c).context("authorization_code") };
    let get_o = |c: &'static str| -> Result<Option<String>> {
        row.try_get(c).context("authorization_code")
    };
    let get_i =
        |c: &'static str| -> Result<Option<i64>> { row.try_get(c).context("authorization_code") };
    if get_s("application_id")? != client.app.id {
        return Err(OAuthError::invalid_grant(BAD_CODE));
    }
    let user_id = get_s("user_id")?;
    if get_i("used_at")?.is_some() {
        drop(tx);
        return code_replayed(identity, client, &code, &user_id, meta, now).await;
    }
    if get_i("expires_at")?.unwrap_or(0) <= now.millis() {
        return Err(OAuthError::invalid_grant(BAD_CODE));
    }
    // Single use from here on, whatever the outcome of the checks below.
    let claimed = sqlx::query(
        "update authorization_code set used_at = $1 where code_hash = $2 and used_at is null",
    )
    .bind(now.millis())
    .bind(token_hash(&code))
    .execute(&mut *tx)
    .await
    .context("Failed to use an authorization code")?;
    if claimed.rows_affected() != 1 {
        // Redeemed by a concurrent request in the meantime (PostgreSQL): a replay as well.
        drop(tx);
        return code_replayed(identity, client, &code, &user_id, meta, now).await;
    }
    let verdict = check_code(&request.redirect_uri, &request.code_verifier, &row)?;
    if let Err(e) = verdict {
        tx.commit().await.context("Failed to burn a code")?;
        return Err(e);
    }
    let user = users::find(&mut tx, &user_id).await?;
    let session_id = get_s("user_session_id")?;
    // PostgreSQL: lock the session row, so a sign-out committing meanwhile either ends the session
    // first (and this grant sees it) or waits and then revokes the family stored here as well.
    // (SQLite's write transaction already excludes it.)
    let lock = match identity.db().backend() {
        crate::db::Backend::Postgres => " for update",
        crate::db::Backend::Sqlite => "",
    };
    let session_live: Option<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select revoked_at from user_session where user_session_id = $1 and expires_at > $2{lock}"
    )))
    .bind(&session_id)
    .bind(now.millis())
    .fetch_optional(&mut *tx)
    .await
    .context("Failed to read a session")?
    .map(|r| r.try_get::<Option<i64>, _>("revoked_at"))
    .transpose()
    .context("user_session.revoked_at")?
    .map(|revoked| revoked.unwrap_or(0));
    let impersonation = match get_o("impersonation_id")? {
        Some(id) => match crate::impersonation::live_context(&mut tx, &id, now).await? {
            Some(c) => Some(c),
            None => {
                tx.commit().await.context("Failed to burn a code")?;
                return Err(OAuthError::invalid_grant("The impersonation has ended."));
            }
        },
        None => None,
    };
    if user.status != UserStatus::Active || session_live != Some(0) {
        tx.commit().await.context("Failed to burn a code")?;
        return Err(OAuthError::invalid_grant(
            "The user or the sign-in session is no longer active.",
        ));
    }
    let scope = get_s("scope")?;
    let with_refresh = client.policy.refresh_tokens.value;
    let mut family = Family {
        id: new_id(),
        user,
        session_id: Some(session_id),
        scope,
        auth_time: get_i("auth_time")?.unwrap_or(0),
        expires_at: if with_refresh {
            now.plus_secs(client.policy.refresh_absolute_ttl_secs.value)
                .millis()
        } else {
            now.plus_secs(client.policy.access_token_ttl_secs.value)
                .millis()
        },
        impersonation,
        roles: None,
    };
    if let Some(imp) = &family.impersonation {
        family.expires_at = family.expires_at.min(imp.ends_at.millis());
    }
    sqlx::query(
        "insert into token_family (family_id, application_id, user_id, user_session_id, scope, auth_time, \
         created_at, expires_at, impersonation_id) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&family.id)
    .bind(&client.app.id)
    .bind(&family.user.id)
    .bind(&family.session_id)
    .bind(&family.scope)
    .bind(family.auth_time)
    .bind(now.millis())
    .bind(family.expires_at)
    .bind(family.impersonation.as_ref().map(|i| i.id.as_str()))
    .execute(&mut *tx)
    .await
    .context("Failed to store a token family")?;
    sqlx::query("update authorization_code set family_id = $1 where code_hash = $2")
        .bind(&family.id)
        .bind(token_hash(&code))
        .execute(&mut *tx)
        .await
        .context("Failed to link a code to its tokens")?;
    let nonce = get_o("nonce")?;
    let issued = issue_user_tokens(
        identity,
        &mut tx,
        client,
        &family,
        nonce.as_deref(),
        with_refresh,
        now,
    )
    .await?;
    store_refresh(
        &mut tx,
        client,
        &family,
        issued.response.refresh_token.as_deref(),
        now,
    )
    .await?;
    audit::commit_with(
        tx,
        &user_actor(&family.user),
        meta,
        family.event(
            Event::TokenIssued,
            json!({ "grant_type": "authorization_code", "application_id": client.app.id,
                    "client_id": client.app.client_id, "family_id": family.id, "jti": issued.jti,
                    "scope": family.scope, "refresh_token": issued.response.refresh_token.is_some() }),
        ),
        now,
        "Failed to commit issued tokens",
    )
    .await?;
    Ok(issued.response)
}

/// Redirect URI and PKCE verifier against the stored code.
fn check_code(
    redirect_uri: &Option<String>,
    verifier: &Option<String>,
    row: &sqlx::any::AnyRow,
) -> Result<OResult<()>> {
    let stored_redirect: String = row
        .try_get("redirect_uri")
        .context("authorization_code.redirect_uri")?;
    let challenge: String = row
        .try_get("code_challenge")
        .context("authorization_code.code_challenge")?;
    if redirect_uri.as_deref() != Some(stored_redirect.as_str()) {
        return Ok(Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request.",
        )));
    }
    let Some(verifier) = verifier.as_deref().filter(|v| is_pkce_text(v)) else {
        return Ok(Err(OAuthError::invalid_grant(
            "code_verifier is missing or malformed.",
        )));
    };
    if !constant_time_eq(&pkce_s256(verifier), &challenge) {
        return Ok(Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge.",
        )));
    }
    Ok(Ok(()))
}

/// A refresh token was presented again after it rotated: the whole family is revoked.
async fn refresh_reused(
    identity: &Identity,
    client: &Client,
    family_id: &str,
    user_id: &str,
    meta: &RequestMeta,
    now: Timestamp,
) -> OResult<TokenResponse> {
    let mut tx = identity.db().begin().await?;
    revoke_family(&mut tx, family_id, "refresh_reuse", now).await?;
    audit::commit_with(
        tx,
        &client_actor(client),
        meta,
        Entry::failure(
            Event::TokenReuseDetected,
            Some(Target::user(user_id)),
            json!({ "kind": "refresh_token", "application_id": client.app.id,
                    "client_id": client.app.client_id, "family_id": family_id }),
        ),
        now,
        "Failed to commit a refresh reuse",
    )
    .await?;
    Err(OAuthError::invalid_grant(REFRESH_BAD))
}

const REFRESH_BAD: &str = "The refresh token is invalid, expired or revoked.";

/// Reads, checks and signs without the write lock; then one short transaction claims the token
/// (a conditional update: of two concurrent uses exactly one wins, the other counts as reuse),
/// stores its successor and the audit event.
async fn refresh_grant(
    identity: &Identity,
    client: &Client,
    request: TokenRequest,
    meta: &RequestMeta,
    now: Timestamp,
) -> OResult<TokenResponse> {
    const BAD: &str = REFRESH_BAD;
    let Some(token) = request.refresh_token.filter(|t| !t.is_empty()) else {
        return Err(OAuthError::new(
            "invalid_request",
            "refresh_token is required.",
        ));
    };
    let hash = token_hash(&token);
    let mut conn = identity.db().connection().await?;
    // The token, its family, its user and the user's roles in this application in one read: one
    // row per role (one with null role columns without any).
    let query = format!(
        "select r.family_id, r.expires_at as idle_expires_at, r.used_at, f.application_id, \
         f.user_session_id, f.scope, f.auth_time, f.expires_at as family_expires_at, f.revoked_at, \
         f.impersonation_id, ar.name as role_name, ar.permissions as role_permissions, {} \
         from refresh_token r join token_family f on f.family_id = r.family_id \
         join end_user u on u.user_id = f.user_id \
         left join user_app_role g on g.user_id = f.user_id and g.application_id = f.application_id \
         left join app_role ar on ar.app_role_id = g.app_role_id \
         where r.token_hash = $1 order by ar.name",
        users::JOINED_COLUMNS
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(query.clone()))
        .bind(&hash)
        .fetch_all(&mut *conn)
        .await
        .context("Failed to read a refresh token")?;
    if rows.is_empty() {
        // A reader may lag the writer by a moment on SQLite (its snapshot predates the commit that
        // created this token, answered just before): ask the writer before refusing.
        rows = sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(&hash)
            .fetch_all(identity.db().writer())
            .await
            .context("Failed to read a refresh token")?;
    }
    let Some(row) = rows.first() else {
        return Err(OAuthError::invalid_grant(BAD));
    };
    let roles = roles_of(&rows)?;
    let family_id: String = row
        .try_get("family_id")
        .context("refresh_token.family_id")?;
    let app_id: String = row
        .try_get("application_id")
        .context("token_family.application_id")?;
    if app_id != client.app.id {
        // Only its own client may use a refresh token.
        return Err(OAuthError::invalid_grant(BAD));
    }
    let user = users::decode(row)?;
    let user_id = user.id.clone();
    let used: Option<i64> = row.try_get("used_at").context("refresh_token.used_at")?;
    let revoked: Option<i64> = row
        .try_get("revoked_at")
        .context("token_family.revoked_at")?;
    if used.is_some() && revoked.is_none() {
        drop(conn);
        return refresh_reused(identity, client, &family_id, &user_id, meta, now).await;
    }
    let idle: i64 = row
        .try_get("idle_expires_at")
        .context("refresh_token.expires_at")?;
    let absolute: i64 = row
        .try_get("family_expires_at")
        .context("token_family.expires_at")?;
    if used.is_some() || revoked.is_some() || idle <= now.millis() || absolute <= now.millis() {
        return Err(OAuthError::invalid_grant(BAD));
    }
    let granted: String = row.try_get("scope").context("token_family.scope")?;
    let scope = match request.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        None => granted.clone(),
        Some(asked) => {
            let asked: Vec<&str> = asked.split(' ').filter(|s| !s.is_empty()).collect();
            if asked.iter().any(|s| !has_scope(&granted, s)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "A refresh cannot widen the granted scope.",
                ));
            }
            granted
                .split(' ')
                .filter(|s| asked.contains(s))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    if user.status != UserStatus::Active {
        return Err(OAuthError::invalid_grant(BAD));
    }
    let impersonation_id: Option<String> = row
        .try_get("impersonation_id")
        .context("token_family.impersonation_id")?;
    let impersonation = match impersonation_id {
        Some(id) => match crate::impersonation::live_context(&mut conn, &id, now).await? {
            Some(c) => Some(c),
            None => return Err(OAuthError::invalid_grant(BAD)),
        },
        None => None,
    };
    let rotate = client.policy.refresh_rotation.value;
    let family = Family {
        id: family_id,
        user,
        session_id: row
            .try_get("user_session_id")
            .context("token_family.user_session_id")?,
        scope,
        auth_time: row.try_get("auth_time").context("token_family.auth_time")?,
        expires_at: absolute,
        impersonation,
        roles: Some(roles),
    };
    let issued = issue_user_tokens(identity, &mut conn, client, &family, None, rotate, now).await?;
    drop(conn);

    // One group-committed write: the claim (rotation or idle extension), the successor token and
    // the event, together or not at all.
    let new_hash = issued.response.refresh_token.as_deref().map(token_hash);
    let claim = audit::Claim {
        old_hash: hash.clone(),
        family_id: family.id.clone(),
        new_hash,
        expires_at: now
            .plus_secs(client.policy.refresh_idle_ttl_secs.value)
            .millis()
            .min(absolute),
    };
    let claimed = identity
        .audit_batcher()
        .record_claim(
            user_actor(&family.user),
            meta,
            family.event(
                Event::TokenRefreshed,
                json!({ "application_id": client.app.id, "client_id": client.app.client_id,
                        "family_id": family.id, "jti": issued.jti, "scope": family.scope,
                        "rotated": rotate }),
            ),
            now,
            Some(claim),
        )
        .await?;
    if !claimed {
        // Used by a concurrent request in the meantime: that is reuse too.
        let again: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "select r.used_at, f.revoked_at from refresh_token r \
             join token_family f on f.family_id = r.family_id where r.token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(identity.db().writer())
        .await
        .context("Failed to re-read a refresh token")?;
        if let Some((Some(_), None)) = again {
            return refresh_reused(identity, client, &family.id, &user_id, meta, now).await;
        }
        return Err(OAuthError::invalid_grant(BAD));
    }
    Ok(issued.response)
}

/// Scope values a machine client may ask for: printable, no quotes or backslashes (RFC 6749 §3.3).
fn parse_m2m_scope(input: Option<&str>) -> Option<String> {
    let s = input.unwrap_or("").trim();
    let ok = s.len() <= 1024
        && s.bytes()
            .all(|b| b == b' ' || (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    ok.then(|| {
        s.split(' ')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

async fn client_credentials(
    identity: &Identity,
    client: &Client,
    request: TokenRequest,
    meta: &RequestMeta,
    now: Timestamp,
) -> OResult<TokenResponse> {
    if client.app.app_type != AppType::M2m {
        return Err(OAuthError::new(
            "unauthorized_client",
            "client_credentials is for machine-to-machine applications only.",
        ));
    }
    let Some(asked) = parse_m2m_scope(request.scope.as_deref()) else {
        return Err(OAuthError::new("invalid_scope", "Malformed scope."));
    };
    // Only what the operator allowed this application; no scope asked means all of it.
    let allowed = &client.app.allowed_scopes;
    let scope = if asked.is_empty() {
        allowed.join(" ")
    } else if asked.split(' ').all(|s| allowed.iter().any(|a| a == s)) {
        asked
    } else {
        return Err(OAuthError::new(
            "invalid_scope",
            "The application is not allowed this scope.",
        ));
    };
    let iat = now.millis() / 1000;
    let ttl = client.policy.access_token_ttl_secs.value;
    let jti = format!("cc.{}", &random_token()[..22]);
    let claims = AccessClaims {
        iss: identity.settings().issuer.clone(),
        sub: client.app.client_id.clone(),
        aud: client.app.client_id.clone(),
        client_id: client.app.client_id.clone(),
        scope: scope.clone(),
        sid: None,
        jti: jti.clone(),
        iat,
        exp: iat + ttl,
        auth_time: None,
        roles: Vec::new(),
        permissions: Vec::new(),
        act: None,
        impersonation: None,
    };
    let access_token = crate::keys::sign(identity, "at+jwt", &claims)?;
    identity
        .audit_batcher()
        .record(
            client_actor(client),
            meta,
            Entry::success(
                Event::TokenIssued,
                Some(Target::application(&client.app.id)),
                json!({ "grant_type": "client_credentials", "client_id": client.app.client_id,
                        "jti": jti, "scope": scope }),
            ),
            now,
        )
        .await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        id_token: None,
        scope,
    })
}

// ---- Verifying our own tokens ----

/// The claims of a JWT Portcullis signed (any published key), checked for issuer and, when
/// `check_exp`, expiry. `typ` must match when given.
pub fn verify_jwt(
    identity: &Identity,
    token: &str,
    typ: Option<&str>,
    check_exp: bool,
) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if let Some(t) = typ
        && header.typ.as_deref() != Some(t)
    {
        return None;
    }
    let (key, alg) = crate::keys::decoding_key(identity, header.kid.as_deref()?)?;
    if header.alg != alg {
        return None;
    }
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[identity.settings().issuer.as_str()]);
    validation.validate_aud = false;
    validation.validate_exp = check_exp;
    validation.leeway = 0;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .ok()
        .map(|d| d.claims)
}

/// The claims of an access token that is still good: signature, expiry, not revoked (itself, its
/// family or its session), client and user still active.
async fn active_access_token(
    identity: &Identity,
    token: &str,
    now: Timestamp,
) -> Result<Option<AccessClaims>> {
    let Some(claims) = verify_jwt(identity, token, Some("at+jwt"), true) else {
        return Ok(None);
    };
    let Ok(claims) = serde_json::from_value::<AccessClaims>(claims) else {
        return Ok(None);
    };
    if claims.exp <= now.millis() / 1000 {
        return Ok(None);
    }
    let revoked = sqlx::query("select 1 as x from revoked_access_token where jti = $1")
        .bind(&claims.jti)
        .fetch_optional(identity.db().pool())
        .await
        .context("Failed to check a revoked token")?
        .is_some();
    if revoked {
        return Ok(None);
    }
    if let Some(family) = family_of(&claims.jti) {
        let live = sqlx::query(
            "select 1 as x from token_family where family_id = $1 and revoked_at is null",
        )
        .bind(family)
        .fetch_optional(identity.db().pool())
        .await
        .context("Failed to check a token family")?
        .is_some();
        if !live {
            return Ok(None);
        }
        let mut conn = identity.db().connection().await?;
        match users::find(&mut conn, &claims.sub).await {
            Ok(u) if u.status == UserStatus::Active => {}
            _ => return Ok(None),
        }
    }
    match client(identity, &claims.client_id, now).await? {
        Some(c) if c.app.status == AppStatus::Active => Ok(Some(claims)),
        _ => Ok(None),
    }
}

// ---- Revocation (RFC 7009) ----

/// Revokes a refresh token (its whole family) or an access token of this client. Unknown tokens
/// and tokens of other clients are ignored (the answer is the same).
pub async fn revoke(
    identity: &Identity,
    client: &Client,
    token: &str,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<()> {
    let mut tx = identity.db().begin().await?;
    let family: Option<(String, String, String)> = sqlx::query(
        "select f.family_id, f.application_id, f.user_id from refresh_token r \
         join token_family f on f.family_id = r.family_id where r.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(&mut *tx)
    .await
    .context("Failed to read a refresh token")?
    .map(|r| -> Result<_> {
        Ok((
            r.try_get("family_id").context("token_family.id")?,
            r.try_get("application_id").context("token_family.app")?,
            r.try_get("user_id").context("token_family.user")?,
        ))
    })
    .transpose()?;
    let (detail, user) = match family {
        Some((family_id, app_id, user_id)) if app_id == client.app.id => {
            revoke_family(&mut tx, &family_id, "revoked", now).await?;
            (
                json!({ "kind": "refresh_token", "family_id": family_id }),
                Some(user_id),
            )
        }
        Some(_) => return Ok(()),
        None => {
            let Some(claims) = verify_jwt(identity, token, Some("at+jwt"), true)
                .and_then(|c| serde_json::from_value::<AccessClaims>(c).ok())
            else {
                return Ok(());
            };
            if claims.client_id != client.app.client_id {
                return Ok(());
            }
            sqlx::query("delete from revoked_access_token where expires_at <= $1")
                .bind(now.millis() / 1000)
                .execute(&mut *tx)
                .await
                .context("Failed to prune revoked tokens")?;
            sqlx::query("insert into revoked_access_token (jti, expires_at) values ($1, $2) on conflict do nothing")
                .bind(&claims.jti)
                .bind(claims.exp)
                .execute(&mut *tx)
                .await
                .context("Failed to revoke an access token")?;
            let user = family_of(&claims.jti).map(|_| claims.sub.clone());
            (json!({ "kind": "access_token", "jti": claims.jti }), user)
        }
    };
    let mut detail = detail;
    detail["application_id"] = json!(client.app.id);
    detail["client_id"] = json!(client.app.client_id);
    let target = match &user {
        Some(u) => Target::user(u),
        None => Target::application(&client.app.id),
    };
    audit::commit_with(
        tx,
        &client_actor(client),
        meta,
        Entry::success(Event::TokenRevoked, Some(target), detail),
        now,
        "Failed to commit a revocation",
    )
    .await
}

// ---- Introspection (RFC 7662) ----

/// Who asks: a confidential client (about tokens issued to it) or staff/admin keys (any token).
pub enum Introspector<'a> {
    Client(&'a Client),
    Staff(&'a Principal),
}

pub async fn introspect(
    identity: &Identity,
    caller: Introspector<'_>,
    token: &str,
    now: Timestamp,
) -> Result<Value> {
    let inactive = json!({ "active": false });
    let may_see = |client_id: &str| match &caller {
        Introspector::Client(c) => c.app.client_id == client_id,
        Introspector::Staff(_) => true,
    };
    if let Introspector::Staff(p) = &caller {
        p.authorize(Action::ViewUsers)?;
        if p.application_scope().is_some() {
            return Err(Error::Forbidden);
        }
    }
    if let Introspector::Client(c) = &caller
        && !c.app.app_type.is_confidential()
    {
        return Err(Error::Forbidden);
    }
    let refresh = sqlx::query(
        "select r.expires_at as idle, r.used_at, r.created_at, f.expires_at, f.revoked_at, f.scope, f.user_id, \
         a.client_id, a.status from refresh_token r join token_family f on f.family_id = r.family_id \
         join application a on a.application_id = f.application_id where r.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read a refresh token")?;
    if let Some(r) = refresh {
        let client_id: String = r.try_get("client_id").context("application.client_id")?;
        let status: String = r.try_get("status").context("application.status")?;
        let idle: i64 = r.try_get("idle").context("refresh_token.expires_at")?;
        let absolute: i64 = r.try_get("expires_at").context("token_family.expires_at")?;
        let used: Option<i64> = r.try_get("used_at").context("refresh_token.used_at")?;
        let revoked: Option<i64> = r.try_get("revoked_at").context("token_family.revoked_at")?;
        let user_id: String = r.try_get("user_id").context("token_family.user_id")?;
        let user_ok = matches!(users::find(&mut *identity.db().connection().await?, &user_id).await,
            Ok(u) if u.status == UserStatus::Active);
        let active = may_see(&client_id)
            && status == "active"
            && user_ok
            && used.is_none()
            && revoked.is_none()
            && idle.min(absolute) > now.millis();
        if !active {
            return Ok(inactive);
        }
        let created: i64 = r
            .try_get("created_at")
            .context("refresh_token.created_at")?;
        return Ok(json!({
            "active": true, "token_type": "refresh_token", "client_id": client_id, "sub": user_id,
            "scope": r.try_get::<String, _>("scope").context("token_family.scope")?,
            "iat": created / 1000, "exp": idle.min(absolute) / 1000,
            "iss": identity.settings().issuer,
        }));
    }
    match active_access_token(identity, token, now).await? {
        Some(claims) if may_see(&claims.client_id) => {
            let mut out = serde_json::to_value(&claims).context("Failed to encode claims")?;
            out["active"] = json!(true);
            out["token_type"] = json!("Bearer");
            Ok(out)
        }
        _ => Ok(inactive),
    }
}

// ---- Userinfo ----

/// The claims about the user an access token allows (`openid` required). `None`: the token is not
/// valid (the caller answers 401 `invalid_token`).
pub async fn userinfo(
    identity: &Identity,
    access_token: &str,
    now: Timestamp,
) -> Result<Option<Value>> {
    let Some(claims) = active_access_token(identity, access_token, now).await? else {
        return Ok(None);
    };
    if family_of(&claims.jti).is_none() || !has_scope(&claims.scope, "openid") {
        return Ok(None);
    }
    let user = users::find(&mut *identity.db().connection().await?, &claims.sub).await?;
    let mut out = json!({ "sub": user.id });
    if has_scope(&claims.scope, "email") {
        out["email"] = json!(user.email.to_string());
        out["email_verified"] = json!(user.email_verified);
    }
    if has_scope(&claims.scope, "profile") {
        out["name"] = json!(user.name);
        out["updated_at"] = json!(user.updated_at.millis() / 1000);
    }
    Ok(Some(out))
}

// ---- RP-initiated logout ----

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndSessionParams {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum EndSession {
    /// Bad hint, unknown client or an unregistered post-logout URI: an error page, no redirect.
    ErrorPage { code: &'static str },
    /// No proof of who asks: the user confirms on the hosted sign-out page, which carries the
    /// (registered) post-logout URI and state on to [`post_logout_target`].
    Confirm {
        client_id: Option<String>,
        post_logout_redirect_uri: Option<String>,
        state: Option<String>,
    },
    /// Signed out (`ended`: this browser's session ended; otherwise there was none); go here (the
    /// client's post-logout URI with `state`, or the signed-out page).
    Done {
        redirect: Option<String>,
        client_id: Option<String>,
        ended: bool,
    },
}

/// The client's registered post-logout URI with `state`, `None` without one; `Err` when the URI is
/// not registered for the client (or there is no client to check it against).
fn post_logout_redirect(
    client: Option<&Client>,
    uri: Option<&str>,
    state: Option<&str>,
) -> std::result::Result<Option<String>, ()> {
    let Some(uri) = uri.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    match client {
        Some(c)
            if c.app
                .post_logout_redirect_uris
                .iter()
                .any(|r| r.as_str() == uri) =>
        {
            let mut p = Vec::new();
            if let Some(s) = state.filter(|s| !s.is_empty()) {
                p.push(("state", s));
            }
            Ok(Some(redirect_with(uri, &p)))
        }
        _ => Err(()),
    }
}

/// Where the hosted sign-out page sends the browser after the user confirmed: the client's
/// registered post-logout URI (checked again here; the form is the browser's) or `None`.
pub async fn post_logout_target(
    identity: &Identity,
    client_id: &str,
    uri: Option<&str>,
    state: Option<&str>,
    now: Timestamp,
) -> Result<Option<String>> {
    let client = match client_id {
        "" => None,
        id => client(identity, id, now).await?,
    };
    Ok(post_logout_redirect(client.as_deref(), uri, state).unwrap_or(None))
}

pub async fn end_session(
    identity: &Identity,
    params: EndSessionParams,
    session_token: Option<&str>,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<EndSession> {
    let hint = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        // An ID token of ours (not an access or logout token); it may have expired.
        Some(h) => match verify_jwt(identity, h, Some("JWT"), false).filter(|c| {
            c.get("client_id").is_none() && c.get("scope").is_none() && c.get("events").is_none()
        }) {
            Some(claims) => Some(claims),
            None => {
                return Ok(EndSession::ErrorPage {
                    code: "invalid_id_token_hint",
                });
            }
        },
        None => None,
    };
    let hinted_client = hint
        .as_ref()
        .and_then(|c| c["aud"].as_str().map(str::to_owned));
    let client_id = match (params.client_id.filter(|c| !c.is_empty()), hinted_client) {
        (Some(a), Some(b)) if a != b => {
            return Ok(EndSession::ErrorPage {
                code: "client_mismatch",
            });
        }
        (a, b) => a.or(b),
    };
    let client = match &client_id {
        Some(id) => match client(identity, id, now).await? {
            Some(c) => Some(c),
            None => {
                return Ok(EndSession::ErrorPage {
                    code: "invalid_client",
                });
            }
        },
        None => None,
    };
    let Ok(redirect) = post_logout_redirect(
        client.as_deref(),
        params.post_logout_redirect_uri.as_deref(),
        params.state.as_deref(),
    ) else {
        return Ok(EndSession::ErrorPage {
            code: "invalid_post_logout_redirect_uri",
        });
    };
    let current = match session_token {
        Some(t) => live_session(identity, t, now).await?,
        None => None,
    };
    let Some(hint) = hint else {
        if current.is_some() {
            return Ok(EndSession::Confirm {
                client_id,
                post_logout_redirect_uri: redirect
                    .is_some()
                    .then(|| params.post_logout_redirect_uri.clone().unwrap_or_default()),
                state: params.state.clone().filter(|_| redirect.is_some()),
            });
        }
        return Ok(EndSession::Done {
            redirect,
            client_id,
            ended: false,
        });
    };
    // Only this browser's session, and only when it is the hinted user's (and the hinted session).
    let sub = hint["sub"].as_str().unwrap_or_default();
    let Some(current) = current else {
        return Ok(EndSession::Done {
            redirect,
            client_id,
            ended: false,
        });
    };
    if current.user.id != sub || hint["sid"].as_str().is_some_and(|sid| sid != current.id) {
        return Ok(EndSession::Confirm {
            client_id,
            post_logout_redirect_uri: redirect
                .is_some()
                .then(|| params.post_logout_redirect_uri.clone().unwrap_or_default()),
            state: params.state.clone().filter(|_| redirect.is_some()),
        });
    }
    let mut tx = identity.db().begin().await?;
    let ids = [current.id.clone()];
    crate::logout::end_sessions(identity, &mut tx, &ids, "rp_logout", now).await?;
    audit::commit_with(
        tx,
        &user_actor(&current.user),
        meta,
        Entry::success(
            Event::UserSignedOut,
            Some(Target::user(sub)),
            json!({ "session_id": current.id, "client_id": client_id, "method": "rp_initiated" }),
        ),
        now,
        "Failed to commit a logout",
    )
    .await?;
    Ok(EndSession::Done {
        redirect,
        client_id,
        ended: true,
    })
}

/// The OpenID Provider metadata (Discovery 1.0, RFC 8414).
pub fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "end_session_endpoint": format!("{issuer}/oauth/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr",
                             "email", "email_verified", "name"],
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn scopes_are_known_and_deduplicated() {
        assert_eq!(
            parse_scope(Some("openid email openid")).as_deref(),
            Ok("openid email")
        );
        assert_eq!(parse_scope(None).as_deref(), Ok("openid"));
        assert!(parse_scope(Some("openid admin")).is_err());
        assert_eq!(
            parse_m2m_scope(Some(" read:x  write:y ")).as_deref(),
            Some("read:x write:y")
        );
        assert!(parse_m2m_scope(Some("bad\"quote")).is_none());
    }

    #[test]
    fn redirects_keep_the_registered_query_and_encode_values() {
        assert_eq!(
            redirect_with(
                "https://a.example/cb?x=1",
                &[("code", "a b"), ("state", "s&t")]
            ),
            "https://a.example/cb?x=1&code=a+b&state=s%26t"
        );
        assert_eq!(
            redirect_with("https://a.example/cb", &[]),
            "https://a.example/cb"
        );
    }

    #[test]
    fn family_is_read_back_from_the_jti() {
        let jti = family_jti("0192-fam");
        assert_eq!(family_of(&jti), Some("0192-fam"));
        assert_eq!(family_of("cc.abc"), None);
        assert_eq!(family_of("nodot"), None);
    }
}
