//! Outgoing mail. Every message is written to the outbox in the transaction that caused it (so a
//! rolled-back change sends nothing); a sender delivers it through SMTP when one is configured.
//! Without SMTP the outbox is the mailbox: owners read it in the dashboard (Settings → Outbox) and
//! tests read it directly, so a fresh install can complete every flow with no mail server.

use crate::Identity;
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::email::Email;
use crate::error::{Context, Result};
use crate::secret::new_id;
use crate::time::Timestamp;
use serde::Serialize;
use sqlx::Row;

/// Queues a message in the caller's transaction.
pub(crate) async fn queue(
    tx: &mut Tx,
    to: &Email,
    subject: &str,
    body: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "insert into outbox_message (outbox_message_id, to_email, subject, body, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(to.as_str())
    .bind(subject)
    .bind(body)
    .bind(now.millis())
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .context("Failed to queue a message")
}

#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub attempts: i64,
    pub error: Option<String>,
}

fn decode(row: &sqlx::any::AnyRow) -> Result<Message> {
    Ok(Message {
        id: row.try_get("outbox_message_id").context("outbox.id")?,
        to: row.try_get("to_email").context("outbox.to")?,
        subject: row.try_get("subject").context("outbox.subject")?,
        body: row.try_get("body").context("outbox.body")?,
        created_at: Timestamp::from_millis(row.try_get("created_at").context("outbox.created_at")?),
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at")
            .context("outbox.sent_at")?
            .map(Timestamp::from_millis),
        attempts: row.try_get("attempts").context("outbox.attempts")?,
        error: row.try_get("error").context("outbox.error")?,
    })
}

/// The newest messages (owners only: they carry one-time links).
pub async fn outbox(
    identity: &Identity,
    principal: &Principal,
    limit: i64,
) -> Result<Vec<Message>> {
    principal.authorize(Action::ViewOutbox)?;
    let rows = sqlx::query(
        "select outbox_message_id, to_email, subject, body, created_at, sent_at, attempts, error from outbox_message \
         order by created_at desc, outbox_message_id desc limit $1",
    )
    .bind(limit.clamp(1, 500))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to read the outbox")?;
    rows.iter().map(decode).collect()
}

/// Messages due for delivery, oldest first (for the SMTP sender).
pub async fn pending(identity: &Identity, limit: i64) -> Result<Vec<Message>> {
    let rows = sqlx::query(
        "select outbox_message_id, to_email, subject, body, created_at, sent_at, attempts, error from outbox_message \
         where sent_at is null and (next_attempt_at is null or next_attempt_at <= $2) order by created_at limit $1",
    )
    .bind(limit)
    .bind(Timestamp::now().millis())
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to read pending messages")?;
    rows.iter().map(decode).collect()
}

/// Claims a message for sending: true when this caller won it (it was still unsent).
pub async fn claim(identity: &Identity, id: &str, now: Timestamp) -> Result<bool> {
    sqlx::query(
        "update outbox_message set sent_at = $1 where outbox_message_id = $2 and sent_at is null",
    )
    .bind(now.millis())
    .bind(id)
    .execute(identity.db().writer())
    .await
    .map(|r| r.rows_affected() == 1)
    .context("Failed to claim a message")
}

/// Records a delivery attempt: sent, or released for a later attempt (30 s, 1 min, 2 min, … at most
/// an hour apart) with the error.
pub async fn mark(
    identity: &Identity,
    message: &Message,
    outcome: std::result::Result<(), String>,
    now: Timestamp,
) -> Result<()> {
    let id = &message.id;
    let backoff_secs = 30 * (1_i64 << message.attempts.clamp(0, 7)).min(120);
    let query = match outcome {
        // Delivered: the body (which may hold a one-time link) leaves the database.
        Ok(()) => sqlx::query(
            "update outbox_message set sent_at = $1, error = null, attempts = attempts + 1, \
             body = '(delivered by SMTP; the body was removed because it may hold a one-time link)' \
             where outbox_message_id = $2",
        )
        .bind(now.millis())
        .bind(id),
        Err(e) => sqlx::query(
            "update outbox_message set sent_at = null, error = $1, attempts = attempts + 1, \
             next_attempt_at = $2 where outbox_message_id = $3",
        )
        .bind(e)
        .bind(now.plus_secs(backoff_secs).millis())
        .bind(id),
    };
    query
        .execute(identity.db().writer())
        .await
        .map(|_| ())
        .context("Failed to record a delivery")
}
