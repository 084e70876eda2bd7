//! Two `portcullis serve` processes on one PostgreSQL behave as one.

use crate::helpers::{
    Backend, PASSWORD, TestApp, browser_client, fresh_database, location, spawn_on,
};
use identity::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_sessions_throttling_and_one_audit_chain() {
    let db = fresh_database(Backend::Postgres).await;
    let a = spawn_on(&db, |_| {}).await;
    let b = spawn_on(&db, |_| {}).await;
    a.create_staff("owner@example.com", Role::Owner).await;

    // A session made on A works on B.
    let res = a.sign_in("owner@example.com", PASSWORD).await;
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pc_session="))
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_owned();
    let on_b = browser_client(&b.url)
        .get(format!("{}/", b.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(on_b.status(), 200);

    // Failures on both count towards one limit.
    a.create_staff("target@example.com", Role::Support).await;
    let visitor = |replica: &TestApp| TestApp {
        client: browser_client(&replica.url),
        url: replica.url.clone(),
        identity: replica.identity.clone(),
        database_url: replica.database_url.clone(),
    };
    let (va, vb) = (visitor(&a), visitor(&b));
    for i in 0..5 {
        let replica = if i % 2 == 0 { &va } else { &vb };
        let res = replica
            .sign_in("target@example.com", "wrong password!")
            .await;
        assert_eq!(location(&res), "/login?error=invalid");
    }
    assert_eq!(
        location(&vb.sign_in("target@example.com", PASSWORD).await),
        "/login?error=throttled"
    );

    // Concurrent writes through both replicas extend one chain.
    let key = a.api_key(Role::Owner).await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let (http, key) = (http.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{url}/api/v1/staff"))
                .bearer_auth(key)
                .json(&serde_json::json!({"email": format!("r{i}@example.com"), "role": "auditor"}))
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), 201);
    }
    a.assert_chain_intact().await;
    assert_eq!(b.count_events("staff.invited").await, 20);
}
