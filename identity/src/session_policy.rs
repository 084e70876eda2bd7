//! Session policy: how long tokens and sign-in sessions live for one application.
//!
//! Every value resolves in three layers: the application's own override, else the environment-wide
//! default (Settings), else the built-in default for the application's type. A few values are fixed by
//! the type whatever is configured: public clients (`spa`, `native`) always rotate refresh tokens, and
//! `m2m` applications never get refresh tokens. The effective policy carries where each value came from.

use crate::applications::AppType;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The values an application or the environment may override; `None` inherits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_ttl_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_idle_ttl_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_absolute_ttl_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_rotation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_max_age_secs: Option<i64>,
}

/// One duration's name, bounds and label.
struct Bound {
    key: &'static str,
    min: i64,
    max: i64,
    label: &'static str,
}

const DURATIONS: [Bound; 5] = [
    Bound {
        key: "access_token_ttl_secs",
        min: MINUTE,
        max: DAY,
        label: "Access token lifetime must be between 1 minute and 24 hours.",
    },
    Bound {
        key: "id_token_ttl_secs",
        min: MINUTE,
        max: DAY,
        label: "ID token lifetime must be between 1 minute and 24 hours.",
    },
    Bound {
        key: "refresh_idle_ttl_secs",
        min: 5 * MINUTE,
        max: 90 * DAY,
        label: "Refresh idle lifetime must be between 5 minutes and 90 days.",
    },
    Bound {
        key: "refresh_absolute_ttl_secs",
        min: HOUR,
        max: 365 * DAY,
        label: "Refresh absolute lifetime must be between 1 hour and 365 days.",
    },
    Bound {
        key: "session_max_age_secs",
        min: 5 * MINUTE,
        max: 365 * DAY,
        label: "Sign-in session maximum age must be between 5 minutes and 365 days.",
    },
];

const SWITCHES: [&str; 2] = ["refresh_tokens", "refresh_rotation"];

/// Every policy key, in display order.
pub const KEYS: [&str; 7] = [
    "access_token_ttl_secs",
    "id_token_ttl_secs",
    "refresh_tokens",
    "refresh_idle_ttl_secs",
    "refresh_absolute_ttl_secs",
    "refresh_rotation",
    "session_max_age_secs",
];

fn field(key: &str) -> &'static str {
    KEYS.iter()
        .find(|k| **k == key)
        .copied()
        .unwrap_or("session_policy")
}

fn invalid(key: &str, code: &'static str, message: &str) -> Error {
    Error::Invalid {
        field: field(key),
        code,
        message: message.to_owned(),
    }
}

