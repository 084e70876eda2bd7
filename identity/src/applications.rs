//! Applications: one per product surface (web app, SPA, native app, backend service), all over one
//! shared user pool. Each has a client ID fixed at creation, a type, a status, and its redirect URIs.

use crate::audit::{self, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::error::{Context, Error, Result, is_unique_violation};
use crate::redirect_uris::{self, Endpoint, RedirectUri};
use crate::secret::new_id;
use crate::session_policy::{self, Effective, Overrides};
use crate::settings;
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row};

/// What kind of surface an application is. Fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppType {
    /// Server-side web app; confidential (holds a client secret).
    Web,
    /// Single-page app in the browser; public.
    Spa,
    /// Mobile, desktop or CLI app; public.
    Native,
    /// Backend service without users; confidential.
    M2m,
}

impl AppType {
    pub const ALL: [AppType; 4] = [AppType::Web, AppType::Spa, AppType::Native, AppType::M2m];

    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Web => "web",
            AppType::Spa => "spa",
            AppType::Native => "native",
            AppType::M2m => "m2m",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == input.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "type",
                    "invalid_type",
                    "Type must be one of web, spa, native, m2m.",
                )
            })
    }

    /// Confidential clients authenticate with a secret; public ones cannot keep one.
    pub fn is_confidential(self) -> bool {
        matches!(self, AppType::Web | AppType::M2m)
    }

    fn client_id_prefix(self) -> &'static str {
        match self {
            AppType::Web => "web_",
            AppType::Spa => "spa_",
            AppType::Native => "nat_",
            AppType::M2m => "m2m_",
        }
    }
}

