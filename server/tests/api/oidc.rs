//! The OAuth 2.1 / OpenID Connect provider, end to end over HTTP: what an operator configures is
//! what real sign-ins get. Includes the RFC 9700 provider-side cases.

use crate::applications::Api;
use crate::helpers::{Backend, TestApp, location, spawn_app, spawn_app_with};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::Role;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

crate::on_both_databases!(
    discovery_advertises_the_provider_and_pages_refuse_framing,
    code_flow_with_pkce_issues_tokens_that_follow_the_application,
    redirect_uris_match_exactly_and_bad_requests_never_redirect_elsewhere,
    codes_are_single_use_bound_and_need_the_right_verifier,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    client_credentials_is_for_machines_with_a_valid_secret,
    one_sign_in_serves_every_application_and_prompt_rules_hold,
    revocation_and_introspection,
    logout_ends_the_session_and_tells_every_application,
    backchannel_logout_refuses_private_addresses_without_the_switch,
    disabled_applications_and_users_get_nothing,
    rs256_id_tokens_for_clients_that_need_them,
    logout_without_a_hint_asks_then_returns_to_the_client,
    a_code_redeemed_while_the_session_ends_never_outlives_it,
);

pub(crate) const RP: &str = "https://rp.example/callback";
pub(crate) const PASSWORD: &str = "a long enough password";

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

pub(crate) struct Client {
    pub id: String,
    pub client_id: String,
    pub secret: Option<String>,
}

/// Creates an application through the API (with a secret for confidential types).
pub(crate) async fn client(api: &Api, name: &str, t: &str, extra: Value) -> Client {
    let mut body = json!({"name": name, "type": t});
    if t != "m2m" {
        body["redirect_uris"] = json!([RP]);
        body["post_logout_redirect_uris"] = json!(["https://rp.example/bye"]);
    }
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    let (status, created) = api.post(body).await;
    assert_eq!(status, 201, "{created}");
    let id = id_of(&created);
    let secret = if t == "web" || t == "m2m" {
        let (s, v) = api
            .send(
                Method::POST,
                &format!("/api/v1/applications/{id}/secrets"),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        Some(v["secret"].as_str().expect("secret").to_owned())
    } else {
        None
    };
    Client {
        id,
        client_id: created["client_id"].as_str().expect("cid").to_owned(),
        secret,
    }
}

pub(crate) async fn user(api: &Api, email: &str) -> String {
    let (status, u) = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": email, "name": "Ada Lovelace", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    id_of(&u)
}

/// PKCE pair, state and nonce of one authorization request.
pub(crate) struct Request {
    pub verifier: String,
    pub challenge: String,
    pub state: String,
    pub nonce: String,
}

impl Request {
    pub fn new() -> Self {
        let verifier = identity::secret::random_token() + "-pkce";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
            state: identity::secret::random_token(),
            nonce: identity::secret::random_token(),
        }
    }

    fn query(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", RP),
            ("scope", "openid email profile offline_access"),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.challenge),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }
}

pub(crate) async fn authorize(
    browser: &TestApp,
    client_id: &str,
    r: &Request,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .get(&format!("/oauth/authorize?{}", r.query(client_id, extra)))
        .await
}

/// `prompt=none` in this browser comes back with `login_required`: no live session here.
async fn assert_login_required(browser: &TestApp, c: &Client) {
    let res = authorize(
        browser,
        &c.client_id,
        &Request::new(),
        &[("prompt", "none")],
    )
    .await;
    assert_eq!(
        query_of(&location(&res)).get("error").map(String::as_str),
        Some("login_required")
    );
}

pub(crate) fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

/// Signs in on the hosted page the authorization endpoint sent the browser to, follows the resume
/// redirect, and returns the final redirect (to the client).
pub(crate) async fn sign_in_at(browser: &TestApp, sign_in_url: &str, email: &str) -> String {
    assert!(sign_in_url.starts_with("/u/sign-in?"), "{sign_in_url}");
    let q = query_of(sign_in_url);
    let res = browser
        .hosted_form(
            sign_in_url,
            "/u/auth/sign-in",
            &[
                ("client_id", &q["client_id"]),
                ("request", &q["request"]),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let resume = location(&res);
    assert!(resume.starts_with("/oauth/authorize/resume?"), "{resume}");
    let res = browser.get(&resume).await;
    assert_eq!(res.status(), 303);
    location(&res)
}

/// A full sign-in: authorize → hosted sign-in → the code on the client's redirect URI.
pub(crate) async fn code_for(browser: &TestApp, c: &Client, r: &Request, email: &str) -> String {
    let res = authorize(browser, &c.client_id, r, &[]).await;
    assert_eq!(res.status(), 302);
    let mut to = location(&res);
    if to.starts_with("/u/sign-in") {
        to = sign_in_at(browser, &to, email).await;
    }
    code_in(browser, &to, r)
}

pub(crate) fn code_in(browser: &TestApp, to: &str, r: &Request) -> String {
    assert!(to.starts_with(RP), "back to the client: {to}");
    let q = query_of(to);
    assert_eq!(q.get("state"), Some(&r.state));
    assert_eq!(q.get("iss"), Some(&browser.url), "RFC 9207 iss");
    q.get("code").expect("code").clone()
}

/// POST to a token-style endpoint with client authentication in the body.
pub(crate) async fn post_form(
    app: &TestApp,
    path: &str,
    c: &Client,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("client_id", &c.client_id));
    if let Some(s) = &c.secret {
        form.push(("client_secret", s));
    }
    let res = reqwest::Client::new()
        .post(format!("{}{path}", app.url))
        .form(&form)
        .send()
        .await
        .expect("post");
    let status = res.status().as_u16();
    let text = res.text().await.expect("text");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(crate) async fn exchange(app: &TestApp, c: &Client, code: &str, r: &Request) -> (u16, Value) {
    post_form(
        app,
        "/oauth/token",
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", RP),
            ("code_verifier", &r.verifier),
        ],
    )
    .await
}

pub(crate) async fn refresh(
    app: &TestApp,
    c: &Client,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut f = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    f.extend_from_slice(extra);
    post_form(app, "/oauth/token", c, &f).await
}

async fn userinfo(app: &TestApp, access_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/oauth/userinfo", app.url))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo")
}

