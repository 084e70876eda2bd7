use crate::helpers::{Backend, spawn_app};
use identity::Role;
use serde_json::{Value, json};

crate::on_both_databases!(
    a_default_application_exists_from_first_start_and_cannot_be_deleted,
    an_operator_creates_a_configured_application_in_one_request,
    bad_redirect_uris_get_a_field_error_naming_the_rule_and_write_nothing,
    changes_are_validated_audited_with_before_and_after,
    deleting_needs_the_typed_name_and_keeps_the_history,
    readers_can_read_and_only_owners_and_operators_can_write,
    applications_page_in_creation_order,
    client_secrets_are_shown_once_hashed_at_rest_and_rotate_without_downtime,
    public_clients_never_get_a_secret,
);

async fn client_secrets_are_shown_once_hashed_at_rest_and_rotate_without_downtime(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, created) = api.post(json!({"name": "Backend", "type": "m2m"})).await;
    let (id, client_id) = (
        created["id"].as_str().expect("id").to_owned(),
        created["client_id"].as_str().expect("cid").to_owned(),
    );
    let secrets = format!("/api/v1/applications/{id}/secrets");

    let (status, first) = api.send(reqwest::Method::POST, &secrets, None).await;
    assert_eq!(status, 201, "{first}");
    let secret = first["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("pcs_") && secret.len() >= 4 + 43,
        "256 bits"
    );
    assert!(
        first["display"]
            .as_str()
            .is_some_and(|d| d.ends_with(&secret[secret.len() - 4..]))
    );

    // Only the hash is stored, and listing never shows the secret.
    let stored: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from client_secret where secret_hash = '{secret}' or prefix = '{secret}'"
    )))
    .fetch_one(app.identity.db().pool())
    .await
    .expect("count");
    assert_eq!(stored, 0);
    let (_, listed) = api.send(reqwest::Method::GET, &secrets, None).await;
    assert!(!listed.to_string().contains(&secret));

    let now = identity::Timestamp::now();
    let ok = identity::credentials::authenticate_client(&app.identity, &client_id, &secret, now)
        .await
        .expect("auth");
    assert_eq!(ok.map(|a| a.id), Some(id.clone()));
    let (_, listed) = api.send(reqwest::Method::GET, &secrets, None).await;
    assert!(
        listed["data"][0]["last_used_at"].is_string(),
        "last use recorded"
    );
    assert!(
        identity::credentials::authenticate_client(&app.identity, &client_id, "pcs_wrong", now)
            .await
            .expect("auth")
            .is_none()
    );

    // Rotate: a new secret now, the old one keeps working through the grace period, then stops.
    let first_id = first["id"].as_str().expect("id");
    let (status, second) = api
        .send(
            reqwest::Method::POST,
            &format!("{secrets}/{first_id}/rotate"),
            Some(json!({"grace_secs": 3600})),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let new_secret = second["secret"].as_str().expect("secret").to_owned();
    let later = now.plus_secs(1800);
    let after_grace = now.plus_secs(3700);
    for (s, t, works) in [
        (&secret, later, true),
        (&new_secret, later, true),
        (&secret, after_grace, false),
        (&new_secret, after_grace, true),
    ] {
        let got = identity::credentials::authenticate_client(&app.identity, &client_id, s, t)
            .await
            .expect("auth");
        assert_eq!(got.is_some(), works);
    }

    // Two active at most; revoking frees a slot and takes effect at once.
    let (status, res) = api.send(reqwest::Method::POST, &secrets, None).await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (409, Some("too_many_secrets"))
    );
    let second_id = second["id"].as_str().expect("id");
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            &format!("{secrets}/{second_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        identity::credentials::authenticate_client(&app.identity, &client_id, &new_secret, later)
            .await
            .expect("auth")
            .is_none()
    );
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            &format!("{secrets}/{second_id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.count_events("client_secret.created").await, 2);
    assert_eq!(app.count_events("client_secret.revoked").await, 1);

    // A disabled application's secrets stop working.
    api.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/applications/{id}"),
        Some(json!({"status": "disabled"})),
    )
    .await;
    assert!(
        identity::credentials::authenticate_client(&app.identity, &client_id, &secret, later)
            .await
            .expect("auth")
            .is_none()
    );
    // Auditors read metadata but cannot create.
    let auditor = Api::new(&app, Role::Auditor).await;
    assert_eq!(
        auditor.send(reqwest::Method::GET, &secrets, None).await.0,
        200
    );
    assert_eq!(
        auditor.send(reqwest::Method::POST, &secrets, None).await.0,
        403
    );
}

