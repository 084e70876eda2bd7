//! Application configuration beyond the basics: return URLs, the default redirect, session policy
//! with environment defaults, list search/filter/sort, and concurrent secret rotation.

use crate::applications::Api;
use crate::helpers::{Backend, spawn_app};
use identity::Role;
use reqwest::Method;
use serde_json::{Value, json};

crate::on_both_databases!(
    one_body_configures_every_url_and_the_session_policy,
    single_urls_follow_the_type_rules,
    session_policy_is_bounded_and_shows_where_each_value_comes_from,
    environment_defaults_are_for_owners_and_flow_into_applications,
    the_list_searches_filters_sorts_and_counts,
    concurrent_secret_creation_keeps_at_most_two_active,
);

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn one_body_configures_every_url_and_the_session_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (status, created) = api
        .post(json!({
            "name": "Storefront",
            "type": "web",
            "redirect_uris": ["https://shop.example/cb", "https://shop.example/cb2"],
            "default_redirect_uri": "https://shop.example/cb2",
            "post_logout_redirect_uris": ["https://shop.example/"],
            "initiate_login_uri": "https://shop.example/login",
            "backchannel_logout_uri": "https://shop.example/bcl",
            "return_url": "https://shop.example/welcome-back",
            "session_policy": {"access_token_ttl_secs": 600, "refresh_tokens": false},
        }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created["client_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("web_"))
    );
    let (_, read) = api
        .send(
            Method::GET,
            &format!("/api/v1/applications/{}", id_of(&created)),
            None,
        )
        .await;
    assert_eq!(read["default_redirect_uri"], "https://shop.example/cb2");
    assert_eq!(read["initiate_login_uri"], "https://shop.example/login");
    assert_eq!(read["backchannel_logout_uri"], "https://shop.example/bcl");
    assert_eq!(read["return_url"], "https://shop.example/welcome-back");
    assert_eq!(
        read["session_policy"],
        json!({"access_token_ttl_secs": 600, "refresh_tokens": false})
    );
    let effective = &read["effective_session_policy"];
    assert_eq!(
        effective["access_token_ttl_secs"],
        json!({"value": 600, "source": "application"})
    );
    assert_eq!(
        effective["refresh_tokens"],
        json!({"value": false, "source": "application"})
    );
    assert_eq!(effective["id_token_ttl_secs"]["source"], "default");

    // Without an explicit default, the first redirect URI is the default; removing it moves it on.
    let (_, spa) = api
        .post(json!({"name": "SPA", "type": "spa",
                     "redirect_uris": ["https://spa.example/a", "https://spa.example/b"]}))
        .await;
    assert_eq!(spa["default_redirect_uri"], "https://spa.example/a");
    let path = format!("/api/v1/applications/{}", id_of(&spa));
    let (_, spa) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"redirect_uris": ["https://spa.example/b"]})),
        )
        .await;
    assert_eq!(spa["default_redirect_uri"], "https://spa.example/b");
    // `null` clears a single URL.
    let (_, web) = api
        .send(
            Method::PATCH,
            &format!("/api/v1/applications/{}", id_of(&created)),
            Some(json!({"initiate_login_uri": null})),
        )
        .await;
    assert!(web["initiate_login_uri"].is_null());
    assert_eq!(
        web["return_url"], "https://shop.example/welcome-back",
        "others stay"
    );
}

async fn single_urls_follow_the_type_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Owner).await;
    let cases = [
        (
            json!({"type": "spa", "backchannel_logout_uri": "https://spa.example/bcl"}),
            "backchannel_logout_uri",
            "backchannel_logout_not_allowed",
        ),
        (
            json!({"type": "m2m", "initiate_login_uri": "https://svc.example/login"}),
            "initiate_login_uri",
            "redirect_uri_not_allowed",
        ),
        (
            json!({"type": "m2m", "return_url": "https://svc.example/"}),
            "return_url",
            "redirect_uri_not_allowed",
        ),
        (
            json!({"type": "web", "initiate_login_uri": "http://shop.example/login"}),
            "initiate_login_uri",
            "redirect_uri_https_required",
        ),
        (
            json!({"type": "native", "initiate_login_uri": "com.example.app:/login"}),
            "initiate_login_uri",
            "redirect_uri_custom_scheme",
        ),
        (
            json!({"type": "native", "return_url": "com.example.app:/welcome"}),
            "",
            "",
        ),
        (
            json!({"type": "web", "return_url": "https://shop.example/#done"}),
            "return_url",
            "redirect_uri_fragment",
        ),
        (
            json!({"type": "web", "redirect_uris": ["https://a.example/cb"],
                "default_redirect_uri": "https://b.example/cb"}),
            "default_redirect_uri",
            "default_redirect_uri_unlisted",
        ),
    ];
    for (i, (mut body, field, code)) in cases.into_iter().enumerate() {
        body["name"] = json!(format!("App {i}"));
        let (status, res) = api.post(body.clone()).await;
        if code.is_empty() {
            assert_eq!(status, 201, "{body} {res}");
        } else {
            assert_eq!(status, 422, "{body}");
            assert_eq!(
                (
                    res["error"]["field"].as_str(),
                    res["error"]["code"].as_str()
                ),
                (Some(field), Some(code)),
                "{body}"
            );
        }
    }
    assert_eq!(
        app.count_events("application.created").await,
        2,
        "default + the valid one"
    );
}

