//! The OpenID provider's HTTP endpoints: discovery, JWKS, authorization, token, userinfo, revocation,
//! introspection and RP-initiated logout. The protocol lives in `identity::oauth`; this module maps
//! HTTP to it: form bodies, client authentication headers, the shared sign-in session cookie,
//! redirects (302 for the authorization endpoint's GET, 303 after a POST) and OAuth error bodies.
//!
//! Endpoints that machines call (token, userinfo, revocation, introspection, discovery, JWKS) answer
//! cross-origin requests without credentials, so SPAs can use them; the authorization and logout
//! endpoints are browser navigations and send no CORS headers (and, like every page, no framing).

use super::AppState;
use super::edge::cookie_value;
use super::hosted::enc;
use super::hosted::{IMPERSONATION_COOKIE, USER_COOKIE};
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Extension, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use identity::oauth::{
    self, Authorization, AuthorizeParams, ClientAuth, EndSession, EndSessionParams, Introspector,
    OAuthError, TokenRequest,
};
use identity::{RequestMeta, Timestamp};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks).options(preflight))
        .route(
            "/.well-known/openid-configuration",
            get(configuration).options(preflight),
        )
        .route("/oauth/authorize", get(authorize_get).post(authorize_post))
        .route("/oauth/authorize/resume", get(resume))
        .route("/oauth/token", post(token).options(preflight))
        .route(
            "/oauth/userinfo",
            get(userinfo).post(userinfo).options(preflight),
        )
        .route("/oauth/revoke", post(revoke).options(preflight))
        .route("/oauth/introspect", post(introspect).options(preflight))
        .route("/oauth/logout", get(logout_get).post(logout_post))
}

/// CORS for the machine endpoints: any origin, never credentials (they use no cookies).
fn cors(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

async fn preflight() -> Response {
    let mut res = cors(StatusCode::NO_CONTENT.into_response());
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    res
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = axum::Json(identity::keys::jwks(&state.identity)).into_response();
    // Verifiers may cache it briefly; a rotation publishes the next key well before it signs.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    cors(res)
}

async fn configuration(State(state): State<AppState>) -> Response {
    let mut res = axum::Json(oauth::discovery(&state.public_url)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    cors(res)
}

// ---- Authorization ----

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    no_store(res)
}

/// Binds a pending authorization request to the browser that started it.
const AUTHZ_COOKIE: &str = "pc_authz";

fn authz_cookie(value: String, secure: bool) -> cookie::Cookie<'static> {
    cookie::Cookie::build((AUTHZ_COOKIE, value))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .path("/oauth/")
        .max_age(cookie::time::Duration::seconds(oauth::REQUEST_TTL_SECS))
        .build()
}

fn answer(result: identity::Result<Authorization>, status: StatusCode, secure: bool) -> Response {
    match result {
        Ok(Authorization::Redirect(to)) => redirect(status, &to),
        Ok(Authorization::ErrorPage { code }) => {
            redirect(StatusCode::SEE_OTHER, &format!("/u/error?error={code}"))
        }
        Ok(Authorization::SignIn {
            client_id,
            request_id,
            login_hint,
            binding,
        }) => {
            let mut to = format!(
                "/u/sign-in?client_id={}&request={}",
                enc(&client_id),
                enc(&request_id)
            );
            if let Some(h) = login_hint {
                to.push_str(&format!("&login_hint={}", enc(&h)));
            }
            let mut res = redirect(status, &to);
            if let Some(binding) = binding {
                super::edge::append_cookie(&mut res, authz_cookie(binding, secure));
            }
            res
        }
        Err(e) => {
            tracing::error!(error = %app::ssr::error_chain(&e), "authorization failed");
            redirect(StatusCode::SEE_OTHER, "/u/error?error=unavailable")
        }
    }
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    meta: RequestMeta,
    params: AuthorizeParams,
    status: StatusCode,
) -> Response {
    let cookie = cookie_value(headers, USER_COOKIE);
    let imp = cookie_value(headers, IMPERSONATION_COOKIE);
    let result = oauth::authorize(
        &state.identity,
        params,
        oauth::SessionCookies {
            session: cookie.as_deref(),
            impersonation: imp.as_deref(),
        },
        &meta,
        Timestamp::now(),
    )
    .await;
    answer(result, status, state.secure_cookies())
}