pub(crate) async fn jwks(app: &TestApp) -> Value {
    app.get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("jwks")
}

/// Verifies a JWT against the published JWKS (any algorithm we publish). Returns (header, claims).
pub(crate) fn verify(
    token: &str,
    set: &Value,
    aud: Option<&str>,
) -> Result<(jsonwebtoken::Header, Value), String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.clone().ok_or("no kid")?;
    let jwk = set["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or("kid not published")?;
    let (key, alg) = if jwk["kty"] == "RSA" {
        (
            DecodingKey::from_rsa_components(
                jwk["n"].as_str().unwrap_or(""),
                jwk["e"].as_str().unwrap_or(""),
            ),
            Algorithm::RS256,
        )
    } else {
        (
            DecodingKey::from_ec_components(
                jwk["x"].as_str().unwrap_or(""),
                jwk["y"].as_str().unwrap_or(""),
            ),
            Algorithm::ES256,
        )
    };
    let mut v = Validation::new(alg);
    match aud {
        Some(a) => v.set_audience(&[a]),
        None => v.validate_aud = false,
    }
    jsonwebtoken::decode::<Value>(token, &key.map_err(|e| e.to_string())?, &v)
        .map(|d| (d.header, d.claims))
        .map_err(|e| e.to_string())
}

async fn discovery_advertises_the_provider_and_pages_refuse_framing(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/.well-known/openid-configuration").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let d: Value = res.json().await.expect("json");
    assert_eq!(d["issuer"], app.url);
    for (k, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("end_session_endpoint", "/oauth/logout"),
    ] {
        assert_eq!(d[k], format!("{}{path}", app.url), "{k}");
    }
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["backchannel_logout_supported"], true);
    assert!(
        d["grant_types_supported"]
            .as_array()
            .expect("grants")
            .iter()
            .all(|g| g != "password" && g != "implicit")
    );
    // The authorization endpoint and the hosted pages refuse framing and send no CORS headers.
    let api = Api::new(&app, Role::Operator).await;
    let spa = client(&api, "Shop", "spa", json!({})).await;
    let res = authorize(&app, &spa.client_id, &Request::new(), &[]).await;
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let page = app.get(&location(&res)).await;
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    assert!(page.headers().get("access-control-allow-origin").is_none());
    let err = app.get("/u/error?error=invalid_client").await;
    assert_eq!(err.headers()["x-frame-options"], "DENY");
}

