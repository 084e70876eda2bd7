//! The management REST API (`/api/v1`), authenticated by an environment admin key
//! (`Authorization: Bearer pcadm_…`) that carries a staff role, or by an application's key
//! (`pcapp_…`) confined to that application. Handlers start with the permission check (inside the
//! `identity` call they make), then validate, then act.
//!
//! Routes are registered through `utoipa_axum`, so a route exists only with its OpenAPI operation;
//! the document is served at `/api/v1/openapi.json`.

use super::AppState;
use super::error::{ApiError, client_error};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use identity::staff::{Change, Staff};
use identity::{Principal, RequestMeta, Role, Timestamp};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis management API",
        description = "Applications, credentials, staff, settings and the audit log. Authenticate with \
            `Authorization: Bearer <key>`: an environment admin key (`pcadm_…`, from \
            `portcullis api-key create`) acts with its staff role; an application key (`pcapp_…`) acts \
            only inside its own application, within its scopes. Errors are \
            `{\"error\": {\"code\", \"message\", \"field\"}}` with a stable `code`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "applications", description = "Product surfaces over the shared user pool"),
        (name = "credentials", description = "Client secrets and application API keys"),
        (name = "settings", description = "Environment-wide defaults and the mail outbox"),
        (name = "users", description = "The shared user pool"),
        (name = "organizations", description = "Groups of users with a role per member"),
        (name = "roles", description = "Per-application roles and their grants"),
        (name = "staff", description = "Dashboard staff"),
        (name = "audit", description = "The tamper-evident audit log"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Every `/api/v1` route with its OpenAPI operation, plus `GET /api/v1/openapi.json`.
pub fn router() -> Router<AppState> {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .routes(routes!(list_staff, invite_staff))
        .routes(routes!(update_staff))
        .routes(routes!(audit_events))
        .routes(routes!(audit_catalog))
        .routes(routes!(super::audit_export::export_audit))
        .routes(routes!(super::audit_export::export_signature))
        .routes(routes!(read_session_policy, update_session_policy))
        .merge(super::applications::router())
        .merge(super::audit_streams::router())
        .merge(super::users::router())
        .split_for_parts();
    // The event catalog travels with the API description, for SIEM mappings and reviewers.
    let mut doc = doc;
    let catalog = serde_json::to_value(identity::audit_catalog::all()).unwrap_or_default();
    doc.extensions
        .get_or_insert_with(Default::default)
        .insert("x-audit-event-catalog".to_owned(), catalog);
    let doc = Arc::new(doc);
    router.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}

/// The error body every failure answers with.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// Stable and machine-readable, e.g. `redirect_uri_fragment`.
    code: String,
    message: String,
    /// The input field the error is about, when there is one.
    field: Option<String>,
}

/// The authenticated caller of an API request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(identity::Error::Unauthenticated)?;
        let now = Timestamp::now();
        let principal = if key.starts_with(identity::app_keys::PREFIX) {
            let ip = parts
                .extensions
                .get::<RequestMeta>()
                .and_then(|m| m.ip.clone());
            identity::app_keys::authenticate(&state.identity, key, ip.as_deref(), now).await?
        } else {
            identity::api_keys::authenticate(&state.identity, key, now).await?
        };
        principal
            .map(Caller)
            .ok_or(ApiError(identity::Error::Unauthenticated))
    }
}

/// `Json<T>` whose rejection is our error shape (`invalid_json`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(client_error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                &rejection.body_text(),
            )),
        }
    }
}

fn staff_json(s: &Staff) -> Value {
    json!({
        "id": s.id,
        "email": s.email,
        "role": s.role,
        "status": s.status,
        "created_at": s.created_at.rfc3339(),
        "updated_at": s.updated_at.rfc3339(),
    })
}

/// Who the key belongs to: its kind, id, staff role (admin keys) or application and scopes (app keys).
#[utoipa::path(get, path = "/api/v1/me", tag = "staff", responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
async fn me(Caller(principal): Caller) -> Json<Value> {
    use identity::authz::PrincipalKind as K;
    Json(match &principal.kind {
        K::Staff { staff_id, .. } => {
            json!({ "kind": "staff", "id": staff_id, "role": principal.role })
        }
        K::ApiKey { api_key_id, .. } => {
            json!({ "kind": "api_key", "id": api_key_id, "role": principal.role })
        }
        K::AppKey {
            api_key_id,
            application_id,
            scopes,
            ..
        } => json!({ "kind": "app_key", "id": api_key_id, "application_id": application_id,
                     "scopes": scopes }),
    })
}