async fn session_policy_is_bounded_and_shows_where_each_value_comes_from(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, spa) = api.post(json!({"name": "SPA", "type": "spa"})).await;
    let path = format!("/api/v1/applications/{}", id_of(&spa));
    let effective = &spa["effective_session_policy"];
    assert_eq!(
        effective["refresh_rotation"],
        json!({"value": true, "source": "type"})
    );
    assert_eq!(
        effective["access_token_ttl_secs"],
        json!({"value": 900, "source": "default"})
    );

    for (policy, field, code) in [
        (
            json!({"access_token_ttl_secs": 59}),
            "access_token_ttl_secs",
            "policy_out_of_bounds",
        ),
        (
            json!({"access_token_ttl_secs": 86_401}),
            "access_token_ttl_secs",
            "policy_out_of_bounds",
        ),
        (
            json!({"id_token_ttl_secs": "1h"}),
            "id_token_ttl_secs",
            "policy_out_of_bounds",
        ),
        (
            json!({"refresh_rotation": false}),
            "refresh_rotation",
            "rotation_required",
        ),
        (
            json!({"refresh_idle_ttl_secs": 864_000, "refresh_absolute_ttl_secs": 86_400}),
            "refresh_idle_ttl_secs",
            "idle_exceeds_absolute",
        ),
        (
            json!({"token_ttl": 5}),
            "session_policy",
            "unknown_policy_field",
        ),
    ] {
        let (status, res) = api
            .send(
                Method::PATCH,
                &path,
                Some(json!({"session_policy": policy.clone()})),
            )
            .await;
        assert_eq!(status, 422, "{policy}");
        assert_eq!(
            (
                res["error"]["field"].as_str(),
                res["error"]["code"].as_str()
            ),
            (Some(field), Some(code)),
            "{policy}"
        );
    }
    let (status, res) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"session_policy": {"access_token_ttl_secs": 300}})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        res["effective_session_policy"]["access_token_ttl_secs"],
        json!({"value": 300, "source": "application"})
    );
    let (_, res) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"session_policy": {"access_token_ttl_secs": null}})),
        )
        .await;
    assert_eq!(
        res["effective_session_policy"]["access_token_ttl_secs"]["source"],
        "default"
    );

    let (_, m2m) = api.post(json!({"name": "Svc", "type": "m2m"})).await;
    assert_eq!(
        m2m["effective_session_policy"]["refresh_tokens"],
        json!({"value": false, "source": "type"})
    );
    let (status, res) = api
        .send(
            Method::PATCH,
            &format!("/api/v1/applications/{}", id_of(&m2m)),
            Some(json!({"session_policy": {"refresh_tokens": true}})),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("refresh_not_allowed"))
    );

    // Only the accepted changes were written, each with before and after.
    let details: Vec<String> = sqlx::query_scalar(
        "select detail from audit_event where event = 'application.updated' order by seq",
    )
    .fetch_all(app.identity.db().pool())
    .await
    .expect("details");
    assert_eq!(details.len(), 2);
    let first: Value = serde_json::from_str(&details[0]).expect("json");
    assert_eq!(first["before"]["session_policy"], json!({}));
    assert_eq!(
        first["after"]["session_policy"],
        json!({"access_token_ttl_secs": 300})
    );
}

async fn environment_defaults_are_for_owners_and_flow_into_applications(backend: Backend) {
    let app = spawn_app(backend).await;
    let operator = Api::new(&app, Role::Operator).await;
    let owner = Api::new(&app, Role::Owner).await;
    let (_, web) = operator.post(json!({"name": "Web", "type": "web"})).await;
    let path = format!("/api/v1/applications/{}", id_of(&web));
    let settings = "/api/v1/settings/session-policy";

    let (status, _) = Api::new(&app, Role::Support)
        .await
        .send(Method::GET, settings, None)
        .await;
    assert_eq!(status, 403, "support does not read settings");
    let (status, _) = operator
        .send(
            Method::PATCH,
            settings,
            Some(json!({"access_token_ttl_secs": 1200})),
        )
        .await;
    assert_eq!(
        status, 403,
        "operators read settings but do not change them"
    );
    let (status, res) = owner
        .send(
            Method::PATCH,
            settings,
            Some(json!({"access_token_ttl_secs": 1200})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        res["effective_by_type"]["spa"]["access_token_ttl_secs"],
        json!({"value": 1200, "source": "environment"})
    );
    let (status, res) = owner
        .send(
            Method::PATCH,
            settings,
            Some(json!({"refresh_idle_ttl_secs": 60})),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("policy_out_of_bounds"))
    );

    let (_, read) = operator.send(Method::GET, &path, None).await;
    assert_eq!(
        read["effective_session_policy"]["access_token_ttl_secs"],
        json!({"value": 1200, "source": "environment"})
    );
    operator
        .send(
            Method::PATCH,
            &path,
            Some(json!({"session_policy": {"access_token_ttl_secs": 120}})),
        )
        .await;
    let (_, read) = operator.send(Method::GET, &path, None).await;
    assert_eq!(
        read["effective_session_policy"]["access_token_ttl_secs"],
        json!({"value": 120, "source": "application"}),
        "the application wins"
    );
    let (_, back) = owner
        .send(
            Method::PATCH,
            settings,
            Some(json!({"access_token_ttl_secs": null})),
        )
        .await;
    assert_eq!(back["session_policy"], json!({}));
    assert_eq!(app.count_events("settings.updated").await, 2);
}

