//! The audit event catalog: every event Portcullis writes, with its category, what it means, what
//! it is about (target type) and the fields its `detail` may carry. The dashboard renders it
//! (Audit log → Catalog), the OpenAPI document exports it, and the integration suite checks every
//! event it writes against it (a new event or detail field must be added here).

use crate::audit::Event;
use serde::Serialize;

/// Every event's version: bumped when an event's fields change meaning.
pub const VERSION: u32 = 1;

/// One catalog entry.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EventInfo {
    pub name: &'static str,
    pub category: &'static str,
    pub version: u32,
    pub description: &'static str,
    /// What the event is about (`target_type`), when it has a target.
    pub target: Option<&'static str>,
    /// The keys its `detail` object may carry.
    pub fields: &'static [&'static str],
}

/// The categories, in the order the dashboard lists them.
pub const CATEGORIES: [&str; 13] = [
    "sign_in",
    "staff",
    "credential",
    "application",
    "settings",
    "user",
    "organization",
    "role",
    "key",
    "token",
    "session",
    "impersonation",
    "audit",
];

/// The catalog entry of `event`.
pub fn info(event: Event) -> EventInfo {
    let (e, category, description, target, fields) = CATALOG
        .iter()
        .find(|(e, ..)| *e == event)
        .copied()
        .unwrap_or((event, "other", "", None, &[]));
    EventInfo {
        name: e.name(),
        category,
        version: VERSION,
        description,
        target,
        fields,
    }
}

/// The whole catalog, in the order of [`Event::ALL`].
pub fn all() -> Vec<EventInfo> {
    Event::ALL.into_iter().map(info).collect()
}

/// The entry for a stored event name.
pub fn by_name(name: &str) -> Option<EventInfo> {
    Event::ALL.into_iter().find(|e| e.name() == name).map(info)
}

/// (event, category, description, target type, detail fields)
/// An entry of the table below.
type Entry = (
    Event,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
);

