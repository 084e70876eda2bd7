//! Every role × every dashboard action, through the real server functions and the REST API.

use crate::helpers::{Backend, spawn_app};
use identity::Role;

crate::on_both_databases!(
    each_role_can_do_exactly_what_the_table_allows,
    api_keys_carry_their_role
);

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