async fn the_list_searches_filters_sorts_and_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let mut ids = Vec::new();
    for (name, t) in [
        ("Zebra web", "web"),
        ("alpha SPA", "spa"),
        ("Beta CLI", "native"),
        ("100%_sure", "m2m"),
    ] {
        let (_, a) = api.post(json!({"name": name, "type": t})).await;
        ids.push(a);
    }
    api.send(
        Method::PATCH,
        &format!("/api/v1/applications/{}", id_of(&ids[0])),
        Some(json!({"status": "disabled"})),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let get = |q: &str| {
        let path = format!("/api/v1/applications?{q}");
        let api = api.clone();
        async move { api.send(Method::GET, &path, None).await }
    };
    let (_, res) = get("sort=name").await;
    assert_eq!(
        names(&res),
        [
            "100%_sure",
            "alpha SPA",
            "Beta CLI",
            "Default application",
            "Zebra web"
        ],
        "by name, any case"
    );
    let (_, res) = get("q=a&sort=name").await;
    assert_eq!(
        names(&res),
        ["alpha SPA", "Beta CLI", "Default application", "Zebra web"],
        "a search sorts the same way"
    );
    let (_, first) = get("q=a&sort=name&limit=3").await;
    let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, rest) = get(&format!("q=a&sort=name&limit=3&after={cursor}")).await;
    assert_eq!(
        (names(&rest), rest["total"].clone()),
        (vec!["Zebra web".to_owned()], json!(4))
    );
    assert_eq!(res["total"], 4, "the search's own total");
    assert_eq!(get("sort=name").await.1["total"], 5);
    let (_, res) = get("q=ALPHA").await;
    assert_eq!(names(&res), ["alpha SPA"], "any case");
    let (_, res) = get("q=%25_").await;
    assert_eq!(names(&res), ["100%_sure"], "% and _ match themselves");
    let client_id = ids[2]["client_id"].as_str().expect("cid");
    let (_, res) = get(&format!("q={}", &client_id[..12])).await;
    assert_eq!(names(&res), ["Beta CLI"], "by client ID");
    let (_, res) = get("type=web").await;
    assert_eq!(
        names(&res),
        ["Zebra web", "Default application"],
        "newest first by default"
    );
    let (_, res) = get("type=web&status=active").await;
    assert_eq!(
        (names(&res), res["total"].clone()),
        (vec!["Default application".to_owned()], json!(1))
    );
    let (_, first) = get("sort=name&limit=2").await;
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = get(&format!("sort=name&limit=2&after={cursor}")).await;
    assert_eq!(names(&second), ["Beta CLI", "Default application"]);
    let (status, res) = get("type=desktop").await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("invalid_type"))
    );
    let (status, res) = get("sort=random").await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("invalid_sort"))
    );
}

async fn concurrent_secret_creation_keeps_at_most_two_active(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = Api::new(&app, Role::Operator).await;
    let (_, svc) = api.post(json!({"name": "Svc", "type": "m2m"})).await;
    let secrets = format!("/api/v1/applications/{}/secrets", id_of(&svc));
    let (_, first) = api.send(Method::POST, &secrets, None).await;
    let rotate = format!("{secrets}/{}/rotate", id_of(&first));
    // Six racing requests: creations and rotations of the first secret.
    let results = futures_join(&api, &secrets, &rotate).await;
    let created = results.iter().filter(|s| **s == 201).count();
    assert!(created >= 1, "{results:?}");
    assert!(
        results.iter().all(|s| *s == 201 || *s == 409),
        "{results:?}"
    );
    let (_, listed) = api.send(Method::GET, &secrets, None).await;
    let active = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|s| s["active"] == json!(true))
        .count();
    assert!(active <= 2, "{listed}");
    let created_events = app.count_events("client_secret.created").await;
    let rows = listed["data"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(
        created_events, rows,
        "every stored secret was audited, nothing else"
    );
}

async fn futures_join(api: &Api, secrets: &str, rotate: &str) -> Vec<u16> {
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let api = api.clone();
            let path = if i % 2 == 0 {
                secrets.to_owned()
            } else {
                rotate.to_owned()
            };
            tokio::spawn(async move { api.send(Method::POST, &path, None).await.0 })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("join"));
    }
    out
}
