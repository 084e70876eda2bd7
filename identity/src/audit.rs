//! The audit spine: an append-only, hash-chained log written in the same transaction as each change.
//!
//! Each row stores `hash = sha256(prev_hash ‖ canonical row)`. The chain head lives in the one-row
//! `audit_head` table; appending updates it first, which takes its row lock (PostgreSQL) or runs under
//! the write lock (SQLite), so concurrent writers and replicas extend one line.

use crate::RequestMeta;
use crate::db::Tx;
use crate::error::{Context, Result};
use crate::time::Timestamp;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Every event Portcullis writes. Names are stable: they are what reviewers filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Event {
    StaffSignedIn,
    StaffSignInFailed,
    StaffSignedOut,
    StaffCreated,
    StaffInvited,
    StaffInvitationAccepted,
    StaffRoleChanged,
    StaffDisabled,
    StaffEnabled,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApplicationCreated,
    ApplicationUpdated,
    ApplicationDisabled,
    ApplicationEnabled,
    ApplicationDeleted,
    ClientSecretCreated,
    ClientSecretRevoked,
    AppApiKeyCreated,
    AppApiKeyRevoked,
    SettingsUpdated,
    UserCreated,
    UserInvited,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    UserSignedIn,
    UserSignInFailed,
    UserSignedUp,
    UserSignedOut,
    UserPasswordResetRequested,
    UserPasswordReset,
    UserInvitationAccepted,
    UserSessionRevoked,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationMemberAdded,
    OrganizationMemberRemoved,
    AppRoleCreated,
    AppRoleDeleted,
    AppRoleGranted,
    AppRoleRevoked,
    SigningKeyCreated,
    SigningKeyRotated,
    AuthorizationCodeIssued,
    TokenIssued,
    TokenRefreshed,
    TokenReuseDetected,
    TokenRevoked,
    LogoutDelivered,
    LogoutDeliveryFailed,
    ImpersonationPolicyUpdated,
    ImpersonationAssigned,
    ImpersonationUnassigned,
    ImpersonationRequested,
    ImpersonationApproved,
    ImpersonationDenied,
    ImpersonationExpiredUnapproved,
    ImpersonationStarted,
    ImpersonationTokenIssued,
    ImpersonationEnded,
    ImpersonationUserNotified,
    AuditPurged,
    AuditStreamCreated,
    AuditStreamUpdated,
    AuditStreamSecretRotated,
    AuditStreamDeleted,
    AuditStreamRedeliveryRequested,
}

impl Event {
    pub const ALL: [Event; 68] = [
        Event::StaffSignedIn,
        Event::StaffSignInFailed,
        Event::StaffSignedOut,
        Event::StaffCreated,
        Event::StaffInvited,
        Event::StaffInvitationAccepted,
        Event::StaffRoleChanged,
        Event::StaffDisabled,
        Event::StaffEnabled,
        Event::ApiKeyCreated,
        Event::ApiKeyRevoked,
        Event::ApplicationCreated,
        Event::ApplicationUpdated,
        Event::ApplicationDisabled,
        Event::ApplicationEnabled,
        Event::ApplicationDeleted,
        Event::ClientSecretCreated,
        Event::ClientSecretRevoked,
        Event::AppApiKeyCreated,
        Event::AppApiKeyRevoked,
        Event::SettingsUpdated,
        Event::UserCreated,
        Event::UserInvited,
        Event::UserUpdated,
        Event::UserDisabled,
        Event::UserEnabled,
        Event::UserSignedIn,
        Event::UserSignInFailed,
        Event::UserSignedUp,
        Event::UserSignedOut,
        Event::UserPasswordResetRequested,
        Event::UserPasswordReset,
        Event::UserInvitationAccepted,
        Event::UserSessionRevoked,
        Event::OrganizationCreated,
        Event::OrganizationDeleted,
        Event::OrganizationMemberAdded,
        Event::OrganizationMemberRemoved,
        Event::AppRoleCreated,
        Event::AppRoleDeleted,
        Event::AppRoleGranted,
        Event::AppRoleRevoked,
        Event::SigningKeyCreated,
        Event::SigningKeyRotated,
        Event::AuthorizationCodeIssued,
        Event::TokenIssued,
        Event::TokenRefreshed,
        Event::TokenReuseDetected,
        Event::TokenRevoked,
        Event::LogoutDelivered,
        Event::LogoutDeliveryFailed,
        Event::ImpersonationPolicyUpdated,
        Event::ImpersonationAssigned,
        Event::ImpersonationUnassigned,
        Event::ImpersonationRequested,
        Event::ImpersonationApproved,
        Event::ImpersonationDenied,
        Event::ImpersonationExpiredUnapproved,
        Event::ImpersonationStarted,
        Event::ImpersonationTokenIssued,
        Event::ImpersonationEnded,
        Event::ImpersonationUserNotified,
        Event::AuditPurged,
        Event::AuditStreamCreated,
        Event::AuditStreamUpdated,
        Event::AuditStreamSecretRotated,
        Event::AuditStreamDeleted,
        Event::AuditStreamRedeliveryRequested,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::StaffSignedIn => "staff.signed_in",
            Event::StaffSignInFailed => "staff.sign_in_failed",
            Event::StaffSignedOut => "staff.signed_out",
            Event::StaffCreated => "staff.created",
            Event::StaffInvited => "staff.invited",
            Event::StaffInvitationAccepted => "staff.invitation_accepted",
            Event::StaffRoleChanged => "staff.role_changed",
            Event::StaffDisabled => "staff.disabled",
            Event::StaffEnabled => "staff.enabled",
            Event::ApiKeyCreated => "api_key.created",
            Event::ApiKeyRevoked => "api_key.revoked",
            Event::ApplicationCreated => "application.created",
            Event::ApplicationUpdated => "application.updated",
            Event::ApplicationDisabled => "application.disabled",
            Event::ApplicationEnabled => "application.enabled",
            Event::ApplicationDeleted => "application.deleted",
            Event::ClientSecretCreated => "client_secret.created",
            Event::ClientSecretRevoked => "client_secret.revoked",
            Event::AppApiKeyCreated => "app_api_key.created",
            Event::AppApiKeyRevoked => "app_api_key.revoked",
            Event::SettingsUpdated => "settings.updated",
            Event::UserCreated => "user.created",
            Event::UserInvited => "user.invited",
            Event::UserUpdated => "user.updated",
            Event::UserDisabled => "user.disabled",
            Event::UserEnabled => "user.enabled",
            Event::UserSignedIn => "user.signed_in",
            Event::UserSignInFailed => "user.sign_in_failed",
            Event::UserSignedUp => "user.signed_up",
            Event::UserSignedOut => "user.signed_out",
            Event::UserPasswordResetRequested => "user.password_reset_requested",
            Event::UserPasswordReset => "user.password_reset",
            Event::UserInvitationAccepted => "user.invitation_accepted",
            Event::UserSessionRevoked => "user.session_revoked",
            Event::OrganizationCreated => "organization.created",
            Event::OrganizationDeleted => "organization.deleted",
            Event::OrganizationMemberAdded => "organization.member_added",
            Event::OrganizationMemberRemoved => "organization.member_removed",
            Event::AppRoleCreated => "app_role.created",
            Event::AppRoleDeleted => "app_role.deleted",
            Event::AppRoleGranted => "app_role.granted",
            Event::AppRoleRevoked => "app_role.revoked",
            Event::SigningKeyCreated => "signing_key.created",
            Event::SigningKeyRotated => "signing_key.rotated",
            Event::AuthorizationCodeIssued => "authorization.code_issued",
            Event::TokenIssued => "token.issued",
            Event::TokenRefreshed => "token.refreshed",
            Event::TokenReuseDetected => "token.reuse_detected",
            Event::TokenRevoked => "token.revoked",
            Event::LogoutDelivered => "logout.delivered",
            Event::LogoutDeliveryFailed => "logout.delivery_failed",
            Event::ImpersonationPolicyUpdated => "impersonation.policy_updated",
            Event::ImpersonationAssigned => "impersonation.assigned",
            Event::ImpersonationUnassigned => "impersonation.unassigned",
            Event::ImpersonationRequested => "impersonation.requested",
            Event::ImpersonationApproved => "impersonation.approved",
            Event::ImpersonationDenied => "impersonation.denied",
            Event::ImpersonationExpiredUnapproved => "impersonation.expired_unapproved",
            Event::ImpersonationStarted => "impersonation.started",
            Event::ImpersonationTokenIssued => "impersonation.token_issued",
            Event::ImpersonationEnded => "impersonation.ended",
            Event::ImpersonationUserNotified => "impersonation.user_notified",
            Event::AuditPurged => "audit.purged",
            Event::AuditStreamCreated => "audit_stream.created",
            Event::AuditStreamUpdated => "audit_stream.updated",
            Event::AuditStreamSecretRotated => "audit_stream.secret_rotated",
            Event::AuditStreamDeleted => "audit_stream.deleted",
            Event::AuditStreamRedeliveryRequested => "audit_stream.redelivery_requested",
        }
    }
}

