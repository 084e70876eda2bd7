use crate::helpers::{Backend, location, spawn_app};
use identity::Role;

crate::on_both_databases!(
    sign_in_without_the_form_token_is_refused,
    cross_origin_posts_are_refused_everywhere_but_the_bearer_api,
    a_mutation_with_a_wrong_session_token_is_refused,
);

async fn sign_in_without_the_form_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_staff("owner@example.com", Role::Owner).await;
    let _ = app.get("/login").await; // gets the pc_csrf cookie
    for token in ["", "forged-token-forged-token-forged-token-00"] {
        let res = app
            .client
            .post(format!("{}/auth/login", app.url))
            .form(&[
                ("email", "owner@example.com"),
                ("password", crate::helpers::PASSWORD),
                ("csrf", token),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(location(&res), "/login?error=csrf");
    }
    assert_eq!(app.count_events("staff.signed_in").await, 0);
}

async fn cross_origin_posts_are_refused_everywhere_but_the_bearer_api(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signed_in_as("owner@example.com", Role::Owner).await;
    let csrf = app.session_csrf().await;

    for (origin, name) in [
        (Some("https://evil.example"), "foreign origin"),
        (None, "no origin"),
    ] {
        let mut req = app
            .client
            .post(format!("{}/rpc/invite_staff", app.url))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", "x@example.com"),
                ("role", "owner"),
            ]);
        req = match origin {
            Some(o) => req.header("origin", o),
            // reqwest's default header is replaced by an empty value: no usable origin, no referer.
            None => req.header("origin", "null"),
        };
        let res = req.send().await.expect("post");
        assert_eq!(res.status(), 403, "{name}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], "csrf_failed", "{name}");
    }
    let logout = app
        .client
        .post(format!("{}/auth/logout", app.url))
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(logout.status(), 403);
    assert_eq!(app.count_events("staff.invited").await, 0);
    assert_eq!(app.count_events("staff.signed_out").await, 0);

    // The management API authenticates by bearer key only, so no origin is needed there.
    let key = app.api_key(Role::Owner).await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/staff", app.url))
        .bearer_auth(key)
        .json(&serde_json::json!({"email": "x@example.com", "role": "auditor"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 201);
}

async fn a_mutation_with_a_wrong_session_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signed_in_as("owner@example.com", Role::Owner).await;
    let res = app
        .rpc(
            "invite_staff",
            &[
                ("csrf", "not-the-token"),
                ("email", "x@example.com"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["code"], "csrf_failed");
    assert_eq!(app.count_events("staff.invited").await, 0);

    let logout = app
        .client
        .post(format!("{}/auth/logout", app.url))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .expect("post");
    assert_eq!(location(&logout), "/?error=csrf");
    assert_eq!(app.get("/").await.status(), 200, "still signed in");
}