async fn code_flow_with_pkce_issues_tokens_that_follow_the_application(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let web = client(
        &api,
        "Web",
        "web",
        json!({"session_policy": {"access_token_ttl_secs": 300, "id_token_ttl_secs": 600}}),
    )
    .await;
    let other = client(&api, "Other", "spa", json!({})).await;
    let user_id = user(&api, "ada@example.com").await;
    // Roles: one in this application, one in another (must not leak into this app's tokens).
    for (app_id, role) in [(&web.id, "editor"), (&other.id, "admin")] {
        let (s, r) = api
            .send(
                Method::POST,
                &format!("/api/v1/applications/{app_id}/roles"),
                Some(json!({"name": role, "permissions": [format!("{role}:all")]})),
            )
            .await;
        assert_eq!(s, 201, "{r}");
        let (s, g) = api
            .send(
                Method::PUT,
                &format!(
                    "/api/v1/applications/{app_id}/roles/{}/users/{user_id}",
                    id_of(&r)
                ),
                None,
            )
            .await;
        assert!(s == 201 || s == 204 || s == 200, "{s} {g}");
    }
    let browser = app.new_browser();
    let r = Request::new();
    // No session yet: the sign-in page, carrying the pending request and the login hint.
    let res = authorize(
        &browser,
        &web.client_id,
        &r,
        &[("login_hint", "ada@example.com")],
    )
    .await;
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.contains("login_hint=ada%40example.com"), "{to}");
    // The pending request belongs to this browser: another one cannot finish it.
    let thief = app.new_browser();
    let stolen = sign_in_at(&thief, &to, "ada@example.com").await;
    assert_eq!(stolen, "/u/error?error=request_other_browser");
    let html = browser.get(&to).await.text().await.expect("page");
    assert!(
        html.contains("value=\"ada@example.com\""),
        "the email is pre-filled"
    );
    let to = sign_in_at(&browser, &to, "ada@example.com").await;
    let code = code_in(&browser, &to, &r);

    let before = identity::Timestamp::now().millis() / 1000;
    let (status, tokens) = exchange(&app, &web, &code, &r).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(
        tokens["expires_in"], 300,
        "the application's access lifetime"
    );
    assert!(tokens["refresh_token"].is_string());
    let set = jwks(&app).await;
    let (header, at) = verify(
        tokens["access_token"].as_str().expect("at"),
        &set,
        Some(&web.client_id),
    )
    .expect("access token");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068");
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(at["iss"], app.url);
    assert_eq!(at["sub"], user_id);
    assert_eq!(at["client_id"], web.client_id);
    assert_eq!(at["scope"], "openid email profile offline_access");
    assert_eq!(
        at["roles"],
        json!(["editor"]),
        "only this application's roles"
    );
    assert_eq!(at["permissions"], json!(["editor:all"]));
    assert!(at["sid"].is_string() && at["jti"].is_string());
    let exp = at["exp"].as_i64().expect("exp");
    assert!(
        (before + 299..=before + 302).contains(&exp),
        "{exp} vs {before}"
    );
    // A token for this application is not one for another.
    assert!(
        verify(
            tokens["access_token"].as_str().expect("at"),
            &set,
            Some(&other.client_id)
        )
        .is_err()
    );

    let (_, id) = verify(
        tokens["id_token"].as_str().expect("id token"),
        &set,
        Some(&web.client_id),
    )
    .expect("id token");
    assert_eq!(id["nonce"], r.nonce.as_str());
    assert_eq!(id["sub"], user_id);
    assert_eq!(id["email"], "ada@example.com");
    assert_eq!(id["name"], "Ada Lovelace");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["sid"], at["sid"]);
    assert!(id["auth_time"].as_i64().is_some_and(|t| t <= before + 1));
    assert_eq!(
        id["exp"]
            .as_i64()
            .map(|e| e - id["iat"].as_i64().unwrap_or(0)),
        Some(600)
    );
    let digest = Sha256::digest(tokens["access_token"].as_str().expect("at").as_bytes());
    assert_eq!(id["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));

    // Userinfo with the access token.
    let res = userinfo(&app, tokens["access_token"].as_str().expect("at")).await;
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.expect("json");
    assert_eq!(info["sub"], user_id);
    assert_eq!(info["email"], "ada@example.com");
    let res = userinfo(&app, "not-a-token").await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .expect("h")
            .contains("invalid_token")
    );

    let events = app.audit_events().await;
    for e in [
        "user.signed_in",
        "authorization.code_issued",
        "token.issued",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
    app.assert_chain_intact().await;
}

async fn redirect_uris_match_exactly_and_bad_requests_never_redirect_elsewhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let spa = client(&api, "Shop", "spa", json!({})).await;
    let native = client(
        &api,
        "Phone",
        "native",
        json!({"redirect_uris": ["http://127.0.0.1:4000/cb", "com.example.app:/cb"]}),
    )
    .await;
    let r = Request::new();
    let error_page = |res: &reqwest::Response| {
        assert_eq!(
            res.status(),
            303,
            "an error page, not a redirect to the client"
        );
        let to = location(res);
        assert!(to.starts_with("/u/error?"), "{to}");
        to
    };
    // Unknown client, missing or non-matching redirect URIs: our error page, never the URI.
    let res = authorize(&app, "spa_unknown", &r, &[]).await;
    assert!(error_page(&res).contains("invalid_client"));
    for bad in [
        "https://rp.example/callback/",
        "https://rp.example/callback/../callback",
        "https://rp.example/callbackx",
        "https://RP.example/callback",
        "https://rp.example/Callback",
        "https://rp.example/callback?x=1",
        "https://rp.example/callback#f",
        "http://rp.example/callback",
        "https://rp.example.evil.com/callback",
        "https://rp.example/callback%2F..",
        "",
    ] {
        let res = authorize(&app, &spa.client_id, &r, &[("redirect_uri", bad)]).await;
        assert!(error_page(&res).contains("invalid_redirect_uri"), "{bad}");
    }
    let page = app.get("/u/error?error=invalid_redirect_uri").await;
    let html = page.text().await.expect("html");
    assert!(html.contains("not registered") && !html.contains("rp.example"));
    // Native loopback: any port, same path (RFC 8252 §7.3); custom scheme exact.
    for (uri, ok) in [
        ("http://127.0.0.1:51234/cb", true),
        ("http://127.0.0.1/cb", true),
        ("http://127.0.0.1:51234/cb/", false),
        ("com.example.app:/cb", true),
        ("com.example.app:/cb2", false),
    ] {
        let res = authorize(&app, &native.client_id, &r, &[("redirect_uri", uri)]).await;
        assert_eq!(
            res.status() == 302 && location(&res).starts_with("/u/sign-in"),
            ok,
            "{uri}"
        );
    }
    // The redirect URI is good: other errors go back to it with error, state and iss.
    for (extra, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "-1")], "invalid_request"),
        (vec![("request", "eyJ.x.y")], "request_not_supported"),
    ] {
        let res = authorize(&app, &spa.client_id, &r, &extra).await;
        assert_eq!(res.status(), 302, "{extra:?}");
        let to = location(&res);
        assert!(to.starts_with(RP), "{to}");
        let q = query_of(&to);
        assert_eq!(q.get("error").map(String::as_str), Some(error), "{extra:?}");
        assert_eq!(q.get("state"), Some(&r.state));
        assert_eq!(q.get("iss"), Some(&app.url));
        assert!(!q.contains_key("code"));
    }
    // A POST to the authorization endpoint answers 303.
    let res = app
        .client
        .post(format!("{}/oauth/authorize", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r.query(&spa.client_id, &[("response_type", "token")]))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 303);
}

