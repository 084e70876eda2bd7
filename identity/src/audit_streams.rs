//! Webhook streams of audit events to a SIEM. A stream has an endpoint, an event filter (the same
//! filter reviewers use) and a signing secret. The dispatcher (server/src/audit_streams.rs, on
//! every replica) claims a due stream with a lease, reads the next batch of matching events after
//! the stream's cursor, POSTs it signed with HMAC-SHA256, and reports back: the cursor moves only
//! when the endpoint answered 2xx, otherwise the same events are retried with exponential backoff
//! (at least once, in order; receivers de-duplicate on `event_id`). Writing an event never waits on
//! a stream: the dispatcher reads the log after the fact. Every attempt is kept in the delivery log,
//! and a past delivery can be sent again on request.

use crate::audit::{self, Entry, Event, Filter, Record, Target};
use crate::authz::{Action, Principal};
use crate::error::{Context, Error, Result};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// Events per delivery.
pub const BATCH: i64 = 500;
/// How long a claimed stream or redelivery stays with one dispatcher (longer than a request).
const LEASE_MS: i64 = 60_000;
/// The longest wait between retries.
const MAX_BACKOFF_SECS: i64 = 300;
/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "Portcullis-Signature";

#[derive(Clone, Debug, Serialize)]
pub struct Stream {
    pub id: String,
    pub name: String,
    pub url: String,
    pub filter: Filter,
    /// The last characters of the secret, to tell secrets apart.
    pub secret_hint: String,
    /// `active` or `paused`.
    pub status: String,
    /// The last event considered delivered.
    pub cursor_seq: i64,
    /// Failed attempts of the batch being retried (0 when healthy).
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub last_success_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: String,
    pub stream_id: String,
    /// `stream` (the dispatcher's own) or `redelivery` (asked for by staff).
    pub kind: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub status: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: i64,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub requested_by: Option<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// What staff enter to create or change a stream.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub name: String,
    pub url: String,
    pub filter: Filter,
}

/// A new stream with its secret, shown once.
pub struct Created {
    pub stream: Stream,
    pub secret: String,
}

const STREAM_COLUMNS: &str = "audit_stream_id, name, url, filter, secret_hint, status, cursor_seq, \
     attempts, next_attempt_at, last_error, last_success_at, created_at, updated_at";

fn decode_stream(r: &sqlx::any::AnyRow) -> Result<Stream> {
    let ts = |c: &str| -> Result<Timestamp> {
        Ok(Timestamp::from_millis(
            r.try_get(c).context("audit_stream time")?,
        ))
    };
    let opt_ts = |c: &str| -> Result<Option<Timestamp>> {
        Ok(r.try_get::<Option<i64>, _>(c)
            .context("audit_stream time")?
            .map(Timestamp::from_millis))
    };
    Ok(Stream {
        id: r.try_get("audit_stream_id").context("audit_stream.id")?,
        name: r.try_get("name").context("audit_stream.name")?,
        url: r.try_get("url").context("audit_stream.url")?,
        filter: serde_json::from_str(
            &r.try_get::<String, _>("filter")
                .context("audit_stream.filter")?,
        )
        .unwrap_or_default(),
        secret_hint: r
            .try_get("secret_hint")
            .context("audit_stream.secret_hint")?,
        status: r.try_get("status").context("audit_stream.status")?,
        cursor_seq: r.try_get("cursor_seq").context("audit_stream.cursor_seq")?,
        attempts: r
            .try_get::<i32, _>("attempts")
            .map(i64::from)
            .or_else(|_| r.try_get::<i64, _>("attempts"))
            .context("audit_stream.attempts")?,
        next_attempt_at: ts("next_attempt_at")?,
        last_error: r.try_get("last_error").context("audit_stream.last_error")?,
        last_success_at: opt_ts("last_success_at")?,
        created_at: ts("created_at")?,
        updated_at: ts("updated_at")?,
    })
}

const DELIVERY_COLUMNS: &str = "audit_stream_delivery_id, audit_stream_id, kind, status, first_seq, \
     last_seq, events, attempt, status_code, error, duration_ms, requested_by, created_at, \
     completed_at";