impl Overrides {
    /// Parses stored JSON; anything unreadable counts as no overrides (the write path validated it).
    pub fn from_db(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_db(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies a JSON patch: a value sets the override, `null` removes it (inherit), absent keys stay.
    /// Each value is checked against its bounds; unknown keys are refused.
    pub fn merge(&self, patch: &Map<String, Value>) -> Result<Self> {
        let mut current = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        for (key, value) in patch {
            if !KEYS.contains(&key.as_str()) {
                return Err(invalid(
                    "session_policy",
                    "unknown_policy_field",
                    &format!("Unknown session policy field {key}."),
                ));
            }
            if value.is_null() {
                current.remove(key);
                continue;
            }
            if let Some(bound) = DURATIONS.iter().find(|b| b.key == key) {
                match value.as_i64() {
                    Some(n) if (bound.min..=bound.max).contains(&n) => {}
                    _ => return Err(invalid(key, "policy_out_of_bounds", bound.label)),
                }
            } else if SWITCHES.contains(&key.as_str()) && !value.is_boolean() {
                return Err(invalid(key, "policy_not_boolean", "Must be true or false."));
            }
            current.insert(key.clone(), value.clone());
        }
        serde_json::from_value(Value::Object(current))
            .map_err(|e| invalid("session_policy", "invalid_session_policy", &e.to_string()))
    }
}

/// Where an effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The application overrides it.
    Application,
    /// The environment-wide default in Settings.
    Environment,
    /// The built-in default for the application's type.
    Default,
    /// Fixed by the application's type, whatever is configured.
    Type,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Application => "this application",
            Source::Environment => "environment default",
            Source::Default => "built-in default",
            Source::Type => "fixed by type",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved<T> {
    pub value: T,
    pub source: Source,
}

/// The policy in force for one application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    pub access_token_ttl_secs: Resolved<i64>,
    pub id_token_ttl_secs: Resolved<i64>,
    pub refresh_tokens: Resolved<bool>,
    pub refresh_idle_ttl_secs: Resolved<i64>,
    pub refresh_absolute_ttl_secs: Resolved<i64>,
    pub refresh_rotation: Resolved<bool>,
    pub session_max_age_secs: Resolved<i64>,
}

/// The built-in defaults: long-lived for native apps, shorter for browser-based ones.
pub fn type_defaults(app_type: AppType) -> Overrides {
    let (access, idle, absolute, max_age) = match app_type {
        AppType::Web => (HOUR, 7 * DAY, 30 * DAY, DAY),
        AppType::Spa => (15 * MINUTE, DAY, 7 * DAY, DAY),
        AppType::Native => (HOUR, 30 * DAY, 90 * DAY, 30 * DAY),
        AppType::M2m => (HOUR, DAY, 7 * DAY, DAY),
    };
    Overrides {
        access_token_ttl_secs: Some(access),
        id_token_ttl_secs: Some(HOUR),
        refresh_tokens: Some(app_type != AppType::M2m),
        refresh_idle_ttl_secs: Some(idle),
        refresh_absolute_ttl_secs: Some(absolute),
        refresh_rotation: Some(true),
        session_max_age_secs: Some(max_age),
    }
}

fn pick<T: Copy>(app: Option<T>, env: Option<T>, default: Option<T>, fallback: T) -> Resolved<T> {
    match (app, env, default) {
        (Some(value), _, _) => Resolved {
            value,
            source: Source::Application,
        },
        (None, Some(value), _) => Resolved {
            value,
            source: Source::Environment,
        },
        (None, None, value) => Resolved {
            value: value.unwrap_or(fallback),
            source: Source::Default,
        },
    }
}

/// Resolves the effective policy of an application of `app_type`.
pub fn resolve(app_type: AppType, env: &Overrides, app: &Overrides) -> Effective {
    let d = type_defaults(app_type);
    let fixed = |value| Resolved {
        value,
        source: Source::Type,
    };
    let absolute = pick(
        app.refresh_absolute_ttl_secs,
        env.refresh_absolute_ttl_secs,
        d.refresh_absolute_ttl_secs,
        DAY,
    );
    let mut idle = pick(
        app.refresh_idle_ttl_secs,
        env.refresh_idle_ttl_secs,
        d.refresh_idle_ttl_secs,
        DAY,
    );
    // Layers set independently can cross; the shorter bound wins.
    idle.value = idle.value.min(absolute.value);
    Effective {
        access_token_ttl_secs: pick(
            app.access_token_ttl_secs,
            env.access_token_ttl_secs,
            d.access_token_ttl_secs,
            HOUR,
        ),
        id_token_ttl_secs: pick(
            app.id_token_ttl_secs,
            env.id_token_ttl_secs,
            d.id_token_ttl_secs,
            HOUR,
        ),
        refresh_tokens: if app_type == AppType::M2m {
            fixed(false)
        } else {
            pick(
                app.refresh_tokens,
                env.refresh_tokens,
                d.refresh_tokens,
                true,
            )
        },
        refresh_idle_ttl_secs: idle,
        refresh_absolute_ttl_secs: absolute,
        refresh_rotation: if app_type.is_confidential() {
            pick(
                app.refresh_rotation,
                env.refresh_rotation,
                d.refresh_rotation,
                true,
            )
        } else {
            fixed(true)
        },
        session_max_age_secs: pick(
            app.session_max_age_secs,
            env.session_max_age_secs,
            d.session_max_age_secs,
            DAY,
        ),
    }
}

/// Checks an application's overrides against its type and the resolved result.
pub fn check_for_type(app_type: AppType, env: &Overrides, app: &Overrides) -> Result<()> {
    if !app_type.is_confidential() && app.refresh_rotation == Some(false) {
        return Err(invalid(
            "refresh_rotation",
            "rotation_required",
            "Public applications (spa, native) always rotate refresh tokens.",
        ));
    }
    if app_type == AppType::M2m && app.refresh_tokens == Some(true) {
        return Err(invalid(
            "refresh_tokens",
            "refresh_not_allowed",
            "Machine-to-machine applications do not get refresh tokens.",
        ));
    }
    check_order(&resolve(app_type, env, &Overrides::default()), app)
}

/// The idle lifetime may not exceed the absolute one in the values being written.
fn check_order(inherited: &Effective, layer: &Overrides) -> Result<()> {
    let idle = layer
        .refresh_idle_ttl_secs
        .unwrap_or(inherited.refresh_idle_ttl_secs.value);
    let absolute = layer
        .refresh_absolute_ttl_secs
        .unwrap_or(inherited.refresh_absolute_ttl_secs.value);
    if (layer.refresh_idle_ttl_secs.is_some() || layer.refresh_absolute_ttl_secs.is_some())
        && idle > absolute
    {
        return Err(invalid(
            "refresh_idle_ttl_secs",
            "idle_exceeds_absolute",
            "Refresh idle lifetime may not exceed the absolute lifetime.",
        ));
    }
    Ok(())
}

/// Checks environment-wide defaults against every type's built-in defaults.
pub fn check_environment(env: &Overrides) -> Result<()> {
    AppType::ALL.into_iter().try_for_each(|t| {
        check_order(
            &resolve(t, &Overrides::default(), &Overrides::default()),
            env,
        )
    })
}

/// A duration for people: "15 min", "1 h", "30 days".
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s % DAY == 0 => format!("{} day{}", s / DAY, if s == DAY { "" } else { "s" }),
        s if s % HOUR == 0 => format!("{} h", s / HOUR),
        s if s % MINUTE == 0 => format!("{} min", s / MINUTE),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn layers_resolve_app_then_environment_then_default() {
        let env = Overrides {
            access_token_ttl_secs: Some(600),
            id_token_ttl_secs: Some(1200),
            ..Default::default()
        };
        let app = Overrides {
            access_token_ttl_secs: Some(300),
            ..Default::default()
        };
        let e = resolve(AppType::Web, &env, &app);
        assert_eq!(e.access_token_ttl_secs.value, 300);
        assert_eq!(e.access_token_ttl_secs.source, Source::Application);
        assert_eq!(e.id_token_ttl_secs.value, 1200);
        assert_eq!(e.id_token_ttl_secs.source, Source::Environment);
        assert_eq!(e.refresh_idle_ttl_secs.source, Source::Default);
    }

