//! Client secrets for confidential applications (`web`, `m2m`): at least 256 bits, shown exactly once,
//! stored only as a SHA-256 hash, displayed afterwards as prefix + last four characters. Up to two are
//! active at once, so a secret can be rotated without downtime: rotating creates a new one and
//! schedules the old one's expiry.

use crate::applications::{self, Application};
use crate::audit::{self, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::error::{Context, Error, Result};
use crate::secret::{new_id, random_token, token_hash};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

pub const SECRET_PREFIX: &str = "pcs_";
pub const MAX_ACTIVE: i64 = 2;
/// How long a rotated-out secret keeps working by default (one day).
pub const DEFAULT_GRACE_SECS: i64 = 24 * 60 * 60;

/// A secret as listed: never the secret itself.
#[derive(Clone, Debug, Serialize)]
pub struct SecretInfo {
    pub id: String,
    pub prefix: String,
    pub last_four: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl SecretInfo {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A secret just created; `secret` is shown once.
pub struct CreatedSecret {
    pub info: SecretInfo,
    pub secret: SecretString,
}

fn decode(row: &sqlx::any::AnyRow) -> Result<SecretInfo> {
    let opt = |col: &str| -> Result<Option<Timestamp>> {
        let v: Option<i64> = row.try_get(col).context("client_secret time")?;
        Ok(v.map(Timestamp::from_millis))
    };
    Ok(SecretInfo {
        id: row
            .try_get("client_secret_id")
            .context("client_secret.id")?,
        prefix: row.try_get("prefix").context("client_secret.prefix")?,
        last_four: row
            .try_get("last_four")
            .context("client_secret.last_four")?,
        created_at: Timestamp::from_millis(
            row.try_get("created_at")
                .context("client_secret.created_at")?,
        ),
        expires_at: opt("expires_at")?,
        revoked_at: opt("revoked_at")?,
        last_used_at: opt("last_used_at")?,
    })
}

const COLUMNS: &str =
    "client_secret_id, prefix, last_four, created_at, expires_at, revoked_at, last_used_at";

async fn secrets_of(conn: &mut AnyConnection, application_id: &str) -> Result<Vec<SecretInfo>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from client_secret where application_id = $1 order by created_at, client_secret_id"
    )))
    .bind(application_id)
    .fetch_all(conn)
    .await
    .context("Failed to read client secrets")?;
    rows.iter().map(decode).collect()
}

async fn confidential_app(tx: &mut Tx, application_id: &str) -> Result<Application> {
    let app = applications::find_for_update(tx, application_id).await?;
    if !app.app_type.is_confidential() {
        return Err(Error::conflict(
            "public_client",
            "Only web and machine-to-machine applications have client secrets; SPA and native apps are public clients.",
        ));
    }
    Ok(app)
}

fn parse_lifetime(field: &'static str, secs: Option<i64>) -> Result<Option<i64>> {
    match secs {
        Some(s) if !(60..=5 * 366 * 24 * 60 * 60).contains(&s) => Err(Error::invalid(
            field,
            "invalid_lifetime",
            "Must be between 60 seconds and 5 years.",
        )),
        other => Ok(other),
    }
}

async fn insert_secret(
    tx: &mut Tx,
    principal: &Principal,
    meta: &RequestMeta,
    app: &Application,
    expires_in_secs: Option<i64>,
    rotated_from: Option<&str>,
    now: Timestamp,
) -> Result<CreatedSecret> {
    let secret = format!("{SECRET_PREFIX}{}", random_token());
    let info = SecretInfo {
        id: new_id(),
        prefix: secret.chars().take(SECRET_PREFIX.len() + 4).collect(),
        last_four: secret.chars().skip(secret.chars().count() - 4).collect(),
        created_at: now,
        expires_at: expires_in_secs.map(|s| now.plus_secs(s)),
        revoked_at: None,
        last_used_at: None,
    };
    sqlx::query(
        "insert into client_secret (client_secret_id, application_id, secret_hash, prefix, last_four, created_by, \
         created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&info.id)
    .bind(&app.id)
    .bind(token_hash(&secret))
    .bind(&info.prefix)
    .bind(&info.last_four)
    .bind(principal.staff_id().map(str::to_owned))
    .bind(now.millis())
    .bind(info.expires_at.map(Timestamp::millis))
    .execute(&mut **tx)
    .await
    .context("Failed to store a client secret")?;
    audit::append(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ClientSecretCreated,
            Some(Target::application(&app.id)),
            json!({ "secret_id": info.id, "display": format!("{}…{}", info.prefix, info.last_four),
                    "expires_at": info.expires_at.map(Timestamp::rfc3339), "rotated_from": rotated_from }),
        ),
        now,
    )
    .await?;
    Ok(CreatedSecret {
        info,
        secret: SecretString::from(secret),
    })
}

