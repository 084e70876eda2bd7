//! Audited impersonation: a support person signs in as an end user inside one application, with a
//! reason, a time limit and (per policy) another person's approval. See docs/design/impersonation.md.
//!
//! An impersonation runs in its own sign-in session (a `user_session` row that names it), reached
//! only through the `pc_imp` cookie of the browser that started it and only for its application:
//! the authorization endpoint issues codes from it without a prompt, and every token issued from it
//! carries RFC 8693 `act` (the staff member) and an `impersonation` claim (id, mode, end). Nothing
//! issued under it outlives `ends_at`. Ending it (by the support person, a supervisor, or at
//! expiry) revokes every token, ends the session with back-channel logout, and may email the user.
//! Every step is an audit event whose target is the impersonation, so filtering the log by its id
//! tells the whole story.

use crate::Identity;
use crate::RequestMeta;
use crate::applications::AppType;
use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::db::Tx;
use crate::email::Email;
use crate::error::{Context, Error, Result};
use crate::secret::{new_id, random_token, token_hash};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

/// The longest impersonation any policy allows.
pub const MAX_DURATION_SECS: i64 = 8 * 60 * 60;
/// The shortest one can ask for.
pub const MIN_DURATION_SECS: i64 = 60;
/// The default policy maximum.
pub const DEFAULT_DURATION_SECS: i64 = 60 * 60;
/// A request not decided (or, once approved, not started) within this long expires.
pub const DECISION_WINDOW_SECS: i64 = 30 * 60;
/// The shortest acceptable reason, in characters.
pub const MIN_REASON_CHARS: usize = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The application may let the support person do what the user can.
    Full,
    /// The application should refuse changes (the claim says so; the application enforces it).
    ReadOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::ReadOnly => "read_only",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        match input.trim() {
            "full" => Ok(Mode::Full),
            "read_only" => Ok(Mode::ReadOnly),
            _ => Err(Error::invalid(
                "mode",
                "invalid_mode",
                "Mode must be full or read_only.",
            )),
        }
    }
}

/// An application's impersonation policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub enabled: bool,
    pub max_duration_secs: i64,
    pub require_approval: bool,
    pub mode: Mode,
    pub notify_user: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enabled: false,
            max_duration_secs: DEFAULT_DURATION_SECS,
            require_approval: false,
            mode: Mode::Full,
            notify_user: false,
        }
    }
}

impl Policy {
    fn validate(&self) -> Result<()> {
        if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&self.max_duration_secs) {
            return Err(Error::invalid(
                "max_duration_secs",
                "invalid_duration",
                "The maximum duration must be between 1 minute and 8 hours.",
            ));
        }
        Ok(())
    }
}

async fn read_policy(conn: &mut AnyConnection, application_id: &str) -> Result<Policy> {
    let row = sqlx::query(
        "select enabled, max_duration_secs, require_approval, mode, notify_user \
         from impersonation_policy where application_id = $1",
    )
    .bind(application_id)
    .fetch_optional(conn)
    .await
    .context("Failed to read an impersonation policy")?;
    let Some(r) = row else {
        return Ok(Policy::default());
    };
    let flag = |c: &'static str| -> Result<bool> {
        Ok(r.try_get::<i64, _>(c)
            .context("impersonation_policy flag")?
            == 1)
    };
    Ok(Policy {
        enabled: flag("enabled")?,
        max_duration_secs: r
            .try_get("max_duration_secs")
            .context("impersonation_policy.max_duration_secs")?,
        require_approval: flag("require_approval")?,
        mode: Mode::parse(
            &r.try_get::<String, _>("mode")
                .context("impersonation_policy.mode")?,
        )?,
        notify_user: flag("notify_user")?,
    })
}

/// The application's policy (staff who can see the application).
pub async fn policy(
    identity: &Identity,
    principal: &Principal,
    application_id: &str,
) -> Result<Policy> {
    principal.authorize(Action::ViewApplications)?;
    let mut conn = identity.db().connection().await?;
    crate::applications::find(&mut conn, application_id).await?;
    read_policy(&mut conn, application_id).await
}

