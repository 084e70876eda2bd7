//! Types the browser and the server share, and the server functions (the dashboard's RPC).
//! These are DTOs, not database rows: `identity` types are mapped into them on the server.

pub mod applications;
pub mod audit;
pub mod audit_streams;
pub mod hosted;
pub mod impersonation;
pub mod keys;
pub mod session;
pub mod staff;
pub mod users;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// The one error type of every server function: a stable code, a message for people, and the input
/// field it concerns (shown next to that field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl AppError {
    pub fn new(code: &str, message: &str) -> Self {
        Self {
            code: code.to_owned(),
            message: message.to_owned(),
            field: None,
        }
    }

    /// The message when this error concerns `field`.
    pub fn for_field(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let code = match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => "invalid_request",
            ServerFnErrorErr::Request(_) => "network",
            _ => "rpc_failed",
        };
        Self {
            code: code.to_owned(),
            message: value.to_string(),
            field: None,
        }
    }
}

/// The signed-in staff member, as the dashboard sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub staff_id: String,
    pub email: String,
    pub role: String,
    pub role_label: String,
    /// The session's CSRF token; every mutation carries it.
    pub csrf: String,
    pub can_view_staff: bool,
    pub can_manage_staff: bool,
    pub can_view_audit: bool,
    pub can_view_settings: bool,
    pub can_manage_applications: bool,
    pub can_view_outbox: bool,
    /// The viewer's open impersonation, shown in a banner on every page.
    pub impersonating: Option<impersonation::Banner>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invited {
    pub email: String,
    pub role: String,
    /// The one-time link to pass on to the invitee; shown once.
    pub link: String,
    pub expires_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub event: String,
    pub outcome: String,
    pub actor: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
    pub created_at: String,
}

/// The roles offered in forms, as (value, label).
pub const ROLES: [(&str, &str); 4] = [
    ("owner", "Owner"),
    ("operator", "Operator"),
    ("support", "Support"),
    ("auditor", "Auditor (security reviewer)"),
];