    #[test]
    fn native_lives_longer_than_spa() {
        let none = Overrides::default();
        let spa = resolve(AppType::Spa, &none, &none);
        let native = resolve(AppType::Native, &none, &none);
        assert!(native.refresh_absolute_ttl_secs.value > spa.refresh_absolute_ttl_secs.value);
        assert!(native.access_token_ttl_secs.value > spa.access_token_ttl_secs.value);
    }

    #[test]
    fn the_type_fixes_rotation_and_m2m_refresh() {
        let off = Overrides {
            refresh_rotation: Some(false),
            refresh_tokens: Some(true),
            ..Default::default()
        };
        let spa = resolve(AppType::Spa, &off, &Overrides::default());
        assert_eq!(
            spa.refresh_rotation,
            Resolved {
                value: true,
                source: Source::Type
            }
        );
        let m2m = resolve(AppType::M2m, &off, &Overrides::default());
        assert_eq!(
            m2m.refresh_tokens,
            Resolved {
                value: false,
                source: Source::Type
            }
        );
        let web = resolve(AppType::Web, &off, &Overrides::default());
        assert!(!web.refresh_rotation.value);
        let code = |t, o: &Overrides| {
            check_for_type(t, &Overrides::default(), o)
                .err()
                .map(|e| e.code())
        };
        let no_rotation = Overrides {
            refresh_rotation: Some(false),
            ..Default::default()
        };
        assert_eq!(
            code(AppType::Native, &no_rotation),
            Some("rotation_required")
        );
        assert_eq!(code(AppType::Web, &no_rotation), None);
        let refresh = Overrides {
            refresh_tokens: Some(true),
            ..Default::default()
        };
        assert_eq!(code(AppType::M2m, &refresh), Some("refresh_not_allowed"));
    }

