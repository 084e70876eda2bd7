//! The hosted pages' form endpoints (`/u/auth/*`) for end users: sign in, sign up, forgot and reset
//! password, accept an invitation, sign out. Plain form POSTs answered with a 303, so they work
//! without JavaScript. Each carries the application it was started from; when done, the user goes
//! to `/u/continue`, which sends them on to that application's configured return URL (never to a
//! URL taken from the request).

use super::AppState;
use super::edge::append_cookie;
use app::ssr::RequestContext;
use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use cookie::{Cookie, SameSite};
use identity::users::{self, NewUserSession};
use identity::{Error, Timestamp};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The end user's sign-in session on the hosted pages; separate from the staff session.
pub const USER_COOKIE: &str = "pc_user";
/// A support person's impersonation session (see `identity::impersonation`); counts only for the
/// impersonated application.
pub const IMPERSONATION_COOKIE: &str = "pc_imp";

pub fn router(state: AppState) -> Router<AppState> {
    // Account changes are refused in a browser that is impersonating someone.
    let account = Router::new()
        .route("/u/auth/sign-up", post(sign_up))
        .route("/u/auth/forgot-password", post(forgot_password))
        .route("/u/auth/reset-password", post(reset_password))
        .route("/u/auth/accept-invitation", post(accept_invitation))
        .layer(axum::middleware::from_fn_with_state(
            state,
            not_impersonating,
        ));
    Router::new()
        .route("/u/auth/sign-in", post(sign_in))
        .route("/u/auth/sign-out", post(sign_out))
        .merge(account)
}

async fn not_impersonating(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = super::edge::cookie_value(req.headers(), IMPERSONATION_COOKIE) {
        match identity::impersonation::is_live(&state.identity, &token, Timestamp::now()).await {
            Ok(false) => {}
            Ok(true) => return Redirect::to("/u/error?error=impersonating").into_response(),
            Err(e) => {
                logged(&e, "impersonation check");
                return Redirect::to("/u/error?error=unavailable").into_response();
            }
        }
    }
    next.run(req).await
}

pub(crate) fn impersonation_cookie(
    value: String,
    max_age_secs: i64,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build((IMPERSONATION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs.max(0)))
        .build()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct HostedForm {
    client_id: String,
    token: String,
    email: String,
    name: String,
    password: String,
    password_confirm: String,
    csrf: String,
    /// The pending authorization request a sign-in or sign-up continues.
    request: String,
    /// RP-initiated logout confirmed on the sign-out page: where to go next (checked again).
    post_logout_redirect_uri: String,
    state: String,
}

/// Everything but RFC 3986 unreserved characters is encoded (client IDs and tokens pass unchanged).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn enc(v: &str) -> String {
    utf8_percent_encode(v, QUERY_VALUE).to_string()
}

/// Back to a hosted page with a stable error code (the page maps codes to messages; nothing from
/// the request is reflected).
fn back(page: &str, key: &str, value: &str, code: &str) -> Response {
    Redirect::to(&format!(
        "/u/{page}?{key}={}&error={}",
        enc(value),
        enc(code)
    ))
    .into_response()
}

fn form_ok(rc: &RequestContext, submitted: &str) -> bool {
    !submitted.is_empty() && identity::secret::constant_time_eq(submitted, &rc.form_token)
}

pub(crate) fn user_cookie(value: String, max_age_secs: i64, secure: bool) -> Cookie<'static> {
    Cookie::build((USER_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        // The authorization endpoint (`/oauth/…`) reads it too: one sign-in session for every app.
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
}

/// Back to the sign-in or sign-up page with an error, keeping the pending authorization request.
fn back_keeping(page: &str, form: &HostedForm, client_id: &str, code: &str) -> Response {
    let mut to = format!("/u/{page}?client_id={}&error={}", enc(client_id), enc(code));
    if !form.request.is_empty() {
        to.push_str(&format!("&request={}", enc(&form.request)));
    }
    Redirect::to(&to).into_response()
}

/// Signed in: on to the authorization request that sent the user here, or to the application's
/// return URL.
/// Clears the sign-in session cookie, and the one earlier versions set on `Path=/u`.
pub(crate) fn clear_user_cookies(res: &mut Response, secure: bool) {
    append_cookie(res, user_cookie(String::new(), 0, secure));
    let mut legacy = user_cookie(String::new(), 0, secure);
    legacy.set_path("/u");
    append_cookie(res, legacy);
}

fn signed_in(
    state: &AppState,
    client_id: &str,
    request: &str,
    session: NewUserSession,
    notice: &str,
) -> Response {
    let to = if request.is_empty() {
        format!("/u/continue?client_id={}&notice={notice}", enc(client_id))
    } else {
        format!(
            "/oauth/authorize/resume?request={}&client_id={}",
            enc(request),
            enc(client_id)
        )
    };
    let mut res = Redirect::to(&to).into_response();
    let max_age = (session.expires_at.millis() - Timestamp::now().millis()) / 1000;
    let mut legacy = user_cookie(String::new(), 0, state.secure_cookies());
    legacy.set_path("/u");
    append_cookie(&mut res, legacy);
    append_cookie(
        &mut res,
        user_cookie(
            session.token.expose_secret().to_owned(),
            max_age.max(0),
            state.secure_cookies(),
        ),
    );
    res
}

fn logged(e: &Error, what: &str) {
    if matches!(e, Error::Internal { .. }) {
        tracing::error!(error = %app::ssr::error_chain(e), what, "hosted page action failed");
    }
}

/// The stable code a page shows for an error (internal failures become `unavailable`).
fn code_of(e: &Error) -> &'static str {
    match e {
        Error::Internal { .. } => "unavailable",
        Error::InvalidCredentials => "invalid",
        Error::Throttled { .. } => "throttled",
        other => other.code(),
    }
}