/// Replaces the application's policy (operators and owners), audited with before and after.
pub async fn set_policy(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    new: Policy,
    now: Timestamp,
) -> Result<Policy> {
    principal.authorize(Action::ManageImpersonationPolicy)?;
    new.validate()?;
    let mut tx = identity.db().begin().await?;
    let app = crate::applications::find(&mut tx, application_id).await?;
    if new.enabled && app.app_type == AppType::M2m {
        return Err(Error::invalid(
            "enabled",
            "m2m_application",
            "Machine-to-machine applications have no users to impersonate.",
        ));
    }
    let before = read_policy(&mut tx, application_id).await?;
    sqlx::query(
        "insert into impersonation_policy (application_id, enabled, max_duration_secs, require_approval, \
         mode, notify_user, updated_at) values ($1, $2, $3, $4, $5, $6, $7) \
         on conflict (application_id) do update set enabled = excluded.enabled, \
         max_duration_secs = excluded.max_duration_secs, require_approval = excluded.require_approval, \
         mode = excluded.mode, notify_user = excluded.notify_user, updated_at = excluded.updated_at",
    )
    .bind(application_id)
    .bind(i64::from(new.enabled))
    .bind(new.max_duration_secs)
    .bind(i64::from(new.require_approval))
    .bind(new.mode.as_str())
    .bind(i64::from(new.notify_user))
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to save an impersonation policy")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ImpersonationPolicyUpdated,
            Some(Target::application(application_id)),
            json!({ "before": before, "after": new }),
        ),
        now,
        "Failed to commit an impersonation policy",
    )
    .await?;
    Ok(new)
}

/// A staff member who may impersonate in an application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub staff_id: String,
    pub email: String,
    pub role: String,
}

pub async fn assignments(
    identity: &Identity,
    principal: &Principal,
    application_id: &str,
) -> Result<Vec<Assignment>> {
    principal.authorize(Action::ViewApplications)?;
    let rows = sqlx::query(
        "select s.staff_id, s.email, s.role from impersonation_assignment a \
         join staff s on s.staff_id = a.staff_id where a.application_id = $1 order by s.email",
    )
    .bind(application_id)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list impersonation assignments")?;
    rows.iter()
        .map(|r| {
            Ok(Assignment {
                staff_id: r.try_get("staff_id").context("staff.staff_id")?,
                email: r.try_get("email").context("staff.email")?,
                role: r.try_get("role").context("staff.role")?,
            })
        })
        .collect()
}

/// Lets `staff_id` impersonate in the application (owners). Auditors can never be assigned.
pub async fn assign(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    staff_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize(Action::AssignImpersonators)?;
    let mut tx = identity.db().begin().await?;
    let app = crate::applications::find(&mut tx, application_id).await?;
    if app.app_type == AppType::M2m {
        return Err(Error::invalid(
            "application_id",
            "m2m_application",
            "Machine-to-machine applications have no users to impersonate.",
        ));
    }
    let member = crate::staff::find(&mut tx, staff_id)
        .await
        .map_err(|e| match e {
            Error::NotFound => {
                Error::invalid("staff_id", "unknown_staff", "Choose a staff member.")
            }
            e => e,
        })?;
    if !crate::authz::allows(member.role, Action::Impersonate) {
        return Err(Error::invalid(
            "staff_id",
            "role_cannot_impersonate",
            "Auditors can never impersonate.",
        ));
    }
    let added = sqlx::query(
        "insert into impersonation_assignment (application_id, staff_id, created_at) values ($1, $2, $3) \
         on conflict do nothing",
    )
    .bind(application_id)
    .bind(staff_id)
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to assign an impersonator")?;
    if added.rows_affected() == 0 {
        return Ok(());
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ImpersonationAssigned,
            Some(Target::application(application_id)),
            json!({ "staff_id": staff_id, "staff_email": member.email.to_string() }),
        ),
        now,
        "Failed to commit an impersonation assignment",
    )
    .await
}

pub async fn unassign(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    staff_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize(Action::AssignImpersonators)?;
    let mut tx = identity.db().begin().await?;
    let removed = sqlx::query(
        "delete from impersonation_assignment where application_id = $1 and staff_id = $2",
    )
    .bind(application_id)
    .bind(staff_id)
    .execute(&mut *tx)
    .await
    .context("Failed to remove an impersonation assignment")?;
    if removed.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ImpersonationUnassigned,
            Some(Target::application(application_id)),
            json!({ "staff_id": staff_id }),
        ),
        now,
        "Failed to commit an impersonation assignment",
    )
    .await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
    Active,
    Ended,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Approved,
        Status::Denied,
        Status::Expired,
        Status::Active,
        Status::Ended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Active => "active",
            Status::Ended => "ended",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

/// One impersonation, from request to end.
#[derive(Clone, Debug, Serialize)]
pub struct Impersonation {
    pub id: String,
    pub application_id: String,
    pub application_name: String,
    pub user_id: String,
    pub user_email: String,
    pub staff_id: String,
    pub staff_email: String,
    pub reason: String,
    pub ticket: Option<String>,
    pub mode: Mode,
    pub duration_secs: i64,
    pub notify_user: bool,
    pub status: Status,
    pub requested_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub decision_comment: Option<String>,
    pub started_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
    /// The application's initiate-login URI, where a started impersonation opens the application.
    pub initiate_login_uri: Option<String>,
}

