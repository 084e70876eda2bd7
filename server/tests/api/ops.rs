use crate::helpers::{Backend, spawn_app};
use identity::Role;

crate::on_both_databases!(
    health_readiness_and_metrics_answer,
    pages_carry_security_headers_and_a_csp_nonce,
    behind_https_cookies_are_secure_and_hsts_is_sent,
);

async fn behind_https_cookies_are_secure_and_hsts_is_sent(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |c| {
        c.public_url = Some("https://portcullis.example".to_owned());
    })
    .await;
    let res = app.get("/login").await;
    let csrf_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pc_csrf="))
        .expect("form cookie")
        .to_owned();
    assert!(
        csrf_cookie.contains("Secure")
            && csrf_cookie.contains("HttpOnly")
            && csrf_cookie.contains("SameSite=Strict")
    );
    assert!(res.headers().get("strict-transport-security").is_some());
    let session = server::http::edge::session_cookie("t".into(), 60, true).to_string();
    assert!(
        session.contains("Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
    );
    // Over plain http (the default test setup) neither is set.
    let plain = spawn_app(backend).await.get("/login").await;
    assert!(plain.headers().get("strict-transport-security").is_none());
    let plain_cookie = plain
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(!plain_cookie.contains("Secure"));
}

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.create_staff("owner@example.com", Role::Owner).await;
    let _ = app.sign_in("owner@example.com", "wrong password!").await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("# TYPE portcullis_http_requests_total counter"));
    assert!(metrics.contains("portcullis_http_requests_total{method=\"GET\",status=\"200\"}"));
    assert!(metrics.contains("portcullis_staff_sign_ins_total{outcome=\"failure\"} 1"));
    assert!(metrics.contains("portcullis_http_request_duration_seconds_count"));
    // The SQLite checkpointer's figures, only where there is one.
    assert_eq!(
        metrics.contains("# TYPE portcullis_sqlite_wal_pages gauge"),
        backend == Backend::Sqlite
    );
}

async fn pages_carry_security_headers_and_a_csp_nonce(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/login").await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("csp")
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(
        h.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    assert_eq!(
        h.get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    assert_eq!(
        h.get("referrer-policy").and_then(|v| v.to_str().ok()),
        Some("same-origin")
    );
    assert!(h.get("x-request-id").is_some());
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce")
        .to_owned();
    let body = res.text().await.expect("body");
    assert!(
        body.contains(&format!("nonce=\"{nonce}\"")),
        "inline scripts carry the nonce"
    );
    // A fresh nonce per response.
    let again = app.get("/login").await;
    let csp2 = again
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(!csp2.contains(&nonce));
    // Responses that are not pages carry the headers too.
    assert_eq!(
        app.get("/healthz")
            .await
            .headers()
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
}