/// Who did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Staff {
        id: String,
        email: String,
    },
    ApiKey {
        id: String,
        name: String,
    },
    /// An end user, on the hosted pages.
    User {
        id: String,
        email: String,
    },
    /// An application authenticating as itself (OAuth client).
    Client {
        id: String,
        client_id: String,
    },
    /// The CLI or Portcullis itself.
    System,
    /// Someone not (yet) identified, e.g. a failed sign-in.
    Anonymous,
}

impl Actor {
    pub(crate) fn parts(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Actor::Staff { id, email } => ("staff", Some(id), Some(email)),
            Actor::ApiKey { id, name } => ("api_key", Some(id), Some(name)),
            Actor::User { id, email } => ("user", Some(id), Some(email)),
            Actor::Client { id, client_id } => ("client", Some(id), Some(client_id)),
            Actor::System => ("system", None, None),
            Actor::Anonymous => ("anonymous", None, None),
        }
    }
}

/// What it was done to.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
}

impl Target {
    pub fn staff(id: &str) -> Self {
        Self {
            kind: "staff",
            id: id.to_owned(),
        }
    }

    pub fn user(id: &str) -> Self {
        Self {
            kind: "user",
            id: id.to_owned(),
        }
    }

    pub fn organization(id: &str) -> Self {
        Self {
            kind: "organization",
            id: id.to_owned(),
        }
    }

    pub fn impersonation(id: &str) -> Self {
        Self {
            kind: "impersonation",
            id: id.to_owned(),
        }
    }