impl Impersonation {
    /// The initiate-login URI with `iss` and `login_hint` (OpenID Connect third-party initiated
    /// login), when the application has one.
    pub fn launch_url(&self, issuer: &str) -> Option<String> {
        self.initiate_login_uri.as_deref().map(|uri| {
            crate::oauth::redirect_with(uri, &[("iss", issuer), ("login_hint", &self.user_email)])
        })
    }

    /// The fields every audit event of this impersonation carries, plus `extra`.
    fn detail(&self, extra: Value) -> Value {
        let mut d = json!({
            "impersonation_id": self.id, "staff_id": self.staff_id, "staff_email": self.staff_email,
            "user_id": self.user_id, "user_email": self.user_email,
            "application_id": self.application_id, "application_name": self.application_name,
            "reason": self.reason, "ticket": self.ticket, "mode": self.mode.as_str(),
        });
        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(extra.clone());
        }
        d
    }
}

const SELECT: &str = "select i.impersonation_id, i.application_id, a.name as application_name, i.user_id, \
     u.email as user_email, i.staff_id, i.staff_email, i.reason, i.ticket, i.mode, i.duration_secs, \
     i.notify_user, i.status, i.requested_at, i.decided_by, i.decided_at, i.decision_comment, \
     i.started_at, i.ends_at, i.ended_at, i.ended_by, i.end_reason, a.initiate_login_uri \
     from impersonation i \
     join application a on a.application_id = i.application_id \
     join end_user u on u.user_id = i.user_id";

fn decode(r: &sqlx::any::AnyRow) -> Result<Impersonation> {
    let at = |c: &'static str| -> Result<Option<Timestamp>> {
        Ok(r.try_get::<Option<i64>, _>(c)
            .context("impersonation time")?
            .map(Timestamp::from_millis))
    };
    let status: String = r.try_get("status").context("impersonation.status")?;
    Ok(Impersonation {
        id: r.try_get("impersonation_id").context("impersonation.id")?,
        application_id: r.try_get("application_id").context("impersonation.app")?,
        application_name: r.try_get("application_name").context("application.name")?,
        user_id: r.try_get("user_id").context("impersonation.user_id")?,
        user_email: r.try_get("user_email").context("end_user.email")?,
        staff_id: r.try_get("staff_id").context("impersonation.staff_id")?,
        staff_email: r
            .try_get("staff_email")
            .context("impersonation.staff_email")?,
        reason: r.try_get("reason").context("impersonation.reason")?,
        ticket: r.try_get("ticket").context("impersonation.ticket")?,
        mode: Mode::parse(
            &r.try_get::<String, _>("mode")
                .context("impersonation.mode")?,
        )?,
        duration_secs: r
            .try_get("duration_secs")
            .context("impersonation.duration")?,
        notify_user: r
            .try_get::<i64, _>("notify_user")
            .context("impersonation.notify")?
            == 1,
        status: Status::parse(&status).ok_or_else(|| {
            Error::internal(
                "impersonation.status",
                std::io::Error::other(format!("unknown status {status}")),
            )
        })?,
        requested_at: Timestamp::from_millis(
            r.try_get("requested_at")
                .context("impersonation.requested_at")?,
        ),
        decided_by: r
            .try_get("decided_by")
            .context("impersonation.decided_by")?,
        decided_at: at("decided_at")?,
        decision_comment: r
            .try_get("decision_comment")
            .context("impersonation.decision_comment")?,
        started_at: at("started_at")?,
        ends_at: at("ends_at")?,
        ended_at: at("ended_at")?,
        ended_by: r.try_get("ended_by").context("impersonation.ended_by")?,
        end_reason: r
            .try_get("end_reason")
            .context("impersonation.end_reason")?,
        initiate_login_uri: r
            .try_get("initiate_login_uri")
            .context("application.initiate_login_uri")?,
    })
}

async fn find(conn: &mut AnyConnection, id: &str) -> Result<Impersonation> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} where i.impersonation_id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .context("Failed to read an impersonation")?
    .ok_or(Error::NotFound)?;
    decode(&row)
}

/// The staff member behind a principal (impersonation is a person's act, never an API key's).
fn staff_of(principal: &Principal) -> Result<(&str, &str)> {
    match &principal.kind {
        crate::authz::PrincipalKind::Staff {
            staff_id, email, ..
        } => Ok((staff_id, email)),
        _ => Err(Error::Forbidden),
    }
}

fn refused(code: &'static str, message: &str) -> Error {
    Error::Conflict {
        code,
        message: message.to_owned(),
    }
}

/// Whether `staff_id` may impersonate in the application.
async fn is_assigned(tx: &mut Tx, application_id: &str, staff_id: &str) -> Result<bool> {
    sqlx::query(
        "select 1 as one from impersonation_assignment where application_id = $1 and staff_id = $2",
    )
    .bind(application_id)
    .bind(staff_id)
    .fetch_optional(&mut **tx)
    .await
    .map(|r| r.is_some())
    .context("Failed to read impersonation assignments")
}