fn decode_delivery(r: &sqlx::any::AnyRow) -> Result<Delivery> {
    // Integer columns read back as i32 on PostgreSQL and i64 on SQLite.
    let int = |c: &str| -> Result<Option<i64>> {
        r.try_get::<Option<i64>, _>(c)
            .or_else(|_| r.try_get::<Option<i32>, _>(c).map(|v| v.map(i64::from)))
            .context("audit_stream_delivery integer")
    };
    Ok(Delivery {
        id: r
            .try_get("audit_stream_delivery_id")
            .context("delivery.id")?,
        stream_id: r.try_get("audit_stream_id").context("delivery.stream")?,
        kind: r.try_get("kind").context("delivery.kind")?,
        status: r.try_get("status").context("delivery.status")?,
        first_seq: r.try_get("first_seq").context("delivery.first_seq")?,
        last_seq: r.try_get("last_seq").context("delivery.last_seq")?,
        events: int("events")?.unwrap_or_default(),
        attempt: int("attempt")?.unwrap_or_default(),
        status_code: int("status_code")?,
        error: r.try_get("error").context("delivery.error")?,
        duration_ms: int("duration_ms")?,
        requested_by: r.try_get("requested_by").context("delivery.requested_by")?,
        created_at: Timestamp::from_millis(r.try_get("created_at").context("delivery.created")?),
        completed_at: r
            .try_get::<Option<i64>, _>("completed_at")
            .context("delivery.completed_at")?
            .map(Timestamp::from_millis),
    })
}

/// Checks the name, endpoint and filter; returns the cleaned input.
fn check(input: &Input) -> Result<Input> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid(
            "name",
            "invalid_name",
            "Enter a name of 1 to 100 characters.",
        ));
    }
    let url = input.url.trim();
    let parsed = url::Url::parse(url).map_err(|_| {
        Error::invalid(
            "url",
            "invalid_url",
            "Enter an absolute URL, such as https://siem.example.com/portcullis.",
        )
    })?;
    let loopback = matches!(parsed.host(), Some(url::Host::Domain("localhost")))
        || match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(Error::invalid(
                "url",
                "url_https_required",
                "Use https (http is allowed only on 127.0.0.1, [::1] or localhost).",
            ));
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
        return Err(Error::invalid(
            "url",
            "invalid_url",
            "The URL must not carry credentials or a fragment.",
        ));
    }
    let mut filter = input.filter.clone();
    // A stream runs forward in time; a time range makes no sense for it.
    filter.from = None;
    filter.to = None;
    if let Some(c) = filter
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        && !crate::audit_catalog::CATEGORIES.contains(&c)
    {
        return Err(Error::invalid(
            "category",
            "invalid_category",
            "Pick a category from the catalog.",
        ));
    }
    if let Some(e) = filter
        .event
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        && crate::audit_catalog::by_name(e).is_none()
    {
        return Err(Error::invalid(
            "event",
            "invalid_event",
            "Pick an event from the catalog.",
        ));
    }
    if let Some(o) = filter
        .outcome
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        && o != "success"
        && o != "failure"
    {
        return Err(Error::invalid(
            "outcome",
            "invalid_outcome",
            "Outcome is success or failure.",
        ));
    }
    audit::check_filter(&filter)?;
    Ok(Input {
        name: name.to_owned(),
        url: parsed.to_string(),
        filter,
    })
}

fn new_secret() -> (String, String) {
    let secret = format!("whsec_{}", crate::secret::random_token());
    let hint = secret[secret.len() - 4..].to_owned();
    (secret, hint)
}

/// Creates a stream that starts with the next event written. The secret is returned once.
pub async fn create(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    input: &Input,
    now: Timestamp,
) -> Result<Created> {
    principal.authorize(Action::ManageAuditStreams)?;
    let input = check(input)?;
    let id = crate::secret::new_id();
    let (secret, hint) = new_secret();
    let sealed = identity.master_key().seal(secret.as_bytes(), &id)?;
    let filter = serde_json::to_string(&input.filter)
        .map_err(|e| Error::internal("Failed to encode a filter", e))?;
    let mut tx = identity.db().begin().await?;
    sqlx::query(
        "insert into audit_stream (audit_stream_id, name, url, filter, secret_sealed, secret_hint, \
         status, cursor_seq, attempts, next_attempt_at, created_by, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, 'active', \
         (select seq from audit_head where audit_head_id = 1), 0, $7, $8, $7, $7)",
    )
    .bind(&id)
    .bind(&input.name)
    .bind(&input.url)
    .bind(&filter)
    .bind(&sealed)
    .bind(&hint)
    .bind(now.millis())
    .bind(principal.actor_id())
    .execute(&mut *tx)
    .await
    .context("Failed to store an audit stream")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AuditStreamCreated,
            Some(target(&id)),
            json!({ "name": input.name, "url": input.url, "filter": input.filter,
                    "secret_hint": hint }),
        ),
        now,
        "Failed to commit an audit stream",
    )
    .await?;
    let stream = get(identity, principal, &id).await?;
    Ok(Created { stream, secret })
}

