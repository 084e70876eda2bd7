//! Retention: events older than the retention period are purged from the start of the chain. Each
//! purge first records a checkpoint — the sequence number and hash of the last purged event, signed
//! with a key published in the JWKS — in the same transaction as the delete, so the first event that
//! remains still links to something a verifier can check (`audit::verify_range` starts there). The
//! database refuses to delete any event a checkpoint does not cover.

use crate::audit::{self, Actor, Entry, Event, Target};
use crate::error::{Context, Error, Result};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

/// Events deleted per transaction, so a large first purge does not hold the write lock for long.
const PURGE_BATCH: i64 = 50_000;

/// The signed claims of a checkpoint (a compact JWS, `typ: audit-checkpoint+jwt`).
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    iat: i64,
    through_seq: i64,
    through_hash: String,
    purged: i64,
    cutoff: i64,
}

/// A stored checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct Checkpoint {
    pub through_seq: i64,
    pub through_hash: String,
    pub purged: i64,
    pub cutoff: Timestamp,
    pub kid: String,
    pub signature: String,
    pub created_at: Timestamp,
}

/// What one retention run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Purge {
    pub purged: i64,
    pub checkpoints: i64,
    pub through_seq: Option<i64>,
}

/// Purges every event created before `now - retention_days` (from the start of the chain up to
/// the first newer event), in batches, each with its checkpoint and an `audit.purged` event.
/// `retention_days <= 0` keeps everything.
pub async fn apply(identity: &Identity, retention_days: i64, now: Timestamp) -> Result<Purge> {
    let mut total = Purge::default();
    if retention_days <= 0 {
        return Ok(total);
    }
    let cutoff = now.millis() - retention_days * 86_400_000;
    loop {
        match purge_batch(identity, retention_days, cutoff, now).await? {
            Some((through, purged)) => {
                total.purged += purged;
                total.checkpoints += 1;
                total.through_seq = Some(through);
            }
            None => return Ok(total),
        }
    }
}

/// One transaction: the oldest `PURGE_BATCH` events older than `cutoff`, if any.
async fn purge_batch(
    identity: &Identity,
    retention_days: i64,
    cutoff: i64,
    now: Timestamp,
) -> Result<Option<(i64, i64)>> {
    let mut tx = identity.db().begin().await?;
    // The chain head's row lock (PostgreSQL) or the write lock (SQLite) first: one purge at a time
    // across replicas, and no append between reading the range and checkpointing it.
    let head: i64 =
        sqlx::query_scalar("update audit_head set seq = seq where audit_head_id = 1 returning seq")
            .fetch_one(&mut *tx)
            .await
            .context("Failed to lock the audit chain head")?;
    let first: Option<i64> = sqlx::query_scalar("select min(seq) from audit_event")
        .fetch_one(&mut *tx)
        .await
        .context("Failed to read the oldest audit event")?;
    let Some(first) = first else {
        return Ok(None);
    };
    let first_kept: Option<i64> =
        sqlx::query_scalar("select min(seq) from audit_event where created_at >= $1")
            .bind(cutoff)
            .fetch_one(&mut *tx)
            .await
            .context("Failed to find the retention boundary")?;
    let last_old = first_kept.map_or(head, |s| s - 1);
    if last_old < first {
        return Ok(None);
    }
    let through = last_old.min(first + PURGE_BATCH - 1);
    let through_hash: String = sqlx::query_scalar("select hash from audit_event where seq = $1")
        .bind(through)
        .fetch_one(&mut *tx)
        .await
        .context("Failed to read the purge point")?;
    let purged = through - first + 1;
    let signature = crate::keys::sign(
        identity,
        "audit-checkpoint+jwt",
        &Claims {
            iss: identity.settings().issuer.clone(),
            iat: now.millis() / 1000,
            through_seq: through,
            through_hash: through_hash.clone(),
            purged,
            cutoff,
        },
    )?;
    let kid = jsonwebtoken::decode_header(&signature)
        .ok()
        .and_then(|h| h.kid)
        .ok_or_else(|| Error::internal("A checkpoint has no key id", std::fmt::Error))?;
    sqlx::query(
        "insert into audit_checkpoint (through_seq, through_hash, purged, cutoff, kid, signature, \
         created_at) values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(through)
    .bind(&through_hash)
    .bind(purged)
    .bind(cutoff)
    .bind(&kid)
    .bind(&signature)
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to record an audit checkpoint")?;
    let deleted = sqlx::query("delete from audit_event where seq <= $1")
        .bind(through)
        .execute(&mut *tx)
        .await
        .context("Failed to purge audit events")?
        .rows_affected() as i64;
    audit::commit_with(
        tx,
        &Actor::System,
        &RequestMeta::default(),
        Entry::success(
            Event::AuditPurged,
            Some(Target {
                kind: "audit_checkpoint",
                id: through.to_string(),
            }),
            json!({
                "through_seq": through,
                "through_hash": through_hash,
                "purged": deleted,
                "cutoff": cutoff,
                "retention_days": retention_days,
                "kid": kid,
            }),
        ),
        now,
        "Failed to commit an audit purge",
    )
    .await?;
    tracing::info!(
        through,
        purged = deleted,
        "purged audit events past retention"
    );
    Ok(Some((through, deleted)))
}

/// The newest checkpoint, if events were ever purged.
pub async fn latest(identity: &Identity) -> Result<Option<Checkpoint>> {
    let row = sqlx::query(
        "select through_seq, through_hash, purged, cutoff, kid, signature, created_at \
         from audit_checkpoint order by through_seq desc limit 1",
    )
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read the audit checkpoint")?;
    row.map(|r| -> Result<Checkpoint> {
        Ok(Checkpoint {
            through_seq: r.try_get("through_seq").context("checkpoint.through_seq")?,
            through_hash: r
                .try_get("through_hash")
                .context("checkpoint.through_hash")?,
            purged: r.try_get("purged").context("checkpoint.purged")?,
            cutoff: Timestamp::from_millis(r.try_get("cutoff").context("checkpoint.cutoff")?),
            kid: r.try_get("kid").context("checkpoint.kid")?,
            signature: r.try_get("signature").context("checkpoint.signature")?,
            created_at: Timestamp::from_millis(
                r.try_get("created_at").context("checkpoint.created_at")?,
            ),
        })
    })
    .transpose()
}

/// Checks a checkpoint's signature (with the published key it names, current or retired) and that
/// the signed claims are the stored ones. `Err` carries what is wrong, for the verification report.
pub async fn check(
    identity: &Identity,
    cp: &Checkpoint,
) -> Result<std::result::Result<(), String>> {
    let Some((key, alg)) = crate::keys::stored_decoding_key(identity, &cp.kid).await? else {
        return Ok(Err(format!("its signing key {} is unknown", cp.kid)));
    };
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = match jsonwebtoken::decode::<Claims>(&cp.signature, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return Ok(Err("its signature does not verify".to_owned())),
    };
    if claims.through_seq != cp.through_seq
        || claims.through_hash != cp.through_hash
        || claims.purged != cp.purged
        || claims.cutoff != cp.cutoff.millis()
    {
        return Ok(Err(
            "its stored values differ from the signed ones".to_owned()
        ));
    }
    Ok(Ok(()))
}