/// What a support person asks for.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewRequest {
    /// The user's id or email address.
    pub user: String,
    pub application_id: String,
    pub duration_secs: i64,
    pub reason: String,
    pub ticket: Option<String>,
}

/// Asks to impersonate; with the application's approval rule off the request is approved at once
/// (and is started with [`start`]).
pub async fn request(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    input: NewRequest,
    now: Timestamp,
) -> Result<Impersonation> {
    principal.authorize(Action::Impersonate)?;
    let (staff_id, staff_email) = staff_of(principal)?;
    let reason = input.reason.trim().to_owned();
    if reason.chars().count() < MIN_REASON_CHARS {
        return Err(Error::invalid(
            "reason",
            "reason_too_short",
            "Give a reason of at least 15 characters.",
        ));
    }
    if reason.chars().count() > 1000 || reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            "reason",
            "invalid_reason",
            "The reason must be at most 1000 characters of text.",
        ));
    }
    let ticket = input
        .ticket
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if ticket
        .as_ref()
        .is_some_and(|t| t.chars().count() > 200 || t.chars().any(char::is_control))
    {
        return Err(Error::invalid(
            "ticket",
            "invalid_ticket",
            "The ticket reference must be at most 200 characters.",
        ));
    }
    let mut tx = identity.db().begin().await?;
    let app = crate::applications::find(&mut tx, &input.application_id)
        .await
        .map_err(|e| match e {
            Error::NotFound => Error::invalid(
                "application_id",
                "unknown_application",
                "Choose an application.",
            ),
            e => e,
        })?;
    if app.app_type == AppType::M2m {
        return Err(refused(
            "m2m_application",
            "Machine-to-machine applications have no users to impersonate.",
        ));
    }
    if app.status != crate::applications::Status::Active {
        return Err(refused(
            "application_disabled",
            "This application is disabled.",
        ));
    }
    let policy = read_policy(&mut tx, &app.id).await?;
    if !policy.enabled {
        return Err(refused(
            "impersonation_disabled",
            "Impersonation is not enabled for this application.",
        ));
    }
    let assigned = is_assigned(&mut tx, &app.id, staff_id).await?;
    if !assigned {
        return Err(refused(
            "not_assigned",
            "You are not assigned to impersonate in this application.",
        ));
    }
    if !(MIN_DURATION_SECS..=policy.max_duration_secs).contains(&input.duration_secs) {
        return Err(Error::invalid(
            "duration_secs",
            "invalid_duration",
            format!(
                "Choose a duration between 1 and {} minutes.",
                policy.max_duration_secs / 60
            ),
        ));
    }
    let unknown = || Error::invalid("user", "unknown_user", "No user with this email address.");
    let user = if input.user.contains('@') {
        let email = Email::parse(&input.user).map_err(|_| unknown())?;
        crate::users::find_by_email(&mut tx, &email)
            .await?
            .map(|(u, _)| u)
            .ok_or_else(unknown)?
    } else {
        crate::users::find(&mut tx, input.user.trim())
            .await
            .map_err(|e| match e {
                Error::NotFound => unknown(),
                e => e,
            })?
    };
    if user.status != crate::users::Status::Active {
        return Err(refused(
            "user_not_active",
            "This user is disabled or has not activated their account.",
        ));
    }
    if Email::parse(staff_email).is_ok_and(|e| e == user.email) {
        return Err(refused(
            "own_account",
            "You cannot impersonate your own account.",
        ));
    }
    // One at a time per staff member (expired leftovers are swept first).
    sweep_in(identity, &mut tx, now).await?;
    let open = sqlx::query(
        "select status from impersonation where staff_id = $1 and status in ('pending', 'approved', 'active')",
    )
    .bind(staff_id)
    .fetch_optional(&mut *tx)
    .await
    .context("Failed to read open impersonations")?;
    if open.is_some() {
        return Err(refused(
            "already_impersonating",
            "You already have an impersonation active or waiting. End it first.",
        ));
    }
    let id = new_id();
    let status = if policy.require_approval {
        Status::Pending
    } else {
        Status::Approved
    };
    sqlx::query(
        "insert into impersonation (impersonation_id, application_id, user_id, staff_id, staff_email, \
         reason, ticket, mode, duration_secs, notify_user, status, requested_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(&app.id)
    .bind(&user.id)
    .bind(staff_id)
    .bind(staff_email)
    .bind(&reason)
    .bind(&ticket)
    .bind(policy.mode.as_str())
    .bind(input.duration_secs)
    .bind(i64::from(policy.notify_user))
    .bind(status.as_str())
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to store an impersonation request")?;
    let created = find(&mut tx, &id).await?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ImpersonationRequested,
            Some(Target::impersonation(&id)),
            created.detail(json!({ "duration_secs": input.duration_secs,
                                   "approval_required": policy.require_approval })),
        ),
        now,
        "Failed to commit an impersonation request",
    )
    .await?;
    Ok(created)
}