fn target(id: &str) -> Target {
    Target {
        kind: "audit_stream",
        id: id.to_owned(),
    }
}

pub async fn list(identity: &Identity, principal: &Principal) -> Result<Vec<Stream>> {
    principal.authorize(Action::ViewAudit)?;
    if principal.application_scope().is_some() {
        return Err(Error::Forbidden);
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {STREAM_COLUMNS} from audit_stream order by created_at"
    )))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to read audit streams")?;
    rows.iter().map(decode_stream).collect()
}

pub async fn get(identity: &Identity, principal: &Principal, id: &str) -> Result<Stream> {
    principal.authorize(Action::ViewAudit)?;
    if principal.application_scope().is_some() {
        return Err(Error::Forbidden);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {STREAM_COLUMNS} from audit_stream where audit_stream_id = $1"
    )))
    .bind(id)
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an audit stream")?
    .ok_or(Error::NotFound)?;
    decode_stream(&row)
}

/// The newest deliveries of a stream, newest first.
pub async fn deliveries(
    identity: &Identity,
    principal: &Principal,
    stream_id: &str,
    limit: i64,
) -> Result<Vec<Delivery>> {
    get(identity, principal, stream_id).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {DELIVERY_COLUMNS} from audit_stream_delivery where audit_stream_id = $1 \
         order by created_at desc, audit_stream_delivery_id desc limit $2"
    )))
    .bind(stream_id)
    .bind(limit.clamp(1, 500))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to read audit stream deliveries")?;
    rows.iter().map(decode_delivery).collect()
}

/// What a change may set; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub input: Option<Input>,
    /// `active` or `paused`.
    pub status: Option<String>,
}

pub async fn update(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    change: &Change,
    now: Timestamp,
) -> Result<Stream> {
    principal.authorize(Action::ManageAuditStreams)?;
    let before = get(identity, principal, id).await?;
    let input = match &change.input {
        Some(i) => check(i)?,
        None => Input {
            name: before.name.clone(),
            url: before.url.clone(),
            filter: before.filter.clone(),
        },
    };
    let status = match change.status.as_deref().map(str::trim) {
        None | Some("") => before.status.clone(),
        Some(s @ ("active" | "paused")) => s.to_owned(),
        Some(_) => {
            return Err(Error::invalid(
                "status",
                "invalid_status",
                "Status is active or paused.",
            ));
        }
    };
    let filter = serde_json::to_string(&input.filter)
        .map_err(|e| Error::internal("Failed to encode a filter", e))?;
    let mut tx = identity.db().begin().await?;
    // Resuming retries at once.
    let updated = sqlx::query(
        "update audit_stream set name = $1, url = $2, filter = $3, status = $4, updated_at = $5, \
         next_attempt_at = case when $4 = 'active' and status = 'paused' then $5 \
         else next_attempt_at end where audit_stream_id = $6",
    )
    .bind(&input.name)
    .bind(&input.url)
    .bind(&filter)
    .bind(&status)
    .bind(now.millis())
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("Failed to update an audit stream")?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    let summary = |name: &str, url: &str, filter: &Filter, status: &str| json!({ "name": name, "url": url, "filter": filter, "status": status });
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AuditStreamUpdated,
            Some(target(id)),
            json!({
                "before": summary(&before.name, &before.url, &before.filter, &before.status),
                "after": summary(&input.name, &input.url, &input.filter, &status),
            }),
        ),
        now,
        "Failed to commit an audit stream change",
    )
    .await?;
    get(identity, principal, id).await
}

/// Replaces the signing secret; the new one is returned once.
pub async fn rotate_secret(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    now: Timestamp,
) -> Result<Created> {
    principal.authorize(Action::ManageAuditStreams)?;
    let stream = get(identity, principal, id).await?;
    let (secret, hint) = new_secret();
    let sealed = identity.master_key().seal(secret.as_bytes(), id)?;
    let mut tx = identity.db().begin().await?;
    sqlx::query(
        "update audit_stream set secret_sealed = $1, secret_hint = $2, updated_at = $3 \
         where audit_stream_id = $4",
    )
    .bind(&sealed)
    .bind(&hint)
    .bind(now.millis())
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("Failed to replace an audit stream secret")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AuditStreamSecretRotated,
            Some(target(id)),
            json!({ "name": stream.name, "secret_hint": hint }),
        ),
        now,
        "Failed to commit an audit stream secret",
    )
    .await?;
    let stream = get(identity, principal, id).await?;
    Ok(Created { stream, secret })
}

