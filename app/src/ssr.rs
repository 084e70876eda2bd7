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

/// An event's page: its row, the before/after diff, links to what it names, related views.
pub fn audit_detail(r: identity::audit::Record) -> crate::api::audit::AuditDetail {
    use crate::api::audit::{AuditDetail, Change, Link};
    use crate::components::ui::encode;
    let text = |v: Option<&serde_json::Value>| {
        v.filter(|v| !v.is_null()).map(|v| match v.as_str() {
            Some(s) => s.to_owned(),
            None => v.to_string(),
        })
    };
    let (before, after) = (r.detail.get("before"), r.detail.get("after"));
    let mut fields: Vec<String> = [before, after]
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_object())
        .flat_map(|o| o.keys().cloned())
        .collect();
    fields.sort();
    fields.dedup();
    let mut changes: Vec<Change> = fields
        .into_iter()
        .map(|f| Change {
            before: text(before.and_then(|b| b.get(&f))),
            after: text(after.and_then(|a| a.get(&f))),
            field: f,
        })
        .collect();
    changes.sort_by_key(|c| c.before == c.after);
    let mut links = Vec::new();
    let mut link = |label: String, href: String| links.push(Link { label, href });
    match (r.actor_type.as_str(), &r.actor_id) {
        ("user", Some(id)) => link("Actor (user)".into(), format!("/users/{id}")),
        ("staff", Some(_)) => link("Actor (staff)".into(), "/staff".into()),
        _ => {}
    }
    if let (Some(t), Some(id)) = (&r.target_type, &r.target_id) {
        match t.as_str() {
            "user" => link("Target user".into(), format!("/users/{id}")),
            "application" => link("Target application".into(), format!("/applications/{id}")),
            "organization" => link("Target organization".into(), format!("/organizations/{id}")),
            "impersonation" => link("Impersonation".into(), "/impersonation".into()),
            _ => {}
        }
    }
    if let Some(app) = &r.application_id {
        link("Application".into(), format!("/applications/{app}"));
    }
    if let Some(user) = r
        .user_id
        .as_ref()
        .filter(|u| r.target_id.as_ref() != Some(*u))
    {
        link("User".into(), format!("/users/{user}"));
    }
    let mut related = Vec::new();
    if let Some(req) = &r.request_id {
        related.push(Link {
            label: "Same request".into(),
            href: format!("/audit?request={}", encode(req)),
        });
    }
    let imp = match (r.target_type.as_deref(), &r.target_id) {
        (Some("impersonation"), Some(id)) => Some(id.clone()),
        _ => text(r.detail.get("impersonation_id")),
    };
    if let Some(id) = imp {
        related.push(Link {
            label: "Same impersonation".into(),
            href: format!("/audit?target=impersonation:{}", encode(&id)),
        });
    }
    if let Some(sid) = text(r.detail.get("session_id")) {
        related.push(Link {
            label: "Same sign-in session".into(),
            href: format!("/audit?q={}", encode(&sid)),
        });
    }
    let description = identity::audit_catalog::by_name(&r.event)
        .map(|i| i.description.to_owned())
        .unwrap_or_default();
    AuditDetail {
        event_id: r.event_id.clone(),
        category: r.category.clone(),
        description,
        user_agent: r.user_agent.clone(),
        request_id: r.request_id.clone(),
        detail_pretty: serde_json::to_string_pretty(&r.detail).unwrap_or_default(),
        changes,
        links,
        related,
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
        row: audit_row(r),
    }
}