/// A new client ID: the type's prefix and 128 random bits, URL-safe (e.g. `spa_Qm9…`).
pub fn generate_client_id(app_type: AppType) -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "{}{}",
        app_type.client_id_prefix(),
        URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        match input.trim() {
            "active" => Ok(Status::Active),
            "disabled" => Ok(Status::Disabled),
            _ => Err(Error::invalid(
                "status",
                "invalid_status",
                "Status must be active or disabled.",
            )),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Application {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub app_type: AppType,
    pub client_id: String,
    pub status: Status,
    pub is_default: bool,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// The sign-in redirect used when a request names none; always one of `redirect_uris`.
    pub default_redirect_uri: Option<RedirectUri>,
    pub initiate_login_uri: Option<RedirectUri>,
    pub backchannel_logout_uri: Option<RedirectUri>,
    /// Where password-reset and invitation pages return the user to.
    pub return_url: Option<RedirectUri>,
    /// The session-policy values this application overrides.
    pub session_policy: Overrides,
    /// Whether the hosted pages let people sign up to this application themselves.
    pub allow_sign_up: bool,
    /// How this application's ID tokens are signed (`id_token_signed_response_alg`).
    pub id_token_alg: crate::keys::Alg,
    /// The scopes a machine-to-machine application may request (client_credentials).
    pub allowed_scopes: Vec<String>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a caller asks for when creating an application.
#[derive(Clone, Debug, Default)]
pub struct NewApplication {
    pub name: String,
    pub app_type: String,
    pub description: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub default_redirect_uri: Option<String>,
    pub initiate_login_uri: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub return_url: Option<String>,
    /// Overrides to set (`null` values are ignored: a new application inherits them).
    pub session_policy: Map<String, Value>,
    pub allow_sign_up: Option<bool>,
    pub id_token_alg: Option<String>,
    pub allowed_scopes: Option<Vec<String>>,
}

/// A change; absent fields stay as they are. For the single URIs, `Some(None)` or an empty string
/// clears. In `session_policy`, a value sets an override and `null` returns to inheriting. The type
/// never changes.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub default_redirect_uri: Option<Option<String>>,
    pub initiate_login_uri: Option<Option<String>>,
    pub backchannel_logout_uri: Option<Option<String>>,
    pub return_url: Option<Option<String>>,
    pub session_policy: Option<Map<String, Value>>,
    pub allow_sign_up: Option<bool>,
    pub id_token_alg: Option<String>,
    pub allowed_scopes: Option<Vec<String>>,
}

/// Scope values for machine clients: 1–100 printable characters without spaces, quotes or
/// backslashes (RFC 6749 §3.3), at most 50, machine-to-machine applications only.
fn parse_scopes(app_type: AppType, input: &[String]) -> Result<Vec<String>> {
    if !input.is_empty() && app_type != AppType::M2m {
        return Err(Error::invalid(
            "allowed_scopes",
            "scopes_m2m_only",
            "Only machine-to-machine applications have scopes to request; users' apps use OpenID scopes.",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for s in input {
        let s = s.trim();
        let ok = (1..=100).contains(&s.len())
            && s.bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
        if !ok || input.len() > 50 {
            return Err(Error::invalid(
                "allowed_scopes",
                "invalid_scope",
                "Scopes are up to 50 values of 1–100 printable characters without spaces or quotes.",
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

fn parse_name(input: &str) -> Result<String> {
    let name = input.trim();
    let n = name.chars().count();
    if n == 0 || n > 80 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "invalid_name",
            "Name must be 1–80 characters.",
        ));
    }
    Ok(name.to_owned())
}

fn parse_description(input: &str) -> Result<String> {
    if input.chars().count() > 1000 {
        return Err(Error::invalid(
            "description",
            "invalid_description",
            "Description may be at most 1000 characters.",
        ));
    }
    Ok(input.trim().to_owned())
}

const COLUMNS: &str = "application_id, name, description, app_type, client_id, status, is_default, \
     redirect_uris, post_logout_redirect_uris, default_redirect_uri, initiate_login_uri, \
     backchannel_logout_uri, return_url, session_policy, allow_sign_up, created_by, updated_by, created_at, \
     updated_at, id_token_alg, allowed_scopes";

fn uris_from_db(text: &str) -> Vec<RedirectUri> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .into_iter()
        .map(RedirectUri::from_trusted)
        .collect()
}

fn uris_to_db(uris: &[RedirectUri]) -> String {
    serde_json::to_string(&uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn uri_from_db(row: &sqlx::any::AnyRow, column: &'static str) -> Result<Option<RedirectUri>> {
    Ok(row
        .try_get::<Option<String>, _>(column)
        .context("application uri")?
        .map(RedirectUri::from_trusted))
}

fn uri_to_db(uri: &Option<RedirectUri>) -> Option<&str> {
    uri.as_ref().map(RedirectUri::as_str)
}

fn decode(row: &sqlx::any::AnyRow) -> Result<Application> {
    let policy: String = row
        .try_get("session_policy")
        .context("application.session_policy")?;
    let app_type: String = row.try_get("app_type").context("application.app_type")?;
    let status: String = row.try_get("status").context("application.status")?;
    let redirect: String = row
        .try_get("redirect_uris")
        .context("application.redirect_uris")?;
    let post_logout: String = row
        .try_get("post_logout_redirect_uris")
        .context("application.post_logout")?;
    Ok(Application {
        id: row.try_get("application_id").context("application.id")?,
        name: row.try_get("name").context("application.name")?,
        description: row
            .try_get("description")
            .context("application.description")?,
        app_type: AppType::parse(&app_type)?,
        client_id: row.try_get("client_id").context("application.client_id")?,
        status: Status::parse(&status)?,
        is_default: row
            .try_get::<i64, _>("is_default")
            .context("application.is_default")?
            == 1,
        redirect_uris: uris_from_db(&redirect),
        post_logout_redirect_uris: uris_from_db(&post_logout),
        default_redirect_uri: uri_from_db(row, "default_redirect_uri")?,
        initiate_login_uri: uri_from_db(row, "initiate_login_uri")?,
        backchannel_logout_uri: uri_from_db(row, "backchannel_logout_uri")?,
        return_url: uri_from_db(row, "return_url")?,
        session_policy: Overrides::from_db(&policy),
        allow_sign_up: row
            .try_get::<i64, _>("allow_sign_up")
            .context("application.allow_sign_up")?
            == 1,
        id_token_alg: crate::keys::Alg::parse(
            &row.try_get::<String, _>("id_token_alg")
                .context("application.id_token_alg")?,
        )?,
        allowed_scopes: serde_json::from_str(
            &row.try_get::<String, _>("allowed_scopes")
                .context("application.allowed_scopes")?,
        )
        .unwrap_or_default(),
        created_by: row
            .try_get("created_by")
            .context("application.created_by")?,
        updated_by: row
            .try_get("updated_by")
            .context("application.updated_by")?,
        created_at: Timestamp::from_millis(
            row.try_get("created_at")
                .context("application.created_at")?,
        ),
        updated_at: Timestamp::from_millis(
            row.try_get("updated_at")
                .context("application.updated_at")?,
        ),
    })
}

async fn insert(tx: &mut Tx, app: &Application) -> Result<()> {
    sqlx::query(
        "insert into application (application_id, name, description, app_type, client_id, status, is_default, \
         redirect_uris, post_logout_redirect_uris, default_redirect_uri, initiate_login_uri, \
         backchannel_logout_uri, return_url, session_policy, allow_sign_up, created_by, updated_by, created_at, \
         updated_at, name_lower, id_token_alg, allowed_scopes) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
    )
    .bind(&app.id)
    .bind(&app.name)
    .bind(&app.description)
    .bind(app.app_type.as_str())
    .bind(&app.client_id)
    .bind(app.status.as_str())
    .bind(i64::from(app.is_default))
    .bind(uris_to_db(&app.redirect_uris))
    .bind(uris_to_db(&app.post_logout_redirect_uris))
    .bind(uri_to_db(&app.default_redirect_uri))
    .bind(uri_to_db(&app.initiate_login_uri))
    .bind(uri_to_db(&app.backchannel_logout_uri))
    .bind(uri_to_db(&app.return_url))
    .bind(app.session_policy.to_db())
    .bind(i64::from(app.allow_sign_up))
    .bind(&app.created_by)
    .bind(&app.updated_by)
    .bind(app.created_at.millis())
    .bind(app.updated_at.millis())
    .bind(app.name.to_lowercase())
    .bind(app.id_token_alg.as_str())
    .bind(json!(app.allowed_scopes).to_string())
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(|e| write_error(e, "Failed to store an application"))
}

/// A unique violation on write is the name being taken (the client ID and id are random).
fn write_error(e: sqlx::Error, context: &'static str) -> Error {
    if is_unique_violation(&e) {
        Error::invalid(
            "name",
            "name_taken",
            "An application with this name already exists.",
        )
    } else {
        Error::internal(context, e)
    }
}

/// The audited view of an application: every configurable field.
fn summary(app: &Application) -> Value {
    json!({
        "name": app.name, "description": app.description, "type": app.app_type,
        "client_id": app.client_id, "status": app.status,
        "redirect_uris": app.redirect_uris, "post_logout_redirect_uris": app.post_logout_redirect_uris,
        "default_redirect_uri": app.default_redirect_uri, "initiate_login_uri": app.initiate_login_uri,
        "backchannel_logout_uri": app.backchannel_logout_uri, "return_url": app.return_url,
        "session_policy": app.session_policy, "allow_sign_up": app.allow_sign_up,
        "id_token_signed_response_alg": app.id_token_alg.as_str(),
        "allowed_scopes": app.allowed_scopes,
    })
}

/// Keys of `summary` an update may change.
const CHANGEABLE: [&str; 13] = [
    "allow_sign_up",
    "allowed_scopes",
    "id_token_signed_response_alg",
    "name",
    "description",
    "status",
    "redirect_uris",
    "post_logout_redirect_uris",
    "default_redirect_uri",
    "initiate_login_uri",
    "backchannel_logout_uri",
    "return_url",
    "session_policy",
];

/// The default redirect must be one of the list. Named explicitly, it must be listed; otherwise it
/// stays when still listed and falls back to the first entry.
fn settle_default(app: &mut Application, explicit: bool) -> Result<()> {
    let listed = |u: &RedirectUri| app.redirect_uris.contains(u);
    match &app.default_redirect_uri {
        Some(uri) if !listed(uri) && explicit => Err(Error::invalid(
            "default_redirect_uri",
            "default_redirect_uri_unlisted",
            "The default redirect URI must be one of the sign-in redirect URIs.",
        )),
        Some(uri) if listed(uri) => Ok(()),
        _ => {
            app.default_redirect_uri = app.redirect_uris.first().cloned();
            Ok(())
        }
    }
}

/// Parses an optional single URI of `endpoint` kind.
fn endpoint(
    field: &'static str,
    input: Option<&str>,
    app_type: AppType,
    kind: Endpoint,
) -> Result<Option<RedirectUri>> {
    redirect_uris::parse_endpoint(field, input.unwrap_or_default(), app_type, kind)
}

/// The effective session policy of `app`: its overrides over the environment's over the type's.
pub async fn effective_policy(identity: &Identity, app: &Application) -> Result<Effective> {
    let env = settings::session_policy_on(&mut *identity.db().connection().await?).await?;
    Ok(session_policy::resolve(
        app.app_type,
        &env,
        &app.session_policy,
    ))
}

/// Creates an application with a fresh client ID.
pub async fn create(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    new: NewApplication,
    now: Timestamp,
) -> Result<Application> {
    principal.authorize(Action::ManageApplications)?;
    let app_type = AppType::parse(&new.app_type)?;
    let policy = Map::from_iter(new.session_policy.into_iter().filter(|(_, v)| !v.is_null()));
    let mut app = Application {
        id: new_id(),
        name: parse_name(&new.name)?,
        description: parse_description(new.description.as_deref().unwrap_or_default())?,
        app_type,
        client_id: generate_client_id(app_type),
        status: Status::Active,
        is_default: false,
        redirect_uris: redirect_uris::parse_list("redirect_uris", &new.redirect_uris, app_type)?,
        post_logout_redirect_uris: redirect_uris::parse_list(
            "post_logout_redirect_uris",
            &new.post_logout_redirect_uris,
            app_type,
        )?,
        default_redirect_uri: endpoint(
            "default_redirect_uri",
            new.default_redirect_uri.as_deref(),
            app_type,
            Endpoint::ReturnUrl,
        )?,
        initiate_login_uri: endpoint(
            "initiate_login_uri",
            new.initiate_login_uri.as_deref(),
            app_type,
            Endpoint::InitiateLogin,
        )?,
        backchannel_logout_uri: endpoint(
            "backchannel_logout_uri",
            new.backchannel_logout_uri.as_deref(),
            app_type,
            Endpoint::BackchannelLogout,
        )?,
        return_url: endpoint(
            "return_url",
            new.return_url.as_deref(),
            app_type,
            Endpoint::ReturnUrl,
        )?,
        session_policy: Overrides::default().merge(&policy)?,
        allow_sign_up: new.allow_sign_up.unwrap_or(false),
        id_token_alg: match new.id_token_alg.as_deref() {
            Some(a) => crate::keys::Alg::parse(a)?,
            None => crate::keys::Alg::ES256,
        },
        allowed_scopes: parse_scopes(app_type, new.allowed_scopes.as_deref().unwrap_or_default())?,
        created_by: Some(principal.actor_id()),
        updated_by: Some(principal.actor_id()),
        created_at: now,
        updated_at: now,
    };
    settle_default(&mut app, new.default_redirect_uri.is_some())?;
    let env = settings::session_policy_on(&mut *identity.db().connection().await?).await?;
    session_policy::check_for_type(app_type, &env, &app.session_policy)?;
    store_new(identity, &principal.actor(), meta, &app, now).await?;
    Ok(app)
}

/// Inserts a new application and its `application.created` event in one transaction.
async fn store_new(
    identity: &Identity,
    actor: &audit::Actor,
    meta: &RequestMeta,
    app: &Application,
    now: Timestamp,
) -> Result<()> {
    let mut tx = identity.db().begin().await?;
    insert(&mut tx, app).await?;
    audit::commit_with(
        tx,
        actor,
        meta,
        Entry::success(
            Event::ApplicationCreated,
            Some(Target::application(&app.id)),
            json!({ "after": summary(app) }),
        ),
        now,
        "Failed to commit a new application",
    )
    .await
}

/// Creates the default application on first start. Safe when several replicas start at once.
pub async fn ensure_default(identity: &Identity, now: Timestamp) -> Result<()> {
    let exists: i64 = sqlx::query("select count(*) as n from application where is_default = 1")
        .fetch_one(identity.db().pool())
        .await
        .and_then(|r| r.try_get("n"))
        .context("Failed to look for the default application")?;
    if exists > 0 {
        return Ok(());
    }
    let app = Application {
        id: new_id(),
        name: "Default application".to_owned(),
        description: "Created on first start; it cannot be deleted.".to_owned(),
        app_type: AppType::Web,
        client_id: generate_client_id(AppType::Web),
        status: Status::Active,
        is_default: true,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        default_redirect_uri: None,
        initiate_login_uri: None,
        backchannel_logout_uri: None,
        return_url: None,
        session_policy: Overrides::default(),
        allow_sign_up: false,
        id_token_alg: crate::keys::Alg::ES256,
        allowed_scopes: Vec::new(),
        created_by: None,
        updated_by: None,
        created_at: now,
        updated_at: now,
    };
    match store_new(
        identity,
        &audit::Actor::System,
        &RequestMeta::default(),
        &app,
        now,
    )
    .await
    {
        // Another replica created it first.
        Err(Error::Invalid {
            code: "name_taken", ..
        }) => Ok(()),
        other => other,
    }
}

/// Adds `count` synthetic applications of every type, audited like any other, in batches of 500 per
/// transaction. For benchmarks and demos (`portcullis seed applications`).
pub async fn seed(identity: &Identity, count: usize, now: Timestamp) -> Result<()> {
    let mut done = 0;
    while done < count {
        let mut tx = identity.db().begin().await?;
        for n in done..(done + 500).min(count) {
            let app_type = AppType::ALL[n % AppType::ALL.len()];
            let uris = match app_type {
                AppType::M2m => Vec::new(),
                AppType::Native => vec![RedirectUri::from_trusted(format!(
                    "com.example.app{n}:/callback"
                ))],
                _ => vec![RedirectUri::from_trusted(format!(
                    "https://app{n}.example.com/callback"
                ))],
            };
            let app = Application {
                id: new_id(),
                name: format!(
                    "Seeded {} app {n:06}-{}",
                    app_type.as_str(),
                    &new_id()[24..]
                ),
                description: "Synthetic application for benchmarks.".to_owned(),
                app_type,
                client_id: generate_client_id(app_type),
                status: if n % 10 == 9 {
                    Status::Disabled
                } else {
                    Status::Active
                },
                is_default: false,
                default_redirect_uri: uris.first().cloned(),
                redirect_uris: uris,
                post_logout_redirect_uris: Vec::new(),
                initiate_login_uri: None,
                backchannel_logout_uri: None,
                return_url: None,
                session_policy: Overrides::default(),
                allow_sign_up: n % 4 != 3,
                id_token_alg: crate::keys::Alg::ES256,
                allowed_scopes: Vec::new(),
                created_by: None,
                updated_by: None,
                created_at: now.plus_secs(n as i64 / 100),
                updated_at: now,
            };
            insert(&mut tx, &app).await?;
            audit::append(
                &mut tx,
                &audit::Actor::System,
                &RequestMeta::default(),
                Entry::success(
                    Event::ApplicationCreated,
                    Some(Target::application(&app.id)),
                    json!({ "after": summary(&app) }),
                ),
                now,
            )
            .await?;
        }
        tx.commit()
            .await
            .context("Failed to commit seeded applications")?;
        done = (done + 500).min(count);
    }
    Ok(())
}

/// The default application.
pub(crate) async fn find_default(conn: &mut AnyConnection) -> Result<Application> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from application where is_default = 1"
    )))
    .fetch_optional(conn)
    .await
    .context("Failed to read the default application")?
    .ok_or(Error::NotFound)?;
    decode(&row)
}

/// An application by its client ID.
pub(crate) async fn find_by_client_id(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<Application> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from application where client_id = $1"
    )))
    .bind(client_id)
    .fetch_optional(conn)
    .await
    .context("Failed to read an application")?
    .ok_or(Error::NotFound)?;
    decode(&row)
}

