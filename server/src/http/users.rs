//! `/api/v1/users`, `/api/v1/organizations`, `/api/v1/applications/{id}/roles` and the mail outbox.
//! Application keys with `users:read`/`users:write` see every user of the pool but only their own
//! application's roles, grants and sessions.

use super::AppState;
use super::api::{ApiJson, Caller, ErrorBody};
use super::error::{ApiError, client_error};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use identity::organizations::{self, Member, Membership, Organization};
use identity::roles::{self, AppRole, Grant, NewRole};
use identity::users::{self, Change, ListQuery, NewUser, SessionInfo, User};
use identity::{RequestMeta, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(read_user, update_user))
        .routes(routes!(user_sessions))
        .routes(routes!(revoke_user_session))
        .routes(routes!(send_reset))
        .routes(routes!(user_roles))
        .routes(routes!(user_organizations))
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(read_org, delete_org))
        .routes(routes!(org_members))
        .routes(routes!(add_member, remove_member))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(delete_role))
        .routes(routes!(grant_role, revoke_role))
        .routes(routes!(outbox))
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: String,
    email: String,
    email_verified: bool,
    name: String,
    /// active, invited or disabled.
    status: String,
    #[schema(value_type = Object)]
    metadata: Value,
    created_at: String,
    updated_at: String,
    last_sign_in_at: Option<String>,
    /// Only when the user was just invited: the one-time link (also in the outbox/email).
    #[serde(skip_serializing_if = "Option::is_none")]
    invitation_url: Option<String>,
}

