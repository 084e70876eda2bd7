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

/// A sign-in attempt, counted before the password check so parallel guesses cannot all slip under
/// the limit while the (slow) check runs.
pub(crate) struct Attempt {
    account: String,
    ip_row: Option<i64>,
}

async fn count_row(tx: &mut crate::db::Tx, subject: &str, now: Timestamp) -> Result<i64> {
    sqlx::query("insert into sign_in_failure (subject, created_at) values ($1, $2) returning sign_in_failure_id")
        .bind(subject)
        .bind(now.millis())
        .fetch_one(&mut **tx)
        .await
        .and_then(|r| r.try_get::<i64, _>("sign_in_failure_id"))
        .context("Failed to count a sign-in attempt")
}

async fn count_since(tx: &mut crate::db::Tx, subject: &str, since: Timestamp) -> Result<i64> {
    sqlx::query("select count(*) as n from sign_in_failure where subject = $1 and created_at > $2")
        .bind(subject)
        .bind(since.millis())
        .fetch_one(&mut **tx)
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .context("Failed to count failed sign-ins")
}

/// Counts an attempt against `account` and the client's IP (`ip_prefix` keeps staff and end-user
/// counters apart). `None` when either limit is reached; a refused attempt is not counted, so waiting
/// out the window always works and refused requests cannot keep an account locked.
pub(crate) async fn begin_attempt(
    identity: &Identity,
    meta: &RequestMeta,
    account: &str,
    ip_prefix: &str,
    now: Timestamp,
) -> Result<Option<Attempt>> {
    let s = identity.settings();
    let since = now.minus_secs(s.throttle_window_secs);
    let mut tx = identity.db().begin().await?;
    sqlx::query("delete from sign_in_failure where created_at <= $1")
        .bind(since.millis())
        .execute(&mut *tx)
        .await
        .context("Failed to prune old sign-in failures")?;
    if identity.db().backend() == crate::db::Backend::Postgres {
        // Read committed lets two attempts each miss the other's uncounted row; one attempt per
        // account at a time. (SQLite's `begin immediate` already serialises.)
        sqlx::query("select pg_advisory_xact_lock(hashtext($1)) is null as locked")
            .bind(account)
            .fetch_one(&mut *tx)
            .await
            .context("Failed to lock an account's attempt counter")?;
    }
    let account_row = count_row(&mut tx, account, now).await?;
    let ip_subject = meta.ip.as_deref().map(|ip| format!("{ip_prefix}{ip}"));
    let ip_row = match &ip_subject {
        Some(subject) => Some(count_row(&mut tx, subject, now).await?),
        None => None,
    };
    let mut over = count_since(&mut tx, account, since).await? > s.throttle_per_account;
    if let Some(subject) = &ip_subject {
        over = over || count_since(&mut tx, subject, since).await? > s.throttle_per_ip;
    }
    if over {
        for id in std::iter::once(account_row).chain(ip_row) {
            sqlx::query("delete from sign_in_failure where sign_in_failure_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("Failed to uncount a refused attempt")?;
        }
    }
    tx.commit()
        .await
        .context("Failed to commit a sign-in attempt")?;
    Ok((!over).then(|| Attempt {
        account: account.to_owned(),
        ip_row,
    }))
}

impl Attempt {
    /// The password was right: the account's failures are forgiven and this attempt does not count
    /// against the address.
    pub(crate) async fn succeeded(&self, tx: &mut crate::db::Tx) -> Result<()> {
        sqlx::query("delete from sign_in_failure where subject = $1")
            .bind(&self.account)
            .execute(&mut **tx)
            .await
            .context("Failed to clear sign-in failures")?;
        if let Some(id) = self.ip_row {
            sqlx::query("delete from sign_in_failure where sign_in_failure_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await
                .context("Failed to clear a sign-in attempt")?;
        }
        Ok(())
    }
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

    let Some(attempt) = begin_attempt(identity, meta, &email_key, "ip:", now).await? else {
        record_failure(identity, meta, &email_key, None, "throttled", now).await?;
        return Err(Error::Throttled {
            retry_after_secs: identity.settings().throttle_window_secs,
        });
    };

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
    attempt.succeeded(&mut tx).await?;
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
            .execute(identity.db().writer())
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
