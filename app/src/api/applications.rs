//! Server functions of the Applications pages and the environment's default session policy. Each one
//! authorizes (inside the `identity` call), parses, calls `identity`, and maps the result.

use super::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The application types, as (value, label, one-line explanation), in the order forms offer them.
pub const APP_TYPES: [(&str, &str, &str); 4] = [
    (
        "web",
        "Web app",
        "A server-side web application that can keep a client secret.",
    ),
    (
        "spa",
        "Single-page app",
        "Runs in the browser; a public client that cannot keep a secret.",
    ),
    (
        "native",
        "Native app",
        "A mobile, desktop or command-line app; a public client.",
    ),
    (
        "m2m",
        "Machine to machine",
        "A backend service calling APIs as itself, with no users.",
    ),
];

pub fn type_label(value: &str) -> &'static str {
    APP_TYPES
        .iter()
        .find(|(v, _, _)| *v == value)
        .map(|(_, label, _)| *label)
        .unwrap_or("Unknown")
}

/// The scopes an application API key can be given, as (value, label).
pub const SCOPES: [(&str, &str); 4] = [
    ("users:read", "Read users"),
    ("users:write", "Create and change users"),
    ("sessions:revoke", "Revoke sign-in sessions"),
    ("audit:read", "Read this application's audit events"),
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    pub id: String,
    pub name: String,
    pub app_type: String,
    pub client_id: String,
    pub status: String,
    pub is_default: bool,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppListPage {
    pub items: Vec<AppSummary>,
    pub next_cursor: Option<String>,
    pub total: i64,
}

/// One session-policy value as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRow {
    /// The field name, e.g. `access_token_ttl_secs`.
    pub key: String,
    pub label: String,
    /// true for on/off values, false for durations in seconds.
    pub is_switch: bool,
    /// The value in force, for people ("15 min", "on").
    pub effective: String,
    /// Where it comes from ("this application", "environment default", …).
    pub source: String,
    /// The value this layer sets, as a form value ("" = inherits).
    pub own: String,
    /// Fixed by the application type: not editable.
    pub fixed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRow {
    pub id: String,
    pub display: String,
    pub active: bool,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// One back-channel logout delivery (never the token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutRow {
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    pub last_error: Option<String>,
}

/// A live sign-in session in which the application took part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSessionRow {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub ip: String,
    pub created_at: String,
    pub last_seen_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub prefix: String,
    pub active: bool,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDetail {
    pub summary: AppSummary,
    pub description: String,
    pub updated_at: String,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub default_redirect_uri: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub initiate_login_uri: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub return_url: Option<String>,
    pub policy: Vec<PolicyRow>,
    pub allow_sign_up: bool,
    pub roles: Vec<RoleRow>,
    pub secrets: Vec<SecretRow>,
    pub keys: Vec<KeyRow>,
    /// The latest back-channel logout deliveries, newest first.
    pub logouts: Vec<LogoutRow>,
    /// The newest live sessions that signed in to it.
    pub sessions: Vec<AppSessionRow>,
    pub impersonation: super::impersonation::ImpSettings,
    /// The viewer may end sessions.
    pub can_revoke_sessions: bool,
    /// The viewer may change this application.
    pub can_manage: bool,
}

/// A secret or key just created: shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revealed {
    pub what: String,
    pub value: String,
}

/// The environment-wide defaults and whether the viewer may change them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvPolicy {
    pub rows: Vec<PolicyRow>,
    pub can_manage: bool,
}

