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
        "select outbox_message_id, to_email, subject, body, created_at, sent_at, error from outbox_message \
         order by created_at desc, outbox_message_id desc limit $1",
    )
    .bind(limit.clamp(1, 500))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to read the outbox")?;
    rows.iter().map(decode).collect()
}

/// Messages not yet delivered, oldest first (for the SMTP sender).
pub async fn pending(identity: &Identity, limit: i64) -> Result<Vec<Message>> {
    let rows = sqlx::query(
        "select outbox_message_id, to_email, subject, body, created_at, sent_at, error from outbox_message \
         where sent_at is null order by created_at limit $1",
    )
    .bind(limit)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to read pending messages")?;
    rows.iter().map(decode).collect()
}

/// Records a delivery attempt.
pub async fn mark(
    identity: &Identity,
    id: &str,
    outcome: std::result::Result<(), String>,
    now: Timestamp,
) -> Result<()> {
    let (sent, error) = match outcome {
        Ok(()) => (Some(now.millis()), None),
        Err(e) => (None, Some(e)),
    };
    sqlx::query("update outbox_message set sent_at = $1, error = $2 where outbox_message_id = $3")
        .bind(sent)
        .bind(error)
        .bind(id)
        .execute(identity.db().pool())
        .await
        .map(|_| ())
        .context("Failed to record a delivery")
}