/// Reads one application inside a write transaction after taking its row lock, so concurrent changes
/// to it (and to its secrets) run one after the other on PostgreSQL too. (SQLite's `begin immediate`
/// already serialises writers; the no-op update is portable where `for update` is not.)
pub(crate) async fn find_for_update(tx: &mut Tx, id: &str) -> Result<Application> {
    sqlx::query("update application set updated_at = updated_at where application_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .context("Failed to lock an application")?;
    find(tx, id).await
}

/// Reads one application on `conn`: a pooled connection for reads, or a transaction (`&mut tx`).
pub(crate) async fn find(conn: &mut AnyConnection, id: &str) -> Result<Application> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from application where application_id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .context("Failed to read an application")?
    .ok_or(Error::NotFound)?;
    decode(&row)
}

pub async fn get(identity: &Identity, principal: &Principal, id: &str) -> Result<Application> {
    principal.authorize_in(Action::ViewApplications, id)?;
    find(&mut *identity.db().connection().await?, id).await
}

/// How a list of applications is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Newest first.
    #[default]
    Newest,
    Oldest,
    /// By name, A to Z.
    Name,
}

impl Sort {
    pub const ALL: [Sort; 3] = [Sort::Newest, Sort::Oldest, Sort::Name];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::Name => "name",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == input.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "sort",
                    "invalid_sort",
                    "Sort must be newest, oldest or name.",
                )
            })
    }

    /// (order by, keyset comparison against the cursor row).
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Sort::Newest => (
                "created_at desc, application_id desc",
                "(created_at, application_id) < (select created_at, application_id from application where application_id = ?)",
            ),
            Sort::Oldest => (
                "created_at, application_id",
                "(created_at, application_id) > (select created_at, application_id from application where application_id = ?)",
            ),
            Sort::Name => (
                "name_lower, application_id",
                "(name_lower, application_id) > (select name_lower, application_id from application where application_id = ?)",
            ),
        }
    }
}

