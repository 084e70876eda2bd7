//! Retention behind a signed checkpoint, and webhook streams to a SIEM: signed batches, retries with
//! backoff, the delivery log, redelivery, and who may manage them.

use crate::applications::Api;
use crate::helpers::{Backend, TestApp, spawn_app};
use axum::http::HeaderMap;
use identity::{Role, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

crate::on_both_databases!(
    retention_purges_behind_a_signed_checkpoint,
    streams_deliver_signed_batches_retry_and_redeliver,
    stream_input_is_checked_and_only_owners_manage_streams,
);

async fn head(app: &TestApp) -> i64 {
    identity::audit::head_seq(&app.identity)
        .await
        .expect("head")
}

async fn retention_purges_behind_a_signed_checkpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..4 {
        app.create_staff(&format!("old{i}@example.com"), Role::Support)
            .await;
    }
    let old_head = head(&app).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let boundary = Timestamp::now().millis();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..3 {
        app.create_staff(&format!("new{i}@example.com"), Role::Support)
            .await;
    }
    // As if 30 days had passed since the boundary, with a 30-day retention period.
    let now = Timestamp::from_millis(boundary + 30 * 86_400_000);
    let purge = identity::audit_retention::apply(&app.identity, 30, now)
        .await
        .expect("purge");
    assert_eq!(purge.through_seq, Some(old_head));
    assert_eq!(purge.purged, old_head, "every event before the boundary");
    let pool = app.identity.db().pool();
    let oldest: i64 = sqlx::query_scalar("select min(seq) from audit_event")
        .fetch_one(pool)
        .await
        .expect("oldest");
    assert_eq!(oldest, old_head + 1);
    // Nothing older than the boundary is left, nothing newer was touched.
    let older: i64 = sqlx::query_scalar("select count(*) from audit_event where created_at < $1")
        .bind(boundary)
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(older, 0);
    assert_eq!(app.count_events("staff.created").await, 3);
    // The purge is itself an event, naming the checkpoint.
    let purged = identity::audit::list(
        &app.identity,
        &system_auditor(),
        &identity::audit::Filter {
            event: Some("audit.purged".into()),
            ..Default::default()
        },
        None,
        10,
    )
    .await
    .expect("list");
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].detail["through_seq"], old_head);
    assert_eq!(purged[0].detail["retention_days"], 30);
    // The rest of the chain verifies from the signed checkpoint.
    let v = identity::audit::verify(&app.identity)
        .await
        .expect("verify");
    assert_eq!(v.checkpoint, Some(old_head));
    assert_eq!(
        (v.first_broken, v.checkpoint_problem.as_deref()),
        (None, None)
    );
    assert_eq!(v.checked, head(&app).await - old_head);
    // Running again finds nothing more to purge.
    let again = identity::audit_retention::apply(&app.identity, 30, now)
        .await
        .expect("purge");
    assert_eq!(again.purged, 0);
    // The database refuses to delete an event no checkpoint covers, and to touch a checkpoint.
    assert!(
        sqlx::query("delete from audit_event where seq = $1")
            .bind(old_head + 1)
            .execute(pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("update audit_checkpoint set purged = 1")
            .execute(pool)
            .await
            .is_err()
    );
    // Deleting the first kept event (past the guard) is named by verification.
    let (event_guard, checkpoint_guard) = match backend {
        Backend::Sqlite => (
            "drop trigger audit_event_no_delete",
            "drop trigger audit_checkpoint_no_update",
        ),
        Backend::Postgres => (
            "drop trigger audit_event_no_change on audit_event",
            "drop trigger audit_checkpoint_no_change on audit_checkpoint",
        ),
    };
    sqlx::query(event_guard).execute(pool).await.expect("drop");
    sqlx::query("delete from audit_event where seq = $1")
        .bind(old_head + 1)
        .execute(pool)
        .await
        .expect("delete");
    let v = identity::audit::verify(&app.identity)
        .await
        .expect("verify");
    assert_eq!(v.first_broken, Some(old_head + 2));
    // A checkpoint altered in the database no longer matches its signature.
    sqlx::query(checkpoint_guard)
        .execute(pool)
        .await
        .expect("drop");
    sqlx::query("update audit_checkpoint set through_seq = through_seq + 1")
        .execute(pool)
        .await
        .expect("update");
    let v = identity::audit::verify(&app.identity)
        .await
        .expect("verify");
    assert!(v.first_broken.is_some());
    assert_eq!(
        v.checkpoint_problem.as_deref(),
        Some("its stored values differ from the signed ones")
    );
}

fn system_auditor() -> identity::Principal {
    identity::Principal {
        role: Some(Role::Auditor),
        kind: identity::authz::PrincipalKind::ApiKey {
            api_key_id: "test".to_owned(),
            name: "test".to_owned(),
        },
    }
}