async fn authorize_get(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    params: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return redirect(StatusCode::SEE_OTHER, "/u/error?error=invalid_request");
    };
    authorize(&state, &headers, meta, params, StatusCode::FOUND).await
}

async fn authorize_post(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    params: Result<Form<AuthorizeParams>, FormRejection>,
) -> Response {
    let Ok(Form(params)) = params else {
        return redirect(StatusCode::SEE_OTHER, "/u/error?error=invalid_request");
    };
    authorize(&state, &headers, meta, params, StatusCode::SEE_OTHER).await
}

#[derive(Deserialize)]
struct ResumeQuery {
    request: String,
    /// The application whose hosted page the user signed in on.
    client_id: Option<String>,
}

/// Where the hosted sign-in page sends the browser after signing in.
async fn resume(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    query: Result<Query<ResumeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return redirect(StatusCode::SEE_OTHER, "/u/error?error=invalid_request");
    };
    let cookie = cookie_value(&headers, USER_COOKIE);
    let imp = cookie_value(&headers, IMPERSONATION_COOKIE);
    let binding = cookie_value(&headers, AUTHZ_COOKIE);
    let result = oauth::resume(
        &state.identity,
        &q.request,
        binding.as_deref(),
        q.client_id.as_deref(),
        oauth::SessionCookies {
            session: cookie.as_deref(),
            impersonation: imp.as_deref(),
        },
        &meta,
        Timestamp::now(),
    )
    .await;
    answer(result, StatusCode::SEE_OTHER, state.secure_cookies())
}

// ---- Token, revocation, introspection ----

fn oauth_error(e: OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = (
        status,
        axum::Json(json!({ "error": e.error, "error_description": e.description })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis\""),
        );
    }
    cors(no_store(res))
}