/// Deletes a stream and its delivery log (the events it carried stay in the audit log).
pub async fn delete(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize(Action::ManageAuditStreams)?;
    let stream = get(identity, principal, id).await?;
    let mut tx = identity.db().begin().await?;
    sqlx::query("delete from audit_stream_delivery where audit_stream_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to delete an audit stream's deliveries")?;
    sqlx::query("delete from audit_stream where audit_stream_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to delete an audit stream")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AuditStreamDeleted,
            Some(target(id)),
            json!({ "name": stream.name, "url": stream.url }),
        ),
        now,
        "Failed to commit an audit stream deletion",
    )
    .await
}

/// Queues a past delivery's events to be sent again (the dispatcher sends it once, soon).
pub async fn redeliver(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    stream_id: &str,
    delivery_id: &str,
    now: Timestamp,
) -> Result<Delivery> {
    principal.authorize(Action::ManageAuditStreams)?;
    let stream = get(identity, principal, stream_id).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {DELIVERY_COLUMNS} from audit_stream_delivery \
         where audit_stream_delivery_id = $1 and audit_stream_id = $2"
    )))
    .bind(delivery_id)
    .bind(stream_id)
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an audit stream delivery")?
    .ok_or(Error::NotFound)?;
    let original = decode_delivery(&row)?;
    let id = crate::secret::new_id();
    let actor = principal.actor();
    let requested_by = actor.parts().2.map(str::to_owned);
    let mut tx = identity.db().begin().await?;
    sqlx::query(
        "insert into audit_stream_delivery (audit_stream_delivery_id, audit_stream_id, kind, \
         status, first_seq, last_seq, events, attempt, requested_by, created_at) \
         values ($1, $2, 'redelivery', 'pending', $3, $4, $5, 1, $6, $7)",
    )
    .bind(&id)
    .bind(stream_id)
    .bind(original.first_seq)
    .bind(original.last_seq)
    .bind(original.events)
    .bind(&requested_by)
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to queue a redelivery")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AuditStreamRedeliveryRequested,
            Some(target(stream_id)),
            json!({ "name": stream.name, "delivery_id": delivery_id,
                    "first_seq": original.first_seq, "last_seq": original.last_seq,
                    "events": original.events }),
        ),
        now,
        "Failed to commit a redelivery request",
    )
    .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {DELIVERY_COLUMNS} from audit_stream_delivery where audit_stream_delivery_id = $1"
    )))
    .bind(&id)
    .fetch_one(identity.db().pool())
    .await
    .context("Failed to read a redelivery")?;
    decode_delivery(&row)
}

/// A delivery ready to send: the signed body and where to.
#[derive(Clone, Debug)]
pub struct Due {
    pub delivery_id: String,
    pub stream_id: String,
    pub redelivery: bool,
    pub url: String,
    pub body: Vec<u8>,
    /// The value of the `Portcullis-Signature` header.
    pub signature: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: i64,
    pub attempt: i64,
    /// Where the stream's cursor moves when this is acknowledged.
    cursor_after: i64,
    cursor_before: i64,
}

/// The `Portcullis-Signature` value for `body` sent at `t` (unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

fn body(stream_id: &str, delivery_id: &str, events: &[Record]) -> Result<Vec<u8>> {
    serde_json::to_vec(&json!({
        "stream_id": stream_id,
        "delivery_id": delivery_id,
        "events": events,
    }))
    .map_err(|e| Error::internal("Failed to encode a delivery", e))
}

