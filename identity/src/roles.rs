//! Application roles: each application defines its own roles (name, description, permissions), and
//! users are granted them per application. A role in one application means nothing in another, and
//! an application key sees and grants only its own application's roles.

use crate::applications;
use crate::audit::{self, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::error::{Context, Error, Result, is_unique_violation};
use crate::secret::new_id;
use crate::time::Timestamp;
use crate::users;
use crate::{Identity, RequestMeta};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

#[derive(Clone, Debug, Serialize)]
pub struct AppRole {
    pub id: String,
    pub application_id: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub created_at: Timestamp,
}

/// A user's role in one application.
#[derive(Clone, Debug, Serialize)]
pub struct Grant {
    pub role: AppRole,
    pub application_name: String,
    pub granted_at: Timestamp,
}

fn parse_name(input: &str) -> Result<String> {
    let name = input.trim();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if !ok {
        return Err(Error::invalid(
            "name",
            "invalid_role_name",
            "A role name is 1–64 letters, digits, '_', '-', '.' or ':'.",
        ));
    }
    Ok(name.to_owned())
}

fn parse_permissions(inputs: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in inputs.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let ok = p.len() <= 100
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '*'));
        if !ok || out.len() >= 100 {
            return Err(Error::invalid(
                "permissions",
                "invalid_permission",
                "Permissions are up to 100 names of letters, digits and _ - . : *.",
            ));
        }
        if !out.iter().any(|o| o == p) {
            out.push(p.to_owned());
        }
    }
    Ok(out)
}

const COLUMNS: &str = "app_role_id, application_id, name, description, permissions, created_at";

fn decode(row: &sqlx::any::AnyRow) -> Result<AppRole> {
    let permissions: String = row.try_get("permissions").context("app_role.permissions")?;
    Ok(AppRole {
        id: row.try_get("app_role_id").context("app_role.id")?,
        application_id: row
            .try_get("application_id")
            .context("app_role.application_id")?,
        name: row.try_get("name").context("app_role.name")?,
        description: row.try_get("description").context("app_role.description")?,
        permissions: serde_json::from_str(&permissions).unwrap_or_default(),
        created_at: Timestamp::from_millis(
            row.try_get("created_at").context("app_role.created_at")?,
        ),
    })
}

async fn find(conn: &mut AnyConnection, application_id: &str, role_id: &str) -> Result<AppRole> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from app_role where app_role_id = $1 and application_id = $2"
    )))
    .bind(role_id)
    .bind(application_id)
    .fetch_optional(conn)
    .await
    .context("Failed to read a role")?
    .ok_or(Error::NotFound)?;
    decode(&row)
}

/// What a caller asks for.
#[derive(Clone, Debug, Default)]
pub struct NewRole {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// Defines a role in an application (operators and owners).
pub async fn create(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    new: NewRole,
    now: Timestamp,
) -> Result<AppRole> {
    principal.authorize_in(Action::ManageApplications, application_id)?;
    let role = AppRole {
        id: new_id(),
        application_id: application_id.to_owned(),
        name: parse_name(&new.name)?,
        description: new.description.trim().chars().take(500).collect(),
        permissions: parse_permissions(&new.permissions)?,
        created_at: now,
    };
    let mut tx = identity.db().begin().await?;
    applications::find(&mut tx, application_id).await?;
    let result = sqlx::query(
        "insert into app_role (app_role_id, application_id, name, description, permissions, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&role.id)
    .bind(application_id)
    .bind(&role.name)
    .bind(&role.description)
    .bind(serde_json::to_string(&role.permissions).unwrap_or_else(|_| "[]".into()))
    .bind(now.millis())
    .execute(&mut *tx)
    .await;
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::invalid(
                "name",
                "name_taken",
                "This application already has a role with this name.",
            ));
        }
        Err(e) => return Err(Error::internal("Failed to store a role", e)),
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AppRoleCreated,
            Some(Target::application(application_id)),
            json!({ "after": { "role_id": role.id, "name": role.name, "permissions": role.permissions } }),
        ),
        now,
        "Failed to commit a role",
    )
    .await?;
    Ok(role)
}

/// The roles an application defines.
pub async fn list(
    identity: &Identity,
    principal: &Principal,
    application_id: &str,
) -> Result<Vec<AppRole>> {
    principal.authorize_in(Action::ViewApplications, application_id)?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from app_role where application_id = $1 order by name"
    )))
    .bind(application_id)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list roles")?;
    rows.iter().map(decode).collect()
}

