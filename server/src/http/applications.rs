//! `/api/v1/applications`: create, read, list, change and delete applications.

use super::AppState;
use super::api::{ApiJson, Caller};
use super::error::{ApiError, client_error};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use identity::applications::{self, Application, Change, NewApplication};
use identity::credentials;
use identity::{RequestMeta, Timestamp};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/applications", get(list).post(create))
        .route(
            "/api/v1/applications/{id}",
            get(read).patch(update).delete(delete),
        )
        .route(
            "/api/v1/applications/{id}/secrets",
            get(list_secrets).post(create_secret),
        )
        .route(
            "/api/v1/applications/{id}/secrets/{secret_id}",
            axum::routing::delete(revoke_secret),
        )
        .route(
            "/api/v1/applications/{id}/secrets/{secret_id}/rotate",
            axum::routing::post(rotate_secret),
        )
}

fn secret_json(info: &credentials::SecretInfo, now: Timestamp) -> Value {
    json!({
        "id": info.id,
        "display": format!("{}…{}", info.prefix, info.last_four),
        "active": info.is_active(now),
        "created_at": info.created_at.rfc3339(),
        "expires_at": info.expires_at.map(Timestamp::rfc3339),
        "revoked_at": info.revoked_at.map(Timestamp::rfc3339),
        "last_used_at": info.last_used_at.map(Timestamp::rfc3339),
    })
}

fn created_secret_json(created: &credentials::CreatedSecret, now: Timestamp) -> Value {
    let mut out = secret_json(&created.info, now);
    out["secret"] = json!(created.secret.expose_secret());
    out
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    expires_in_secs: Option<i64>,
}

/// `POST …/secrets` → 201 with the `secret`, shown this once.
async fn create_secret(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Option<Json<SecretBody>>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ManageApplications)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let now = Timestamp::now();
    let created = credentials::create(
        &state.identity,
        &principal,
        &meta,
        &id,
        body.expires_in_secs,
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(created_secret_json(&created, now)),
    )
        .into_response())
}

async fn list_secrets(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(identity::Action::ViewApplications)?;
    let now = Timestamp::now();
    let secrets = credentials::list(&state.identity, &principal, &id).await?;
    Ok(Json(
        json!({ "data": secrets.iter().map(|s| secret_json(s, now)).collect::<Vec<_>>() }),
    ))
}

async fn revoke_secret(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, secret_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(identity::Action::ManageApplications)?;
    credentials::revoke(
        &state.identity,
        &principal,
        &meta,
        &id,
        &secret_id,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace_secs: Option<i64>,
}

/// `POST …/secrets/{secret_id}/rotate` → 201 with the new secret; the old one expires after the grace.
async fn rotate_secret(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, secret_id)): Path<(String, String)>,
    body: Option<Json<RotateBody>>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ManageApplications)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let now = Timestamp::now();
    let created = credentials::rotate(
        &state.identity,
        &principal,
        &meta,
        &id,
        &secret_id,
        body.grace_secs,
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(created_secret_json(&created, now)),
    )
        .into_response())
}

fn app_json(app: &Application) -> Value {
    json!({
        "id": app.id,
        "name": app.name,
        "description": app.description,
        "type": app.app_type,
        "client_id": app.client_id,
        "status": app.status,
        "is_default": app.is_default,
        "redirect_uris": app.redirect_uris,
        "post_logout_redirect_uris": app.post_logout_redirect_uris,
        "created_by": app.created_by,
        "updated_by": app.updated_by,
        "created_at": app.created_at.rfc3339(),
        "updated_at": app.updated_at.rfc3339(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(rename = "type")]
    app_type: String,
    description: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    body: Result<ApiJson<CreateBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ManageApplications)?;
    let ApiJson(body) = match body {
        Ok(b) => b,
        Err(rejection) => return Ok(rejection),
    };
    let new = NewApplication {
        name: body.name,
        app_type: body.app_type,
        description: body.description,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
    };
    let app =
        applications::create(&state.identity, &principal, &meta, new, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(app_json(&app))).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ViewApplications)?;
    let Ok(Query(q)) = query else {
        return Ok(client_error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be an integer.",
        ));
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let apps = applications::list(&state.identity, &principal, q.after.as_deref(), limit).await?;
    let next = (apps.len() as i64 == limit)
        .then(|| apps.last().map(|a| a.id.clone()))
        .flatten();
    Ok(
        Json(json!({ "data": apps.iter().map(app_json).collect::<Vec<_>>(), "next_cursor": next }))
            .into_response(),
    )
}

async fn read(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.authorize(identity::Action::ViewApplications)?;
    let app = applications::get(&state.identity, &principal, &id).await?;
    Ok(Json(app_json(&app)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    status: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Accepted only to explain that it cannot change.
    #[serde(rename = "type")]
    app_type: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Result<ApiJson<UpdateBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(identity::Action::ManageApplications)?;
    let ApiJson(body) = match body {
        Ok(b) => b,
        Err(rejection) => return Ok(rejection),
    };
    if body.app_type.is_some() {
        return Err(identity::Error::invalid(
            "type",
            "type_immutable",
            "An application's type is fixed at creation.",
        )
        .into());
    }
    let change = Change {
        name: body.name,
        description: body.description,
        status: body.status,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
    };
    let app = applications::update(
        &state.identity,
        &principal,
        &meta,
        &id,
        change,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(app_json(&app)).into_response())
}

#[derive(Deserialize)]
struct DeleteQuery {
    confirm_name: Option<String>,
}

/// `DELETE /api/v1/applications/{id}?confirm_name=<the application's name>`.
async fn delete(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(identity::Action::ManageApplications)?;
    let confirm = q.confirm_name.unwrap_or_default();
    applications::delete(
        &state.identity,
        &principal,
        &meta,
        &id,
        &confirm,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
