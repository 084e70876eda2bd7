//! Staff sign-in, server-side sessions and sign-out.
//!
//! A session is a random 256-bit token in an HttpOnly cookie; the database keeps only its SHA-256.
//! Sessions end after an idle period and at an absolute lifetime, both from [`crate::Settings`].
//! Failed sign-ins are counted per account and per IP in the database, so replicas share the limits.

use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Principal, PrincipalKind, Role};
use crate::email::Email;
use crate::error::{Context, Error, Result};
use crate::secret::{new_id, random_token, token_hash};
use crate::staff::{self, Staff, Status};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use secrecy::SecretString;
use serde_json::json;
use sqlx::Row;

/// A new session: the token goes into the cookie and is never stored or shown again.
pub struct NewSession {
    pub token: SecretString,
    pub csrf_token: String,
    pub staff: Staff,
    pub expires_at: Timestamp,
}

/// A request's session, once its cookie has been checked.
#[derive(Clone, Debug)]
pub struct Current {
    pub principal: Principal,
    pub session_id: String,
    /// The synchroniser token that form posts of this session must carry.
    pub csrf_token: String,
}

fn account_key(email: &str) -> String {
    format!("email:{email}")
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

async fn recent_failures(identity: &Identity, subject: &str, now: Timestamp) -> Result<i64> {
    let since = now.minus_secs(identity.settings().throttle_window_secs);
    sqlx::query("select count(*) as n from sign_in_failure where subject = $1 and created_at > $2")
        .bind(subject)
        .bind(since.millis())
        .fetch_one(identity.db().pool())
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .context("Failed to count failed sign-ins")
}

pub(crate) async fn is_throttled(
    identity: &Identity,
    email_key: &str,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<bool> {
    let s = identity.settings();
    if recent_failures(identity, email_key, now).await? >= s.throttle_per_account {
        return Ok(true);
    }
    match &meta.ip {
        Some(ip) => Ok(recent_failures(identity, &ip_key(ip), now).await? >= s.throttle_per_ip),
        None => Ok(false),
    }
}

/// Records a failed attempt (counters + audit event) in one transaction.
/// Counts a failed sign-in against the account key and the client's IP (and prunes old counts).
pub(crate) async fn count_failure(
    tx: &mut crate::db::Tx,
    meta: &RequestMeta,
    key: &str,
    now: Timestamp,
    window_secs: i64,
) -> Result<()> {
    sqlx::query("delete from sign_in_failure where created_at <= $1")
        .bind(now.minus_secs(window_secs).millis())
        .execute(&mut **tx)
        .await
        .context("Failed to prune old sign-in failures")?;
    let mut subjects = vec![key.to_owned()];
    subjects.extend(meta.ip.as_deref().map(ip_key));
    for subject in subjects {
        sqlx::query("insert into sign_in_failure (subject, created_at) values ($1, $2)")
            .bind(subject)
            .bind(now.millis())
            .execute(&mut **tx)
            .await
            .context("Failed to record a failed sign-in")?;
    }
    Ok(())
}

async fn record_failure(
    identity: &Identity,
    meta: &RequestMeta,
    email_key: &str,
    target: Option<&Staff>,
    reason: &str,
    now: Timestamp,
) -> Result<()> {
    let mut tx = identity.db().begin().await?;
    count_failure(
        &mut tx,
        meta,
        email_key,
        now,
        identity.settings().throttle_window_secs,
    )
    .await?;
    audit::append(
        &mut tx,
        &Actor::Anonymous,
        meta,
        Entry::failure(
            Event::StaffSignInFailed,
            target.map(|s| Target::staff(&s.id)),
            json!({ "email": email_key.trim_start_matches("email:"), "reason": reason }),
        ),
        now,
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to commit a failed sign-in")
}

/// Signs a staff member in. Unknown email, wrong password, unaccepted invitation and disabled account
/// all answer [`Error::InvalidCredentials`] after the same argon2 work.
pub async fn sign_in(
    identity: &Identity,
    meta: &RequestMeta,
    email: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<NewSession> {
    let normalized = email.trim().to_lowercase();
    let email_key = account_key(&normalized);

    if is_throttled(identity, &email_key, meta, now).await? {
        record_failure(identity, meta, &email_key, None, "throttled", now).await?;
        return Err(Error::Throttled {
            retry_after_secs: identity.settings().throttle_window_secs,
        });
    }

    let credentials = match Email::parse(&normalized) {
        Ok(email) => staff::find_credentials(identity, &email).await?,
        Err(_) => None,
    };
    let (staff, hash) = match credentials {
        Some(c) => (Some(c.staff), c.password_hash),
        None => (None, None),
    };
    let password_ok = identity.hasher().verify(password, hash).await?;
    let staff = match staff {
        Some(s) if password_ok && s.status == Status::Active => s,
        other => {
            let reason = match &other {
                None => "unknown_email",
                Some(s) if s.status != Status::Active => "account_not_active",
                Some(_) => "wrong_password",
            };
            record_failure(identity, meta, &email_key, other.as_ref(), reason, now).await?;
            return Err(Error::InvalidCredentials);
        }
    };

    let token = random_token();
    let csrf_token = random_token();
    let expires_at = now.plus_secs(identity.settings().session_absolute_secs);
    let session_id = new_id();
    let mut tx = identity.db().begin().await?;
    sqlx::query(
        "insert into staff_session (staff_session_id, staff_id, token_hash, csrf_token, ip, user_agent, \
         created_at, last_seen_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&session_id)
    .bind(&staff.id)
    .bind(token_hash(&token))
    .bind(&csrf_token)
    .bind(&meta.ip)
    .bind(&meta.user_agent)
    .bind(now.millis())
    .bind(now.millis())
    .bind(expires_at.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to store a staff session")?;
    // A success clears the account's failure count.
    sqlx::query("delete from sign_in_failure where subject = $1")
        .bind(&email_key)
        .execute(&mut *tx)
        .await
        .context("Failed to clear sign-in failures")?;
    audit::append(
        &mut tx,
        &staff.actor(),
        meta,
        Entry::success(
            Event::StaffSignedIn,
            Some(Target::staff(&staff.id)),
            json!({ "session_id": session_id, "method": "password" }),
        ),
        now,
    )
    .await?;
    tx.commit().await.context("Failed to commit a sign-in")?;
    Ok(NewSession {
        token: SecretString::from(token),
        csrf_token,
        staff,
        expires_at,
    })
}

/// Resolves a session cookie. Revoked, idle-expired, absolutely-expired sessions and sessions of
/// staff who are no longer active resolve to `None`.
pub async fn authenticate(
    identity: &Identity,
    token: &str,
    now: Timestamp,
) -> Result<Option<Current>> {
    let row = sqlx::query(
        "select s.staff_session_id, s.csrf_token, s.last_seen_at, s.expires_at, \
         st.staff_id, st.email, st.role, st.status \
         from staff_session s join staff st on st.staff_id = s.staff_id \
         where s.token_hash = $1 and s.revoked_at is null",
    )
    .bind(token_hash(token))
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read a staff session")?;
    let Some(row) = row else { return Ok(None) };
    let last_seen = Timestamp::from_millis(
        row.try_get("last_seen_at")
            .context("session.last_seen_at")?,
    );
    let expires_at =
        Timestamp::from_millis(row.try_get("expires_at").context("session.expires_at")?);
    let status: String = row.try_get("status").context("staff.status")?;
    let idle_deadline = last_seen.plus_secs(identity.settings().session_idle_secs);
    if now >= expires_at || now >= idle_deadline || status != "active" {
        return Ok(None);
    }
    let session_id: String = row.try_get("staff_session_id").context("session.id")?;
    // Refresh the idle clock at most once a minute to keep reads cheap.
    if now.millis() - last_seen.millis() > 60_000 {
        sqlx::query("update staff_session set last_seen_at = $1 where staff_session_id = $2")
            .bind(now.millis())
            .bind(&session_id)
            .execute(identity.db().pool())
            .await
            .context("Failed to refresh a staff session")?;
    }
    let role: String = row.try_get("role").context("staff.role")?;
    Ok(Some(Current {
        principal: Principal {
            role: Some(Role::parse(&role)?),
            kind: PrincipalKind::Staff {
                staff_id: row.try_get("staff_id").context("staff.staff_id")?,
                email: row.try_get("email").context("staff.email")?,
                session_id: session_id.clone(),
            },
        },
        session_id,
        csrf_token: row.try_get("csrf_token").context("session.csrf_token")?,
    }))
}

/// Ends the session behind `current`; its cookie stops working at once.
pub async fn sign_out(
    identity: &Identity,
    current: &Current,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<()> {
    let mut tx = identity.db().begin().await?;
    sqlx::query("update staff_session set revoked_at = $1 where staff_session_id = $2 and revoked_at is null")
        .bind(now.millis())
        .bind(&current.session_id)
        .execute(&mut *tx)
        .await
        .context("Failed to revoke a staff session")?;
    let target = current.principal.staff_id().map(Target::staff);
    audit::append(
        &mut tx,
        &current.principal.actor(),
        meta,
        Entry::success(
            Event::StaffSignedOut,
            target,
            json!({ "session_id": current.session_id }),
        ),
        now,
    )
    .await?;
    tx.commit().await.context("Failed to commit a sign-out")
}
