use crate::helpers::{
    Backend, PASSWORD, TestApp, browser_client, location, session_cookie, spawn_app,
};
use identity::{Role, Timestamp};

crate::on_both_databases!(
    sign_out_revokes_the_session,
    an_idle_session_expires,
    a_session_ends_at_its_absolute_lifetime,
    disabling_a_member_ends_their_sessions,
    signed_out_visitors_are_sent_to_sign_in,
);

/// A server with an owner signed in; returns it and the session cookie's value.
async fn signed_in_owner(backend: Backend) -> (TestApp, String) {
    let app = spawn_app(backend).await;
    app.create_staff("owner@example.com", Role::Owner).await;
    let res = app.sign_in("owner@example.com", PASSWORD).await;
    let token = session_cookie(&res);
    (app, token)
}

async fn sign_out_revokes_the_session(backend: Backend) {
    let (app, token) = signed_in_owner(backend).await;
    let csrf = app.session_csrf().await;

    let out = app
        .client
        .post(format!("{}/auth/logout", app.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "/login?notice=signed_out");

    // Replaying the old cookie does not work: the session is revoked server-side.
    let replay = browser_client(&app.url)
        .get(format!("{}/staff", app.url))
        .header("cookie", format!("pc_session={token}"))
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), 303);
    assert_eq!(location(&replay), "/login?error=session_expired");
    assert_eq!(app.count_events("staff.signed_out").await, 1);
}

async fn an_idle_session_expires(backend: Backend) {
    let (app, token) = signed_in_owner(backend).await;
    let idle = app.identity.settings().session_idle_secs;
    let now = Timestamp::now();

    let just_before =
        identity::sessions::authenticate(&app.identity, &token, now.plus_secs(idle - 5))
            .await
            .expect("auth");
    assert!(
        just_before.is_some(),
        "still alive just before the idle limit"
    );
    // That request refreshed the idle clock; idle for the whole period after it ends the session.
    let after = identity::sessions::authenticate(&app.identity, &token, now.plus_secs(2 * idle))
        .await
        .expect("auth");
    assert!(after.is_none());

    // Over HTTP: age the session's last activity past the idle limit.
    sqlx::query("update staff_session set last_seen_at = last_seen_at - $1")
        .bind((idle + 10) * 1000 * 3)
        .execute(app.identity.db().pool())
        .await
        .expect("age session");
    let res = app.get("/").await;
    assert_eq!(location(&res), "/login?error=session_expired");
}

async fn a_session_ends_at_its_absolute_lifetime(backend: Backend) {
    let (app, token) = signed_in_owner(backend).await;
    let absolute = app.identity.settings().session_absolute_secs;
    let idle = app.identity.settings().session_idle_secs;
    let start = Timestamp::now();
    // Active every half idle period: the idle limit never hits, the absolute one does.
    let mut t = start;
    while t < start.plus_secs(absolute - idle) {
        t = t.plus_secs(idle / 2);
        assert!(
            identity::sessions::authenticate(&app.identity, &token, t)
                .await
                .expect("auth")
                .is_some()
        );
    }
    // Active a minute before the end, so only the absolute lifetime can end it a minute later.
    let late =
        identity::sessions::authenticate(&app.identity, &token, start.plus_secs(absolute - 60))
            .await
            .expect("auth");
    assert!(late.is_some());
    let end =
        identity::sessions::authenticate(&app.identity, &token, start.plus_secs(absolute + 1))
            .await
            .expect("auth");
    assert!(end.is_none());
}

async fn disabling_a_member_ends_their_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signed_in_as("owner@example.com", Role::Owner).await;
    let member_client = app.new_browser();
    let member = member_client
        .signed_in_as("member@example.com", Role::Operator)
        .await;
    assert_eq!(member_client.get("/").await.status(), 200);

    app.disable_from_dashboard(&member).await;

    assert_eq!(
        location(&member_client.get("/").await),
        "/login?error=session_expired"
    );
}

async fn signed_out_visitors_are_sent_to_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/", "/staff", "/audit", "/applications", "/settings"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(location(&res), "/login", "{path}");
    }
    assert_eq!(app.get("/login").await.status(), 200);
    let rpc = app.rpc("list_staff", &[]).await;
    assert_eq!(rpc.status(), 401);
    let body: serde_json::Value = rpc.json().await.expect("json");
    assert_eq!(body["code"], "unauthenticated");
}
