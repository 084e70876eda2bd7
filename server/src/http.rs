//! The HTTP edge. Each capability has its own module with a `router()`; `startup` merges them.

pub mod api;
pub mod applications;
pub mod audit_export;
pub mod audit_streams;
pub mod auth;
pub mod edge;
pub mod error;
pub mod hosted;
pub mod oidc;
pub mod ops;
pub mod users;

use crate::config::Config;
use crate::metrics::Metrics;
use axum::extract::FromRef;
use identity::Identity;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub identity: Identity,
    pub config: Arc<Config>,
    /// The URL browsers use to reach Portcullis, without a trailing slash.
    pub public_url: Arc<str>,
    pub leptos_options: LeptosOptions,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Cookies get `Secure` when Portcullis is served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
