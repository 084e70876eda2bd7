//! Server functions of the Impersonation page, the application's Impersonation tab and the banner.
//! Each authorizes (inside the `identity` call), parses, calls `identity`, and maps the result.
//! Starting an impersonation is a plain form POST (`/auth/impersonations/start`): it sets a cookie.

use super::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One impersonation as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpRow {
    pub id: String,
    pub application_id: String,
    pub application_name: String,
    pub user_id: String,
    pub user_email: String,
    pub staff_email: String,
    pub reason: String,
    pub ticket: Option<String>,
    pub mode: String,
    pub status: String,
    pub duration_minutes: i64,
    pub requested_at: String,
    pub started_at: Option<String>,
    pub ends_at: Option<String>,
    /// Milliseconds since the epoch, for the countdown.
    pub ends_at_ms: Option<i64>,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub decision_comment: Option<String>,
    /// The viewer asked for it.
    pub mine: bool,
    /// Where to open the application (its initiate-login URI), once started.
    pub launch_url: Option<String>,
}

/// An application the viewer may impersonate in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedApp {
    pub id: String,
    pub name: String,
    pub max_minutes: i64,
    pub require_approval: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpPage {
    /// The viewer's own open impersonation (pending, approved or active).
    pub mine: Option<ImpRow>,
    pub active: Vec<ImpRow>,
    /// Requests waiting for a decision (for approvers: not their own).
    pub pending: Vec<ImpRow>,
    pub history: Vec<ImpRow>,
    pub applications: Vec<AllowedApp>,
    pub can_supervise: bool,
    pub now_ms: i64,
}

/// The banner every dashboard page shows while the viewer has an impersonation open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Banner {
    pub id: String,
    pub user_email: String,
    pub application_name: String,
    pub status: String,
    pub ends_at: Option<String>,
}

/// An application's impersonation settings (the application page's Impersonation tab).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpSettings {
    pub enabled: bool,
    pub max_minutes: i64,
    pub require_approval: bool,
    pub mode: String,
    pub notify_user: bool,
    /// (staff id, "email · role")
    pub assigned: Vec<(String, String)>,
    /// Staff who could be assigned (owners see them).
    pub candidates: Vec<(String, String)>,
    pub can_edit: bool,
    pub can_assign: bool,
}

/// The Impersonation page: the viewer's own, the active ones, the requests to decide, the history
/// (filtered by status, application and user).
#[server(prefix = "/rpc", endpoint = "impersonation_page")]
pub async fn impersonation_page(
    status: Option<String>,
    application_id: Option<String>,
    user: Option<String>,
) -> Result<ImpPage, AppError> {
    use identity::impersonation::{self as imp, Filter};
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let identity = &call.identity;
    let now = identity::Timestamp::now();
    let viewer = principal.staff_id();
    let issuer = identity.settings().issuer.clone();
    let list = |filter: Filter, limit| async move {
        imp::list(identity, principal, &filter, limit)
            .await
            .map_err(crate::ssr::fail)
    };
    let by_status = |s: &str| Filter {
        status: Some(s.to_owned()),
        ..Filter::default()
    };
    let active = list(by_status("active"), 100).await?;
    let can_supervise = principal.can(identity::Action::SuperviseImpersonations);
    let pending = if can_supervise {
        list(by_status("pending"), 100).await?
    } else {
        Vec::new()
    };
    let history = list(
        Filter {
            status: status.filter(|s| !s.is_empty()),
            application_id: application_id.filter(|s| !s.is_empty()),
            user_id: user.filter(|s| !s.is_empty()),
            staff_id: None,
        },
        100,
    )
    .await?;
    let mine = imp::open_for(identity, principal, now)
        .await
        .map_err(crate::ssr::fail)?;
    let applications = imp::allowed_applications(identity, principal)
        .await
        .map_err(crate::ssr::fail)?
        .into_iter()
        .map(|a| AllowedApp {
            id: a.application_id,
            name: a.name,
            max_minutes: a.max_duration_secs / 60,
            require_approval: a.require_approval,
        })
        .collect();
    let rows = |v: Vec<imp::Impersonation>| -> Vec<ImpRow> {
        v.into_iter()
            .map(|i| crate::ssr::imp_row(i, viewer, &issuer))
            .collect()
    };
    Ok(ImpPage {
        mine: mine.map(|i| crate::ssr::imp_row(i, viewer, &issuer)),
        active: rows(active),
        pending: rows(pending).into_iter().filter(|r| !r.mine).collect(),
        history: rows(history),
        applications,
        can_supervise,
        now_ms: now.millis(),
    })
}

/// Asks to impersonate `user` (an email address) in an application for `minutes`.
#[server(prefix = "/rpc", endpoint = "request_impersonation")]
pub async fn request_impersonation(
    csrf: String,
    user: String,
    application_id: String,
    minutes: String,
    reason: String,
    ticket: Option<String>,
) -> Result<ImpRow, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let minutes: i64 = minutes
        .trim()
        .parse()
        .map_err(|_| crate::ssr::invalid("duration_secs", "Enter a whole number of minutes."))?;
    let created = identity::impersonation::request(
        &call.identity,
        principal,
        &call.meta,
        identity::impersonation::NewRequest {
            user,
            application_id,
            duration_secs: minutes.saturating_mul(60),
            reason,
            ticket,
        },
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(crate::ssr::imp_row(
        created,
        principal.staff_id(),
        &call.identity.settings().issuer,
    ))
}

/// `decision` is "approve" or "deny".
#[server(prefix = "/rpc", endpoint = "decide_impersonation")]
pub async fn decide_impersonation(
    csrf: String,
    id: String,
    decision: String,
    comment: Option<String>,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(crate::ssr::invalid("decision", "Approve or deny.")),
    };
    identity::impersonation::decide(
        &call.identity,
        principal,
        &call.meta,
        &id,
        approve,
        comment,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "end_impersonation")]
pub async fn end_impersonation(csrf: String, id: String) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::impersonation::end(
        &call.identity,
        principal,
        &call.meta,
        &id,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(crate::ssr::fail)
}

/// Checkboxes arrive as "on" when ticked and are absent otherwise.
#[server(prefix = "/rpc", endpoint = "set_impersonation_policy")]
pub async fn set_impersonation_policy(
    csrf: String,
    id: String,
    enabled: Option<String>,
    max_minutes: String,
    require_approval: Option<String>,
    mode: String,
    notify_user: Option<String>,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let minutes: i64 = max_minutes.trim().parse().map_err(|_| {
        crate::ssr::invalid("max_duration_secs", "Enter a whole number of minutes.")
    })?;
    let on = |v: &Option<String>| v.as_deref() == Some("on");
    let policy = identity::impersonation::Policy {
        enabled: on(&enabled),
        max_duration_secs: minutes.saturating_mul(60),
        require_approval: on(&require_approval),
        mode: identity::impersonation::Mode::parse(&mode).map_err(crate::ssr::fail)?,
        notify_user: on(&notify_user),
    };
    identity::impersonation::set_policy(
        &call.identity,
        principal,
        &call.meta,
        &id,
        policy,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "assign_impersonator")]
pub async fn assign_impersonator(
    csrf: String,
    id: String,
    staff_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::impersonation::assign(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &staff_id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "unassign_impersonator")]
pub async fn unassign_impersonator(
    csrf: String,
    id: String,
    staff_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::impersonation::unassign(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &staff_id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}