/// A page of applications for the list: filters as they come from the URL.
#[server(prefix = "/rpc", endpoint = "list_applications")]
pub async fn list_applications(
    q: Option<String>,
    app_type: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    after: Option<String>,
) -> Result<AppListPage, AppError> {
    use identity::applications::{self, AppType, ListQuery, Sort, Status};
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let fail = crate::ssr::fail;
    let query = ListQuery {
        search: nonempty(q),
        app_type: nonempty(app_type)
            .as_deref()
            .map(AppType::parse)
            .transpose()
            .map_err(fail)?,
        status: nonempty(status)
            .as_deref()
            .map(Status::parse)
            .transpose()
            .map_err(fail)?,
        sort: nonempty(sort)
            .as_deref()
            .map(Sort::parse)
            .transpose()
            .map_err(fail)?
            .unwrap_or_default(),
        after: nonempty(after),
        limit: 25,
    };
    let page = applications::list(&call.identity, principal, &query)
        .await
        .map_err(fail)?;
    Ok(AppListPage {
        items: page.items.iter().map(crate::ssr::app_summary).collect(),
        next_cursor: page.next_cursor,
        total: page.total,
    })
}

#[server(prefix = "/rpc", endpoint = "create_application")]
pub async fn create_application(
    csrf: String,
    name: String,
    app_type: String,
    description: Option<String>,
) -> Result<AppSummary, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let new = identity::applications::NewApplication {
        name,
        app_type,
        description,
        ..Default::default()
    };
    identity::applications::create(
        &call.identity,
        principal,
        &call.meta,
        new,
        identity::Timestamp::now(),
    )
    .await
    .map(|a| crate::ssr::app_summary(&a))
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "get_application")]
pub async fn get_application(id: String) -> Result<AppDetail, AppError> {
    crate::ssr::app_detail(&id).await
}

/// Name, description and the self sign-up switch (a checkbox: present when on).
#[server(prefix = "/rpc", endpoint = "update_application_overview")]
pub async fn update_application_overview(
    csrf: String,
    id: String,
    name: String,
    description: String,
    allow_sign_up: Option<String>,
    app_type: String,
) -> Result<(), AppError> {
    crate::ssr::update_application(
        &csrf,
        &id,
        identity::applications::Change {
            name: Some(name),
            description: Some(description),
            allow_sign_up: (app_type != "m2m").then_some(allow_sign_up.is_some()),
            ..Default::default()
        },
    )
    .await
}

