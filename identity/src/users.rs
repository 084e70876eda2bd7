//! The shared user pool: one account per person, whichever application they sign in to. Users are
//! found by id; their email is a normalised, unique attribute that can change.
//!
//! Staff manage users (create, invite, change, disable); the hosted pages let users sign in, sign up
//! (where the application allows it), reset a forgotten password and accept an invitation. One-time
//! links are stored hashed, single use and short-lived, and remember the application the flow
//! started from so the user returns there.

use crate::applications::{self, Application, Status as AppStatus};
use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::email::Email;
use crate::error::{Context, Error, Result, is_unique_violation};
use crate::mail;
use crate::secret::{new_id, random_token, token_hash};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta, password};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// A password-reset link lives 30 minutes; an invitation 7 days.
pub const RESET_SECS: i64 = 30 * 60;
pub const INVITATION_SECS: i64 = 7 * 24 * 60 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Invited; has not set a password yet.
    Invited,
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Invited => "invited",
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        match input.trim() {
            "invited" => Ok(Status::Invited),
            "active" => Ok(Status::Active),
            "disabled" => Ok(Status::Disabled),
            _ => Err(Error::invalid(
                "status",
                "invalid_status",
                "Status must be active or disabled.",
            )),
        }
    }
}

/// A user as everyone but the password check sees it: never the password hash.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: String,
    pub email: Email,
    pub email_verified: bool,
    pub name: String,
    pub status: Status,
    pub metadata: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_sign_in_at: Option<Timestamp>,
}

impl User {
    fn actor(&self) -> Actor {
        Actor::User {
            id: self.id.clone(),
            email: self.email.to_string(),
        }
    }
}

const COLUMNS: &str = "user_id, email, email_verified, name, status, metadata, created_at, updated_at, \
     last_sign_in_at";
/// `COLUMNS` for a join in which `end_user` is `u` (decoded by the same `decode`).
pub(crate) const JOINED_COLUMNS: &str = "u.user_id, u.email, u.email_verified, u.name, u.status, \
     u.metadata, u.created_at, u.updated_at, u.last_sign_in_at";

pub(crate) fn decode(row: &sqlx::any::AnyRow) -> Result<User> {
    let status: String = row.try_get("status").context("end_user.status")?;
    let metadata: String = row.try_get("metadata").context("end_user.metadata")?;
    Ok(User {
        id: row.try_get("user_id").context("end_user.id")?,
        email: Email::from_trusted(row.try_get("email").context("end_user.email")?),
        email_verified: row
            .try_get::<i64, _>("email_verified")
            .context("end_user.email_verified")?
            == 1,
        name: row.try_get("name").context("end_user.name")?,
        status: Status::parse(&status)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_else(|_| json!({})),
        created_at: Timestamp::from_millis(
            row.try_get("created_at").context("end_user.created_at")?,
        ),
        updated_at: Timestamp::from_millis(
            row.try_get("updated_at").context("end_user.updated_at")?,
        ),
        last_sign_in_at: row
            .try_get::<Option<i64>, _>("last_sign_in_at")
            .context("end_user.last_sign_in_at")?
            .map(Timestamp::from_millis),
    })
}

fn parse_name(input: &str) -> Result<String> {
    let name = input.trim();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "invalid_name",
            "Name may be at most 200 characters.",
        ));
    }
    Ok(name.to_owned())
}

/// Metadata is a small JSON object (at most 4 KB serialised).
fn parse_metadata(value: Option<Value>) -> Result<Value> {
    match value {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(map)) if serde_json::to_string(&map).map_or(0, |s| s.len()) <= 4096 => {
            Ok(Value::Object(map))
        }
        Some(_) => Err(Error::invalid(
            "metadata",
            "invalid_metadata",
            "Metadata must be a JSON object of at most 4 KB.",
        )),
    }
}

fn email_taken() -> Error {
    Error::invalid(
        "email",
        "email_taken",
        "A user with this email already exists.",
    )
}

fn summary(u: &User) -> Value {
    json!({ "email": u.email, "name": u.name, "status": u.status, "email_verified": u.email_verified,
            "metadata": u.metadata })
}

pub(crate) async fn find(conn: &mut AnyConnection, id: &str) -> Result<User> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from end_user where user_id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .context("Failed to read a user")?
    .ok_or(Error::NotFound)?;
    decode(&row)
}

pub(crate) async fn find_by_email(
    conn: &mut AnyConnection,
    email: &Email,
) -> Result<Option<(User, Option<SecretString>)>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS}, password_hash from end_user where email = $1"
    )))
    .bind(email.as_str())
    .fetch_optional(conn)
    .await
    .context("Failed to read a user")?;
    row.map(|row| {
        let hash: Option<String> = row
            .try_get("password_hash")
            .context("end_user.password_hash")?;
        Ok((decode(&row)?, hash.map(SecretString::from)))
    })
    .transpose()
}

