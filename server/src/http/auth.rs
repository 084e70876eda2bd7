//! The dashboard's credential endpoints: plain form POSTs, so they work without JavaScript, each
//! answered with a 303. Sign-in failures all show one generic message.

use super::AppState;
use super::edge::{append_cookie, clear_session_cookie, session_cookie};
use app::ssr::RequestContext;
use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use identity::{Error, Timestamp};
use secrecy::SecretString;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/accept-invite", post(accept_invite))
        .route("/auth/impersonations/start", post(start_impersonation))
        .route(
            "/audit/export",
            axum::routing::get(super::audit_export::dashboard_export),
        )
        .route(
            "/audit/export/signature",
            axum::routing::get(super::audit_export::dashboard_signature),
        )
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// Starts an approved impersonation in this browser: the `pc_imp` cookie carries its own sign-in
/// session, then the Impersonation page offers the link into the application (a plain link, since
/// the dashboard's CSP keeps form posts on our origin).
async fn start_impersonation(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(form): Form<StartForm>,
) -> Response {
    let Some(current) = rc.current.as_ref() else {
        return Redirect::to("/login").into_response();
    };
    if !identity::secret::constant_time_eq(&form.csrf, &current.csrf_token) {
        return Redirect::to("/impersonation?error=csrf_failed").into_response();
    }
    let now = Timestamp::now();
    match identity::impersonation::start(
        &state.identity,
        &current.principal,
        &rc.meta,
        &form.id,
        now,
    )
    .await
    {
        Ok(started) => {
            let ends = started
                .impersonation
                .ends_at
                .map_or(0, |e| (e.millis() - now.millis()) / 1000);
            let mut res = Redirect::to(&format!(
                "/impersonation?started={}",
                super::hosted::enc(&started.impersonation.id)
            ))
            .into_response();
            append_cookie(
                &mut res,
                super::hosted::impersonation_cookie(
                    started.session_token,
                    ends,
                    state.secure_cookies(),
                ),
            );
            res
        }
        Err(e @ Error::Internal { .. }) => {
            tracing::error!(error = %app::ssr::error_chain(&e), "starting an impersonation failed");
            Redirect::to("/impersonation?error=unavailable").into_response()
        }
        Err(e) => Redirect::to(&format!("/impersonation?error={}", e.code())).into_response(),
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

fn form_token_ok(rc: &RequestContext, submitted: &str) -> bool {
    !submitted.is_empty() && identity::secret::constant_time_eq(submitted, &rc.form_token)
}

async fn login(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(form): Form<LoginForm>,
) -> Response {
    if !form_token_ok(&rc, &form.csrf) {
        return Redirect::to("/login?error=csrf").into_response();
    }
    let result = identity::sessions::sign_in(
        &state.identity,
        &rc.meta,
        &form.email,
        SecretString::from(form.password),
        Timestamp::now(),
    )
    .await;
    state.metrics.sign_in(result.is_ok());
    match result {
        Ok(session) => {
            let mut res = Redirect::to("/").into_response();
            let max_age = state.identity.settings().session_absolute_secs;
            use secrecy::ExposeSecret;
            append_cookie(
                &mut res,
                session_cookie(
                    session.token.expose_secret().to_owned(),
                    max_age,
                    state.secure_cookies(),
                ),
            );
            res
        }
        Err(Error::Throttled { .. }) => Redirect::to("/login?error=throttled").into_response(),
        Err(Error::InvalidCredentials) => Redirect::to("/login?error=invalid").into_response(),
        Err(e) => {
            tracing::error!(error = %app::ssr::error_chain(&e), "sign-in failed");
            Redirect::to("/login?error=unavailable").into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(current) = rc.current.as_ref() else {
        return Redirect::to("/login").into_response();
    };
    if !identity::secret::constant_time_eq(&form.csrf, &current.csrf_token) {
        return Redirect::to("/?error=csrf").into_response();
    }
    if let Err(e) =
        identity::sessions::sign_out(&state.identity, current, &rc.meta, Timestamp::now()).await
    {
        tracing::error!(error = %app::ssr::error_chain(&e), "sign-out failed");
        return Redirect::to("/?error=unavailable").into_response();
    }
    let mut res = Redirect::to("/login?notice=signed_out").into_response();
    append_cookie(&mut res, clear_session_cookie(state.secure_cookies()));
    res
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf: String,
}

async fn accept_invite(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    Form(form): Form<AcceptForm>,
) -> Response {
    let back = |message: &str| {
        // Percent-encoded (not `+` for spaces): the router decodes query values that way.
        let enc = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let query = format!("token={}&error={}", enc(&form.token), enc(message));
        Redirect::to(&format!("/accept-invite?{query}")).into_response()
    };
    if !form_token_ok(&rc, &form.csrf) {
        return back("This form has expired. Please try again.");
    }
    if form.password != form.password_confirm {
        return back("The two passwords do not match.");
    }
    match identity::staff::accept_invitation(
        &state.identity,
        &rc.meta,
        &form.token,
        SecretString::from(form.password.clone()),
        Timestamp::now(),
    )
    .await
    {
        Ok(_) => Redirect::to("/login?notice=invitation_accepted").into_response(),
        Err(e @ Error::Internal { .. }) => {
            tracing::error!(error = %app::ssr::error_chain(&e), "accepting an invitation failed");
            back("Something went wrong on our side.")
        }
        Err(e) => back(&e.public_message()),
    }
}
