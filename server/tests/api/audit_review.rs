//! The audit log as security reviewers use it: filters, stable keyset pages, range verification,
//! the signed export, and read-only access.

use crate::applications::Api;
use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use identity::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

crate::on_both_databases!(
    filters_narrow_the_log_and_pages_stay_stable,
    verification_names_the_first_broken_row_of_a_range,
    exports_are_streamed_pinned_and_signed,
    auditors_read_and_export_but_change_nothing,
);

async fn events(api: &Api, query: &str) -> Vec<Value> {
    let (status, v) = api
        .send(Method::GET, &format!("/api/v1/audit-events?{query}"), None)
        .await;
    assert_eq!(status, 200, "{query}: {v}");
    v["data"].as_array().cloned().unwrap_or_default()
}

fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["event"].as_str().unwrap_or_default())
        .collect()
}

/// Two applications, a user, a failed and a good staff sign-in.
async fn history(app: &TestApp) -> (String, String, String) {
    let operator = Api::new(app, Role::Operator).await;
    let mut ids = Vec::new();
    for name in ["Billing portal", "Mobile"] {
        let (status, a) = operator
            .post(json!({"name": name, "type": "spa", "redirect_uris": ["https://x.example/cb"]}))
            .await;
        assert_eq!(status, 201, "{a}");
        ids.push(a["id"].as_str().expect("id").to_owned());
    }
    let (status, u) = operator
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "ada@example.com", "name": "Ada", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    app.create_staff("owner@example.com", Role::Owner).await;
    let _ = app.sign_in("owner@example.com", "not the password").await;
    let _ = app.sign_in("owner@example.com", PASSWORD).await;
    (
        ids[0].clone(),
        ids[1].clone(),
        u["id"].as_str().expect("id").to_owned(),
    )
}

async fn filters_narrow_the_log_and_pages_stay_stable(backend: Backend) {
    let app = spawn_app(backend).await;
    let (billing, mobile, ada) = history(&app).await;
    let auditor = Api::new(&app, Role::Auditor).await;

    let apps = events(&auditor, "category=application").await;
    assert!(apps.len() >= 3, "{apps:?}"); // the default application and the two above
    assert!(apps.iter().all(|e| e["category"] == "application"));
    assert_eq!(
        names(&events(&auditor, "event=application.created&limit=500").await).len(),
        3
    );
    let about = events(&auditor, &format!("application_id={billing}")).await;
    assert!(!about.is_empty());
    assert!(
        about
            .iter()
            .all(|e| e["application_id"] == billing.as_str())
    );
    assert!(
        events(&auditor, &format!("target=application:{mobile}"))
            .await
            .iter()
            .all(|e| e["target_id"] == mobile.as_str())
    );
    let user = events(&auditor, &format!("user_id={ada}")).await;
    assert_eq!(names(&user), ["user.created"]);
    let failed = events(&auditor, "outcome=failure").await;
    assert_eq!(names(&failed), ["staff.sign_in_failed"]);
    let by_keys = events(&auditor, "actor_type=api_key&category=user").await;
    assert_eq!(names(&by_keys), ["user.created"]);
    let text = events(&auditor, "text=billing%20PORTAL").await;
    assert_eq!(names(&text), ["application.created"], "any case");
    assert!(
        events(&auditor, "text=50%25_off").await.is_empty(),
        "% and _ are literal"
    );
    let local = events(&auditor, "ip=127.0.0.1&event=staff.signed_in").await;
    assert_eq!(local.len(), 1);
    let later = identity::Timestamp::now().plus_secs(3600).millis();
    assert!(events(&auditor, &format!("from={later}")).await.is_empty());
    assert!(
        !events(&auditor, &format!("to={later}&category=sign_in"))
            .await
            .is_empty()
    );
    let (status, e) = auditor
        .send(Method::GET, "/api/v1/audit-events?target=nocolon", None)
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_target")),
        "{e}"
    );

    // The chart counts the same events, by category (the dashboard's server function).
    let reviewer = app.new_browser();
    reviewer
        .signed_in_as("auditor@example.com", Role::Auditor)
        .await;
    let chart: Value = reviewer
        .rpc("audit_chart", &[])
        .await
        .json()
        .await
        .expect("chart");
    let counted: i64 = chart["series"]
        .as_array()
        .expect("series")
        .iter()
        .flat_map(|s| s[1].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_i64())
        .sum();
    let total = events(&auditor, "limit=500").await.len() as i64;
    assert!(
        counted == total || counted + 1 == total,
        "{counted} vs {total} (+ the sign-in above)"
    );
    let apps_only: Value = reviewer
        .rpc("audit_chart", &[("filter[category]", "application")])
        .await
        .json()
        .await
        .expect("chart");
    assert_eq!(
        apps_only["series"].as_array().map(Vec::len),
        Some(1),
        "{apps_only}"
    );
    assert_eq!(apps_only["series"][0][0], "application");

    // Keyset pages do not shift while new events arrive on top.
    let all = events(&auditor, "limit=500").await;
    let first = events(&auditor, "limit=4").await;
    Api::new(&app, Role::Operator)
        .await
        .post(json!({"name": "Arrives meanwhile", "type": "spa", "redirect_uris": ["https://x.example/cb"]}))
        .await;
    let before = first.last().and_then(|e| e["seq"].as_i64()).expect("seq");
    let second = events(&auditor, &format!("limit=4&before={before}")).await;
    let seqs: Vec<i64> = first
        .iter()
        .chain(&second)
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    let expected: Vec<i64> = all
        .iter()
        .take(8)
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    assert_eq!(seqs, expected);

    // An application key sees the events about its application only, without staff identities.
    let (_, key) = Api::new(&app, Role::Operator)
        .await
        .send(
            Method::POST,
            &format!("/api/v1/applications/{billing}/api-keys"),
            Some(json!({"name": "siem", "scopes": ["audit:read"]})),
        )
        .await;
    let app_key = Api::with_key(&app, key["key"].as_str().expect("key").to_owned());
    let own = events(&app_key, "limit=500").await;
    assert!(!own.is_empty());
    assert!(
        own.iter()
            .all(|e| e["application_id"] == billing.as_str() && e["ip"].is_null())
    );
    assert!(
        events(&app_key, &format!("application_id={mobile}"))
            .await
            .is_empty()
    );
    app.assert_chain_intact().await;
}

