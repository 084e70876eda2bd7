use super::{AppError, AuditRow};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The newest audit events matching `filter`, 50 per page; `before` is the last `seq` of the
/// previous page.
#[server(prefix = "/rpc", endpoint = "recent_audit")]
pub async fn recent_audit(
    filter: Option<AuditFilter>,
    before: Option<i64>,
) -> Result<Vec<AuditRow>, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let filter = filter.unwrap_or_default();
    let records = identity::audit::list(
        &call.identity,
        principal,
        &filter.to_identity()?,
        before,
        50,
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(records.into_iter().map(crate::ssr::audit_row).collect())
}

/// The Audit log page's filters, as they appear in its URL (so a link reproduces the view). Times
/// are dates or date-times (UTC) as the browser's inputs send them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// `1h`, `24h`, `7d`, `30d`, or empty for custom/all.
    pub range: String,
    pub from: String,
    pub to: String,
    pub actor_type: String,
    pub actor: String,
    pub category: String,
    pub event: String,
    pub application: String,
    pub user: String,
    pub outcome: String,
    pub ip: String,
    pub q: String,
    pub target: String,
    pub request: String,
}

impl AuditFilter {
    /// The filters that are set, as (URL name, value).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("range", &self.range),
            ("from", &self.from),
            ("to", &self.to),
            ("actor_type", &self.actor_type),
            ("actor", &self.actor),
            ("category", &self.category),
            ("event", &self.event),
            ("application", &self.application),
            ("user", &self.user),
            ("outcome", &self.outcome),
            ("ip", &self.ip),
            ("q", &self.q),
            ("target", &self.target),
            ("request", &self.request),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect()
    }

    /// The query string of these filters (empty values left out).
    pub fn query(&self) -> String {
        self.pairs()
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::components::ui::encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The identity filter (presets resolved to times now).
    #[cfg(feature = "ssr")]
    pub fn to_identity(&self) -> Result<identity::audit::Filter, AppError> {
        let some = |v: &String| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        let time = |field: &str, v: &String| -> Result<Option<i64>, AppError> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            identity::Timestamp::parse_utc(v)
                .map(|t| Some(t.millis()))
                .ok_or_else(|| {
                    crate::ssr::invalid(field, "Enter a date (YYYY-MM-DD) or a date and time.")
                })
        };
        let now = identity::Timestamp::now();
        let (mut from, to) = (time("from", &self.from)?, time("to", &self.to)?);
        let span = match self.range.as_str() {
            "1h" => Some(3_600),
            "24h" => Some(86_400),
            "7d" => Some(7 * 86_400),
            "30d" => Some(30 * 86_400),
            _ => None,
        };
        if let Some(secs) = span {
            from = Some(now.minus_secs(secs).millis());
        }
        Ok(identity::audit::Filter {
            from,
            to: if span.is_some() { None } else { to },
            actor_type: some(&self.actor_type),
            actor_id: some(&self.actor),
            category: some(&self.category),
            event: some(&self.event),
            application_id: some(&self.application),
            user_id: some(&self.user),
            outcome: some(&self.outcome),
            ip: some(&self.ip),
            text: some(&self.q),
            target: some(&self.target),
            request_id: some(&self.request),
        })
    }
}

/// One field of an event's before/after, for the diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A link from an event's page to something it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub href: String,
}

/// Everything about one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditDetail {
    pub row: AuditRow,
    pub event_id: String,
    pub category: String,
    pub description: String,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The detail, pretty-printed.
    pub detail_pretty: String,
    /// Fields of `before`/`after`, changed ones first.
    pub changes: Vec<Change>,
    /// Actor, target, application and user pages.
    pub links: Vec<Link>,
    /// Audit views of the same request, impersonation or sign-in session.
    pub related: Vec<Link>,
    pub prev_hash: String,
    pub hash: String,
}

#[server(prefix = "/rpc", endpoint = "audit_event")]
pub async fn audit_event(seq: i64) -> Result<AuditDetail, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let r = identity::audit::get(&call.identity, principal, seq)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(crate::ssr::audit_detail(r))
}

/// The outcome of "Verify" on the Audit log page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub checked: i64,
    pub first_broken: Option<i64>,
    /// The retention checkpoint the check started from (older events were purged).
    pub checkpoint: Option<i64>,
    /// Why that checkpoint cannot be trusted, if so.
    pub checkpoint_problem: Option<String>,
}

