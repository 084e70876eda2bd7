use super::{AppError, AuditRow};
use leptos::prelude::*;

/// The newest audit events, 50 per page; `before` is the last `seq` of the previous page; `target`
/// (`<type>:<id>`) narrows to events about one thing.
#[server(prefix = "/rpc", endpoint = "recent_audit")]
pub async fn recent_audit(
    before: Option<i64>,
    target: Option<String>,
) -> Result<Vec<AuditRow>, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let target = target.as_deref().and_then(|t| t.split_once(':'));
    let records = identity::audit::list(&call.identity, principal, before, target, 50)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(records.into_iter().map(crate::ssr::audit_row).collect())
}