/// Which applications to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Matches a part of the name (any case) or the start of the client ID.
    pub search: Option<String>,
    pub app_type: Option<AppType>,
    pub status: Option<Status>,
    pub sort: Sort,
    /// The last id of the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

pub struct Page {
    pub items: Vec<Application>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// How many applications match the filter, over all pages.
    pub total: i64,
}

/// A page of applications. Keyset pagination, so pages stay stable while applications are added.
/// An application key sees only its own application.
pub async fn list(identity: &Identity, principal: &Principal, query: &ListQuery) -> Result<Page> {
    let scope = principal.application_scope();
    match scope {
        Some(app) => principal.authorize_in(Action::ViewApplications, app)?,
        None => principal.authorize(Action::ViewApplications)?,
    }
    let limit = query.limit.clamp(1, 200);
    // Conditions with `?` placeholders, numbered below; every value is bound, never spliced.
    let mut conditions: Vec<&str> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    if let Some(app) = scope {
        // Its own application is the whole list; a cursor naming any other row would let it
        // compare against applications it cannot see.
        if query.after.as_deref().is_some_and(|a| a != app) {
            return Err(Error::NotFound);
        }
        conditions.push("application_id = ?");
        binds.push(app.to_owned());
    }
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let searching = search.is_some();
    if let Some(search) = search {
        conditions.push("(name_lower like ? escape '!' or client_id like ? escape '!')");
        binds.push(format!("%{}%", like_escape(&search.to_lowercase())));
        binds.push(format!("{}%", like_escape(search)));
    }
    if let Some(t) = query.app_type {
        conditions.push("app_type = ?");
        binds.push(t.as_str().to_owned());
    }
    if let Some(st) = query.status {
        conditions.push("status = ?");
        binds.push(st.as_str().to_owned());
    }
    let filter = number_placeholders(&conditions, 1);
    let mut conn = identity.db().connection().await?;
    if searching {
        return search_page(&mut conn, query, &filter, binds, limit).await;
    }
    let mut count = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select count(*) as n from application where 1 = 1{filter}"
    )));
    for b in &binds {
        count = count.bind(b.clone());
    }
    let total: i64 = count
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get("n"))
        .context("Failed to count applications")?;

    let (order, keyset) = query.sort.sql();
    let mut page_conditions = conditions.clone();
    let mut page_binds = binds;
    if let Some(after) = &query.after {
        page_conditions.push(keyset);
        page_binds.push(after.clone());
    }
    let filter = number_placeholders(&page_conditions, 1);
    let sql = format!(
        "select {COLUMNS} from application where 1 = 1{filter} order by {order} limit ${}",
        page_binds.len() + 1
    );
    let mut page = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in page_binds {
        page = page.bind(b);
    }
    let rows = page
        .bind(limit + 1)
        .fetch_all(&mut *conn)
        .await
        .context("Failed to list applications")?;
    let mut items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|a| a.id.clone())
    } else {
        None
    };
    Ok(Page {
        items,
        next_cursor,
        total,
    })
}

