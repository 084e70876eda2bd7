//! Two `portcullis serve` processes on one PostgreSQL behave as one.

use crate::helpers::{
    Backend, PASSWORD, browser_client, fresh_database, invite_concurrently, location,
    session_cookie, spawn_on,
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
    let cookie = format!("pc_session={}", session_cookie(&res));
    let on_b = browser_client(&b.url)
        .get(format!("{}/", b.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(on_b.status(), 200);

    // Failures on both count towards one limit.
    a.create_staff("target@example.com", Role::Support).await;
    let (va, vb) = (a.new_browser(), b.new_browser());
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
    invite_concurrently(&[a.url.clone(), b.url.clone()], &key, 20).await;
    a.assert_chain_intact().await;
    assert_eq!(b.count_events("staff.invited").await, 20);
}