/// Permissions are separated by commas or spaces.
#[server(prefix = "/rpc", endpoint = "create_app_role")]
pub async fn create_app_role(
    csrf: String,
    id: String,
    name: String,
    description: String,
    permissions: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let new = identity::roles::NewRole {
        name,
        description,
        permissions: permissions
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    identity::roles::create(
        &call.identity,
        principal,
        &call.meta,
        &id,
        new,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "delete_app_role")]
pub async fn delete_app_role(csrf: String, id: String, role_id: String) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::roles::delete(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &role_id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

/// The Redirects tab's fields: lists are one URI per line; empty single fields clear them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectsForm {
    pub redirect_uris: String,
    pub default_redirect_uri: Option<String>,
    pub post_logout_redirect_uris: String,
    pub initiate_login_uri: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub return_url: Option<String>,
}

/// The form posts its fields as `urls[redirect_uris]`, `urls[return_url]`, ….
#[server(prefix = "/rpc", endpoint = "update_application_redirects")]
pub async fn update_application_redirects(
    csrf: String,
    id: String,
    urls: RedirectsForm,
) -> Result<(), AppError> {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let single = |v: Option<String>| Some(v.filter(|s| !s.trim().is_empty()));
    crate::ssr::update_application(
        &csrf,
        &id,
        identity::applications::Change {
            redirect_uris: Some(lines(&urls.redirect_uris)),
            post_logout_redirect_uris: Some(lines(&urls.post_logout_redirect_uris)),
            default_redirect_uri: single(urls.default_redirect_uri),
            initiate_login_uri: single(urls.initiate_login_uri),
            backchannel_logout_uri: single(urls.backchannel_logout_uri),
            return_url: single(urls.return_url),
            ..Default::default()
        },
    )
    .await
}

/// The Session policy tab. Every field is a form value: empty inherits; durations in seconds;
/// switches "on"/"off".
#[server(prefix = "/rpc", endpoint = "update_application_policy")]
pub async fn update_application_policy(
    csrf: String,
    id: String,
    policy: std::collections::BTreeMap<String, String>,
) -> Result<(), AppError> {
    let patch = crate::ssr::policy_patch(&policy)?;
    crate::ssr::update_application(
        &csrf,
        &id,
        identity::applications::Change {
            session_policy: Some(patch),
            ..Default::default()
        },
    )
    .await
}

/// "active" or "disabled".
#[server(prefix = "/rpc", endpoint = "set_application_status")]
pub async fn set_application_status(
    csrf: String,
    id: String,
    status: String,
) -> Result<(), AppError> {
    crate::ssr::update_application(
        &csrf,
        &id,
        identity::applications::Change {
            status: Some(status),
            ..Default::default()
        },
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "delete_application")]
pub async fn delete_application(
    csrf: String,
    id: String,
    confirm_name: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::applications::delete(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &confirm_name,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "create_client_secret")]
pub async fn create_client_secret(csrf: String, id: String) -> Result<Revealed, AppError> {
    use secrecy::ExposeSecret;
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let created = identity::credentials::create(
        &call.identity,
        principal,
        &call.meta,
        &id,
        None,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(Revealed {
        what: "client secret".to_owned(),
        value: created.secret.expose_secret().to_owned(),
    })
}

#[server(prefix = "/rpc", endpoint = "rotate_client_secret")]
pub async fn rotate_client_secret(
    csrf: String,
    id: String,
    secret_id: String,
) -> Result<Revealed, AppError> {
    use secrecy::ExposeSecret;
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let created = identity::credentials::rotate(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &secret_id,
        None,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(Revealed {
        what: "client secret".to_owned(),
        value: created.secret.expose_secret().to_owned(),
    })
}

#[server(prefix = "/rpc", endpoint = "revoke_client_secret")]
pub async fn revoke_client_secret(
    csrf: String,
    id: String,
    secret_id: String,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::credentials::revoke(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &secret_id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

/// Scopes arrive as checkbox fields named after the scope (`users:read=on`); `expires_in_days` is
/// empty for no expiry.
#[server(prefix = "/rpc", endpoint = "create_app_key")]
pub async fn create_app_key(
    csrf: String,
    id: String,
    name: String,
    expires_in_days: Option<String>,
    scopes: Option<std::collections::BTreeMap<String, String>>,
) -> Result<Revealed, AppError> {
    use secrecy::ExposeSecret;
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let expires_in_secs = match expires_in_days
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(days) => match days.parse::<i64>() {
            Ok(d) if d > 0 => Some(d * 24 * 60 * 60),
            _ => {
                return Err(crate::ssr::invalid(
                    "expires_in_secs",
                    "Enter a whole number of days, or leave it empty.",
                ));
            }
        },
    };
    let new = identity::app_keys::NewAppKey {
        name,
        scopes: scopes.unwrap_or_default().into_keys().collect(),
        expires_in_secs,
    };
    let created = identity::app_keys::create(
        &call.identity,
        principal,
        &call.meta,
        &id,
        new,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(Revealed {
        what: "API key".to_owned(),
        value: created.key.expose_secret().to_owned(),
    })
}

#[server(prefix = "/rpc", endpoint = "revoke_app_key")]
pub async fn revoke_app_key(csrf: String, id: String, key_id: String) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::app_keys::revoke(
        &call.identity,
        principal,
        &call.meta,
        &id,
        &key_id,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}

#[server(prefix = "/rpc", endpoint = "environment_policy")]
pub async fn environment_policy() -> Result<EnvPolicy, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let overrides = identity::settings::session_policy(&call.identity, principal)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(EnvPolicy {
        rows: crate::ssr::environment_policy_rows(&overrides),
        can_manage: principal.can(identity::Action::ManageSettings),
    })
}

#[server(prefix = "/rpc", endpoint = "update_environment_policy")]
pub async fn update_environment_policy(
    csrf: String,
    policy: std::collections::BTreeMap<String, String>,
) -> Result<(), AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let patch = crate::ssr::policy_patch(&policy)?;
    identity::settings::update_session_policy(
        &call.identity,
        principal,
        &call.meta,
        &patch,
        identity::Timestamp::now(),
    )
    .await
    .map(|_| ())
    .map_err(crate::ssr::fail)
}