/// Claims what is due now — queued redeliveries, then active streams whose retry time has come —
/// leasing each so another replica does not send it too, and builds the signed requests.
pub async fn claim_due(identity: &Identity, now: Timestamp, limit: i64) -> Result<Vec<Due>> {
    let mut due = Vec::new();
    let pool = identity.db().pool();
    let redeliveries = sqlx::query(
        "select d.audit_stream_delivery_id, d.first_seq, d.last_seq, s.audit_stream_id \
         from audit_stream_delivery d join audit_stream s on s.audit_stream_id = d.audit_stream_id \
         where d.status = 'pending' or (d.status = 'sending' and d.completed_at < $1) \
         order by d.created_at limit $2",
    )
    .bind(now.millis())
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to read queued redeliveries")?;
    for r in redeliveries {
        let id: String = r
            .try_get("audit_stream_delivery_id")
            .context("delivery.id")?;
        let claimed = sqlx::query(
            "update audit_stream_delivery set status = 'sending', completed_at = $1 \
             where audit_stream_delivery_id = $2 \
             and (status = 'pending' or (status = 'sending' and completed_at < $3))",
        )
        .bind(now.millis() + LEASE_MS)
        .bind(&id)
        .bind(now.millis())
        .execute(pool)
        .await
        .context("Failed to claim a redelivery")?;
        if claimed.rows_affected() == 0 {
            continue;
        }
        let stream_id: String = r.try_get("audit_stream_id").context("delivery.stream")?;
        let (first, last): (i64, i64) = (
            r.try_get("first_seq").context("delivery.first_seq")?,
            r.try_get("last_seq").context("delivery.last_seq")?,
        );
        let (stream, secret) = stream_with_secret(identity, &stream_id).await?;
        let events = records(identity, &stream.filter, (first - 1, last)).await?;
        let body = body(&stream_id, &id, &events)?;
        due.push(Due {
            signature: sign(&secret, now.millis() / 1000, &body),
            delivery_id: id,
            stream_id,
            redelivery: true,
            url: stream.url,
            body,
            first_seq: first,
            last_seq: last,
            events: events.len() as i64,
            attempt: 1,
            cursor_after: stream.cursor_seq,
            cursor_before: stream.cursor_seq,
        });
    }
    let candidates: Vec<String> = sqlx::query_scalar(
        "select audit_stream_id from audit_stream where status = 'active' \
         and next_attempt_at <= $1 and (lease_until is null or lease_until < $1) \
         order by next_attempt_at limit $2",
    )
    .bind(now.millis())
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to read due audit streams")?;
    if candidates.is_empty() {
        return Ok(due);
    }
    let head = audit::head_seq(identity).await?;
    for stream_id in candidates {
        let claimed = sqlx::query(
            "update audit_stream set lease_until = $1 where audit_stream_id = $2 \
             and status = 'active' and (lease_until is null or lease_until < $3)",
        )
        .bind(now.millis() + LEASE_MS)
        .bind(&stream_id)
        .bind(now.millis())
        .execute(pool)
        .await
        .context("Failed to claim an audit stream")?;
        if claimed.rows_affected() == 0 {
            continue;
        }
        let (stream, secret) = stream_with_secret(identity, &stream_id).await?;
        let events = records(identity, &stream.filter, (stream.cursor_seq, head)).await?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            // Nothing new for this stream up to the head: skip ahead and let go.
            sqlx::query(
                "update audit_stream set cursor_seq = $1, lease_until = null \
                 where audit_stream_id = $2 and cursor_seq = $3",
            )
            .bind(head.max(stream.cursor_seq))
            .bind(&stream_id)
            .bind(stream.cursor_seq)
            .execute(pool)
            .await
            .context("Failed to advance an audit stream")?;
            continue;
        };
        let (first_seq, last_seq) = (first.seq, last.seq);
        // A short page means everything matching up to the head is in it.
        let cursor_after = if (events.len() as i64) < BATCH {
            head
        } else {
            last_seq
        };
        let id = crate::secret::new_id();
        let body = body(&stream_id, &id, &events)?;
        due.push(Due {
            signature: sign(&secret, now.millis() / 1000, &body),
            delivery_id: id,
            stream_id,
            redelivery: false,
            url: stream.url,
            body,
            first_seq,
            last_seq,
            events: events.len() as i64,
            attempt: stream.attempts + 1,
            cursor_after,
            cursor_before: stream.cursor_seq,
        });
    }
    Ok(due)
}

/// A batch of a stream's events, as the API shows them.
async fn records(identity: &Identity, filter: &Filter, range: (i64, i64)) -> Result<Vec<Record>> {
    let rows = audit::read_after(identity, filter, range, BATCH, true).await?;
    Ok(rows.into_iter().map(|(record, _)| record).collect())
}

async fn stream_with_secret(identity: &Identity, id: &str) -> Result<(Stream, String)> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {STREAM_COLUMNS}, secret_sealed from audit_stream where audit_stream_id = $1"
    )))
    .bind(id)
    .fetch_one(identity.db().pool())
    .await
    .context("Failed to read an audit stream")?;
    let stream = decode_stream(&row)?;
    let sealed: String = row
        .try_get("secret_sealed")
        .context("audit_stream.secret")?;
    let secret = String::from_utf8(identity.master_key().open(&sealed, id)?)
        .map_err(|e| Error::internal("A stream secret is not text", e))?;
    Ok((stream, secret))
}