    pub fn application(id: &str) -> Self {
        Self {
            kind: "application",
            id: id.to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One event to append.
#[derive(Clone, Debug)]
pub struct Entry {
    pub event: Event,
    pub outcome: Outcome,
    pub target: Option<Target>,
    /// Free-form structured detail; changes carry `{"before": …, "after": …}`.
    pub detail: Value,
}

impl Entry {
    pub fn success(event: Event, target: Option<Target>, detail: Value) -> Self {
        Self {
            event,
            outcome: Outcome::Success,
            target,
            detail,
        }
    }

    pub fn failure(event: Event, target: Option<Target>, detail: Value) -> Self {
        Self {
            event,
            outcome: Outcome::Failure,
            target,
            detail,
        }
    }
}

/// A stored event as read back.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub seq: i64,
    pub event_id: String,
    pub event: String,
    pub outcome: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: Value,
    pub created_at: Timestamp,
    pub prev_hash: String,
    pub hash: String,
    /// Derived (not hashed): the catalog category, and the application and end user the event is
    /// about (its target, or `application_id` / `user_id` in its detail).
    pub category: String,
    pub application_id: Option<String>,
    pub user_id: Option<String>,
}

/// The columns a row's hash covers, borrowed (verification reads them without building a `Record`).
struct Hashed<'a> {
    seq: i64,
    texts: [&'a str; 4],
    optional: [Option<&'a str>; 7],
    detail_text: &'a str,
    created_at: i64,
    prev_hash: &'a str,
}

/// `hash = sha256(prev_hash ‖ "\n" ‖ canonical)`, where the canonical bytes are every column but
/// `hash` in a fixed order as a compact JSON array: seq, event_id, event, outcome, actor_type,
/// actor_id, actor_label, target_type, target_id, ip, user_agent, request_id, detail (as a JSON
/// string), created_at (ms). `buf` is scratch space reused between rows.
fn chain_hash(h: &Hashed<'_>, buf: &mut Vec<u8>) -> [u8; 32] {
    buf.clear();
    buf.push(b'[');
    buf.extend_from_slice(h.seq.to_string().as_bytes());
    let text = |buf: &mut Vec<u8>, v: Option<&str>| {
        buf.push(b',');
        // Serialising a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, &v);
    };
    for t in h.texts {
        text(buf, Some(t));
    }
    for o in h.optional {
        text(buf, o);
    }
    text(buf, Some(h.detail_text));
    buf.push(b',');
    buf.extend_from_slice(h.created_at.to_string().as_bytes());
    buf.push(b']');
    let mut d = Sha256::new();
    d.update(h.prev_hash.as_bytes());
    d.update(b"\n");
    d.update(&buf[..]);
    d.finalize().into()
}

/// The hash of a record (see [`chain_hash`]), as stored: lowercase hex.
fn row_hash(r: &Record, detail_text: &str) -> String {
    hex::encode(chain_hash(
        &Hashed {
            seq: r.seq,
            texts: [&r.event_id, &r.event, &r.outcome, &r.actor_type],
            optional: [
                r.actor_id.as_deref(),
                r.actor_label.as_deref(),
                r.target_type.as_deref(),
                r.target_id.as_deref(),
                r.ip.as_deref(),
                r.user_agent.as_deref(),
                r.request_id.as_deref(),
            ],
            detail_text,
            created_at: r.created_at.millis(),
            prev_hash: &r.prev_hash,
        },
        &mut Vec::with_capacity(512),
    ))
}

/// The last step of a mutation: appends `entry` inside `tx` and commits both together.
pub(crate) async fn commit_with(
    mut tx: Tx,
    actor: &Actor,
    meta: &RequestMeta,
    entry: Entry,
    now: Timestamp,
    context: &'static str,
) -> Result<()> {
    append(&mut tx, actor, meta, entry, now).await?;
    tx.commit().await.context(context)
}

/// The row for `entry` at `seq`, hashed onto `prev_hash`.
fn new_record(
    seq: i64,
    prev_hash: String,
    actor: &Actor,
    meta: &RequestMeta,
    entry: Entry,
    now: Timestamp,
) -> (Record, String) {
    let (actor_type, actor_id, actor_label) = actor.parts();
    let detail_text = entry.detail.to_string();
    let about = |kind: &str, key: &str| -> Option<String> {
        match &entry.target {
            Some(t) if t.kind == kind => Some(t.id.clone()),
            _ => entry
                .detail
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    };
    let application_id = about("application", "application_id");
    let user_id = about("user", "user_id");
    let mut record = Record {
        seq,
        event_id: crate::secret::new_id(),
        event: entry.event.name().to_owned(),
        outcome: entry.outcome.as_str().to_owned(),
        actor_type: actor_type.to_owned(),
        actor_id: actor_id.map(str::to_owned),
        actor_label: actor_label.map(str::to_owned),
        target_type: entry.target.as_ref().map(|t| t.kind.to_owned()),
        target_id: entry.target.map(|t| t.id),
        ip: meta.ip.clone(),
        user_agent: meta
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(512).collect()),
        request_id: meta.request_id.clone(),
        detail: Value::Null,
        created_at: now,
        prev_hash,
        hash: String::new(),
        category: crate::audit_catalog::info(entry.event).category.to_owned(),
        application_id,
        user_id,
    };
    record.hash = row_hash(&record, &detail_text);
    (record, detail_text)
}

async fn insert_records(tx: &mut Tx, rows: &[(Record, String)]) -> Result<()> {
    let mut sql = String::from(
        "insert into audit_event (seq, event_id, event, outcome, actor_type, actor_id, actor_label, \
         target_type, target_id, ip, user_agent, request_id, detail, created_at, prev_hash, hash, \
         category, application_id, user_id) values ",
    );
    // SQLite gets anonymous `?` parameters: when sqlx binds a numbered one (`$n`) it asks SQLite
    // for its name, which SQLite finds by a linear scan — quadratic in the 19 × 64 parameters of a
    // full batch, and a measurable share of the writer's time under token load.
    let anonymous = tx.backend_name() == "SQLite";
    for i in 0..rows.len() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for k in 1..=19 {
            if k > 1 {
                sql.push_str(", ");
            }
            if anonymous {
                sql.push('?');
            } else {
                sql.push_str(&format!("${}", i * 19 + k));
            }
        }
        sql.push(')');
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (record, detail_text) in rows {
        q = q
            .bind(record.seq)
            .bind(record.event_id.clone())
            .bind(record.event.clone())
            .bind(record.outcome.clone())
            .bind(record.actor_type.clone())
            .bind(record.actor_id.clone())
            .bind(record.actor_label.clone())
            .bind(record.target_type.clone())
            .bind(record.target_id.clone())
            .bind(record.ip.clone())
            .bind(record.user_agent.clone())
            .bind(record.request_id.clone())
            .bind(detail_text.clone())
            .bind(record.created_at.millis())
            .bind(record.prev_hash.clone())
            .bind(record.hash.clone())
            .bind(indexed_category(&record.category))
            .bind(record.application_id.clone())
            .bind(record.user_id.clone());
    }
    q.execute(&mut **tx)
        .await
        .map(|_| ())
        .context("Failed to write audit events")
}

/// The stored (indexed) form of a category: NULL for the `token` category, which is most of the log
/// under load and needs no index (migration 0012).
fn indexed_category(category: &str) -> Option<&str> {
    (category != UNINDEXED_CATEGORY).then_some(category)
}

const UNINDEXED_CATEGORY: &str = "token";

/// Appends `entry` inside `tx`. The caller commits; the event exists exactly when the change does.
pub async fn append(
    tx: &mut Tx,
    actor: &Actor,
    meta: &RequestMeta,
    entry: Entry,
    now: Timestamp,
) -> Result<()> {
    let head = sqlx::query(
        "update audit_head set seq = seq + 1 where audit_head_id = 1 returning seq, hash",
    )
    .fetch_one(&mut **tx)
    .await
    .context("Failed to lock the audit chain head")?;
    let seq: i64 = head.try_get("seq").context("audit_head.seq")?;
    let prev_hash: String = head.try_get("hash").context("audit_head.hash")?;

    let row = new_record(seq, prev_hash, actor, meta, entry, now);
    insert_records(tx, std::slice::from_ref(&row)).await?;
    let record = row.0;

    sqlx::query("update audit_head set hash = $1 where audit_head_id = 1")
        .bind(&record.hash)
        .execute(&mut **tx)
        .await
        .context("Failed to advance the audit chain head")?;
    Ok(())
}

/// Group commit for hot paths (token issuance): callers hand their event to one writer task and wait
/// until the batch that carries it has committed, so an answered request always has its event on disk
/// (nothing acknowledged is lost) while many requests share one transaction.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: tokio::sync::mpsc::Sender<Queued>,
}

struct Queued {
    actor: Actor,
    meta: RequestMeta,
    entry: Entry,
    now: Timestamp,
    claim: Option<Claim>,
    done: tokio::sync::oneshot::Sender<Result<bool>>,
}

/// A change that goes into the same batch transaction as its event, and only with it: the
/// rotation of a refresh token (the hot path of the refresh grant). The event is written only if
/// the claim succeeds.
pub(crate) struct Claim {
    /// The presented token: claimed only while unused and its family is live.
    pub old_hash: String,
    pub family_id: String,
    /// Rotation: its successor and idle expiry. Without rotation: the token's new idle expiry.
    pub new_hash: Option<String>,
    pub expires_at: i64,
}

/// A refresh token may be claimed only while its family is live.
const LIVE_FAMILY: &str = "exists (select 1 from token_family f \
     where f.family_id = refresh_token.family_id and f.revoked_at is null)";

/// Applies the batch's claims; per item, whether its event is written (true for items without a
/// claim). Rotations go 64 at a time: one conditional update that returns the tokens it claimed,
/// then one insert of the winners' successors — two statements instead of two per refresh, on the
/// one writer connection. A token presented twice in one batch is won once.
async fn apply_claims(tx: &mut Tx, batch: &[Queued]) -> Result<Vec<bool>> {
    let mut written: Vec<bool> = batch.iter().map(|q| q.claim.is_none()).collect();
    let rotations: Vec<(usize, &Claim, &String)> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, q)| {
            let c = q.claim.as_ref()?;
            Some((i, c, c.new_hash.as_ref()?))
        })
        .collect();
    for chunk in rotations.chunks(64) {
        let now = batch[chunk[0].0].now.millis();
        let list = (0..chunk.len())
            .map(|k| format!("${}", k + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "update refresh_token set used_at = $1 where token_hash in ({list}) \
             and used_at is null and {LIVE_FAMILY} returning token_hash"
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for (_, c, _) in chunk {
            update = update.bind(&c.old_hash);
        }
        let claimed: std::collections::HashSet<String> = update
            .fetch_all(&mut **tx)
            .await
            .context("Failed to claim refresh tokens")?
            .iter()
            .map(|r| r.try_get("token_hash"))
            .collect::<std::result::Result<_, _>>()
            .context("refresh_token.token_hash")?;
        let mut awarded = std::collections::HashSet::new();
        let winners: Vec<&(usize, &Claim, &String)> = chunk
            .iter()
            .filter(|(_, c, _)| claimed.contains(&c.old_hash) && awarded.insert(&c.old_hash))
            .collect();
        if winners.is_empty() {
            continue;
        }
        let values = (0..winners.len())
            .map(|k| {
                format!(
                    "(${}, ${}, ${}, ${})",
                    4 * k + 1,
                    4 * k + 2,
                    4 * k + 3,
                    4 * k + 4
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into refresh_token (token_hash, family_id, created_at, expires_at) values {values}"
        )));
        for (i, c, new_hash) in &winners {
            insert = insert
                .bind(*new_hash)
                .bind(&c.family_id)
                .bind(batch[*i].now.millis())
                .bind(c.expires_at);
            written[*i] = true;
        }
        insert
            .execute(&mut **tx)
            .await
            .context("Failed to store refresh tokens")?;
    }
    // Idle extensions (rotation off): rare, one at a time.
    for (i, q) in batch.iter().enumerate() {
        if let Some(c) = q.claim.as_ref().filter(|c| c.new_hash.is_none()) {
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "update refresh_token set expires_at = $1 where token_hash = $2 and {LIVE_FAMILY}"
            )))
            .bind(c.expires_at)
            .bind(&c.old_hash)
            .execute(&mut **tx)
            .await
            .context("Failed to extend a refresh token")?;
            written[i] = done.rows_affected() == 1;
        }
    }
    Ok(written)
}

/// The most events one transaction carries.
const BATCH_MAX: usize = 256;

