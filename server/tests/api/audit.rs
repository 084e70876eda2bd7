use crate::helpers::{Backend, PASSWORD, invite_concurrently, spawn_app};
use identity::Role;
use sqlx::Row;

crate::on_both_databases!(
    every_action_writes_one_chained_event_with_its_context,
    the_chain_stays_one_line_under_concurrent_writers,
    editing_a_row_breaks_verification_at_that_row,
    audit_rows_cannot_be_updated_or_deleted,
);

async fn every_action_writes_one_chained_event_with_its_context(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_staff("owner@example.com", Role::Owner).await; // staff.created (system)
    let _ = app.sign_in("owner@example.com", "wrong password!").await; // staff.sign_in_failed
    let _ = app.sign_in("owner@example.com", PASSWORD).await; // staff.signed_in
    let csrf = app.session_csrf().await;
    let res = app
        .rpc(
            "invite_staff",
            &[
                ("csrf", &csrf),
                ("email", "a@example.com"),
                ("role", "auditor"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let id: String = sqlx::query_scalar("select staff_id from staff where email = 'a@example.com'")
        .fetch_one(app.identity.db().pool())
        .await
        .expect("id");
    let res = app
        .rpc(
            "change_staff_role",
            &[("csrf", &csrf), ("staff_id", &id), ("role", "support")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .rpc(
            "set_staff_enabled",
            &[("csrf", &csrf), ("staff_id", &id), ("enabled", "false")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .rpc(
            "set_staff_enabled",
            &[("csrf", &csrf), ("staff_id", &id), ("enabled", "true")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let out = app
        .client
        .post(format!("{}/auth/logout", app.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);

    assert_eq!(
        app.audit_events().await[crate::helpers::FIRST_START.len()..],
        [
            "staff.created",
            "staff.sign_in_failed",
            "staff.signed_in",
            "staff.invited",
            "staff.role_changed",
            "staff.disabled",
            "staff.enabled",
            "staff.signed_out",
        ]
    );
    app.assert_chain_intact().await;

    let rows = sqlx::query(
        "select seq, event, actor_type, actor_label, target_id, ip, user_agent, request_id, detail, prev_hash, hash \
         from audit_event order by seq",
    )
    .fetch_all(app.identity.db().pool())
    .await
    .expect("rows");
    let mut prev = "0".repeat(64);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.get::<i64, _>("seq"), i as i64 + 1);
        assert_eq!(
            row.get::<String, _>("prev_hash"),
            prev,
            "row {i} links to the one before"
        );
        prev = row.get("hash");
        let event: String = row.get("event");
        if event == "staff.created"
            || event == "application.created"
            || event == "signing_key.created"
        {
            assert_eq!(row.get::<String, _>("actor_type"), "system");
            continue;
        }
        assert_eq!(
            row.get::<Option<String>, _>("ip").as_deref(),
            Some("127.0.0.1"),
            "{event}"
        );
        assert_eq!(
            row.get::<Option<String>, _>("user_agent").as_deref(),
            Some("portcullis-tests"),
            "{event}"
        );
        assert!(
            row.get::<Option<String>, _>("request_id")
                .is_some_and(|r| r.len() == 36),
            "{event}"
        );
    }
    let role_change = rows
        .iter()
        .find(|r| r.get::<String, _>("event") == "staff.role_changed")
        .expect("row");
    assert_eq!(role_change.get::<String, _>("actor_type"), "staff");
    assert_eq!(
        role_change
            .get::<Option<String>, _>("actor_label")
            .as_deref(),
        Some("owner@example.com")
    );
    assert_eq!(
        role_change.get::<Option<String>, _>("target_id").as_deref(),
        Some(id.as_str())
    );
    let detail: serde_json::Value =
        serde_json::from_str(&role_change.get::<String, _>("detail")).expect("json");
    assert_eq!(
        detail,
        serde_json::json!({"before": {"role": "auditor"}, "after": {"role": "support"}})
    );
}

async fn the_chain_stays_one_line_under_concurrent_writers(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.api_key(Role::Owner).await;
    invite_concurrently(std::slice::from_ref(&app.url), &key, 24).await;
    assert_eq!(app.count_events("staff.invited").await, 24);
    app.assert_chain_intact().await;
}

async fn editing_a_row_breaks_verification_at_that_row(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..4 {
        app.create_staff(&format!("s{i}@example.com"), Role::Support)
            .await;
    }
    app.assert_chain_intact().await;
    // An attacker with database access drops the guard and rewrites history.
    let pool = app.identity.db().pool();
    match backend {
        Backend::Sqlite => {
            sqlx::query("drop trigger audit_event_no_update")
                .execute(pool)
                .await
                .expect("drop");
        }
        Backend::Postgres => {
            sqlx::query("drop trigger audit_event_no_change on audit_event")
                .execute(pool)
                .await
                .expect("drop");
        }
    }
    sqlx::query("update audit_event set detail = '{\"after\":{\"role\":\"owner\"}}' where seq = 3")
        .execute(pool)
        .await
        .expect("tamper");
    let v = identity::audit::verify(&app.identity)
        .await
        .expect("verify");
    assert_eq!(v.first_broken, Some(3));
    assert_eq!(v.checked, 2);
}

async fn audit_rows_cannot_be_updated_or_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_staff("s@example.com", Role::Support).await;
    let pool = app.identity.db().pool();
    assert!(
        sqlx::query("update audit_event set event = 'x'")
            .execute(pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("delete from audit_event")
            .execute(pool)
            .await
            .is_err()
    );
    assert_eq!(
        app.audit_events().await[crate::helpers::FIRST_START.len()..],
        ["staff.created"]
    );
}
