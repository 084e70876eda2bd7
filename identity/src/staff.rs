//! Staff accounts: the people who use the dashboard. Separate from the end-user pool.

use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Action, Principal, Role};
use crate::db::Tx;
use crate::email::Email;
use crate::error::{Context, Error, Result, is_unique_violation};
use crate::secret::{new_id, random_token, token_hash};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta, password};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
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

    fn from_db(s: &str) -> Self {
        match s {
            "invited" => Status::Invited,
            "active" => Status::Active,
            _ => Status::Disabled,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Staff {
    pub id: String,
    pub email: Email,
    pub role: Role,
    pub status: Status,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Staff {
    /// This member as the actor of an audit event.
    pub fn actor(&self) -> Actor {
        Actor::Staff {
            id: self.id.clone(),
            email: self.email.to_string(),
        }
    }
}

const COLUMNS: &str = "staff_id, email, role, status, created_at, updated_at";

fn decode(row: &sqlx::any::AnyRow) -> Result<Staff> {
    let role: String = row.try_get("role").context("staff.role")?;
    let status: String = row.try_get("status").context("staff.status")?;
    Ok(Staff {
        id: row.try_get("staff_id").context("staff.staff_id")?,
        email: Email::from_trusted(row.try_get("email").context("staff.email")?),
        role: Role::parse(&role).unwrap_or(Role::Auditor),
        status: Status::from_db(&status),
        created_at: Timestamp::from_millis(row.try_get("created_at").context("staff.created_at")?),
        updated_at: Timestamp::from_millis(row.try_get("updated_at").context("staff.updated_at")?),
    })
}

pub(crate) async fn find(tx: &mut Tx, staff_id: &str) -> Result<Staff> {
    let sql = format!("select {COLUMNS} from staff where staff_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(staff_id)
        .fetch_optional(&mut **tx)
        .await
        .context("Failed to read a staff member")?
        .ok_or(Error::NotFound)?;
    decode(&row)
}

/// A staff member with their password hash, for sign-in only. Not `Serialize`, hash not in `Debug`.
pub(crate) struct Credentials {
    pub staff: Staff,
    pub password_hash: Option<SecretString>,
}

pub(crate) async fn find_credentials(
    identity: &Identity,
    email: &Email,
) -> Result<Option<Credentials>> {
    let sql = format!("select {COLUMNS}, password_hash from staff where email = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(email.as_str())
        .fetch_optional(identity.db().pool())
        .await
        .context("Failed to look up a staff member")?;
    row.map(|row| {
        let hash: Option<String> = row
            .try_get("password_hash")
            .context("staff.password_hash")?;
        Ok(Credentials {
            staff: decode(&row)?,
            password_hash: hash.map(SecretString::from),
        })
    })
    .transpose()
}

pub async fn list(identity: &Identity, principal: &Principal) -> Result<Vec<Staff>> {
    principal.authorize(Action::ViewStaff)?;
    let sql = format!("select {COLUMNS} from staff order by email");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(identity.db().pool())
        .await
        .context("Failed to list staff")?;
    rows.iter().map(decode).collect()
}

pub async fn count(identity: &Identity) -> Result<i64> {
    sqlx::query("select count(*) as n from staff")
        .fetch_one(identity.db().pool())
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .context("Failed to count staff")
}

async fn insert(tx: &mut Tx, staff: &Staff, password_hash: Option<&SecretString>) -> Result<()> {
    sqlx::query(
        "insert into staff (staff_id, email, password_hash, role, status, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&staff.id)
    .bind(staff.email.as_str())
    .bind(password_hash.map(|h| h.expose_secret().to_owned()))
    .bind(staff.role.as_str())
    .bind(staff.status.as_str())
    .bind(staff.created_at.millis())
    .bind(staff.updated_at.millis())
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::invalid(
                "email",
                "email_taken",
                "A staff member with this email already exists.",
            )
        } else {
            Error::internal("Failed to store a staff member", e)
        }
    })
}

/// Creates an active staff member with a password. Used by the CLI to bootstrap the first owner.
pub async fn create(
    identity: &Identity,
    actor: &Actor,
    meta: &RequestMeta,
    email: &str,
    role: Role,
    password: SecretString,
    now: Timestamp,
) -> Result<Staff> {
    let email = Email::parse(email)?;
    password::check_policy(&password)?;
    let hash = identity.hasher().hash(password).await?;
    let staff = Staff {
        id: new_id(),
        email,
        role,
        status: Status::Active,
        created_at: now,
        updated_at: now,
    };
    let mut tx = identity.db().begin().await?;
    insert(&mut tx, &staff, Some(&hash)).await?;
    audit::commit_with(
        tx,
        actor,
        meta,
        Entry::success(
            Event::StaffCreated,
            Some(Target::staff(&staff.id)),
            json!({ "after": { "email": staff.email, "role": staff.role, "status": staff.status } }),
        ),
        now,
        "Failed to commit a new staff member",
    )
    .await?;
    Ok(staff)
}

/// An invitation just created: the link token is returned once and stored only as a hash.
pub struct Invitation {
    pub staff: Staff,
    pub token: SecretString,
    pub expires_at: Timestamp,
}

/// Invites a staff member: the account exists as `invited` until they choose a password.
pub async fn invite(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    email: &str,
    role: &str,
    now: Timestamp,
) -> Result<Invitation> {
    principal.authorize(Action::ManageStaff)?;
    let email = Email::parse(email)?;
    let role = Role::parse(role)?;
    let staff = Staff {
        id: new_id(),
        email,
        role,
        status: Status::Invited,
        created_at: now,
        updated_at: now,
    };
    let token = random_token();
    let expires_at = now.plus_secs(identity.settings().invitation_secs);
    let mut tx = identity.db().begin().await?;
    insert(&mut tx, &staff, None).await?;
    sqlx::query(
        "insert into staff_invitation (staff_invitation_id, staff_id, token_hash, created_by, created_at, expires_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(&staff.id)
    .bind(token_hash(&token))
    .bind(principal.staff_id())
    .bind(now.millis())
    .bind(expires_at.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to store an invitation")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::StaffInvited,
            Some(Target::staff(&staff.id)),
            json!({ "after": { "email": staff.email, "role": staff.role, "status": staff.status },
                    "expires_at": expires_at.rfc3339() }),
        ),
        now,
        "Failed to commit an invitation",
    )
    .await?;
    Ok(Invitation {
        staff,
        token: SecretString::from(token),
        expires_at,
    })
}

/// The invitee chooses a password; the link then stops working.
pub async fn accept_invitation(
    identity: &Identity,
    meta: &RequestMeta,
    token: &str,
    password: SecretString,
    now: Timestamp,
) -> Result<Staff> {
    let invalid = || {
        Error::invalid(
            "token",
            "invitation_invalid",
            "This invitation link is invalid, used or expired. Ask an owner for a new one.",
        )
    };
    password::check_policy(&password)?;
    let hash = identity.hasher().hash(password).await?;
    let mut tx = identity.db().begin().await?;
    let row = sqlx::query(
        "select staff_invitation_id, staff_id from staff_invitation \
         where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now.millis())
    .fetch_optional(&mut *tx)
    .await
    .context("Failed to read an invitation")?
    .ok_or_else(invalid)?;
    let invitation_id: String = row
        .try_get("staff_invitation_id")
        .context("invitation id")?;
    let staff_id: String = row.try_get("staff_id").context("invitation staff id")?;
    let staff = find(&mut tx, &staff_id).await?;
    if staff.status != Status::Invited {
        return Err(invalid());
    }
    sqlx::query("update staff_invitation set used_at = $1 where staff_invitation_id = $2")
        .bind(now.millis())
        .bind(&invitation_id)
        .execute(&mut *tx)
        .await
        .context("Failed to use an invitation")?;
    sqlx::query("update staff set password_hash = $1, status = 'active', updated_at = $2 where staff_id = $3")
        .bind(hash.expose_secret())
        .bind(now.millis())
        .bind(&staff.id)
        .execute(&mut *tx)
        .await
        .context("Failed to activate a staff member")?;
    audit::commit_with(
        tx,
        &staff.actor(),
        meta,
        Entry::success(
            Event::StaffInvitationAccepted,
            Some(Target::staff(&staff.id)),
            json!({ "before": { "status": "invited" }, "after": { "status": "active" } }),
        ),
        now,
        "Failed to commit an accepted invitation",
    )
    .await?;
    Ok(Staff {
        status: Status::Active,
        updated_at: now,
        ..staff
    })
}

/// Locks the active owners' rows, then (after the caller's change) checks that one remains. Taking the
/// lock first means two owners demoting each other at once cannot both succeed.
async fn lock_owners(tx: &mut Tx) -> Result<()> {
    sqlx::query(
        "update staff set updated_at = updated_at where role = 'owner' and status = 'active'",
    )
    .execute(&mut **tx)
    .await
    .context("Failed to lock owner rows")?;
    Ok(())
}

async fn ensure_an_owner_remains(tx: &mut Tx) -> Result<()> {
    let n: i64 =
        sqlx::query("select count(*) as n from staff where role = 'owner' and status = 'active'")
            .fetch_one(&mut **tx)
            .await
            .and_then(|r| r.try_get("n"))
            .context("Failed to count owners")?;
    if n == 0 {
        return Err(Error::conflict(
            "last_owner",
            "This is the last active owner. Make someone else an owner first.",
        ));
    }
    Ok(())
}

/// A change to a staff member; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub role: Option<Role>,
    /// `Some(false)` disables (and ends their sessions), `Some(true)` re-enables.
    pub enabled: Option<bool>,
}

/// Applies `change` in one transaction: either all of it happens, with its audit events, or none.
/// The last active owner can be neither demoted nor disabled.
pub async fn update(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    staff_id: &str,
    change: Change,
    now: Timestamp,
) -> Result<Staff> {
    principal.authorize(Action::ManageStaff)?;
    let mut tx = identity.db().begin().await?;
    lock_owners(&mut tx).await?;
    let before = find(&mut tx, staff_id).await?;
    let mut after = before.clone();
    let mut events = Vec::new();

    if let Some(role) = change.role.filter(|r| *r != before.role) {
        after.role = role;
        events.push(Entry::success(
            Event::StaffRoleChanged,
            Some(Target::staff(staff_id)),
            json!({ "before": { "role": before.role }, "after": { "role": role } }),
        ));
    }
    let status = match (change.enabled, before.status) {
        (Some(false), Status::Active | Status::Invited) => Some(Status::Disabled),
        // An invited member never chose a password; re-enabling returns them to `invited`.
        (Some(true), Status::Disabled) => Some(if has_password(&mut tx, staff_id).await? {
            Status::Active
        } else {
            Status::Invited
        }),
        _ => None,
    };
    if let Some(status) = status {
        after.status = status;
        let event = if status == Status::Disabled {
            Event::StaffDisabled
        } else {
            Event::StaffEnabled
        };
        events.push(Entry::success(
            event,
            Some(Target::staff(staff_id)),
            json!({ "before": { "status": before.status }, "after": { "status": status } }),
        ));
    }
    if events.is_empty() {
        return Ok(before);
    }
    after.updated_at = now;

    sqlx::query("update staff set role = $1, status = $2, updated_at = $3 where staff_id = $4")
        .bind(after.role.as_str())
        .bind(after.status.as_str())
        .bind(now.millis())
        .bind(staff_id)
        .execute(&mut *tx)
        .await
        .context("Failed to update a staff member")?;
    if before.role == Role::Owner && before.status == Status::Active {
        ensure_an_owner_remains(&mut tx).await?;
    }
    if after.status == Status::Disabled {
        sqlx::query(
            "update staff_session set revoked_at = $1 where staff_id = $2 and revoked_at is null",
        )
        .bind(now.millis())
        .bind(staff_id)
        .execute(&mut *tx)
        .await
        .context("Failed to end a disabled member's sessions")?;
    }
    let actor = principal.actor();
    for entry in events {
        audit::append(&mut tx, &actor, meta, entry, now).await?;
    }
    tx.commit()
        .await
        .context("Failed to commit a staff change")?;
    Ok(after)
}

async fn has_password(tx: &mut Tx, staff_id: &str) -> Result<bool> {
    let hash: Option<String> = sqlx::query("select password_hash from staff where staff_id = $1")
        .bind(staff_id)
        .fetch_one(&mut **tx)
        .await
        .and_then(|r| r.try_get("password_hash"))
        .context("Failed to read a staff member")?;
    Ok(hash.is_some())
}