/// A SIEM stand-in: answers 500 to the first `fail` requests, then 200; keeps what it was sent.
#[derive(Default)]
struct Siem {
    fail: usize,
    seen: usize,
    /// (signature header, delivery header, body) of every request.
    received: Vec<(String, String, Vec<u8>)>,
}

async fn siem(fail: usize) -> (String, Arc<Mutex<Siem>>) {
    let state = Arc::new(Mutex::new(Siem {
        fail,
        ..Default::default()
    }));
    let shared = state.clone();
    let router = axum::Router::new().route(
        "/ingest",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let shared = shared.clone();
            async move {
                let mut s = shared.lock().unwrap();
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                s.received.push((
                    h("portcullis-signature"),
                    h("portcullis-delivery"),
                    body.to_vec(),
                ));
                s.seen += 1;
                if s.seen <= s.fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/ingest",
        listener.local_addr().expect("addr").port()
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, state)
}

/// Waits until the SIEM has answered `n` requests.
async fn wait_for(siem: &Arc<Mutex<Siem>>, n: usize) -> Vec<(String, String, Vec<u8>)> {
    for _ in 0..200 {
        {
            let s = siem.lock().unwrap();
            if s.received.len() >= n {
                return s.received.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the SIEM got {} requests, expected {n}",
        siem.lock().unwrap().received.len()
    );
}

fn event_ids(body: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).expect("json body");
    v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

async fn streams_deliver_signed_batches_retry_and_redeliver(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = Api::new(&app, Role::Owner).await;
    let (url, siem) = siem(2).await;
    let (status, created) = owner
        .send(
            Method::POST,
            "/api/v1/audit-streams",
            Some(json!({"name": "SIEM", "url": url, "filter": {"category": "staff"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/audit-streams/{id}");
    // The secret is shown once: never again, not even to the owner.
    let (_, read) = owner.send(Method::GET, &path, None).await;
    assert!(read.get("secret").is_none(), "{read}");
    assert!(!read.to_string().contains(&secret[6..]));

    // Three staff events match; a credential event does not.
    for i in 0..3 {
        app.create_staff(&format!("s{i}@example.com"), Role::Support)
            .await;
    }
    let _ = Api::new(&app, Role::Auditor).await;
    let staff_ids: Vec<String> = sqlx::query_scalar(
        "select event_id from audit_event where event = 'staff.created' order by seq",
    )
    .fetch_all(app.identity.db().pool())
    .await
    .expect("ids");
    assert_eq!(staff_ids.len(), 3);

    // Two failures (HTTP 500), then the same batch again after backoff, acknowledged.
    let got = wait_for(&siem, 3).await;
    for (signature, delivery, body) in &got {
        assert_eq!(event_ids(body), staff_ids, "the same events, in order");
        let t: i64 = signature
            .strip_prefix("t=")
            .and_then(|s| s.split(',').next())
            .and_then(|t| t.parse().ok())
            .expect("t=");
        assert_eq!(
            *signature,
            identity::audit_streams::sign(&secret, t, body),
            "HMAC-SHA256 over t.body with the stream's secret"
        );
        assert!(!delivery.is_empty());
        let v: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(v["delivery_id"], delivery.as_str());
        assert_eq!(v["stream_id"], id.as_str());
        assert!(
            v["events"]
                .as_array()
                .expect("events")
                .iter()
                .all(|e| e["category"] == "staff" && e["hash"].is_string())
        );
    }
    // The delivery log: newest first, the two failures with their status code, then success.
    let mut log = Vec::new();
    for _ in 0..50 {
        let (status, v) = owner
            .send(Method::GET, &format!("{path}/deliveries"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        log = v["data"].as_array().cloned().unwrap_or_default();
        if log.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary: Vec<(String, i64, Option<i64>)> = log
        .iter()
        .map(|d| {
            (
                d["status"].as_str().unwrap_or_default().to_owned(),
                d["attempt"].as_i64().unwrap_or_default(),
                d["status_code"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("delivered".to_owned(), 3, Some(200)),
            ("failed".to_owned(), 2, Some(500)),
            ("failed".to_owned(), 1, Some(500)),
        ]
    );
    let (_, stream) = owner.send(Method::GET, &path, None).await;
    assert_eq!(stream["attempts"], 0, "{stream}");
    assert!(stream["cursor_seq"].as_i64().unwrap_or_default() >= head(&app).await - 5);

    // New events flow on their own.
    app.create_staff("later@example.com", Role::Operator).await;
    let got = wait_for(&siem, 4).await;
    assert_eq!(event_ids(&got[3].2).len(), 1);

    // Redelivery sends the acknowledged batch again: same event ids (receivers de-duplicate).
    let delivered = log[0]["id"].as_str().expect("id");
    let (status, queued) = owner
        .send(
            Method::POST,
            &format!("{path}/deliveries/{delivered}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "pending");
    let got = wait_for(&siem, 5).await;
    assert_eq!(event_ids(&got[4].2), staff_ids);
    assert_ne!(got[4].1, got[2].1, "a redelivery has its own delivery id");

    // Paused streams send nothing; the events wait for the resume.
    let (status, _) = owner
        .send(Method::PATCH, &path, Some(json!({"status": "paused"})))
        .await;
    assert_eq!(status, 200);
    app.create_staff("paused@example.com", Role::Support).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(siem.lock().unwrap().received.len(), 5);
    let (status, _) = owner
        .send(Method::PATCH, &path, Some(json!({"status": "active"})))
        .await;
    assert_eq!(status, 200);
    let got = wait_for(&siem, 6).await;
    assert_eq!(event_ids(&got[5].2).len(), 1);

    let events = app.audit_events().await;
    for name in [
        "audit_stream.created",
        "audit_stream.redelivery_requested",
        "audit_stream.updated",
    ] {
        assert!(events.iter().any(|e| e == name), "{name}");
    }
    app.assert_chain_intact().await;
}

async fn stream_input_is_checked_and_only_owners_manage_streams(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = Api::new(&app, Role::Owner).await;
    let create = |body: Value| {
        let owner = &owner;
        async move {
            owner
                .send(Method::POST, "/api/v1/audit-streams", Some(body))
                .await
        }
    };
    for (body, code) in [
        (
            json!({"name": "", "url": "https://siem.example.com/in"}),
            "invalid_name",
        ),
        (
            json!({"name": "x", "url": "ftp://siem.example.com/in"}),
            "url_https_required",
        ),
        (
            json!({"name": "x", "url": "http://siem.example.com/in"}),
            "url_https_required",
        ),
        (json!({"name": "x", "url": "not a url"}), "invalid_url"),
        (
            json!({"name": "x", "url": "https://u:p@siem.example.com/in"}),
            "invalid_url",
        ),
        (
            json!({"name": "x", "url": "https://siem.example.com/in", "filter": {"category": "nope"}}),
            "invalid_category",
        ),
        (
            json!({"name": "x", "url": "https://siem.example.com/in", "filter": {"event": "no.such"}}),
            "invalid_event",
        ),
    ] {
        let (status, v) = create(body.clone()).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some(code)),
            "{body}: {v}"
        );
    }
    let (status, _) = owner.send(Method::GET, "/api/v1/audit-streams", None).await;
    assert_eq!(status, 200);
    let (_, listed) = owner.send(Method::GET, "/api/v1/audit-streams", None).await;
    assert_eq!(listed["data"], json!([]), "nothing half-written");

    let (status, s) = create(json!({"name": "SIEM", "url": "https://siem.example.com/in"})).await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().expect("id");
    let path = format!("/api/v1/audit-streams/{id}");

    // Auditors read streams and their deliveries; nobody but an owner changes them.
    let auditor = Api::new(&app, Role::Auditor).await;
    let (status, v) = auditor
        .send(Method::GET, "/api/v1/audit-streams", None)
        .await;
    assert_eq!((status, v["data"].as_array().map(Vec::len)), (200, Some(1)));
    let (status, _) = auditor
        .send(Method::GET, &format!("{path}/deliveries"), None)
        .await;
    assert_eq!(status, 200);
    for role in [Role::Auditor, Role::Operator, Role::Support] {
        let api = Api::new(&app, role).await;
        for (method, p, body) in [
            (
                Method::POST,
                "/api/v1/audit-streams".to_owned(),
                Some(json!({"name": "x", "url": "https://siem.example.com/in"})),
            ),
            (
                Method::PATCH,
                path.clone(),
                Some(json!({"status": "paused"})),
            ),
            (Method::POST, format!("{path}/rotate-secret"), None),
            (Method::DELETE, path.clone(), None),
        ] {
            let (status, v) = api.send(method.clone(), &p, body).await;
            assert_eq!(status, 403, "{role:?} {method} {p}: {v}");
        }
    }
    // Rotation shows a new secret once; deletion removes the stream.
    let (status, rotated) = owner
        .send(Method::POST, &format!("{path}/rotate-secret"), None)
        .await;
    assert_eq!(status, 200);
    assert!(
        rotated["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    assert_ne!(rotated["secret_hint"], s["secret_hint"]);
    let (status, _) = owner.send(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = owner.send(Method::GET, &path, None).await;
    assert_eq!(status, 404);
    app.assert_chain_intact().await;
}
