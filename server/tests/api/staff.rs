use crate::helpers::{Backend, form_csrf, location, spawn_app};
use identity::Role;

crate::on_both_databases!(
    an_invited_member_sets_a_password_once_and_signs_in,
    the_last_active_owner_cannot_be_demoted_or_disabled,
    two_owners_demoting_each_other_at_once_leave_one_owner,
    bad_invitations_get_a_field_error_and_write_nothing,
);

/// The `error` message a redirect back to the invitation page carries, decoded.
fn page_error(res: &reqwest::Response) -> String {
    let loc = location(res);
    let raw = loc.split("error=").nth(1).unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

async fn an_invited_member_sets_a_password_once_and_signs_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signed_in_as("owner@example.com", Role::Owner).await;
    let csrf = app.session_csrf().await;
    let res = app
        .rpc(
            "invite_staff",
            &[
                ("csrf", &csrf),
                ("email", "Auditor@Example.com"),
                ("role", "auditor"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let invited: serde_json::Value = res.json().await.expect("json");
    assert_eq!(invited["email"], "auditor@example.com");
    let link = invited["link"].as_str().expect("link").to_owned();
    assert!(link.starts_with(&format!("{}/accept-invite?token=", app.url)));
    let token = link
        .rsplit_once("token=")
        .map(|(_, t)| t.to_owned())
        .expect("token");

    // The invitee, in their own browser.
    let invitee = app.new_browser();
    let page = invitee
        .get(&format!("/accept-invite?token={token}"))
        .await
        .text()
        .await
        .expect("page");
    let form_token = form_csrf(&page);
    let accept = |password: &'static str, confirm: &'static str| {
        let (client, url, token, form_token) = (
            invitee.client.clone(),
            invitee.url.clone(),
            token.clone(),
            form_token.clone(),
        );
        async move {
            client
                .post(format!("{url}/auth/accept-invite"))
                .form(&[
                    ("token", token.as_str()),
                    ("password", password),
                    ("password_confirm", confirm),
                    ("csrf", form_token.as_str()),
                ])
                .send()
                .await
                .expect("post")
        }
    };
    let mismatch = accept("a long new password", "another long password").await;
    assert_eq!(page_error(&mismatch), "The two passwords do not match.");
    let weak = accept("short", "short").await;
    assert!(
        page_error(&weak) == "Use at least 10 characters.",
        "{}",
        location(&weak)
    );
    let ok = accept("a long new password", "a long new password").await;
    assert_eq!(location(&ok), "/login?notice=invitation_accepted");
    let again = accept("yet another password", "yet another password").await;
    assert!(
        page_error(&again).starts_with("This invitation link is invalid"),
        "single use"
    );

    assert_eq!(
        location(
            &invitee
                .sign_in("auditor@example.com", "a long new password")
                .await
        ),
        "/"
    );
    let me: serde_json::Value = invitee.rpc("me", &[]).await.json().await.expect("me");
    assert_eq!(me["role"], "auditor");
    assert_eq!(app.count_events("staff.invited").await, 1);
    assert_eq!(app.count_events("staff.invitation_accepted").await, 1);
}

async fn the_last_active_owner_cannot_be_demoted_or_disabled(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in_as("owner@example.com", Role::Owner).await;
    let csrf = app.session_csrf().await;

    for (name, form) in [
        (
            "change_staff_role",
            vec![
                ("csrf", csrf.as_str()),
                ("staff_id", owner.as_str()),
                ("role", "operator"),
            ],
        ),
        (
            "set_staff_enabled",
            vec![
                ("csrf", csrf.as_str()),
                ("staff_id", owner.as_str()),
                ("enabled", "false"),
            ],
        ),
    ] {
        let res = app.rpc(name, &form).await;
        assert_eq!(res.status(), 409, "{name}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["code"], "last_owner");
    }
    // Nothing changed and nothing was audited as changed.
    let me: serde_json::Value = app.rpc("me", &[]).await.json().await.expect("me");
    assert_eq!(me["role"], "owner");
    assert_eq!(app.count_events("staff.role_changed").await, 0);
    assert_eq!(app.count_events("staff.disabled").await, 0);

    // With a second owner, the first may step down.
    let second = app.create_staff("second@example.com", Role::Owner).await;
    let res = app
        .rpc(
            "change_staff_role",
            &[("csrf", &csrf), ("staff_id", &owner), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count_events("staff.role_changed").await, 1);
    // …and the API enforces the same rule on the one left.
    let key = app.api_key(Role::Owner).await;
    let res = reqwest::Client::new()
        .patch(format!("{}/api/v1/staff/{second}", app.url))
        .bearer_auth(key)
        .json(&serde_json::json!({"status": "disabled"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 409);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "last_owner");
}

async fn two_owners_demoting_each_other_at_once_leave_one_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_staff("a@example.com", Role::Owner).await;
    let b = app.create_staff("b@example.com", Role::Owner).await;
    let key = app.api_key(Role::Owner).await;
    let http = reqwest::Client::new();
    let demote = |id: String| {
        let (http, url, key) = (http.clone(), app.url.clone(), key.clone());
        async move {
            http.patch(format!("{url}/api/v1/staff/{id}"))
                .bearer_auth(key)
                .json(&serde_json::json!({"role": "operator"}))
                .send()
                .await
                .expect("patch")
                .status()
                .as_u16()
        }
    };
    let (ra, rb) = tokio::join!(demote(a), demote(b));
    let mut statuses = [ra, rb];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let owners: i64 =
        sqlx::query_scalar("select count(*) from staff where role = 'owner' and status = 'active'")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("count");
    assert_eq!(owners, 1);
}

async fn bad_invitations_get_a_field_error_and_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signed_in_as("owner@example.com", Role::Owner).await;
    let csrf = app.session_csrf().await;
    for (email, role, field, code) in [
        ("not-an-email", "auditor", "email", "invalid_email"),
        ("ok@example.com", "root", "role", "invalid_role"),
        ("owner@example.com", "auditor", "email", "email_taken"),
    ] {
        let res = app
            .rpc(
                "invite_staff",
                &[("csrf", &csrf), ("email", email), ("role", role)],
            )
            .await;
        assert_eq!(res.status(), 422, "{email} {role}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["field"], field);
        assert_eq!(body["code"], code);
        assert!(!body["message"].as_str().unwrap_or_default().is_empty());
    }
    let staff: i64 = sqlx::query_scalar("select count(*) from staff")
        .fetch_one(app.identity.db().pool())
        .await
        .expect("count");
    assert_eq!(staff, 1);
    assert_eq!(app.count_events("staff.invited").await, 0);
}
