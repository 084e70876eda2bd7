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
        Actor::System | Actor::Anonymous => None,
    })
    .bind(now.millis())
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to store an API key")?;
    audit::append(
        &mut tx,
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
    )
    .await?;
    tx.commit().await.context("Failed to commit an API key")?;
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
    sqlx::query("update api_key set last_used_at = $1 where api_key_id = $2")
        .bind(now.millis())
        .bind(&api_key_id)
        .execute(identity.db().pool())
        .await
        .context("Failed to record API key use")?;
    Ok(Some(Principal {
        role: Role::parse(&role)?,
        kind: PrincipalKind::ApiKey {
            api_key_id,
            name: row.try_get("name").context("api_key.name")?,
        },
    }))
}
