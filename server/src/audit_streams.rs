//! Sends audit webhook streams (see `identity::audit_streams`): claims due deliveries, POSTs each
//! signed batch and reports the outcome. Runs on every replica; leases keep a delivery with one.
//! Outbound requests use the back-channel client's guards (no redirects, public addresses only
//! unless `PORTCULLIS_ALLOW_PRIVATE_OUTBOUND`).

use identity::audit_streams::{self, Due};
use identity::{Identity, Timestamp};
use std::time::{Duration, Instant};

/// Polls every `interval` until the runtime stops.
pub fn spawn(identity: Identity, allow_private: bool, interval: Duration) {
    tokio::spawn(async move {
        let client = match crate::backchannel::client(allow_private, "Portcullis audit stream") {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "audit stream client could not start");
                return;
            }
        };
        loop {
            match round(&identity, &client, allow_private).await {
                // A full batch went out: there may be more right away.
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %app::ssr::error_chain(&e), "audit stream round failed")
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// One pass; true when a stream delivered a full batch (more may be waiting).
async fn round(
    identity: &Identity,
    client: &reqwest::Client,
    allow_private: bool,
) -> identity::Result<bool> {
    let mut busy = false;
    for due in audit_streams::claim_due(identity, Timestamp::now(), 20).await? {
        let started = Instant::now();
        let outcome = send(client, &due, allow_private).await;
        if let Err((_, e)) = &outcome {
            tracing::warn!(
                stream = due.stream_id,
                delivery = due.delivery_id,
                error = e,
                "audit stream delivery failed"
            );
        }
        busy |= outcome.is_ok() && !due.redelivery && due.events >= audit_streams::BATCH;
        let ms = started.elapsed().as_millis() as i64;
        audit_streams::report(identity, &due, outcome, ms, Timestamp::now()).await?;
    }
    Ok(busy)
}

async fn send(
    client: &reqwest::Client,
    due: &Due,
    allow_private: bool,
) -> Result<u16, (Option<u16>, String)> {
    let url = crate::backchannel::guarded_url(&due.url, allow_private).map_err(|e| (None, e))?;
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(audit_streams::SIGNATURE_HEADER, &due.signature)
        .header("Portcullis-Delivery", &due.delivery_id)
        .body(due.body.clone())
        .send()
        .await
        .map_err(|e| (None, crate::backchannel::describe(&e)))?;
    let status = res.status().as_u16();
    if res.status().is_success() {
        Ok(status)
    } else {
        Err((Some(status), format!("HTTP {status}")))
    }
}