impl Batcher {
    /// Starts the writer task on the current runtime. It ends when the last `Batcher` is dropped.
    pub(crate) fn start(db: crate::db::Db) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Queued>(4096);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH_MAX);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < BATCH_MAX {
                    match rx.try_recv() {
                        Ok(q) => batch.push(q),
                        Err(_) => break,
                    }
                }
                let result = write_batch(&db, &batch).await;
                for (i, q) in batch.drain(..).enumerate() {
                    let r = match &result {
                        Ok(claimed) => Ok(claimed.get(i).copied().unwrap_or(false)),
                        Err(e) => Err(crate::Error::internal(
                            "Failed to write a batch of audit events",
                            std::io::Error::other(e.to_string()),
                        )),
                    };
                    let _ = q.done.send(r);
                }
            }
        });
        Self { tx }
    }

    /// Appends `entry` in the next batch and waits for its commit.
    pub(crate) async fn record(
        &self,
        actor: Actor,
        meta: &RequestMeta,
        entry: Entry,
        now: Timestamp,
    ) -> Result<()> {
        self.record_claim(actor, meta, entry, now, None)
            .await
            .map(|_| ())
    }

    /// Like `record`, with a change that must succeed for the event to be written (see [`Claim`]).
    /// True when it did.
    pub(crate) async fn record_claim(
        &self,
        actor: Actor,
        meta: &RequestMeta,
        entry: Entry,
        now: Timestamp,
        claim: Option<Claim>,
    ) -> Result<bool> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let queued = Queued {
            actor,
            meta: meta.clone(),
            entry,
            now,
            claim,
            done,
        };
        let closed = || crate::Error::internal("The audit writer stopped", std::fmt::Error);
        self.tx.send(queued).await.map_err(|_| closed())?;
        wait.await.map_err(|_| closed())?
    }
}

/// One transaction for the batch: the claims first, then one head update reserving the sequence
/// numbers of every event to write, chained in memory. Per item: whether it was written.
async fn write_batch(db: &crate::db::Db, batch: &[Queued]) -> Result<Vec<bool>> {
    let mut tx = db.begin().await?;
    let written = apply_claims(&mut tx, batch).await?;
    let n = i64::try_from(written.iter().filter(|w| **w).count()).unwrap_or(i64::MAX);
    if n == 0 {
        tx.commit()
            .await
            .context("Failed to commit a batch of audit events")?;
        return Ok(written);
    }
    let head = sqlx::query(
        "update audit_head set seq = seq + $1 where audit_head_id = 1 returning seq, hash",
    )
    .bind(n)
    .fetch_one(&mut *tx)
    .await
    .context("Failed to lock the audit chain head")?;
    let last: i64 = head.try_get("seq").context("audit_head.seq")?;
    let mut prev_hash: String = head.try_get("hash").context("audit_head.hash")?;
    let events = batch
        .iter()
        .zip(&written)
        .filter(|(_, w)| **w)
        .map(|(q, _)| q);
    let mut rows = Vec::with_capacity(batch.len());
    for (i, q) in events.enumerate() {
        let seq = last - n + 1 + i64::try_from(i).unwrap_or(0);
        let (record, detail_text) =
            new_record(seq, prev_hash, &q.actor, &q.meta, q.entry.clone(), q.now);
        prev_hash = record.hash.clone();
        rows.push((record, detail_text));
    }
    // Multi-row inserts: one round trip per 64 events (PostgreSQL pays per statement).
    for chunk in rows.chunks(64) {
        insert_records(&mut tx, chunk).await?;
    }
    sqlx::query("update audit_head set hash = $1 where audit_head_id = 1")
        .bind(&prev_hash)
        .execute(&mut *tx)
        .await
        .context("Failed to advance the audit chain head")?;
    tx.commit()
        .await
        .context("Failed to commit a batch of audit events")?;
    Ok(written)
}

const COLUMNS: &str = "seq, event_id, event, outcome, actor_type, actor_id, actor_label, target_type, \
     target_id, ip, user_agent, request_id, detail, created_at, prev_hash, hash, category, \
     application_id, user_id";

fn decode(row: &sqlx::any::AnyRow) -> Result<(Record, String)> {
    decode_with(row, true)
}

/// A row of [`COLUMNS`] (read by position), and its detail text; the detail is parsed into the
/// record only when `parse_detail`.
fn decode_with(row: &sqlx::any::AnyRow, parse_detail: bool) -> Result<(Record, String)> {
    let get = || -> std::result::Result<(Record, String), sqlx::Error> {
        let detail_text: String = row.try_get(12)?;
        let event: String = row.try_get(2)?;
        let record = Record {
            seq: row.try_get(0)?,
            event_id: row.try_get(1)?,
            outcome: row.try_get(3)?,
            actor_type: row.try_get(4)?,
            actor_id: row.try_get(5)?,
            actor_label: row.try_get(6)?,
            target_type: row.try_get(7)?,
            target_id: row.try_get(8)?,
            ip: row.try_get(9)?,
            user_agent: row.try_get(10)?,
            request_id: row.try_get(11)?,
            detail: if parse_detail {
                serde_json::from_str(&detail_text).unwrap_or(Value::Null)
            } else {
                Value::Null
            },
            created_at: Timestamp::from_millis(row.try_get(13)?),
            prev_hash: row.try_get(14)?,
            hash: row.try_get(15)?,
            // NULL for the unindexed `token` category (migration 0012): from the event name.
            category: match row.try_get::<Option<String>, _>(16)? {
                Some(c) => c,
                None => crate::audit_catalog::by_name(&event)
                    .map_or("other", |i| i.category)
                    .to_owned(),
            },
            event,
            application_id: row.try_get(17)?,
            user_id: row.try_get(18)?,
        };
        Ok((record, detail_text))
    };
    get().context("Failed to decode an audit event")
}

/// What a reviewer narrows the log to. Every field is optional; they combine with AND. Each maps
/// to an indexed column (`text` excepted: a substring of the detail, scanned newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Milliseconds since the epoch, inclusive / exclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// `staff`, `user`, `api_key`, `client`, `system`, `anonymous`.
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    /// A catalog category (`sign_in`, `token`, `impersonation`, …).
    pub category: Option<String>,
    /// An event name (`user.signed_in`).
    pub event: Option<String>,
    pub application_id: Option<String>,
    /// The end user the event is about.
    pub user_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    pub ip: Option<String>,
    /// A substring of the detail (any case for ASCII).
    pub text: Option<String>,
    /// `<type>:<id>`, e.g. `impersonation:<id>`.
    pub target: Option<String>,
    pub request_id: Option<String>,
}

impl Filter {
    /// The SQL conditions (each `and …`) and their values, numbered from `$first`.
    fn conditions(&self, first: usize) -> Result<(String, Vec<Bind>)> {
        let mut sql = String::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut add = |cond: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&cond.replace('?', &format!("${}", first + binds.len() - 1)));
        };
        fn text(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        if let Some(from) = self.from {
            // seq follows time (both grow under the chain's lock), so a time bound is also a seq
            // bound; the index on created_at finds it and the scan stays on seq.
            add(" and created_at >= ?", Bind::Int(from));
        }
        if let Some(to) = self.to {
            add(" and created_at < ?", Bind::Int(to));
        }
        // An event name implies its category, whose index then narrows the scan.
        let implied = text(&self.event)
            .filter(|_| text(&self.category).is_none())
            .and_then(crate::audit_catalog::by_name)
            .map(|i| i.category.to_owned());
        let mut unindexed = false;
        for category in [&implied, &self.category] {
            match text(category) {
                // Not indexed, and stored as NULL since migration 0012 (a fixed literal: no input).
                Some(UNINDEXED_CATEGORY) => unindexed = true,
                Some(c) => add(" and category = ?", Bind::Text(c.to_owned())),
                None => {}
            }
        }
        for (column, value) in [
            ("actor_type", &self.actor_type),
            ("actor_id", &self.actor_id),
            ("event", &self.event),
            ("application_id", &self.application_id),
            ("user_id", &self.user_id),
            ("outcome", &self.outcome),
            ("ip", &self.ip),
            ("request_id", &self.request_id),
        ] {
            if let Some(v) = text(value) {
                add(&format!(" and {column} = ?"), Bind::Text(v.to_owned()));
            }
        }
        if let Some(t) = text(&self.target) {
            let Some((kind, id)) = t.split_once(':') else {
                return Err(crate::Error::invalid(
                    "target",
                    "invalid_target",
                    "target is <type>:<id>, e.g. impersonation:abc.",
                ));
            };
            add(" and target_type = ?", Bind::Text(kind.to_owned()));
            add(" and target_id = ?", Bind::Text(id.to_owned()));
        }
        if let Some(t) = text(&self.text) {
            if t.chars().count() > 200 {
                return Err(crate::Error::invalid(
                    "text",
                    "invalid_text",
                    "Search for at most 200 characters.",
                ));
            }
            let escaped = t
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            add(
                " and lower(detail) like ? escape '\\'",
                Bind::Text(format!("%{escaped}%")),
            );
        }
        if unindexed {
            sql.push_str(" and coalesce(category, 'token') = 'token'");
        }
        Ok((sql, binds))
    }
}