/// A search page in two steps: the matching ids come from one scan of the search index (which holds
/// every filtered and sorted column, so no table row is read), are sorted and cut here, and only the
/// page's rows are then read. A `like '%…%'` cannot use an index order, and walking the creation
/// index instead would read every row of the table for a search that matches few.
async fn search_page(
    conn: &mut AnyConnection,
    query: &ListQuery,
    filter: &str,
    binds: Vec<String>,
    limit: i64,
) -> Result<Page> {
    let mut ids = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select application_id, name_lower, created_at from application where 1 = 1{filter}"
    )));
    for b in binds {
        ids = ids.bind(b);
    }
    let mut keys: Vec<(String, String, i64)> = ids
        .fetch_all(&mut *conn)
        .await
        .context("Failed to search applications")?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("application_id").context("application.id")?,
                r.try_get("name_lower").context("application.name_lower")?,
                r.try_get("created_at").context("application.created_at")?,
            ))
        })
        .collect::<Result<_>>()?;
    match query.sort {
        Sort::Newest => keys.sort_by(|a, b| (b.2, &b.0).cmp(&(a.2, &a.0))),
        Sort::Oldest => keys.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0))),
        Sort::Name => keys.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0))),
    }
    let total = keys.len() as i64;
    let start = match &query.after {
        Some(after) => match keys.iter().position(|k| &k.0 == after) {
            Some(i) => i + 1,
            None => keys.len(),
        },
        None => 0,
    };
    let page: Vec<&str> = keys
        .iter()
        .skip(start)
        .take(limit as usize + 1)
        .map(|k| k.0.as_str())
        .collect();
    let mut items = Vec::with_capacity(page.len());
    if !page.is_empty() {
        let placeholders: Vec<String> = (1..=page.len()).map(|n| format!("${n}")).collect();
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "select {COLUMNS} from application where application_id in ({})",
            placeholders.join(", ")
        )));
        for id in &page {
            rows = rows.bind(*id);
        }
        let mut found = rows
            .fetch_all(&mut *conn)
            .await
            .context("Failed to read applications")?
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>>>()?;
        for id in &page {
            if let Some(i) = found.iter().position(|a| a.id == *id) {
                items.push(found.swap_remove(i));
            }
        }
    }
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|a| a.id.clone())
    } else {
        None
    };
    Ok(Page {
        items,
        next_cursor,
        total,
    })
}

