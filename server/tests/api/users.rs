//! The shared user pool through the REST API and the hosted pages.

use crate::applications::Api;
use crate::helpers::{Backend, location, spawn_app};
use identity::Role;
use reqwest::Method;
use serde_json::{Value, json};

crate::on_both_databases!(
    users_are_created_searched_changed_and_audited,
    an_invited_user_sets_a_password_and_returns_to_the_inviting_application,
    reset_links_work_once_and_return_to_their_application,
    expired_invitations_fail,
    email_is_unique_case_insensitively_under_concurrent_creation,
    hosted_sign_in_is_generic_throttled_and_per_application,
    self_sign_up_follows_the_application_switch,
    parallel_guesses_cannot_slip_under_the_throttle,
    a_role_granted_in_one_application_is_invisible_to_another,
    organizations_group_users_with_a_role,
    readers_read_and_only_operators_and_owners_write,
);

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// The token in a link inside a mail body.
fn token_in(body: &str) -> String {
    body.split("token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("a link with a token")
        .to_owned()
}

async fn users_are_created_searched_changed_and_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    for (email, name) in [
        ("ada@example.com", "Ada Lovelace"),
        ("alan@example.com", "Alan Turing"),
        ("grace@navy.mil", "Grace Hopper"),
    ] {
        let (status, user) = api
            .send(
                Method::POST,
                "/api/v1/users",
                Some(json!({"email": email, "name": name, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(user["status"], "active");
        assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));
    }
    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|u| u["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (_, res) = api.send(Method::GET, "/api/v1/users?q=AL", None).await;
    assert_eq!(
        names(&res),
        ["Alan Turing"],
        "prefix of the email, any case"
    );
    let (_, res) = api
        .send(Method::GET, "/api/v1/users?q=grace%20h", None)
        .await;
    assert_eq!(names(&res), ["Grace Hopper"], "prefix of the name");
    let (_, res) = api.send(Method::GET, "/api/v1/users?q=a", None).await;
    assert_eq!(names(&res), ["Alan Turing", "Ada Lovelace"], "newest first");
    let (_, first) = api.send(Method::GET, "/api/v1/users?limit=2", None).await;
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = api
        .send(
            Method::GET,
            &format!("/api/v1/users?limit=2&after={cursor}"),
            None,
        )
        .await;
    assert_eq!(names(&second), ["Ada Lovelace"]);

    let ada = &first["data"][1];
    let path = format!(
        "/api/v1/users/{}",
        second["data"][0]["id"].as_str().expect("id")
    );
    let _ = ada;
    let (status, changed) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"email": "Ada@Analytical.Engine", "metadata": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        changed["email"], "ada@analytical.engine",
        "normalised; the id stays"
    );
    assert_eq!(changed["metadata"], json!({"plan": "pro"}));
    let (status, res) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"email": "ALAN@example.com"})),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("email_taken"))
    );
    let (status, res) = api
        .send(Method::PATCH, &path, Some(json!({"metadata": [1, 2]})))
        .await;
    assert_eq!(
        (status, res["error"]["field"].as_str()),
        (422, Some("metadata"))
    );
    let (_, disabled) = api
        .send(Method::PATCH, &path, Some(json!({"status": "disabled"})))
        .await;
    assert_eq!(disabled["status"], "disabled");
    let (_, res) = api
        .send(Method::GET, "/api/v1/users?status=disabled", None)
        .await;
    assert_eq!(names(&res), ["Ada Lovelace"]);
    assert_eq!(app.count_events("user.created").await, 3);
    assert_eq!(app.count_events("user.updated").await, 1);
    assert_eq!(app.count_events("user.disabled").await, 1);
    let (status, res) = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "weak@example.com", "password": "password123"})),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("password_too_common"))
    );
    app.assert_chain_intact().await;
}

