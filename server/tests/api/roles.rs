//! Every role × every dashboard action, through the real server functions and the REST API.

use crate::helpers::{Backend, spawn_app};
use identity::Role;

crate::on_both_databases!(
    each_role_can_do_exactly_what_the_table_allows,
    api_keys_carry_their_role,
    application_server_functions_follow_the_table,
    user_pool_server_functions_follow_the_table,
);

/// (role, list users, create user, organizations, create organization, outbox)
const POOL_EXPECTED: [(Role, [u16; 5]); 4] = [
    (Role::Owner, [200, 200, 200, 200, 200]),
    (Role::Operator, [200, 200, 200, 200, 403]),
    (Role::Support, [200, 403, 200, 403, 403]),
    (Role::Auditor, [200, 403, 200, 403, 403]),
];

async fn user_pool_server_functions_follow_the_table(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, (role, expected)) in POOL_EXPECTED.into_iter().enumerate() {
        let caller = app.new_browser();
        caller
            .signed_in_as(&format!("pool{i}@example.com"), role)
            .await;
        let csrf = caller.session_csrf().await;
        let status = |res: reqwest::Response| res.status().as_u16();
        let got = [
            status(caller.rpc("list_users", &[]).await),
            status(
                caller
                    .rpc(
                        "create_user",
                        &[
                            ("csrf", &csrf),
                            ("email", &format!("user{i}@example.com")),
                            ("name", "U"),
                        ],
                    )
                    .await,
            ),
            status(caller.rpc("list_organizations", &[]).await),
            status(
                caller
                    .rpc(
                        "create_organization",
                        &[("csrf", &csrf), ("name", &format!("Org {i}"))],
                    )
                    .await,
            ),
            status(caller.rpc("outbox", &[]).await),
        ];
        assert_eq!(got, expected, "{role:?}");
    }
    assert_eq!(app.count_events("user.invited").await, 2);
    assert_eq!(app.count_events("organization.created").await, 2);
}

/// (role, list, read one, create, change policy, mint key, environment policy read, change it)
const APPLICATION_EXPECTED: [(Role, [u16; 7]); 4] = [
    (Role::Owner, [200, 200, 200, 200, 200, 200, 200]),
    (Role::Operator, [200, 200, 200, 200, 200, 200, 403]),
    (Role::Support, [200, 200, 403, 403, 403, 403, 403]),
    (Role::Auditor, [200, 200, 403, 403, 403, 200, 403]),
];

