//! `/api/v1/applications`: create, read, list, change and delete applications, their client secrets
//! and their API keys. Every handler is documented for the OpenAPI document it is registered with.

use super::AppState;
use super::api::{ApiJson, Caller, ErrorBody};
use super::error::{ApiError, client_error};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use identity::app_keys::{self, AppKeyInfo, NewAppKey};
use identity::applications::{self, AppType, Application, Change, ListQuery, NewApplication, Sort};
use identity::credentials::{self, SecretInfo};
use identity::session_policy::{Effective, Overrides};
use identity::{Action, RequestMeta, Timestamp};
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, delete))
        .routes(routes!(list_secrets, create_secret))
        .routes(routes!(revoke_secret))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(logout_deliveries))
        .routes(routes!(application_sessions))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An application as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ApplicationView {
    id: String,
    name: String,
    description: String,
    /// web, spa, native or m2m.
    #[serde(rename = "type")]
    app_type: String,
    client_id: String,
    /// active or disabled.
    status: String,
    is_default: bool,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    default_redirect_uri: Option<String>,
    initiate_login_uri: Option<String>,
    backchannel_logout_uri: Option<String>,
    return_url: Option<String>,
    /// The values this application overrides (the rest inherit).
    #[schema(value_type = Object)]
    session_policy: Overrides,
    allow_sign_up: bool,
    /// ES256 (default) or RS256.
    id_token_signed_response_alg: String,
    /// m2m only: the scopes client_credentials may grant.
    allowed_scopes: Vec<String>,
    /// Every value in force, each with its `source`: application, environment, default or type.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_session_policy: Option<Effective>,
    created_by: Option<String>,
    updated_by: Option<String>,
    created_at: String,
    updated_at: String,
}

fn strings(uris: &[identity::redirect_uris::RedirectUri]) -> Vec<String> {
    uris.iter().map(|u| u.as_str().to_owned()).collect()
}

fn view(app: &Application, effective: Option<Effective>) -> ApplicationView {
    let one = |u: &Option<identity::redirect_uris::RedirectUri>| {
        u.as_ref().map(|u| u.as_str().to_owned())
    };
    ApplicationView {
        id: app.id.clone(),
        name: app.name.clone(),
        description: app.description.clone(),
        app_type: app.app_type.as_str().to_owned(),
        client_id: app.client_id.clone(),
        status: app.status.as_str().to_owned(),
        is_default: app.is_default,
        redirect_uris: strings(&app.redirect_uris),
        post_logout_redirect_uris: strings(&app.post_logout_redirect_uris),
        default_redirect_uri: one(&app.default_redirect_uri),
        initiate_login_uri: one(&app.initiate_login_uri),
        backchannel_logout_uri: one(&app.backchannel_logout_uri),
        return_url: one(&app.return_url),
        session_policy: app.session_policy.clone(),
        allow_sign_up: app.allow_sign_up,
        id_token_signed_response_alg: app.id_token_alg.as_str().to_owned(),
        allowed_scopes: app.allowed_scopes.clone(),
        effective_session_policy: effective,
        created_by: app.created_by.clone(),
        updated_by: app.updated_by.clone(),
        created_at: app.created_at.rfc3339(),
        updated_at: app.updated_at.rfc3339(),
    }
}

async fn full_view(state: &AppState, app: &Application) -> Result<ApplicationView, ApiError> {
    let effective = applications::effective_policy(&state.identity, app).await?;
    Ok(view(app, Some(effective)))
}

/// A fully configured application in one body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// 1–80 characters, unique.
    name: String,
    /// web, spa, native or m2m; fixed at creation.
    #[serde(rename = "type")]
    app_type: String,
    description: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// One of `redirect_uris`; the first one when absent.
    default_redirect_uri: Option<String>,
    initiate_login_uri: Option<String>,
    /// Web applications only.
    backchannel_logout_uri: Option<String>,
    /// Where password-reset and invitation pages return the user to.
    return_url: Option<String>,
    /// Overrides, e.g. `{"access_token_ttl_secs": 600}`; absent values inherit.
    #[schema(value_type = Option<Object>)]
    session_policy: Option<Map<String, Value>>,
    /// Whether the hosted pages let people sign up themselves (default false).
    allow_sign_up: Option<bool>,
    /// How ID tokens are signed: ES256 (default) or RS256.
    id_token_signed_response_alg: Option<String>,
    /// m2m only: the scopes client_credentials may grant (default none).
    allowed_scopes: Option<Vec<String>>,
}