/// Creates an application with a return URL through the API; returns (id, client_id).
async fn app_with_return(api: &Api, name: &str, t: &str, return_url: &str) -> (String, String) {
    let (status, created) = api
        .send(
            Method::POST,
            "/api/v1/applications",
            Some(json!({"name": name, "type": t, "return_url": return_url})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (
        id_of(&created),
        created["client_id"].as_str().expect("cid").to_owned(),
    )
}

async fn an_invited_user_sets_a_password_and_returns_to_the_inviting_application(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (spa, spa_client) =
        app_with_return(&api, "Shop SPA", "spa", "https://shop.example/welcome").await;
    let (status, invited) = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "new@example.com", "name": "New", "application_id": spa})),
        )
        .await;
    assert_eq!((status, invited["status"].as_str()), (201, Some("invited")));
    let (subject, body) = app.last_mail("new@example.com").await;
    assert_eq!(subject, "You are invited to Shop SPA");
    let token = token_in(&body);
    assert_eq!(
        invited["invitation_url"]
            .as_str()
            .map(|u| u.ends_with(&token)),
        Some(true)
    );

    let browser = app.new_browser();
    let page = format!("/u/accept-invitation?token={token}");
    let html = browser.get(&page).await.text().await.expect("page");
    assert!(html.contains("Shop SPA"), "the page names the application");
    let res = browser
        .hosted_form(
            &page,
            "/u/auth/accept-invitation",
            &[
                ("token", &token),
                ("password", "a fine new password"),
                ("password_confirm", "a different one!"),
            ],
        )
        .await;
    assert!(location(&res).contains("error=password_mismatch"));
    let res = browser
        .hosted_form(
            &page,
            "/u/auth/accept-invitation",
            &[
                ("token", &token),
                ("password", "a fine new password"),
                ("password_confirm", "a fine new password"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let next = location(&res);
    assert_eq!(
        next,
        format!("/u/continue?client_id={spa_client}&notice=invitation_accepted")
    );
    let html = browser.get(&next).await.text().await.expect("continue");
    assert!(
        html.contains("0;url=https://shop.example/welcome"),
        "on to the SPA's return URL"
    );
    let (_, user) = api
        .send(
            Method::GET,
            &format!("/api/v1/users/{}", id_of(&invited)),
            None,
        )
        .await;
    assert_eq!(
        (user["status"].as_str(), user["email_verified"].as_bool()),
        (Some("active"), Some(true))
    );
    // The link was single use.
    let html = browser.get(&page).await.text().await.expect("page");
    assert!(html.contains("invalid, expired or already used"));
    // And the new password signs in.
    let res = browser
        .hosted_form(
            &format!("/u/sign-in?client_id={spa_client}"),
            "/u/auth/sign-in",
            &[
                ("client_id", &spa_client),
                ("email", "NEW@example.com"),
                ("password", "a fine new password"),
            ],
        )
        .await;
    assert!(
        location(&res).starts_with("/u/continue"),
        "{}",
        location(&res)
    );
}

async fn reset_links_work_once_and_return_to_their_application(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, native_client) =
        app_with_return(&api, "Phone", "native", "com.example.phone:/welcome").await;
    api.send(
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "bob@example.com", "password": "bobs first password"})),
    )
    .await;
    let browser = app.new_browser();
    let forgot = format!("/u/forgot-password?client_id={native_client}");
    for email in ["bob@example.com", "nobody@example.com"] {
        let res = browser
            .hosted_form(
                &forgot,
                "/u/auth/forgot-password",
                &[("client_id", &native_client), ("email", email)],
            )
            .await;
        assert_eq!(
            location(&res),
            format!("{forgot}&notice=sent"),
            "the same answer for {email}"
        );
    }
    let count: i64 = sqlx::query_scalar(
        "select count(*) from outbox_message where to_email = 'nobody@example.com'",
    )
    .fetch_one(app.identity.db().pool())
    .await
    .expect("count");
    assert_eq!(count, 0);
    let (subject, body) = app.last_mail("bob@example.com").await;
    assert_eq!(subject, "Reset your Phone password");
    let token = token_in(&body);
    let page = format!("/u/reset-password?token={token}");
    let fields = [
        ("token", token.as_str()),
        ("password", "bobs second password"),
        ("password_confirm", "bobs second password"),
    ];
    let res = browser
        .hosted_form(&page, "/u/auth/reset-password", &fields)
        .await;
    assert_eq!(
        location(&res),
        format!("/u/continue?client_id={native_client}&notice=password_reset")
    );
    let html = browser
        .get(&location(&res))
        .await
        .text()
        .await
        .expect("continue");
    assert!(
        html.contains("com.example.phone:/welcome"),
        "back to the native app"
    );
    // Used twice: refused, and the password stays the second one.
    let html = browser.get(&page).await.text().await.expect("page");
    assert!(html.contains("invalid, expired or already used"));
    let res = browser
        .client
        .post(format!("{}/u/auth/reset-password", browser.url))
        .form(&[
            ("token", token.as_str()),
            ("password", "bobs third password"),
            ("password_confirm", "bobs third password"),
            (
                "csrf",
                crate::helpers::form_csrf(&browser.get(&forgot).await.text().await.expect("p"))
                    .as_str(),
            ),
        ])
        .send()
        .await
        .expect("post");
    assert!(
        location(&res).contains("error=invalid_link"),
        "{}",
        location(&res)
    );
    let res = browser
        .hosted_form(
            &format!("/u/sign-in?client_id={native_client}"),
            "/u/auth/sign-in",
            &[
                ("client_id", &native_client),
                ("email", "bob@example.com"),
                ("password", "bobs second password"),
            ],
        )
        .await;
    assert!(location(&res).starts_with("/u/continue"));
    assert_eq!(app.count_events("user.password_reset").await, 1);

    // A link sent before the email changed stops working.
    let res = browser
        .hosted_form(
            &forgot,
            "/u/auth/forgot-password",
            &[("client_id", &native_client), ("email", "bob@example.com")],
        )
        .await;
    assert!(location(&res).ends_with("notice=sent"));
    // The request is handled after the answer: wait for the second message.
    let first = body.clone();
    let mut stale = String::new();
    for _ in 0..100 {
        let (_, latest) = app.last_mail("bob@example.com").await;
        if latest != first {
            stale = token_in(&latest);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!stale.is_empty(), "a second reset link was sent");
    let (_, users) = api.send(Method::GET, "/api/v1/users?q=bob", None).await;
    let bob = format!(
        "/api/v1/users/{}",
        users["data"][0]["id"].as_str().expect("id")
    );
    api.send(
        Method::PATCH,
        &bob,
        Some(json!({"email": "robert@example.com"})),
    )
    .await;
    let html = browser
        .get(&format!("/u/reset-password?token={stale}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(html.contains("invalid, expired or already used"));
    assert_eq!(app.count_events("user.password_reset_requested").await, 2);
}

async fn expired_invitations_fail(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    api.send(
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "late@example.com"})),
    )
    .await;
    let token = token_in(&app.last_mail("late@example.com").await.1);
    sqlx::query("update user_token set expires_at = 1")
        .execute(app.identity.db().pool())
        .await
        .expect("expire");
    let browser = app.new_browser();
    let page = format!("/u/accept-invitation?token={token}");
    let html = browser.get(&page).await.text().await.expect("page");
    assert!(html.contains("invalid, expired or already used"));
    let csrf = crate::helpers::form_csrf(&browser.get("/u/sign-in").await.text().await.expect("p"));
    let res = browser
        .client
        .post(format!("{}/u/auth/accept-invitation", browser.url))
        .form(&[
            ("token", token.as_str()),
            ("password", "late but strong pw"),
            ("password_confirm", "late but strong pw"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert!(location(&res).contains("error=invalid_link"));
    assert_eq!(app.count_events("user.invitation_accepted").await, 0);
}

async fn email_is_unique_case_insensitively_under_concurrent_creation(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let tasks: Vec<_> = [
        "Same@Example.com",
        "same@example.COM",
        " SAME@example.com",
        "same@example.com",
    ]
    .into_iter()
    .map(|email| {
        let api = api.clone();
        tokio::spawn(async move {
            api.send(
                Method::POST,
                "/api/v1/users",
                Some(json!({"email": email, "password": "a strong password"})),
            )
            .await
        })
    })
    .collect();
    let mut created = 0;
    for t in tasks {
        let (status, res) = t.await.expect("join");
        match status {
            201 => created += 1,
            _ => assert_eq!(
                (status, res["error"]["code"].as_str()),
                (422, Some("email_taken"))
            ),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        app.count_events("user.created").await,
        1,
        "losers wrote nothing"
    );
}

async fn hosted_sign_in_is_generic_throttled_and_per_application(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    let (_, client) = app_with_return(&api, "Web", "web", "https://web.example/home").await;
    api.send(
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "carol@example.com", "password": "carols password"})),
    )
    .await;
    let browser = app.new_browser();
    let page = format!("/u/sign-in?client_id={client}");
    let attempt = |email: &'static str, password: &'static str| {
        let (browser, page, client) = (browser.new_browser(), page.clone(), client.clone());
        async move {
            let res = browser
                .hosted_form(
                    &page,
                    "/u/auth/sign-in",
                    &[
                        ("client_id", &client),
                        ("email", email),
                        ("password", password),
                    ],
                )
                .await;
            location(&res)
        }
    };
    let wrong = attempt("carol@example.com", "not her password").await;
    let unknown = attempt("nobody@example.com", "not her password").await;
    assert_eq!(
        wrong,
        format!("/u/sign-in?client_id={client}&error=invalid")
    );
    assert_eq!(
        wrong, unknown,
        "one message for unknown email and wrong password"
    );
    for _ in 0..4 {
        attempt("carol@example.com", "still wrong").await;
    }
    let throttled = attempt("carol@example.com", "carols password").await;
    assert!(throttled.ends_with("error=throttled"), "{throttled}");
    assert_eq!(app.count_events("user.sign_in_failed").await, 7);
    let detail: String = sqlx::query_scalar(
        "select detail from audit_event where event = 'user.sign_in_failed' order by seq limit 1",
    )
    .fetch_one(app.identity.db().pool())
    .await
    .expect("detail");
    assert!(detail.contains("wrong_password") && !detail.contains("not her password"));
    // Unknown client IDs get the error page, never a redirect elsewhere.
    let res = browser.get("/u/sign-in?client_id=web_nope").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.expect("t").contains("does not exist"));
}

