//! Configuration from environment variables. An optional file named by `PORTCULLIS_CONFIG` holds
//! `KEY=value` lines; real environment variables win over it.

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    /// `PORTCULLIS_ADDR`, default 127.0.0.1:3000 (port 0 picks a free port).
    pub addr: SocketAddr,
    /// `PORTCULLIS_PUBLIC_URL`, default `http://<bound address>`.
    pub public_url: Option<String>,
    /// `DATABASE_URL`, default a SQLite file in the data directory.
    pub database_url: String,
    /// `PORTCULLIS_DATA_DIR`, default `./data`.
    pub data_dir: PathBuf,
    /// `PORTCULLIS_SITE_ROOT` (or `LEPTOS_SITE_ROOT`), default `target/site`: the built JS, WASM and CSS.
    pub site_root: String,
    /// `PORTCULLIS_TRUST_PROXY=1`: take the client IP from `X-Forwarded-For` (only behind a proxy).
    pub trust_proxy: bool,
    /// `PORTCULLIS_SMTP_URL`: deliver the outbox through this SMTP server; without it, mail stays in
    /// the outbox (Settings → Outbox).
    pub smtp_url: Option<String>,
    /// `PORTCULLIS_MAIL_FROM`, default `Portcullis <no-reply@localhost>`.
    pub mail_from: String,
    /// `PORTCULLIS_ALLOW_PRIVATE_OUTBOUND`: let back-channel logout reach private, loopback and
    /// link-local addresses (tests and local development only).
    pub allow_private_outbound: bool,
    /// `PORTCULLIS_MASTER_KEY` (32 bytes, base64): seals the signing keys in the database. Without it,
    /// the key file `<data dir>/master.key` (created with mode 0600 on first start). Every replica
    /// needs the same key.
    pub master_key: Option<String>,
    pub settings: identity::Settings,
}

/// Environment variables first, then the optional file.
struct Source {
    file: HashMap<String, String>,
}

impl Source {
    fn load() -> anyhow::Result<Self> {
        let mut file = HashMap::new();
        if let Some(path) = std::env::var("PORTCULLIS_CONFIG")
            .ok()
            .filter(|p| !p.is_empty())
        {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let Some((key, value)) = line.split_once('=') else {
                    bail!("{path}: expected KEY=value, got {line:?}");
                };
                file.insert(
                    key.trim().to_owned(),
                    value.trim().trim_matches('"').to_owned(),
                );
            }
        }
        Ok(Self { file })
    }

    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
            .filter(|v| !v.trim().is_empty())
    }

    fn secs(&self, name: &str, default: i64) -> anyhow::Result<i64> {
        match self.var(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => bail!("{name} must be a positive number of seconds, got {v:?}"),
            },
        }
    }
}

impl Source {
    /// A whole number of days; 0 means "forever" where the setting says so.
    fn days(&self, name: &str, default: i64) -> anyhow::Result<i64> {
        match self.var(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n),
                _ => bail!("{name} must be a whole number of days (0 keeps everything), got {v:?}"),
            },
        }
    }
}

impl Config {
    /// The master key from configuration, or the data directory's key file.
    pub fn master_key(&self) -> anyhow::Result<identity::keys::MasterKey> {
        Ok(match &self.master_key {
            Some(k) => identity::keys::MasterKey::from_base64(k)
                .context("PORTCULLIS_MASTER_KEY must be 32 bytes in base64")?,
            None => identity::keys::MasterKey::load_or_create(&self.data_dir.join("master.key"))
                .context("reading or creating the master key file")?,
        })
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let src = Source::load()?;
        let addr: SocketAddr = src
            .var("PORTCULLIS_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
            .parse()
            .context("PORTCULLIS_ADDR must be host:port, e.g. 127.0.0.1:3000")?;
        let data_dir = PathBuf::from(
            src.var("PORTCULLIS_DATA_DIR")
                .unwrap_or_else(|| "./data".to_owned()),
        );
        let database_url = src
            .var("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("portcullis.db").display()));
        let defaults = identity::Settings::default();
        Ok(Self {
            addr,
            public_url: src
                .var("PORTCULLIS_PUBLIC_URL")
                .map(|u| u.trim_end_matches('/').to_owned()),
            database_url,
            data_dir,
            site_root: src
                .var("PORTCULLIS_SITE_ROOT")
                .or_else(|| src.var("LEPTOS_SITE_ROOT"))
                .unwrap_or_else(|| "target/site".to_owned()),
            trust_proxy: src
                .var("PORTCULLIS_TRUST_PROXY")
                .is_some_and(|v| v == "1" || v == "true"),
            smtp_url: src.var("PORTCULLIS_SMTP_URL").filter(|u| !u.is_empty()),
            master_key: src.var("PORTCULLIS_MASTER_KEY").filter(|k| !k.is_empty()),
            allow_private_outbound: src
                .var("PORTCULLIS_ALLOW_PRIVATE_OUTBOUND")
                .is_some_and(|v| v == "1" || v == "true"),
            mail_from: src
                .var("PORTCULLIS_MAIL_FROM")
                .unwrap_or_else(|| "Portcullis <no-reply@localhost>".to_owned()),
            settings: identity::Settings {
                session_idle_secs: src
                    .secs("PORTCULLIS_SESSION_IDLE_SECS", defaults.session_idle_secs)?,
                session_absolute_secs: src.secs(
                    "PORTCULLIS_SESSION_ABSOLUTE_SECS",
                    defaults.session_absolute_secs,
                )?,
                audit_retention_days: src.days(
                    "PORTCULLIS_AUDIT_RETENTION_DAYS",
                    defaults.audit_retention_days,
                )?,
                ..defaults
            },
        })
    }
}