/// Create an application.
#[utoipa::path(post, path = "/api/v1/applications", tag = "applications",
    request_body = CreateBody,
    responses((status = 201, body = ApplicationView), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    body: Result<ApiJson<CreateBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ManageApplications)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let new = NewApplication {
        name: body.name,
        app_type: body.app_type,
        description: body.description,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        default_redirect_uri: body.default_redirect_uri,
        initiate_login_uri: body.initiate_login_uri,
        backchannel_logout_uri: body.backchannel_logout_uri,
        return_url: body.return_url,
        session_policy: body.session_policy.unwrap_or_default(),
        allow_sign_up: body.allow_sign_up,
        id_token_alg: body.id_token_signed_response_alg,
        allowed_scopes: body.allowed_scopes,
    };
    let app =
        applications::create(&state.identity, &principal, &meta, new, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(full_view(&state, &app).await?)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Part of the name, or the start of the client ID.
    q: Option<String>,
    /// web, spa, native or m2m.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    app_type: Option<String>,
    /// active or disabled.
    status: Option<String>,
    /// newest (default), oldest or name.
    sort: Option<String>,
    /// `next_cursor` of the previous page.
    after: Option<String>,
    /// 1–200, default 50.
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct ApplicationPage {
    data: Vec<ApplicationView>,
    next_cursor: Option<String>,
    /// Matching applications over all pages.
    total: i64,
}

/// List applications (an application key sees only its own).
#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", params(ListParams),
    responses((status = 200, body = ApplicationPage), (status = 400, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = query else {
        return Ok(client_error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be an integer.",
        ));
    };
    let query = ListQuery {
        search: q.q,
        app_type: q.app_type.as_deref().map(AppType::parse).transpose()?,
        status: q
            .status
            .as_deref()
            .map(applications::Status::parse)
            .transpose()?,
        sort: q
            .sort
            .as_deref()
            .map(Sort::parse)
            .transpose()?
            .unwrap_or_default(),
        after: q.after,
        limit: q.limit.unwrap_or(50),
    };
    let page = applications::list(&state.identity, &principal, &query).await?;
    Ok(Json(ApplicationPage {
        data: page.items.iter().map(|a| view(a, None)).collect(),
        next_cursor: page.next_cursor,
        total: page.total,
    })
    .into_response())
}

/// Read one application with its effective session policy.
#[utoipa::path(get, path = "/api/v1/applications/{id}", tag = "applications",
    params(("id" = String, Path)), responses((status = 200, body = ApplicationView), (status = 404, body = ErrorBody)))]
async fn read(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApplicationView>, ApiError> {
    let app = applications::get(&state.identity, &principal, &id).await?;
    Ok(Json(full_view(&state, &app).await?))
}

/// A change; absent fields stay. `null` clears a single URI; in `session_policy`, `null` inherits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    /// active or disabled.
    status: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    default_redirect_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    initiate_login_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    backchannel_logout_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    return_url: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    session_policy: Option<Map<String, Value>>,
    allow_sign_up: Option<bool>,
    /// ES256 or RS256.
    id_token_signed_response_alg: Option<String>,
    /// m2m only: the scopes client_credentials may grant.
    allowed_scopes: Option<Vec<String>>,
    /// Refused: the type is fixed at creation.
    #[serde(rename = "type")]
    app_type: Option<String>,
}