async fn insert(tx: &mut Tx, user: &User, hash: Option<&SecretString>) -> Result<()> {
    let result = sqlx::query(
        "insert into end_user (user_id, email, email_verified, name, password_hash, status, metadata, name_lower, \
         created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&user.id)
    .bind(user.email.as_str())
    .bind(i64::from(user.email_verified))
    .bind(&user.name)
    .bind(hash.map(|h| h.expose_secret().to_owned()))
    .bind(user.status.as_str())
    .bind(user.metadata.to_string())
    .bind(user.name.to_lowercase())
    .bind(user.created_at.millis())
    .bind(user.updated_at.millis())
    .execute(&mut **tx)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(email_taken()),
        Err(e) => Err(Error::internal("Failed to store a user", e)),
    }
}

/// What a caller asks for. Without a password the user is invited by email.
#[derive(Debug, Default)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password: Option<SecretString>,
    pub metadata: Option<Value>,
    /// The application an invitation returns to; the default application when absent.
    pub application_id: Option<String>,
}

pub struct Created {
    pub user: User,
    /// The invitation link's token, when the user was invited (also sent through the mailer).
    pub invitation: Option<SecretString>,
}

/// Creates a user: with a password, active at once; without one, invited by email to set it.
pub async fn create(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    new: NewUser,
    public_url: &str,
    now: Timestamp,
) -> Result<Created> {
    principal.authorize_pool(Action::ManageUsers)?;
    let email = Email::parse(&new.email)?;
    let name = parse_name(&new.name)?;
    let metadata = parse_metadata(new.metadata)?;
    let hash = match new.password {
        Some(pw) if !pw.expose_secret().is_empty() => {
            password::check_policy(&pw)?;
            Some(identity.hasher().hash(pw).await?)
        }
        _ => None,
    };
    let user = User {
        id: new_id(),
        email,
        email_verified: false,
        name,
        status: if hash.is_some() {
            Status::Active
        } else {
            Status::Invited
        },
        metadata,
        created_at: now,
        updated_at: now,
        last_sign_in_at: None,
    };
    let mut tx = identity.db().begin().await?;
    // An application key invites into its own application.
    let app_id = principal
        .application_scope()
        .map(str::to_owned)
        .or(new.application_id);
    let app = return_application(&mut tx, app_id.as_deref()).await?;
    insert(&mut tx, &user, hash.as_ref()).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        meta,
        Entry::success(
            if hash.is_some() {
                Event::UserCreated
            } else {
                Event::UserInvited
            },
            Some(Target::user(&user.id)),
            json!({ "after": summary(&user), "application_id": app.id }),
        ),
        now,
    )
    .await?;
    let invitation = if hash.is_none() {
        let token = issue_token(&mut tx, &user, TokenKind::Invitation, &app, now).await?;
        let link = format!(
            "{}/u/accept-invitation?token={}",
            public_url.trim_end_matches('/'),
            token.expose_secret()
        );
        mail::queue(
            &mut tx,
            &user.email,
            &format!("You are invited to {}", app.name),
            &format!(
                "Hello{},\n\nYou have been invited to {}. Set your password here (the link works once, for 7 days):\n\n{link}\n",
                if user.name.is_empty() { String::new() } else { format!(" {}", user.name) },
                app.name
            ),
            now,
        )
        .await?;
        Some(token)
    } else {
        None
    };
    tx.commit().await.context("Failed to commit a new user")?;
    Ok(Created { user, invitation })
}

/// The application a flow returns to: the named one (which must exist), else the default one.
async fn return_application(conn: &mut AnyConnection, id: Option<&str>) -> Result<Application> {
    match id.filter(|s| !s.is_empty()) {
        Some(id) => applications::find(conn, id).await.map_err(|e| match e {
            Error::NotFound => Error::invalid(
                "application_id",
                "unknown_application",
                "No such application.",
            ),
            other => other,
        }),
        None => applications::find_default(conn).await,
    }
}

pub async fn get(identity: &Identity, principal: &Principal, id: &str) -> Result<User> {
    principal.authorize_pool(Action::ViewUsers)?;
    find(&mut *identity.db().connection().await?, id).await
}

/// Which users to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// A prefix of the email or of the name (any case).
    pub search: Option<String>,
    pub status: Option<Status>,
    pub organization_id: Option<String>,
    /// Users granted this application role.
    pub app_role_id: Option<String>,
    /// The last id of the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

pub struct Page {
    pub items: Vec<User>,
    pub next_cursor: Option<String>,
}