/// Every role of every application (at most 1 000), with its application's name, for pickers.
/// An application key gets its own application's only.
pub async fn all(identity: &Identity, principal: &Principal) -> Result<Vec<(AppRole, String)>> {
    principal.authorize_pool(Action::ViewUsers)?;
    let rows = sqlx::query(
        "select r.app_role_id, r.application_id, r.name, r.description, r.permissions, r.created_at, \
         a.name as application_name from app_role r join application a on a.application_id = r.application_id \
         where ($1 = '' or r.application_id = $1) order by a.name, r.name limit 1000",
    )
    .bind(principal.application_scope().unwrap_or(""))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list roles")?;
    rows.iter()
        .map(|r| {
            Ok((
                decode(r)?,
                r.try_get("application_name").context("app.name")?,
            ))
        })
        .collect()
}

pub async fn delete(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    role_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize_in(Action::ManageApplications, application_id)?;
    let mut tx = identity.db().begin().await?;
    let role = find(&mut tx, application_id, role_id).await?;
    sqlx::query("delete from app_role where app_role_id = $1")
        .bind(role_id)
        .execute(&mut *tx)
        .await
        .context("Failed to delete a role")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AppRoleDeleted,
            Some(Target::application(application_id)),
            json!({ "before": { "role_id": role.id, "name": role.name } }),
        ),
        now,
        "Failed to commit a role deletion",
    )
    .await
}

/// Who may grant in `application_id`: staff who manage users, or that application's key with
/// `users:write`.
fn authorize_grant(principal: &Principal, application_id: &str) -> Result<()> {
    principal.authorize_pool(Action::ManageUsers)?;
    match principal.application_scope() {
        Some(own) if own != application_id => Err(Error::NotFound),
        _ => Ok(()),
    }
}

/// Grants a role of `application_id` to a user.
pub async fn grant(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    role_id: &str,
    user_id: &str,
    now: Timestamp,
) -> Result<()> {
    authorize_grant(principal, application_id)?;
    let mut tx = identity.db().begin().await?;
    let role = find(&mut tx, application_id, role_id).await?;
    users::find(&mut tx, user_id).await.map_err(|e| match e {
        Error::NotFound => Error::invalid("user_id", "unknown_user", "No such user."),
        other => other,
    })?;
    let result = sqlx::query(
        "insert into user_app_role (user_id, app_role_id, application_id, created_at) values ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(role_id)
    .bind(application_id)
    .bind(now.millis())
    .execute(&mut *tx)
    .await;
    match result {
        Ok(_) => {}
        // Already granted: nothing changes, nothing to audit.
        Err(e) if is_unique_violation(&e) => return Ok(()),
        Err(e) => return Err(Error::internal("Failed to grant a role", e)),
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AppRoleGranted,
            Some(Target::user(user_id)),
            json!({ "application_id": application_id, "role_id": role.id, "role": role.name }),
        ),
        now,
        "Failed to commit a grant",
    )
    .await
}

pub async fn revoke(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    application_id: &str,
    role_id: &str,
    user_id: &str,
    now: Timestamp,
) -> Result<()> {
    authorize_grant(principal, application_id)?;
    let mut tx = identity.db().begin().await?;
    let done = sqlx::query(
        "delete from user_app_role where user_id = $1 and app_role_id = $2 and application_id = $3",
    )
    .bind(user_id)
    .bind(role_id)
    .bind(application_id)
    .execute(&mut *tx)
    .await
    .context("Failed to revoke a role")?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::AppRoleRevoked,
            Some(Target::user(user_id)),
            json!({ "application_id": application_id, "role_id": role_id }),
        ),
        now,
        "Failed to commit a revocation",
    )
    .await
}

/// A user's roles, per application; an application key sees only its own application's.
pub async fn of_user(
    identity: &Identity,
    principal: &Principal,
    user_id: &str,
) -> Result<Vec<Grant>> {
    principal.authorize_pool(Action::ViewUsers)?;
    let rows = sqlx::query(
        "select r.app_role_id, r.application_id, r.name, r.description, r.permissions, r.created_at, \
         a.name as application_name, g.created_at as granted_at from user_app_role g \
         join app_role r on r.app_role_id = g.app_role_id \
         join application a on a.application_id = g.application_id \
         where g.user_id = $1 and ($2 = '' or g.application_id = $2) order by a.name, r.name",
    )
    .bind(user_id)
    .bind(principal.application_scope().unwrap_or(""))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list a user's roles")?;
    rows.iter()
        .map(|r| {
            Ok(Grant {
                role: decode(r)?,
                application_name: r.try_get("application_name").context("grant.app")?,
                granted_at: Timestamp::from_millis(
                    r.try_get("granted_at").context("grant.granted_at")?,
                ),
            })
        })
        .collect()
}