/// One impersonation as the dashboard shows it (with the launch link while it is active).
pub fn imp_row(
    i: identity::impersonation::Impersonation,
    viewer: Option<&str>,
    issuer: &str,
) -> crate::api::impersonation::ImpRow {
    use identity::impersonation::Status;
    let launch_url = (i.status == Status::Active)
        .then(|| i.launch_url(issuer))
        .flatten();
    crate::api::impersonation::ImpRow {
        mine: viewer == Some(i.staff_id.as_str()),
        launch_url,
        id: i.id,
        application_id: i.application_id,
        application_name: i.application_name,
        user_id: i.user_id,
        user_email: i.user_email,
        staff_email: i.staff_email,
        reason: i.reason,
        ticket: i.ticket,
        mode: i.mode.as_str().to_owned(),
        status: i.status.as_str().to_owned(),
        duration_minutes: i.duration_secs / 60,
        requested_at: i.requested_at.rfc3339(),
        started_at: i.started_at.map(identity::Timestamp::rfc3339),
        ends_at: i.ends_at.map(identity::Timestamp::rfc3339),
        ends_at_ms: i.ends_at.map(identity::Timestamp::millis),
        ended_at: i.ended_at.map(identity::Timestamp::rfc3339),
        end_reason: i.end_reason,
        decision_comment: i.decision_comment,
    }
}

// ---- Applications ----

use crate::api::applications::{AppDetail, AppSummary, KeyRow, PolicyRow, SecretRow};
use identity::session_policy::{self, Effective, Overrides, Resolved};

pub fn app_summary(a: &identity::applications::Application) -> AppSummary {
    AppSummary {
        id: a.id.clone(),
        name: a.name.clone(),
        app_type: a.app_type.as_str().to_owned(),
        client_id: a.client_id.clone(),
        status: a.status.as_str().to_owned(),
        is_default: a.is_default,
        created_at: a.created_at.rfc3339(),
    }
}

const POLICY_LABELS: [(&str, &str); 7] = [
    ("access_token_ttl_secs", "Access token lifetime"),
    ("id_token_ttl_secs", "ID token lifetime"),
    ("refresh_tokens", "Refresh tokens"),
    ("refresh_idle_ttl_secs", "Refresh token idle lifetime"),
    (
        "refresh_absolute_ttl_secs",
        "Refresh token absolute lifetime",
    ),
    ("refresh_rotation", "Refresh token rotation"),
    ("session_max_age_secs", "Sign-in session maximum age"),
];