/// List staff members.
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff", responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
async fn list_staff(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<Value>, ApiError> {
    let staff = identity::staff::list(&state.identity, &principal).await?;
    Ok(Json(
        json!({ "data": staff.iter().map(staff_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    role: String,
}

/// Invite a staff member; 201 with a one-time `invitation_url`.
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = InviteBody,
    responses((status = 201, body = Object), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn invite_staff(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    body: Result<ApiJson<InviteBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ManageStaff)?;
    let ApiJson(body) = match body {
        Ok(b) => b,
        Err(rejection) => return Ok(rejection),
    };
    let inv = identity::staff::invite(
        &state.identity,
        &principal,
        &meta,
        &body.email,
        &body.role,
        Timestamp::now(),
    )
    .await?;
    let mut out = staff_json(&inv.staff);
    out["invitation_url"] = json!(format!(
        "{}/accept-invite?token={}",
        state.public_url,
        inv.token.expose_secret()
    ));
    out["invitation_expires_at"] = json!(inv.expires_at.rfc3339());
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    role: Option<String>,
    status: Option<String>,
}

/// Change a staff member's role or status.
#[utoipa::path(patch, path = "/api/v1/staff/{staff_id}", tag = "staff", params(("staff_id" = String, Path)),
    request_body = UpdateBody, responses((status = 200, body = Object), (status = 409, body = ErrorBody)))]
async fn update_staff(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(staff_id): Path<String>,
    body: Result<ApiJson<UpdateBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ManageStaff)?;
    let ApiJson(body) = match body {
        Ok(b) => b,
        Err(rejection) => return Ok(rejection),
    };
    let role = body.role.as_deref().map(Role::parse).transpose()?;
    let enabled = match body.status.as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("disabled") => Some(false),
        Some(_) => {
            return Err(identity::Error::invalid(
                "status",
                "invalid_status",
                "status must be active or disabled.",
            )
            .into());
        }
    };
    let staff = identity::staff::update(
        &state.identity,
        &principal,
        &meta,
        &staff_id,
        Change { role, enabled },
        Timestamp::now(),
    )
    .await?;
    Ok(Json(staff_json(&staff)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `next_cursor` of the previous page.
    before: Option<i64>,
    /// 1–500, default 50.
    limit: Option<i64>,
    /// From this time (milliseconds since the epoch, inclusive).
    from: Option<i64>,
    /// Before this time (milliseconds since the epoch).
    to: Option<i64>,
    /// `staff`, `user`, `api_key`, `client`, `system` or `anonymous`.
    actor_type: Option<String>,
    actor_id: Option<String>,
    /// A category of the event catalog (`GET /api/v1/audit-events/catalog`).
    category: Option<String>,
    /// An event name, e.g. `user.signed_in`.
    event: Option<String>,
    /// Events about this application (target or detail).
    application_id: Option<String>,
    /// Events about this end user (target or detail).
    user_id: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    ip: Option<String>,
    /// A substring of the event's detail.
    text: Option<String>,
    /// Only events about this target, as `<type>:<id>` (e.g. `impersonation:<id>`, `user:<id>`).
    target: Option<String>,
    request_id: Option<String>,
}

impl AuditQuery {
    pub fn filter(&self) -> identity::audit::Filter {
        identity::audit::Filter {
            from: self.from,
            to: self.to,
            actor_type: self.actor_type.clone(),
            actor_id: self.actor_id.clone(),
            category: self.category.clone(),
            event: self.event.clone(),
            application_id: self.application_id.clone(),
            user_id: self.user_id.clone(),
            outcome: self.outcome.clone(),
            ip: self.ip.clone(),
            text: self.text.clone(),
            target: self.target.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// The audit event catalog: every event's name, category, version, meaning, target type and detail
/// fields (also in this document as `x-audit-event-catalog`).
#[utoipa::path(get, path = "/api/v1/audit-events/catalog", tag = "audit",
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
async fn audit_catalog(Caller(principal): Caller) -> Result<Json<Value>, ApiError> {
    principal.authorize(identity::Action::ViewAudit)?;
    Ok(Json(json!({ "data": identity::audit_catalog::all() })))
}

/// Audit events, newest first (an application key with `audit:read` sees its application's only).
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
async fn audit_events(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = query else {
        return Ok(client_error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "before, limit, from and to must be integers.",
        ));
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let records =
        identity::audit::list(&state.identity, &principal, &q.filter(), q.before, limit).await?;
    let next = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({ "data": records, "next_cursor": next })).into_response())
}

fn policy_json(overrides: &identity::session_policy::Overrides) -> Value {
    let effective: Map<String, Value> = identity::applications::AppType::ALL
        .into_iter()
        .map(|t| {
            let e = identity::session_policy::resolve(
                t,
                overrides,
                &identity::session_policy::Overrides::default(),
            );
            (t.as_str().to_owned(), json!(e))
        })
        .collect();
    json!({ "session_policy": overrides, "effective_by_type": effective })
}

/// The environment-wide session-policy defaults, and what they resolve to for each type.
#[utoipa::path(get, path = "/api/v1/settings/session-policy", tag = "settings",
    responses((status = 200, body = Object)))]
async fn read_session_policy(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<Value>, ApiError> {
    let overrides = identity::settings::session_policy(&state.identity, &principal).await?;
    Ok(Json(policy_json(&overrides)))
}

/// Change the environment defaults (owners): a value sets it, `null` returns to the built-in default.
#[utoipa::path(patch, path = "/api/v1/settings/session-policy", tag = "settings",
    request_body = Object, responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn update_session_policy(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    body: Result<ApiJson<Map<String, Value>>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ManageSettings)?;
    let patch = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let overrides = identity::settings::update_session_policy(
        &state.identity,
        &principal,
        &meta,
        &patch,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(policy_json(&overrides)).into_response())
}