async fn self_sign_up_follows_the_application_switch(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    let (id, client) = app_with_return(&api, "Open", "spa", "https://open.example/").await;
    let browser = app.new_browser();
    let page = format!("/u/sign-up?client_id={client}");
    let fields = |email: &'static str| {
        [
            ("client_id", client.clone()),
            ("email", email.to_owned()),
            ("name", "Dee".to_owned()),
            ("password", "dees strong password".to_owned()),
            ("password_confirm", "dees strong password".to_owned()),
        ]
    };
    let html = browser.get(&page).await.text().await.expect("page");
    assert!(html.contains("does not allow signing up"));
    api.send(
        Method::PATCH,
        &format!("/api/v1/applications/{id}"),
        Some(json!({"allow_sign_up": true})),
    )
    .await;
    let f = fields("dee@example.com");
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = browser.hosted_form(&page, "/u/auth/sign-up", &f).await;
    assert_eq!(
        location(&res),
        format!("/u/continue?client_id={client}&notice=signed_up")
    );
    assert!(res.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str()
            .is_ok_and(|c| c.starts_with("pc_user=") && c.contains("HttpOnly"))
    }));
    let f = fields("DEE@example.com");
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app
        .new_browser()
        .hosted_form(&page, "/u/auth/sign-up", &f)
        .await;
    assert!(location(&res).ends_with("error=email_taken"));
    assert_eq!(app.count_events("user.signed_up").await, 1);
}