/// One row per policy value: what is in force, where it comes from, and what this layer sets.
fn policy_rows(effective: &Effective, own: &Overrides) -> Vec<PolicyRow> {
    let effective = serde_json::to_value(effective).unwrap_or_default();
    let own = serde_json::to_value(own).unwrap_or_default();
    POLICY_LABELS
        .into_iter()
        .map(|(key, label)| {
            let resolved: Option<Resolved<serde_json::Value>> =
                serde_json::from_value(effective[key].clone()).ok();
            let (value, source) = resolved
                .map(|r| (r.value, r.source))
                .unwrap_or((serde_json::Value::Null, session_policy::Source::Default));
            let is_switch = value.is_boolean();
            let show = |v: &serde_json::Value| match v {
                serde_json::Value::Bool(true) => "on".to_owned(),
                serde_json::Value::Bool(false) => "off".to_owned(),
                serde_json::Value::Number(n) => {
                    session_policy::human_duration(n.as_i64().unwrap_or_default())
                }
                _ => String::new(),
            };
            let own_value = match &own[key] {
                serde_json::Value::Bool(true) => "on".to_owned(),
                serde_json::Value::Bool(false) => "off".to_owned(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            PolicyRow {
                key: key.to_owned(),
                label: label.to_owned(),
                is_switch,
                effective: show(&value),
                source: source.label().to_owned(),
                own: own_value,
                fixed: source == session_policy::Source::Type,
            }
        })
        .collect()
}

/// The environment defaults as rows, resolved for a `web` application (the type only fixes values
/// for other types, which the application pages show).
pub fn environment_policy_rows(env: &Overrides) -> Vec<PolicyRow> {
    let effective = session_policy::resolve(
        identity::applications::AppType::Web,
        &Overrides::default(),
        env,
    );
    policy_rows(&effective, env)
        .into_iter()
        .map(|mut row| {
            if row.source == session_policy::Source::Application.label() {
                row.source = "environment default".to_owned();
            }
            row
        })
        .collect()
}

/// A form's policy fields (`""` inherit, seconds, `on`/`off`) as the JSON patch `identity` takes.
pub fn policy_patch(
    form: &std::collections::BTreeMap<String, String>,
) -> Result<serde_json::Map<String, serde_json::Value>, AppError> {
    let mut patch = serde_json::Map::new();
    for (key, value) in form {
        let Some((field, _)) = POLICY_LABELS.iter().find(|(k, _)| k == key) else {
            return Err(invalid("session_policy", "Unknown session policy field."));
        };
        let value = match value.trim() {
            "" => serde_json::Value::Null,
            "on" => serde_json::Value::Bool(true),
            "off" => serde_json::Value::Bool(false),
            number => match number.parse::<i64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => return Err(invalid(field, "Enter a whole number of seconds.")),
            },
        };
        patch.insert((*field).to_owned(), value);
    }
    Ok(patch)
}

async fn impersonation_settings(
    identity: &identity::Identity,
    principal: &identity::Principal,
    id: &str,
) -> Result<crate::api::impersonation::ImpSettings, AppError> {
    use identity::impersonation as imp;
    let policy = imp::policy(identity, principal, id).await.map_err(fail)?;
    let assigned = imp::assignments(identity, principal, id)
        .await
        .map_err(fail)?;
    let can_assign = principal.can(identity::Action::AssignImpersonators);
    let candidates = if can_assign {
        identity::staff::list(identity, principal)
            .await
            .map_err(fail)?
            .into_iter()
            .filter(|s| {
                identity::authz::allows(s.role, identity::Action::Impersonate)
                    && !assigned.iter().any(|a| a.staff_id == s.id)
            })
            .map(|s| (s.id, format!("{} · {}", s.email, s.role.label())))
            .collect()
    } else {
        Vec::new()
    };
    Ok(crate::api::impersonation::ImpSettings {
        enabled: policy.enabled,
        max_minutes: policy.max_duration_secs / 60,
        require_approval: policy.require_approval,
        mode: policy.mode.as_str().to_owned(),
        notify_user: policy.notify_user,
        assigned: assigned
            .into_iter()
            .map(|a| (a.staff_id, format!("{} · {}", a.email, a.role)))
            .collect(),
        candidates,
        can_edit: principal.can(identity::Action::ManageImpersonationPolicy),
        can_assign,
    })
}

pub async fn app_detail(id: &str) -> Result<AppDetail, AppError> {
    let call = call()?;
    let principal = call.principal()?;
    let identity = &call.identity;
    let app = identity::applications::get(identity, principal, id)
        .await
        .map_err(fail)?;
    let effective = identity::applications::effective_policy(identity, &app)
        .await
        .map_err(fail)?;
    let now = identity::Timestamp::now();
    let secrets = if app.app_type.is_confidential() {
        identity::credentials::list(identity, principal, id)
            .await
            .map_err(fail)?
    } else {
        Vec::new()
    };
    let keys = identity::app_keys::list(identity, principal, id)
        .await
        .map_err(fail)?;
    let roles = identity::roles::list(identity, principal, id)
        .await
        .map_err(fail)?;
    let logouts = identity::logout::deliveries(identity, principal, id, 10)
        .await
        .map_err(fail)?;
    let sessions = identity::users::application_sessions(identity, principal, id, 50, now)
        .await
        .map_err(fail)?;
    let impersonation = impersonation_settings(identity, principal, id).await?;
    let one = |u: &Option<identity::redirect_uris::RedirectUri>| {
        u.as_ref().map(|u| u.as_str().to_owned())
    };
    let all = |u: &[identity::redirect_uris::RedirectUri]| {
        u.iter().map(|u| u.as_str().to_owned()).collect()
    };
    Ok(AppDetail {
        summary: app_summary(&app),
        description: app.description.clone(),
        updated_at: app.updated_at.rfc3339(),
        confidential: app.app_type.is_confidential(),
        redirect_uris: all(&app.redirect_uris),
        default_redirect_uri: one(&app.default_redirect_uri),
        post_logout_redirect_uris: all(&app.post_logout_redirect_uris),
        initiate_login_uri: one(&app.initiate_login_uri),
        backchannel_logout_uri: one(&app.backchannel_logout_uri),
        return_url: one(&app.return_url),
        policy: policy_rows(&effective, &app.session_policy),
        allow_sign_up: app.allow_sign_up,
        logouts: logouts
            .into_iter()
            .map(|l| crate::api::applications::LogoutRow {
                status: l.status.to_owned(),
                attempts: l.attempts,
                created_at: l.created_at.rfc3339(),
                last_error: l.last_error,
            })
            .collect(),
        roles: roles
            .into_iter()
            .map(|r| crate::api::applications::RoleRow {
                id: r.id,
                name: r.name,
                description: r.description,
                permissions: r.permissions,
            })
            .collect(),
        secrets: secrets
            .iter()
            .map(|s| SecretRow {
                id: s.id.clone(),
                display: format!("{}…{}", s.prefix, s.last_four),
                active: s.is_active(now),
                created_at: s.created_at.rfc3339(),
                expires_at: s.expires_at.map(identity::Timestamp::rfc3339),
                last_used_at: s.last_used_at.map(identity::Timestamp::rfc3339),
            })
            .collect(),
        keys: keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.clone(),
                name: k.name.clone(),
                scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                prefix: k.prefix.clone(),
                active: k.is_active(now),
                created_at: k.created_at.rfc3339(),
                expires_at: k.expires_at.map(identity::Timestamp::rfc3339),
                last_used: k.last_used_at.map(|t| match &k.last_used_ip {
                    Some(ip) => format!("{} from {ip}", t.rfc3339()),
                    None => t.rfc3339(),
                }),
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|s| crate::api::applications::AppSessionRow {
                id: s.id,
                user_id: s.user_id,
                email: s.email,
                ip: s.ip.unwrap_or_default(),
                created_at: s.created_at.rfc3339(),
                last_seen_at: s.last_seen_at.rfc3339(),
            })
            .collect(),
        can_revoke_sessions: principal.can(identity::Action::RevokeUserSessions),
        impersonation,
        can_manage: principal.can(identity::Action::ManageApplications),
    })
}