/// Approves or denies a pending request: an owner or operator who is not the requester.
pub async fn decide(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    approve: bool,
    comment: Option<String>,
    now: Timestamp,
) -> Result<Impersonation> {
    principal.authorize(Action::SuperviseImpersonations)?;
    let (staff_id, _) = staff_of(principal)?;
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 1000) {
        return Err(Error::invalid(
            "comment",
            "invalid_comment",
            "The comment must be at most 1000 characters.",
        ));
    }
    let mut tx = identity.db().begin().await?;
    sweep_in(identity, &mut tx, now).await?;
    let current = find(&mut tx, id).await?;
    if current.staff_id == staff_id {
        return Err(refused(
            "own_request",
            "Someone else must decide on your own request.",
        ));
    }
    if current.status != Status::Pending {
        return Err(refused(
            "not_pending",
            "This request is no longer waiting for a decision.",
        ));
    }
    let status = if approve {
        Status::Approved
    } else {
        Status::Denied
    };
    sqlx::query(
        "update impersonation set status = $1, decided_by = $2, decided_at = $3, decision_comment = $4 \
         where impersonation_id = $5 and status = 'pending'",
    )
    .bind(status.as_str())
    .bind(staff_id)
    .bind(now.millis())
    .bind(&comment)
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("Failed to decide an impersonation request")?;
    let decided = find(&mut tx, id).await?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            if approve {
                Event::ImpersonationApproved
            } else {
                Event::ImpersonationDenied
            },
            Some(Target::impersonation(id)),
            decided.detail(json!({ "comment": comment })),
        ),
        now,
        "Failed to commit an impersonation decision",
    )
    .await?;
    Ok(decided)
}

/// A started impersonation and the session token for the `pc_imp` cookie (shown to nobody else);
/// [`Impersonation::launch_url`] says where to open the application.
pub struct Started {
    pub impersonation: Impersonation,
    pub session_token: String,
}

/// Starts an approved impersonation (the requester only): a new sign-in session for the user,
/// separate from theirs and the staff member's, that ends at `ends_at`.
pub async fn start(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    now: Timestamp,
) -> Result<Started> {
    principal.authorize(Action::Impersonate)?;
    let (staff_id, _) = staff_of(principal)?;
    let mut tx = identity.db().begin().await?;
    sweep_in(identity, &mut tx, now).await?;
    let current = find(&mut tx, id).await?;
    if current.staff_id != staff_id {
        return Err(Error::NotFound);
    }
    if current.status != Status::Approved {
        return Err(refused(
            "not_approved",
            match current.status {
                Status::Pending => "This request is waiting for approval.",
                Status::Active => "This impersonation has already started.",
                _ => "This request can no longer be started.",
            },
        ));
    }
    // The rules are checked again: the policy, the assignment or the user may have changed.
    let app = crate::applications::find(&mut tx, &current.application_id).await?;
    let policy = read_policy(&mut tx, &app.id).await?;
    let assigned = is_assigned(&mut tx, &app.id, staff_id).await?;
    let user = crate::users::find(&mut tx, &current.user_id).await?;
    if !policy.enabled
        || !assigned
        || app.status != crate::applications::Status::Active
        || user.status != crate::users::Status::Active
    {
        return Err(refused(
            "no_longer_allowed",
            "The application's policy, your assignment or the user changed since the request.",
        ));
    }
    let ends_at = now.plus_secs(current.duration_secs.min(policy.max_duration_secs));
    let token = random_token();
    let session_id = new_id();
    sqlx::query(
        "insert into user_session (user_session_id, user_id, application_id, token_hash, ip, user_agent, \
         created_at, last_seen_at, expires_at, impersonation_id) \
         values ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
    )
    .bind(&session_id)
    .bind(&user.id)
    .bind(&app.id)
    .bind(token_hash(&token))
    .bind(&meta.ip)
    .bind(&meta.user_agent)
    .bind(now.millis())
    .bind(ends_at.millis())
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("Failed to create an impersonation session")?;
    sqlx::query(
        "update impersonation set status = 'active', started_at = $1, ends_at = $2, user_session_id = $3 \
         where impersonation_id = $4 and status = 'approved'",
    )
    .bind(now.millis())
    .bind(ends_at.millis())
    .bind(&session_id)
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("Failed to start an impersonation")?;
    let started = find(&mut tx, id).await?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::ImpersonationStarted,
            Some(Target::impersonation(id)),
            started.detail(json!({ "session_id": session_id, "ends_at": ends_at.rfc3339() })),
        ),
        now,
        "Failed to commit an impersonation start",
    )
    .await?;
    Ok(Started {
        impersonation: started,
        session_token: token,
    })
}

