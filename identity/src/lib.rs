//! Portcullis's domain and storage: staff, sessions, API keys, authorization and the audit chain.
//!
//! No HTTP and no UI live here; both front doors (the dashboard's server functions and the REST API)
//! call these functions. Every mutation writes its audit event in the same transaction as the change.

pub mod api_keys;
pub mod app_keys;
pub mod applications;
pub mod audit;
pub mod audit_catalog;
pub mod audit_retention;
pub mod audit_streams;
pub mod authz;
pub mod credentials;
pub mod db;
pub mod email;
pub mod error;
pub mod impersonation;
pub mod keys;
pub mod logout;
pub mod mail;
pub mod oauth;
pub mod organizations;
pub mod password;
pub mod redirect_uris;
pub mod roles;
pub mod secret;
pub mod session_policy;
pub mod sessions;
pub mod settings;
pub mod staff;
pub mod time;
pub mod users;

use std::sync::Arc;

pub use authz::{Action, Principal, Role};
pub use db::{Backend, Db};
pub use error::{Error, Result};
pub use time::Timestamp;

/// Tunables that come from configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A staff session ends after this long without a request (seconds).
    pub session_idle_secs: i64,
    /// A staff session ends this long after sign-in, whatever the activity (seconds).
    pub session_absolute_secs: i64,
    /// Failed sign-ins are counted over this window (seconds).
    pub throttle_window_secs: i64,
    /// Failed sign-ins for one email within the window before further attempts are refused.
    pub throttle_per_account: i64,
    /// Failed sign-ins from one IP address within the window before further attempts are refused.
    pub throttle_per_ip: i64,
    /// How long an invitation link stays valid (seconds).
    pub invitation_secs: i64,
    /// The OpenID Provider's issuer: the public URL, without a trailing slash.
    pub issuer: String,
    /// Audit events older than this many days are purged behind a signed checkpoint (0 keeps all).
    pub audit_retention_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_idle_secs: 60 * 60,
            session_absolute_secs: 12 * 60 * 60,
            throttle_window_secs: 15 * 60,
            throttle_per_account: 5,
            throttle_per_ip: 50,
            invitation_secs: 7 * 24 * 60 * 60,
            issuer: "http://localhost:3000".to_owned(),
            audit_retention_days: 365,
        }
    }
}

/// The handle every front door holds: database, password hasher and settings. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    hasher: password::Hasher,
    settings: Settings,
    master: keys::MasterKey,
    keyring: keys::SharedKeyring,
    clients: oauth::ClientCache,
    audit_batcher: std::sync::OnceLock<audit::Batcher>,
}

impl Identity {
    /// Connects to `database_url` (sqlite:… or postgres:…), runs the migrations, creates the default
    /// application and the signing keys on first start, and loads the keys (`master` unseals them).
    pub async fn open(
        database_url: &str,
        settings: Settings,
        master: keys::MasterKey,
    ) -> Result<Self> {
        let db = Db::connect(database_url).await?;
        db.migrate().await?;
        let identity = Self::new(db, settings, master);
        applications::ensure_default(&identity, Timestamp::now()).await?;
        keys::ensure(&identity, Timestamp::now()).await?;
        Ok(identity)
    }

    pub fn new(db: Db, settings: Settings, master: keys::MasterKey) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                hasher: password::Hasher::new(),
                settings,
                master,
                keyring: keys::SharedKeyring::default(),
                clients: oauth::ClientCache::default(),
                audit_batcher: std::sync::OnceLock::new(),
            }),
        }
    }

    pub(crate) fn master_key(&self) -> &keys::MasterKey {
        &self.inner.master
    }

    pub(crate) fn keyring(&self) -> &keys::SharedKeyring {
        &self.inner.keyring
    }

    pub(crate) fn clients(&self) -> &oauth::ClientCache {
        &self.inner.clients
    }

    /// The group-commit audit writer, started on first use (on the caller's runtime).
    pub(crate) fn audit_batcher(&self) -> &audit::Batcher {
        self.inner
            .audit_batcher
            .get_or_init(|| audit::Batcher::start(self.inner.db.clone()))
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn hasher(&self) -> &password::Hasher {
        &self.inner.hasher
    }

    /// True when the database answers.
    pub async fn ready(&self) -> bool {
        self.db().ping().await.is_ok()
    }
}

/// Where a request came from; recorded with every audit event.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}
