//! Audit webhook streams (SIEM): the list, one stream with its delivery log, and the owner's
//! actions (create, pause/resume, rotate the secret, delete, redeliver).

use super::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRow {
    pub id: String,
    pub name: String,
    pub url: String,
    /// The filter in words, e.g. "category sign_in, outcome failure" or "every event".
    pub filter: String,
    pub status: String,
    pub secret_hint: String,
    pub cursor_seq: i64,
    /// Events written since the cursor (not all of them need match the filter).
    pub behind: i64,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub last_success_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: i64,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub requested_by: Option<String>,
    pub created_at: String,
}

/// What the stream form offers in its filter selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChoices {
    pub categories: Vec<String>,
    pub events: Vec<String>,
    /// (id, name)
    pub applications: Vec<(String, String)>,
}

/// A stream's settings as the dashboard's form shows them and sends them (as `settings[name]`, …;
/// empty: any). Filter fields only the API sets (user, actor type, text) are kept as they are when
/// the form is saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSettings {
    pub name: String,
    pub url: String,
    pub category: String,
    pub event: String,
    pub application: String,
    pub outcome: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamsPage {
    pub streams: Vec<StreamRow>,
    pub can_manage: bool,
    pub choices: FilterChoices,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPage {
    pub stream: StreamRow,
    pub settings: StreamSettings,
    pub deliveries: Vec<DeliveryRow>,
    pub can_manage: bool,
    pub choices: FilterChoices,
}

/// A secret, shown once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSecret {
    pub stream_id: String,
    pub secret: String,
}

#[server(prefix = "/rpc", endpoint = "audit_streams_page")]
pub async fn audit_streams_page() -> Result<StreamsPage, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let streams = identity::audit_streams::list(&call.identity, principal)
        .await
        .map_err(crate::ssr::fail)?;
    let head = crate::ssr::audit_head(&call.identity).await?;
    Ok(StreamsPage {
        streams: streams
            .into_iter()
            .map(|s| crate::ssr::stream_row(s, head))
            .collect(),
        can_manage: principal
            .authorize(identity::Action::ManageAuditStreams)
            .is_ok(),
        choices: crate::ssr::stream_filter_choices(&call.identity, principal).await?,
    })
}

#[server(prefix = "/rpc", endpoint = "audit_stream_page")]
pub async fn audit_stream_page(id: String) -> Result<StreamPage, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let stream = identity::audit_streams::get(&call.identity, principal, &id)
        .await
        .map_err(crate::ssr::fail)?;
    let deliveries = identity::audit_streams::deliveries(&call.identity, principal, &id, 100)
        .await
        .map_err(crate::ssr::fail)?;
    let head = crate::ssr::audit_head(&call.identity).await?;
    Ok(StreamPage {
        settings: crate::ssr::stream_settings(&stream),
        stream: crate::ssr::stream_row(stream, head),
        deliveries: deliveries
            .into_iter()
            .map(crate::ssr::delivery_row)
            .collect(),
        can_manage: principal
            .authorize(identity::Action::ManageAuditStreams)
            .is_ok(),
        choices: crate::ssr::stream_filter_choices(&call.identity, principal).await?,
    })
}

/// Creates a stream from the form's fields (`settings[name]`, `settings[url]`, …).
#[server(prefix = "/rpc", endpoint = "create_audit_stream")]
pub async fn create_audit_stream(
    csrf: String,
    settings: StreamSettings,
) -> Result<NewSecret, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let input = crate::ssr::stream_input(settings, identity::audit::Filter::default());
    identity::audit_streams::create(
        &call.identity,
        principal,
        &call.meta,
        &input,
        identity::Timestamp::now(),
    )
    .await
    .map(crate::ssr::new_secret)
    .map_err(crate::ssr::fail)
}

/// Changes a stream's name, endpoint and the filter fields the form shows.
#[server(prefix = "/rpc", endpoint = "update_audit_stream")]
pub async fn update_audit_stream(
    csrf: String,
    id: String,
    settings: StreamSettings,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let before = identity::audit_streams::get(&call.identity, principal, &id)
        .await
        .map_err(crate::ssr::fail)?;
    let change = identity::audit_streams::Change {
        input: Some(crate::ssr::stream_input(settings, before.filter)),
        status: None,
    };
    crate::ssr::change_stream(&call, principal, &id, &change).await
}

/// Pause (`paused`) or resume (`active`).
#[server(prefix = "/rpc", endpoint = "set_audit_stream_status")]
pub async fn set_audit_stream_status(
    csrf: String,
    id: String,
    status: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let change = identity::audit_streams::Change {
        input: None,
        status: Some(status),
    };
    crate::ssr::change_stream(&call, principal, &id, &change).await
}

#[server(prefix = "/rpc", endpoint = "rotate_audit_stream_secret")]
pub async fn rotate_audit_stream_secret(csrf: String, id: String) -> Result<NewSecret, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::audit_streams::rotate_secret(
        &call.identity,
        principal,
        &call.meta,
        &id,
        identity::Timestamp::now(),
    )
    .await
    .map(crate::ssr::new_secret)
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "delete_audit_stream")]
pub async fn delete_audit_stream(csrf: String, id: String) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::audit_streams::delete(
        &call.identity,
        principal,
        &call.meta,
        &id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "redeliver_audit_delivery")]
pub async fn redeliver_audit_delivery(
    csrf: String,
    stream_id: String,
    delivery_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::audit_streams::redeliver(
        &call.identity,
        principal,
        &call.meta,
        &stream_id,
        &delivery_id,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(crate::ssr::fail)
}
