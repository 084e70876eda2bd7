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
    /// Create, configure, disable and delete applications.
    ManageApplications,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::ViewDashboard,
        Action::ViewStaff,
        Action::ManageStaff,
        Action::ViewAudit,
        Action::ViewSettings,
        Action::ViewApplications,
        Action::ManageApplications,
    ];
}

/// The permission table.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        ViewDashboard | ViewApplications => true,
        ManageApplications => matches!(role, Owner | Operator),
        ViewStaff | ViewSettings => matches!(role, Owner | Operator | Auditor),
        ManageStaff => role == Owner,
        ViewAudit => matches!(role, Owner | Auditor),
    }
}

/// Who is calling: a signed-in staff member or an environment admin API key, with its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
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
}

impl Principal {
    pub fn authorize(&self, action: Action) -> Result<()> {
        if allows(self.role, action) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    pub fn can(&self, action: Action) -> bool {
        allows(self.role, action)
    }

    pub fn actor(&self) -> Actor {
        match &self.kind {
            PrincipalKind::Staff {
                staff_id, email, ..
            } => Actor::Staff {
                id: staff_id.clone(),
                email: email.clone(),
            },
            PrincipalKind::ApiKey { api_key_id, name } => Actor::ApiKey {
                id: api_key_id.clone(),
                name: name.clone(),
            },
        }
    }

    pub fn staff_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Staff { staff_id, .. } => Some(staff_id),
            PrincipalKind::ApiKey { .. } => None,
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
            (ManageApplications, true, true, false, false),
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
        let writes = [Action::ManageStaff, Action::ManageApplications];
        assert!(writes.iter().all(|a| !allows(Role::Auditor, *a)));
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