/// Escapes `%`, `_` and the escape character itself for a `like … escape '!'` pattern (`!` rather
/// than a backslash, whose meaning in string literals differs between databases and settings).
fn like_escape(input: &str) -> String {
    input
        .replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_")
}

/// Joins conditions with `and`, turning each `?` into `$n` from `first` on.
fn number_placeholders(conditions: &[&str], first: usize) -> String {
    let mut n = first;
    let mut out = String::new();
    for condition in conditions {
        out.push_str(" and ");
        for ch in condition.chars() {
            if ch == '?' {
                out.push_str(&format!("${n}"));
                n += 1;
            } else {
                out.push(ch);
            }
        }
    }
    out
}

/// Applies `change` in one transaction with one audit event carrying the changed fields.
pub async fn update(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    change: Change,
    now: Timestamp,
) -> Result<Application> {
    principal.authorize(Action::ManageApplications)?;
    let mut tx = identity.db().begin().await?;
    let before = find_for_update(&mut tx, id).await?;
    let mut after = before.clone();
    if let Some(name) = &change.name {
        after.name = parse_name(name)?;
    }
    if let Some(description) = &change.description {
        after.description = parse_description(description)?;
    }
    if let Some(status) = &change.status {
        after.status = Status::parse(status)?;
    }
    if let Some(uris) = &change.redirect_uris {
        after.redirect_uris = redirect_uris::parse_list("redirect_uris", uris, after.app_type)?;
    }
    if let Some(uris) = &change.post_logout_redirect_uris {
        after.post_logout_redirect_uris =
            redirect_uris::parse_list("post_logout_redirect_uris", uris, after.app_type)?;
    }
    let t = after.app_type;
    let single = [
        (
            &change.default_redirect_uri,
            &mut after.default_redirect_uri,
            "default_redirect_uri",
            Endpoint::ReturnUrl,
        ),
        (
            &change.initiate_login_uri,
            &mut after.initiate_login_uri,
            "initiate_login_uri",
            Endpoint::InitiateLogin,
        ),
        (
            &change.backchannel_logout_uri,
            &mut after.backchannel_logout_uri,
            "backchannel_logout_uri",
            Endpoint::BackchannelLogout,
        ),
        (
            &change.return_url,
            &mut after.return_url,
            "return_url",
            Endpoint::ReturnUrl,
        ),
    ];
    for (input, slot, field, kind) in single {
        if let Some(input) = input {
            *slot = endpoint(field, input.as_deref(), t, kind)?;
        }
    }
    settle_default(
        &mut after,
        matches!(change.default_redirect_uri, Some(Some(_))),
    )?;
    if let Some(allow) = change.allow_sign_up {
        if allow && t == AppType::M2m {
            return Err(Error::invalid(
                "allow_sign_up",
                "sign_up_not_allowed",
                "Machine-to-machine applications have no users.",
            ));
        }
        after.allow_sign_up = allow;
    }
    if let Some(alg) = &change.id_token_alg {
        after.id_token_alg = crate::keys::Alg::parse(alg)?;
    }
    if let Some(scopes) = &change.allowed_scopes {
        after.allowed_scopes = parse_scopes(t, scopes)?;
    }
    if let Some(patch) = &change.session_policy {
        after.session_policy = before.session_policy.merge(patch)?;
        let env = settings::session_policy_on(&mut tx).await?;
        session_policy::check_for_type(t, &env, &after.session_policy)?;
    }
    let (old, new) = (summary(&before), summary(&after));
    let changed: Vec<&str> = CHANGEABLE
        .into_iter()
        .filter(|k| old[*k] != new[*k])
        .collect();
    if changed.is_empty() {
        return Ok(before);
    }
    after.updated_at = now;
    after.updated_by = Some(principal.actor_id());
    let result = sqlx::query(
        "update application set name = $1, description = $2, status = $3, redirect_uris = $4, \
         post_logout_redirect_uris = $5, default_redirect_uri = $6, initiate_login_uri = $7, \
         backchannel_logout_uri = $8, return_url = $9, session_policy = $10, updated_by = $11, \
         updated_at = $12, allow_sign_up = $14, name_lower = $15, id_token_alg = $16, \
         allowed_scopes = $17 where application_id = $13",
    )
    .bind(&after.name)
    .bind(&after.description)
    .bind(after.status.as_str())
    .bind(uris_to_db(&after.redirect_uris))
    .bind(uris_to_db(&after.post_logout_redirect_uris))
    .bind(uri_to_db(&after.default_redirect_uri))
    .bind(uri_to_db(&after.initiate_login_uri))
    .bind(uri_to_db(&after.backchannel_logout_uri))
    .bind(uri_to_db(&after.return_url))
    .bind(after.session_policy.to_db())
    .bind(&after.updated_by)
    .bind(now.millis())
    .bind(id)
    .bind(i64::from(after.allow_sign_up))
    .bind(after.name.to_lowercase())
    .bind(after.id_token_alg.as_str())
    .bind(json!(after.allowed_scopes).to_string())
    .execute(&mut *tx)
    .await;
    if before.status == Status::Active && after.status == Status::Disabled {
        crate::logout::end_application(identity, &mut tx, id, now).await?;
    }
    if let Err(e) = result {
        return Err(write_error(e, "Failed to update an application"));
    }
    let pick = |v: &Value| {
        Value::Object(
            changed
                .iter()
                .map(|k| ((*k).to_owned(), v.get(*k).cloned().unwrap_or(Value::Null)))
                .collect(),
        )
    };
    let event = match (before.status, after.status) {
        (Status::Active, Status::Disabled) => Event::ApplicationDisabled,
        (Status::Disabled, Status::Active) => Event::ApplicationEnabled,
        _ => Event::ApplicationUpdated,
    };
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            event,
            Some(Target::application(id)),
            json!({ "before": pick(&old), "after": pick(&new) }),
        ),
        now,
        "Failed to commit an application change",
    )
    .await?;
    identity.clients().clear();
    Ok(after)
}

