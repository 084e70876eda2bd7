//! Ending sign-in sessions, and OpenID Connect Back-Channel Logout 1.0.
//!
//! Whatever ends a session — signing out, RP-initiated logout, staff revoking it, disabling the user
//! or the application — goes through [`end_sessions`]: the session is revoked, every token family
//! issued under it is revoked, and a signed logout token is queued for each application that took
//! part in the session and has a back-channel logout URI. All in the caller's transaction, so a
//! session never ends without its logouts queued. Delivery (HTTP, with the outbound-address guard)
//! is the server's job; it claims due deliveries here and reports each result, which is audited.

use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::error::{Context, Result};
use crate::secret::new_id;
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// Attempts before a delivery is given up (backoff 2, 4, 8, 16 s between them).
pub const MAX_ATTEMPTS: i64 = 5;
/// A claimed delivery is retried by any replica after this long if its claimer never reports.
const LEASE_MS: i64 = 30_000;

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Ends the live sessions among `session_ids` (see the module comment). Returns how many ended.
pub(crate) async fn end_sessions(
    identity: &Identity,
    tx: &mut Tx,
    session_ids: &[String],
    reason: &str,
    now: Timestamp,
) -> Result<u64> {
    let mut ended = 0;
    for sid in session_ids {
        let done = sqlx::query(
            "update user_session set revoked_at = $1 where user_session_id = $2 and revoked_at is null",
        )
        .bind(now.millis())
        .bind(sid)
        .execute(&mut **tx)
        .await
        .context("Failed to end a session")?;
        if done.rows_affected() == 0 {
            continue;
        }
        ended += 1;
        sqlx::query(
            "update token_family set revoked_at = $1, revoked_reason = $2 \
             where user_session_id = $3 and revoked_at is null",
        )
        .bind(now.millis())
        .bind(reason)
        .bind(sid)
        .execute(&mut **tx)
        .await
        .context("Failed to revoke a session's tokens")?;
        queue_logouts(identity, tx, sid, None, now).await?;
    }
    Ok(ended)
}

/// Every live session of a user (disabling, email change).
pub(crate) async fn end_user_sessions(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    reason: &str,
    now: Timestamp,
) -> Result<u64> {
    let ids: Vec<String> = sqlx::query(
        "select user_session_id from user_session where user_id = $1 and revoked_at is null",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await
    .context("Failed to list a user's sessions")?
    .iter()
    .map(|r| r.try_get("user_session_id"))
    .collect::<std::result::Result<_, _>>()
    .context("user_session.id")?;
    let ended = end_sessions(identity, tx, &ids, reason, now).await?;
    // Families without a live session (e.g. the session expired but refresh tokens live on).
    sqlx::query(
        "update token_family set revoked_at = $1, revoked_reason = $2 where user_id = $3 and revoked_at is null",
    )
    .bind(now.millis())
    .bind(reason)
    .bind(user_id)
    .execute(&mut **tx)
    .await
    .context("Failed to revoke a user's tokens")?;
    Ok(ended)
}

/// A disabled application: every token it was issued is revoked and it is logged out of every
/// session it took part in (the sessions themselves live on for the other applications).
pub(crate) async fn end_application(
    identity: &Identity,
    tx: &mut Tx,
    application_id: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "update token_family set revoked_at = $1, revoked_reason = 'application_disabled' \
         where application_id = $2 and revoked_at is null",
    )
    .bind(now.millis())
    .bind(application_id)
    .execute(&mut **tx)
    .await
    .context("Failed to revoke an application's tokens")?;
    let sessions: Vec<String> = sqlx::query(
        "select p.user_session_id from session_application p \
         join user_session s on s.user_session_id = p.user_session_id \
         where p.application_id = $1 and s.revoked_at is null and s.expires_at > $2",
    )
    .bind(application_id)
    .bind(now.millis())
    .fetch_all(&mut **tx)
    .await
    .context("Failed to list an application's sessions")?
    .iter()
    .map(|r| r.try_get("user_session_id"))
    .collect::<std::result::Result<_, _>>()
    .context("session_application.id")?;
    for sid in &sessions {
        queue_logouts(identity, tx, sid, Some(application_id), now).await?;
    }
    sqlx::query("delete from session_application where application_id = $1")
        .bind(application_id)
        .execute(&mut **tx)
        .await
        .context("Failed to end an application's sessions")?;
    Ok(())
}