async fn codes_are_single_use_bound_and_need_the_right_verifier(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let spa = client(&api, "Shop", "spa", json!({})).await;
    let web = client(&api, "Web", "web", json!({})).await;
    user(&api, "ada@example.com").await;
    let browser = app.new_browser();

    // Wrong verifier, missing verifier: refused (and the code is spent).
    for verifier in [Some("x".repeat(43)), None] {
        let r = Request::new();
        let code = code_for(&browser, &spa, &r, "ada@example.com").await;
        let mut f = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP),
        ];
        if let Some(v) = &verifier {
            f.push(("code_verifier", v));
        }
        let (status, e) = post_form(&app, "/oauth/token", &spa, &f).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("invalid_grant")),
            "{verifier:?}"
        );
        let (status, _) = exchange(&app, &spa, &code, &r).await;
        assert_eq!(
            status, 400,
            "a code is single use even after a failed attempt"
        );
    }
    // Another client cannot redeem it; a different redirect_uri is refused.
    let r = Request::new();
    let code = code_for(&browser, &spa, &r, "ada@example.com").await;
    let (status, e) = exchange(&app, &web, &code, &r).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, e) = post_form(
        &app,
        "/oauth/token",
        &spa,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example/other"),
            ("code_verifier", &r.verifier),
        ],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));

    // Replay: the second use fails and revokes what the first use produced.
    let r = Request::new();
    let code = code_for(&browser, &spa, &r, "ada@example.com").await;
    let (status, tokens) = exchange(&app, &spa, &code, &r).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, e) = exchange(&app, &spa, &code, &r).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(
        &app,
        &spa,
        tokens["refresh_token"].as_str().expect("rt"),
        &[],
    )
    .await;
    assert_eq!(
        status, 400,
        "the refresh token from the replayed code is revoked"
    );
    let res = userinfo(&app, tokens["access_token"].as_str().expect("at")).await;
    assert_eq!(res.status(), 401, "and so is its access token");
    // Every second use is recorded: the two retries after a failed verifier and the replay.
    assert_eq!(app.count_events("token.reuse_detected").await, 3);

    // Codes expire within 60 s.
    let r = Request::new();
    let code = code_for(&browser, &spa, &r, "ada@example.com").await;
    sqlx::query("update authorization_code set expires_at = $1 where code_hash = $2")
        .bind(identity::Timestamp::now().millis() - 1)
        .bind(identity::secret::token_hash(&code))
        .execute(app.identity.db().pool())
        .await
        .expect("expire");
    let (status, _) = exchange(&app, &spa, &code, &r).await;
    assert_eq!(status, 400);
    let lifetime: i64 =
        sqlx::query_scalar("select max(expires_at - created_at) from authorization_code")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("lifetime");
    assert!(lifetime <= 60_000);
    // Nothing secret is stored in the clear.
    let stored: Vec<String> = sqlx::query_scalar("select code_hash from authorization_code")
        .fetch_all(app.identity.db().pool())
        .await
        .expect("codes");
    assert!(!stored.contains(&code) && stored.contains(&identity::secret::token_hash(&code)));
    app.assert_chain_intact().await;
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let spa = client(&api, "Shop", "spa", json!({})).await;
    let other = client(&api, "Other", "spa", json!({})).await;
    user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    let r = Request::new();
    let code = code_for(&browser, &spa, &r, "ada@example.com").await;
    let (_, t0) = exchange(&app, &spa, &code, &r).await;
    let rt0 = t0["refresh_token"].as_str().expect("rt").to_owned();

    // Only its own client may use it.
    let (status, e) = refresh(&app, &other, &rt0, &[]).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    // It cannot widen the scope; it may narrow it.
    let (status, e) = refresh(&app, &spa, &rt0, &[("scope", "openid email admin")]).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_scope")));
    let (status, t1) = refresh(&app, &spa, &rt0, &[("scope", "openid email")]).await;
    assert_eq!(status, 200, "{t1}");
    assert_eq!(t1["scope"], "openid email");
    let rt1 = t1["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(rt1, rt0, "rotated on every use");
    let set = jwks(&app).await;
    let (_, id) = verify(
        t1["id_token"].as_str().expect("id"),
        &set,
        Some(&spa.client_id),
    )
    .expect("id token");
    assert!(id.get("nonce").is_none() && id.get("name").is_none());
    let (status, t2) = refresh(&app, &spa, &rt1, &[]).await;
    assert_eq!(status, 200);
    let rt2 = t2["refresh_token"].as_str().expect("rt2").to_owned();
    // Reusing a rotated token revokes the whole family, the newest token included.
    let (status, e) = refresh(&app, &spa, &rt0, &[]).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&app, &spa, &rt2, &[]).await;
    assert_eq!(status, 400, "the family is revoked");
    assert_eq!(app.count_events("token.reuse_detected").await, 1);
    assert!(app.count_events("token.refreshed").await >= 2);

    // Idle expiry from the policy.
    let r = Request::new();
    let code = code_for(&browser, &spa, &r, "ada@example.com").await;
    let (_, t) = exchange(&app, &spa, &code, &r).await;
    let rt = t["refresh_token"].as_str().expect("rt");
    let (idle, absolute): (i64, i64) = sqlx::query_as(
        "select r.expires_at - r.created_at, f.expires_at - f.created_at from refresh_token r \
         join token_family f on f.family_id = r.family_id where r.token_hash = $1",
    )
    .bind(identity::secret::token_hash(rt))
    .fetch_one(app.identity.db().pool())
    .await
    .expect("row");
    assert_eq!(
        (idle, absolute),
        (86_400_000, 7 * 86_400_000),
        "SPA defaults: 1 day idle, 7 days absolute"
    );
    sqlx::query("update refresh_token set expires_at = 1 where token_hash = $1")
        .bind(identity::secret::token_hash(rt))
        .execute(app.identity.db().pool())
        .await
        .expect("expire");
    let (status, _) = refresh(&app, &spa, rt, &[]).await;
    assert_eq!(status, 400);
    let rows: i64 = sqlx::query_scalar("select count(*) from refresh_token where token_hash = $1")
        .bind(rt)
        .fetch_one(app.identity.db().pool())
        .await
        .expect("count");
    assert_eq!(rows, 0, "stored hashed");
    app.assert_chain_intact().await;
}

