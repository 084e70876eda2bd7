use super::{AppError, Invited, StaffRow};
use leptos::prelude::*;

#[server(prefix = "/rpc", endpoint = "list_staff")]
pub async fn list_staff() -> Result<Vec<StaffRow>, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let staff = identity::staff::list(&call.identity, principal)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(staff.into_iter().map(crate::ssr::staff_row).collect())
}

#[server(prefix = "/rpc", endpoint = "invite_staff")]
pub async fn invite_staff(csrf: String, email: String, role: String) -> Result<Invited, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    let invitation = identity::staff::invite(
        &call.identity,
        principal,
        &call.meta,
        &email,
        &role,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(crate::ssr::invited(&call.public_url, invitation))
}

#[server(prefix = "/rpc", endpoint = "change_staff_role")]
pub async fn change_staff_role(
    csrf: String,
    staff_id: String,
    role: String,
) -> Result<StaffRow, AppError> {
    let role = identity::Role::parse(&role).map_err(crate::ssr::fail)?;
    crate::ssr::update_staff(
        &csrf,
        &staff_id,
        identity::staff::Change {
            role: Some(role),
            enabled: None,
        },
    )
    .await
}

/// `enabled` is "true" or "false" (form values are strings).
#[server(prefix = "/rpc", endpoint = "set_staff_enabled")]
pub async fn set_staff_enabled(
    csrf: String,
    staff_id: String,
    enabled: String,
) -> Result<StaffRow, AppError> {
    let enabled = match enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(crate::ssr::invalid(
                "enabled",
                "enabled must be true or false",
            ));
        }
    };
    crate::ssr::update_staff(
        &csrf,
        &staff_id,
        identity::staff::Change {
            role: None,
            enabled: Some(enabled),
        },
    )
    .await
}
