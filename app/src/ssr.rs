//! Server-side glue for server functions: what the HTTP edge hands over, the one authorization entry
//! point, and the mapping of `identity` types and errors into the shared DTOs.

use crate::api::{AppError, AuditRow, Invited, StaffRow};
use identity::sessions::Current;
use identity::{Identity, Principal, RequestMeta};
use leptos::prelude::*;
use secrecy::ExposeSecret;

/// Provided as Leptos context by the server for every page render and server function.
#[derive(Clone)]
pub struct ServerCtx {
    pub identity: Identity,
    pub public_url: String,
}

/// What the HTTP edge learned about a request, stored in its extensions by the server's middleware.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub current: Option<Current>,
    pub meta: RequestMeta,
    /// The double-submit token of the `pc_csrf` cookie, for signed-out forms.
    pub form_token: String,
    /// The nonce the Content-Security-Policy header allows inline scripts with.
    pub csp_nonce: String,
}

/// Makes Leptos put the request's CSP nonce on the hydration scripts.
pub fn provide_csp_nonce() {
    let nonce = use_context::<http::request::Parts>().and_then(|parts| {
        parts
            .extensions
            .get::<RequestContext>()
            .map(|rc| rc.csp_nonce.clone())
    });
    if let Some(nonce) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// Everything a server function needs about its call.
pub struct Call {
    pub identity: Identity,
    pub public_url: String,
    pub current: Option<Current>,
    pub meta: RequestMeta,
    pub form_token: String,
}

pub fn call() -> Result<Call, AppError> {
    let ctx = use_context::<ServerCtx>().ok_or_else(|| internal("server context missing"))?;
    let parts =
        use_context::<http::request::Parts>().ok_or_else(|| internal("request parts missing"))?;
    let rc = parts
        .extensions
        .get::<RequestContext>()
        .cloned()
        .ok_or_else(|| internal("request context missing"))?;
    Ok(Call {
        identity: ctx.identity,
        public_url: ctx.public_url,
        current: rc.current,
        meta: rc.meta,
        form_token: rc.form_token,
    })
}

impl Call {
    /// The signed-in principal, or 401. Identity functions then check the action (403).
    pub fn principal(&self) -> Result<&Principal, AppError> {
        self.current
            .as_ref()
            .map(|c| &c.principal)
            .ok_or_else(|| fail(identity::Error::Unauthenticated))
    }

    /// As [`Call::principal`], for a mutation: the session's CSRF token must match (403 otherwise).
    pub fn mutation(&self, csrf: &str) -> Result<&Principal, AppError> {
        let current = self
            .current
            .as_ref()
            .ok_or_else(|| fail(identity::Error::Unauthenticated))?;
        if !identity::secret::constant_time_eq(csrf, &current.csrf_token) {
            set_status(http::StatusCode::FORBIDDEN);
            return Err(AppError::new(
                "csrf_failed",
                "This form has expired. Reload the page and try again.",
            ));
        }
        Ok(&current.principal)
    }
}

fn set_status(status: http::StatusCode) {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(status);
    }
}

fn internal(what: &'static str) -> AppError {
    tracing::error!(what, "server function context");
    set_status(http::StatusCode::INTERNAL_SERVER_ERROR);
    AppError::new("internal", "Something went wrong on our side.")
}

pub fn invalid(field: &str, message: &str) -> AppError {
    set_status(http::StatusCode::UNPROCESSABLE_ENTITY);
    AppError {
        code: "invalid_input".to_owned(),
        message: message.to_owned(),
        field: Some(field.to_owned()),
    }
}

/// Maps an identity error to the client: status code, stable code, safe message. Internal errors
/// are logged here with their cause chain and answered opaquely.
pub fn fail(err: identity::Error) -> AppError {
    use identity::Error as E;
    let status = match &err {
        E::Invalid { .. } => http::StatusCode::UNPROCESSABLE_ENTITY,
        E::NotFound => http::StatusCode::NOT_FOUND,
        E::Unauthenticated | E::InvalidCredentials => http::StatusCode::UNAUTHORIZED,
        E::Forbidden => http::StatusCode::FORBIDDEN,
        E::Throttled { .. } => http::StatusCode::TOO_MANY_REQUESTS,
        E::Conflict { .. } => http::StatusCode::CONFLICT,
        E::Internal { .. } => {
            tracing::error!(error = %error_chain(&err), "server function failed");
            http::StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    set_status(status);
    AppError {
        code: err.code().to_owned(),
        message: err.public_message(),
        field: err.field().map(str::to_owned),
    }
}

/// "context: cause: cause…" for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The shared body of the staff-changing server functions.
pub async fn update_staff(
    csrf: &str,
    staff_id: &str,
    change: identity::staff::Change,
) -> Result<StaffRow, AppError> {
    let call = call()?;
    let principal = call.mutation(csrf)?;
    identity::staff::update(
        &call.identity,
        principal,
        &call.meta,
        staff_id,
        change,
        identity::Timestamp::now(),
    )
    .await
    .map(staff_row)
    .map_err(fail)
}

pub fn staff_row(s: identity::staff::Staff) -> StaffRow {
    StaffRow {
        id: s.id,
        email: s.email.to_string(),
        role: s.role.as_str().to_owned(),
        status: s.status.as_str().to_owned(),
        created_at: s.created_at.rfc3339(),
    }
}

pub fn invited(public_url: &str, inv: identity::staff::Invitation) -> Invited {
    Invited {
        email: inv.staff.email.to_string(),
        role: inv.staff.role.as_str().to_owned(),
        link: format!(
            "{}/accept-invite?token={}",
            public_url.trim_end_matches('/'),
            inv.token.expose_secret()
        ),
        expires_at: inv.expires_at.rfc3339(),
    }
}

pub fn audit_row(r: identity::audit::Record) -> AuditRow {
    AuditRow {
        seq: r.seq,
        event: r.event,
        outcome: r.outcome,
        actor: match (r.actor_label, r.actor_id) {
            (Some(label), _) => format!("{}: {label}", r.actor_type),
            (None, Some(id)) => format!("{}: {id}", r.actor_type),
            (None, None) => r.actor_type,
        },
        target: r
            .target_id
            .map(|id| format!("{}: {id}", r.target_type.unwrap_or_default())),
        ip: r.ip,
        detail: r.detail.to_string(),
        created_at: r.created_at.rfc3339(),
    }
}
