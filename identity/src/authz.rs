//! Authorization: the one place that decides which staff role may do what. Every server function and
//! REST handler starts with `principal.authorize(Action::…)`.

use crate::audit::Actor;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Operator,
    Support,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Operator, Role::Support, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Support => "support",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == input.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    "invalid_role",
                    "Role must be one of owner, operator, support, auditor.",
                )
            })
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Operator => "Operator",
            Role::Support => "Support",
            Role::Auditor => "Auditor (security reviewer)",
        }
    }
}

/// Everything a caller can ask to do. New capabilities add variants here and a row in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// See the dashboard home and their own account.
    ViewDashboard,
    /// List staff members and their roles.
    ViewStaff,
    /// Invite staff, change roles, disable and enable.
    ManageStaff,
    /// Read the audit log.
    ViewAudit,
    /// Read environment settings.
    ViewSettings,
    /// Read applications and their configuration (never their secrets).
    ViewApplications,
    /// List an application's client secrets and API keys (metadata, never the values).
    ViewCredentials,
    /// Create, configure, disable and delete applications.
    ManageApplications,
    /// Change environment-wide settings (e.g. the default session policy).
    ManageSettings,
    /// Read end users, organizations and role grants.
    ViewUsers,
    /// Create, change, invite, disable users; manage organizations and role grants.
    ManageUsers,
    /// End a user's sign-in sessions.
    RevokeUserSessions,
    /// Read the mail outbox (messages carry one-time links).
    ViewOutbox,
    /// See impersonations (support staff see their own only).
    ViewImpersonations,
    /// Change an application's impersonation policy.
    ManageImpersonationPolicy,
    /// Decide who may impersonate in which application.
    AssignImpersonators,
    /// Request and run an impersonation (only where assigned, too).
    Impersonate,
    /// Approve or deny someone else's request, and end anyone's impersonation.
    SuperviseImpersonations,
    /// Create, change and delete audit webhook streams, and ask for redeliveries.
    ManageAuditStreams,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::ViewDashboard,
        Action::ViewStaff,
        Action::ManageStaff,
        Action::ViewAudit,
        Action::ViewSettings,
        Action::ViewApplications,
        Action::ViewCredentials,
        Action::ManageApplications,
        Action::ManageSettings,
        Action::ViewUsers,
        Action::ManageUsers,
        Action::RevokeUserSessions,
        Action::ViewOutbox,
        Action::ViewImpersonations,
        Action::ManageImpersonationPolicy,
        Action::AssignImpersonators,
        Action::Impersonate,
        Action::SuperviseImpersonations,
        Action::ManageAuditStreams,
    ];
}

/// The permission table.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        ViewDashboard | ViewApplications | ViewCredentials | ViewUsers | ViewImpersonations => true,
        ManageApplications
        | ManageUsers
        | RevokeUserSessions
        | ManageImpersonationPolicy
        | SuperviseImpersonations => matches!(role, Owner | Operator),
        Impersonate => matches!(role, Owner | Operator | Support),
        ViewStaff | ViewSettings => matches!(role, Owner | Operator | Auditor),
        ManageStaff | ManageSettings | ViewOutbox | AssignImpersonators | ManageAuditStreams => {
            role == Owner
        }
        ViewAudit => matches!(role, Owner | Auditor),
    }
}

/// What an application's API key may be granted. A scope never reaches beyond the key's application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    #[serde(rename = "sessions:revoke")]
    SessionsRevoke,
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::SessionsRevoke,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::SessionsRevoke => "sessions:revoke",
            Scope::AuditRead => "audit:read",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == input.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "scopes",
                    "invalid_scope",
                    "Scopes must be among users:read, users:write, sessions:revoke, audit:read.",
                )
            })
    }

    pub fn label(self) -> &'static str {
        match self {
            Scope::UsersRead => "Read users",
            Scope::UsersWrite => "Create and change users",
            Scope::SessionsRevoke => "Revoke sign-in sessions",
            Scope::AuditRead => "Read this application's audit events",
        }
    }
}

/// What an application key may do inside its own application: read the application itself, and
/// whatever its scopes grant. Never its credentials, nothing environment-wide.
pub fn app_key_allows(scopes: &[Scope], action: Action) -> bool {
    match action {
        Action::ViewApplications => true,
        Action::ViewAudit => scopes.contains(&Scope::AuditRead),
        Action::ViewUsers => {
            scopes.contains(&Scope::UsersRead) || scopes.contains(&Scope::UsersWrite)
        }
        Action::ManageUsers => scopes.contains(&Scope::UsersWrite),
        Action::RevokeUserSessions => scopes.contains(&Scope::SessionsRevoke),
        _ => false,
    }
}

/// Who is calling: a signed-in staff member or an environment admin API key, with its staff role, or
/// an application's API key, confined to that application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The staff role; `None` for application keys, which act through scopes instead.
    pub role: Option<Role>,
    pub kind: PrincipalKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    Staff {
        staff_id: String,
        email: String,
        session_id: String,
    },
    ApiKey {
        api_key_id: String,
        name: String,
    },
    AppKey {
        api_key_id: String,
        name: String,
        application_id: String,
        scopes: Vec<Scope>,
    },
}