async fn application_server_functions_follow_the_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let default_id: String =
        sqlx::query_scalar("select application_id from application where is_default = 1")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("default app");
    for (i, (role, expected)) in APPLICATION_EXPECTED.into_iter().enumerate() {
        let caller = app.new_browser();
        caller
            .signed_in_as(&format!("apps{i}@example.com"), role)
            .await;
        let csrf = caller.session_csrf().await;
        let status = |res: reqwest::Response| res.status().as_u16();
        let got = [
            status(caller.rpc("list_applications", &[]).await),
            status(caller.rpc("get_application", &[("id", &default_id)]).await),
            status(
                caller
                    .rpc(
                        "create_application",
                        &[
                            ("csrf", &csrf),
                            ("name", &format!("App {i}")),
                            ("app_type", "spa"),
                        ],
                    )
                    .await,
            ),
            status(
                caller
                    .rpc(
                        "update_application_policy",
                        &[
                            ("csrf", &csrf),
                            ("id", &default_id),
                            ("policy[access_token_ttl_secs]", &format!("{}", 600 + i)),
                        ],
                    )
                    .await,
            ),
            status(
                caller
                    .rpc(
                        "create_app_key",
                        &[
                            ("csrf", &csrf),
                            ("id", &default_id),
                            ("name", "k"),
                            ("scopes[audit:read]", "on"),
                        ],
                    )
                    .await,
            ),
            status(caller.rpc("environment_policy", &[]).await),
            status(
                caller
                    .rpc(
                        "update_environment_policy",
                        &[
                            ("csrf", &csrf),
                            ("policy[id_token_ttl_secs]", &format!("{}", 900 + i)),
                        ],
                    )
                    .await,
            ),
        ];
        assert_eq!(got, expected, "{role:?}");
    }
    // A forged CSRF token changes nothing, whatever the role.
    let owner = app.new_browser();
    owner.signed_in_as("forger@example.com", Role::Owner).await;
    let res = owner
        .rpc(
            "create_application",
            &[("csrf", "forged"), ("name", "Forged"), ("app_type", "web")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(
        app.count_events("application.created").await,
        3,
        "default + owner's + operator's"
    );
    assert_eq!(app.count_events("app_api_key.created").await, 2);
    assert_eq!(app.count_events("settings.updated").await, 1);
}

/// (role, list staff, read audit, invite, change role, disable)
const EXPECTED: [(Role, u16, u16, u16, u16, u16); 4] = [
    (Role::Owner, 200, 200, 200, 200, 200),
    (Role::Operator, 200, 403, 403, 403, 403),
    (Role::Support, 403, 403, 403, 403, 403),
    (Role::Auditor, 200, 200, 403, 403, 403),
];

async fn each_role_can_do_exactly_what_the_table_allows(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_staff("first-owner@example.com", Role::Owner)
        .await;
    for (i, (role, list, audit, invite, change, disable)) in EXPECTED.into_iter().enumerate() {
        let caller = app.new_browser();
        caller
            .signed_in_as(&format!("caller{i}@example.com"), role)
            .await;
        let target = app
            .create_staff(&format!("target{i}@example.com"), Role::Support)
            .await;
        let csrf = caller.session_csrf().await;

        let got = (
            caller.rpc("list_staff", &[]).await.status().as_u16(),
            caller.rpc("recent_audit", &[]).await.status().as_u16(),
            caller
                .rpc(
                    "invite_staff",
                    &[
                        ("csrf", &csrf),
                        ("email", &format!("inv{i}@example.com")),
                        ("role", "support"),
                    ],
                )
                .await
                .status()
                .as_u16(),
            caller
                .rpc(
                    "change_staff_role",
                    &[("csrf", &csrf), ("staff_id", &target), ("role", "operator")],
                )
                .await
                .status()
                .as_u16(),
            caller
                .rpc(
                    "set_staff_enabled",
                    &[("csrf", &csrf), ("staff_id", &target), ("enabled", "false")],
                )
                .await
                .status()
                .as_u16(),
        );
        assert_eq!(got, (list, audit, invite, change, disable), "{role:?}");
    }
}

async fn api_keys_carry_their_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let target = app.create_staff("owner@example.com", Role::Owner).await;
    let http = reqwest::Client::new();
    for (role, list, audit, invite, change) in [
        (Role::Owner, 200, 200, 201, 200),
        (Role::Operator, 200, 403, 403, 403),
        (Role::Support, 403, 403, 403, 403),
        (Role::Auditor, 200, 200, 403, 403),
    ] {
        let key = app.api_key(role).await;
        let got = (
            http.get(format!("{}/api/v1/staff", app.url)).bearer_auth(&key).send().await.expect("get").status().as_u16(),
            http.get(format!("{}/api/v1/audit-events", app.url)).bearer_auth(&key).send().await.expect("get").status().as_u16(),
            http.post(format!("{}/api/v1/staff", app.url))
                .bearer_auth(&key)
                .json(&serde_json::json!({"email": format!("new-{}@example.com", role.as_str()), "role": "auditor"}))
                .send()
                .await
                .expect("post")
                .status()
                .as_u16(),
            // Owner → owner is a no-op change; it still needs the permission.
            http.patch(format!("{}/api/v1/staff/{target}", app.url))
                .bearer_auth(&key)
                .json(&serde_json::json!({"role": "owner"}))
                .send()
                .await
                .expect("patch")
                .status()
                .as_u16(),
        );
        assert_eq!(got, (list, audit, invite, change), "{role:?}");
    }
    for bad in [None, Some("pcadm_not-a-real-key"), Some("something-else")] {
        let mut req = http.get(format!("{}/api/v1/staff", app.url));
        if let Some(k) = bad {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.expect("get");
        assert_eq!(res.status(), 401);
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
}