async fn verification_names_the_first_broken_row_of_a_range(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..6 {
        app.create_staff(&format!("s{i}@example.com"), Role::Support)
            .await;
    }
    // Text that JSON escapes: quotes, backslashes, control characters, non-ASCII.
    let operator = Api::new(&app, Role::Operator).await;
    let (status, a) = operator
        .post(json!({"name": "Ünïcödé \"quoted\" \\ app", "type": "spa",
            "description": "line\nbreak\ttab\u{1}\u{1f} </script> ☃ 𝄞",
            "redirect_uris": ["https://x.example/cb"]}))
        .await;
    assert_eq!(status, 201, "{a}");
    if backend == Backend::Sqlite {
        // SQLite assembles the hash input itself when verifying (json_array): for every row it must
        // be the input the row was hashed with, or verification falls back to the slow way.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "select hash, prev_hash || char(10) || json_array(seq, event_id, event, outcome, \
             actor_type, actor_id, actor_label, target_type, target_id, ip, user_agent, \
             request_id, detail, created_at) from audit_event",
        )
        .fetch_all(app.identity.db().pool())
        .await
        .expect("inputs");
        assert!(rows.len() > 8);
        for (hash, input) in rows {
            assert_eq!(
                hex::encode(Sha256::digest(input.as_bytes())),
                hash,
                "{input}"
            );
        }
    }
    let head: i64 = sqlx::query_scalar("select seq from audit_head")
        .fetch_one(app.identity.db().pool())
        .await
        .expect("head");
    let whole = identity::audit::verify_range(&app.identity, None, None)
        .await
        .expect("verify");
    assert_eq!((whole.checked, whole.first_broken), (head, None));
    let pool = app.identity.db().pool();
    let guard = match backend {
        Backend::Sqlite => "drop trigger audit_event_no_delete",
        Backend::Postgres => "drop trigger audit_event_no_change on audit_event",
    };
    sqlx::query(guard)
        .execute(pool)
        .await
        .expect("drop the guard");
    // A deleted row breaks the link of the one after it; ranges before it stay intact.
    sqlx::query("delete from audit_event where seq = $1")
        .bind(head - 2)
        .execute(pool)
        .await
        .expect("delete");
    let early = identity::audit::verify_range(&app.identity, Some(1), Some(head - 3))
        .await
        .expect("verify");
    assert_eq!((early.checked, early.first_broken), (head - 3, None));
    let late = identity::audit::verify_range(&app.identity, Some(head - 1), None)
        .await
        .expect("verify");
    assert_eq!(
        late.first_broken,
        Some(head - 2),
        "its predecessor is missing"
    );
    let whole = identity::audit::verify(&app.identity)
        .await
        .expect("verify");
    assert_eq!(whole.first_broken, Some(head - 1));
    // The dashboard's Verify says the same.
    let reviewer = app.new_browser();
    reviewer
        .signed_in_as("auditor@example.com", Role::Auditor)
        .await;
    let csrf = reviewer.session_csrf().await;
    let res = reviewer
        .rpc(
            "verify_audit",
            &[("csrf", csrf.as_str()), ("from", ""), ("to", "")],
        )
        .await;
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["first_broken"], head - 1, "{v}");
    // A stored hash altered to hold the separators SQLite's grouped read joins rows and fields
    // with is named like any other altered row.
    let (guard, separators) = match backend {
        Backend::Sqlite => ("drop trigger audit_event_no_update", "char(30) || char(31)"),
        Backend::Postgres => ("select 1", "chr(30) || chr(31)"),
    };
    sqlx::query(guard)
        .execute(pool)
        .await
        .expect("drop the guard");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update audit_event set hash = {separators} || hash where seq = 2"
    )))
    .execute(pool)
    .await
    .expect("alter a hash");
    let early = identity::audit::verify_range(&app.identity, Some(1), Some(head - 3))
        .await
        .expect("verify");
    assert_eq!(early.first_broken, Some(2), "the altered hash");
}