async fn client_credentials_is_for_machines_with_a_valid_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let m2m = client(
        &api,
        "Billing",
        "m2m",
        json!({"session_policy": {"access_token_ttl_secs": 120},
               "allowed_scopes": ["invoices:read", "invoices:write"]}),
    )
    .await;
    let web = client(&api, "Web", "web", json!({})).await;
    let spa = client(&api, "Shop", "spa", json!({})).await;
    let http = reqwest::Client::new();
    // client_secret_basic (form-encoded parts) and client_secret_post both work.
    let res = http
        .post(format!("{}/oauth/token", app.url))
        .basic_auth(&m2m.client_id, m2m.secret.as_deref())
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "invoices:read"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let t: Value = res.json().await.expect("json");
    assert_eq!(t["expires_in"], 120);
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let set = jwks(&app).await;
    let (h, at) = verify(
        t["access_token"].as_str().expect("at"),
        &set,
        Some(&m2m.client_id),
    )
    .expect("verifies");
    assert_eq!(h.typ.as_deref(), Some("at+jwt"));
    assert_eq!(
        (at["sub"].as_str(), at["scope"].as_str()),
        (Some(m2m.client_id.as_str()), Some("invoices:read"))
    );
    // No scope asked: everything the operator allowed; a scope it did not allow: refused.
    let (status, t) = post_form(
        &app,
        "/oauth/token",
        &m2m,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, t["scope"].as_str()),
        (200, Some("invoices:read invoices:write"))
    );
    let (status, e) = post_form(
        &app,
        "/oauth/token",
        &m2m,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "invoices:read admin:all"),
        ],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_scope")));
    let (s, e) = api
        .post(json!({"name": "Scoped SPA", "type": "spa", "allowed_scopes": ["x"]}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("scopes_m2m_only"))
    );
    // A wrong or another app's secret, or none: 401 invalid_client.
    let wrong = Client {
        id: m2m.id.clone(),
        client_id: m2m.client_id.clone(),
        secret: Some("pcs_wrong".into()),
    };
    let theirs = Client {
        id: m2m.id.clone(),
        client_id: m2m.client_id.clone(),
        secret: web.secret.clone(),
    };
    let none = Client {
        id: m2m.id.clone(),
        client_id: m2m.client_id.clone(),
        secret: None,
    };
    for c in [&wrong, &theirs, &none] {
        let (status, e) = post_form(
            &app,
            "/oauth/token",
            c,
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
    }
    // Not for user-facing apps; public clients never present a secret.
    let (status, e) = post_form(
        &app,
        "/oauth/token",
        &web,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let spa_with_secret = Client {
        id: spa.id.clone(),
        client_id: spa.client_id.clone(),
        secret: Some("pcs_x".into()),
    };
    let (status, _) = post_form(
        &app,
        "/oauth/token",
        &spa_with_secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
    // No password or implicit grant.
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let (status, e) = post_form(
            &app,
            "/oauth/token",
            &m2m,
            &[("grant_type", grant), ("username", "a"), ("password", "b")],
        )
        .await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("unsupported_grant_type")),
            "{grant}"
        );
    }
    // Last use of the secret is recorded.
    let (_, secrets) = api
        .send(
            Method::GET,
            &format!("/api/v1/applications/{}/secrets", m2m.id),
            None,
        )
        .await;
    assert!(secrets["data"][0]["last_used_at"].is_string(), "{secrets}");
    // Every issuance is audited (group-committed before the answer), concurrent ones too.
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (url, id, secret) = (app.url.clone(), m2m.client_id.clone(), m2m.secret.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{url}/oauth/token"))
                    .basic_auth(id, secret)
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .expect("token")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("join"), 200);
    }
    assert_eq!(app.count_events("token.issued").await, 42);
    // Token events are filtered by category like any other (their derived column is not indexed).
    let auditor = Api::new(&app, Role::Auditor).await;
    let (status, page) = auditor
        .send(
            Method::GET,
            &format!(
                "/api/v1/audit-events?category=token&application_id={}&limit=500",
                m2m.id
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let rows = page["data"].as_array().expect("data");
    assert!(rows.iter().all(|r| r["category"] == "token"), "{page}");
    assert_eq!(
        rows.iter().filter(|r| r["event"] == "token.issued").count(),
        42
    );
    app.assert_chain_intact().await;
    // A revoked secret stops working at once on this replica.
    let (_, list) = api
        .send(
            Method::GET,
            &format!("/api/v1/applications/{}/secrets", m2m.id),
            None,
        )
        .await;
    let secret_id = list["data"][0]["id"].as_str().expect("id").to_owned();
    let (s, _) = api
        .send(
            Method::DELETE,
            &format!("/api/v1/applications/{}/secrets/{secret_id}", m2m.id),
            None,
        )
        .await;
    assert!(s == 204 || s == 200);
    let (status, _) = post_form(
        &app,
        "/oauth/token",
        &m2m,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
    app.assert_chain_intact().await;
}

async fn one_sign_in_serves_every_application_and_prompt_rules_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let a = client(&api, "A", "spa", json!({})).await;
    let b = client(&api, "B", "web", json!({})).await;
    let user_id = user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    // prompt=none without a session: login_required, back at the client with state and iss.
    let r = Request::new();
    let res = authorize(&browser, &a.client_id, &r, &[("prompt", "none")]).await;
    let q = query_of(&location(&res));
    assert_eq!(q.get("error").map(String::as_str), Some("login_required"));
    assert_eq!(
        (q.get("state"), q.get("iss")),
        (Some(&r.state), Some(&app.url))
    );
    // Sign in once through A; B gets a code without any prompt, even with prompt=none.
    code_for(&browser, &a, &Request::new(), "ada@example.com").await;
    for extra in [vec![], vec![("prompt", "none")]] {
        let r = Request::new();
        let res = authorize(&browser, &b.client_id, &r, &extra).await;
        let code = code_in(&browser, &location(&res), &r);
        let (status, t) = exchange(&app, &b, &code, &r).await;
        assert_eq!(status, 200, "{t}");
    }
    // prompt=login forces a new sign-in, and max_age=0 too.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = Request::new();
        let res = authorize(&browser, &b.client_id, &r, &[extra]).await;
        let to = location(&res);
        assert!(to.starts_with("/u/sign-in"), "{extra:?}: {to}");
        let to = sign_in_at(&browser, &to, "ada@example.com").await;
        code_in(&browser, &to, &r);
    }
    // The application's maximum session age forces re-authentication when the session is older.
    sqlx::query("update user_session set created_at = created_at - $1 where user_id = $2")
        .bind(2 * 86_400_000i64)
        .bind(&user_id)
        .execute(app.identity.db().pool())
        .await
        .expect("age the session");
    let res = authorize(&browser, &b.client_id, &Request::new(), &[]).await;
    assert!(
        location(&res).starts_with("/u/sign-in"),
        "web apps default to a 1-day maximum"
    );
    assert_login_required(&browser, &b).await;
    // Sessions are listed per user with the applications they served (the first one: A and B).
    let (_, sessions) = api
        .send(
            Method::GET,
            &format!("/api/v1/users/{user_id}/sessions"),
            None,
        )
        .await;
    let first = sessions["data"]
        .as_array()
        .and_then(|s| s.last())
        .expect("a session");
    assert_eq!(first["applications"], json!(["A", "B"]), "{sessions}");
    // …and per application: B lists every live session that signed in to it, an unused app none.
    let listed = |id: String| {
        let api = &api;
        async move {
            let (status, v) = api
                .send(
                    Method::GET,
                    &format!("/api/v1/applications/{id}/sessions"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{v}");
            v["data"].as_array().cloned().unwrap_or_default()
        }
    };
    let at_b = listed(b.id.clone()).await;
    let ids: Vec<&Value> = sessions["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(at_b.len(), ids.len(), "{at_b:?}");
    assert!(
        at_b.iter()
            .all(|s| ids.contains(&&s["id"]) && s["email"] == "ada@example.com")
    );
    let unused = client(&api, "C", "spa", json!({})).await;
    assert!(listed(unused.id).await.is_empty());
}

pub(crate) async fn introspect(app: &TestApp, who: &Client, token: &str) -> (u16, Value) {
    post_form(app, "/oauth/introspect", who, &[("token", token)]).await
}

async fn revocation_and_introspection(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let web = client(&api, "Web", "web", json!({})).await;
    let web2 = client(&api, "Web2", "web", json!({})).await;
    let spa = client(&api, "Shop", "spa", json!({})).await;
    user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    let r = Request::new();
    let code = code_for(&browser, &web, &r, "ada@example.com").await;
    let (_, t) = exchange(&app, &web, &code, &r).await;
    let (at, rt) = (
        t["access_token"].as_str().expect("at"),
        t["refresh_token"].as_str().expect("rt"),
    );
    let (status, i) = introspect(&app, &web, at).await;
    assert_eq!((status, i["active"].as_bool()), (200, Some(true)), "{i}");
    assert_eq!(i["client_id"], web.client_id);
    let (_, i) = introspect(&app, &web, rt).await;
    assert_eq!(
        (i["active"].as_bool(), i["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    // Another client learns nothing about it; public clients may not introspect.
    let (_, i) = introspect(&app, &web2, at).await;
    assert_eq!(i, json!({"active": false}));
    let (status, _) = introspect(&app, &spa, at).await;
    assert_eq!(status, 401);
    // An admin key may introspect any token.
    let admin = app.api_key(Role::Operator).await;
    let res = reqwest::Client::new()
        .post(format!("{}/oauth/introspect", app.url))
        .bearer_auth(&admin)
        .form(&[("token", at)])
        .send()
        .await
        .expect("introspect");
    let i: Value = res.json().await.expect("json");
    assert_eq!(i["active"], true);
    // Revoking the access token: inactive. Unknown tokens answer 200 too.
    let (status, _) = post_form(
        &app,
        "/oauth/revoke",
        &web,
        &[("token", at), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, i) = introspect(&app, &web, at).await;
    assert_eq!(i["active"], false);
    let (status, _) = post_form(&app, "/oauth/revoke", &web, &[("token", "nonsense")]).await;
    assert_eq!(status, 200);
    // Another client cannot revoke our refresh token; we can, and the family goes with it.
    let (status, _) = post_form(&app, "/oauth/revoke", &web2, &[("token", rt)]).await;
    assert_eq!(status, 200);
    let (_, i) = introspect(&app, &web, rt).await;
    assert_eq!(i["active"], true, "untouched by another client");
    let (status, _) = post_form(&app, "/oauth/revoke", &web, &[("token", rt)]).await;
    assert_eq!(status, 200);
    let (_, i) = introspect(&app, &web, rt).await;
    assert_eq!(i["active"], false);
    let (status, _) = refresh(&app, &web, rt, &[]).await;
    assert_eq!(status, 400);
    // Bad client authentication: 401 with the OAuth error shape.
    let bad = Client {
        id: web.id.clone(),
        client_id: web.client_id.clone(),
        secret: Some("pcs_nope".into()),
    };
    let (status, e) = post_form(&app, "/oauth/revoke", &bad, &[("token", rt)]).await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(app.count_events("token.revoked").await, 2);
}

/// A relying party's back-channel logout endpoint: records every `logout_token` it receives.
pub(crate) async fn logout_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let router = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(
            move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .expect("lock")
                        .push(f.get("logout_token").cloned().unwrap_or_default());
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/backchannel",
        listener.local_addr().expect("addr").port()
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, got)
}

pub(crate) async fn wait_for(got: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let v = got.lock().expect("lock").clone();
        if v.len() >= n {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    got.lock().expect("lock").clone()
}

async fn logout_ends_the_session_and_tells_every_application(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (bc_url, got) = logout_receiver().await;
    let web = client(
        &api,
        "Web",
        "web",
        json!({"backchannel_logout_uri": bc_url}),
    )
    .await;
    let web2 = client(
        &api,
        "Web2",
        "web",
        json!({"backchannel_logout_uri": bc_url}),
    )
    .await;
    let user_id = user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    let r = Request::new();
    let code = code_for(&browser, &web, &r, "ada@example.com").await;
    let (_, t) = exchange(&app, &web, &code, &r).await;
    let r2 = Request::new();
    let res = authorize(&browser, &web2.client_id, &r2, &[]).await;
    let code2 = code_in(&browser, &location(&res), &r2);
    let (_, t2) = exchange(&app, &web2, &code2, &r2).await;
    let id_token = t["id_token"].as_str().expect("id token");

    // An access token is not an ID token hint.
    let res = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={}",
            t["access_token"].as_str().expect("at")
        ))
        .await;
    assert_eq!(location(&res), "/u/error?error=invalid_id_token_hint");
    // Another browser holding the ID token (but not the session) ends nothing.
    let other = app.new_browser();
    let res = other
        .get(&format!("/oauth/logout?id_token_hint={id_token}"))
        .await;
    assert!(
        location(&res).starts_with("/u/signed-out"),
        "{}",
        location(&res)
    );
    assert!(
        res.headers().get("set-cookie").is_none(),
        "no cookie to clear"
    );
    // An unregistered post-logout URI: error page, nothing ended.
    let res = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s1",
            urlencode("https://evil.example/bye")
        ))
        .await;
    assert!(
        location(&res).starts_with("/u/error?"),
        "{}",
        location(&res)
    );
    // RP-initiated logout with the ID token: back to the registered URI with state.
    let res = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s1",
            urlencode("https://rp.example/bye")
        ))
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "https://rp.example/bye?state=s1");
    // The session is over: prompt=none says so, and every token of it is revoked.
    assert_login_required(&browser, &web).await;
    let (status, _) = refresh(&app, &web2, t2["refresh_token"].as_str().expect("rt"), &[]).await;
    assert_eq!(status, 400);
    // Both applications got a signed logout token.
    let tokens = wait_for(&got, 2).await;
    assert_eq!(
        tokens.len(),
        2,
        "one per application with a back-channel URI"
    );
    let set = jwks(&app).await;
    let mut auds = Vec::new();
    for token in &tokens {
        let (header, claims) = verify(token, &set, None).expect("signed with a published key");
        assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
        assert_eq!(claims["sub"], user_id);
        assert_eq!(claims["iss"], app.url);
        assert!(claims["sid"].is_string() && claims["jti"].is_string() && claims["iat"].is_i64());
        assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
        assert!(claims.get("nonce").is_none());
        auds.push(claims["aud"].as_str().expect("aud").to_owned());
    }
    auds.sort();
    let mut want = vec![web.client_id.clone(), web2.client_id.clone()];
    want.sort();
    assert_eq!(auds, want);
    for _ in 0..50 {
        if app.count_events("logout.delivered").await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.count_events("logout.delivered").await, 2);
    let (_, deliveries) = api
        .send(
            Method::GET,
            &format!("/api/v1/applications/{}/logout-deliveries", web.id),
            None,
        )
        .await;
    assert_eq!(deliveries["data"][0]["status"], "delivered", "{deliveries}");

    // Staff revoking a session sends the logout too.
    let r = Request::new();
    code_for(&browser, &web, &r, "ada@example.com").await;
    let (_, sessions) = api
        .send(
            Method::GET,
            &format!("/api/v1/users/{user_id}/sessions"),
            None,
        )
        .await;
    let sid = sessions["data"][0]["id"].as_str().expect("sid").to_owned();
    let (status, _) = api
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{user_id}/sessions/{sid}"),
            None,
        )
        .await;
    assert!(status == 204 || status == 200, "{status}");
    let tokens = wait_for(&got, 3).await;
    assert_eq!(tokens.len(), 3);
    let (_, claims) = verify(&tokens[2], &set, Some(&web.client_id)).expect("verifies");
    assert_eq!(claims["sid"], sid.as_str());
    app.assert_chain_intact().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn backchannel_logout_refuses_private_addresses_without_the_switch(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.allow_private_outbound = false).await;
    let api = Api::new(&app, Role::Operator).await;
    let (bc_url, got) = logout_receiver().await;
    let web = client(
        &api,
        "Web",
        "web",
        json!({"backchannel_logout_uri": bc_url}),
    )
    .await;
    user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    let r = Request::new();
    let code = code_for(&browser, &web, &r, "ada@example.com").await;
    let (_, t) = exchange(&app, &web, &code, &r).await;
    let res = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={}",
            t["id_token"].as_str().expect("id")
        ))
        .await;
    assert!(
        location(&res).starts_with("/u/signed-out"),
        "{}",
        location(&res)
    );
    let mut error = None;
    for _ in 0..50 {
        error = sqlx::query_scalar::<_, Option<String>>("select last_error from logout_delivery")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("row");
        if error.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("non-public address")),
        "{error:?}"
    );
    assert!(
        got.lock().expect("lock").is_empty(),
        "nothing was sent to the loopback address"
    );
}