/// The wait before retry number `attempts + 1`: 1, 2, 4 … seconds, at most five minutes.
pub fn backoff_secs(attempts: i64) -> i64 {
    (1_i64 << (attempts.clamp(1, 30) - 1).min(20)).min(MAX_BACKOFF_SECS)
}

/// Records one attempt: the delivery log row, and for the stream's own deliveries the cursor (on
/// success) or the next retry (on failure).
pub async fn report(
    identity: &Identity,
    due: &Due,
    outcome: std::result::Result<u16, (Option<u16>, String)>,
    duration_ms: i64,
    now: Timestamp,
) -> Result<()> {
    let (status, code, error) = match &outcome {
        Ok(code) => ("delivered", Some(i64::from(*code)), None),
        Err((code, e)) => ("failed", code.map(i64::from), Some(e.clone())),
    };
    let mut tx = identity.db().begin().await?;
    if due.redelivery {
        sqlx::query(
            "update audit_stream_delivery set status = $1, status_code = $2, error = $3, \
             duration_ms = $4, events = $5, completed_at = $6 where audit_stream_delivery_id = $7",
        )
        .bind(status)
        .bind(code)
        .bind(&error)
        .bind(duration_ms)
        .bind(due.events)
        .bind(now.millis())
        .bind(&due.delivery_id)
        .execute(&mut *tx)
        .await
        .context("Failed to record a redelivery")?;
    } else {
        sqlx::query(
            "insert into audit_stream_delivery (audit_stream_delivery_id, audit_stream_id, kind, \
             status, first_seq, last_seq, events, attempt, status_code, error, duration_ms, \
             created_at, completed_at) values ($1, $2, 'stream', $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $11)",
        )
        .bind(&due.delivery_id)
        .bind(&due.stream_id)
        .bind(status)
        .bind(due.first_seq)
        .bind(due.last_seq)
        .bind(due.events)
        .bind(due.attempt)
        .bind(code)
        .bind(&error)
        .bind(duration_ms)
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .context("Failed to record a delivery")?;
        if outcome.is_ok() {
            sqlx::query(
                "update audit_stream set cursor_seq = $1, attempts = 0, next_attempt_at = $2, \
                 lease_until = null, last_error = null, last_success_at = $2 \
                 where audit_stream_id = $3 and cursor_seq = $4",
            )
            .bind(due.cursor_after)
            .bind(now.millis())
            .bind(&due.stream_id)
            .bind(due.cursor_before)
            .execute(&mut *tx)
            .await
            .context("Failed to advance an audit stream")?;
        } else {
            sqlx::query(
                "update audit_stream set attempts = $1, next_attempt_at = $2, lease_until = null, \
                 last_error = $3 where audit_stream_id = $4",
            )
            .bind(due.attempt)
            .bind(now.millis() + backoff_secs(due.attempt) * 1000)
            .bind(&error)
            .bind(&due.stream_id)
            .execute(&mut *tx)
            .await
            .context("Failed to schedule a retry")?;
        }
    }
    tx.commit()
        .await
        .context("Failed to commit a delivery report")
}

/// Drops delivery log rows older than `days` (run with the retention job).
pub async fn prune_deliveries(identity: &Identity, days: i64, now: Timestamp) -> Result<u64> {
    let res = sqlx::query(
        "delete from audit_stream_delivery where created_at < $1 and status in ('delivered', 'failed')",
    )
    .bind(now.millis() - days * 86_400_000)
    .execute(identity.db().pool())
    .await
    .context("Failed to prune audit stream deliveries")?;
    Ok(res.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_time_and_body() {
        // printf '0.what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe
        let sig = sign("Jefe", 0, b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
        assert_ne!(sig, sign("Jefe", 1, b"what do ya want for nothing?"));
        assert_ne!(sig, sign("Jefx", 0, b"what do ya want for nothing?"));
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let waits: Vec<i64> = (1..=12).map(backoff_secs).collect();
        assert_eq!(&waits[..6], &[1, 2, 4, 8, 16, 32]);
        assert!(waits.iter().all(|w| *w <= MAX_BACKOFF_SECS));
        assert_eq!(waits[8..], [256, 300, 300, 300]);
    }
}