/// Users, newest first, keyset-paginated. Searches use the email and name indexes (prefix match).
pub async fn list(identity: &Identity, principal: &Principal, query: &ListQuery) -> Result<Page> {
    principal.authorize_pool(Action::ViewUsers)?;
    let limit = query.limit.clamp(1, 200);
    let mut conditions: Vec<String> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let next = |binds: &mut Vec<String>, value: String| {
        binds.push(value);
        format!("${}", binds.len())
    };
    if let Some(search) = query
        .search
        .as_deref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
    {
        // Range scans on the indexes instead of `like`: [prefix, prefix + U+10FFFF).
        let upper = format!("{search}\u{10FFFF}");
        let (a, b) = (
            next(&mut binds, search.clone()),
            next(&mut binds, upper.clone()),
        );
        let (c, d) = (next(&mut binds, search), next(&mut binds, upper));
        conditions.push(format!(
            "((email >= {a} and email < {b}) or (name_lower >= {c} and name_lower < {d}))"
        ));
    }
    if let Some(status) = query.status {
        let p = next(&mut binds, status.as_str().to_owned());
        conditions.push(format!("status = {p}"));
    }
    if let Some(org) = &query.organization_id {
        let p = next(&mut binds, org.clone());
        conditions.push(format!(
            "user_id in (select user_id from organization_member where organization_id = {p})"
        ));
    }
    if let Some(role) = &query.app_role_id {
        let p = next(&mut binds, role.clone());
        let scope = match principal.application_scope() {
            Some(app) => {
                let q = next(&mut binds, app.to_owned());
                format!(" and application_id = {q}")
            }
            None => String::new(),
        };
        conditions.push(format!(
            "user_id in (select user_id from user_app_role where app_role_id = {p}{scope})"
        ));
    }
    if let Some(after) = &query.after {
        let p = next(&mut binds, after.clone());
        conditions.push(format!(
            "(created_at, user_id) < (select created_at, user_id from end_user where user_id = {p})"
        ));
    }
    let filter: String = conditions.iter().map(|c| format!(" and {c}")).collect();
    let sql = format!(
        "select {COLUMNS} from end_user where 1 = 1{filter} order by created_at desc, user_id desc limit ${}",
        binds.len() + 1
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q
        .bind(limit + 1)
        .fetch_all(identity.db().pool())
        .await
        .context("Failed to list users")?;
    let mut items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|u| u.id.clone())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// A change; absent fields stay.
#[derive(Debug, Default)]
pub struct Change {
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub email_verified: Option<bool>,
    pub metadata: Option<Value>,
}

/// Changes a user in one transaction with one audited before/after. Disabling ends their sessions.
pub async fn update(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    change: Change,
    now: Timestamp,
) -> Result<User> {
    principal.authorize_pool(Action::ManageUsers)?;
    // A user belongs to every application; one application's key may not take the account over
    // (change where its reset links go, or lock it for everyone).
    if principal.application_scope().is_some()
        && (change.email.is_some() || change.email_verified.is_some() || change.status.is_some())
    {
        return Err(Error::Forbidden);
    }
    let mut tx = identity.db().begin().await?;
    sqlx::query("update end_user set updated_at = updated_at where user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to lock a user")?;
    let before = find(&mut tx, id).await?;
    let mut after = before.clone();
    if let Some(email) = &change.email {
        after.email = Email::parse(email)?;
        if after.email != before.email {
            after.email_verified = false;
        }
    }
    if let Some(name) = &change.name {
        after.name = parse_name(name)?;
    }
    if let Some(status) = &change.status {
        after.status = match Status::parse(status)? {
            Status::Invited => {
                return Err(Error::invalid(
                    "status",
                    "invalid_status",
                    "Status must be active or disabled.",
                ));
            }
            // Enabling a user who never set a password keeps them invited.
            Status::Active if !has_password(&mut tx, id).await? => Status::Invited,
            s => s,
        };
    }
    if let Some(verified) = change.email_verified {
        after.email_verified = verified;
    }
    if change.metadata.is_some() {
        after.metadata = parse_metadata(change.metadata)?;
    }
    let (old, new) = (summary(&before), summary(&after));
    if old == new {
        return Ok(before);
    }
    after.updated_at = now;
    let result = sqlx::query(
        "update end_user set email = $1, email_verified = $2, name = $3, name_lower = $4, status = $5, \
         metadata = $6, updated_at = $7 where user_id = $8",
    )
    .bind(after.email.as_str())
    .bind(i64::from(after.email_verified))
    .bind(&after.name)
    .bind(after.name.to_lowercase())
    .bind(after.status.as_str())
    .bind(after.metadata.to_string())
    .bind(now.millis())
    .bind(id)
    .execute(&mut *tx)
    .await;
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(email_taken()),
        Err(e) => return Err(Error::internal("Failed to update a user", e)),
    }
    let disabled = after.status == Status::Disabled && before.status != Status::Disabled;
    if disabled || after.email != before.email {
        // Links already sent (to the old address, or before disabling) stop working, and sessions
        // end: the account's owner may have changed.
        end_sessions(identity, &mut tx, id, now).await?;
        retire_links(&mut tx, id, now).await?;
    }
    let keys: Vec<&str> = ["email", "name", "status", "email_verified", "metadata"]
        .into_iter()
        .filter(|k| old[*k] != new[*k])
        .collect();
    let pick = |v: &Value| -> Value {
        keys.iter()
            .map(|k| ((*k).to_owned(), v[*k].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let event = match (before.status, after.status) {
        (s, Status::Disabled) if s != Status::Disabled => Event::UserDisabled,
        (Status::Disabled, s) if s != Status::Disabled => Event::UserEnabled,
        _ => Event::UserUpdated,
    };
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            event,
            Some(Target::user(id)),
            json!({ "before": pick(&old), "after": pick(&new) }),
        ),
        now,
        "Failed to commit a user change",
    )
    .await?;
    Ok(after)
}

async fn has_password(conn: &mut AnyConnection, user_id: &str) -> Result<bool> {
    let row = sqlx::query("select password_hash from end_user where user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await
        .context("Failed to read a user")?;
    Ok(row
        .try_get::<Option<String>, _>("password_hash")
        .context("end_user.password_hash")?
        .is_some())
}

/// Every unused one-time link of the user stops working.
async fn retire_links(tx: &mut Tx, user_id: &str, now: Timestamp) -> Result<()> {
    sqlx::query("update user_token set used_at = $1 where user_id = $2 and used_at is null")
        .bind(now.millis())
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .context("Failed to retire a user's links")
}

async fn end_sessions(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    now: Timestamp,
) -> Result<u64> {
    crate::logout::end_user_sessions(identity, tx, user_id, "user_changed", now).await
}

// ---- One-time links ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Reset,
    Invitation,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Reset => "reset",
            TokenKind::Invitation => "invitation",
        }
    }

    fn lifetime_secs(self) -> i64 {
        match self {
            TokenKind::Reset => RESET_SECS,
            TokenKind::Invitation => INVITATION_SECS,
        }
    }
}

