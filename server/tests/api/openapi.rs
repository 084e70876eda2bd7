//! The OpenAPI document is generated from the routes: every operation in it is routed, every API
//! route is in it, and the required operations are there.

use crate::helpers::{Backend, spawn_app};
use serde_json::Value;
use std::collections::BTreeSet;

crate::on_both_databases!(every_route_is_in_the_openapi_document);

async fn every_route_is_in_the_openapi_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    // Every documented operation is routed: without a key it answers 401, never 404 or 405.
    let http = reqwest::Client::new();
    for op in &documented {
        let (method, path) = op.split_once(' ').expect("op");
        let concrete = path.replace('{', "x").replace('}', "");
        let res = http
            .request(
                method.parse().expect("method"),
                format!("{}{concrete}", app.url),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 401, "{op} is documented and routed");
    }
    // Every route the API serves (this list mirrors the routers) is documented.
    let routed = [
        "GET /api/v1/me",
        "GET /api/v1/staff",
        "POST /api/v1/staff",
        "PATCH /api/v1/staff/{staff_id}",
        "GET /api/v1/audit-events",
        "GET /api/v1/audit-events/catalog",
        "GET /api/v1/audit-events/export",
        "GET /api/v1/audit-events/export/signature",
        "GET /api/v1/audit-streams",
        "POST /api/v1/audit-streams",
        "GET /api/v1/audit-streams/{id}",
        "PATCH /api/v1/audit-streams/{id}",
        "DELETE /api/v1/audit-streams/{id}",
        "POST /api/v1/audit-streams/{id}/rotate-secret",
        "GET /api/v1/audit-streams/{id}/deliveries",
        "POST /api/v1/audit-streams/{id}/deliveries/{delivery_id}/redeliver",
        "GET /api/v1/settings/session-policy",
        "PATCH /api/v1/settings/session-policy",
        "GET /api/v1/applications",
        "POST /api/v1/applications",
        "GET /api/v1/applications/{id}",
        "PATCH /api/v1/applications/{id}",
        "DELETE /api/v1/applications/{id}",
        "GET /api/v1/applications/{id}/secrets",
        "POST /api/v1/applications/{id}/secrets",
        "DELETE /api/v1/applications/{id}/secrets/{secret_id}",
        "POST /api/v1/applications/{id}/secrets/{secret_id}/rotate",
        "GET /api/v1/applications/{id}/api-keys",
        "POST /api/v1/applications/{id}/api-keys",
        "DELETE /api/v1/applications/{id}/api-keys/{key_id}",
        "GET /api/v1/applications/{id}/logout-deliveries",
        "GET /api/v1/applications/{id}/sessions",
        "GET /api/v1/applications/{id}/roles",
        "POST /api/v1/applications/{id}/roles",
        "DELETE /api/v1/applications/{id}/roles/{role_id}",
        "PUT /api/v1/applications/{id}/roles/{role_id}/users/{user_id}",
        "DELETE /api/v1/applications/{id}/roles/{role_id}/users/{user_id}",
        "GET /api/v1/users",
        "POST /api/v1/users",
        "GET /api/v1/users/{id}",
        "PATCH /api/v1/users/{id}",
        "GET /api/v1/users/{id}/sessions",
        "DELETE /api/v1/users/{id}/sessions/{session_id}",
        "POST /api/v1/users/{id}/password-reset",
        "GET /api/v1/users/{id}/roles",
        "GET /api/v1/users/{id}/organizations",
        "GET /api/v1/organizations",
        "POST /api/v1/organizations",
        "GET /api/v1/organizations/{id}",
        "DELETE /api/v1/organizations/{id}",
        "GET /api/v1/organizations/{id}/members",
        "PUT /api/v1/organizations/{id}/members/{user_id}",
        "DELETE /api/v1/organizations/{id}/members/{user_id}",
        "GET /api/v1/outbox",
    ];
    let routed: BTreeSet<String> = routed.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(documented, routed);
    // Methods not in the document are not routed either.
    let res = http
        .put(format!("{}/api/v1/applications/x", app.url))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 405);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
