//! Environment admin API keys: a name and a staff role, for the management API. The key is shown
//! once; the database keeps its SHA-256 and a short prefix for recognition.

use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Principal, PrincipalKind, Role};
use crate::error::{Context, Error, Result};
use crate::secret::{new_id, random_token, token_hash};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use secrecy::SecretString;
use serde_json::json;
use sqlx::Row;

/// Every admin key starts with this, so it is recognisable in a secret scanner or a leaked log.
pub const PREFIX: &str = "pcadm_";

pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    pub key: SecretString,
}

/// Creates a key. `actor` is the system (CLI) or the owner doing it from the API.
pub async fn create(
    identity: &Identity,
    actor: &Actor,
    meta: &RequestMeta,
    name: &str,
    role: Role,
    now: Timestamp,
) -> Result<CreatedKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(Error::invalid(
            "name",
            "invalid_name",
            "Name must be 1–80 characters.",
        ));
    }
    let key = format!("{PREFIX}{}", random_token());
    let prefix: String = key.chars().take(PREFIX.len() + 6).collect();
    let id = new_id();
    let mut tx = identity.db().begin().await?;
    sqlx::query(
        "insert into api_key (api_key_id, name, prefix, key_hash, role, created_by, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(name)
    .bind(&prefix)
    .bind(token_hash(&key))
    .bind(role.as_str())
    .bind(match actor {
        Actor::Staff { id, .. } | Actor::ApiKey { id, .. } => Some(id.clone()),
        Actor::User { .. } | Actor::Client { .. } | Actor::System | Actor::Anonymous => None,
    })
    .bind(now.millis())
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to store an API key")?;
    audit::commit_with(
        tx,
        actor,
        meta,
        Entry::success(
            Event::ApiKeyCreated,
            Some(Target {
                kind: "api_key",
                id: id.clone(),
            }),
            json!({ "after": { "name": name, "role": role, "prefix": prefix } }),
        ),
        now,
        "Failed to commit an API key",
    )
    .await?;
    Ok(CreatedKey {
        id,
        name: name.to_owned(),
        role,
        prefix,
        key: SecretString::from(key),
    })
}

/// Resolves a bearer key to its principal, recording when it was last used.
pub async fn authenticate(
    identity: &Identity,
    key: &str,
    now: Timestamp,
) -> Result<Option<Principal>> {
    if !key.starts_with(PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query(
        "select api_key_id, name, role from api_key where key_hash = $1 and revoked_at is null",
    )
    .bind(token_hash(key))
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an API key")?;
    let Some(row) = row else { return Ok(None) };
    let api_key_id: String = row.try_get("api_key_id").context("api_key.id")?;
    let role: String = row.try_get("role").context("api_key.role")?;
    // At most one bookkeeping write a minute per key, so API traffic does not queue on the write lock.
    sqlx::query(
        "update api_key set last_used_at = $1 where api_key_id = $2 \
         and (last_used_at is null or last_used_at < $3)",
    )
    .bind(now.millis())
    .bind(&api_key_id)
    .bind(now.millis() - 60_000)
    .execute(identity.db().writer())
    .await
    .context("Failed to record API key use")?;
    Ok(Some(Principal {
        role: Some(Role::parse(&role)?),
        kind: PrincipalKind::ApiKey {
            api_key_id,
            name: row.try_get("name").context("api_key.name")?,
        },
    }))
}

/// A key as listed: never the key itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Every key, newest first. For the CLI (a system actor) and owners.
pub async fn list(identity: &Identity) -> Result<Vec<KeyInfo>> {
    let rows = sqlx::query(
        "select api_key_id, name, role, prefix, created_at, last_used_at, revoked_at from api_key \
         order by created_at desc",
    )
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list API keys")?;
    rows.iter()
        .map(|row| {
            let role: String = row.try_get("role").context("api_key.role")?;
            let last_used: Option<i64> = row
                .try_get("last_used_at")
                .context("api_key.last_used_at")?;
            let revoked: Option<i64> = row.try_get("revoked_at").context("api_key.revoked_at")?;
            Ok(KeyInfo {
                id: row.try_get("api_key_id").context("api_key.id")?,
                name: row.try_get("name").context("api_key.name")?,
                role: Role::parse(&role)?,
                prefix: row.try_get("prefix").context("api_key.prefix")?,
                created_at: Timestamp::from_millis(
                    row.try_get("created_at").context("api_key.created_at")?,
                ),
                last_used_at: last_used.map(Timestamp::from_millis),
                revoked_at: revoked.map(Timestamp::from_millis),
            })
        })
        .collect()
}

/// Revokes a key at once: the next request with it is refused.
pub async fn revoke(
    identity: &Identity,
    actor: &Actor,
    meta: &RequestMeta,
    api_key_id: &str,
    now: Timestamp,
) -> Result<()> {
    let mut tx = identity.db().begin().await?;
    let done = sqlx::query(
        "update api_key set revoked_at = $1, updated_at = $1 where api_key_id = $2 and revoked_at is null",
    )
    .bind(now.millis())
    .bind(api_key_id)
    .execute(&mut *tx)
    .await
    .context("Failed to revoke an API key")?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::commit_with(
        tx,
        actor,
        meta,
        Entry::success(
            Event::ApiKeyRevoked,
            Some(Target {
                kind: "api_key",
                id: api_key_id.to_owned(),
            }),
            json!({ "after": { "revoked_at": now.rfc3339() } }),
        ),
        now,
        "Failed to commit an API key revocation",
    )
    .await
}
