use crate::helpers::{Backend, spawn_app};
use identity::Role;
use serde_json::{Value, json};

crate::on_both_databases!(
    an_owner_key_invites_lists_and_updates_staff,
    bad_input_gets_a_stable_code,
    audit_events_page_newest_first,
    a_revoked_key_is_refused,
);

async fn a_revoked_key_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.api_key(Role::Owner).await;
    let http = reqwest::Client::new();
    let me = |key: String| {
        let (http, url) = (http.clone(), app.url.clone());
        async move {
            http.get(format!("{url}/api/v1/me"))
                .bearer_auth(key)
                .send()
                .await
                .expect("get")
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(key.clone()).await, 200);
    let listed = identity::api_keys::list(&app.identity).await.expect("list");
    assert!(listed[0].last_used_at.is_some(), "last use is recorded");
    assert!(key.starts_with(&listed[0].prefix));
    let meta = identity::RequestMeta::default();
    identity::api_keys::revoke(
        &app.identity,
        &identity::audit::Actor::System,
        &meta,
        &listed[0].id,
        identity::Timestamp::now(),
    )
    .await
    .expect("revoke");
    assert_eq!(me(key).await, 401);
    assert_eq!(app.count_events("api_key.revoked").await, 1);
    let again = identity::api_keys::revoke(
        &app.identity,
        &identity::audit::Actor::System,
        &meta,
        &listed[0].id,
        identity::Timestamp::now(),
    )
    .await;
    assert!(matches!(again, Err(identity::Error::NotFound)));
}

async fn an_owner_key_invites_lists_and_updates_staff(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.api_key(Role::Owner).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/api/v1/staff", app.url))
        .bearer_auth(&key)
        .json(&json!({"email": "new@example.com", "role": "operator"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    assert_eq!(created["status"], "invited");
    assert!(
        created["invitation_url"]
            .as_str()
            .is_some_and(|u| u.contains("/accept-invite?token="))
    );
    let id = created["id"].as_str().expect("id").to_owned();

    let list: Value = http
        .get(format!("{}/api/v1/staff", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));

    let res = http
        .patch(format!("{}/api/v1/staff/{id}", app.url))
        .bearer_auth(&key)
        .json(&json!({"role": "auditor", "status": "disabled"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.expect("json");
    assert_eq!(
        (updated["role"].as_str(), updated["status"].as_str()),
        (Some("auditor"), Some("disabled"))
    );
    // One request, one transaction, two typed events attributed to the key.
    let events = app.audit_events().await;
    assert_eq!(
        events[events.len() - 2..],
        ["staff.role_changed", "staff.disabled"]
    );
    let actor: String =
        sqlx::query_scalar("select actor_type from audit_event order by seq desc limit 1")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("actor");
    assert_eq!(actor, "api_key");
    let me: Value = http
        .get(format!("{}/api/v1/me", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "owner");
}

async fn bad_input_gets_a_stable_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.api_key(Role::Owner).await;
    let http = reqwest::Client::new();
    let post = |body: String| {
        let (http, url, key) = (http.clone(), app.url.clone(), key.clone());
        async move {
            let res = http
                .post(format!("{url}/api/v1/staff"))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.expect("json"))
        }
    };
    let (status, body) = post("{not json".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, body) = post(json!({"email": "x@example.com"}).to_string()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, body) = post(json!({"email": "nope", "role": "auditor"}).to_string()).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (422, Some("invalid_email"), Some("email"))
    );
    let (status, body) = post(json!({"email": "x@example.com", "role": "god"}).to_string()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_role"))
    );

    for (body, status) in [
        (json!({"role": "auditor"}), 404),
        (json!({"status": "sleeping"}), 422),
    ] {
        let res = http
            .patch(format!("{}/api/v1/staff/no-such-id", app.url))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .expect("patch");
        assert_eq!(res.status(), status, "{body}");
    }
    let res = http
        .get(format!("{}/api/v1/audit-events?limit=many", app.url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 400);
    // Nothing was written by any of it, beyond the key's own creation.
    assert_eq!(
        app.audit_events().await[crate::helpers::FIRST_START.len()..],
        ["api_key.created"]
    );
}

async fn audit_events_page_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..5 {
        app.create_staff(&format!("s{i}@example.com"), Role::Support)
            .await;
    }
    let key = app.api_key(Role::Auditor).await;
    let http = reqwest::Client::new();
    let page = |query: String| {
        let (http, url, key) = (http.clone(), app.url.clone(), key.clone());
        async move {
            let body: Value = http
                .get(format!("{url}/api/v1/audit-events?{query}"))
                .bearer_auth(key)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            let seqs: Vec<i64> = body["data"]
                .as_array()
                .expect("data")
                .iter()
                .filter_map(|e| e["seq"].as_i64())
                .collect();
            (seqs, body["next_cursor"].as_i64())
        }
    };
    let (seqs, cursor) = page("limit=4".into()).await;
    // seq 1–5 are written on first start (default application, four signing keys).
    assert_eq!(seqs, [11, 10, 9, 8]);
    let cursor = cursor.expect("cursor");
    let (seqs, next) = page(format!("limit=4&before={cursor}")).await;
    assert_eq!(seqs, [7, 6, 5, 4]);
    let (seqs, next_cursor) = page(format!("limit=4&before={}", next.expect("cursor"))).await;
    assert_eq!(seqs, [3, 2, 1]);
    let next = next_cursor;
    assert_eq!(next, None);
}
