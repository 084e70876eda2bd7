//! Organizations: groups of users (a customer company, a team) with an organization role per member.
//! A user can belong to several.

use crate::audit::{self, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::error::{Context, Error, Result, is_unique_violation};
use crate::secret::new_id;
use crate::time::Timestamp;
use crate::users;
use crate::{Identity, RequestMeta};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

#[derive(Clone, Debug, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub member_count: i64,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
}

/// An organization a user belongs to, with their role there.
#[derive(Clone, Debug, Serialize)]
pub struct Membership {
    pub organization_id: String,
    pub organization_name: String,
    pub role: String,
}

fn parse_role(input: &str) -> Result<&'static str> {
    match input.trim() {
        "admin" => Ok("admin"),
        "member" | "" => Ok("member"),
        _ => Err(Error::invalid(
            "role",
            "invalid_role",
            "Organization role must be admin or member.",
        )),
    }
}

pub async fn create(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    name: &str,
    now: Timestamp,
) -> Result<Organization> {
    principal.authorize_pool(Action::ManageUsers)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(Error::invalid(
            "name",
            "invalid_name",
            "Name must be 1–120 characters.",
        ));
    }
    let org = Organization {
        id: new_id(),
        name: name.to_owned(),
        member_count: 0,
        created_at: now,
    };
    let mut tx = identity.db().begin().await?;
    let result = sqlx::query(
        "insert into organization (organization_id, name, created_at, updated_at) values ($1, $2, $3, $3)",
    )
    .bind(&org.id)
    .bind(&org.name)
    .bind(now.millis())
    .execute(&mut *tx)
    .await;
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::invalid(
                "name",
                "name_taken",
                "An organization with this name already exists.",
            ));
        }
        Err(e) => return Err(Error::internal("Failed to store an organization", e)),
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::OrganizationCreated,
            Some(Target::organization(&org.id)),
            json!({ "after": { "name": org.name } }),
        ),
        now,
        "Failed to commit an organization",
    )
    .await?;
    Ok(org)
}

const LIST: &str = "select o.organization_id, o.name, o.created_at, \
     (select count(*) from organization_member m where m.organization_id = o.organization_id) as member_count \
     from organization o";

fn decode(row: &sqlx::any::AnyRow) -> Result<Organization> {
    Ok(Organization {
        id: row.try_get("organization_id").context("organization.id")?,
        name: row.try_get("name").context("organization.name")?,
        member_count: row.try_get("member_count").context("organization.count")?,
        created_at: Timestamp::from_millis(
            row.try_get("created_at")
                .context("organization.created_at")?,
        ),
    })
}

pub async fn list(identity: &Identity, principal: &Principal) -> Result<Vec<Organization>> {
    principal.authorize_pool(Action::ViewUsers)?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{LIST} order by o.name limit 1000"
    )))
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list organizations")?;
    rows.iter().map(decode).collect()
}

pub async fn get(identity: &Identity, principal: &Principal, id: &str) -> Result<Organization> {
    principal.authorize_pool(Action::ViewUsers)?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{LIST} where o.organization_id = $1"
    )))
    .bind(id)
    .fetch_optional(identity.db().pool())
    .await
    .context("Failed to read an organization")?
    .ok_or(Error::NotFound)?;
    decode(&row)
}

pub async fn members(identity: &Identity, principal: &Principal, id: &str) -> Result<Vec<Member>> {
    get(identity, principal, id).await?;
    let rows = sqlx::query(
        "select u.user_id, u.email, u.name, m.role from organization_member m \
         join end_user u on u.user_id = m.user_id where m.organization_id = $1 order by u.email",
    )
    .bind(id)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list members")?;
    rows.iter()
        .map(|r| {
            Ok(Member {
                user_id: r.try_get("user_id").context("member.user_id")?,
                email: r.try_get("email").context("member.email")?,
                name: r.try_get("name").context("member.name")?,
                role: r.try_get("role").context("member.role")?,
            })
        })
        .collect()
}

pub async fn of_user(
    identity: &Identity,
    principal: &Principal,
    user_id: &str,
) -> Result<Vec<Membership>> {
    principal.authorize_pool(Action::ViewUsers)?;
    let rows = sqlx::query(
        "select o.organization_id, o.name, m.role from organization_member m \
         join organization o on o.organization_id = m.organization_id where m.user_id = $1 order by o.name",
    )
    .bind(user_id)
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list memberships")?;
    rows.iter()
        .map(|r| {
            Ok(Membership {
                organization_id: r.try_get("organization_id").context("membership.org")?,
                organization_name: r.try_get("name").context("membership.name")?,
                role: r.try_get("role").context("membership.role")?,
            })
        })
        .collect()
}

/// Adds a user (or changes their role when already a member).
pub async fn add_member(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    organization_id: &str,
    user_id: &str,
    role: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize_pool(Action::ManageUsers)?;
    let role = parse_role(role)?;
    let mut tx = identity.db().begin().await?;
    let exists: i64 =
        sqlx::query("select count(*) as n from organization where organization_id = $1")
            .bind(organization_id)
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get("n"))
            .context("Failed to read an organization")?;
    if exists == 0 {
        return Err(Error::NotFound);
    }
    users::find(&mut tx, user_id).await.map_err(|e| match e {
        Error::NotFound => Error::invalid("user_id", "unknown_user", "No such user."),
        other => other,
    })?;
    sqlx::query(
        "insert into organization_member (organization_id, user_id, role, created_at) values ($1, $2, $3, $4) \
         on conflict (organization_id, user_id) do update set role = excluded.role",
    )
    .bind(organization_id)
    .bind(user_id)
    .bind(role)
    .bind(now.millis())
    .execute(&mut *tx)
    .await
    .context("Failed to add a member")?;
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::OrganizationMemberAdded,
            Some(Target::organization(organization_id)),
            json!({ "user_id": user_id, "role": role }),
        ),
        now,
        "Failed to commit a member",
    )
    .await
}

pub async fn remove_member(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    organization_id: &str,
    user_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize_pool(Action::ManageUsers)?;
    let mut tx = identity.db().begin().await?;
    let done =
        sqlx::query("delete from organization_member where organization_id = $1 and user_id = $2")
            .bind(organization_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .context("Failed to remove a member")?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::OrganizationMemberRemoved,
            Some(Target::organization(organization_id)),
            json!({ "user_id": user_id }),
        ),
        now,
        "Failed to commit a removal",
    )
    .await
}

pub async fn delete(
    identity: &Identity,
    principal: &Principal,
    meta: &RequestMeta,
    organization_id: &str,
    now: Timestamp,
) -> Result<()> {
    principal.authorize_pool(Action::ManageUsers)?;
    let mut tx = identity.db().begin().await?;
    let done = sqlx::query("delete from organization where organization_id = $1")
        .bind(organization_id)
        .execute(&mut *tx)
        .await
        .context("Failed to delete an organization")?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::commit_with(
        tx,
        &principal.actor(),
        meta,
        Entry::success(
            Event::OrganizationDeleted,
            Some(Target::organization(organization_id)),
            json!({}),
        ),
        now,
        "Failed to commit an organization deletion",
    )
    .await
}
