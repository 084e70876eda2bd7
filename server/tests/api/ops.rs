use crate::helpers::{Backend, spawn_app};
use identity::Role;

crate::on_both_databases!(
    health_readiness_and_metrics_answer,
    pages_carry_security_headers_and_a_csp_nonce
);

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
    // Unknown API routes and unknown pages are 404s.
    assert_eq!(
        app.get("/healthz")
            .await
            .headers()
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
}
