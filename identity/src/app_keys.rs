//! Application API keys: for one application's backend to call the management API within that
//! application only. A name, scopes from a fixed list, an optional expiry; the key is shown once and
//! only its SHA-256 is kept, with a short prefix for recognition and the last use (time and IP).

use crate::applications;
use crate::audit::{self, Entry, Event, Target};
use crate::authz::{Action, Principal, PrincipalKind, Scope};
use crate::error::{Context, Error, Result};
use crate::secret::{new_id, random_token, token_hash};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// Every application key starts with this, so scanners and people can tell it from an admin key.
pub const PREFIX: &str = "pcapp_";

/// A key as listed: never the key itself.
#[derive(Clone, Debug, Serialize)]
pub struct AppKeyInfo {
    pub id: String,
    pub application_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
}

impl AppKeyInfo {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

pub struct CreatedAppKey {
    pub info: AppKeyInfo,
    pub key: SecretString,
}

/// What a caller asks for.
#[derive(Clone, Debug, Default)]
pub struct NewAppKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_in_secs: Option<i64>,
}

fn parse_scopes(inputs: &[String]) -> Result<Vec<Scope>> {
    let mut scopes = Vec::new();
    for input in inputs {
        let scope = Scope::parse(input)?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

fn scopes_from_db(text: &str) -> Vec<Scope> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Scope::parse(s).ok())
        .collect()
}

fn scopes_to_db(scopes: &[Scope]) -> String {
    serde_json::to_string(&scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

/// Creates a key for `application_id`. Operators and owners only (an application key cannot mint
/// keys).
pub async fn create(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    new: NewAppKey,
    now: Timestamp,
) -> Result<CreatedAppKey> {
    principal.authorize(Action::ManageApplications)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(Error::invalid(
            "name",
            "invalid_name",
            "Name must be 1–80 characters.",
        ));
    }
    let scopes = parse_scopes(&new.scopes)?;
    if let Some(secs) = new.expires_in_secs
        && !(60..=2 * 366 * 24 * 60 * 60).contains(&secs)
    {
        return Err(Error::invalid(
            "expires_in_secs",
            "invalid_lifetime",
            "Expiry must be between 1 minute and 2 years from now.",
        ));
    }
    let key = format!("{PREFIX}{}", random_token());
    let info = AppKeyInfo {
        id: new_id(),
        application_id: application_id.to_owned(),
        name: name.to_owned(),
        scopes,
        prefix: key.chars().take(PREFIX.len() + 6).collect(),
        created_at: now,
        expires_at: new.expires_in_secs.map(|s| now.plus_secs(s)),
        revoked_at: None,
        last_used_at: None,
        last_used_ip: None,
    };
    let mut tx = identity.db().begin().await?;
    applications::find_for_update(&mut tx, application_id).await?;
    sqlx::query(
        "insert into app_api_key (app_api_key_id, application_id, name, prefix, key_hash, scopes, created_by, \
         created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&info.id)
    .bind(application_id)
    .bind(&info.name)
    .bind(&info.prefix)
    .bind(token_hash(&key))
    .bind(scopes_to_db(&info.scopes))
    .bind(principal.actor_id())
    .bind(now.millis())
    .bind(info.expires_at.map(Timestamp::millis))
    .execute(&mut *tx)
    .await
    .context("Failed to store an application API key")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AppApiKeyCreated,
            Some(Target::application(application_id)),
            json!({ "after": { "key_id": info.id, "name": info.name, "scopes": info.scopes,
                    "prefix": info.prefix, "expires_at": info.expires_at.map(Timestamp::rfc3339) } }),
        ),
        now,
        "Failed to commit an application API key",
    )
    .await?;
    Ok(CreatedAppKey {
        info,
        key: SecretString::from(key),
    })
}

const COLUMNS: &str = "app_api_key_id, application_id, name, prefix, scopes, created_at, expires_at, \
     revoked_at, last_used_at, last_used_ip";

