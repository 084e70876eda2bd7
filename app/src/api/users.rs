//! Server functions of the Users, Organizations and Outbox pages. Operators and owners write; support
//! and auditors read. Each one authorizes inside `identity`, parses, calls, maps.

use super::{AppError, AuditRow};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub email_verified: bool,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPage {
    pub items: Vec<UserRow>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub id: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    pub application_id: String,
    pub application: String,
    pub role_id: String,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRow {
    pub organization_id: String,
    pub organization: String,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub application: String,
    /// The applications it signed the user in to.
    pub used_by: String,
    pub ip: String,
    pub created_at: String,
    pub last_seen_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDetail {
    pub user: UserRow,
    pub metadata: String,
    pub memberships: Vec<MembershipRow>,
    pub grants: Vec<GrantRow>,
    pub sessions: Vec<SessionRow>,
    pub events: Vec<AuditRow>,
    /// Who impersonated this user, where, when and why (newest first).
    pub impersonations: Vec<super::impersonation::ImpRow>,
    /// Organizations to add the user to.
    pub organizations: Vec<Choice>,
    /// Every application role, labelled "Application · role", to grant.
    pub roles: Vec<Choice>,
    /// Applications a reset link may return to.
    pub applications: Vec<Choice>,
    pub can_manage: bool,
    pub can_revoke: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChoices {
    pub organizations: Vec<Choice>,
    /// Every application role, "<application id>/<role id>", labelled "Application · role".
    pub roles: Vec<Choice>,
    pub applications: Vec<Choice>,
    pub can_manage: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedUser {
    pub id: String,
    pub email: String,
    /// When invited: the one-time link (also in the outbox).
    pub invitation_link: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub member_count: i64,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgDetail {
    pub org: OrgRow,
    pub members: Vec<MemberRow>,
    pub can_manage: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    pub status: String,
}

#[server(prefix = "/rpc", endpoint = "list_users")]
pub async fn list_users(
    q: Option<String>,
    status: Option<String>,
    organization_id: Option<String>,
    role: Option<String>,
    after: Option<String>,
) -> Result<UserPage, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let query = identity::users::ListQuery {
        search: nonempty(q),
        status: nonempty(status)
            .as_deref()
            .map(identity::users::Status::parse)
            .transpose()
            .map_err(crate::ssr::fail)?,
        organization_id: nonempty(organization_id),
        app_role_id: nonempty(role).map(|r| r.rsplit('/').next().unwrap_or_default().to_owned()),
        after: nonempty(after),
        limit: 25,
    };
    let page = identity::users::list(&call.identity, principal, &query)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(UserPage {
        items: page.items.iter().map(crate::ssr::user_row).collect(),
        next_cursor: page.next_cursor,
    })
}

#[server(prefix = "/rpc", endpoint = "user_filters")]
pub async fn user_filters() -> Result<UserChoices, AppError> {
    crate::ssr::user_filters().await
}

/// Creates a user; with an empty password the user is invited to `application_id`.
#[server(prefix = "/rpc", endpoint = "create_user")]
pub async fn create_user(
    csrf: String,
    email: String,
    name: String,
    password: Option<String>,
    application_id: Option<String>,
) -> Result<CreatedUser, AppError> {
    use secrecy::ExposeSecret;
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let created = identity::users::create(
        &call.identity,
        principal,
        &call.meta,
        identity::users::NewUser {
            email,
            name,
            password: password
                .filter(|p| !p.is_empty())
                .map(secrecy::SecretString::from),
            metadata: None,
            application_id: application_id.filter(|a| !a.is_empty()),
        },
        &call.public_url,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(CreatedUser {
        id: created.user.id.clone(),
        email: created.user.email.to_string(),
        invitation_link: created.invitation.map(|t| {
            format!(
                "{}/u/accept-invitation?token={}",
                call.public_url.trim_end_matches('/'),
                t.expose_secret()
            )
        }),
    })
}

#[server(prefix = "/rpc", endpoint = "get_user")]
pub async fn get_user(id: String) -> Result<UserDetail, AppError> {
    crate::ssr::user_detail(&id).await
}

#[server(prefix = "/rpc", endpoint = "update_user_profile")]
pub async fn update_user_profile(
    csrf: String,
    id: String,
    email: String,
    name: String,
) -> Result<(), AppError> {
    crate::ssr::update_user(
        &csrf,
        &id,
        identity::users::Change {
            email: Some(email),
            name: Some(name),
            ..Default::default()
        },
    )
    .await
}

/// "active" or "disabled".
#[server(prefix = "/rpc", endpoint = "set_user_status")]
pub async fn set_user_status(csrf: String, id: String, status: String) -> Result<(), AppError> {
    crate::ssr::update_user(
        &csrf,
        &id,
        identity::users::Change {
            status: Some(status),
            ..Default::default()
        },
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "send_user_reset")]
pub async fn send_user_reset(
    csrf: String,
    id: String,
    application_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::users::send_password_reset(
        &call.identity,
        principal,
        &call.meta,
        &id,
        Some(application_id.as_str()).filter(|a| !a.is_empty()),
        &call.public_url,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "revoke_user_session")]
pub async fn revoke_user_session(
    csrf: String,
    id: String,
    session_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::users::revoke_session(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &session_id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

/// `role` is "<application id>/<role id>" from the grant select.
#[server(prefix = "/rpc", endpoint = "grant_user_role")]
pub async fn grant_user_role(csrf: String, id: String, role: String) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let (app, role_id) = role
        .split_once('/')
        .ok_or_else(|| crate::ssr::invalid("role", "Choose a role."))?;
    identity::roles::grant(
        &call.identity,
        principal,
        &call.meta,
        app,
        role_id,
        &id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "revoke_user_role")]
pub async fn revoke_user_role(
    csrf: String,
    id: String,
    application_id: String,
    role_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::roles::revoke(
        &call.identity,
        principal,
        &call.meta,
        &application_id,
        &role_id,
        &id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "add_org_member")]
pub async fn add_org_member(
    csrf: String,
    organization_id: String,
    user_id: String,
    role: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::organizations::add_member(
        &call.identity,
        principal,
        &call.meta,
        &organization_id,
        &user_id,
        &role,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "remove_org_member")]
pub async fn remove_org_member(
    csrf: String,
    organization_id: String,
    user_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::organizations::remove_member(
        &call.identity,
        principal,
        &call.meta,
        &organization_id,
        &user_id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "list_organizations")]
pub async fn list_organizations() -> Result<(Vec<OrgRow>, bool), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let orgs = identity::organizations::list(&call.identity, principal)
        .await
        .map_err(crate::ssr::fail)?;
    Ok((
        orgs.iter().map(crate::ssr::org_row).collect(),
        principal.can(identity::Action::ManageUsers),
    ))
}

#[server(prefix = "/rpc", endpoint = "create_organization")]
pub async fn create_organization(csrf: String, name: String) -> Result<OrgRow, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::organizations::create(
        &call.identity,
        principal,
        &call.meta,
        &name,
        identity::Timestamp::now(),
    )
    .await
    .map(|o| crate::ssr::org_row(&o))
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "get_organization")]
pub async fn get_organization(id: String) -> Result<OrgDetail, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let org = identity::organizations::get(&call.identity, principal, &id)
        .await
        .map_err(crate::ssr::fail)?;
    let members = identity::organizations::members(&call.identity, principal, &id)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(OrgDetail {
        org: crate::ssr::org_row(&org),
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id,
                email: m.email,
                name: m.name,
                role: m.role,
            })
            .collect(),
        can_manage: principal.can(identity::Action::ManageUsers),
    })
}

#[server(prefix = "/rpc", endpoint = "outbox")]
pub async fn outbox() -> Result<Vec<OutboxRow>, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let messages = identity::mail::outbox(&call.identity, principal, 50)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(messages
        .into_iter()
        .map(|m| OutboxRow {
            id: m.id,
            to: m.to,
            subject: m.subject,
            body: m.body,
            created_at: m.created_at.rfc3339(),
            status: match (m.sent_at, m.error) {
                (Some(t), _) => format!("sent {}", t.rfc3339()),
                (None, Some(e)) => format!("not sent: {e}"),
                (None, None) => "in the outbox".to_owned(),
            },
        })
        .collect())
}
