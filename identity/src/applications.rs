//! Applications: one per product surface (web app, SPA, native app, backend service), all over one
//! shared user pool. Each has a client ID fixed at creation, a type, a status, and its redirect URIs.

use crate::audit::{self, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::error::{Context, Error, Result, is_unique_violation};
use crate::redirect_uris::{self, RedirectUri};
use crate::secret::new_id;
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
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
}

/// A change; absent fields stay as they are. The type never changes.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
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
     redirect_uris, post_logout_redirect_uris, created_by, updated_by, created_at, updated_at";

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

fn decode(row: &sqlx::any::AnyRow) -> Result<Application> {
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

fn actor_id(principal: &Principal) -> String {
    match principal.actor() {
        audit::Actor::Staff { id, .. } | audit::Actor::ApiKey { id, .. } => id,
        audit::Actor::System | audit::Actor::Anonymous => "system".to_owned(),
    }
}

async fn insert(tx: &mut Tx, app: &Application) -> Result<()> {
    sqlx::query(
        "insert into application (application_id, name, description, app_type, client_id, status, is_default, \
         redirect_uris, post_logout_redirect_uris, created_by, updated_by, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .bind(&app.created_by)
    .bind(&app.updated_by)
    .bind(app.created_at.millis())
    .bind(app.updated_at.millis())
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

fn summary(app: &Application) -> Value {
    json!({
        "name": app.name, "type": app.app_type, "client_id": app.client_id, "status": app.status,
        "redirect_uris": app.redirect_uris, "post_logout_redirect_uris": app.post_logout_redirect_uris,
    })
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
    let app = Application {
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
        created_by: Some(actor_id(principal)),
        updated_by: Some(actor_id(principal)),
        created_at: now,
        updated_at: now,
    };
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
    audit::append(
        &mut tx,
        actor,
        meta,
        Entry::success(
            Event::ApplicationCreated,
            Some(Target::application(&app.id)),
            json!({ "after": summary(app) }),
        ),
        now,
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to commit a new application")
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
    principal.authorize(Action::ViewApplications)?;
    find(&mut *identity.db().connection().await?, id).await
}

/// A page of applications in creation order; `after` is the last id of the previous page.
pub async fn list(
    identity: &Identity,
    principal: &Principal,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Application>> {
    principal.authorize(Action::ViewApplications)?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from application where application_id > $1 order by application_id limit $2"
    )))
    .bind(after.unwrap_or(""))
    .bind(limit.clamp(1, 200))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list applications")?;
    rows.iter().map(decode).collect()
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
    let before = find(&mut tx, id).await?;
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
    let (old, new) = (summary(&before), summary(&after));
    let changed: Vec<&str> = [
        "name",
        "status",
        "redirect_uris",
        "post_logout_redirect_uris",
    ]
    .into_iter()
    .filter(|k| old[*k] != new[*k])
    .chain((before.description != after.description).then_some("description"))
    .collect();
    if changed.is_empty() {
        return Ok(before);
    }
    after.updated_at = now;
    after.updated_by = Some(actor_id(principal));
    let result = sqlx::query(
        "update application set name = $1, description = $2, status = $3, redirect_uris = $4, \
         post_logout_redirect_uris = $5, updated_by = $6, updated_at = $7 where application_id = $8",
    )
    .bind(&after.name)
    .bind(&after.description)
    .bind(after.status.as_str())
    .bind(uris_to_db(&after.redirect_uris))
    .bind(uris_to_db(&after.post_logout_redirect_uris))
    .bind(&after.updated_by)
    .bind(now.millis())
    .bind(id)
    .execute(&mut *tx)
    .await;
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
    let mut old = old;
    let mut new = new;
    old["description"] = json!(before.description);
    new["description"] = json!(after.description);
    let event = match (before.status, after.status) {
        (Status::Active, Status::Disabled) => Event::ApplicationDisabled,
        (Status::Disabled, Status::Active) => Event::ApplicationEnabled,
        _ => Event::ApplicationUpdated,
    };
    audit::append(
        &mut tx,
        &principal.actor(),
        meta,
        Entry::success(
            event,
            Some(Target::application(id)),
            json!({ "before": pick(&old), "after": pick(&new) }),
        ),
        now,
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to commit an application change")?;
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
    audit::append(
        &mut tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ApplicationDeleted,
            Some(Target::application(id)),
            json!({ "before": summary(&app) }),
        ),
        now,
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to commit an application deletion")
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