/// Checks a filter's values (target form, text length) without running it.
pub(crate) fn check_filter(filter: &Filter) -> Result<()> {
    filter.conditions(1).map(|_| ())
}

/// A value bound into a filter query.
#[derive(Clone, Debug)]
enum Bind {
    Int(i64),
    Text(String),
}

/// Binds a filter's values after the query's own.
fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        query = match b {
            Bind::Int(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
        };
    }
    query
}

/// Authorizes reading the log and confines an application key to its own application: `None` when
/// such a key asks for another application's events (there are none for it).
fn scoped(principal: &crate::Principal, filter: &Filter) -> Result<Option<Filter>> {
    let mut filter = filter.clone();
    match principal.application_scope() {
        Some(app) => {
            principal.authorize_in(crate::Action::ViewAudit, app)?;
            if filter.application_id.as_deref().is_some_and(|a| a != app) {
                return Ok(None);
            }
            filter.application_id = Some(app.to_owned());
        }
        None => principal.authorize(crate::Action::ViewAudit)?,
    }
    Ok(Some(filter))
}

/// Newest first, `limit` at a time; `before` is the `seq` of the last row of the previous page
/// (keyset: pages stay stable while new events arrive on top).
pub async fn list(
    identity: &crate::Identity,
    principal: &crate::Principal,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Record>> {
    let limit = limit.clamp(1, 500);
    let Some(filter) = scoped(principal, filter)? else {
        return Ok(Vec::new());
    };
    let (conditions, binds) = filter.conditions(3)?;
    let sql = format!(
        "select {COLUMNS} from audit_event where seq < $1{conditions} order by seq desc limit $2"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit);
    query = bind_all(query, binds);
    let rows = query
        .fetch_all(identity.db().pool())
        .await
        .context("Failed to read audit events")?;
    let redact = principal.application_scope().is_some();
    rows.iter()
        .map(|r| {
            decode(r).map(|(mut rec, _)| {
                if redact {
                    redact_record(&mut rec);
                }
                rec
            })
        })
        .collect()
}

/// The newest events about one user (as target), for the user's page. Readers of the user pool
/// see them; staff identities stay in, since only staff read this.
pub async fn for_user(
    identity: &crate::Identity,
    principal: &crate::Principal,
    user_id: &str,
    limit: i64,
) -> Result<Vec<Record>> {
    principal.authorize(crate::Action::ViewUsers)?;
    let sql = format!(
        "select {COLUMNS} from audit_event where target_type = 'user' and target_id = $1 \
         order by seq desc limit $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .bind(limit.clamp(1, 200))
        .fetch_all(identity.db().pool())
        .await
        .context("Failed to read a user's audit events")?;
    rows.iter().map(|r| decode(r).map(|(rec, _)| rec)).collect()
}

/// A consistent export of the events matching a filter, oldest first, up to the chain head as it
/// was when the export began (`through`): the same filter and `through` always give the same rows,
/// so a signature over them can be recomputed and checked. Read in pages (constant memory).
pub struct Export {
    filter: Filter,
    after: i64,
    pub through: i64,
    redact: bool,
    /// The read of the page after the one last returned, started before that page is written out,
    /// so the database reads the next page while the caller formats this one.
    next: Option<tokio::task::JoinHandle<Result<Page>>>,
}

/// Rows per export page.
const EXPORT_PAGE: i64 = 2000;

/// Records with their detail as stored (JSON text).
pub type Page = Vec<(Record, String)>;

pub async fn export(
    identity: &crate::Identity,
    principal: &crate::Principal,
    filter: &Filter,
    through: Option<i64>,
) -> Result<Export> {
    let scoped = scoped(principal, filter)?;
    let filter = scoped.clone().unwrap_or_default();
    // Reject a bad filter before the first byte of an export is sent.
    filter.conditions(1)?;
    let head = head_seq(identity).await?;
    Ok(Export {
        filter,
        after: 0,
        // Another application's events, for an application key: none.
        through: if scoped.is_none() {
            0
        } else {
            through.map_or(head, |t| t.clamp(0, head))
        },
        redact: principal.application_scope().is_some(),
        next: None,
    })
}

/// The sequence number of the newest event.
pub async fn head_seq(identity: &crate::Identity) -> Result<i64> {
    sqlx::query_scalar("select seq from audit_head where audit_head_id = 1")
        .fetch_one(identity.db().pool())
        .await
        .context("Failed to read the audit chain head")
}

/// Events matching `filter` with `after < seq <= through`, oldest first, at most `limit`, each with
/// its detail as stored (JSON text); `record.detail` is parsed only when `parse_detail`.
pub(crate) async fn read_after(
    identity: &crate::Identity,
    filter: &Filter,
    (after, through): (i64, i64),
    limit: i64,
    parse_detail: bool,
) -> Result<Vec<(Record, String)>> {
    let (conditions, binds) = filter.conditions(4)?;
    let sql = format!(
        "select {COLUMNS} from audit_event where seq > $1 and seq <= $2{conditions} \
         order by seq limit $3"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(through)
        .bind(limit);
    let rows = bind_all(query, binds)
        .fetch_all(identity.db().pool())
        .await
        .context("Failed to read audit events")?;
    rows.iter().map(|r| decode_with(r, parse_detail)).collect()
}

impl Export {
    /// The next page (empty at the end): each record with its detail as stored (JSON text, copied
    /// through to the export as is; `record.detail` is left `Null`, parsing it is wasted work here).
    /// A full page starts the read of the following one before it is returned.
    pub async fn next_page(&mut self, identity: &crate::Identity) -> Result<Page> {
        let read = match self.next.take() {
            Some(read) => read,
            None => self.start_read(identity),
        };
        let mut page = read.await.map_err(|e| {
            crate::Error::internal("An export read stopped", std::io::Error::other(e))
        })??;
        if let Some((last, _)) = page.last() {
            self.after = last.seq;
        }
        if page.len() == usize::try_from(EXPORT_PAGE).unwrap_or(usize::MAX) {
            self.next = Some(self.start_read(identity));
        }
        if self.redact {
            page.iter_mut().for_each(|(rec, _)| redact_record(rec));
        }
        Ok(page)
    }

    /// Starts reading the page after `self.after`.
    fn start_read(&self, identity: &crate::Identity) -> tokio::task::JoinHandle<Result<Page>> {
        let (identity, filter) = (identity.clone(), self.filter.clone());
        let range = (self.after, self.through);
        tokio::spawn(async move { read_after(&identity, &filter, range, EXPORT_PAGE, false).await })
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Some(read) = self.next.take() {
            read.abort();
        }
    }
}

/// What an application's backend does not learn: who on the staff did it, from where.
fn redact_record(rec: &mut Record) {
    rec.actor_id = None;
    rec.actor_label = None;
    rec.ip = None;
    rec.user_agent = None;
    rec.request_id = None;
}

/// Appends `count` synthetic, properly chained events spread over the last 30 days (sign-ins, token
/// issuance and refreshes, failed sign-ins, application changes across 20 applications and 5 000
/// users), 5 000 per transaction, calling `progress(done)` after each; on PostgreSQL the table is
/// analyzed at the end. For benchmarks and demos.
pub async fn seed(
    identity: &crate::Identity,
    count: u64,
    now: Timestamp,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    const SPAN_MS: i64 = 30 * 24 * 60 * 60 * 1000;
    let start = now.millis() - SPAN_MS;
    let step = SPAN_MS / i64::try_from(count.max(1)).unwrap_or(1);
    let mut done = 0_u64;
    while done < count {
        let n = (count - done).min(5_000);
        let mut tx = identity.db().begin().await?;
        let head = sqlx::query(
            "update audit_head set seq = seq + $1 where audit_head_id = 1 returning seq, hash",
        )
        .bind(i64::try_from(n).unwrap_or(0))
        .fetch_one(&mut *tx)
        .await
        .context("Failed to lock the audit chain head")?;
        let last: i64 = head.try_get("seq").context("audit_head.seq")?;
        let mut prev: String = head.try_get("hash").context("audit_head.hash")?;
        let first = last - i64::try_from(n).unwrap_or(0) + 1;
        let mut rows = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for k in 0..n {
            let i = done + k;
            let app = format!("seed-app-{:02}", i % 20);
            let user = format!("seed-user-{:04}", (i / 3) % 5_000);
            let actor = Actor::User {
                id: user.clone(),
                email: format!("{user}@example.com"),
            };
            let meta = RequestMeta {
                ip: Some(format!("10.0.{}.{}", (i / 256) % 256, i % 256)),
                user_agent: Some("seed".into()),
                request_id: Some(format!("seed-{i}")),
            };
            let (actor, entry) = match i % 10 {
                0..=3 => (
                    actor,
                    Entry::success(
                        Event::UserSignedIn,
                        Some(Target::user(&user)),
                        serde_json::json!({ "application_id": app, "session_id": format!("s-{i}") }),
                    ),
                ),
                4..=6 => (
                    actor,
                    Entry::success(
                        Event::TokenIssued,
                        Some(Target::user(&user)),
                        serde_json::json!({ "grant_type": "authorization_code", "application_id": app,
                        "client_id": format!("pc_{app}"), "family_id": format!("f-{i}"),
                        "jti": format!("f-{i}.x"), "scope": "openid", "refresh_token": true }),
                    ),
                ),
                7 => (
                    actor,
                    Entry::success(
                        Event::TokenRefreshed,
                        Some(Target::user(&user)),
                        serde_json::json!({ "application_id": app, "client_id": format!("pc_{app}"),
                        "family_id": format!("f-{}", i - 3), "jti": format!("f-{i}.y"),
                        "scope": "openid", "rotated": true }),
                    ),
                ),
                8 => (
                    Actor::Anonymous,
                    Entry::failure(
                        Event::UserSignInFailed,
                        None,
                        serde_json::json!({ "email": format!("{user}@example.com"), "reason": "invalid_credentials",
                        "application_id": app }),
                    ),
                ),
                _ => (
                    Actor::Staff {
                        id: "seed-staff".into(),
                        email: "ops@example.com".into(),
                    },
                    Entry::success(
                        Event::ApplicationUpdated,
                        Some(Target::application(&app)),
                        serde_json::json!({ "before": { "description": format!("v{}", i - 1) },
                        "after": { "description": format!("v{i}") } }),
                    ),
                ),
            };
            let at = Timestamp::from_millis(start + step * i64::try_from(i).unwrap_or(0));
            let seq = first + i64::try_from(k).unwrap_or(0);
            let row = new_record(seq, prev, &actor, &meta, entry, at);
            prev = row.0.hash.clone();
            rows.push(row);
        }
        for chunk in rows.chunks(64) {
            insert_records(&mut tx, chunk).await?;
        }
        sqlx::query("update audit_head set hash = $1 where audit_head_id = 1")
            .bind(&prev)
            .execute(&mut *tx)
            .await
            .context("Failed to advance the audit chain head")?;
        tx.commit()
            .await
            .context("Failed to commit seeded audit events")?;
        done += n;
        progress(done);
    }
    // PostgreSQL plans from table statistics, which autovacuum refreshes only some time after a
    // bulk load; until then it estimates millions of fresh rows as none and picks bitmap scans
    // that take seconds (measured at 10 M: 2.2 s for a filtered page, 0.4 ms after ANALYZE).
    if identity.db().backend() == crate::Backend::Postgres {
        sqlx::query("analyze audit_event")
            .execute(identity.db().pool())
            .await
            .context("Failed to analyze audit_event")?;
    }
    Ok(())
}

/// Event counts over time by category: `buckets` equal slices of `[from, to)`.
#[derive(Clone, Debug, Serialize)]
pub struct Histogram {
    pub from: Timestamp,
    pub to: Timestamp,
    pub bucket_ms: i64,
    /// (category, count per bucket), categories in catalog order, empty ones left out.
    pub series: Vec<(String, Vec<i64>)>,
}

/// The histogram of the events matching `filter` (its time range, or the last 7 days).
pub async fn histogram(
    identity: &crate::Identity,
    principal: &crate::Principal,
    filter: &Filter,
    buckets: i64,
    now: Timestamp,
) -> Result<Histogram> {
    let buckets = buckets.clamp(1, 200);
    let Some(mut filter) = scoped(principal, filter)? else {
        return Ok(Histogram {
            from: now,
            to: now,
            bucket_ms: 1,
            series: Vec::new(),
        });
    };
    let to = filter.to.unwrap_or(now.millis() + 1);
    let from = filter
        .from
        .unwrap_or(to - 7 * 24 * 60 * 60 * 1000)
        .min(to - 1);
    let bucket_ms = ((to - from) + buckets - 1) / buckets;
    filter.from = Some(from);
    filter.to = Some(to);
    let (conditions, binds) = filter.conditions(3)?;
    let sql = format!(
        "select (created_at - $1) / $2 as bucket, coalesce(category, 'token') as category, \
         count(*) as n from audit_event \
         where 1 = 1{conditions} group by 1, 2"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(bucket_ms);
    query = bind_all(query, binds);
    let rows = query
        .fetch_all(identity.db().pool())
        .await
        .context("Failed to count audit events")?;
    let mut series: Vec<(String, Vec<i64>)> = crate::audit_catalog::CATEGORIES
        .iter()
        .map(|c| {
            (
                (*c).to_owned(),
                vec![0; usize::try_from(buckets).unwrap_or(1)],
            )
        })
        .collect();
    for r in &rows {
        let bucket: i64 = r.try_get("bucket").context("bucket")?;
        let category: Option<String> = r.try_get("category").context("category")?;
        let n: i64 = r.try_get("n").context("count")?;
        if let (Some(s), Ok(i)) = (
            series
                .iter_mut()
                .find(|(c, _)| Some(c) == category.as_ref()),
            usize::try_from(bucket),
        ) && let Some(slot) = s.1.get_mut(i)
        {
            *slot += n;
        }
    }
    series.retain(|(_, v)| v.iter().any(|n| *n > 0));
    Ok(Histogram {
        from: Timestamp::from_millis(from),
        to: Timestamp::from_millis(to),
        bucket_ms,
        series,
    })
}

/// Hosted sign-ins per application per day over the last `days` days (UTC days, oldest first):
/// (application id, count per day). An aggregate every staff member may see on the home page.
pub async fn sign_ins_per_day(
    identity: &crate::Identity,
    principal: &crate::Principal,
    days: i64,
    now: Timestamp,
) -> Result<Vec<(String, Vec<i64>)>> {
    principal.authorize(crate::Action::ViewDashboard)?;
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let days = days.clamp(1, 90);
    let from = (now.millis() / DAY - (days - 1)) * DAY;
    let rows = sqlx::query(
        "select (created_at - $1) / $2 as day, application_id, count(*) as n from audit_event \
         where event = 'user.signed_in' and created_at >= $1 group by 1, 2",
    )
    .bind(from)
    .bind(DAY)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to count sign-ins")?;
    let mut out: Vec<(String, Vec<i64>)> = Vec::new();
    for r in &rows {
        let day: i64 = r.try_get("day").context("day")?;
        let app: Option<String> = r.try_get("application_id").context("application_id")?;
        let n: i64 = r.try_get("n").context("count")?;
        let app = app.unwrap_or_default();
        let i = match out.iter().position(|(a, _)| *a == app) {
            Some(i) => i,
            None => {
                out.push((app, vec![0; usize::try_from(days).unwrap_or(1)]));
                out.len() - 1
            }
        };
        if let Some(slot) = usize::try_from(day).ok().and_then(|d| out[i].1.get_mut(d)) {
            *slot += n;
        }
    }
    out.sort_by_key(|(_, v)| std::cmp::Reverse(v.iter().sum::<i64>()));
    Ok(out)
}

/// One event, for its detail page (readers of the audit log).
pub async fn get(
    identity: &crate::Identity,
    principal: &crate::Principal,
    seq: i64,
) -> Result<Record> {
    principal.authorize(crate::Action::ViewAudit)?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from audit_event where seq = $1"
    )))
    .bind(seq)
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an audit event")?
    .ok_or(crate::Error::NotFound)?;
    decode(&row).map(|(r, _)| r)
}

pub struct Verification {
    pub checked: i64,
    /// The first row whose hash or link does not hold, if any.
    pub first_broken: Option<i64>,
    /// The retention checkpoint the check started from, when older events were purged.
    pub checkpoint: Option<i64>,
    /// Why that checkpoint cannot be trusted (bad signature, altered values), if so.
    pub checkpoint_problem: Option<String>,
}

/// Recomputes every hash and link from the first row to the head.
pub async fn verify(identity: &crate::Identity) -> Result<Verification> {
    verify_range(identity, None, None).await
}

/// Rows read per query while verifying (one statement streams them; short enough that a reader
/// never pins old pages for long).
const VERIFY_CHUNK: i64 = 100_000;

/// Recomputes the hashes and links of rows `from..=to` (by `seq`; the whole chain when both are
/// `None`). A range starting past the first row is linked to the stored hash of the row before it;
/// a range reaching back past a retention purge starts at the newest checkpoint, whose signature is
/// checked and whose recorded hash the first remaining row must link to; a range ending at the head
/// also checks the head. Reports the first row that does not hold: an altered row fails its hash, a
/// deleted one breaks the link of the next, an inserted one its own.
pub async fn verify_range(
    identity: &crate::Identity,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Verification> {
    verify_range_with(identity, from, to, &|_| {}).await
}

/// [`verify_range`], calling `progress(checked)` as it goes (the CLI's progress bar).
pub async fn verify_range_with(
    identity: &crate::Identity,
    from: Option<i64>,
    to: Option<i64>,
    progress: &(dyn Fn(i64) + Sync),
) -> Result<Verification> {
    let mut start = from.unwrap_or(1).max(1);
    let end = to.unwrap_or(i64::MAX);
    let mut report = Verification {
        checked: 0,
        first_broken: None,
        checkpoint: None,
        checkpoint_problem: None,
    };
    let mut expected_prev: Option<String> = None;
    if let Some(cp) = crate::audit_retention::latest(identity).await?
        && start <= cp.through_seq + 1
    {
        start = cp.through_seq + 1;
        report.checkpoint = Some(cp.through_seq);
        if let Err(problem) = crate::audit_retention::check(identity, &cp).await? {
            report.checkpoint_problem = Some(problem);
            report.first_broken = Some(start);
            return Ok(report);
        }
        expected_prev = Some(cp.through_hash);
    } else if start > 1 {
        let before: Option<String> =
            sqlx::query_scalar("select hash from audit_event where seq = $1")
                .bind(start - 1)
                .fetch_optional(identity.db().pool())
                .await
                .context("Failed to read an audit event")?;
        match before {
            Some(h) => expected_prev = Some(h),
            None => {
                report.first_broken = Some(start - 1);
                return Ok(report);
            }
        }
    }
    // The head as verification starts: a range reaching past it ends there; later appends are
    // outside this check.
    let head_at_start = head_seq(identity).await?;
    let end = end.min(head_at_start);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    // Two halves at once on big ranges (reading and hashing are spread over both cores); the seam
    // is checked after: the second half's first link must be the first half's last hash.
    let mid = if end - start > 4 * VERIFY_CHUNK {
        start + (end - start) / 2
    } else {
        end
    };
    let first = tokio::spawn(verify_span(
        identity.clone(),
        start - 1,
        mid,
        expected_prev,
        counter.clone(),
    ));
    let second = (mid < end).then(|| {
        tokio::spawn(verify_span(
            identity.clone(),
            mid,
            end,
            None,
            counter.clone(),
        ))
    });
    // Progress every 250 ms until both halves are done (and not a tick later).
    let both = async move {
        let a = first.await;
        let b = match second {
            Some(h) => Some(h.await),
            None => None,
        };
        (a, b)
    };
    tokio::pin!(both);
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(250));
    let (first, second) = loop {
        tokio::select! {
            done = &mut both => break done,
            _ = ticker.tick() => progress(counter.load(std::sync::atomic::Ordering::Relaxed)),
        }
    };
    let joined = |r: std::result::Result<Result<Span>, tokio::task::JoinError>| {
        r.map_err(|e| crate::Error::internal("A verification task failed", e))?
    };
    let a = joined(first)?;
    report.checked = a.checked;
    if a.broken.is_some() {
        report.first_broken = a.broken;
        return Ok(report);
    }
    let (mut after, mut expected_prev) = (a.last_seq, a.last_hash);
    if let Some(second) = second {
        let b = joined(second)?;
        report.checked += b.checked;
        if after < mid {
            // The first half stopped short of the seam: a row is missing there.
            report.first_broken = Some(after + 1);
            return Ok(report);
        }
        if b.first_prev.is_some() && b.first_prev != expected_prev {
            report.first_broken = Some(mid + 1);
            return Ok(report);
        }
        if b.broken.is_some() {
            report.first_broken = b.broken;
            return Ok(report);
        }
        if b.checked > 0 {
            (after, expected_prev) = (b.last_seq, b.last_hash);
        }
    }
    progress(report.checked);
    let head = sqlx::query("select seq, hash from audit_head where audit_head_id = 1")
        .fetch_one(identity.db().pool())
        .await
        .context("Failed to read the audit chain head")?;
    let head_seq: i64 = head.try_get("seq").context("audit_head.seq")?;
    let head_hash: String = head.try_get("hash").context("audit_head.hash")?;
    if head_seq > end {
        // A range that stops before the head: every row in it held.
        report.first_broken = (after != end.min(head_seq)).then_some(after + 1);
        return Ok(report);
    }
    let head_ok = head_seq == after && expected_prev.as_ref().is_none_or(|h| *h == head_hash);
    report.first_broken = (!head_ok).then_some(after + 1);
    Ok(report)
}

/// What one stretch of the chain held.
struct Span {
    checked: i64,
    /// The last row read (or where the span started) and its hash.
    last_seq: i64,
    last_hash: Option<String>,
    /// The `prev_hash` of the span's first row (the seam check).
    first_prev: Option<String>,
    broken: Option<i64>,
}

/// The walk along one span of the chain: where it stands and what the next row must link to.
struct Walk {
    identity: crate::Identity,
    after: i64,
    expected_prev: Option<String>,
    span: Span,
    /// SQLite assembled the hash inputs: a mismatch gets an exact second opinion.
    assembled: bool,
}

impl Walk {
    /// Takes row `seq` with its stored `hash`, the `prev_hash` it links to and the digest of its
    /// hash input. False (with `span.broken` set) when the row does not hold.
    async fn step(
        &mut self,
        seq: i64,
        hash: &str,
        prev_hash: &str,
        digest: [u8; 32],
    ) -> Result<bool> {
        if self.span.first_prev.is_none() && self.expected_prev.is_none() {
            self.span.first_prev = Some(prev_hash.to_owned());
        }
        let linked =
            seq == self.after + 1 && self.expected_prev.as_deref().is_none_or(|p| p == prev_hash);
        let mut stored = [0u8; 32];
        let mut intact =
            linked && hex::decode_to_slice(hash, &mut stored).is_ok() && digest == stored;
        if linked && !intact && self.assembled {
            intact = exact_hash(&self.identity, seq).await?.as_deref() == Some(hash);
        }
        if !intact {
            self.span.broken = Some(seq);
            return Ok(false);
        }
        self.span.checked += 1;
        self.after = seq;
        match &mut self.expected_prev {
            Some(p) => {
                p.clear();
                p.push_str(hash);
            }
            None => self.expected_prev = Some(hash.to_owned()),
        }
        Ok(true)
    }

    fn done(mut self) -> Span {
        self.span.last_seq = self.after;
        self.span.last_hash = self.expected_prev;
        self.span
    }
}

/// Rows per read on SQLite, where the database hands them over as one text.
const VERIFY_GROUP: i64 = 2_000;

/// Checks rows `after+1..=end`, linked to `expected_prev` when given, counting into `counter`.
///
/// On SQLite the database assembles each row's hash input (`prev_hash ‖ "\n" ‖ json_array(…)`, the
/// canonical form) and hands over [`VERIFY_GROUP`] rows at a time as one text — `seq`, `hash` and
/// the input joined by U+001F, rows joined by U+001E in chain order. JSON text never holds a raw
/// control character, so the separators cannot occur inside an input; a row that does not parse,
/// or whose input differs from ours (a JSON escaping difference), is recomputed the exact way
/// before it is called broken. Handing rows over one by one cost more than hashing them: each
/// crossed from SQLite's thread to ours with a wake-up of its own.
async fn verify_span(
    identity: crate::Identity,
    after: i64,
    end: i64,
    expected_prev: Option<String>,
    counter: std::sync::Arc<std::sync::atomic::AtomicI64>,
) -> Result<Span> {
    let assembled = identity.db().backend() == crate::Backend::Sqlite;
    let mut walk = Walk {
        identity,
        after,
        expected_prev,
        // `last_seq` and `last_hash` are filled in by `Walk::done`.
        span: Span {
            checked: 0,
            last_seq: after,
            last_hash: None,
            first_prev: None,
            broken: None,
        },
        assembled,
    };
    if assembled {
        verify_groups(&mut walk, end, &counter).await?;
    } else {
        verify_rows(&mut walk, end, &counter).await?;
    }
    Ok(walk.done())
}

async fn verify_groups(
    walk: &mut Walk,
    end: i64,
    counter: &std::sync::atomic::AtomicI64,
) -> Result<()> {
    const SQL: &str = "select group_concat(seq || char(31) || hash || char(31) || prev_hash \
         || char(10) || json_array(seq, event_id, event, outcome, actor_type, actor_id, \
         actor_label, target_type, target_id, ip, user_agent, request_id, detail, created_at), \
         char(30) order by seq) from audit_event where seq > $1 and seq <= $2";
    loop {
        let group_end = end.min(walk.after.saturating_add(VERIFY_GROUP));
        let group: Option<String> = sqlx::query_scalar(SQL)
            .bind(walk.after)
            .bind(group_end)
            .fetch_one(walk.identity.db().pool())
            .await
            .context("Failed to read audit events")?;
        let before = walk.span.checked;
        for row in group.as_deref().unwrap_or_default().split('\u{1e}') {
            let mut parts = row.splitn(3, '\u{1f}');
            let (Some(seq), Some(hash), Some(input)) = (
                parts.next().and_then(|s| s.parse::<i64>().ok()),
                parts.next(),
                parts.next(),
            ) else {
                if group.is_some() {
                    // Not three parts: a stored value holds a separator, so it was altered.
                    walk.span.broken = Some(walk.after + 1);
                    return Ok(());
                }
                break;
            };
            let prev = input.get(..64).unwrap_or_default();
            let digest: [u8; 32] = Sha256::digest(input.as_bytes()).into();
            if !walk.step(seq, hash, prev, digest).await? {
                return Ok(());
            }
        }
        counter.fetch_add(
            walk.span.checked - before,
            std::sync::atomic::Ordering::Relaxed,
        );
        // A group that stopped short had no more rows: the end of the chain, or a gap the caller
        // names.
        if walk.after < group_end || group_end >= end {
            return Ok(());
        }
    }
}

async fn verify_rows(
    walk: &mut Walk,
    end: i64,
    counter: &std::sync::atomic::AtomicI64,
) -> Result<()> {
    use futures_util::TryStreamExt;
    const SQL: &str = "select seq, hash, event_id, event, outcome, actor_type, actor_id, \
         actor_label, target_type, target_id, ip, user_agent, request_id, detail, created_at, \
         prev_hash from audit_event where seq > $1 and seq <= $2 order by seq";
    let mut buf = Vec::with_capacity(1024);
    loop {
        let chunk_end = end.min(walk.after.saturating_add(VERIFY_CHUNK));
        let identity = walk.identity.clone();
        let mut rows = sqlx::query(SQL)
            .bind(walk.after)
            .bind(chunk_end)
            .fetch(identity.db().pool());
        let mut in_chunk = 0;
        while let Some(row) = rows
            .try_next()
            .await
            .context("Failed to read audit events")?
        {
            let text = |i: usize| row.try_get::<&str, _>(i);
            let opt = |i: usize| row.try_get::<Option<&str>, _>(i);
            let hashed = (|| -> std::result::Result<Hashed<'_>, sqlx::Error> {
                Ok(Hashed {
                    seq: row.try_get(0)?,
                    texts: [text(2)?, text(3)?, text(4)?, text(5)?],
                    optional: [
                        opt(6)?,
                        opt(7)?,
                        opt(8)?,
                        opt(9)?,
                        opt(10)?,
                        opt(11)?,
                        opt(12)?,
                    ],
                    detail_text: text(13)?,
                    created_at: row.try_get(14)?,
                    prev_hash: text(15)?,
                })
            })()
            .context("Failed to decode an audit event")?;
            let hash = text(1).context("audit_event.hash")?;
            let digest = chain_hash(&hashed, &mut buf);
            if !walk
                .step(hashed.seq, hash, hashed.prev_hash, digest)
                .await?
            {
                return Ok(());
            }
            in_chunk += 1;
            if in_chunk % 10_000 == 0 {
                counter.fetch_add(10_000, std::sync::atomic::Ordering::Relaxed);
            }
        }
        counter.fetch_add(in_chunk % 10_000, std::sync::atomic::Ordering::Relaxed);
        if walk.after < chunk_end || chunk_end >= end {
            return Ok(());
        }
    }
}

