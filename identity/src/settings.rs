//! Environment-wide settings stored in the database, so every replica sees the same values. Today:
//! the default session policy every application inherits unless it overrides a value.

use crate::audit::{self, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::error::{Context, Result};
use crate::session_policy::{self, Overrides};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row};

const SESSION_POLICY: &str = "session_policy";

/// The environment's session-policy defaults, read on `conn`.
pub(crate) async fn session_policy_on(conn: &mut AnyConnection) -> Result<Overrides> {
    let row = sqlx::query("select value from environment_setting where setting_key = $1")
        .bind(SESSION_POLICY)
        .fetch_optional(conn)
        .await
        .context("Failed to read the environment session policy")?;
    Ok(match row {
        Some(row) => {
            Overrides::from_db(&row.try_get::<String, _>("value").context("setting.value")?)
        }
        None => Overrides::default(),
    })
}

pub async fn session_policy(identity: &Identity, principal: &Principal) -> Result<Overrides> {
    principal.authorize(Action::ViewSettings)?;
    session_policy_on(&mut *identity.db().connection().await?).await
}

/// Merges `patch` into the environment defaults (`null` clears a value back to the built-in default).
pub async fn update_session_policy(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    patch: &Map<String, Value>,
    now: Timestamp,
) -> Result<Overrides> {
    principal.authorize(Action::ManageSettings)?;
    let mut tx = identity.db().begin().await?;
    // Take the row lock before reading, so concurrent changes apply one after the other (PostgreSQL;
    // SQLite's write transaction already serialises them).
    sqlx::query(
        "insert into environment_setting (setting_key, value, updated_at) values ($1, '{}', $2) \
         on conflict (setting_key) do update set updated_at = environment_setting.updated_at",
    )
    .bind(SESSION_POLICY)
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to lock the environment session policy")?;
    let before = session_policy_on(&mut tx).await?;
    let after = before.merge(patch)?;
    session_policy::check_environment(&after)?;
    if after == before {
        return Ok(before);
    }
    sqlx::query(
        "insert into environment_setting (setting_key, value, updated_by, updated_at) values ($1, $2, $3, $4) \
         on conflict (setting_key) do update set value = excluded.value, updated_by = excluded.updated_by, \
         updated_at = excluded.updated_at",
    )
    .bind(SESSION_POLICY)
    .bind(after.to_db())
    .bind(principal.actor_id())
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to store the environment session policy")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::SettingsUpdated,
            Some(Target {
                kind: "settings",
                id: SESSION_POLICY.to_owned(),
            }),
            json!({ "before": before, "after": after }),
        ),
        now,
        "Failed to commit the environment session policy",
    )
    .await?;
    Ok(after)
}