/// Creates a secret (optionally expiring). Refused for public clients and when two are active.
pub async fn create(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    expires_in_secs: Option<i64>,
    now: Timestamp,
) -> Result<CreatedSecret> {
    principal.authorize(Action::ManageApplications)?;
    let expires_in_secs = parse_lifetime("expires_in_secs", expires_in_secs)?;
    let mut tx = identity.db().begin().await?;
    let app = confidential_app(&mut tx, application_id).await?;
    let active = secrets_of(&mut tx, application_id)
        .await?
        .iter()
        .filter(|s| s.is_active(now))
        .count() as i64;
    if active >= MAX_ACTIVE {
        return Err(Error::conflict(
            "too_many_secrets",
            "This application already has two active secrets. Revoke one, or rotate it.",
        ));
    }
    let created = insert_secret(&mut tx, principal, meta, &app, expires_in_secs, None, now).await?;
    tx.commit()
        .await
        .context("Failed to commit a client secret")?;
    identity.clients().clear();
    Ok(created)
}

/// Rotation: a new secret now, and the old one expires after `grace_secs` (default one day).
pub async fn rotate(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    secret_id: &str,
    grace_secs: Option<i64>,
    now: Timestamp,
) -> Result<CreatedSecret> {
    principal.authorize(Action::ManageApplications)?;
    let grace = parse_lifetime("grace_secs", grace_secs)?.unwrap_or(DEFAULT_GRACE_SECS);
    let mut tx = identity.db().begin().await?;
    let app = confidential_app(&mut tx, application_id).await?;
    let secrets = secrets_of(&mut tx, application_id).await?;
    let old = secrets
        .iter()
        .find(|s| s.id == secret_id && s.is_active(now))
        .ok_or(Error::NotFound)?;
    if secrets.iter().filter(|s| s.is_active(now)).count() as i64 >= MAX_ACTIVE {
        return Err(Error::conflict(
            "too_many_secrets",
            "Two secrets are already active. Revoke the one you no longer use before rotating.",
        ));
    }
    let old_expiry = now
        .plus_secs(grace)
        .min(old.expires_at.unwrap_or(Timestamp::from_millis(i64::MAX)));
    sqlx::query("update client_secret set expires_at = $1 where client_secret_id = $2")
        .bind(old_expiry.millis())
        .bind(secret_id)
        .execute(&mut *tx)
        .await
        .context("Failed to schedule a secret's expiry")?;
    let created = insert_secret(&mut tx, principal, meta, &app, None, Some(secret_id), now).await?;
    tx.commit()
        .await
        .context("Failed to commit a secret rotation")?;
    identity.clients().clear();
    Ok(created)
}

/// Revokes a secret at once.
pub async fn revoke(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    secret_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize(Action::ManageApplications)?;
    let mut tx = identity.db().begin().await?;
    let done = sqlx::query(
        "update client_secret set revoked_at = $1 where client_secret_id = $2 and application_id = $3 and revoked_at is null",
    )
    .bind(now.millis())
    .bind(secret_id)
    .bind(application_id)
    .execute(&mut *tx)
    .await
    .context("Failed to revoke a client secret")?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ClientSecretRevoked,
            Some(Target::application(application_id)),
            json!({ "secret_id": secret_id }),
        ),
        now,
        "Failed to commit a secret revocation",
    )
    .await?;
    identity.clients().clear();
    Ok(())
}

/// Metadata of every secret of an application, oldest first.
pub async fn list(
    identity: &Identity,
    principal: &Principal,
    application_id: &str,
) -> Result<Vec<SecretInfo>> {
    principal.authorize_in(Action::ViewCredentials, application_id)?;
    let mut conn = identity.db().connection().await?;
    applications::find(&mut conn, application_id).await?;
    secrets_of(&mut conn, application_id).await
}

/// Client authentication with a secret: the application whose client ID this is, when `secret` is
/// one of its active secrets and the application is active (the token endpoint's own check,
/// `oauth::authenticate`; it records the secret's last use).
pub async fn authenticate_client(
    identity: &Identity,
    client_id: &str,
    secret: &str,
    now: Timestamp,
) -> Result<Option<Application>> {
    let auth = crate::oauth::ClientAuth {
        basic: None,
        client_id: Some(client_id.to_owned()),
        client_secret: Some(secret.to_owned()),
    };
    match crate::oauth::authenticate(identity, &auth, now).await {
        Ok(client) => Ok(Some(client.app.clone())),
        Err(e) if e.status >= 500 => Err(Error::internal(
            "Failed to authenticate a client",
            std::io::Error::other(e.description),
        )),
        Err(_) => Ok(None),
    }
}
