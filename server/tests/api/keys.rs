//! Token signing keys: generated on first start, sealed at rest, published in the JWKS, rotated
//! without breaking tokens already issued, shared by replicas.

use crate::helpers::{Backend, fresh_database, spawn_app, spawn_on};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

crate::on_both_databases!(
    the_jwks_verifies_what_portcullis_signs_across_a_rotation,
    private_keys_are_sealed_with_the_master_key,
);

async fn jwks(app: &crate::helpers::TestApp) -> Value {
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("cache-control")
            .is_some_and(|v| v.to_str().is_ok_and(|v| v.contains("max-age")))
    );
    res.json().await.expect("json")
}

fn verify(token: &str, set: &Value) -> Result<Value, String> {
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let jwk = set["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or("kid not in the JWKS")?;
    let (key, alg) = if jwk["kty"] == "RSA" {
        (
            DecodingKey::from_rsa_components(
                jwk["n"].as_str().unwrap_or_default(),
                jwk["e"].as_str().unwrap_or_default(),
            ),
            Algorithm::RS256,
        )
    } else {
        (
            DecodingKey::from_ec_components(
                jwk["x"].as_str().unwrap_or_default(),
                jwk["y"].as_str().unwrap_or_default(),
            ),
            Algorithm::ES256,
        )
    };
    let key = key.map_err(|e| e.to_string())?;
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn the_jwks_verifies_what_portcullis_signs_across_a_rotation(backend: Backend) {
    let app = spawn_app(backend).await;
    let set = jwks(&app).await;
    let keys = set["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 4, "current and next, ES256 and RS256: {set}");
    for k in keys {
        let shape = (k["kty"].as_str(), k["crv"].as_str(), k["alg"].as_str());
        assert!(
            shape == (Some("EC"), Some("P-256"), Some("ES256"))
                || shape == (Some("RSA"), None, Some("RS256")),
            "{k}"
        );
        assert!(
            k.get("d").is_none() && k.get("p").is_none(),
            "never the private part"
        );
    }
    let claims = json!({"sub": "user-1", "exp": 4_000_000_000u64});
    let before = identity::keys::sign(&app.identity, "at+jwt", &claims).expect("sign");
    assert_eq!(
        jsonwebtoken::decode_header(&before)
            .expect("header")
            .typ
            .as_deref(),
        Some("at+jwt")
    );
    assert_eq!(verify(&before, &set).expect("verifies")["sub"], "user-1");

    let next_kid = {
        let infos = identity::keys::list(&app.identity, &owner())
            .await
            .expect("list");
        infos
            .iter()
            .find(|k| k.status == "next" && k.alg == "ES256")
            .expect("next")
            .kid
            .clone()
    };
    let current = identity::keys::rotate(
        &app.identity,
        &identity::audit::Actor::System,
        None,
        &identity::RequestMeta::default(),
        identity::Timestamp::now(),
    )
    .await
    .expect("rotate");
    assert_eq!(current, next_kid, "the published next key becomes current");
    let set = jwks(&app).await;
    assert_eq!(
        set["keys"].as_array().map(Vec::len),
        Some(6),
        "next, current, previous of each algorithm"
    );
    assert!(
        verify(&before, &set).is_ok(),
        "tokens signed before the rotation still verify"
    );
    let after = identity::keys::sign(&app.identity, "JWT", &claims).expect("sign");
    assert_eq!(
        jsonwebtoken::decode_header(&after).expect("h").kid,
        Some(next_kid)
    );
    assert!(verify(&after, &set).is_ok());
    // A tampered token does not verify.
    let mut parts: Vec<String> = after.split('.').map(str::to_owned).collect();
    parts[1] = base64_json(&json!({"sub": "admin", "exp": 4_000_000_000u64}));
    assert!(verify(&parts.join("."), &set).is_err());
    // RS256 (for clients that need it) verifies with the published RSA key.
    let rsa = identity::keys::sign_as(&app.identity, identity::keys::Alg::RS256, "JWT", &claims)
        .expect("sign");
    assert_eq!(
        jsonwebtoken::decode_header(&rsa).expect("h").alg,
        Algorithm::RS256
    );
    assert!(verify(&rsa, &set).is_ok());
    assert_eq!(app.count_events("signing_key.created").await, 4);
    assert_eq!(app.count_events("signing_key.rotated").await, 1);
}

fn base64_json(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn owner() -> identity::Principal {
    identity::Principal {
        role: Some(identity::Role::Owner),
        kind: identity::authz::PrincipalKind::ApiKey {
            api_key_id: "test".into(),
            name: "test".into(),
        },
    }
}

async fn private_keys_are_sealed_with_the_master_key(backend: Backend) {
    let db = fresh_database(backend).await;
    let a = spawn_on(&db, |_| {}).await;
    // A second replica with the same master key publishes the same keys.
    let b = spawn_on(&db, |_| {}).await;
    assert_eq!(jwks(&a).await, jwks(&b).await);
    let rows: Vec<(String, String)> =
        sqlx::query_as("select public_jwk, private_key from signing_key")
            .fetch_all(a.identity.db().pool())
            .await
            .expect("rows");
    for (public, private) in &rows {
        assert!(!private.contains("BEGIN") && !private.contains(public.as_str()));
        assert!(!public.contains("\"d\""));
    }
    // A replica with another master key cannot unseal them and refuses to start.
    let mut config = server::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        public_url: None,
        database_url: db.clone(),
        data_dir: std::env::temp_dir(),
        site_root: "target/site".to_owned(),
        trust_proxy: false,
        smtp_url: None,
        mail_from: "x <x@example.com>".to_owned(),
        allow_private_outbound: true,
        master_key: None,
        settings: identity::Settings::default(),
    };
    config.master_key = Some("ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=".to_owned());
    let err = server::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("master"), "{err:#}");
}