/// Ends an active impersonation now: its requester, or a supervisor ("end now").
pub async fn end(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    now: Timestamp,
) -> Result<Impersonation> {
    let (staff_id, _) = staff_of(principal)?;
    let mut tx = identity.db().begin().await?;
    let current = find(&mut tx, id).await?;
    let own = current.staff_id == staff_id;
    if !own {
        principal.authorize(Action::SuperviseImpersonations)?;
    }
    match current.status {
        Status::Active => {}
        // The requester may withdraw a request that has not started.
        Status::Pending | Status::Approved if own => {}
        _ => {
            return Err(refused("not_active", "This impersonation is not active."));
        }
    }
    let reason = if own {
        "ended_by_requester"
    } else {
        "ended_by_supervisor"
    };
    finish(
        identity,
        &mut tx,
        &current,
        &principal.actor(),
        meta,
        reason,
        now,
    )
    .await?;
    let ended = find(&mut tx, id).await?;
    tx.commit()
        .await
        .context("Failed to commit the end of an impersonation")?;
    Ok(ended)
}

/// Ends `imp` in `tx`: its status, every token and its session (with back-channel logout), the
/// user's notice when the policy asked for one, and the events.
async fn finish(
    identity: &Identity,
    tx: &mut Tx,
    imp: &Impersonation,
    actor: &Actor,
    meta: &RequestMeta,
    reason: &str,
    now: Timestamp,
) -> Result<()> {
    // Who ended it (`None`: expiry).
    let by = match actor {
        Actor::Staff { id, .. } => Some(id.as_str()),
        _ => None,
    };
    let was_active = imp.status == Status::Active;
    // Withdrawn by its requester: ended; never decided or started in time: expired.
    let status = if was_active || by.is_some() {
        Status::Ended
    } else {
        Status::Expired
    };
    let done = sqlx::query(
        "update impersonation set status = $1, ended_at = $2, ended_by = $3, end_reason = $4 \
         where impersonation_id = $5 and status = $6",
    )
    .bind(status.as_str())
    .bind(now.millis())
    .bind(by)
    .bind(reason)
    .bind(&imp.id)
    .bind(imp.status.as_str())
    .execute(&mut **tx)
    .await
    .context("Failed to end an impersonation")?;
    if done.rows_affected() == 0 {
        // Ended concurrently (another replica's sweep, or a second click): nothing more to do.
        return Ok(());
    }
    if !was_active {
        // Withdrawn or expired before it started: nothing was issued.
        let event = if by.is_some() {
            Event::ImpersonationEnded
        } else {
            Event::ImpersonationExpiredUnapproved
        };
        return audit::append(
            tx,
            actor,
            meta,
            Entry::success(
                event,
                Some(Target::impersonation(&imp.id)),
                imp.detail(
                    json!({ "reason_ended": reason, "ended_by": by, "was": imp.status.as_str() }),
                ),
            ),
            now,
        )
        .await;
    }
    sqlx::query(
        "update token_family set revoked_at = $1, revoked_reason = 'impersonation_ended' \
         where impersonation_id = $2 and revoked_at is null",
    )
    .bind(now.millis())
    .bind(&imp.id)
    .execute(&mut **tx)
    .await
    .context("Failed to revoke an impersonation's tokens")?;
    let session: Option<String> =
        sqlx::query_scalar("select user_session_id from impersonation where impersonation_id = $1")
            .bind(&imp.id)
            .fetch_one(&mut **tx)
            .await
            .context("Failed to read an impersonation session")?;
    if let Some(sid) = session {
        crate::logout::end_sessions(identity, tx, &[sid], "impersonation_ended", now).await?;
    }
    audit::append(
        tx,
        actor,
        meta,
        Entry::success(
            Event::ImpersonationEnded,
            Some(Target::impersonation(&imp.id)),
            imp.detail(json!({ "reason_ended": reason, "ended_by": by })),
        ),
        now,
    )
    .await?;
    if imp.notify_user {
        let subject = format!("Support accessed your {} account", imp.application_name);
        let body = format!(
            "A member of our support team ({staff}) signed in to {app} as you.\n\n\
             Started: {started}\nEnded: {ended}\nReason: {reason}\n\n\
             If you did not expect this, reply to this message or contact support.",
            staff = imp.staff_email,
            app = imp.application_name,
            started = imp.started_at.map(Timestamp::rfc3339).unwrap_or_default(),
            ended = now.rfc3339(),
            reason = imp.reason,
        );
        crate::mail::queue(
            tx,
            &Email::from_trusted(imp.user_email.clone()),
            &subject,
            &body,
            now,
        )
        .await?;
        audit::append(
            tx,
            &Actor::System,
            &RequestMeta::default(),
            Entry::success(
                Event::ImpersonationUserNotified,
                Some(Target::impersonation(&imp.id)),
                imp.detail(json!({ "to": imp.user_email })),
            ),
            now,
        )
        .await?;
    }
    Ok(())
}