/// The shared body of the application-changing server functions.
pub async fn update_application(
    csrf: &str,
    id: &str,
    change: identity::applications::Change,
) -> Result<(), AppError> {
    let call = call()?;
    let principal = call.mutation(csrf)?;
    identity::applications::update(
        &call.identity,
        principal,
        &call.meta,
        id,
        change,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(fail)
}

pub fn hosted(app: &identity::applications::Application) -> crate::api::hosted::HostedAppInfo {
    crate::api::hosted::HostedAppInfo {
        client_id: app.client_id.clone(),
        name: app.name.clone(),
        allow_sign_up: app.allow_sign_up,
        continue_url: app
            .return_url
            .as_ref()
            .or(app.default_redirect_uri.as_ref())
            .map(|u| u.as_str().to_owned()),
    }
}

// ---- Users ----

use crate::api::users::{
    Choice, GrantRow, MembershipRow, OrgRow, SessionRow, UserChoices, UserDetail, UserRow,
};

pub fn user_row(u: &identity::users::User) -> UserRow {
    UserRow {
        id: u.id.clone(),
        email: u.email.to_string(),
        name: u.name.clone(),
        status: u.status.as_str().to_owned(),
        email_verified: u.email_verified,
        created_at: u.created_at.rfc3339(),
        last_sign_in_at: u.last_sign_in_at.map(identity::Timestamp::rfc3339),
    }
}

pub fn org_row(o: &identity::organizations::Organization) -> OrgRow {
    OrgRow {
        id: o.id.clone(),
        name: o.name.clone(),
        member_count: o.member_count,
        created_at: o.created_at.rfc3339(),
    }
}

/// Applications (first 200 by name) as choices.
pub(crate) async fn application_choices(
    identity: &identity::Identity,
    principal: &Principal,
) -> Result<Vec<identity::applications::Application>, AppError> {
    let page = identity::applications::list(
        identity,
        principal,
        &identity::applications::ListQuery {
            sort: identity::applications::Sort::Name,
            limit: 200,
            ..Default::default()
        },
    )
    .await
    .map_err(fail)?;
    Ok(page.items)
}

pub async fn user_filters() -> Result<UserChoices, AppError> {
    let call = call()?;
    let principal = call.principal()?;
    let orgs = identity::organizations::list(&call.identity, principal)
        .await
        .map_err(fail)?;
    let apps = application_choices(&call.identity, principal).await?;
    let roles = identity::roles::all(&call.identity, principal)
        .await
        .map_err(fail)?;
    Ok(UserChoices {
        roles: roles
            .iter()
            .map(|(r, app)| Choice {
                id: format!("{}/{}", r.application_id, r.id),
                label: format!("{app} · {}", r.name),
            })
            .collect(),
        organizations: orgs
            .iter()
            .map(|o| Choice {
                id: o.id.clone(),
                label: o.name.clone(),
            })
            .collect(),
        applications: apps
            .iter()
            .filter(|a| a.app_type != identity::applications::AppType::M2m)
            .map(|a| Choice {
                id: a.id.clone(),
                label: a.name.clone(),
            })
            .collect(),
        can_manage: principal.can(identity::Action::ManageUsers),
    })
}

pub async fn user_detail(id: &str) -> Result<UserDetail, AppError> {
    let call = call()?;
    let principal = call.principal()?;
    let identity = &call.identity;
    let now = identity::Timestamp::now();
    let user = identity::users::get(identity, principal, id)
        .await
        .map_err(fail)?;
    let memberships = identity::organizations::of_user(identity, principal, id)
        .await
        .map_err(fail)?;
    let grants = identity::roles::of_user(identity, principal, id)
        .await
        .map_err(fail)?;
    let sessions = identity::users::sessions(identity, principal, id, now)
        .await
        .map_err(fail)?;
    let events = identity::audit::for_user(identity, principal, id, 20)
        .await
        .map_err(fail)?;
    let impersonations = identity::impersonation::list(
        identity,
        principal,
        &identity::impersonation::Filter {
            user_id: Some(id.to_owned()),
            ..Default::default()
        },
        50,
    )
    .await
    .map_err(fail)?;
    let filters = user_filters().await?;
    Ok(UserDetail {
        user: user_row(&user),
        metadata: user.metadata.to_string(),
        memberships: memberships
            .into_iter()
            .map(|m| MembershipRow {
                organization_id: m.organization_id,
                organization: m.organization_name,
                role: m.role,
            })
            .collect(),
        grants: grants
            .into_iter()
            .map(|g| GrantRow {
                application_id: g.role.application_id.clone(),
                application: g.application_name,
                role_id: g.role.id,
                role: g.role.name,
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                id: s.id,
                application: s.application_name.unwrap_or_else(|| "—".to_owned()),
                used_by: s.applications.join(", "),
                ip: s.ip.unwrap_or_default(),
                created_at: s.created_at.rfc3339(),
                last_seen_at: s.last_seen_at.rfc3339(),
            })
            .collect(),
        events: events.into_iter().map(audit_row).collect(),
        impersonations: impersonations
            .into_iter()
            .map(|i| imp_row(i, principal.staff_id(), &identity.settings().issuer))
            .collect(),
        organizations: filters.organizations,
        roles: filters.roles,
        applications: filters.applications,
        can_manage: principal.can(identity::Action::ManageUsers),
        can_revoke: principal.can(identity::Action::RevokeUserSessions),
    })
}

pub async fn update_user(
    csrf: &str,
    id: &str,
    change: identity::users::Change,
) -> Result<(), AppError> {
    let call = call()?;
    let principal = call.mutation(csrf)?;
    identity::users::update(
        &call.identity,
        principal,
        &call.meta,
        id,
        change,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(fail)
}

/// The newest event's sequence number.
pub(crate) async fn audit_head(identity: &identity::Identity) -> Result<i64, AppError> {
    identity::audit::head_seq(identity).await.map_err(fail)
}

/// A stream as the dashboard lists it; `head` is the newest event's number.
pub fn stream_row(
    s: identity::audit_streams::Stream,
    head: i64,
) -> crate::api::audit_streams::StreamRow {
    let f = &s.filter;
    let parts: Vec<String> = [
        ("category", &f.category),
        ("event", &f.event),
        ("application", &f.application_id),
        ("user", &f.user_id),
        ("actor", &f.actor_type),
        ("outcome", &f.outcome),
        ("text", &f.text),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("{k} {v}"))
    })
    .collect();
    crate::api::audit_streams::StreamRow {
        id: s.id,
        name: s.name,
        url: s.url,
        filter: if parts.is_empty() {
            "every event".to_owned()
        } else {
            parts.join(", ")
        },
        status: s.status,
        secret_hint: s.secret_hint,
        cursor_seq: s.cursor_seq,
        behind: (head - s.cursor_seq).max(0),
        attempts: s.attempts,
        next_attempt_at: s.next_attempt_at.rfc3339(),
        last_error: s.last_error,
        last_success_at: s.last_success_at.map(identity::Timestamp::rfc3339),
    }
}