async fn public_clients_never_get_a_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    for t in ["spa", "native"] {
        let (_, created) = api.post(json!({"name": t, "type": t})).await;
        let path = format!(
            "/api/v1/applications/{}/secrets",
            created["id"].as_str().expect("id")
        );
        let (status, res) = api.send(reqwest::Method::POST, &path, None).await;
        assert_eq!(
            (status, res["error"]["code"].as_str()),
            (409, Some("public_client")),
            "{t}"
        );
    }
    assert_eq!(app.count_events("client_secret.created").await, 0);
}

/// A REST client with one bearer key.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    pub(crate) async fn new(app: &crate::helpers::TestApp, role: Role) -> Self {
        Self::with_key(app, app.api_key(role).await)
    }

    pub(crate) fn with_key(app: &crate::helpers::TestApp, key: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: app.url.clone(),
            key,
        }
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, "/api/v1/applications", Some(body))
            .await
    }
}

async fn a_default_application_exists_from_first_start_and_cannot_be_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    let (status, list) = api
        .send(reqwest::Method::GET, "/api/v1/applications", None)
        .await;
    assert_eq!(status, 200);
    let data = list["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["is_default"], true);
    let (id, name) = (
        data[0]["id"].as_str().expect("id"),
        data[0]["name"].as_str().expect("name"),
    );
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/applications/{id}?confirm_name={}",
                name.replace(' ', "%20")
            ),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("default_application"))
    );
    // A second server on the same database does not create another one.
    let again = crate::helpers::spawn_on(&app.database_url, |_| {}).await;
    let (_, list) = Api::new(&again, Role::Owner)
        .await
        .send(reqwest::Method::GET, "/api/v1/applications", None)
        .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
}

async fn an_operator_creates_a_configured_application_in_one_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (status, created) = api
        .post(json!({
            "name": "Mobile",
            "type": "native",
            "redirect_uris": ["com.example.mobile:/oauth", "http://127.0.0.1/callback"],
            "post_logout_redirect_uris": ["com.example.mobile:/signed-out"],
        }))
        .await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"].as_str().expect("client_id");
    assert!(client_id.starts_with("nat_") && client_id.len() >= 4 + 22);
    assert_eq!(created["type"], "native");
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().expect("id");

    let (status, read) = api
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/applications/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        read["redirect_uris"],
        json!(["com.example.mobile:/oauth", "http://127.0.0.1/callback"])
    );
    assert_eq!(read["client_id"], client_id);

    let (_, other) = api.post(json!({"name": "Web", "type": "web"})).await;
    assert_ne!(other["client_id"], created["client_id"]);
    assert!(
        other["client_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("web_"))
    );
    assert_eq!(app.count_events("application.created").await, 3);
    let (status, dup) = api.post(json!({"name": "Mobile", "type": "spa"})).await;
    assert_eq!(
        (
            status,
            dup["error"]["code"].as_str(),
            dup["error"]["field"].as_str()
        ),
        (422, Some("name_taken"), Some("name"))
    );
}