const DUE: &str = "(i.status = 'active' and i.ends_at <= $1) \
     or (i.status = 'pending' and i.requested_at <= $2) \
     or (i.status = 'approved' and coalesce(i.decided_at, i.requested_at) <= $2)";

/// Ends what is due in `tx`: active impersonations past their end, and requests not decided (or
/// not started) within the decision window.
async fn sweep_in(identity: &Identity, tx: &mut Tx, now: Timestamp) -> Result<usize> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} where {DUE} limit 100"
    )))
    .bind(now.millis())
    .bind(now.minus_secs(DECISION_WINDOW_SECS).millis())
    .fetch_all(&mut **tx)
    .await
    .context("Failed to find due impersonations")?;
    let due: Vec<Impersonation> = rows.iter().map(decode).collect::<Result<_>>()?;
    for imp in &due {
        let reason = if imp.status == Status::Active {
            "expired"
        } else {
            "not_decided_in_time"
        };
        let meta = RequestMeta::default();
        finish(identity, tx, imp, &Actor::System, &meta, reason, now).await?;
    }
    Ok(due.len())
}

/// The background sweep (every few seconds on every replica; concurrent sweeps are harmless). It
/// takes the write lock only when something is due.
pub async fn sweep(identity: &Identity, now: Timestamp) -> Result<usize> {
    let any = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select 1 as one from impersonation i where {DUE} limit 1"
    )))
    .bind(now.millis())
    .bind(now.minus_secs(DECISION_WINDOW_SECS).millis())
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to look for due impersonations")?;
    if any.is_none() {
        return Ok(0);
    }
    let mut tx = identity.db().begin().await?;
    let n = sweep_in(identity, &mut tx, now).await?;
    tx.commit()
        .await
        .context("Failed to commit an impersonation sweep")?;
    Ok(n)
}

/// An application the staff member may impersonate in now (enabled and assigned).
#[derive(Clone, Debug, Serialize)]
pub struct Allowed {
    pub application_id: String,
    pub name: String,
    pub max_duration_secs: i64,
    pub require_approval: bool,
    pub mode: Mode,
}

pub async fn allowed_applications(
    identity: &Identity,
    principal: &Principal,
) -> Result<Vec<Allowed>> {
    if !principal.can(Action::Impersonate) {
        return Ok(Vec::new());
    }
    let Ok((staff_id, _)) = staff_of(principal) else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query(
        "select a.application_id, a.name, p.max_duration_secs, p.require_approval, p.mode \
         from impersonation_assignment s join impersonation_policy p on p.application_id = s.application_id \
         join application a on a.application_id = s.application_id \
         where s.staff_id = $1 and p.enabled = 1 and a.status = 'active' and a.app_type <> 'm2m' \
         order by a.name",
    )
    .bind(staff_id)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list impersonation applications")?;
    rows.iter()
        .map(|r| {
            Ok(Allowed {
                application_id: r.try_get("application_id").context("application.id")?,
                name: r.try_get("name").context("application.name")?,
                max_duration_secs: r
                    .try_get("max_duration_secs")
                    .context("impersonation_policy.max")?,
                require_approval: r
                    .try_get::<i64, _>("require_approval")
                    .context("impersonation_policy.approval")?
                    == 1,
                mode: Mode::parse(&r.try_get::<String, _>("mode").context("policy.mode")?)?,
            })
        })
        .collect()
}

/// Filters of the history list.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filter {
    pub status: Option<String>,
    pub application_id: Option<String>,
    pub user_id: Option<String>,
    pub staff_id: Option<String>,
}

/// Newest first. Support staff see their own; the other roles see everyone's.
pub async fn list(
    identity: &Identity,
    principal: &Principal,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Impersonation>> {
    principal.authorize(Action::ViewImpersonations)?;
    let own_only = principal.role == Some(crate::authz::Role::Support);
    let staff = if own_only {
        staff_of(principal)?.0.to_owned()
    } else {
        filter.staff_id.clone().unwrap_or_default()
    };
    let status = filter.status.clone().unwrap_or_default();
    if !status.is_empty() && Status::parse(&status).is_none() {
        return Err(Error::invalid(
            "status",
            "invalid_status",
            "Unknown status.",
        ));
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} where ($1 = '' or i.status = $1) and ($2 = '' or i.application_id = $2) \
         and ($3 = '' or i.user_id = $3) and ($4 = '' or i.staff_id = $4) \
         order by i.requested_at desc, i.impersonation_id desc limit $5"
    )))
    .bind(status)
    .bind(filter.application_id.clone().unwrap_or_default())
    .bind(filter.user_id.clone().unwrap_or_default())
    .bind(staff)
    .bind(limit.clamp(1, 500))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list impersonations")?;
    rows.iter().map(decode).collect()
}

