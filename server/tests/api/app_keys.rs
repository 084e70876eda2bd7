//! Application API keys: shown once, hashed, scoped, confined to their application.

use crate::applications::Api;
use crate::helpers::{Backend, spawn_app};
use identity::Role;
use reqwest::Method;
use serde_json::{Value, json};

crate::on_both_databases!(
    a_key_is_shown_once_hashed_at_rest_and_records_its_last_use,
    an_app_key_never_reads_or_changes_another_application,
    scopes_decide_what_an_app_key_may_read,
    revoked_expired_and_disabled_keys_stop_working,
    only_owners_and_operators_manage_keys,
);

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn new_key(api: &Api, app_id: &str, body: Value) -> (u16, Value) {
    api.send(
        Method::POST,
        &format!("/api/v1/applications/{app_id}/api-keys"),
        Some(body),
    )
    .await
}

async fn a_key_is_shown_once_hashed_at_rest_and_records_its_last_use(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, web) = api.post(json!({"name": "Web", "type": "web"})).await;
    let (status, created) = new_key(
        &api,
        &id_of(&web),
        json!({"name": "backend", "scopes": ["users:read", "audit:read", "users:read"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("pcapp_") && key.len() >= 6 + 43);
    assert!(key.starts_with(created["prefix"].as_str().expect("prefix")));
    assert_eq!(
        created["scopes"],
        json!(["users:read", "audit:read"]),
        "deduplicated"
    );

    // Only the SHA-256 is stored: no column holds the key.
    let row: (String, String, String) = sqlx::query_as(
        "select key_hash, prefix, scopes from app_api_key where app_api_key_id = $1",
    )
    .bind(id_of(&created))
    .fetch_one(app.identity.db().pool())
    .await
    .expect("row");
    assert_eq!(row.0, identity::secret::token_hash(&key));
    assert!(!format!("{row:?}").contains(&key));

    let keys = format!("/api/v1/applications/{}/api-keys", id_of(&web));
    let (_, listed) = api.send(Method::GET, &keys, None).await;
    assert!(!listed.to_string().contains(&key), "never shown again");
    assert!(listed["data"][0]["last_used_at"].is_null());

    let app_key = Api::with_key(&app, key.clone());
    let (status, me) = app_key.send(Method::GET, "/api/v1/me", None).await;
    assert_eq!((status, me["kind"].as_str()), (200, Some("app_key")));
    assert_eq!(me["application_id"], web["id"]);
    let (_, listed) = api.send(Method::GET, &keys, None).await;
    assert!(listed["data"][0]["last_used_at"].is_string());
    assert_eq!(listed["data"][0]["last_used_ip"], "127.0.0.1");
    assert_eq!(app.count_events("app_api_key.created").await, 1);
}

async fn an_app_key_never_reads_or_changes_another_application(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    let (_, mine) = api.post(json!({"name": "Mine", "type": "web"})).await;
    let (_, other) = api.post(json!({"name": "Other", "type": "m2m"})).await;
    let (_, created) = new_key(
        &api,
        &id_of(&mine),
        json!({"name": "all scopes", "scopes": ["users:read", "users:write", "sessions:revoke", "audit:read"]}),
    )
    .await;
    let key = Api::with_key(&app, created["key"].as_str().expect("key").to_owned());
    let mine_path = format!("/api/v1/applications/{}", id_of(&mine));
    let other_path = format!("/api/v1/applications/{}", id_of(&other));

    let (status, read) = key.send(Method::GET, &mine_path, None).await;
    assert_eq!((status, read["name"].as_str()), (200, Some("Mine")));
    let (_, list) = key.send(Method::GET, "/api/v1/applications", None).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["id"], mine["id"]);

    for (method, path, body) in [
        (Method::GET, other_path.clone(), None),
        (Method::GET, format!("{other_path}/secrets"), None),
        (Method::GET, format!("{other_path}/api-keys"), None),
        (
            Method::GET,
            format!("/api/v1/applications?after={}", id_of(&other)),
            None,
        ),
    ] {
        let (status, res) = key.send(method, &path, body).await;
        assert_eq!(
            status, 404,
            "{path}: another application does not even exist for it {res}"
        );
    }
    for (method, path, body) in [
        (
            Method::PATCH,
            other_path.clone(),
            Some(json!({"name": "Pwned"})),
        ),
        (
            Method::PATCH,
            mine_path.clone(),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::DELETE,
            format!("{other_path}?confirm_name=Other"),
            None,
        ),
        (Method::POST, format!("{other_path}/secrets"), None),
        (
            Method::POST,
            format!("{mine_path}/api-keys"),
            Some(json!({"name": "more"})),
        ),
        (
            Method::POST,
            "/api/v1/applications".to_owned(),
            Some(json!({"name": "N", "type": "web"})),
        ),
        (Method::GET, "/api/v1/staff".to_owned(), None),
        (
            Method::PATCH,
            "/api/v1/settings/session-policy".to_owned(),
            Some(json!({})),
        ),
    ] {
        let (status, _) = key.send(method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}");
    }
    let (_, other_now) = api.send(Method::GET, &other_path, None).await;
    assert_eq!(other_now["name"], "Other");
    let (_, mine_now) = api.send(Method::GET, &mine_path, None).await;
    assert_eq!(mine_now["name"], "Mine");
}

async fn scopes_decide_what_an_app_key_may_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    let (_, mine) = api.post(json!({"name": "Mine", "type": "web"})).await;
    let (_, other) = api.post(json!({"name": "Other", "type": "web"})).await;
    api.send(
        Method::PATCH,
        &format!("/api/v1/applications/{}", id_of(&other)),
        Some(json!({"description": "other's change"})),
    )
    .await;
    let (_, no_scope) = new_key(&api, &id_of(&mine), json!({"name": "none"})).await;
    let (_, auditing) = new_key(
        &api,
        &id_of(&mine),
        json!({"name": "audit", "scopes": ["audit:read"]}),
    )
    .await;
    let no_scope = Api::with_key(&app, no_scope["key"].as_str().expect("key").to_owned());
    let auditing = Api::with_key(&app, auditing["key"].as_str().expect("key").to_owned());

    let (status, _) = no_scope
        .send(Method::GET, "/api/v1/audit-events", None)
        .await;
    assert_eq!(status, 403);
    let (status, events) = auditing
        .send(Method::GET, "/api/v1/audit-events", None)
        .await;
    assert_eq!(status, 200, "{events}");
    let events = events["data"].as_array().expect("data");
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e["target_id"] == mine["id"]),
        "only its own application's events: {events:?}"
    );
    assert!(
        events.iter().all(|e| e["actor_label"].is_null()
            && e["actor_id"].is_null()
            && e["ip"].is_null()
            && e["user_agent"].is_null()),
        "no staff identities or addresses: {events:?}"
    );
    // Credentials are not for application keys, whatever their scopes.
    for path in ["secrets", "api-keys"] {
        let (status, _) = auditing
            .send(
                Method::GET,
                &format!("/api/v1/applications/{}/{path}", id_of(&mine)),
                None,
            )
            .await;
        assert_eq!(status, 403, "{path}");
    }
    // Nor can a cursor name another application.
    let (status, _) = auditing
        .send(
            Method::GET,
            &format!("/api/v1/applications?after={}", id_of(&other)),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, res) = new_key(
        &api,
        &id_of(&mine),
        json!({"name": "x", "scopes": ["admin"]}),
    )
    .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("invalid_scope"))
    );
}