const CATALOG: &[Entry] = &[
    // staff.signed_in
    (
        Event::StaffSignedIn,
        "sign_in",
        "A staff member signed in to the dashboard.",
        Some("staff"),
        &["method", "session_id"],
    ),
    // staff.sign_in_failed — target: None when the email is unknown or the attempt was throttled
    (
        Event::StaffSignInFailed,
        "sign_in",
        "A staff sign-in attempt failed or was throttled.",
        Some("staff"),
        &["email", "reason"],
    ),
    // staff.signed_out
    (
        Event::StaffSignedOut,
        "sign_in",
        "A staff member signed out of the dashboard.",
        Some("staff"),
        &["session_id"],
    ),
    // staff.created
    (
        Event::StaffCreated,
        "staff",
        "A staff member was created with a password (e.g. the first owner, from the CLI).",
        Some("staff"),
        &["after"],
    ),
    // staff.invited
    (
        Event::StaffInvited,
        "staff",
        "A staff member was invited to the dashboard.",
        Some("staff"),
        &["after", "expires_at"],
    ),
    // staff.invitation_accepted
    (
        Event::StaffInvitationAccepted,
        "staff",
        "An invited staff member accepted the invitation and chose a password.",
        Some("staff"),
        &["after", "before"],
    ),
    // staff.role_changed
    (
        Event::StaffRoleChanged,
        "staff",
        "A staff member's role was changed.",
        Some("staff"),
        &["after", "before"],
    ),
    // staff.disabled
    (
        Event::StaffDisabled,
        "staff",
        "A staff member was disabled and their sessions were ended.",
        Some("staff"),
        &["after", "before"],
    ),
    // staff.enabled
    (
        Event::StaffEnabled,
        "staff",
        "A disabled staff member was enabled again.",
        Some("staff"),
        &["after", "before"],
    ),
    // api_key.created — target: literal Target { kind: "api_key" }
    (
        Event::ApiKeyCreated,
        "credential",
        "A management API key was created.",
        Some("api_key"),
        &["after"],
    ),
    // api_key.revoked — target: literal Target { kind: "api_key" }
    (
        Event::ApiKeyRevoked,
        "credential",
        "A management API key was revoked.",
        Some("api_key"),
        &["after"],
    ),
    // application.created
    (
        Event::ApplicationCreated,
        "application",
        "An application was created.",
        Some("application"),
        &["after"],
    ),
    // application.updated
    (
        Event::ApplicationUpdated,
        "application",
        "An application's settings were changed.",
        Some("application"),
        &["after", "before"],
    ),
    // application.disabled
    (
        Event::ApplicationDisabled,
        "application",
        "An application was disabled.",
        Some("application"),
        &["after", "before"],
    ),
    // application.enabled
    (
        Event::ApplicationEnabled,
        "application",
        "A disabled application was enabled again.",
        Some("application"),
        &["after", "before"],
    ),
    // application.deleted
    (
        Event::ApplicationDeleted,
        "application",
        "An application was deleted.",
        Some("application"),
        &["before"],
    ),
    // client_secret.created
    (
        Event::ClientSecretCreated,
        "credential",
        "A client secret was created or rotated for an application.",
        Some("application"),
        &["display", "expires_at", "rotated_from", "secret_id"],
    ),
    // client_secret.revoked
    (
        Event::ClientSecretRevoked,
        "credential",
        "A client secret was revoked.",
        Some("application"),
        &["secret_id"],
    ),
    // app_api_key.created
    (
        Event::AppApiKeyCreated,
        "credential",
        "An application API key was created.",
        Some("application"),
        &["after"],
    ),
    // app_api_key.revoked
    (
        Event::AppApiKeyRevoked,
        "credential",
        "An application API key was revoked.",
        Some("application"),
        &["after", "key_id"],
    ),
    // settings.updated — target: literal Target { kind: "settings" }
    (
        Event::SettingsUpdated,
        "settings",
        "The environment session policy was changed.",
        Some("settings"),
        &["after", "before"],
    ),
    // user.created
    (
        Event::UserCreated,
        "user",
        "A user was created with a password.",
        Some("user"),
        &["after", "application_id", "seeded"],
    ),
    // user.invited
    (
        Event::UserInvited,
        "user",
        "A user was invited and sent an invitation link.",
        Some("user"),
        &["after", "application_id"],
    ),
    // user.updated
    (
        Event::UserUpdated,
        "user",
        "A user's profile was changed.",
        Some("user"),
        &["after", "before"],
    ),
    // user.disabled
    (
        Event::UserDisabled,
        "user",
        "A user was disabled and their sessions were ended.",
        Some("user"),
        &["after", "before"],
    ),
    // user.enabled
    (
        Event::UserEnabled,
        "user",
        "A disabled user was enabled again.",
        Some("user"),
        &["after", "before"],
    ),
    // user.signed_in
    (
        Event::UserSignedIn,
        "sign_in",
        "A user signed in on the hosted pages.",
        Some("user"),
        &["application_id", "method", "session_id"],
    ),
    // user.sign_in_failed — target: None when the email is unknown or the attempt was throttled
    (
        Event::UserSignInFailed,
        "sign_in",
        "A user sign-in attempt failed or was throttled.",
        Some("user"),
        &["application_id", "email", "reason"],
    ),
    // user.signed_up
    (
        Event::UserSignedUp,
        "user",
        "A user signed up on the hosted pages.",
        Some("user"),
        &["after", "application_id", "session_id"],
    ),
    // user.signed_out
    (
        Event::UserSignedOut,
        "sign_in",
        "A user signed out, on the hosted pages or through RP-initiated logout.",
        Some("user"),
        &["client_id", "method", "session_id"],
    ),
    // user.password_reset_requested
    (
        Event::UserPasswordResetRequested,
        "user",
        "A password reset link was sent to a user.",
        Some("user"),
        &["application_id"],
    ),
    // user.password_reset
    (
        Event::UserPasswordReset,
        "user",
        "A user set a new password through a reset link.",
        Some("user"),
        &["application_id"],
    ),
    // user.invitation_accepted
    (
        Event::UserInvitationAccepted,
        "user",
        "An invited user accepted the invitation and set a password.",
        Some("user"),
        &["application_id"],
    ),
    // user.session_revoked
    (
        Event::UserSessionRevoked,
        "sign_in",
        "One of a user's sign-in sessions was revoked.",
        Some("user"),
        &["session_id"],
    ),
    // organization.created
    (
        Event::OrganizationCreated,
        "organization",
        "An organization was created.",
        Some("organization"),
        &["after"],
    ),
    // organization.deleted
    (
        Event::OrganizationDeleted,
        "organization",
        "An organization was deleted.",
        Some("organization"),
        &[],
    ),
    // organization.member_added
    (
        Event::OrganizationMemberAdded,
        "organization",
        "A user was added to an organization, or their role in it changed.",
        Some("organization"),
        &["role", "user_id"],
    ),
    // organization.member_removed
    (
        Event::OrganizationMemberRemoved,
        "organization",
        "A user was removed from an organization.",
        Some("organization"),
        &["user_id"],
    ),
    // app_role.created
    (
        Event::AppRoleCreated,
        "role",
        "An application role was created.",
        Some("application"),
        &["after"],
    ),
    // app_role.deleted
    (
        Event::AppRoleDeleted,
        "role",
        "An application role was deleted.",
        Some("application"),
        &["before"],
    ),
    // app_role.granted
    (
        Event::AppRoleGranted,
        "role",
        "An application role was granted to a user.",
        Some("user"),
        &["application_id", "role", "role_id"],
    ),
    // app_role.revoked
    (
        Event::AppRoleRevoked,
        "role",
        "An application role was revoked from a user.",
        Some("user"),
        &["application_id", "role_id"],
    ),
    // signing_key.created — target: literal Target { kind: "signing_key" }
    (
        Event::SigningKeyCreated,
        "key",
        "A signing key was created at first start.",
        Some("signing_key"),
        &["alg", "kid", "status"],
    ),
    // signing_key.rotated — target: literal Target { kind: "signing_key" }
    (
        Event::SigningKeyRotated,
        "key",
        "The signing keys were rotated.",
        Some("signing_key"),
        &["current", "next"],
    ),
    // authorization.code_issued
    (
        Event::AuthorizationCodeIssued,
        "token",
        "An authorization code was issued to an application.",
        Some("user"),
        &[
            "application_id",
            "client_id",
            "impersonation_id",
            "scope",
            "session_id",
        ],
    ),
    // token.issued — target: "application" for client_credentials; under impersonation the code grant writes impersonation.token_issued instead
    (
        Event::TokenIssued,
        "token",
        "Tokens were issued at the token endpoint.",
        Some("user"),
        &[
            "application_id",
            "client_id",
            "family_id",
            "grant_type",
            "jti",
            "refresh_token",
            "scope",
        ],
    ),
    // token.refreshed — under impersonation written as impersonation.token_issued instead
    (
        Event::TokenRefreshed,
        "token",
        "Tokens were refreshed with a refresh token.",
        Some("user"),
        &[
            "application_id",
            "client_id",
            "family_id",
            "jti",
            "rotated",
            "scope",
        ],
    ),
    // token.reuse_detected
    (
        Event::TokenReuseDetected,
        "token",
        "A used authorization code or refresh token was presented again and its tokens were revoked.",
        Some("user"),
        &["application_id", "client_id", "family_id", "kind"],
    ),
    // token.revoked — target: "application" for an access token with no user (client_credentials)
    (
        Event::TokenRevoked,
        "token",
        "An application revoked a token.",
        Some("user"),
        &["application_id", "client_id", "family_id", "jti", "kind"],
    ),
    // logout.delivered
    (
        Event::LogoutDelivered,
        "session",
        "A back-channel logout was delivered to an application.",
        Some("application"),
        &["attempts", "delivery_id", "status", "url"],
    ),
    // logout.delivery_failed
    (
        Event::LogoutDeliveryFailed,
        "session",
        "A back-channel logout could not be delivered after the last retry.",
        Some("application"),
        &["attempts", "delivery_id", "error", "url"],
    ),
    // impersonation.policy_updated
    (
        Event::ImpersonationPolicyUpdated,
        "impersonation",
        "An application's impersonation policy was changed.",
        Some("application"),
        &["after", "before"],
    ),
    // impersonation.assigned
    (
        Event::ImpersonationAssigned,
        "impersonation",
        "A staff member was allowed to impersonate users in an application.",
        Some("application"),
        &["staff_email", "staff_id"],
    ),
    // impersonation.unassigned
    (
        Event::ImpersonationUnassigned,
        "impersonation",
        "A staff member may no longer impersonate users in an application.",
        Some("application"),
        &["staff_id"],
    ),
    // impersonation.requested
    (
        Event::ImpersonationRequested,
        "impersonation",
        "A staff member asked to impersonate a user.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "approval_required",
            "duration_secs",
            "impersonation_id",
            "mode",
            "reason",
            "staff_email",
            "staff_id",
            "ticket",
            "user_email",
            "user_id",
        ],
    ),
    // impersonation.approved
    (
        Event::ImpersonationApproved,
        "impersonation",
        "An impersonation request was approved.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "comment",
            "impersonation_id",
            "mode",
            "reason",
            "staff_email",
            "staff_id",
            "ticket",
            "user_email",
            "user_id",
        ],
    ),
    // impersonation.denied
    (
        Event::ImpersonationDenied,
        "impersonation",
        "An impersonation request was denied.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "comment",
            "impersonation_id",
            "mode",
            "reason",
            "staff_email",
            "staff_id",
            "ticket",
            "user_email",
            "user_id",
        ],
    ),
    // impersonation.expired_unapproved
    (
        Event::ImpersonationExpiredUnapproved,
        "impersonation",
        "An impersonation request expired before it was decided or started.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "ended_by",
            "impersonation_id",
            "mode",
            "reason",
            "reason_ended",
            "staff_email",
            "staff_id",
            "ticket",
            "user_email",
            "user_id",
            "was",
        ],
    ),
    // impersonation.started
    (
        Event::ImpersonationStarted,
        "impersonation",
        "A staff member started impersonating a user.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "ends_at",
            "impersonation_id",
            "mode",
            "reason",
            "session_id",
            "staff_email",
            "staff_id",
            "ticket",
            "user_email",
            "user_id",
        ],
    ),
    // impersonation.token_issued
    (
        Event::ImpersonationTokenIssued,
        "impersonation",
        "Tokens were issued or refreshed during an impersonation.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "client_id",
            "event",
            "family_id",
            "grant_type",
            "impersonation_id",
            "jti",
            "mode",
            "reason",
            "refresh_token",
            "rotated",
            "scope",
            "staff_email",
            "staff_id",
            "ticket",
            "user_email",
            "user_id",
        ],
    ),
    // impersonation.ended
    (
        Event::ImpersonationEnded,
        "impersonation",
        "An impersonation was ended or withdrawn, and its tokens and session were revoked.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "ended_by",
            "impersonation_id",
            "mode",
            "reason",
            "reason_ended",
            "staff_email",
            "staff_id",
            "ticket",
            "user_email",
            "user_id",
            "was",
        ],
    ),
    // impersonation.user_notified
    (
        Event::ImpersonationUserNotified,
        "impersonation",
        "The user was emailed that support accessed their account.",
        Some("impersonation"),
        &[
            "application_id",
            "application_name",
            "impersonation_id",
            "mode",
            "reason",
            "staff_email",
            "staff_id",
            "ticket",
            "to",
            "user_email",
            "user_id",
        ],
    ),
    // audit.purged
    (
        Event::AuditPurged,
        "audit",
        "Events older than the retention period were purged; a signed checkpoint records the chain head at the purge point.",
        Some("audit_checkpoint"),
        &[
            "cutoff",
            "kid",
            "purged",
            "retention_days",
            "through_hash",
            "through_seq",
        ],
    ),
    // audit_stream.created
    (
        Event::AuditStreamCreated,
        "audit",
        "A webhook stream of audit events (to a SIEM) was created.",
        Some("audit_stream"),
        &["filter", "name", "secret_hint", "url"],
    ),
    // audit_stream.updated
    (
        Event::AuditStreamUpdated,
        "audit",
        "A webhook stream was changed, paused or resumed.",
        Some("audit_stream"),
        &["after", "before"],
    ),
    // audit_stream.secret_rotated
    (
        Event::AuditStreamSecretRotated,
        "audit",
        "A webhook stream's signing secret was replaced.",
        Some("audit_stream"),
        &["name", "secret_hint"],
    ),
    // audit_stream.deleted
    (
        Event::AuditStreamDeleted,
        "audit",
        "A webhook stream was deleted (the events it carried stay in the log).",
        Some("audit_stream"),
        &["name", "url"],
    ),
    // audit_stream.redelivery_requested
    (
        Event::AuditStreamRedeliveryRequested,
        "audit",
        "A staff member asked for a past delivery of a webhook stream to be sent again.",
        Some("audit_stream"),
        &["delivery_id", "events", "first_seq", "last_seq", "name"],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_one_entry_with_a_known_category() {
        for e in Event::ALL {
            assert_eq!(
                CATALOG.iter().filter(|(c, ..)| *c == e).count(),
                1,
                "{}",
                e.name()
            );
            let i = info(e);
            assert!(
                CATEGORIES.contains(&i.category),
                "{}: {}",
                i.name,
                i.category
            );
            assert!(!i.description.is_empty(), "{}", i.name);
        }
        assert_eq!(CATALOG.len(), Event::ALL.len());
    }
}