/// `client_secret_basic`: both parts are form-encoded before base64 (RFC 6749 §2.3.1).
fn basic_auth(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError {
        error: "invalid_client",
        description: "Malformed client authentication.",
        status: 401,
    };
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest)
        .ok_or_else(malformed)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let form_decode = |s: &str| -> String {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn client_auth(
    headers: &HeaderMap,
    client_id: Option<String>,
    client_secret: Option<String>,
) -> Result<ClientAuth, OAuthError> {
    Ok(ClientAuth {
        basic: basic_auth(headers)?,
        client_id: client_id.filter(|c| !c.is_empty()),
        client_secret: client_secret.filter(|c| !c.is_empty()),
    })
}

fn bad_body() -> Response {
    oauth_error(OAuthError::new(
        "invalid_request",
        "The body must be application/x-www-form-urlencoded.",
    ))
}

async fn token(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    body: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(mut request)) = body else {
        return bad_body();
    };
    let auth = match client_auth(
        &headers,
        request.client_id.take(),
        request.client_secret.take(),
    ) {
        Ok(a) => a,
        Err(e) => return oauth_error(e),
    };
    let now = Timestamp::now();
    match oauth::token(&state.identity, request, auth, &meta, now).await {
        Ok(tokens) => cors(no_store(axum::Json(tokens).into_response())),
        Err(e) => oauth_error(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    token: String,
    #[allow(dead_code)] // accepted and ignored: every kind of token is looked up (RFC 7009 §2.1)
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn revoke(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = body else {
        return bad_body();
    };
    let now = Timestamp::now();
    let client = match client_auth(&headers, form.client_id, form.client_secret) {
        Ok(auth) => oauth::authenticate(&state.identity, &auth, now).await,
        Err(e) => Err(e),
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => return oauth_error(e),
    };
    if form.token.is_empty() {
        return oauth_error(OAuthError::new("invalid_request", "token is required."));
    }
    match oauth::revoke(&state.identity, &client, &form.token, &meta, now).await {
        Ok(()) => cors(no_store(StatusCode::OK.into_response())),
        Err(e) => oauth_error(e.into()),
    }
}

async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = body else {
        return bad_body();
    };
    let now = Timestamp::now();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let result = match bearer {
        // An admin key (staff) may introspect any token.
        Some(key) => match identity::api_keys::authenticate(&state.identity, key, now).await {
            Ok(Some(principal)) => {
                oauth::introspect(
                    &state.identity,
                    Introspector::Staff(&principal),
                    &form.token,
                    now,
                )
                .await
            }
            Ok(None) => return oauth_error(OAuthError::invalid_client()),
            Err(e) => return oauth_error(e.into()),
        },
        None => {
            let client = match client_auth(&headers, form.client_id, form.client_secret) {
                Ok(auth) => oauth::authenticate(&state.identity, &auth, now).await,
                Err(e) => Err(e),
            };
            // Public clients are refused by `introspect` itself (Forbidden → invalid_client).
            match client {
                Ok(c) => {
                    oauth::introspect(&state.identity, Introspector::Client(&c), &form.token, now)
                        .await
                }
                Err(e) => return oauth_error(e),
            }
        }
    };
    match result {
        Ok(body) => cors(no_store(axum::Json(body).into_response())),
        Err(identity::Error::Forbidden) => oauth_error(OAuthError::invalid_client()),
        Err(e) => oauth_error(e.into()),
    }
}

// ---- Userinfo ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserinfoForm {
    access_token: Option<String>,
}

async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Result<Form<UserinfoForm>, FormRejection>,
) -> Response {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_owned());
    let from_body = (method == Method::POST)
        .then(|| body.ok().and_then(|Form(f)| f.access_token))
        .flatten();
    let invalid = |error: &'static str| {
        let mut res = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": error })),
        )
            .into_response();
        let challenge = format!("Bearer error=\"{error}\"");
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        cors(no_store(res))
    };
    let Some(token) = from_header.or(from_body) else {
        return invalid("invalid_request");
    };
    match oauth::userinfo(&state.identity, &token, Timestamp::now()).await {
        Ok(Some(claims)) => cors(no_store(axum::Json(claims).into_response())),
        Ok(None) => invalid("invalid_token"),
        Err(e) => {
            tracing::error!(error = %app::ssr::error_chain(&e), "userinfo failed");
            cors(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

// ---- RP-initiated logout ----

async fn logout(
    state: &AppState,
    headers: &HeaderMap,
    meta: RequestMeta,
    params: EndSessionParams,
    status: StatusCode,
) -> Response {
    let cookie = cookie_value(headers, USER_COOKIE);
    let result = oauth::end_session(
        &state.identity,
        params,
        cookie.as_deref(),
        &meta,
        Timestamp::now(),
    )
    .await;
    let client_query = |c: &Option<String>| {
        c.as_deref()
            .map(|c| format!("?client_id={}", enc(c)))
            .unwrap_or_default()
    };
    match result {
        Ok(EndSession::ErrorPage { code }) => {
            redirect(StatusCode::SEE_OTHER, &format!("/u/error?error={code}"))
        }
        Ok(EndSession::Confirm {
            client_id,
            post_logout_redirect_uri,
            state,
        }) => {
            let mut to = format!("/u/sign-out{}", client_query(&client_id));
            for (k, v) in [
                ("post_logout_redirect_uri", post_logout_redirect_uri),
                ("state", state),
            ] {
                if let Some(v) = v {
                    to.push(if to.contains('?') { '&' } else { '?' });
                    to.push_str(&format!("{k}={}", enc(&v)));
                }
            }
            redirect(status, &to)
        }
        Ok(EndSession::Done {
            redirect: to,
            client_id,
            ended,
        }) => {
            let to = to.unwrap_or_else(|| format!("/u/signed-out{}", client_query(&client_id)));
            let mut res = redirect(status, &to);
            if ended {
                super::hosted::clear_user_cookies(&mut res, state.secure_cookies());
            }
            res
        }
        Err(e) => {
            tracing::error!(error = %app::ssr::error_chain(&e), "logout failed");
            redirect(StatusCode::SEE_OTHER, "/u/error?error=unavailable")
        }
    }
}

async fn logout_get(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    params: Result<Query<EndSessionParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    logout(&state, &headers, meta, params, StatusCode::FOUND).await
}

async fn logout_post(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    params: Result<Form<EndSessionParams>, FormRejection>,
) -> Response {
    let params = params.map(|Form(p)| p).unwrap_or_default();
    logout(&state, &headers, meta, params, StatusCode::SEE_OTHER).await
}