async fn a_role_granted_in_one_application_is_invisible_to_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (a, _) = app_with_return(&api, "App A", "web", "https://a.example/").await;
    let (b, _) = app_with_return(&api, "App B", "web", "https://b.example/").await;
    let (_, user) = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "erin@example.com", "password": "erins password"})),
        )
        .await;
    let (status, role) = api.send(Method::POST, &format!("/api/v1/applications/{a}/roles"),
        Some(json!({"name": "admin", "description": "Admins of A", "permissions": ["billing:write"]}))).await;
    assert_eq!(status, 201, "{role}");
    let grant = format!(
        "/api/v1/applications/{a}/roles/{}/users/{}",
        id_of(&role),
        id_of(&user)
    );
    assert_eq!(api.send(Method::PUT, &grant, None).await.0, 204);
    let (_, staff_view) = api
        .send(
            Method::GET,
            &format!("/api/v1/users/{}/roles", id_of(&user)),
            None,
        )
        .await;
    assert_eq!(staff_view["data"][0]["role"]["name"], "admin");

    let key_b = key_for(&app, &api, &b).await;
    let (status, users) = key_b.send(Method::GET, "/api/v1/users?q=erin", None).await;
    assert_eq!(
        (status, users["data"].as_array().map(Vec::len)),
        (200, Some(1)),
        "B sees the user"
    );
    let (_, roles) = key_b
        .send(
            Method::GET,
            &format!("/api/v1/users/{}/roles", id_of(&user)),
            None,
        )
        .await;
    assert_eq!(roles["data"], json!([]), "but not A's role");
    let (_, filtered) = key_b
        .send(
            Method::GET,
            &format!("/api/v1/users?role_id={}", id_of(&role)),
            None,
        )
        .await;
    assert_eq!(filtered["data"], json!([]));
    assert_eq!(
        key_b
            .send(
                Method::GET,
                &format!("/api/v1/applications/{a}/roles"),
                None
            )
            .await
            .0,
        404
    );
    assert_eq!(
        key_b.send(Method::DELETE, &grant, None).await.0,
        404,
        "nor revoke it"
    );
    // One application's key cannot take a pool account over, nor get an invitation link.
    let user_path = format!("/api/v1/users/{}", id_of(&user));
    for change in [
        json!({"email": "attacker@example.com"}),
        json!({"email_verified": true}),
        json!({"status": "disabled"}),
    ] {
        let (status, _) = key_b
            .send(Method::PATCH, &user_path, Some(change.clone()))
            .await;
        assert_eq!(status, 403, "{change}");
    }
    let (status, renamed) = key_b
        .send(Method::PATCH, &user_path, Some(json!({"name": "Erin B"})))
        .await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Erin B")));
    let (status, invited) = key_b
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "via-key@example.com"})),
        )
        .await;
    assert_eq!(status, 201);
    assert!(
        invited.get("invitation_url").is_none(),
        "the link goes by mail only"
    );
    let key_a = key_for(&app, &api, &a).await;
    let (_, roles) = key_a
        .send(
            Method::GET,
            &format!("/api/v1/users/{}/roles", id_of(&user)),
            None,
        )
        .await;
    assert_eq!(
        roles["data"][0]["role"]["permissions"],
        json!(["billing:write"])
    );
    assert_eq!(
        key_a.send(Method::DELETE, &grant, None).await.0,
        204,
        "A's key manages A's grants"
    );
    assert_eq!(app.count_events("app_role.granted").await, 1);
    assert_eq!(app.count_events("app_role.revoked").await, 1);
}