fn decode(row: &sqlx::any::AnyRow) -> Result<AppKeyInfo> {
    let scopes: String = row.try_get("scopes").context("app_api_key.scopes")?;
    let millis = |column: &'static str| -> Result<Option<Timestamp>> {
        Ok(row
            .try_get::<Option<i64>, _>(column)
            .context("app_api_key time")?
            .map(Timestamp::from_millis))
    };
    Ok(AppKeyInfo {
        id: row.try_get("app_api_key_id").context("app_api_key.id")?,
        application_id: row
            .try_get("application_id")
            .context("app_api_key.application_id")?,
        name: row.try_get("name").context("app_api_key.name")?,
        scopes: scopes_from_db(&scopes),
        prefix: row.try_get("prefix").context("app_api_key.prefix")?,
        created_at: Timestamp::from_millis(
            row.try_get("created_at")
                .context("app_api_key.created_at")?,
        ),
        expires_at: millis("expires_at")?,
        revoked_at: millis("revoked_at")?,
        last_used_at: millis("last_used_at")?,
        last_used_ip: row
            .try_get("last_used_ip")
            .context("app_api_key.last_used_ip")?,
    })
}

/// Every key of an application, newest first.
pub async fn list(
    identity: &Identity,
    principal: &Principal,
    application_id: &str,
) -> Result<Vec<AppKeyInfo>> {
    principal.authorize_in(Action::ViewCredentials, application_id)?;
    let mut conn = identity.db().connection().await?;
    applications::find(&mut conn, application_id).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from app_api_key where application_id = $1 order by created_at desc, app_api_key_id desc"
    )))
    .bind(application_id)
    .fetch_all(&mut *conn)
    .await
    .context("Failed to list application API keys")?;
    rows.iter().map(decode).collect()
}

/// Revokes a key at once.
pub async fn revoke(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    key_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize(Action::ManageApplications)?;
    let mut tx = identity.db().begin().await?;
    let done = sqlx::query(
        "update app_api_key set revoked_at = $1 where app_api_key_id = $2 and application_id = $3 \
         and revoked_at is null",
    )
    .bind(now.millis())
    .bind(key_id)
    .bind(application_id)
    .execute(&mut *tx)
    .await
    .context("Failed to revoke an application API key")?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AppApiKeyRevoked,
            Some(Target::application(application_id)),
            json!({ "key_id": key_id, "after": { "revoked_at": now.rfc3339() } }),
        ),
        now,
        "Failed to commit an application API key revocation",
    )
    .await
}

/// Resolves a bearer key to its principal when it is active and its application is active, recording
/// the time and IP of this use.
pub async fn authenticate(
    identity: &Identity,
    key: &str,
    ip: Option<&str>,
    now: Timestamp,
) -> Result<Option<Principal>> {
    if !key.starts_with(PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query(
        "select k.app_api_key_id, k.application_id, k.name, k.scopes, k.expires_at from app_api_key k \
         join application a on a.application_id = k.application_id \
         where k.key_hash = $1 and k.revoked_at is null and a.status = 'active'",
    )
    .bind(token_hash(key))
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an application API key")?;
    let Some(row) = row else { return Ok(None) };
    let expires: Option<i64> = row.try_get("expires_at").context("app_api_key.expires")?;
    if expires.is_some_and(|e| e <= now.millis()) {
        return Ok(None);
    }
    let api_key_id: String = row.try_get("app_api_key_id").context("app_api_key.id")?;
    sqlx::query(
        "update app_api_key set last_used_at = $1, last_used_ip = $2 where app_api_key_id = $3",
    )
    .bind(now.millis())
    .bind(ip)
    .bind(&api_key_id)
    .execute(identity.db().writer())
    .await
    .context("Failed to record application API key use")?;
    let scopes: String = row.try_get("scopes").context("app_api_key.scopes")?;
    Ok(Some(Principal {
        role: None,
        kind: PrincipalKind::AppKey {
            api_key_id,
            name: row.try_get("name").context("app_api_key.name")?,
            application_id: row
                .try_get("application_id")
                .context("app_api_key.application_id")?,
            scopes: scopes_from_db(&scopes),
        },
    }))
}