/// A stream's new secret, for the one-time dialog.
/// The stream form's fields over `base` (the stream's filter, whose API-only fields stay); an
/// empty select means any.
pub fn stream_input(
    settings: crate::api::audit_streams::StreamSettings,
    base: identity::audit::Filter,
) -> identity::audit_streams::Input {
    let some = |v: String| Some(v).filter(|v| !v.trim().is_empty());
    identity::audit_streams::Input {
        name: settings.name,
        url: settings.url,
        filter: identity::audit::Filter {
            category: some(settings.category),
            event: some(settings.event),
            application_id: some(settings.application),
            outcome: some(settings.outcome),
            ..base
        },
    }
}

/// Applies `change` to stream `id` (the edit form, pause and resume).
pub async fn change_stream(
    call: &Call,
    principal: &Principal,
    id: &str,
    change: &identity::audit_streams::Change,
) -> Result<(), AppError> {
    identity::audit_streams::update(
        &call.identity,
        principal,
        &call.meta,
        id,
        change,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(fail)
}

/// A stream as the dashboard's form shows it.
pub fn stream_settings(
    s: &identity::audit_streams::Stream,
) -> crate::api::audit_streams::StreamSettings {
    let f = &s.filter;
    crate::api::audit_streams::StreamSettings {
        name: s.name.clone(),
        url: s.url.clone(),
        category: f.category.clone().unwrap_or_default(),
        event: f.event.clone().unwrap_or_default(),
        application: f.application_id.clone().unwrap_or_default(),
        outcome: f.outcome.clone().unwrap_or_default(),
    }
}

/// The categories, events and applications the stream form offers.
pub async fn stream_filter_choices(
    identity: &identity::Identity,
    principal: &identity::Principal,
) -> Result<crate::api::audit_streams::FilterChoices, AppError> {
    let apps = application_choices(identity, principal).await?;
    Ok(crate::api::audit_streams::FilterChoices {
        categories: identity::audit_catalog::CATEGORIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        events: identity::audit_catalog::all()
            .into_iter()
            .map(|e| e.name.to_owned())
            .collect(),
        applications: apps.into_iter().map(|a| (a.id, a.name)).collect(),
    })
}

pub fn new_secret(c: identity::audit_streams::Created) -> crate::api::audit_streams::NewSecret {
    crate::api::audit_streams::NewSecret {
        stream_id: c.stream.id,
        secret: c.secret,
    }
}

pub fn delivery_row(
    d: identity::audit_streams::Delivery,
) -> crate::api::audit_streams::DeliveryRow {
    crate::api::audit_streams::DeliveryRow {
        id: d.id,
        kind: d.kind,
        status: d.status,
        first_seq: d.first_seq,
        last_seq: d.last_seq,
        events: d.events,
        attempt: d.attempt,
        status_code: d.status_code,
        error: d.error,
        duration_ms: d.duration_ms,
        requested_by: d.requested_by,
        created_at: d.created_at.rfc3339(),
    }
}