/// GET with the key, returning (status, the headers we need, body bytes).
async fn download(app: &TestApp, key: &str, path: &str) -> (u16, Option<i64>, Vec<u8>) {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", app.url))
        .bearer_auth(key)
        .send()
        .await
        .expect("export");
    let status = res.status().as_u16();
    let through = res
        .headers()
        .get("x-audit-through")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, through, res.bytes().await.expect("body").to_vec())
}

async fn exports_are_streamed_pinned_and_signed(backend: Backend) {
    let app = spawn_app(backend).await;
    history(&app).await;
    let key = app.api_key(Role::Auditor).await;
    let auditor = Api::with_key(&app, key.clone());
    let listed = events(&auditor, "category=application&limit=500").await;

    let (status, through, csv) = download(
        &app,
        &key,
        "/api/v1/audit-events/export?format=csv&category=application",
    )
    .await;
    assert_eq!(status, 200);
    let through = through.expect("X-Audit-Through");
    let text = String::from_utf8(csv.clone()).expect("utf-8");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(
        lines[0].starts_with("seq,created_at,event,category,"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len() - 1, listed.len(), "one row per event");
    assert!(lines[1].contains("application.created"));
    // Pinned: events written later are not in a re-export with the same `through`.
    Api::new(&app, Role::Operator)
        .await
        .post(json!({"name": "Later", "type": "spa", "redirect_uris": ["https://x.example/cb"]}))
        .await;
    let path =
        format!("/api/v1/audit-events/export?format=csv&category=application&through={through}");
    let (_, _, again) = download(&app, &key, &path).await;
    assert_eq!(again, csv, "the same bytes");
    // NDJSON: one event per line, oldest first.
    let (_, _, nd) = download(
        &app,
        &key,
        &format!(
            "/api/v1/audit-events/export?format=ndjson&category=application&through={through}"
        ),
    )
    .await;
    let seqs: Vec<i64> = String::from_utf8(nd)
        .expect("utf-8")
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json line")["seq"]
                .as_i64()
                .expect("seq")
        })
        .collect();
    assert_eq!(seqs.len(), listed.len());
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    // The signature covers the export's digest, with a key from the JWKS.
    let (status, sig) = auditor
        .send(
            Method::GET,
            &format!("/api/v1/audit-events/export/signature?format=csv&category=application&through={through}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{sig}");
    let manifest_bytes = STANDARD
        .decode(sig["manifest_b64"].as_str().expect("manifest"))
        .expect("b64");
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("manifest json");
    assert_eq!(manifest["sha256"], hex::encode(Sha256::digest(&csv)));
    assert_eq!(manifest["events"], listed.len());
    assert_eq!(manifest["through"], through);
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("jwks");
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kid"] == sig["kid"]))
        .expect("the signing key is published");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("rsa key");
    let signature = URL_SAFE_NO_PAD.encode(
        STANDARD
            .decode(sig["signature"].as_str().expect("sig"))
            .expect("b64"),
    );
    let ok = |message: &[u8]| {
        jsonwebtoken::crypto::verify(&signature, message, &key, jsonwebtoken::Algorithm::RS256)
            .unwrap_or(false)
    };
    assert!(
        ok(&manifest_bytes),
        "the manifest verifies against the JWKS key"
    );
    let mut forged = manifest.clone();
    forged["events"] = json!(0);
    assert!(
        !ok(&serde_json::to_vec(&forged).expect("json")),
        "a changed manifest does not"
    );
    assert!(
        sig["public_key_pem"]
            .as_str()
            .expect("pem")
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    app.assert_chain_intact().await;
}

async fn auditors_read_and_export_but_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let auditor = Api::new(&app, Role::Auditor).await;
    let (status, catalog) = auditor
        .send(Method::GET, "/api/v1/audit-events/catalog", None)
        .await;
    assert_eq!(status, 200);
    assert!(
        catalog["data"]
            .as_array()
            .is_some_and(|c| c.len() == identity::audit::Event::ALL.len())
    );
    let (status, doc) = auditor
        .send(Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(status, 200);
    assert!(
        doc["x-audit-event-catalog"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    let (status, _) = auditor
        .post(json!({"name": "Nope", "type": "spa", "redirect_uris": ["https://x.example/cb"]}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = auditor
        .send(
            Method::GET,
            "/api/v1/audit-events/export?format=ndjson",
            None,
        )
        .await;
    assert_eq!(status, 200);
    // There is no route that changes an event, for anyone.
    let owner = Api::new(&app, Role::Owner).await;
    for method in [Method::PATCH, Method::DELETE, Method::PUT, Method::POST] {
        let (status, _) = owner
            .send(method.clone(), "/api/v1/audit-events", None)
            .await;
        assert_eq!(status, 405, "{method}");
    }
    // Support staff do not read the log at all.
    let support = Api::new(&app, Role::Support).await;
    let (status, _) = support
        .send(Method::GET, "/api/v1/audit-events", None)
        .await;
    assert_eq!(status, 403);
}
