use crate::helpers::{Backend, PASSWORD, location, spawn_app, spawn_app_with};
use identity::Role;

crate::on_both_databases!(
    right_password_starts_a_session_with_strict_cookie_flags,
    unknown_email_and_wrong_password_get_the_same_answer,
    failures_for_one_account_are_throttled,
    failures_from_one_ip_are_throttled,
    disabled_and_invited_accounts_cannot_sign_in,
);

async fn right_password_starts_a_session_with_strict_cookie_flags(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_staff("owner@example.com", Role::Owner).await;

    let res = app.sign_in("Owner@Example.com", PASSWORD).await;

    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pc_session="))
        .expect("session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    let token = cookie
        .trim_start_matches("pc_session=")
        .split(';')
        .next()
        .unwrap_or_default();
    assert!(token.len() >= 43, "256-bit token");

    // The token is stored hashed, never as is.
    let stored: i64 = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
        "select count(*) from staff_session where token_hash = '{token}'"
    )))
    .fetch_one(app.identity.db().pool())
    .await
    .expect("count");
    assert_eq!(stored, 0);

    let home = app.get("/").await;
    assert_eq!(home.status(), 200);
    assert!(
        home.text()
            .await
            .expect("body")
            .contains("Signed in as owner@example.com")
    );
    assert_eq!(app.count_events("staff.signed_in").await, 1);
}

async fn unknown_email_and_wrong_password_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_staff("owner@example.com", Role::Owner).await;

    let wrong = app.sign_in("owner@example.com", "not the password!").await;
    let unknown = app.sign_in("nobody@example.com", "not the password!").await;

    assert_eq!(wrong.status(), 303);
    assert_eq!(location(&wrong), "/login?error=invalid");
    assert_eq!(location(&unknown), location(&wrong));
    let page = app
        .get("/login?error=invalid")
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("Incorrect email or password."));
    assert!(!page.contains("nobody@example.com"));
    assert_eq!(app.count_events("staff.sign_in_failed").await, 2);
    assert_eq!(app.get("/").await.status(), 303, "still signed out");
}

async fn failures_for_one_account_are_throttled(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_staff("owner@example.com", Role::Owner).await;
    for _ in 0..5 {
        let res = app.sign_in("owner@example.com", "wrong password!").await;
        assert_eq!(location(&res), "/login?error=invalid");
    }

    // Now even the right password is refused, without saying whether it was right.
    let res = app.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/login?error=throttled");
    assert_eq!(app.count_events("staff.signed_in").await, 0);

    // Another account from the same IP is unaffected (the per-IP limit is higher).
    app.create_staff("other@example.com", Role::Operator).await;
    assert_eq!(
        location(&app.sign_in("other@example.com", PASSWORD).await),
        "/"
    );
}

async fn failures_from_one_ip_are_throttled(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.settings.throttle_per_ip = 3).await;
    app.create_staff("owner@example.com", Role::Owner).await;
    for i in 0..3 {
        let res = app
            .sign_in(&format!("guess{i}@example.com"), "wrong password!")
            .await;
        assert_eq!(location(&res), "/login?error=invalid");
    }
    let res = app.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/login?error=throttled");
}

async fn disabled_and_invited_accounts_cannot_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signed_in_as("owner@example.com", Role::Owner).await;
    let member = app.create_staff("member@example.com", Role::Operator).await;
    app.disable_from_dashboard(&member).await;
    let csrf = app.session_csrf().await;
    let invited = app
        .rpc(
            "invite_staff",
            &[
                ("csrf", &csrf),
                ("email", "new@example.com"),
                ("role", "support"),
            ],
        )
        .await;
    assert_eq!(invited.status(), 200);

    let app2 = app.new_browser();
    assert_eq!(
        location(&app2.sign_in("member@example.com", PASSWORD).await),
        "/login?error=invalid"
    );
    assert_eq!(
        location(&app2.sign_in("new@example.com", PASSWORD).await),
        "/login?error=invalid"
    );
}