impl Principal {
    /// Environment-wide permission: staff and admin keys by role; application keys never.
    pub fn authorize(&self, action: Action) -> Result<()> {
        if self.can(action) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    pub fn can(&self, action: Action) -> bool {
        self.role.is_some_and(|role| allows(role, action))
    }

    /// Permission for `action` on one application. An application key outside its own application
    /// learns nothing (not found); inside it, its scopes decide.
    pub fn authorize_in(&self, action: Action, application_id: &str) -> Result<()> {
        match &self.kind {
            PrincipalKind::AppKey {
                application_id: own,
                scopes,
                ..
            } => {
                if own != application_id {
                    Err(Error::NotFound)
                } else if app_key_allows(scopes, action) {
                    Ok(())
                } else {
                    Err(Error::Forbidden)
                }
            }
            _ => self.authorize(action),
        }
    }

    /// Permission over the shared user pool, which every application signs in: staff by role,
    /// application keys by scope (their role grants stay confined to their application).
    pub fn authorize_pool(&self, action: Action) -> Result<()> {
        match &self.kind {
            PrincipalKind::AppKey { scopes, .. } if app_key_allows(scopes, action) => Ok(()),
            PrincipalKind::AppKey { .. } => Err(Error::Forbidden),
            _ => self.authorize(action),
        }
    }

    /// The one application an application key is confined to; `None` for staff and admin keys.
    pub fn application_scope(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::AppKey { application_id, .. } => Some(application_id),
            _ => None,
        }
    }

    /// The id recorded as `created_by` / `updated_by`.
    pub fn actor_id(&self) -> String {
        match &self.kind {
            PrincipalKind::Staff { staff_id, .. } => staff_id.clone(),
            PrincipalKind::ApiKey { api_key_id, .. } | PrincipalKind::AppKey { api_key_id, .. } => {
                api_key_id.clone()
            }
        }
    }

    pub fn actor(&self) -> Actor {
        match &self.kind {
            PrincipalKind::Staff {
                staff_id, email, ..
            } => Actor::Staff {
                id: staff_id.clone(),
                email: email.clone(),
            },
            PrincipalKind::ApiKey { api_key_id, name }
            | PrincipalKind::AppKey {
                api_key_id, name, ..
            } => Actor::ApiKey {
                id: api_key_id.clone(),
                name: name.clone(),
            },
        }
    }

    pub fn staff_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Staff { staff_id, .. } => Some(staff_id),
            PrincipalKind::ApiKey { .. } | PrincipalKind::AppKey { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every role × every action, spelled out: a change to the table must change this test.
    #[test]
    fn permission_table() {
        use Action::*;
        // (action, owner, operator, support, auditor)
        let table = [
            (ViewDashboard, true, true, true, true),
            (ViewStaff, true, true, false, true),
            (ManageStaff, true, false, false, false),
            (ViewAudit, true, false, false, true),
            (ViewSettings, true, true, false, true),
            (ViewApplications, true, true, true, true),
            (ViewCredentials, true, true, true, true),
            (ManageApplications, true, true, false, false),
            (ManageSettings, true, false, false, false),
            (ViewUsers, true, true, true, true),
            (ManageUsers, true, true, false, false),
            (RevokeUserSessions, true, true, false, false),
            (ViewOutbox, true, false, false, false),
            (ViewImpersonations, true, true, true, true),
            (ManageImpersonationPolicy, true, true, false, false),
            (AssignImpersonators, true, false, false, false),
            (Impersonate, true, true, true, false),
            (SuperviseImpersonations, true, true, false, false),
            (ManageAuditStreams, true, false, false, false),
        ];
        assert_eq!(table.len(), Action::ALL.len(), "every action has a row");
        for (action, owner, operator, support, auditor) in table {
            for (role, expected) in [
                (Role::Owner, owner),
                (Role::Operator, operator),
                (Role::Support, support),
                (Role::Auditor, auditor),
            ] {
                assert_eq!(allows(role, action), expected, "{role:?} × {action:?}");
            }
        }
    }

    #[test]
    fn auditor_can_change_nothing() {
        let writes = [
            Action::ManageStaff,
            Action::ManageApplications,
            Action::ManageSettings,
            Action::ManageUsers,
            Action::RevokeUserSessions,
            Action::ManageImpersonationPolicy,
            Action::AssignImpersonators,
            Action::Impersonate,
            Action::SuperviseImpersonations,
            Action::ManageAuditStreams,
        ];
        assert!(writes.iter().all(|a| !allows(Role::Auditor, *a)));
    }

    #[test]
    fn app_keys_stay_inside_their_application() {
        let key = Principal {
            role: None,
            kind: PrincipalKind::AppKey {
                api_key_id: "k".into(),
                name: "backend".into(),
                application_id: "app-a".into(),
                scopes: vec![Scope::UsersRead],
            },
        };
        for action in Action::ALL {
            assert!(
                key.authorize(action).is_err(),
                "{action:?} environment-wide"
            );
            assert!(matches!(
                key.authorize_in(action, "app-b"),
                Err(Error::NotFound)
            ));
        }
        assert!(key.authorize_in(Action::ViewApplications, "app-a").is_ok());
        assert!(
            key.authorize_in(Action::ManageApplications, "app-a")
                .is_err()
        );
        assert!(key.authorize_in(Action::ViewAudit, "app-a").is_err());
        assert!(app_key_allows(&[Scope::AuditRead], Action::ViewAudit));
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()).ok(), Some(scope));
        }
        assert!(Scope::parse("admin").is_err());
    }

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).ok(), Some(role));
        }
        assert_eq!(
            Role::parse("root").err().map(|e| e.code()),
            Some("invalid_role")
        );
    }
}
