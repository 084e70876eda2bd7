//! Server functions of the hosted pages: which application a page belongs to (by client ID or by a
//! one-time link), and where to send the user when done. They reveal only an application's name and
//! its own configured URLs.

use super::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedAppInfo {
    pub client_id: String,
    pub name: String,
    pub allow_sign_up: bool,
    /// Where the user goes when done: the return URL, else the default sign-in redirect.
    pub continue_url: Option<String>,
}

/// The application of a hosted page; unknown and disabled applications are an error.
#[server(prefix = "/rpc", endpoint = "hosted_app")]
pub async fn hosted_app(client_id: String) -> Result<HostedAppInfo, AppError> {
    let call = crate::ssr::call()?;
    let app = identity::users::hosted_application(&call.identity, &client_id)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(crate::ssr::hosted(&app))
}

/// The application a one-time link returns to, or `None` when the link is unknown, used or expired.
#[server(prefix = "/rpc", endpoint = "link_app")]
pub async fn link_app(token: String) -> Result<Option<HostedAppInfo>, AppError> {
    let call = crate::ssr::call()?;
    let app = identity::users::peek_link(&call.identity, &token, identity::Timestamp::now())
        .await
        .map_err(crate::ssr::fail)?;
    Ok(app.as_ref().map(crate::ssr::hosted))
}