async fn disabled_applications_and_users_get_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let spa = client(&api, "Shop", "spa", json!({})).await;
    let m2m = client(&api, "Billing", "m2m", json!({})).await;
    let user_id = user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    let r = Request::new();
    let code = code_for(&browser, &spa, &r, "ada@example.com").await;
    let (_, t) = exchange(&app, &spa, &code, &r).await;
    // A disabled user: refresh, userinfo and the session all stop.
    let (s, _) = api
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{user_id}"),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, 200);
    let (status, _) = refresh(&app, &spa, t["refresh_token"].as_str().expect("rt"), &[]).await;
    assert_eq!(status, 400);
    let res = userinfo(&app, t["access_token"].as_str().expect("at")).await;
    assert_eq!(res.status(), 401);
    assert_login_required(&browser, &spa).await;
    // A disabled application: no authorization, no tokens.
    for c in [&spa, &m2m] {
        let (s, _) = api
            .send(
                Method::PATCH,
                &format!("/api/v1/applications/{}", c.id),
                Some(json!({"status": "disabled"})),
            )
            .await;
        assert_eq!(s, 200);
    }
    let res = authorize(&browser, &spa.client_id, &Request::new(), &[]).await;
    assert!(
        location(&res).contains("application_disabled"),
        "{}",
        location(&res)
    );
    let (status, e) = post_form(
        &app,
        "/oauth/token",
        &m2m,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
}