async fn bad_redirect_uris_get_a_field_error_naming_the_rule_and_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    for (body, field, code) in [
        (
            json!({"name": "A", "type": "web", "redirect_uris": ["http://app.example.com/cb"]}),
            "redirect_uris",
            "redirect_uri_https_required",
        ),
        (
            json!({"name": "A", "type": "spa", "redirect_uris": ["com.example.app:/cb"]}),
            "redirect_uris",
            "redirect_uri_custom_scheme",
        ),
        (
            json!({"name": "A", "type": "web", "redirect_uris": ["https://a.example/cb#frag"]}),
            "redirect_uris",
            "redirect_uri_fragment",
        ),
        (
            json!({"name": "A", "type": "web", "redirect_uris": ["https://a.example/cb", "https://a.example/cb"]}),
            "redirect_uris",
            "redirect_uri_duplicate",
        ),
        (
            json!({"name": "A", "type": "m2m", "redirect_uris": ["https://a.example/cb"]}),
            "redirect_uris",
            "redirect_uri_not_allowed",
        ),
        (
            json!({"name": "A", "type": "web", "post_logout_redirect_uris": ["https://*.example/"]}),
            "post_logout_redirect_uris",
            "redirect_uri_wildcard",
        ),
        (json!({"name": "", "type": "web"}), "name", "invalid_name"),
        (
            json!({"name": "A", "type": "desktop"}),
            "type",
            "invalid_type",
        ),
    ] {
        let (status, res) = api.post(body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(res["error"]["code"], code, "{body}");
        assert_eq!(res["error"]["field"], field, "{body}");
        assert!(
            res["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, _) = api
        .post(json!({"name": "A", "type": "web", "lifetimes": {}}))
        .await;
    assert_eq!(status, 400, "unknown fields are refused, not ignored");
    assert_eq!(
        app.count_events("application.created").await,
        1,
        "only the default application"
    );
}

async fn changes_are_validated_audited_with_before_and_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, created) = api
        .post(json!({"name": "SPA", "type": "spa", "redirect_uris": ["https://spa.example/cb"]}))
        .await;
    let path = format!(
        "/api/v1/applications/{}",
        created["id"].as_str().expect("id")
    );

    let (status, res) = api
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"redirect_uris": ["http://spa.example/cb"]})),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("redirect_uri_https_required"))
    );
    let (status, res) = api
        .send(reqwest::Method::PATCH, &path, Some(json!({"type": "web"})))
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("type_immutable"))
    );

    let (status, res) = api
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"name": "Browser app", "redirect_uris": ["https://spa.example/callback"]})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["name"], "Browser app");
    let (status, res) = api
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!((status, res["status"].as_str()), (200, Some("disabled")));

    let events = app.audit_events().await;
    assert_eq!(
        events[events.len() - 2..],
        ["application.updated", "application.disabled"]
    );
    let detail: String =
        sqlx::query_scalar("select detail from audit_event where event = 'application.updated'")
            .fetch_one(app.identity.db().pool())
            .await
            .expect("detail");
    let detail: Value = serde_json::from_str(&detail).expect("json");
    assert_eq!(
        detail,
        json!({
            "before": {"name": "SPA", "redirect_uris": ["https://spa.example/cb"],
                       "default_redirect_uri": "https://spa.example/cb"},
            "after": {"name": "Browser app", "redirect_uris": ["https://spa.example/callback"],
                      "default_redirect_uri": "https://spa.example/callback"},
        })
    );
}

async fn deleting_needs_the_typed_name_and_keeps_the_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    let (_, created) = api.post(json!({"name": "Old CLI", "type": "native"})).await;
    let path = format!(
        "/api/v1/applications/{}",
        created["id"].as_str().expect("id")
    );
    let (status, res) = api
        .send(
            reqwest::Method::DELETE,
            &format!("{path}?confirm_name=Old"),
            None,
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("confirmation_mismatch"))
    );
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            &format!("{path}?confirm_name=Old%20CLI"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api.send(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 404);
    assert_eq!(app.count_events("application.created").await, 2);
    assert_eq!(app.count_events("application.deleted").await, 1);
    app.assert_chain_intact().await;
}

async fn readers_can_read_and_only_owners_and_operators_can_write(backend: Backend) {
    let app = spawn_app(backend).await;
    for (role, can_write) in [
        (Role::Owner, true),
        (Role::Operator, true),
        (Role::Support, false),
        (Role::Auditor, false),
    ] {
        let api = Api::new(&app, role).await;
        let (status, _) = api
            .send(reqwest::Method::GET, "/api/v1/applications", None)
            .await;
        assert_eq!(status, 200, "{role:?} reads");
        let (status, _) = api
            .post(json!({"name": format!("by {}", role.as_str()), "type": "web"}))
            .await;
        assert_eq!(status, if can_write { 201 } else { 403 }, "{role:?} writes");
    }
}

async fn applications_page_in_creation_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    for i in 0..4 {
        api.post(json!({"name": format!("App {i}"), "type": "spa"}))
            .await;
    }
    let (_, first) = api
        .send(
            reqwest::Method::GET,
            "/api/v1/applications?limit=3&sort=oldest",
            None,
        )
        .await;
    let names = |v: &Value| {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["Default application", "App 0", "App 1"]);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = api
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/applications?limit=3&sort=oldest&after={cursor}"),
            None,
        )
        .await;
    assert_eq!(names(&second), ["App 2", "App 3"]);
    assert!(second["next_cursor"].is_null());
}