/// Change an application.
#[utoipa::path(patch, path = "/api/v1/applications/{id}", tag = "applications",
    params(("id" = String, Path)), request_body = UpdateBody,
    responses((status = 200, body = ApplicationView), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Result<ApiJson<UpdateBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ManageApplications)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
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
        default_redirect_uri: body.default_redirect_uri,
        initiate_login_uri: body.initiate_login_uri,
        backchannel_logout_uri: body.backchannel_logout_uri,
        return_url: body.return_url,
        session_policy: body.session_policy,
        allow_sign_up: body.allow_sign_up,
        id_token_alg: body.id_token_signed_response_alg,
        allowed_scopes: body.allowed_scopes,
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
    Ok(Json(full_view(&state, &app).await?).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteParams {
    /// The application's name, typed to confirm.
    confirm_name: Option<String>,
}

/// Delete an application (not the default one); its audit history stays.
#[utoipa::path(delete, path = "/api/v1/applications/{id}", tag = "applications",
    params(("id" = String, Path), DeleteParams),
    responses((status = 204), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    Query(q): Query<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(Action::ManageApplications)?;
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

// ---- Client secrets ----

#[derive(Serialize, ToSchema)]
struct SecretView {
    id: String,
    /// Prefix and last four characters, e.g. `pcs_AbCd…wXyZ`.
    display: String,
    active: bool,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    /// Only in the response that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn secret_view(info: &SecretInfo, now: Timestamp) -> SecretView {
    SecretView {
        id: info.id.clone(),
        display: format!("{}…{}", info.prefix, info.last_four),
        active: info.is_active(now),
        created_at: info.created_at.rfc3339(),
        expires_at: info.expires_at.map(Timestamp::rfc3339),
        revoked_at: info.revoked_at.map(Timestamp::rfc3339),
        last_used_at: info.last_used_at.map(Timestamp::rfc3339),
        secret: None,
    }
}

fn created_secret(created: &credentials::CreatedSecret, now: Timestamp) -> Response {
    let mut out = secret_view(&created.info, now);
    out.secret = Some(created.secret.expose_secret().to_owned());
    (StatusCode::CREATED, Json(out)).into_response()
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    /// Optional expiry, 60 s – 5 years.
    expires_in_secs: Option<i64>,
}

/// Create a client secret (web and m2m only; at most two active); 201 with the `secret`, shown once.
#[utoipa::path(post, path = "/api/v1/applications/{id}/secrets", tag = "credentials",
    params(("id" = String, Path)), request_body(content = Option<SecretBody>),
    responses((status = 201, body = SecretView), (status = 409, body = ErrorBody)))]
async fn create_secret(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Option<Json<SecretBody>>,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ManageApplications)?;
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
    Ok(created_secret(&created, now))
}

#[derive(Serialize, ToSchema)]
struct SecretList {
    data: Vec<SecretView>,
}

/// List an application's secrets: metadata only, never the secret.
#[utoipa::path(get, path = "/api/v1/applications/{id}/secrets", tag = "credentials",
    params(("id" = String, Path)), responses((status = 200, body = SecretList)))]
async fn list_secrets(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretList>, ApiError> {
    let now = Timestamp::now();
    let secrets = credentials::list(&state.identity, &principal, &id).await?;
    Ok(Json(SecretList {
        data: secrets.iter().map(|s| secret_view(s, now)).collect(),
    }))
}

/// Revoke a secret at once.
#[utoipa::path(delete, path = "/api/v1/applications/{id}/secrets/{secret_id}", tag = "credentials",
    params(("id" = String, Path), ("secret_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_secret(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, secret_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(Action::ManageApplications)?;
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

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps working (default one day).
    grace_secs: Option<i64>,
}

/// Rotate: a new secret now, the old one expires after the grace period.
#[utoipa::path(post, path = "/api/v1/applications/{id}/secrets/{secret_id}/rotate", tag = "credentials",
    params(("id" = String, Path), ("secret_id" = String, Path)), request_body(content = Option<RotateBody>),
    responses((status = 201, body = SecretView), (status = 409, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, secret_id)): Path<(String, String)>,
    body: Option<Json<RotateBody>>,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ManageApplications)?;
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
    Ok(created_secret(&created, now))
}

// ---- Application API keys ----

