//! The dashboard edge, one middleware in front of every route:
//! - who is asking (client IP, user agent, request id) → `RequestMeta` for the audit log;
//! - CSRF: every unsafe request outside the bearer-authenticated `/api/v1` must come from our own
//!   origin (`Origin`, or `Referer` when absent); forms additionally carry a synchroniser token;
//! - the staff session from its cookie, and the signed-out forms' double-submit token;
//! - signed-out visitors of dashboard pages go to `/login`;
//! - security headers on every response, with a per-request CSP nonce for Leptos's inline scripts.

use super::AppState;
use app::ssr::RequestContext;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use identity::{RequestMeta, Timestamp};
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "pc_session";
pub const FORM_COOKIE: &str = "pc_csrf";

/// Paths that bypass session handling: static assets, operations, and the bearer-token API.
fn is_plain(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path.starts_with("/.well-known/")
        || path.starts_with("/api/v1/")
        || path.starts_with("/oauth/")
        || path == "/api/v1"
        || matches!(
            path,
            "/healthz" | "/readyz" | "/metrics" | "/favicon.svg" | "/favicon.ico"
        )
}

/// Pages anyone may open: the staff sign-in pages and the end users' hosted pages (`/u/…`).
fn is_public_page(path: &str) -> bool {
    matches!(path, "/login" | "/accept-invite") || path.starts_with("/u/")
}

/// Dashboard pages: everything that is not an endpoint, an asset or a public page.
fn is_dashboard_page(path: &str) -> bool {
    !is_plain(path)
        && !is_public_page(path)
        && !path.starts_with("/auth/")
        && !path.starts_with("/rpc/")
}

pub fn request_meta(req: &Request, trust_proxy: bool) -> RequestMeta {
    let headers = req.headers();
    // The right-most entry is the one our proxy added; anything left of it the client can write.
    let forwarded = trust_proxy
        .then(|| header_str(headers, "x-forwarded-for"))
        .flatten()
        .and_then(|v| v.rsplit(',').next().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    RequestMeta {
        ip: forwarded.or(peer),
        user_agent: header_str(headers, header::USER_AGENT.as_str()).map(str::to_owned),
        request_id: header_str(headers, "x-request-id").map(str::to_owned),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// True when an unsafe request demonstrably comes from a page of ours.
fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let claimed = header_str(headers, header::ORIGIN.as_str())
        .filter(|o| *o != "null")
        .or_else(|| header_str(headers, header::REFERER.as_str()).map(origin_of));
    let Some(claimed) = claimed else { return false };
    let ours = origin_of(public_url);
    let scheme = if public_url.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let by_host = header_str(headers, header::HOST.as_str()).map(|h| format!("{scheme}://{h}"));
    claimed == ours || by_host.is_some_and(|h| h == claimed)
}

pub async fn dashboard_edge(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let meta = request_meta(&req, state.config.trust_proxy);
    req.extensions_mut().insert(meta.clone());
    let nonce = identity::secret::random_token();

    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && !is_plain(&path) && !same_origin(req.headers(), &state.public_url) {
        tracing::warn!(path, "refused a cross-origin request");
        let res = super::error::client_error(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "This request did not come from a Portcullis page.",
        );
        return with_security_headers(res, &nonce, &state, &path);
    }

    if is_plain(&path) {
        let res = next.run(req).await;
        return with_security_headers(res, &nonce, &state, &path);
    }

    let session_token = cookie_value(req.headers(), SESSION_COOKIE);
    let current = match &session_token {
        None => None,
        Some(token) => {
            match identity::sessions::authenticate(&state.identity, token, Timestamp::now()).await {
                Ok(current) => current,
                Err(e) => {
                    tracing::error!(error = %app::ssr::error_chain(&e), "session lookup failed");
                    let res = (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong on our side.",
                    )
                        .into_response();
                    return with_security_headers(res, &nonce, &state, &path);
                }
            }
        }
    };
    let existing_form_token = cookie_value(req.headers(), FORM_COOKIE).filter(|t| t.len() >= 32);
    let form_token = existing_form_token
        .clone()
        .unwrap_or_else(identity::secret::random_token);

    if req.method() == Method::GET {
        if current.is_none() && is_dashboard_page(&path) {
            let to = if session_token.is_some() {
                "/login?error=session_expired"
            } else {
                "/login"
            };
            let mut res = Redirect::to(to).into_response();
            if session_token.is_some() {
                append_cookie(&mut res, clear_session_cookie(state.secure_cookies()));
            }
            return with_security_headers(res, &nonce, &state, &path);
        }
        if current.is_some() && path == "/login" {
            return with_security_headers(Redirect::to("/").into_response(), &nonce, &state, &path);
        }
    }

    req.extensions_mut().insert(RequestContext {
        current,
        meta,
        form_token: form_token.clone(),
        csp_nonce: nonce.clone(),
    });
    let mut res = next.run(req).await;
    if existing_form_token.is_none() {
        let cookie = Cookie::build((FORM_COOKIE, form_token))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(state.secure_cookies())
            .path("/")
            .build();
        append_cookie(&mut res, cookie);
    }
    if is_dashboard_page(&path) || is_public_page(&path) || path.starts_with("/rpc/") {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    with_security_headers(res, &nonce, &state, &path)
}

pub fn append_cookie(res: &mut Response, cookie: Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn session_cookie(token: String, max_age_secs: i64, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
}

pub fn clear_session_cookie(secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build()
}

fn with_security_headers(mut res: Response, nonce: &str, state: &AppState, path: &str) -> Response {
    // The hosted sign-in forms end in a redirect to the application (the OAuth redirect URI), which
    // Chromium checks against `form-action`; those pages render only our own forms, so they leave it
    // out. Everything else keeps forms on our origin.
    let form_action = if path.starts_with("/u/") {
        ""
    } else {
        " form-action 'self';"
    };
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';{form_action} \
         frame-ancestors 'none'"
    );
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if state.secure_cookies() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_check() {
        let ours = "http://127.0.0.1:3000";
        assert!(same_origin(
            &headers(&[("origin", "http://127.0.0.1:3000")]),
            ours
        ));
        assert!(same_origin(
            &headers(&[("referer", "http://127.0.0.1:3000/staff?x=1")]),
            ours
        ));
        assert!(same_origin(
            &headers(&[
                ("origin", "http://localhost:3000"),
                ("host", "localhost:3000")
            ]),
            ours
        ));
        assert!(!same_origin(
            &headers(&[("origin", "https://evil.example")]),
            ours
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), ours));
        assert!(!same_origin(&headers(&[]), ours));
        assert!(!same_origin(
            &headers(&[("origin", "http://127.0.0.1:30001")]),
            ours
        ));
    }

    #[test]
    fn page_classes() {
        assert!(is_dashboard_page("/"));
        assert!(is_dashboard_page("/staff"));
        assert!(!is_dashboard_page("/login"));
        assert!(!is_dashboard_page("/rpc/me"));
        assert!(!is_dashboard_page("/pkg/portcullis.wasm"));
        assert!(!is_dashboard_page("/api/v1/staff"));
    }
}
