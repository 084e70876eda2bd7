//! Audited impersonation through the dashboard's server functions and real OAuth flows: every
//! refusal rule, the two-person rule, tokens with `act` capped at the end time, and ending it
//! (revocation, back-channel logout, the user's notice, the audit trail).

use crate::applications::Api;
use crate::helpers::{Backend, TestApp, location, spawn_app};
use crate::oidc::{
    Client, Request, authorize, client, code_in, exchange, introspect, jwks, logout_receiver,
    refresh, user, verify, wait_for,
};
use identity::{Role, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

crate::on_both_databases!(
    every_refusal_rule_holds,
    approval_needs_another_supervisor_and_requests_expire,
    tokens_carry_act_and_ending_revokes_everything,
);

/// A dashboard server function as the signed-in browser calls it: (status, JSON body).
async fn call(browser: &TestApp, name: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let csrf = browser.session_csrf().await;
    let mut f: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    f.extend_from_slice(form);
    let res = browser.rpc(name, &f).await;
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn set_policy(browser: &TestApp, app_id: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut f = vec![("id", app_id), ("max_minutes", "60"), ("mode", "full")];
    for (k, v) in extra {
        f.retain(|(fk, _)| fk != k);
        f.push((k, v));
    }
    call(browser, "set_impersonation_policy", &f).await
}

async fn ask(browser: &TestApp, user: &str, app_id: &str, minutes: &str) -> (u16, Value) {
    call(
        browser,
        "request_impersonation",
        &[
            ("user", user),
            ("application_id", app_id),
            ("minutes", minutes),
            ("reason", "Customer reports a broken invoice page"),
            ("ticket", "SUP-42"),
        ],
    )
    .await
}

async fn assign(browser: &TestApp, app_id: &str, staff_id: &str) -> (u16, Value) {
    call(
        browser,
        "assign_impersonator",
        &[("id", app_id), ("staff_id", staff_id)],
    )
    .await
}

async fn decide(browser: &TestApp, decision: &str, id: &str) -> (u16, Value) {
    call(
        browser,
        "decide_impersonation",
        &[("id", id), ("decision", decision), ("comment", "ok")],
    )
    .await
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or_default()
}

struct Staff {
    owner: TestApp,
    operator: TestApp,
    support: TestApp,
    support_id: String,
    auditor: TestApp,
}

async fn staff(app: &TestApp) -> Staff {
    let owner = app.new_browser();
    owner.signed_in_as("owner@staff.example", Role::Owner).await;
    let operator = app.new_browser();
    operator
        .signed_in_as("operator@staff.example", Role::Operator)
        .await;
    let support = app.new_browser();
    let support_id = support
        .signed_in_as("support@staff.example", Role::Support)
        .await;
    let auditor = app.new_browser();
    auditor
        .signed_in_as("auditor@staff.example", Role::Auditor)
        .await;
    Staff {
        owner,
        operator,
        support,
        support_id,
        auditor,
    }
}

async fn status_of(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("select status from impersonation where impersonation_id = $1")
        .bind(id)
        .fetch_one(app.identity.db().pool())
        .await
        .expect("impersonation row")
}

async fn every_refusal_rule_holds(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let web = client(&api, "Web", "web", json!({})).await;
    let m2m = client(&api, "Jobs", "m2m", json!({})).await;
    user(&api, "ada@example.com").await;
    let s = staff(&app).await;

    // Off by default.
    let (status, e) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    assert_eq!((status, code(&e)), (409, "impersonation_disabled"), "{e}");
    // Support cannot change the policy; operators can (never for m2m); bounds hold.
    let (status, _) = set_policy(&s.support, &web.id, &[("enabled", "on")]).await;
    assert_eq!(status, 403);
    let (status, e) = set_policy(&s.operator, &m2m.id, &[("enabled", "on")]).await;
    assert_eq!((status, code(&e)), (422, "m2m_application"), "{e}");
    let (status, e) = set_policy(
        &s.operator,
        &web.id,
        &[("enabled", "on"), ("max_minutes", "481")],
    )
    .await;
    assert_eq!(
        (status, e["field"].as_str()),
        (422, Some("max_duration_secs")),
        "{e}"
    );
    let (status, e) = set_policy(&s.operator, &web.id, &[("enabled", "on")]).await;
    assert_eq!(status, 200, "{e}");
    // Not assigned yet; only owners assign, and never an auditor.
    let (status, e) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    assert_eq!((status, code(&e)), (409, "not_assigned"), "{e}");
    let (status, _) = assign(&s.operator, &web.id, &s.support_id).await;
    assert_eq!(status, 403);
    let auditor_id: String =
        sqlx::query_scalar("select staff_id from staff where email = 'auditor@staff.example'")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("auditor");
    let (status, e) = assign(&s.owner, &web.id, &auditor_id).await;
    assert_eq!(
        (status, e["field"].as_str()),
        (422, Some("staff_id")),
        "{e}"
    );
    let (status, e) = assign(&s.owner, &web.id, &s.support_id).await;
    assert_eq!(status, 200, "{e}");
    // Auditors never impersonate.
    let (status, _) = ask(&s.auditor, "ada@example.com", &web.id, "30").await;
    assert_eq!(status, 403);
    // Input rules, each next to its field.
    let (status, e) = call(
        &s.support,
        "request_impersonation",
        &[
            ("user", "ada@example.com"),
            ("application_id", &web.id),
            ("minutes", "30"),
            ("reason", "too short"),
        ],
    )
    .await;
    assert_eq!((status, e["field"].as_str()), (422, Some("reason")), "{e}");
    let (status, e) = ask(&s.support, "ada@example.com", &web.id, "61").await;
    assert_eq!(
        (status, e["field"].as_str()),
        (422, Some("duration_secs")),
        "{e}"
    );
    let (status, e) = ask(&s.support, "nobody@example.com", &web.id, "30").await;
    assert_eq!((status, e["field"].as_str()), (422, Some("user")), "{e}");
    // A disabled user, and the staff member's own account (same email in the user pool).
    let bob = user(&api, "bob@example.com").await;
    let (status, _) = api
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, e) = ask(&s.support, "bob@example.com", &web.id, "30").await;
    assert_eq!((status, code(&e)), (409, "user_not_active"), "{e}");
    user(&api, "support@staff.example").await;
    let (status, e) = ask(&s.support, "support@staff.example", &web.id, "30").await;
    assert_eq!((status, code(&e)), (409, "own_account"), "{e}");
    // Allowed: approved at once (no approval rule); a second one is refused while it is open.
    let (status, first) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    assert_eq!(
        (status, first["status"].as_str()),
        (200, Some("approved")),
        "{first}"
    );
    let (status, e) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    assert_eq!((status, code(&e)), (409, "already_impersonating"), "{e}");
    // Nothing refused was written; the one request is on the record.
    let rows: i64 = sqlx::query_scalar("select count(*) from impersonation")
        .fetch_one(app.identity.db().pool())
        .await
        .expect("count");
    assert_eq!(rows, 1);
    assert_eq!(app.count_events("impersonation.requested").await, 1);
    assert_eq!(app.count_events("impersonation.policy_updated").await, 1);
    assert_eq!(app.count_events("impersonation.assigned").await, 1);
    app.assert_chain_intact().await;
}

async fn approval_needs_another_supervisor_and_requests_expire(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let web = client(&api, "Web", "web", json!({})).await;
    user(&api, "ada@example.com").await;
    let s = staff(&app).await;
    let (status, _) = set_policy(
        &s.operator,
        &web.id,
        &[("enabled", "on"), ("require_approval", "on")],
    )
    .await;
    assert_eq!(status, 200);
    let operator_id: String =
        sqlx::query_scalar("select staff_id from staff where email = 'operator@staff.example'")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("operator");
    for id in [&s.support_id, &operator_id] {
        let (status, e) = assign(&s.owner, &web.id, id).await;
        assert_eq!(status, 200, "{e}");
    }
    // An operator's own request waits; they cannot approve it themselves; the owner can.
    let (_, req) = ask(&s.operator, "ada@example.com", &web.id, "30").await;
    assert_eq!(req["status"], "pending", "{req}");
    let id = req["id"].as_str().expect("id").to_owned();
    let (status, e) = decide(&s.operator, "approve", &id).await;
    assert_eq!((status, code(&e)), (409, "own_request"), "{e}");
    // Support staff never decide; starting before approval is refused.
    let (_, sreq) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    let sid = sreq["id"].as_str().expect("id").to_owned();
    let (status, _) = decide(&s.support, "approve", &id).await;
    assert_eq!(status, 403);
    let res = start(&s.support, &sid).await;
    assert_eq!(location(&res), "/impersonation?error=not_approved");
    let (status, e) = decide(&s.owner, "approve", &id).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(status_of(&app, &id).await, "approved");
    let (status, e) = decide(&s.owner, "deny", &id).await;
    assert_eq!(
        (status, code(&e)),
        (409, "not_pending"),
        "decided once: {e}"
    );
    // Denied by the operator.
    let (status, _) = decide(&s.operator, "deny", &sid).await;
    assert_eq!(status, 200);
    assert_eq!(status_of(&app, &sid).await, "denied");
    // A request nobody decides within 30 minutes expires (the sweep every replica runs).
    let (_, late) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    let late = late["id"].as_str().expect("id").to_owned();
    sqlx::query(
        "update impersonation set requested_at = requested_at - $1 where impersonation_id = $2",
    )
    .bind(31 * 60 * 1000_i64)
    .bind(&late)
    .execute(app.identity.db().pool())
    .await
    .expect("age the request");
    identity::impersonation::sweep(&app.identity, Timestamp::now())
        .await
        .expect("sweep");
    assert_eq!(status_of(&app, &late).await, "expired");
    let (status, e) = decide(&s.owner, "approve", &late).await;
    assert_eq!((status, code(&e)), (409, "not_pending"), "{e}");
    for (event, n) in [
        ("impersonation.requested", 3),
        ("impersonation.approved", 1),
        ("impersonation.denied", 1),
        ("impersonation.expired_unapproved", 1),
    ] {
        assert_eq!(app.count_events(event).await, n, "{event}");
    }
    app.assert_chain_intact().await;
}

/// POSTs the dashboard's Start form.
async fn start(browser: &TestApp, id: &str) -> reqwest::Response {
    let csrf = browser.session_csrf().await;
    browser
        .client
        .post(format!("{}/auth/impersonations/start", browser.url))
        .form(&[("csrf", csrf.as_str()), ("id", id)])
        .send()
        .await
        .expect("start")
}

/// The support browser signs in to `c` through the authorization endpoint: a code, no prompt.
async fn tokens_in(app: &TestApp, browser: &TestApp, c: &Client) -> Value {
    let r = Request::new();
    let res = authorize(browser, &c.client_id, &r, &[]).await;
    let code = code_in(browser, &location(&res), &r);
    let (status, t) = exchange(app, c, &code, &r).await;
    assert_eq!(status, 200, "{t}");
    t
}

async fn tokens_carry_act_and_ending_revokes_everything(backend: Backend) {
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
    let other = client(&api, "Other", "spa", json!({})).await;
    let ada = user(&api, "ada@example.com").await;
    let s = staff(&app).await;
    let (status, _) = set_policy(
        &s.operator,
        &web.id,
        &[
            ("enabled", "on"),
            ("mode", "read_only"),
            ("notify_user", "on"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assign(&s.owner, &web.id, &s.support_id).await;
    let (_, req) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    let id = req["id"].as_str().expect("id").to_owned();
    // Only the requester starts it; the browser gets its own impersonation session cookie.
    let res = start(&s.operator, &id).await;
    assert_eq!(location(&res), "/impersonation?error=not_found");
    let res = start(&s.support, &id).await;
    assert_eq!(location(&res), format!("/impersonation?started={id}"));
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pc_imp="))
        .expect("pc_imp cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(status_of(&app, &id).await, "active");

    // The application gets standard tokens for the user, carrying who acts and until when.
    let t = tokens_in(&app, &s.support, &web).await;
    let set = jwks(&app).await;
    let (_, claims) = verify(
        t["id_token"].as_str().expect("id"),
        &set,
        Some(&web.client_id),
    )
    .expect("id token");
    let (_, at) = verify(
        t["access_token"].as_str().expect("at"),
        &set,
        Some(&web.client_id),
    )
    .expect("access token");
    let ends_at: i64 =
        sqlx::query_scalar("select ends_at from impersonation where impersonation_id = $1")
            .bind(&id)
            .fetch_one(app.identity.db().pool())
            .await
            .expect("ends_at");
    for c in [&claims, &at] {
        assert_eq!(c["sub"], ada.as_str());
        assert_eq!(
            c["act"],
            json!({"sub": s.support_id, "email": "support@staff.example"})
        );
        assert_eq!(c["impersonation"]["id"], id.as_str());
        assert_eq!(c["impersonation"]["mode"], "read_only");
        assert_eq!(c["impersonation"]["ends_at"], ends_at / 1000);
        assert!(c["exp"].as_i64().expect("exp") <= ends_at / 1000, "{c}");
    }
    // Confined to its application: another application asks this browser to sign in.
    let res = authorize(&s.support, &other.client_id, &Request::new(), &[]).await;
    assert!(
        location(&res).starts_with("/u/sign-in"),
        "{}",
        location(&res)
    );
    // Account changes are refused on the hosted pages while impersonating.
    let res = s
        .support
        .client
        .post(format!("{}/u/auth/sign-up", app.url))
        .form(&[
            ("client_id", web.client_id.as_str()),
            ("email", "x@example.com"),
        ])
        .send()
        .await
        .expect("sign-up");
    assert_eq!(location(&res), "/u/error?error=impersonating");
    // Refreshable while it lasts; the user's own sessions list does not show it.
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();
    let (status, t2) = refresh(&app, &web, &rt, &[]).await;
    assert_eq!(status, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().expect("rt2").to_owned();
    let (_, sessions) = api
        .send(Method::GET, &format!("/api/v1/users/{ada}/sessions"), None)
        .await;
    assert_eq!(sessions["data"], json!([]), "{sessions}");

    // The support person ends it: every token inactive, logout delivered, the user told.
    let (status, e) = call(&s.support, "end_impersonation", &[("id", &id)]).await;
    assert_eq!(status, 200, "{e}");
    for token in [t2["access_token"].as_str().expect("at"), &rt2] {
        let (_, i) = introspect(&app, &web, token).await;
        assert_eq!(i["active"], false, "{i}");
    }
    let (status, _) = refresh(&app, &web, &rt2, &[]).await;
    assert_eq!(status, 400);
    let delivered = wait_for(&got, 1).await;
    assert_eq!(delivered.len(), 1, "one back-channel logout");
    let (_, logout) = verify(&delivered[0], &set, Some(&web.client_id)).expect("logout token");
    assert_eq!(logout["sub"], ada.as_str());
    let (subject, body) = app.last_mail("ada@example.com").await;
    assert!(subject.contains("Web"), "{subject}");
    assert!(
        body.contains("support@staff.example") && body.contains("broken invoice"),
        "{body}"
    );
    // The browser's cookie is dead now: back to the hosted sign-in.
    let res = authorize(&s.support, &web.client_id, &Request::new(), &[]).await;
    assert!(
        location(&res).starts_with("/u/sign-in"),
        "{}",
        location(&res)
    );

    // A second one runs out: refresh past the end time fails, the sweep ends it.
    let (_, req) = ask(&s.support, "ada@example.com", &web.id, "30").await;
    let id2 = req["id"].as_str().expect("id").to_owned();
    start(&s.support, &id2).await;
    let t = tokens_in(&app, &s.support, &web).await;
    sqlx::query("update impersonation set ends_at = $1 where impersonation_id = $2")
        .bind(Timestamp::now().millis() - 1000)
        .bind(&id2)
        .execute(app.identity.db().pool())
        .await
        .expect("end time passes");
    let (status, e) = refresh(&app, &web, t["refresh_token"].as_str().expect("rt"), &[]).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    identity::impersonation::sweep(&app.identity, Timestamp::now())
        .await
        .expect("sweep");
    assert_eq!(status_of(&app, &id2).await, "ended");
    let (_, i) = introspect(&app, &web, t["access_token"].as_str().expect("at")).await;
    assert_eq!(i["active"], false);

    // The audit log tells the story of the first one, filtered by its id.
    let auditor = Api::new(&app, Role::Auditor).await;
    let (status, log) = auditor
        .send(
            Method::GET,
            &format!("/api/v1/audit-events?target=impersonation:{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let mut events: Vec<&str> = log["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    events.reverse();
    assert_eq!(
        events,
        [
            "impersonation.requested",
            "impersonation.started",
            "impersonation.token_issued",
            "impersonation.token_issued",
            "impersonation.ended",
            "impersonation.user_notified"
        ],
        "{log}"
    );
    for e in log["data"].as_array().expect("data") {
        let d = &e["detail"];
        assert_eq!(
            (
                d["staff_email"].as_str(),
                d["user_id"].as_str(),
                d["application_id"].as_str()
            ),
            (
                Some("support@staff.example"),
                Some(ada.as_str()),
                Some(web.id.as_str())
            ),
            "{e}"
        );
        assert_eq!(d["reason"], "Customer reports a broken invoice page");
        assert_eq!(
            (d["ticket"].as_str(), d["mode"].as_str()),
            (Some("SUP-42"), Some("read_only"))
        );
    }
    app.assert_chain_intact().await;
}