async fn revoked_expired_and_disabled_keys_stop_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, web) = api.post(json!({"name": "Web", "type": "web"})).await;
    let path = format!("/api/v1/applications/{}", id_of(&web));
    let (_, one) = new_key(&api, &id_of(&web), json!({"name": "one"})).await;
    let (_, two) = new_key(
        &api,
        &id_of(&web),
        json!({"name": "two", "expires_in_secs": 3600}),
    )
    .await;
    let k1 = Api::with_key(&app, one["key"].as_str().expect("key").to_owned());
    let k2 = Api::with_key(&app, two["key"].as_str().expect("key").to_owned());
    assert_eq!(k1.send(Method::GET, &path, None).await.0, 200);

    let (status, _) = api
        .send(
            Method::DELETE,
            &format!("{path}/api-keys/{}", id_of(&one)),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        k1.send(Method::GET, &path, None).await.0,
        401,
        "revoked at once"
    );
    let (status, _) = api
        .send(
            Method::DELETE,
            &format!("{path}/api-keys/{}", id_of(&one)),
            None,
        )
        .await;
    assert_eq!(status, 404, "revoking twice");

    // Expiry, moved into the past directly in the database.
    sqlx::query("update app_api_key set expires_at = 1 where app_api_key_id = $1")
        .bind(id_of(&two))
        .execute(app.identity.db().pool())
        .await
        .expect("expire");
    assert_eq!(k2.send(Method::GET, &path, None).await.0, 401, "expired");

    let (_, three) = new_key(&api, &id_of(&web), json!({"name": "three"})).await;
    let k3 = Api::with_key(&app, three["key"].as_str().expect("key").to_owned());
    assert_eq!(k3.send(Method::GET, &path, None).await.0, 200);
    api.send(Method::PATCH, &path, Some(json!({"status": "disabled"})))
        .await;
    assert_eq!(
        k3.send(Method::GET, &path, None).await.0,
        401,
        "a disabled application's keys stop"
    );
    let (status, res) = new_key(
        &api,
        &id_of(&web),
        json!({"name": "x", "expires_in_secs": 10}),
    )
    .await;
    assert_eq!(
        (status, res["error"]["field"].as_str()),
        (422, Some("expires_in_secs"))
    );
    assert_eq!(app.count_events("app_api_key.revoked").await, 1);
}

async fn only_owners_and_operators_manage_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = Api::new(&app, Role::Owner).await;
    let (_, web) = owner.post(json!({"name": "Web", "type": "web"})).await;
    let (_, key) = new_key(&owner, &id_of(&web), json!({"name": "k"})).await;
    let keys = format!("/api/v1/applications/{}/api-keys", id_of(&web));
    for role in [Role::Support, Role::Auditor] {
        let api = Api::new(&app, role).await;
        let (status, listed) = api.send(Method::GET, &keys, None).await;
        assert_eq!(status, 200, "{role:?} reads");
        assert!(listed["data"][0]["key"].is_null());
        assert_eq!(
            new_key(&api, &id_of(&web), json!({"name": "mine"})).await.0,
            403,
            "{role:?}"
        );
        let (status, _) = api
            .send(Method::DELETE, &format!("{keys}/{}", id_of(&key)), None)
            .await;
        assert_eq!(status, 403, "{role:?} revokes");
    }
    assert_eq!(app.count_events("app_api_key.created").await, 1);
}