/// Recomputes the hash chain over `from..=to` (sequence numbers; empty = from the first / to the
/// head).
#[server(prefix = "/rpc", endpoint = "verify_audit")]
pub async fn verify_audit(from: String, to: String) -> Result<Verified, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    principal
        .authorize(identity::Action::ViewAudit)
        .map_err(crate::ssr::fail)?;
    let seq = |field: &str, v: &str| -> Result<Option<i64>, AppError> {
        match v.trim() {
            "" => Ok(None),
            v => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| crate::ssr::invalid(field, "Enter an event number (#).")),
        }
    };
    let v = identity::audit::verify_range(&call.identity, seq("from", &from)?, seq("to", &to)?)
        .await
        .map_err(crate::ssr::fail)?;
    Ok(Verified {
        checked: v.checked,
        first_broken: v.first_broken,
        checkpoint: v.checkpoint,
        checkpoint_problem: v.checkpoint_problem,
    })
}

/// One catalog entry, as the catalog page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRow {
    pub name: String,
    pub category: String,
    pub version: u32,
    pub description: String,
    pub target: Option<String>,
    pub fields: Vec<String>,
}

/// The event catalog, the applications to filter by, and the viewer's rights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOptions {
    pub catalog: Vec<CatalogRow>,
    pub categories: Vec<String>,
    /// (id, name)
    pub applications: Vec<(String, String)>,
    /// How long events are kept (0: forever).
    pub retention_days: i64,
    /// The newest retention checkpoint: (last purged #, when).
    pub checkpoint: Option<(i64, String)>,
}

#[server(prefix = "/rpc", endpoint = "audit_choices")]
pub async fn audit_choices() -> Result<AuditOptions, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    principal
        .authorize(identity::Action::ViewAudit)
        .map_err(crate::ssr::fail)?;
    let apps = crate::ssr::application_choices(&call.identity, principal).await?;
    Ok(AuditOptions {
        catalog: identity::audit_catalog::all()
            .into_iter()
            .map(|i| CatalogRow {
                name: i.name.to_owned(),
                category: i.category.to_owned(),
                version: i.version,
                description: i.description.to_owned(),
                target: i.target.map(str::to_owned),
                fields: i.fields.iter().map(|f| (*f).to_owned()).collect(),
            })
            .collect(),
        categories: identity::audit_catalog::CATEGORIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        applications: apps.into_iter().map(|a| (a.id, a.name)).collect(),
        retention_days: call.identity.settings().audit_retention_days,
        checkpoint: identity::audit_retention::latest(&call.identity)
            .await
            .map_err(crate::ssr::fail)?
            .map(|c| (c.through_seq, c.created_at.rfc3339())),
    })
}

/// The catalog's categories in order (the chart's colours follow it); the server checks the same
/// list (`identity::audit_catalog::CATEGORIES`).
pub const CATEGORY_ORDER: [&str; 13] = [
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

/// The chart above the Audit log: events over time by category (drawn as SVG on the server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chart {
    pub from: String,
    pub to: String,
    pub bucket_minutes: i64,
    pub series: Vec<(String, Vec<i64>)>,
}

#[server(prefix = "/rpc", endpoint = "audit_chart")]
pub async fn audit_chart(filter: Option<AuditFilter>) -> Result<Chart, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let filter = filter.unwrap_or_default().to_identity()?;
    let h = identity::audit::histogram(
        &call.identity,
        principal,
        &filter,
        48,
        identity::Timestamp::now(),
    )
    .await
    .map_err(crate::ssr::fail)?;
    Ok(Chart {
        from: h.from.rfc3339(),
        to: h.to.rfc3339(),
        bucket_minutes: h.bucket_ms / 60_000,
        series: h.series,
    })
}

/// The home page's chart: hosted sign-ins per application per day, the last 14 days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIns {
    /// `MM-DD` per day, oldest first.
    pub days: Vec<String>,
    /// (application name, sign-ins per day), busiest first (at most 8).
    pub series: Vec<(String, Vec<i64>)>,
}

#[server(prefix = "/rpc", endpoint = "sign_ins_per_day")]
pub async fn sign_ins_per_day() -> Result<SignIns, AppError> {
    let call = crate::ssr::call()?;
    let principal = call.principal()?;
    let now = identity::Timestamp::now();
    let series = identity::audit::sign_ins_per_day(&call.identity, principal, 14, now)
        .await
        .map_err(crate::ssr::fail)?;
    let apps = crate::ssr::application_choices(&call.identity, principal)
        .await
        .unwrap_or_default();
    let name = |id: &str| {
        apps.iter()
            .find(|a| a.id == id)
            .map_or_else(|| "(deleted or unknown)".to_owned(), |a| a.name.clone())
    };
    let days = (0..14)
        .map(|d| {
            let t = identity::Timestamp::from_millis(now.millis() - (13 - d) * 86_400_000);
            t.rfc3339().get(5..10).unwrap_or_default().to_owned()
        })
        .collect();
    Ok(SignIns {
        days,
        series: series
            .into_iter()
            .take(8)
            .map(|(id, v)| (name(&id), v))
            .collect(),
    })
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn the_chart_knows_every_category_in_the_catalog_order() {
        assert_eq!(super::CATEGORY_ORDER, identity::audit_catalog::CATEGORIES);
    }
}