/// Deletes an application. The caller must type its name; the default application stays. Its audit
/// history stays too.
pub async fn delete(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    confirm_name: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize(Action::ManageApplications)?;
    let mut tx = identity.db().begin().await?;
    let app = find(&mut tx, id).await?;
    if app.is_default {
        return Err(Error::conflict(
            "default_application",
            "The default application cannot be deleted.",
        ));
    }
    if confirm_name.trim() != app.name {
        return Err(Error::invalid(
            "confirm_name",
            "confirmation_mismatch",
            "Type the application's name exactly to delete it.",
        ));
    }
    sqlx::query("delete from application where application_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to delete an application")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ApplicationDeleted,
            Some(Target::application(id)),
            json!({ "before": summary(&app) }),
        ),
        now,
        "Failed to commit an application deletion",
    )
    .await?;
    identity.clients().clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_carry_the_type_and_128_bits() {
        for t in AppType::ALL {
            let id = generate_client_id(t);
            assert!(id.starts_with(t.client_id_prefix()));
            assert_eq!(id.len(), 4 + 22);
            assert_ne!(id, generate_client_id(t));
        }
    }

    #[test]
    fn types_round_trip() {
        for t in AppType::ALL {
            assert_eq!(AppType::parse(t.as_str()).ok(), Some(t));
        }
        assert!(AppType::parse("desktop").is_err());
    }
}
