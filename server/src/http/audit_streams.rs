//! `/api/v1/audit-streams`: webhook streams of audit events to a SIEM — create (the signing secret
//! is shown once), read, change, pause and resume, rotate the secret, delete, read the delivery log
//! and ask for a redelivery. Owners manage streams; auditors read them.

use super::AppState;
use super::api::{ApiJson, Caller, ErrorBody};
use super::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use identity::audit::Filter;
use identity::audit_streams::{self, Change, Input};
use identity::{Action, RequestMeta, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

/// Which events a stream carries; every field is optional and they combine with AND.
#[derive(Deserialize, ToSchema, Default)]
#[serde(default, deny_unknown_fields)]
struct StreamFilter {
    /// A category of the event catalog.
    category: Option<String>,
    /// An event name, e.g. `user.signed_in`.
    event: Option<String>,
    application_id: Option<String>,
    user_id: Option<String>,
    /// `staff`, `user`, `api_key`, `client`, `system` or `anonymous`.
    actor_type: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    /// A substring of the event's detail.
    text: Option<String>,
}

impl From<StreamFilter> for Filter {
    fn from(f: StreamFilter) -> Self {
        Filter {
            category: f.category,
            event: f.event,
            application_id: f.application_id,
            user_id: f.user_id,
            actor_type: f.actor_type,
            outcome: f.outcome,
            text: f.text,
            ..Filter::default()
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// https (http only on loopback); deliveries are POSTed here.
    url: String,
    #[serde(default)]
    filter: Option<StreamFilter>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    url: Option<String>,
    filter: Option<StreamFilter>,
    /// `active` or `paused`.
    status: Option<String>,
}

fn with_secret(created: audit_streams::Created) -> Value {
    let mut v = json!(created.stream);
    v["secret"] = json!(created.secret);
    v
}

/// Create a stream. It carries events written from now on; the response holds the signing secret,
/// shown only this once. Each delivery is a POST of `{"stream_id", "delivery_id", "events": […]}`
/// with `Portcullis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
#[utoipa::path(post, path = "/api/v1/audit-streams", tag = "audit", request_body = CreateBody,
    responses((status = 201, body = Object), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    body: Result<ApiJson<CreateBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ManageAuditStreams)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let input = Input {
        name: body.name,
        url: body.url,
        filter: body.filter.unwrap_or_default().into(),
    };
    let created =
        audit_streams::create(&state.identity, &principal, &meta, &input, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(with_secret(created))).into_response())
}

/// Every stream (never the secrets).
#[utoipa::path(get, path = "/api/v1/audit-streams", tag = "audit",
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<Value>, ApiError> {
    let streams = audit_streams::list(&state.identity, &principal).await?;
    Ok(Json(json!({ "data": streams })))
}

/// One stream, with its cursor and retry state.
#[utoipa::path(get, path = "/api/v1/audit-streams/{id}", tag = "audit", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn read(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let stream = audit_streams::get(&state.identity, &principal, &id).await?;
    Ok(Json(json!(stream)))
}

/// Change a stream's name, endpoint or filter, or pause (`status: paused`) and resume it.
#[utoipa::path(patch, path = "/api/v1/audit-streams/{id}", tag = "audit", params(("id" = String, Path)),
    request_body = UpdateBody,
    responses((status = 200, body = Object), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Result<ApiJson<UpdateBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ManageAuditStreams)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let current = audit_streams::get(&state.identity, &principal, &id).await?;
    let input =
        (body.name.is_some() || body.url.is_some() || body.filter.is_some()).then(|| Input {
            name: body.name.unwrap_or(current.name),
            url: body.url.unwrap_or(current.url),
            filter: body.filter.map_or(current.filter, Filter::from),
        });
    let change = Change {
        input,
        status: body.status,
    };
    let stream = audit_streams::update(
        &state.identity,
        &principal,
        &meta,
        &id,
        &change,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(json!(stream)).into_response())
}

/// Delete a stream and its delivery log (the events stay in the audit log).
#[utoipa::path(delete, path = "/api/v1/audit-streams/{id}", tag = "audit", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    audit_streams::delete(&state.identity, &principal, &meta, &id, Timestamp::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret; the new one is in the response, shown only this once.
#[utoipa::path(post, path = "/api/v1/audit-streams/{id}/rotate-secret", tag = "audit",
    params(("id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let created =
        audit_streams::rotate_secret(&state.identity, &principal, &meta, &id, Timestamp::now())
            .await?;
    Ok(Json(with_secret(created)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// 1–500, default 50.
    limit: Option<i64>,
}

/// The delivery log, newest first: every attempt with its event range, status code or error.
#[utoipa::path(get, path = "/api/v1/audit-streams/{id}/deliveries", tag = "audit",
    params(("id" = String, Path), DeliveryParams),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn deliveries(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    Query(q): Query<DeliveryParams>,
) -> Result<Json<Value>, ApiError> {
    let rows =
        audit_streams::deliveries(&state.identity, &principal, &id, q.limit.unwrap_or(50)).await?;
    Ok(Json(json!({ "data": rows })))
}

/// Send a past delivery's events again (queued; the dispatcher sends it within a second).
#[utoipa::path(post, path = "/api/v1/audit-streams/{id}/deliveries/{delivery_id}/redeliver",
    tag = "audit", params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = Object), (status = 404, body = ErrorBody)))]
async fn redeliver(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let queued = audit_streams::redeliver(
        &state.identity,
        &principal,
        &meta,
        &id,
        &delivery_id,
        Timestamp::now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!(queued))).into_response())
}
