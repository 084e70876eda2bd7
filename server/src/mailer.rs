//! Delivers the outbox through SMTP when `PORTCULLIS_SMTP_URL` is set (e.g.
//! `smtps://user:pass@smtp.example.com`, `smtp://relay.internal:25?tls=required`; lettre's URL form).
//! Messages are written to the outbox in the transaction that caused them; this task claims each one
//! (a conditional update, so several replicas never send the same message twice), sends it, and
//! records the outcome. A failed send is released for a later attempt with its error recorded.

use identity::{Identity, Timestamp};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Polls the outbox every `interval` until the process stops.
pub fn spawn(identity: Identity, smtp_url: String, from: String, interval: Duration) {
    tokio::spawn(async move {
        let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp_url) {
            Ok(builder) => builder.timeout(Some(Duration::from_secs(20))).build(),
            Err(e) => {
                // The URL may hold a password: log the error kind, not the URL.
                tracing::error!(error = %e, "PORTCULLIS_SMTP_URL is not a valid SMTP URL; mail stays in the outbox");
                return;
            }
        };
        let from: Mailbox = match from.parse() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "PORTCULLIS_MAIL_FROM is not a valid address; mail stays in the outbox");
                return;
            }
        };
        loop {
            if let Err(e) = deliver(&identity, &transport, &from).await {
                tracing::warn!(error = %app::ssr::error_chain(&e), "outbox delivery round failed");
            }
            tokio::time::sleep(interval).await;
        }
    });
}

async fn deliver(
    identity: &Identity,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> identity::Result<()> {
    for message in identity::mail::pending(identity, 50).await? {
        if !identity::mail::claim(identity, &message.id, Timestamp::now()).await? {
            continue; // another replica has it
        }
        let outcome = match build(from, &message) {
            Ok(email) => transport
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            tracing::warn!(
                message_id = message.id,
                error = e,
                "sending a message failed"
            );
        }
        identity::mail::mark(identity, &message, outcome, Timestamp::now()).await?;
    }
    Ok(())
}

fn build(from: &Mailbox, message: &identity::mail::Message) -> Result<Message, String> {
    let to: Mailbox = message
        .to
        .parse()
        .map_err(|e| format!("bad recipient: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(message.subject.clone())
        .body(message.body.clone())
        .map_err(|e| e.to_string())
}