/// The staff member's own open impersonation (pending, approved or active), for the banner.
pub async fn open_for(
    identity: &Identity,
    principal: &Principal,
    now: Timestamp,
) -> Result<Option<Impersonation>> {
    let Ok((staff_id, _)) = staff_of(principal) else {
        return Ok(None);
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} where i.staff_id = $1 and (i.status in ('pending', 'approved') \
         or (i.status = 'active' and i.ends_at > $2)) order by i.requested_at desc limit 1"
    )))
    .bind(staff_id)
    .bind(now.millis())
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an open impersonation")?;
    row.as_ref().map(decode).transpose()
}

/// What tokens issued under an impersonation carry.
#[derive(Clone, Debug)]
pub(crate) struct TokenContext {
    pub id: String,
    pub staff_id: String,
    pub staff_email: String,
    pub mode: Mode,
    pub ends_at: Timestamp,
    pub detail: Value,
}

impl TokenContext {
    /// RFC 8693 `act` and the `impersonation` claim.
    pub fn claims(&self) -> (Value, Value) {
        (
            json!({ "sub": self.staff_id, "email": self.staff_email }),
            json!({ "id": self.id, "mode": self.mode.as_str(), "ends_at": self.ends_at.millis() / 1000 }),
        )
    }
}

/// The live impersonation `id` (active, not past its end), for issuing tokens.
pub(crate) async fn live_context(
    conn: &mut AnyConnection,
    id: &str,
    now: Timestamp,
) -> Result<Option<TokenContext>> {
    let imp = match find(conn, id).await {
        Ok(imp) => imp,
        Err(Error::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(ends_at) = imp.ends_at.filter(|e| *e > now) else {
        return Ok(None);
    };
    if imp.status != Status::Active {
        return Ok(None);
    }
    Ok(Some(TokenContext {
        id: imp.id.clone(),
        staff_id: imp.staff_id.clone(),
        staff_email: imp.staff_email.clone(),
        mode: imp.mode,
        ends_at,
        detail: imp.detail(json!({})),
    }))
}

/// The impersonation session behind a `pc_imp` cookie, if it is live and for `application_id`:
/// (session id, user id, impersonation id, started at).
pub(crate) async fn session_for(
    identity: &Identity,
    token: &str,
    application_id: &str,
    now: Timestamp,
) -> Result<Option<(String, String, String, Timestamp)>> {
    let query = "select s.user_session_id, s.user_id, i.impersonation_id, i.started_at \
         from user_session s join impersonation i on i.impersonation_id = s.impersonation_id \
         where s.token_hash = $1 and s.revoked_at is null and s.expires_at > $2 \
         and i.status = 'active' and i.ends_at > $2 and i.application_id = $3";
    let row = sqlx::query(query)
        .bind(token_hash(token))
        .bind(now.millis())
        .bind(application_id)
        .fetch_optional(identity.db().writer())
        .await
        .context("Failed to read an impersonation session")?;
    row.map(|r| {
        Ok((
            r.try_get("user_session_id").context("user_session.id")?,
            r.try_get("user_id").context("user_session.user_id")?,
            r.try_get("impersonation_id").context("impersonation.id")?,
            Timestamp::from_millis(
                r.try_get("started_at")
                    .context("impersonation.started_at")?,
            ),
        ))
    })
    .transpose()
}

/// Whether a browser's `pc_imp` cookie names a live impersonation (hosted pages then refuse
/// account changes).
pub async fn is_live(identity: &Identity, token: &str, now: Timestamp) -> Result<bool> {
    let row = sqlx::query(
        "select 1 as one from user_session s join impersonation i on i.impersonation_id = s.impersonation_id \
         where s.token_hash = $1 and s.revoked_at is null and i.status = 'active' and i.ends_at > $2",
    )
    .bind(token_hash(token))
    .bind(now.millis())
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an impersonation session")?;
    Ok(row.is_some())
}

/// One impersonation (support staff: their own only).
pub async fn get(identity: &Identity, principal: &Principal, id: &str) -> Result<Impersonation> {
    principal.authorize(Action::ViewImpersonations)?;
    let imp = find(&mut *identity.db().connection().await?, id).await?;
    if principal.role == Some(crate::authz::Role::Support)
        && staff_of(principal).is_ok_and(|(s, _)| s != imp.staff_id)
    {
        return Err(Error::NotFound);
    }
    Ok(imp)
}