#[derive(Serialize, ToSchema)]
struct AppKeyView {
    id: String,
    name: String,
    /// Among users:read, users:write, sessions:revoke, audit:read.
    scopes: Vec<String>,
    /// The key's first characters, e.g. `pcapp_AbCdEf`.
    prefix: String,
    active: bool,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    last_used_ip: Option<String>,
    /// Only in the response that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

fn key_view(info: &AppKeyInfo, now: Timestamp) -> AppKeyView {
    AppKeyView {
        id: info.id.clone(),
        name: info.name.clone(),
        scopes: info.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        prefix: info.prefix.clone(),
        active: info.is_active(now),
        created_at: info.created_at.rfc3339(),
        expires_at: info.expires_at.map(Timestamp::rfc3339),
        revoked_at: info.revoked_at.map(Timestamp::rfc3339),
        last_used_at: info.last_used_at.map(Timestamp::rfc3339),
        last_used_ip: info.last_used_ip.clone(),
        key: None,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Optional expiry, 1 minute – 2 years.
    expires_in_secs: Option<i64>,
}

/// Create an API key confined to this application; 201 with the `key`, shown once.
#[utoipa::path(post, path = "/api/v1/applications/{id}/api-keys", tag = "credentials",
    params(("id" = String, Path)), request_body = KeyBody,
    responses((status = 201, body = AppKeyView), (status = 422, body = ErrorBody)))]
async fn create_key(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    body: Result<ApiJson<KeyBody>, Response>,
) -> Result<Response, ApiError> {
    principal.authorize(Action::ManageApplications)?;
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(rejection) => return Ok(rejection),
    };
    let now = Timestamp::now();
    let created = app_keys::create(
        &state.identity,
        &principal,
        &meta,
        &id,
        NewAppKey {
            name: body.name,
            scopes: body.scopes,
            expires_in_secs: body.expires_in_secs,
        },
        now,
    )
    .await?;
    let mut out = key_view(&created.info, now);
    out.key = Some(created.key.expose_secret().to_owned());
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Serialize, ToSchema)]
struct KeyList {
    data: Vec<AppKeyView>,
}

/// List an application's API keys: metadata only.
#[utoipa::path(get, path = "/api/v1/applications/{id}/api-keys", tag = "credentials",
    params(("id" = String, Path)), responses((status = 200, body = KeyList)))]
async fn list_keys(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    let now = Timestamp::now();
    let keys = app_keys::list(&state.identity, &principal, &id).await?;
    Ok(Json(KeyList {
        data: keys.iter().map(|k| key_view(k, now)).collect(),
    }))
}

/// Revoke an API key at once.
#[utoipa::path(delete, path = "/api/v1/applications/{id}/api-keys/{key_id}", tag = "credentials",
    params(("id" = String, Path), ("key_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_key(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Caller(principal): Caller,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.authorize(Action::ManageApplications)?;
    app_keys::revoke(
        &state.identity,
        &principal,
        &meta,
        &id,
        &key_id,
        Timestamp::now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct DeliveryList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<identity::logout::Delivery>,
}

/// The application's latest back-channel logout deliveries (pending, delivered or failed), newest
/// first. Logout tokens themselves are never shown.
#[utoipa::path(get, path = "/api/v1/applications/{id}/logout-deliveries", tag = "applications",
    params(("id" = String, Path)), responses((status = 200, body = DeliveryList), (status = 404, body = ErrorBody)))]
async fn logout_deliveries(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    let data = identity::logout::deliveries(&state.identity, &principal, &id, 50).await?;
    Ok(Json(DeliveryList { data }))
}

#[derive(Serialize, ToSchema)]
struct ApplicationSessionList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<identity::users::ApplicationSession>,
}

/// The newest live sign-in sessions (up to 200) that started in this application or signed in to
/// it. End one with `DELETE /api/v1/users/{id}/sessions/{session_id}`.
#[utoipa::path(get, path = "/api/v1/applications/{id}/sessions", tag = "applications",
    params(("id" = String, Path)),
    responses((status = 200, body = ApplicationSessionList), (status = 404, body = ErrorBody)))]
async fn application_sessions(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApplicationSessionList>, ApiError> {
    let data = identity::users::application_sessions(
        &state.identity,
        &principal,
        &id,
        200,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(ApplicationSessionList { data }))
}