async fn sign_in(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(mut form): Form<HostedForm>,
) -> Response {
    let page = "sign-in";
    if !form_ok(&rc, &form.csrf) {
        return back_keeping(page, &form, &form.client_id, "csrf");
    }
    let now = Timestamp::now();
    let app = match users::hosted_application(&state.identity, &form.client_id).await {
        Ok(app) => app,
        Err(e) => return back("error", "client_id", &form.client_id, code_of(&e)),
    };
    let result = users::sign_in(
        &state.identity,
        &rc.meta,
        &app,
        &form.email,
        SecretString::from(std::mem::take(&mut form.password)),
        now,
    )
    .await;
    state.metrics.sign_in(result.is_ok());
    match result {
        Ok(session) => signed_in(&state, &app.client_id, &form.request, session, "signed_in"),
        Err(e) => {
            logged(&e, "sign-in");
            back_keeping(page, &form, &app.client_id, code_of(&e))
        }
    }
}

async fn sign_up(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(mut form): Form<HostedForm>,
) -> Response {
    let page = "sign-up";
    if !form_ok(&rc, &form.csrf) {
        return back_keeping(page, &form, &form.client_id, "csrf");
    }
    if form.password != form.password_confirm {
        return back_keeping(page, &form, &form.client_id, "password_mismatch");
    }
    let app = match users::hosted_application(&state.identity, &form.client_id).await {
        Ok(app) => app,
        Err(e) => return back("error", "client_id", &form.client_id, code_of(&e)),
    };
    match users::sign_up(
        &state.identity,
        &rc.meta,
        &app,
        &form.email,
        &form.name,
        SecretString::from(std::mem::take(&mut form.password)),
        Timestamp::now(),
    )
    .await
    {
        Ok(session) => signed_in(&state, &app.client_id, &form.request, session, "signed_up"),
        Err(e) => {
            logged(&e, "sign-up");
            back_keeping(page, &form, &app.client_id, code_of(&e))
        }
    }
}

async fn forgot_password(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(form): Form<HostedForm>,
) -> Response {
    let page = "forgot-password";
    if !form_ok(&rc, &form.csrf) {
        return back(page, "client_id", &form.client_id, "csrf");
    }
    let app = match users::hosted_application(&state.identity, &form.client_id).await {
        Ok(app) => app,
        Err(e) => return back("error", "client_id", &form.client_id, code_of(&e)),
    };
    if identity::email::Email::parse(&form.email).is_err() {
        return back(page, "client_id", &app.client_id, "invalid_email");
    }
    // The work (lookup, link, mail, audit) runs after the answer, so the answer takes the same time
    // whether or not the email belongs to someone.
    let (identity, meta, public_url) = (
        state.identity.clone(),
        rc.meta.clone(),
        state.public_url.clone(),
    );
    let client_id = app.client_id.clone();
    tokio::spawn(async move {
        if let Err(e) = users::request_password_reset(
            &identity,
            &meta,
            &app,
            &form.email,
            &public_url,
            Timestamp::now(),
        )
        .await
        {
            logged(&e, "forgot password");
        }
    });
    Redirect::to(&format!(
        "/u/forgot-password?client_id={}&notice=sent",
        enc(&client_id)
    ))
    .into_response()
}

async fn finish_link(
    state: &AppState,
    rc: &RequestContext,
    form: HostedForm,
    page: &str,
    accept: bool,
) -> Response {
    if !form_ok(rc, &form.csrf) {
        return back(page, "token", &form.token, "csrf");
    }
    if form.password != form.password_confirm {
        return back(page, "token", &form.token, "password_mismatch");
    }
    let password = SecretString::from(form.password);
    let now = Timestamp::now();
    let result = if accept {
        users::accept_invitation(&state.identity, &rc.meta, &form.token, password, now).await
    } else {
        users::reset_password(&state.identity, &rc.meta, &form.token, password, now).await
    };
    match result {
        Ok((_, app)) => Redirect::to(&format!(
            "/u/continue?client_id={}&notice={}",
            enc(&app.client_id),
            if accept {
                "invitation_accepted"
            } else {
                "password_reset"
            }
        ))
        .into_response(),
        Err(e) => {
            logged(&e, page);
            back(page, "token", &form.token, code_of(&e))
        }
    }
}

async fn reset_password(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(form): Form<HostedForm>,
) -> Response {
    finish_link(&state, &rc, form, "reset-password", false).await
}

async fn accept_invitation(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(form): Form<HostedForm>,
) -> Response {
    finish_link(&state, &rc, form, "accept-invitation", true).await
}

async fn sign_out(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    headers: axum::http::HeaderMap,
    Form(form): Form<HostedForm>,
) -> Response {
    if !form_ok(&rc, &form.csrf) {
        return back("signed-out", "client_id", &form.client_id, "csrf");
    }
    if let Some(token) = super::edge::cookie_value(&headers, USER_COOKIE)
        && let Err(e) = users::sign_out(&state.identity, &rc.meta, &token, Timestamp::now()).await
    {
        logged(&e, "sign-out");
    }
    let next = identity::oauth::post_logout_target(
        &state.identity,
        &form.client_id,
        Some(form.post_logout_redirect_uri.as_str()),
        Some(form.state.as_str()),
        Timestamp::now(),
    )
    .await
    .unwrap_or_else(|e| {
        logged(&e, "post-logout redirect");
        None
    })
    .unwrap_or_else(|| format!("/u/signed-out?client_id={}", enc(&form.client_id)));
    let mut res = Redirect::to(&next).into_response();
    clear_user_cookies(&mut res, state.secure_cookies());
    res
}
