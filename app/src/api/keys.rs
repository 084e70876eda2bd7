//! Settings → Signing keys: the keys that sign every token (never their private parts), and
//! rotation (owners).

use super::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    /// next, current or previous.
    pub status: String,
    pub created_at: String,
    pub activated_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyRow>,
    pub can_rotate: bool,
}

#[server(prefix = "/rpc", endpoint = "signing_keys")]
pub async fn signing_keys() -> Result<KeyList, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let keys = identity::keys::list(&call.identity, principal)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(KeyList {
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                kid: k.kid,
                alg: k.alg,
                status: k.status,
                created_at: k.created_at.rfc3339(),
                activated_at: k.activated_at.map(identity::Timestamp::rfc3339),
            })
            .collect(),
        can_rotate: principal.can(identity::Action::ManageSettings),
    })
}

/// Rotates every algorithm's keys one step: next → current, current → previous (still published),
/// previous → retired, and a new next.
#[server(prefix = "/rpc", endpoint = "rotate_signing_keys")]
pub async fn rotate_signing_keys(csrf: String) -> Result<String, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.mutation(&csrf)?;
    identity::keys::rotate(
        &call.identity,
        &principal.actor(),
        Some(principal),
        &call.meta,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)
}