#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    sid: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    events: serde_json::Value,
}

/// Queues a logout token for each application of the session with a back-channel URI (or only
/// `only_application`).
async fn queue_logouts(
    identity: &Identity,
    tx: &mut Tx,
    session_id: &str,
    only_application: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let rows = sqlx::query(
        "select a.application_id, a.client_id, a.backchannel_logout_uri, s.user_id \
         from session_application p \
         join application a on a.application_id = p.application_id \
         join user_session s on s.user_session_id = p.user_session_id \
         where p.user_session_id = $1 and a.backchannel_logout_uri is not null \
         and ($2 = '' or a.application_id = $2)",
    )
    .bind(session_id)
    .bind(only_application.unwrap_or(""))
    .fetch_all(&mut **tx)
    .await
    .context("Failed to list a session's applications")?;
    for row in rows {
        let app_id: String = row.try_get("application_id").context("application.id")?;
        let client_id: String = row.try_get("client_id").context("application.client_id")?;
        let url: String = row
            .try_get("backchannel_logout_uri")
            .context("application.backchannel_logout_uri")?;
        let user_id: String = row.try_get("user_id").context("user_session.user_id")?;
        let claims = LogoutClaims {
            iss: &identity.settings().issuer,
            aud: &client_id,
            sub: &user_id,
            sid: session_id,
            iat: now.millis() / 1000,
            exp: now.millis() / 1000 + 120,
            jti: new_id(),
            events: json!({ BACKCHANNEL_EVENT: {} }),
        };
        let token = crate::keys::sign(identity, "logout+jwt", &claims)?;
        sqlx::query(
            "insert into logout_delivery (logout_delivery_id, application_id, user_session_id, user_id, \
             url, token, created_at, next_attempt_at) values ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(new_id())
        .bind(&app_id)
        .bind(session_id)
        .bind(&user_id)
        .bind(&url)
        .bind(&token)
        .bind(now.millis())
        .execute(&mut **tx)
        .await
        .context("Failed to queue a back-channel logout")?;
    }
    Ok(())
}

/// A logout token to deliver. (No `Debug`: it carries the token.)
#[derive(Clone)]
pub struct Due {
    pub id: String,
    pub application_id: String,
    pub url: String,
    pub token: String,
    pub attempts: i64,
}

/// Claims up to `limit` due deliveries (leased, so replicas do not send the same one at once).
pub async fn claim_due(identity: &Identity, now: Timestamp, limit: i64) -> Result<Vec<Due>> {
    let mut tx = identity.db().begin().await?;
    let rows = sqlx::query(
        "select logout_delivery_id, application_id, url, token, attempts from logout_delivery \
         where delivered_at is null and failed_at is null and next_attempt_at <= $1 \
         order by next_attempt_at limit $2",
    )
    .bind(now.millis())
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .context("Failed to read due logouts")?;
    let mut due = Vec::with_capacity(rows.len());
    for r in rows {
        let d = Due {
            id: r.try_get("logout_delivery_id").context("logout.id")?,
            application_id: r.try_get("application_id").context("logout.app")?,
            url: r.try_get("url").context("logout.url")?,
            token: r.try_get("token").context("logout.token")?,
            attempts: r.try_get("attempts").context("logout.attempts")?,
        };
        let claimed = sqlx::query(
            "update logout_delivery set next_attempt_at = $1 where logout_delivery_id = $2 \
             and next_attempt_at <= $3 and delivered_at is null and failed_at is null",
        )
        .bind(now.millis() + LEASE_MS)
        .bind(&d.id)
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .context("Failed to claim a logout")?;
        if claimed.rows_affected() == 1 {
            due.push(d);
        }
    }
    tx.commit().await.context("Failed to claim logouts")?;
    Ok(due)
}

/// Records one delivery attempt: delivered, retried later with backoff, or given up. The final
/// result is audited.
pub async fn report(
    identity: &Identity,
    due: &Due,
    outcome: std::result::Result<u16, String>,
    now: Timestamp,
) -> Result<()> {
    let attempts = due.attempts + 1;
    let mut tx = identity.db().begin().await?;
    let (event, detail) = match &outcome {
        Ok(status) => {
            sqlx::query(
                "update logout_delivery set attempts = $1, delivered_at = $2, last_error = null \
                 where logout_delivery_id = $3",
            )
            .bind(attempts)
            .bind(now.millis())
            .bind(&due.id)
            .execute(&mut *tx)
            .await
            .context("Failed to record a logout delivery")?;
            (
                Some(Event::LogoutDelivered),
                json!({ "delivery_id": due.id, "url": due.url, "status": status, "attempts": attempts }),
            )
        }
        Err(error) => {
            let give_up = attempts >= MAX_ATTEMPTS;
            sqlx::query(
                "update logout_delivery set attempts = $1, last_error = $2, next_attempt_at = $3, \
                 failed_at = $4 where logout_delivery_id = $5",
            )
            .bind(attempts)
            .bind(error)
            .bind(now.millis() + 1000 * (1i64 << attempts.min(10)))
            .bind(give_up.then_some(now.millis()))
            .bind(&due.id)
            .execute(&mut *tx)
            .await
            .context("Failed to record a logout failure")?;
            (
                give_up.then_some(Event::LogoutDeliveryFailed),
                json!({ "delivery_id": due.id, "url": due.url, "error": error, "attempts": attempts }),
            )
        }
    };
    match event {
        Some(event) => {
            let entry = if outcome.is_ok() {
                Entry::success(
                    event,
                    Some(Target::application(&due.application_id)),
                    detail,
                )
            } else {
                Entry::failure(
                    event,
                    Some(Target::application(&due.application_id)),
                    detail,
                )
            };
            audit::commit_with(
                tx,
                &Actor::System,
                &RequestMeta::default(),
                entry,
                now,
                "Failed to commit a logout delivery",
            )
            .await
        }
        None => tx.commit().await.context("Failed to commit a logout retry"),
    }
}

/// A delivery as staff see it (never the token).
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: String,
    pub url: String,
    pub session_id: String,
    pub user_id: String,
    pub attempts: i64,
    pub status: &'static str,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// The latest back-channel logout deliveries of an application, newest first.
pub async fn deliveries(
    identity: &Identity,
    principal: &Principal,
    application_id: &str,
    limit: i64,
) -> Result<Vec<Delivery>> {
    principal.authorize_in(Action::ViewApplications, application_id)?;
    let rows = sqlx::query(
        "select logout_delivery_id, url, user_session_id, user_id, attempts, last_error, created_at, \
         delivered_at, failed_at from logout_delivery where application_id = $1 \
         order by created_at desc, logout_delivery_id desc limit $2",
    )
    .bind(application_id)
    .bind(limit.clamp(1, 200))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list logout deliveries")?;
    rows.iter()
        .map(|r| {
            let delivered: Option<i64> = r.try_get("delivered_at").context("logout.delivered")?;
            let failed: Option<i64> = r.try_get("failed_at").context("logout.failed")?;
            Ok(Delivery {
                id: r.try_get("logout_delivery_id").context("logout.id")?,
                url: r.try_get("url").context("logout.url")?,
                session_id: r.try_get("user_session_id").context("logout.sid")?,
                user_id: r.try_get("user_id").context("logout.user")?,
                attempts: r.try_get("attempts").context("logout.attempts")?,
                status: match (delivered, failed) {
                    (Some(_), _) => "delivered",
                    (None, Some(_)) => "failed",
                    (None, None) => "pending",
                },
                last_error: r.try_get("last_error").context("logout.error")?,
                created_at: Timestamp::from_millis(r.try_get("created_at").context("logout.at")?),
                delivered_at: delivered.map(Timestamp::from_millis),
            })
        })
        .collect()
}
