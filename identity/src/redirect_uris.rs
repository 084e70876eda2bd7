//! Redirect and return URIs: the rules an application's URIs must follow, and how a requested URI
//! is matched at sign-in time (exact string comparison; for `native` apps an `http` loopback URI
//! matches with any port, RFC 8252 §7.3).
//!
//! Rules: absolute, no fragment, no wildcard, no userinfo, at most 2048 characters, no whitespace;
//! `https`, or `http` on a loopback host (127.0.0.1, [::1], localhost); private-use schemes in
//! reverse-domain form (`com.example.app:/cb`, RFC 8252 §7.1) only for `native`; `m2m` has none.
//! Lists: no duplicates, at most 50.

use crate::applications::AppType;
use crate::error::{Error, Result};
use serde::Serialize;

pub const MAX_LEN: usize = 2048;
pub const MAX_PER_LIST: usize = 50;

/// A URI that passed the rules for its application type. Kept exactly as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

fn violation(field: &'static str, code: &'static str, message: &str) -> Error {
    Error::invalid(field, code, message)
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// `com.example.app`: two or more dot-separated labels of letters, digits and hyphens.
fn is_reverse_domain_scheme(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

impl RedirectUri {
    /// Checks `input` against the rules for `app_type`; `field` names the input in errors.
    pub fn parse(field: &'static str, input: &str, app_type: AppType) -> Result<Self> {
        if app_type == AppType::M2m {
            return Err(violation(
                field,
                "redirect_uri_not_allowed",
                "Machine-to-machine applications have no redirect URIs.",
            ));
        }
        if input.len() > MAX_LEN {
            return Err(violation(
                field,
                "redirect_uri_too_long",
                "A URI may be at most 2048 characters.",
            ));
        }
        if input.is_empty() || input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(violation(
                field,
                "redirect_uri_invalid",
                "A URI may not be empty or contain spaces or control characters.",
            ));
        }
        if input.contains('*') {
            return Err(violation(
                field,
                "redirect_uri_wildcard",
                "Wildcards are not allowed; list each URI exactly.",
            ));
        }
        if input.contains('#') {
            return Err(violation(
                field,
                "redirect_uri_fragment",
                "A redirect URI may not contain a fragment (#…).",
            ));
        }
        let url = url::Url::parse(input).map_err(|_| {
            violation(
                field,
                "redirect_uri_not_absolute",
                "Enter an absolute URI, such as https://app.example.com/callback.",
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(violation(
                field,
                "redirect_uri_userinfo",
                "A URI may not contain a user name or password.",
            ));
        }
        match url.scheme() {
            "https" if url.host_str().is_some_and(|h| !h.is_empty()) => {}
            "http" if url.host_str().is_some_and(is_loopback_host) => {}
            "http" | "https" => {
                return Err(violation(
                    field,
                    "redirect_uri_https_required",
                    "Use https (http is allowed only on 127.0.0.1, [::1] or localhost).",
                ));
            }
            scheme if app_type == AppType::Native && is_reverse_domain_scheme(scheme) => {}
            _ if app_type == AppType::Native => {
                return Err(violation(
                    field,
                    "redirect_uri_custom_scheme_form",
                    "A custom scheme must be in reverse-domain form, such as com.example.app:/callback.",
                ));
            }
            _ => {
                return Err(violation(
                    field,
                    "redirect_uri_custom_scheme",
                    "Custom schemes are only for native applications; use https.",
                ));
            }
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For values read back from our own database, which passed `parse` on the way in.
    pub(crate) fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

/// Parses a list: every entry valid, no duplicates, at most 50.
pub fn parse_list(
    field: &'static str,
    inputs: &[String],
    app_type: AppType,
) -> Result<Vec<RedirectUri>> {
    if inputs.len() > MAX_PER_LIST {
        return Err(violation(
            field,
            "redirect_uri_list_too_long",
            "A list may hold at most 50 URIs.",
        ));
    }
    let mut out: Vec<RedirectUri> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let uri = RedirectUri::parse(field, input, app_type)?;
        if out.contains(&uri) {
            return Err(violation(
                field,
                "redirect_uri_duplicate",
                &format!("{input} is listed twice."),
            ));
        }
        out.push(uri);
    }
    Ok(out)
}

/// The single URIs an application may register besides its redirect lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Where hosted pages (password reset, invitation) send the user back to; redirect rules.
    ReturnUrl,
    /// Third-party initiated login (OIDC Core §4): an https endpoint of the application.
    InitiateLogin,
    /// Back-channel logout (OIDC Back-Channel Logout 1.0): an https endpoint of a server-side app.
    BackchannelLogout,
}

/// Parses an optional single URI; empty input means none. Initiate-login and back-channel URIs are
/// web endpoints (https, or http on loopback), never custom schemes; back-channel logout needs a
/// server, so only `web` applications have one.
pub fn parse_endpoint(
    field: &'static str,
    input: &str,
    app_type: AppType,
    endpoint: Endpoint,
) -> Result<Option<RedirectUri>> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(None);
    }
    match endpoint {
        Endpoint::ReturnUrl => RedirectUri::parse(field, input, app_type).map(Some),
        Endpoint::InitiateLogin if app_type == AppType::M2m => Err(violation(
            field,
            "redirect_uri_not_allowed",
            "Machine-to-machine applications have no sign-in pages.",
        )),
        Endpoint::BackchannelLogout if app_type != AppType::Web => Err(violation(
            field,
            "backchannel_logout_not_allowed",
            "Only web applications (with a server) can receive back-channel logout.",
        )),
        Endpoint::InitiateLogin | Endpoint::BackchannelLogout => {
            RedirectUri::parse(field, input, AppType::Web).map(Some)
        }
    }
}

/// True when `requested` may be redirected to: it equals a registered URI character for character,
/// or — for native apps — both are `http` loopback URIs that differ only in the port.
pub fn matches(registered: &[RedirectUri], requested: &str, app_type: AppType) -> bool {
    if registered.iter().any(|r| r.0 == requested) {
        return true;
    }
    if app_type != AppType::Native {
        return false;
    }
    let Some(req) = loopback_without_port(requested) else {
        return false;
    };
    registered
        .iter()
        .filter_map(|r| loopback_without_port(&r.0))
        .any(|r| r == req)
}

/// For an `http` loopback URI, everything but the port: (host, path, query). Compared on the
/// original text, so `/cb` and `/cb/` stay different.
fn loopback_without_port(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host = match authority.strip_prefix('[') {
        Some(v6) => format!("[{}", v6.split_once(']').map(|(h, _)| format!("{h}]"))?),
        None => authority.split(':').next()?.to_owned(),
    };
    let port_ok = authority.strip_prefix(host.as_str()).is_some_and(|p| {
        p.is_empty() || (p.starts_with(':') && p[1..].chars().all(|c| c.is_ascii_digit()))
    });
    (is_loopback_host(&host) && port_ok).then(|| (host, tail.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(input: &str, t: AppType) -> Option<&'static str> {
        RedirectUri::parse("redirect_uris", input, t)
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn each_rule_has_its_own_code() {
        use AppType::*;
        assert_eq!(code("https://app.example.com/cb", Web), None);
        assert_eq!(code("http://127.0.0.1:8080/cb", Spa), None);
        assert_eq!(code("http://[::1]/cb", Web), None);
        assert_eq!(code("http://localhost:3000/cb", Web), None);
        assert_eq!(code("com.example.app:/oauth", Native), None);
        assert_eq!(code("/relative/cb", Web), Some("redirect_uri_not_absolute"));
        assert_eq!(
            code("https://app.example.com/cb#x", Web),
            Some("redirect_uri_fragment")
        );
        assert_eq!(
            code("https://*.example.com/cb", Web),
            Some("redirect_uri_wildcard")
        );
        assert_eq!(
            code("https://user:pw@example.com/cb", Web),
            Some("redirect_uri_userinfo")
        );
        assert_eq!(
            code("http://app.example.com/cb", Web),
            Some("redirect_uri_https_required")
        );
        assert_eq!(
            code("com.example.app:/oauth", Web),
            Some("redirect_uri_custom_scheme")
        );
        assert_eq!(
            code("myapp:/oauth", Native),
            Some("redirect_uri_custom_scheme_form")
        );
        assert_eq!(
            code("javascript:alert(1)", Native),
            Some("redirect_uri_custom_scheme_form")
        );
        assert_eq!(
            code("https://app.example.com/cb", M2m),
            Some("redirect_uri_not_allowed")
        );
        assert_eq!(
            code(" https://app.example.com/cb", Web),
            Some("redirect_uri_invalid")
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_LEN));
        assert_eq!(code(&long, Web), Some("redirect_uri_too_long"));
    }

    #[test]
    fn lists_refuse_duplicates_and_length() {
        let dup = vec![
            "https://a.example/cb".to_owned(),
            "https://a.example/cb".to_owned(),
        ];
        assert_eq!(
            parse_list("redirect_uris", &dup, AppType::Web)
                .err()
                .map(|e| e.code()),
            Some("redirect_uri_duplicate")
        );
        let many: Vec<String> = (0..=MAX_PER_LIST)
            .map(|i| format!("https://a.example/{i}"))
            .collect();
        assert_eq!(
            parse_list("redirect_uris", &many, AppType::Web)
                .err()
                .map(|e| e.code()),
            Some("redirect_uri_list_too_long")
        );
        assert_eq!(
            parse_list("redirect_uris", &many[..MAX_PER_LIST], AppType::Web)
                .map(|l| l.len())
                .ok(),
            Some(MAX_PER_LIST)
        );
    }

    #[test]
    fn matching_is_exact_except_native_loopback_ports() {
        let reg = |uris: &[&str], t| {
            parse_list(
                "r",
                &uris.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                t,
            )
            .unwrap_or_default()
        };
        let web = reg(
            &["https://app.example.com/cb", "http://127.0.0.1:8080/cb"],
            AppType::Web,
        );
        assert!(matches(&web, "https://app.example.com/cb", AppType::Web));
        assert!(!matches(&web, "https://app.example.com/cb/", AppType::Web));
        assert!(!matches(&web, "https://APP.example.com/cb", AppType::Web));
        assert!(!matches(
            &web,
            "https://app.example.com/cb?x=1",
            AppType::Web
        ));
        assert!(
            !matches(&web, "http://127.0.0.1:9090/cb", AppType::Web),
            "ports are exact for web apps"
        );

        let native = reg(
            &[
                "http://127.0.0.1/callback",
                "http://[::1]:1/cb",
                "com.example.app:/oauth",
            ],
            AppType::Native,
        );
        assert!(matches(
            &native,
            "http://127.0.0.1:51234/callback",
            AppType::Native
        ));
        assert!(matches(
            &native,
            "http://127.0.0.1/callback",
            AppType::Native
        ));
        assert!(matches(&native, "http://[::1]:60000/cb", AppType::Native));
        assert!(!matches(
            &native,
            "http://127.0.0.1:51234/callback/x",
            AppType::Native
        ));
        assert!(!matches(
            &native,
            "http://127.0.0.2:51234/callback",
            AppType::Native
        ));
        assert!(!matches(
            &native,
            "http://127.0.0.1:51234@evil.example/callback",
            AppType::Native
        ));
        assert!(!matches(
            &native,
            "https://127.0.0.1:51234/callback",
            AppType::Native
        ));
        assert!(matches(&native, "com.example.app:/oauth", AppType::Native));
        assert!(!matches(
            &native,
            "com.example.app:/oauth2",
            AppType::Native
        ));
    }

    proptest! {
        #[test]
        fn a_registered_uri_matches_itself_and_nothing_longer(
            host in "[a-z]{1,10}\\.[a-z]{2,5}",
            path in "(/[a-zA-Z0-9_-]{0,8}){0,3}",
            extra in "[a-zA-Z0-9/?=&_-]{1,5}",
            t in prop::sample::select(vec![AppType::Web, AppType::Spa, AppType::Native]),
        ) {
            let uri = format!("https://{host}{path}");
            let reg = parse_list("r", std::slice::from_ref(&uri), t);
            prop_assert!(reg.is_ok(), "{uri} should be accepted");
            let reg = reg.unwrap_or_default();
            prop_assert!(matches(&reg, &uri, t));
            let longer = format!("{uri}{extra}");
            prop_assert!(!matches(&reg, &longer, t));
        }

        #[test]
        fn native_loopback_matches_any_port(port in 1u16.., path in "(/[a-z0-9]{1,6}){1,3}") {
            let reg = parse_list("r", &[format!("http://127.0.0.1{path}")], AppType::Native).unwrap_or_default();
            let requested = format!("http://127.0.0.1:{port}{path}");
            prop_assert!(matches(&reg, &requested, AppType::Native));
            prop_assert!(!matches(&reg, &requested, AppType::Spa));
        }

        #[test]
        fn fragments_and_wildcards_never_pass(s in "https://[a-z]{1,8}\\.com/[a-z#*]{0,8}") {
            let has = s.contains('#') || s.contains('*');
            prop_assert_eq!(RedirectUri::parse("r", &s, AppType::Web).is_err(), has);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,100}", t in prop::sample::select(AppType::ALL.to_vec())) {
            let _ = RedirectUri::parse("r", &s, t);
            let _ = matches(&[], &s, t);
        }
    }
}
