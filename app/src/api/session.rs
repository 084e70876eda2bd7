use super::{AppError, Viewer};
use leptos::prelude::*;

/// Who is signed in, or `None`.
#[server(prefix = "/rpc", endpoint = "me")]
pub async fn me() -> Result<Option<Viewer>, AppError> {
    use identity::Action;
    let call = crate::ssr::call()?;
    let impersonating = match &call.current {
        Some(c) => identity::impersonation::open_for(
            &call.identity,
            &c.principal,
            identity::Timestamp::now(),
        )
        .await
        .map_err(crate::ssr::fail)?
        .map(|i| super::impersonation::Banner {
            id: i.id,
            user_email: i.user_email,
            application_name: i.application_name,
            status: i.status.as_str().to_owned(),
            ends_at: i.ends_at.map(identity::Timestamp::rfc3339),
        }),
        None => None,
    };
    Ok(call.current.map(|c| Viewer {
        impersonating,
        staff_id: c.principal.staff_id().unwrap_or_default().to_owned(),
        email: match &c.principal.kind {
            identity::authz::PrincipalKind::Staff { email, .. } => email.clone(),
            identity::authz::PrincipalKind::ApiKey { name, .. }
            | identity::authz::PrincipalKind::AppKey { name, .. } => name.clone(),
        },
        role: c
            .principal
            .role
            .map(|r| r.as_str())
            .unwrap_or_default()
            .to_owned(),
        role_label: c
            .principal
            .role
            .map(|r| r.label())
            .unwrap_or_default()
            .to_owned(),
        can_view_staff: c.principal.can(Action::ViewStaff),
        can_manage_staff: c.principal.can(Action::ManageStaff),
        can_view_audit: c.principal.can(Action::ViewAudit),
        can_view_settings: c.principal.can(Action::ViewSettings),
        can_manage_applications: c.principal.can(Action::ManageApplications),
        can_view_outbox: c.principal.can(Action::ViewOutbox),
        csrf: c.csrf_token,
    }))
}

/// The CSRF token that the signed-out forms (sign-in, accept invitation) must carry. It is the value
/// of the `pc_csrf` cookie the server set on this request (double-submit).
#[server(prefix = "/rpc", endpoint = "form_token")]
pub async fn form_token() -> Result<String, AppError> {
    Ok(crate::ssr::call()?.form_token)
}
