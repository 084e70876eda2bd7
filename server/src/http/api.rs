//! The management REST API (`/api/v1`), authenticated by an environment admin key
//! (`Authorization: Bearer pcadm_…`) that carries a staff role. Handlers start with the permission
//! check (inside the `identity` call they make), then validate, then act.

use super::AppState;
use super::error::{ApiError, client_error};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Extension, Json, Router};
use identity::staff::{Change, Staff};
use identity::{Principal, RequestMeta, Role, Timestamp};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/staff", get(list_staff).post(invite_staff))
        .route("/api/v1/staff/{staff_id}", patch(update_staff))
        .route("/api/v1/audit-events", get(audit_events))
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
        identity::api_keys::authenticate(&state.identity, key, Timestamp::now())
            .await?
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

async fn me(Caller(principal): Caller) -> Json<Value> {
    let (kind, id) = match &principal.kind {
        identity::authz::PrincipalKind::Staff { staff_id, .. } => ("staff", staff_id.clone()),
        identity::authz::PrincipalKind::ApiKey { api_key_id, .. } => {
            ("api_key", api_key_id.clone())
        }
    };
    Json(json!({ "kind": kind, "id": id, "role": principal.role }))
}

async fn list_staff(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<Value>, ApiError> {
    let staff = identity::staff::list(&state.identity, &principal).await?;
    Ok(Json(
        json!({ "data": staff.iter().map(staff_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    role: String,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    role: Option<String>,
    status: Option<String>,
}

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

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn audit_events(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ViewAudit)?;
    let Ok(Query(q)) = query else {
        return Ok(client_error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "before and limit must be integers.",
        ));
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let records = identity::audit::list(&state.identity, &principal, q.before, limit).await?;
    let next = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({ "data": records, "next_cursor": next })).into_response())
}