/// An application key with `users:read` and `users:write` for `app_id`.
async fn key_for(app: &crate::helpers::TestApp, api: &Api, app_id: &str) -> Api {
    let (_, k) = api
        .send(
            Method::POST,
            &format!("/api/v1/applications/{app_id}/api-keys"),
            Some(json!({"name": "backend", "scopes": ["users:read", "users:write"]})),
        )
        .await;
    Api::with_key(app, k["key"].as_str().expect("key").to_owned())
}

async fn organizations_group_users_with_a_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, user) = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "finn@example.com", "password": "finns password"})),
        )
        .await;
    let (status, org) = api
        .send(
            Method::POST,
            "/api/v1/organizations",
            Some(json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, org2) = api
        .send(
            Method::POST,
            "/api/v1/organizations",
            Some(json!({"name": "Globex"})),
        )
        .await;
    let (status, res) = api
        .send(
            Method::POST,
            "/api/v1/organizations",
            Some(json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("name_taken"))
    );
    for o in [&org, &org2] {
        let path = format!(
            "/api/v1/organizations/{}/members/{}",
            id_of(o),
            id_of(&user)
        );
        assert_eq!(
            api.send(Method::PUT, &path, Some(json!({"role": "admin"})))
                .await
                .0,
            204
        );
    }
    let (_, members) = api
        .send(
            Method::GET,
            &format!("/api/v1/organizations/{}/members", id_of(&org)),
            None,
        )
        .await;
    assert_eq!(members["data"][0]["role"], "admin");
    let (_, mine) = api
        .send(
            Method::GET,
            &format!("/api/v1/users/{}/organizations", id_of(&user)),
            None,
        )
        .await;
    assert_eq!(
        mine["data"].as_array().map(Vec::len),
        Some(2),
        "several organizations"
    );
    let (_, filtered) = api
        .send(
            Method::GET,
            &format!("/api/v1/users?organization_id={}", id_of(&org)),
            None,
        )
        .await;
    assert_eq!(filtered["data"][0]["email"], "finn@example.com");
    let path = format!(
        "/api/v1/organizations/{}/members/{}",
        id_of(&org),
        id_of(&user)
    );
    let (status, res) = api
        .send(Method::PUT, &path, Some(json!({"role": "owner"})))
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("invalid_role"))
    );
    assert_eq!(api.send(Method::DELETE, &path, None).await.0, 204);
    assert_eq!(api.send(Method::DELETE, &path, None).await.0, 404);
    assert_eq!(app.count_events("organization.member_added").await, 2);
}