fn user_view(u: &User) -> UserView {
    UserView {
        id: u.id.clone(),
        email: u.email.to_string(),
        email_verified: u.email_verified,
        name: u.name.clone(),
        status: u.status.as_str().to_owned(),
        metadata: u.metadata.clone(),
        created_at: u.created_at.rfc3339(),
        updated_at: u.updated_at.rfc3339(),
        last_sign_in_at: u.last_sign_in_at.map(Timestamp::rfc3339),
        invitation_url: None,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    email: String,
    #[serde(default)]
    name: String,
    /// Without a password the user is invited by email to set one.
    password: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// The application an invitation returns to (default application when absent).
    application_id: Option<String>,
}

/// Create a user (201); without a password the user is invited.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserBody,
    responses((status = 201, body = UserView), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    body: Result<ApiJson<CreateUserBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize_pool(identity::Action::ManageUsers)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let created = users::create(
        &state.identity,
        &principal,
        &meta,
        NewUser {
            email: body.email,
            name: body.name,
            password: body.password.map(SecretString::from),
            metadata: body.metadata,
            application_id: body.application_id,
        },
        &state.public_url,
        Timestamp::now(),
    )
    .await?;
    let mut view = user_view(&created.user);
    // The link goes to the invitee by mail; only staff (admin keys) may also receive it here, since
    // accepting it confirms the email address.
    let staff = principal.application_scope().is_none();
    view.invitation_url = created.invitation.filter(|_| staff).map(|t| {
        format!(
            "{}/u/accept-invitation?token={}",
            state.public_url,
            t.expose_secret()
        )
    });
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UserParams {
    /// A prefix of the email or the name (any case).
    q: Option<String>,
    /// active, invited or disabled.
    status: Option<String>,
    organization_id: Option<String>,
    /// Users granted this application role.
    role_id: Option<String>,
    after: Option<String>,
    /// 1–200, default 50.
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct UserPage {
    data: Vec<UserView>,
    next_cursor: Option<String>,
}

/// Search and list users, newest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserParams),
    responses((status = 200, body = UserPage), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: Result<Query<UserParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = query else {
        return Ok(client_error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be an integer.",
        ));
    };
    let page = users::list(
        &state.identity,
        &principal,
        &ListQuery {
            search: q.q,
            status: q.status.as_deref().map(users::Status::parse).transpose()?,
            organization_id: q.organization_id,
            app_role_id: q.role_id,
            after: q.after,
            limit: q.limit.unwrap_or(50),
        },
    )
    .await?;
    Ok(Json(UserPage {
        data: page.items.iter().map(user_view).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Read a user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
async fn read_user(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = users::get(&state.identity, &principal, &id).await?;
    Ok(Json(user_view(&user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
    email: Option<String>,
    name: Option<String>,
    /// active or disabled (disabling ends the user's sessions).
    status: Option<String>,
    email_verified: Option<bool>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// Change a user.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = UpdateUserBody, responses((status = 200, body = UserView), (status = 422, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Result<ApiJson<UpdateUserBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize_pool(identity::Action::ManageUsers)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let user = users::update(
        &state.identity,
        &principal,
        &meta,
        &id,
        Change {
            email: body.email,
            name: body.name,
            status: body.status,
            email_verified: body.email_verified,
            metadata: body.metadata,
        },
        Timestamp::now(),
    )
    .await?;
    Ok(Json(user_view(&user)).into_response())
}

#[derive(Serialize, ToSchema)]
struct SessionView {
    id: String,
    application_id: Option<String>,
    application_name: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    /// The applications this session signed the user in to (single sign-on).
    applications: Vec<String>,
}

fn session_view(s: &SessionInfo) -> SessionView {
    SessionView {
        id: s.id.clone(),
        application_id: s.application_id.clone(),
        application_name: s.application_name.clone(),
        ip: s.ip.clone(),
        user_agent: s.user_agent.clone(),
        created_at: s.created_at.rfc3339(),
        last_seen_at: s.last_seen_at.rfc3339(),
        expires_at: s.expires_at.rfc3339(),
        applications: s.applications.clone(),
    }
}

#[derive(Serialize, ToSchema)]
struct SessionList {
    data: Vec<SessionView>,
}

/// A user's live sign-in sessions (an application key sees its application's only).
#[utoipa::path(get, path = "/api/v1/users/{id}/sessions", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = SessionList)))]
async fn user_sessions(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = users::sessions(&state.identity, &principal, &id, Timestamp::now()).await?;
    Ok(Json(SessionList {
        data: sessions.iter().map(session_view).collect(),
    }))
}

/// End one sign-in session of a user.
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions/{session_id}", tag = "users",
    params(("id" = String, Path), ("session_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_user_session(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, session_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    users::revoke_session(
        &state.identity,
        &principal,
        &meta,
        &id,
        &session_id,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    /// The application the reset link returns to (default application when absent).
    application_id: Option<String>,
}

/// Email the user a password-reset link (30 minutes, single use).
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "users", params(("id" = String, Path)),
    request_body(content = Option<ResetBody>), responses((status = 202), (status = 409, body = ErrorBody)))]
async fn send_reset(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Option<Json<ResetBody>>,
) -> Result<StatusCode, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    users::send_password_reset(
        &state.identity,
        &principal,
        &meta,
        &id,
        body.application_id.as_deref(),
        &state.public_url,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Serialize, ToSchema)]
struct RoleView {
    id: String,
    application_id: String,
    name: String,
    description: String,
    permissions: Vec<String>,
    created_at: String,
}

fn role_view(r: &AppRole) -> RoleView {
    RoleView {
        id: r.id.clone(),
        application_id: r.application_id.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        permissions: r.permissions.clone(),
        created_at: r.created_at.rfc3339(),
    }
}

#[derive(Serialize, ToSchema)]
struct GrantView {
    role: RoleView,
    application_name: String,
    granted_at: String,
}

fn grant_view(g: &Grant) -> GrantView {
    GrantView {
        role: role_view(&g.role),
        application_name: g.application_name.clone(),
        granted_at: g.granted_at.rfc3339(),
    }
}

#[derive(Serialize, ToSchema)]
struct GrantList {
    data: Vec<GrantView>,
}

/// A user's roles per application (an application key sees its application's only).
#[utoipa::path(get, path = "/api/v1/users/{id}/roles", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = GrantList)))]
async fn user_roles(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<GrantList>, ApiError> {
    let grants = roles::of_user(&state.identity, &principal, &id).await?;
    Ok(Json(GrantList {
        data: grants.iter().map(grant_view).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
struct MembershipList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<Membership>,
}

/// The organizations a user belongs to.
#[utoipa::path(get, path = "/api/v1/users/{id}/organizations", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = MembershipList)))]
async fn user_organizations(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<MembershipList>, ApiError> {
    let data = organizations::of_user(&state.identity, &principal, &id).await?;
    Ok(Json(MembershipList { data }))
}

// ---- Organizations ----

#[derive(Serialize, ToSchema)]
struct OrgView {
    id: String,
    name: String,
    member_count: i64,
    created_at: String,
}

fn org_view(o: &Organization) -> OrgView {
    OrgView {
        id: o.id.clone(),
        name: o.name.clone(),
        member_count: o.member_count,
        created_at: o.created_at.rfc3339(),
    }
}

#[derive(Serialize, ToSchema)]
struct OrgList {
    data: Vec<OrgView>,
}

/// List organizations.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations", responses((status = 200, body = OrgList)))]
async fn list_orgs(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<OrgList>, ApiError> {
    let orgs = organizations::list(&state.identity, &principal).await?;
    Ok(Json(OrgList {
        data: orgs.iter().map(org_view).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OrgBody {
    name: String,
}

/// Create an organization.
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", request_body = OrgBody,
    responses((status = 201, body = OrgView), (status = 422, body = ErrorBody)))]
async fn create_org(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    body: Result<ApiJson<OrgBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize_pool(identity::Action::ManageUsers)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let org = organizations::create(
        &state.identity,
        &principal,
        &meta,
        &body.name,
        Timestamp::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(org_view(&org))).into_response())
}

/// Read an organization.
#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "organizations", params(("id" = String, Path)),
    responses((status = 200, body = OrgView), (status = 404, body = ErrorBody)))]
async fn read_org(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    let org = organizations::get(&state.identity, &principal, &id).await?;
    Ok(Json(org_view(&org)))
}

/// Delete an organization (its memberships go with it; its users stay).
#[utoipa::path(delete, path = "/api/v1/organizations/{id}", tag = "organizations", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_org(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    organizations::delete(&state.identity, &principal, &meta, &id, Timestamp::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct MemberList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<Member>,
}

/// An organization's members and their roles.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/members", tag = "organizations", params(("id" = String, Path)),
    responses((status = 200, body = MemberList)))]
async fn org_members(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<MemberList>, ApiError> {
    let data = organizations::members(&state.identity, &principal, &id).await?;
    Ok(Json(MemberList { data }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    /// admin or member (default).
    role: Option<String>,
}

/// Add a user to an organization, or change their role there.
#[utoipa::path(put, path = "/api/v1/organizations/{id}/members/{user_id}", tag = "organizations",
    params(("id" = String, Path), ("user_id" = String, Path)), request_body(content = Option<MemberBody>),
    responses((status = 204), (status = 422, body = ErrorBody)))]
async fn add_member(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, user_id)): Path<(String, String)>,
    body: Option<Json<MemberBody>>,
) -> Result<StatusCode, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    organizations::add_member(
        &state.identity,
        &principal,
        &meta,
        &id,
        &user_id,
        body.role.as_deref().unwrap_or("member"),
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from an organization.
#[utoipa::path(delete, path = "/api/v1/organizations/{id}/members/{user_id}", tag = "organizations",
    params(("id" = String, Path), ("user_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    organizations::remove_member(
        &state.identity,
        &principal,
        &meta,
        &id,
        &user_id,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- Application roles ----

#[derive(Serialize, ToSchema)]
struct RoleList {
    data: Vec<RoleView>,
}

/// The roles an application defines.
#[utoipa::path(get, path = "/api/v1/applications/{id}/roles", tag = "roles", params(("id" = String, Path)),
    responses((status = 200, body = RoleList)))]
async fn list_roles(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<RoleList>, ApiError> {
    let roles = roles::list(&state.identity, &principal, &id).await?;
    Ok(Json(RoleList {
        data: roles.iter().map(role_view).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
}

/// Define a role in an application.
#[utoipa::path(post, path = "/api/v1/applications/{id}/roles", tag = "roles", params(("id" = String, Path)),
    request_body = RoleBody, responses((status = 201, body = RoleView), (status = 422, body = ErrorBody)))]
async fn create_role(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Result<ApiJson<RoleBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize_in(identity::Action::ManageApplications, &id)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let role = roles::create(
        &state.identity,
        &principal,
        &meta,
        &id,
        NewRole {
            name: body.name,
            description: body.description,
            permissions: body.permissions,
        },
        Timestamp::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(role_view(&role))).into_response())
}

/// Delete a role (and its grants).
#[utoipa::path(delete, path = "/api/v1/applications/{id}/roles/{role_id}", tag = "roles",
    params(("id" = String, Path), ("role_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_role(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, role_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    roles::delete(
        &state.identity,
        &principal,
        &meta,
        &id,
        &role_id,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Grant a role to a user.
#[utoipa::path(put, path = "/api/v1/applications/{id}/roles/{role_id}/users/{user_id}", tag = "roles",
    params(("id" = String, Path), ("role_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn grant_role(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, role_id, user_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    roles::grant(
        &state.identity,
        &principal,
        &meta,
        &id,
        &role_id,
        &user_id,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke a role from a user.
#[utoipa::path(delete, path = "/api/v1/applications/{id}/roles/{role_id}/users/{user_id}", tag = "roles",
    params(("id" = String, Path), ("role_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_role(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, role_id, user_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    roles::revoke(
        &state.identity,
        &principal,
        &meta,
        &id,
        &role_id,
        &user_id,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct OutboxList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<identity::mail::Message>,
}

/// The mail outbox, newest first (owners; messages carry one-time links).
#[utoipa::path(get, path = "/api/v1/outbox", tag = "settings", responses((status = 200, body = OutboxList)))]
async fn outbox(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<OutboxList>, ApiError> {
    let data = identity::mail::outbox(&state.identity, &principal, 100).await?;
    Ok(Json(OutboxList { data }))
}
