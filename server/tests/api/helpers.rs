use identity::audit::Actor;
use identity::{Identity, RequestMeta, Role, Timestamp};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use secrecy::ExposeSecret;
use server::{Application, Config};
use sqlx::Row;
use std::sync::Once;

/// Runs each listed `async fn name(backend: Backend)` as two tests: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The audit events every environment starts with: the default application and the first two
/// signing keys (current and next, ES256 and RS256).
pub const FIRST_START: [&str; 5] = [
    "application.created",
    "signing_key.created",
    "signing_key.created",
    "signing_key.created",
    "signing_key.created",
];

pub struct TestApp {
    pub url: String,
    pub identity: Identity,
    pub database_url: String,
    /// Sends `Origin: <url>` like a browser on our pages; keeps cookies; never follows redirects.
    pub client: reqwest::Client,
}

fn admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database of the given kind.
pub async fn fresh_database(backend: Backend) -> String {
    let name = format!("pc_test_{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(&name);
            format!("sqlite://{}", dir.join("portcullis.db").display())
        }
        Backend::Postgres => {
            static DRIVERS: Once = Once::new();
            DRIVERS.call_once(sqlx::any::install_default_drivers);
            let admin = admin_url();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                .await
                .expect("PostgreSQL must be running for the integration tests (make setup-test)");
            sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let database_url = fresh_database(backend).await;
    spawn_on(&database_url, tweak).await
}

/// Boots a server on `database_url` (an existing database: replicas share one).
pub async fn spawn_on(database_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    // `TEST_LOG=1 cargo test …` shows the servers' logs (RUST_LOG filters them).
    if std::env::var_os("TEST_LOG").is_some() {
        server::telemetry::init();
    }
    let mut config = Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        public_url: None,
        database_url: database_url.to_owned(),
        data_dir: std::env::temp_dir(),
        site_root: "target/site".to_owned(),
        trust_proxy: false,
        smtp_url: None,
        master_key: Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned()),
        mail_from: "Portcullis <no-reply@portcullis.test>".to_owned(),
        allow_private_outbound: true,
        settings: identity::Settings::default(),
    };
    tweak(&mut config);
    let app = Application::build(config).await.expect("build app");
    // Where the test reaches the server, and the origin its pages claim (they differ behind https).
    let url = format!("http://127.0.0.1:{}", app.port());
    let origin = app.public_url().to_owned();
    let identity = app.state.identity.clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        client: browser_client(&origin),
        url,
        identity,
        database_url: database_url.to_owned(),
    }
}