async fn readers_read_and_only_operators_and_owners_write(backend: Backend) {
    let app = spawn_app(backend).await;
    for (role, can_write) in [
        (Role::Owner, true),
        (Role::Operator, true),
        (Role::Support, false),
        (Role::Auditor, false),
    ] {
        let api = Api::new(&app, role).await;
        assert_eq!(
            api.send(Method::GET, "/api/v1/users", None).await.0,
            200,
            "{role:?}"
        );
        assert_eq!(
            api.send(Method::GET, "/api/v1/organizations", None).await.0,
            200,
            "{role:?}"
        );
        let email = format!("{}@example.com", role.as_str());
        let (status, _) = api
            .send(Method::POST, "/api/v1/users", Some(json!({"email": email})))
            .await;
        assert_eq!(status, if can_write { 201 } else { 403 }, "{role:?}");
        let outbox = api.send(Method::GET, "/api/v1/outbox", None).await.0;
        assert_eq!(
            outbox,
            if role == Role::Owner { 200 } else { 403 },
            "{role:?} outbox"
        );
    }
}

async fn parallel_guesses_cannot_slip_under_the_throttle(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    api.send(
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "gina@example.com", "password": "ginas real password"})),
    )
    .await;
    // Twelve guesses at once, each from its own browser (form token), all before any finishes.
    let mut pending = Vec::new();
    for _ in 0..12 {
        let browser = app.new_browser();
        let html = browser.get("/u/sign-in").await.text().await.expect("page");
        let csrf = crate::helpers::form_csrf(&html);
        pending.push(tokio::spawn(async move {
            let res = browser
                .client
                .post(format!("{}/u/auth/sign-in", browser.url))
                .form(&[
                    ("email", "gina@example.com"),
                    ("password", "a wrong guess!!"),
                    ("csrf", csrf.as_str()),
                ])
                .send()
                .await
                .expect("post");
            location(&res)
        }));
    }
    let mut checked = 0;
    for p in pending {
        if p.await.expect("join").ends_with("error=invalid") {
            checked += 1;
        }
    }
    assert!(
        checked <= 5,
        "at most the per-account limit reached the password check: {checked}"
    );
    let wrong: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'user.sign_in_failed' and detail like '%wrong_password%'",
    )
    .fetch_one(app.identity.db().pool())
    .await
    .expect("count");
    assert_eq!(wrong, checked as i64);
}