/// A new single-use link token for `user`; earlier unused links of the same kind stop working.
async fn issue_token(
    tx: &mut Tx,
    user: &User,
    kind: TokenKind,
    app: &Application,
    now: Timestamp,
) -> Result<SecretString> {
    sqlx::query(
        "update user_token set used_at = $1 where user_id = $2 and kind = $3 and used_at is null",
    )
    .bind(now.millis())
    .bind(&user.id)
    .bind(kind.as_str())
    .execute(&mut **tx)
    .await
    .context("Failed to retire earlier links")?;
    let token = random_token();
    sqlx::query(
        "insert into user_token (user_token_id, user_id, kind, token_hash, application_id, created_at, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(&user.id)
    .bind(kind.as_str())
    .bind(token_hash(&token))
    .bind(&app.id)
    .bind(now.millis())
    .bind(now.plus_secs(kind.lifetime_secs()).millis())
    .execute(&mut **tx)
    .await
    .context("Failed to store a link token")?;
    Ok(SecretString::from(token))
}

fn invalid_link() -> Error {
    Error::invalid(
        "token",
        "invalid_link",
        "This link is invalid, expired or already used. Ask for a new one.",
    )
}

/// Marks a link used and returns its user and application. Unknown, used and expired links all
/// answer the same error. The update is conditional, so two uses racing each other cannot both win.
async fn consume_token(
    tx: &mut Tx,
    kind: TokenKind,
    token: &str,
    now: Timestamp,
) -> Result<(User, Application)> {
    let invalid = invalid_link;
    let row = sqlx::query(
        "select user_token_id, user_id, application_id from user_token \
         where token_hash = $1 and kind = $2 and used_at is null and expires_at > $3",
    )
    .bind(token_hash(token))
    .bind(kind.as_str())
    .bind(now.millis())
    .fetch_optional(&mut **tx)
    .await
    .context("Failed to read a link token")?
    .ok_or_else(invalid)?;
    let token_id: String = row.try_get("user_token_id").context("user_token.id")?;
    let used = sqlx::query(
        "update user_token set used_at = $1 where user_token_id = $2 and used_at is null",
    )
    .bind(now.millis())
    .bind(&token_id)
    .execute(&mut **tx)
    .await
    .context("Failed to use a link token")?;
    if used.rows_affected() != 1 {
        return Err(invalid());
    }
    let user_id: String = row.try_get("user_id").context("user_token.user_id")?;
    let app_id: Option<String> = row.try_get("application_id").context("user_token.app")?;
    let user = find(tx, &user_id).await?;
    let app = return_application(tx, app_id.as_deref()).await?;
    Ok((user, app))
}

/// What a link is for, before it is used (to show the right page).
pub async fn peek_link(
    identity: &Identity,
    token: &str,
    now: Timestamp,
) -> Result<Option<Application>> {
    let row = sqlx::query(
        "select application_id from user_token where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now.millis())
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read a link token")?;
    let Some(row) = row else { return Ok(None) };
    let app_id: Option<String> = row.try_get("application_id").context("user_token.app")?;
    let mut conn = identity.db().connection().await?;
    return_application(&mut conn, app_id.as_deref())
        .await
        .map(Some)
}

/// Forgot password: when the email belongs to an active user, mails a reset link that returns to
/// `app`. The answer is the same whether or not it does, so the page cannot be used to find accounts.
pub async fn request_password_reset(
    identity: &Identity,
    meta: &RequestMeta,
    app: &Application,
    email: &str,
    public_url: &str,
    now: Timestamp,
) -> Result<()> {
    let Ok(parsed) = Email::parse(email) else {
        return Err(Error::invalid(
            "email",
            "invalid_email",
            "Enter a valid email address.",
        ));
    };
    // Requests count per address and per client (5 and 50 per window): no mail-bombing, and no
    // endless cancelling of someone's valid link. Over the limit, the answer stays the same.
    let key = format!("reset:{}", parsed.as_str());
    if crate::sessions::begin_attempt(identity, meta, &key, "rip:", now)
        .await?
        .is_none()
    {
        tracing::warn!("password reset requests over the limit; not sending");
        return Ok(());
    }
    queue_reset(identity, None, meta, app, email, public_url, now).await
}

/// Mails a reset link; the audit actor is `by` (staff sending it) or else the user asking.
async fn queue_reset(
    identity: &Identity,
    by: Option<&Actor>,
    meta: &RequestMeta,
    app: &Application,
    email: &str,
    public_url: &str,
    now: Timestamp,
) -> Result<()> {
    let Ok(email) = Email::parse(email) else {
        return Err(Error::invalid(
            "email",
            "invalid_email",
            "Enter a valid email address.",
        ));
    };
    let mut tx = identity.db().begin().await?;
    let found = find_by_email(&mut tx, &email).await?;
    let Some((user, _)) = found.filter(|(u, _)| u.status == Status::Active) else {
        return Ok(());
    };
    let token = issue_token(&mut tx, &user, TokenKind::Reset, app, now).await?;
    let link = format!(
        "{}/u/reset-password?token={}",
        public_url.trim_end_matches('/'),
        token.expose_secret()
    );
    mail::queue(
        &mut tx,
        &user.email,
        &format!("Reset your {} password", app.name),
        &format!(
            "Someone asked to reset the password of this account for {}. If it was you, choose a new password here (the link works once, for 30 minutes):\n\n{link}\n\nIf it was not you, ignore this message.\n",
            app.name
        ),
        now,
    )
    .await?;
    audit::commit_with(
        tx,
        &by.cloned().unwrap_or_else(|| user.actor()),
        meta,
        Entry::success(
            Event::UserPasswordResetRequested,
            Some(Target::user(&user.id)),
            json!({ "application_id": app.id }),
        ),
        now,
        "Failed to commit a reset request",
    )
    .await
}

/// Sets a new password through a reset link; ends the user's sessions. Returns the application the
/// reset started from.
pub async fn reset_password(
    identity: &Identity,
    meta: &RequestMeta,
    token: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<(User, Application)> {
    finish_link(identity, meta, TokenKind::Reset, token, password, now).await
}

/// Accepts an invitation: sets the password, activates the user, confirms the email (the link
/// reached it).
pub async fn accept_invitation(
    identity: &Identity,
    meta: &RequestMeta,
    token: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<(User, Application)> {
    finish_link(identity, meta, TokenKind::Invitation, token, password, now).await
}

/// Uses a one-time link to set a password. A user disabled since the link was sent gets the same
/// answer as for a used link (and stays disabled).
async fn finish_link(
    identity: &Identity,
    meta: &RequestMeta,
    kind: TokenKind,
    token: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<(User, Application)> {
    password::check_policy(&password)?;
    let hash = identity.hasher().hash(password).await?;
    let mut tx = identity.db().begin().await?;
    let (user, app) = consume_token(&mut tx, kind, token, now).await?;
    if user.status == Status::Disabled {
        return Err(invalid_link());
    }
    set_password(&mut tx, &user.id, &hash, Status::Active, now).await?;
    let event = match kind {
        TokenKind::Reset => {
            end_sessions(identity, &mut tx, &user.id, now).await?;
            Event::UserPasswordReset
        }
        TokenKind::Invitation => Event::UserInvitationAccepted,
    };
    audit::commit_with(
        tx,
        &user.actor(),
        meta,
        Entry::success(
            event,
            Some(Target::user(&user.id)),
            json!({ "application_id": app.id }),
        ),
        now,
        "Failed to commit a one-time link",
    )
    .await?;
    Ok((user, app))
}

async fn set_password(
    tx: &mut Tx,
    user_id: &str,
    hash: &SecretString,
    status: Status,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "update end_user set password_hash = $1, status = $2, email_verified = 1, updated_at = $3 where user_id = $4",
    )
    .bind(hash.expose_secret())
    .bind(status.as_str())
    .bind(now.millis())
    .bind(user_id)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .context("Failed to set a password")
}

// ---- Hosted sign-in and sign-up ----

/// A user's new sign-in session: the token goes into a cookie; only its hash is stored.
pub struct NewUserSession {
    pub session_id: String,
    pub token: SecretString,
    pub user: User,
    pub expires_at: Timestamp,
}

/// The application a hosted page was started from, by client ID. Unknown and disabled applications
/// get nothing.
pub async fn hosted_application(identity: &Identity, client_id: &str) -> Result<Application> {
    let mut conn = identity.db().connection().await?;
    let app = match client_id.trim() {
        "" => applications::find_default(&mut conn).await?,
        cid => applications::find_by_client_id(&mut conn, cid).await?,
    };
    if app.status != AppStatus::Active {
        return Err(Error::conflict(
            "application_disabled",
            "This application is not available right now.",
        ));
    }
    Ok(app)
}

fn throttle_key(email: &str) -> String {
    format!("user:{email}")
}

/// Signs a user in to `app`. Unknown email, wrong password, invited and disabled accounts all answer
/// [`Error::InvalidCredentials`] after the same argon2 work; failures count per account and per IP.
pub async fn sign_in(
    identity: &Identity,
    meta: &RequestMeta,
    app: &Application,
    email: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<NewUserSession> {
    let normalized = email.trim().to_lowercase();
    let key = throttle_key(&normalized);
    let Some(attempt) = crate::sessions::begin_attempt(identity, meta, &key, "uip:", now).await?
    else {
        record_failure(identity, meta, app, &key, None, "throttled", now).await?;
        return Err(Error::Throttled {
            retry_after_secs: identity.settings().throttle_window_secs,
        });
    };
    let found = match Email::parse(&normalized) {
        Ok(email) => find_by_email(&mut *identity.db().connection().await?, &email).await?,
        Err(_) => None,
    };
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, None),
    };
    let ok = identity.hasher().verify(password, hash).await?;
    let user = match user {
        Some(u) if ok && u.status == Status::Active => u,
        other => {
            let reason = match &other {
                None => "unknown_email",
                Some(u) if u.status != Status::Active => "account_not_active",
                Some(_) => "wrong_password",
            };
            record_failure(identity, meta, app, &key, other.as_ref(), reason, now).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    let mut tx = identity.db().begin().await?;
    attempt.succeeded(&mut tx).await?;
    let session = start_session(&mut tx, meta, app, &user, now).await?;
    audit::commit_with(
        tx,
        &user.actor(),
        meta,
        Entry::success(
            Event::UserSignedIn,
            Some(Target::user(&user.id)),
            json!({ "application_id": app.id, "session_id": session.session_id, "method": "password" }),
        ),
        now,
        "Failed to commit a user sign-in",
    )
    .await?;
    Ok(session)
}

async fn start_session(
    tx: &mut Tx,
    meta: &RequestMeta,
    app: &Application,
    user: &User,
    now: Timestamp,
) -> Result<NewUserSession> {
    let token = random_token();
    let session_id = new_id();
    let policy = crate::settings::session_policy_on(tx).await?;
    let max_age = crate::session_policy::resolve(app.app_type, &policy, &app.session_policy)
        .session_max_age_secs
        .value;
    let expires_at = now.plus_secs(max_age);
    sqlx::query(
        "insert into user_session (user_session_id, user_id, application_id, token_hash, ip, user_agent, \
         created_at, last_seen_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&session_id)
    .bind(&user.id)
    .bind(&app.id)
    .bind(token_hash(&token))
    .bind(&meta.ip)
    .bind(&meta.user_agent)
    .bind(now.millis())
    .bind(now.millis())
    .bind(expires_at.millis())
    .execute(&mut **tx)
    .await
    .context("Failed to store a user session")?;
    sqlx::query("update end_user set last_sign_in_at = $1 where user_id = $2")
        .bind(now.millis())
        .bind(&user.id)
        .execute(&mut **tx)
        .await
        .context("Failed to record a sign-in")?;
    Ok(NewUserSession {
        session_id,
        token: SecretString::from(token),
        user: user.clone(),
        expires_at,
    })
}

#[allow(clippy::too_many_arguments)] // the failure's full context, all of it audited
async fn record_failure(
    identity: &Identity,
    meta: &RequestMeta,
    app: &Application,
    key: &str,
    user: Option<&User>,
    reason: &str,
    now: Timestamp,
) -> Result<()> {
    let tx = identity.db().begin().await?;
    audit::commit_with(
        tx,
        &Actor::Anonymous,
        meta,
        Entry::failure(
            Event::UserSignInFailed,
            user.map(|u| Target::user(&u.id)),
            json!({ "email": key.trim_start_matches("user:"), "reason": reason, "application_id": app.id }),
        ),
        now,
        "Failed to commit a failed sign-in",
    )
    .await
}

/// Self sign-up on the hosted pages, where the application allows it. Signs the new user in.
pub async fn sign_up(
    identity: &Identity,
    meta: &RequestMeta,
    app: &Application,
    email: &str,
    name: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<NewUserSession> {
    if !app.allow_sign_up {
        return Err(Error::conflict(
            "sign_up_disabled",
            "This application does not allow signing up. Ask for an invitation.",
        ));
    }
    let email = Email::parse(email)?;
    let name = parse_name(name)?;
    password::check_policy(&password)?;
    let hash = identity.hasher().hash(password).await?;
    let user = User {
        id: new_id(),
        email,
        email_verified: false,
        name,
        status: Status::Active,
        metadata: json!({}),
        created_at: now,
        updated_at: now,
        last_sign_in_at: None,
    };
    let mut tx = identity.db().begin().await?;
    insert(&mut tx, &user, Some(&hash)).await?;
    let session = start_session(&mut tx, meta, app, &user, now).await?;
    audit::commit_with(
        tx,
        &user.actor(),
        meta,
        Entry::success(
            Event::UserSignedUp,
            Some(Target::user(&user.id)),
            json!({ "after": summary(&user), "application_id": app.id, "session_id": session.session_id }),
        ),
        now,
        "Failed to commit a sign-up",
    )
    .await?;
    Ok(session)
}

/// The user and application of a live hosted-pages session cookie.
pub async fn session_user(
    identity: &Identity,
    token: &str,
    now: Timestamp,
) -> Result<Option<(String, User)>> {
    let row = sqlx::query(
        "select user_session_id, user_id from user_session where token_hash = $1 and revoked_at is null \
         and expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now.millis())
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read a user session")?;
    let Some(row) = row else { return Ok(None) };
    let session_id: String = row.try_get("user_session_id").context("user_session.id")?;
    let user_id: String = row.try_get("user_id").context("user_session.user_id")?;
    let user = find(&mut *identity.db().connection().await?, &user_id).await?;
    Ok((user.status == Status::Active).then_some((session_id, user)))
}

/// Signs out of the hosted pages: ends the session of this cookie.
pub async fn sign_out(
    identity: &Identity,
    meta: &RequestMeta,
    token: &str,
    now: Timestamp,
) -> Result<()> {
    let Some((session_id, user)) = session_user(identity, token, now).await? else {
        return Ok(());
    };
    let mut tx = identity.db().begin().await?;
    crate::logout::end_sessions(
        identity,
        &mut tx,
        std::slice::from_ref(&session_id),
        "signed_out",
        now,
    )
    .await?;
    audit::commit_with(
        tx,
        &user.actor(),
        meta,
        Entry::success(
            Event::UserSignedOut,
            Some(Target::user(&user.id)),
            json!({ "session_id": session_id }),
        ),
        now,
        "Failed to commit a sign-out",
    )
    .await
}

/// A user's sign-in session as staff see it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub application_id: Option<String>,
    pub application_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// The applications this session signed the user in to (single sign-on), by name.
    pub applications: Vec<String>,
}

/// The user's live sessions, newest first; an application key sees only those its application
/// started or took part in.
pub async fn sessions(
    identity: &Identity,
    principal: &Principal,
    user_id: &str,
    now: Timestamp,
) -> Result<Vec<SessionInfo>> {
    principal.authorize_pool(Action::ViewUsers)?;
    let rows = sqlx::query(
        "select s.user_session_id, s.application_id, a.name as application_name, s.ip, s.user_agent, \
         s.created_at, s.last_seen_at, s.expires_at from user_session s \
         left join application a on a.application_id = s.application_id \
         where s.user_id = $1 and s.revoked_at is null and s.expires_at > $2 \
         and s.impersonation_id is null \
         and ($3 = '' or s.application_id = $3 or exists (select 1 from session_application p \
         where p.user_session_id = s.user_session_id and p.application_id = $3)) order by s.created_at desc",
    )
    .bind(user_id)
    .bind(now.millis())
    .bind(principal.application_scope().unwrap_or(""))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list user sessions")?;
    let mut used: HashMap<String, Vec<String>> = HashMap::new();
    for r in sqlx::query(
        "select p.user_session_id, a.name from session_application p \
         join application a on a.application_id = p.application_id \
         join user_session s on s.user_session_id = p.user_session_id \
         where s.user_id = $1 and s.revoked_at is null order by p.first_at",
    )
    .bind(user_id)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list sessions' applications")?
    {
        used.entry(
            r.try_get("user_session_id")
                .context("session_application.id")?,
        )
        .or_default()
        .push(r.try_get("name").context("application.name")?);
    }
    rows.iter()
        .map(|r| {
            let ms = |c: &'static str| -> Result<Timestamp> {
                Ok(Timestamp::from_millis(
                    r.try_get(c).context("user_session time")?,
                ))
            };
            Ok(SessionInfo {
                id: r.try_get("user_session_id").context("user_session.id")?,
                application_id: r.try_get("application_id").context("user_session.app")?,
                application_name: r.try_get("application_name").context("application.name")?,
                ip: r.try_get("ip").context("user_session.ip")?,
                user_agent: r.try_get("user_agent").context("user_session.ua")?,
                created_at: ms("created_at")?,
                last_seen_at: ms("last_seen_at")?,
                expires_at: ms("expires_at")?,
                applications: used
                    .remove(
                        &r.try_get::<String, _>("user_session_id")
                            .context("user_session.id")?,
                    )
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A live sign-in session in which an application took part, as its page lists them.
#[derive(Clone, Debug, Serialize)]
pub struct ApplicationSession {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The newest live sessions that started in `application_id` or signed in to it (single sign-on).
pub async fn application_sessions(
    identity: &Identity,
    principal: &Principal,
    application_id: &str,
    limit: i64,
    now: Timestamp,
) -> Result<Vec<ApplicationSession>> {
    principal.authorize_in(Action::ViewUsers, application_id)?;
    let rows = sqlx::query(
        "select s.user_session_id, s.user_id, u.email, s.ip, s.user_agent, s.created_at, \
         s.last_seen_at, s.expires_at from user_session s join end_user u on u.user_id = s.user_id \
         where s.revoked_at is null and s.expires_at > $2 and s.impersonation_id is null \
         and (s.application_id = $1 or exists \
         (select 1 from session_application p where p.user_session_id = s.user_session_id \
         and p.application_id = $1)) order by s.created_at desc, s.user_session_id desc limit $3",
    )
    .bind(application_id)
    .bind(now.millis())
    .bind(limit.clamp(1, 500))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list an application's sessions")?;
    rows.iter()
        .map(|r| {
            let ms = |c: &'static str| -> Result<Timestamp> {
                Ok(Timestamp::from_millis(
                    r.try_get(c).context("user_session time")?,
                ))
            };
            Ok(ApplicationSession {
                id: r.try_get("user_session_id").context("user_session.id")?,
                user_id: r.try_get("user_id").context("user_session.user_id")?,
                email: r.try_get("email").context("end_user.email")?,
                ip: r.try_get("ip").context("user_session.ip")?,
                user_agent: r.try_get("user_agent").context("user_session.ua")?,
                created_at: ms("created_at")?,
                last_seen_at: ms("last_seen_at")?,
                expires_at: ms("expires_at")?,
            })
        })
        .collect()
}

/// Ends one of a user's sessions (staff with the right, or an app key with `sessions:revoke` for its
/// application's sessions).
pub async fn revoke_session(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    user_id: &str,
    session_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize_pool(Action::RevokeUserSessions)?;
    let mut tx = identity.db().begin().await?;
    // An application key may end only sessions its application started or took part in.
    let found = sqlx::query(
        "select s.user_session_id from user_session s where s.user_session_id = $1 and s.user_id = $2 \
         and s.revoked_at is null and ($3 = '' or s.application_id = $3 or exists (select 1 from \
         session_application p where p.user_session_id = s.user_session_id and p.application_id = $3))",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(principal.application_scope().unwrap_or(""))
    .fetch_optional(&mut *tx)
    .await
    .context("Failed to find a user session")?;
    if found.is_none() {
        return Err(Error::NotFound);
    }
    crate::logout::end_sessions(identity, &mut tx, &[session_id.to_owned()], "revoked", now)
        .await?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::UserSessionRevoked,
            Some(Target::user(user_id)),
            json!({ "session_id": session_id }),
        ),
        now,
        "Failed to commit a session revocation",
    )
    .await
}

/// Staff send a password-reset link that returns to `application_id` (audited as theirs).
pub async fn send_password_reset(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    user_id: &str,
    application_id: Option<&str>,
    public_url: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize_pool(Action::ManageUsers)?;
    let mut conn = identity.db().connection().await?;
    let user = find(&mut conn, user_id).await?;
    let app_id = principal.application_scope().or(application_id);
    let app = return_application(&mut conn, app_id).await?;
    drop(conn);
    if user.status != Status::Active {
        return Err(Error::conflict(
            "user_not_active",
            "Only active users can reset their password; invited users use their invitation.",
        ));
    }
    queue_reset(
        identity,
        Some(&principal.actor()),
        meta,
        &app,
        user.email.as_str(),
        public_url,
        now,
    )
    .await
}

/// Adds `count` synthetic active users, all with `password` (hashed once), audited like any other,
/// in batches of 1 000 per transaction. For benchmarks and demos (`portcullis seed users`).
pub async fn seed(
    identity: &Identity,
    count: usize,
    password: SecretString,
    now: Timestamp,
) -> Result<()> {
    const FIRST: [&str; 8] = [
        "ada", "alan", "grace", "edsger", "barbara", "donald", "frances", "ken",
    ];
    const LAST: [&str; 8] = [
        "lovelace", "turing", "hopper", "dijkstra", "liskov", "knuth", "allen", "thompson",
    ];
    let hash = identity.hasher().hash(password).await?;
    let tag = &new_id()[24..];
    let mut done = 0;
    while done < count {
        let mut tx = identity.db().begin().await?;
        for n in done..(done + 1000).min(count) {
            let (first, last) = (FIRST[n % 8], LAST[(n / 8) % 8]);
            let user = User {
                id: new_id(),
                email: Email::from_trusted(format!("{first}.{last}.{n:06}.{tag}@example.com")),
                email_verified: true,
                name: format!("{} {} {n}", capitalise(first), capitalise(last)),
                status: Status::Active,
                metadata: json!({}),
                created_at: now.plus_secs(n as i64 / 100),
                updated_at: now,
                last_sign_in_at: None,
            };
            insert(&mut tx, &user, Some(&hash)).await?;
            audit::append(
                &mut tx,
                &Actor::System,
                &RequestMeta::default(),
                Entry::success(
                    Event::UserCreated,
                    Some(Target::user(&user.id)),
                    json!({ "after": summary(&user), "seeded": true }),
                ),
                now,
            )
            .await?;
        }
        tx.commit().await.context("Failed to commit seeded users")?;
        done = (done + 1000).min(count);
    }
    Ok(())
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