    #[test]
    fn merge_sets_clears_and_bounds() {
        let base = Overrides::default()
            .merge(&patch(
                json!({"access_token_ttl_secs": 600, "refresh_tokens": false}),
            ))
            .unwrap_or_default();
        assert_eq!(base.access_token_ttl_secs, Some(600));
        let cleared = base
            .merge(&patch(json!({"access_token_ttl_secs": null})))
            .unwrap_or_default();
        assert_eq!(cleared.access_token_ttl_secs, None);
        assert_eq!(cleared.refresh_tokens, Some(false));
        for (bad, code) in [
            (json!({"access_token_ttl_secs": 59}), "policy_out_of_bounds"),
            (
                json!({"access_token_ttl_secs": 86_401}),
                "policy_out_of_bounds",
            ),
            (
                json!({"access_token_ttl_secs": "600"}),
                "policy_out_of_bounds",
            ),
            (
                json!({"access_token_ttl_secs": 1.5}),
                "policy_out_of_bounds",
            ),
            (json!({"refresh_tokens": "yes"}), "policy_not_boolean"),
            (json!({"lifetime": 5}), "unknown_policy_field"),
        ] {
            let err = base.merge(&patch(bad.clone())).err();
            assert_eq!(err.as_ref().map(|e| e.code()), Some(code), "{bad}");
        }
        let err = base
            .merge(&patch(json!({"access_token_ttl_secs": 10})))
            .err();
        assert_eq!(err.and_then(|e| e.field()), Some("access_token_ttl_secs"));
    }

    #[test]
    fn idle_may_not_exceed_absolute() {
        let o = Overrides {
            refresh_idle_ttl_secs: Some(20 * DAY),
            refresh_absolute_ttl_secs: Some(10 * DAY),
            ..Default::default()
        };
        let err = check_for_type(AppType::Web, &Overrides::default(), &o).err();
        assert_eq!(err.map(|e| e.code()), Some("idle_exceeds_absolute"));
        // Environment idle longer than the SPA default absolute (7 days) is refused too.
        let env = Overrides {
            refresh_idle_ttl_secs: Some(8 * DAY),
            ..Default::default()
        };
        assert!(check_environment(&env).is_err());
        // Inherited values that cross resolve to the shorter one.
        let app = Overrides {
            refresh_absolute_ttl_secs: Some(2 * DAY),
            ..Default::default()
        };
        let e = resolve(AppType::Native, &Overrides::default(), &app);
        assert_eq!(e.refresh_idle_ttl_secs.value, 2 * DAY);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(900), "15 min");
        assert_eq!(human_duration(3600), "1 h");
        assert_eq!(human_duration(86_400), "1 day");
        assert_eq!(human_duration(30 * 86_400), "30 days");
        assert_eq!(human_duration(61), "61 s");
    }
}