pub fn browser_client(origin: &str) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert("origin", HeaderValue::from_str(origin).expect("origin"));
    headers.insert("user-agent", HeaderValue::from_static("portcullis-tests"));
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The value of the `name="csrf"` hidden input in a page.
pub fn form_csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    html.find(marker)
        .map(|i| &html[i + marker.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// The `pc_session` cookie value a response sets.
pub fn session_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("pc_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned()
}

/// Invites `n` staff members at once through the API, spreading the requests over `urls`; every
/// request must answer 201.
pub async fn invite_concurrently(urls: &[String], key: &str, n: usize) {
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (http, url, key) = (http.clone(), urls[i % urls.len()].clone(), key.to_owned());
            tokio::spawn(async move {
                http.post(format!("{url}/api/v1/staff"))
                    .bearer_auth(key)
                    .json(&serde_json::json!({"email": format!("concurrent{i}@example.com"), "role": "support"}))
                    .send()
                    .await
                    .expect("post")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("join"), 201);
    }
}

impl TestApp {
    /// Another browser (its own cookie jar) on the same server.
    pub fn new_browser(&self) -> TestApp {
        TestApp {
            client: browser_client(&self.url),
            url: self.url.clone(),
            identity: self.identity.clone(),
            database_url: self.database_url.clone(),
        }
    }

    pub async fn create_staff(&self, email: &str, role: Role) -> String {
        identity::staff::create(
            &self.identity,
            &Actor::System,
            &RequestMeta::default(),
            email,
            role,
            PASSWORD.into(),
            Timestamp::now(),
        )
        .await
        .expect("create staff")
        .id
    }

    pub async fn api_key(&self, role: Role) -> String {
        identity::api_keys::create(
            &self.identity,
            &Actor::System,
            &RequestMeta::default(),
            "tests",
            role,
            Timestamp::now(),
        )
        .await
        .expect("create key")
        .key
        .expose_secret()
        .to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET")
    }

    /// GET /login, then POST the form with the page's CSRF token. Returns the POST's response.
    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        let page = self.get("/login").await.text().await.expect("login page");
        let csrf = form_csrf(&page);
        assert!(!csrf.is_empty(), "the sign-in form carries a CSRF token");
        self.client
            .post(format!("{}/auth/login", self.url))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .await
            .expect("POST /auth/login")
    }

    /// GETs a hosted page, then POSTs its form to `action` with the page's CSRF token and `fields`.
    pub async fn hosted_form(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.get(page).await.text().await.expect("hosted page");
        let csrf = form_csrf(&html);
        assert!(!csrf.is_empty(), "{page} carries a CSRF token");
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", csrf.as_str()));
        self.client
            .post(format!("{}{action}", self.url))
            .form(&form)
            .send()
            .await
            .expect("POST hosted form")
    }

    /// The newest outbox message to `to`: (subject, body). Waits up to 5 s (some mail is queued
    /// after the response, e.g. password resets).
    pub async fn last_mail(&self, to: &str) -> (String, String) {
        for _ in 0..100 {
            let found: Option<(String, String)> = sqlx::query_as(
                "select subject, body from outbox_message where to_email = $1 order by created_at desc, outbox_message_id desc limit 1",
            )
            .bind(to)
            .fetch_optional(self.identity.db().pool())
            .await
            .expect("outbox");
            if let Some(found) = found {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no message to {to} in the outbox");
    }

    /// Creates a staff member with `role` and signs this client in as them.
    pub async fn signed_in_as(&self, email: &str, role: Role) -> String {
        let id = self.create_staff(email, role).await;
        let res = self.sign_in(email, PASSWORD).await;
        assert_eq!(location(&res), "/", "sign-in of {email} succeeds");
        id
    }

    /// Calls a server function the way the hydrated dashboard does.
    pub async fn rpc(&self, name: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}/rpc/{name}", self.url))
            .form(form)
            .send()
            .await
            .expect("rpc")
    }

    /// Disables a staff member the way an owner does in the dashboard (must succeed).
    pub async fn disable_from_dashboard(&self, staff_id: &str) {
        let csrf = self.session_csrf().await;
        let res = self
            .rpc(
                "set_staff_enabled",
                &[
                    ("csrf", &csrf),
                    ("staff_id", staff_id),
                    ("enabled", "false"),
                ],
            )
            .await;
        assert_eq!(res.status(), 200);
    }

    /// The signed-in session's CSRF token, as the dashboard gets it.
    pub async fn session_csrf(&self) -> String {
        let me: serde_json::Value = self.rpc("me", &[]).await.json().await.expect("me json");
        me["csrf"].as_str().expect("signed in").to_owned()
    }

    /// Audit event names in order.
    pub async fn audit_events(&self) -> Vec<String> {
        sqlx::query("select event from audit_event order by seq")
            .fetch_all(self.identity.db().pool())
            .await
            .expect("audit rows")
            .iter()
            .map(|r| r.get::<String, _>("event"))
            .collect()
    }

    pub async fn count_events(&self, event: &str) -> usize {
        self.audit_events()
            .await
            .iter()
            .filter(|e| *e == event)
            .count()
    }

    /// The chain verifies, and every event written is in the catalog with only the detail fields
    /// the catalog declares (a new event or field must be catalogued).
    pub async fn assert_chain_intact(&self) {
        let v = identity::audit::verify(&self.identity)
            .await
            .expect("verify");
        assert_eq!(
            v.first_broken, None,
            "audit chain is intact ({} rows checked)",
            v.checked
        );
        let rows = sqlx::query("select event, detail, category from audit_event")
            .fetch_all(self.identity.db().pool())
            .await
            .expect("audit rows");
        for r in rows {
            let name: String = r.get("event");
            let info = identity::audit_catalog::by_name(&name)
                .unwrap_or_else(|| panic!("{name} is not in the event catalog"));
            // The derived column holds the catalog category; NULL for `token` (not indexed).
            let stored: Option<String> = r.get("category");
            let expected = (info.category != "token").then_some(info.category);
            assert_eq!(stored.as_deref(), expected, "{name}");
            let detail: serde_json::Value =
                serde_json::from_str(&r.get::<String, _>("detail")).expect("detail is JSON");
            for key in detail.as_object().map(|o| o.keys()).into_iter().flatten() {
                assert!(
                    info.fields.contains(&key.as_str()),
                    "{name} writes `{key}`, which the catalog does not declare"
                );
            }
        }
    }
}