/// Recomputes one row's hash the exact way (decoding every column), as a second opinion.
async fn exact_hash(identity: &crate::Identity, seq: i64) -> Result<Option<String>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from audit_event where seq = $1"
    )))
    .bind(seq)
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an audit event")?;
    row.map(|r| decode_with(&r, false).map(|(rec, detail)| row_hash(&rec, &detail)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_unique_and_dotted() {
        let names: std::collections::HashSet<_> = Event::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), Event::ALL.len());
        assert!(names.iter().all(|n| n.contains('.')));
    }

    #[test]
    fn hash_covers_every_field() {
        let base = Record {
            seq: 1,
            event_id: "e".into(),
            event: "staff.created".into(),
            outcome: "success".into(),
            actor_type: "system".into(),
            actor_id: None,
            actor_label: None,
            target_type: Some("staff".into()),
            target_id: Some("s".into()),
            ip: None,
            user_agent: None,
            request_id: None,
            detail: Value::Null,
            created_at: Timestamp::from_millis(1),
            prev_hash: "0".into(),
            hash: String::new(),
            category: "staff".into(),
            application_id: None,
            user_id: None,
        };
        let h = row_hash(&base, "{}");
        assert_ne!(h, row_hash(&base, "{\"a\":1}"));
        let mut other = base.clone();
        other.target_id = Some("t".into());
        assert_ne!(h, row_hash(&other, "{}"));
        other = base.clone();
        other.prev_hash = "1".into();
        assert_ne!(h, row_hash(&other, "{}"));
    }
}