async fn rs256_id_tokens_for_clients_that_need_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (s, e) = api
        .post(json!({"name": "Bad", "type": "web", "id_token_signed_response_alg": "HS256"}))
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_alg")));
    let web = client(
        &api,
        "Legacy",
        "web",
        json!({"id_token_signed_response_alg": "RS256"}),
    )
    .await;
    user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    let r = Request::new();
    let code = code_for(&browser, &web, &r, "ada@example.com").await;
    let (_, t) = exchange(&app, &web, &code, &r).await;
    let set = jwks(&app).await;
    let (h, claims) = verify(
        t["id_token"].as_str().expect("id"),
        &set,
        Some(&web.client_id),
    )
    .expect("verifies");
    assert_eq!(h.alg, Algorithm::RS256);
    assert_eq!(claims["nonce"], r.nonce.as_str());
    let (_, got) = api
        .send(
            Method::GET,
            &format!("/api/v1/applications/{}", web.id),
            None,
        )
        .await;
    assert_eq!(got["id_token_signed_response_alg"], "RS256");
}

async fn logout_without_a_hint_asks_then_returns_to_the_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let web = client(&api, "Web", "web", json!({})).await;
    user(&api, "ada@example.com").await;
    let browser = app.new_browser();
    code_for(&browser, &web, &Request::new(), "ada@example.com").await;
    // No ID token hint: the user confirms on the hosted page, which keeps the URI and state.
    let res = browser
        .get(&format!(
            "/oauth/logout?client_id={}&post_logout_redirect_uri={}&state=s9",
            web.client_id,
            urlencode("https://rp.example/bye")
        ))
        .await;
    let confirm = location(&res);
    assert!(confirm.starts_with("/u/sign-out?"), "{confirm}");
    let q = query_of(&confirm);
    assert_eq!(
        (
            q.get("post_logout_redirect_uri").map(String::as_str),
            q.get("state").map(String::as_str)
        ),
        (Some("https://rp.example/bye"), Some("s9"))
    );
    // A form edited to point elsewhere ends the session but goes to our signed-out page.
    let other = app.new_browser();
    code_for(&other, &web, &Request::new(), "ada@example.com").await;
    let res = other
        .hosted_form(
            &confirm,
            "/u/auth/sign-out",
            &[
                ("client_id", &web.client_id),
                ("post_logout_redirect_uri", "https://evil.example/bye"),
                ("state", "s9"),
            ],
        )
        .await;
    assert!(
        location(&res).starts_with("/u/signed-out"),
        "{}",
        location(&res)
    );
    // Confirmed as asked: back at the client with its state, and the session is over.
    let res = browser
        .hosted_form(
            &confirm,
            "/u/auth/sign-out",
            &[
                ("client_id", &web.client_id),
                ("post_logout_redirect_uri", &q["post_logout_redirect_uri"]),
                ("state", &q["state"]),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://rp.example/bye?state=s9");
    assert_login_required(&browser, &web).await;
}

/// A code redeemed at the moment its session is revoked: whichever commits first, no token of the
/// ended session stays active (PostgreSQL runs both at once; the grant locks the session row).
async fn a_code_redeemed_while_the_session_ends_never_outlives_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let web = client(&api, "Web", "web", json!({})).await;
    let user_id = user(&api, "ada@example.com").await;
    for round in 0..8 {
        let browser = app.new_browser();
        let r = Request::new();
        let code = code_for(&browser, &web, &r, "ada@example.com").await;
        let (_, sessions) = api
            .send(
                Method::GET,
                &format!("/api/v1/users/{user_id}/sessions"),
                None,
            )
            .await;
        let sid = sessions["data"][0]["id"].as_str().expect("sid").to_owned();
        let revoke_path = format!("/api/v1/users/{user_id}/sessions/{sid}");
        let ((status, t), (revoked, _)) = tokio::join!(
            exchange(&app, &web, &code, &r),
            api.send(Method::DELETE, &revoke_path, None)
        );
        assert_eq!(revoked, 204, "round {round}");
        if status == 200 {
            for token in [&t["access_token"], &t["refresh_token"]] {
                let (_, i) = introspect(&app, &web, token.as_str().expect("token")).await;
                assert_eq!(
                    i["active"], false,
                    "round {round}: a token outlived its session"
                );
            }
        }
    }
}
