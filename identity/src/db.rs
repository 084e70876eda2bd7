//! The storage seam. One code path for SQLite and PostgreSQL through sqlx's `Any` driver: queries are
//! written in the portable subset (numbered `$n` parameters, `returning`, text ids, bigint times) and
//! each database has its own migrations folder. See docs/design/storage.md.

use crate::error::{Context, Result};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::sync::Once;
use std::time::Duration;

pub type Tx = Transaction<'static, Any>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Where write transactions run. On SQLite one connection, so writers queue in-process (FIFO,
    /// async) instead of meeting SQLite's busy handler, which backs off by sleeping up to 100 ms
    /// at a time; readers keep `pool` (WAL lets them read while a write runs). On PostgreSQL the
    /// same pool.
    writer: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to `sqlite://path` (the file and its folder are created when missing) or
    /// `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(install_default_drivers);

        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(crate::Error::invalid(
                "DATABASE_URL",
                "unsupported_database",
                "DATABASE_URL must start with sqlite: or postgres:",
            ));
        };

        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let url = sqlite_url(url)?;
                let options = |max| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(Duration::from_secs(10))
                        .after_connect(|conn, _meta| {
                            Box::pin(async move {
                                use sqlx::Executor;
                                conn.execute("pragma journal_mode = wal").await?;
                                conn.execute("pragma synchronous = normal").await?;
                                conn.execute("pragma busy_timeout = 10000").await?;
                                conn.execute("pragma foreign_keys = on").await?;
                                Ok(())
                            })
                        })
                };
                let readers = options(8)
                    .connect(&url)
                    .await
                    .context("Failed to open the SQLite database")?;
                let writer = options(1)
                    .connect(&url)
                    .await
                    .context("Failed to open the SQLite database")?;
                (readers, writer)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .context("Failed to connect to PostgreSQL")?;
                (pool.clone(), pool)
            }
        };
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .context("Failed to run database migrations")
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. SQLite takes its write lock up front (`begin immediate`), so a
    /// transaction that reads before it writes cannot fail half-way with "database is locked";
    /// PostgreSQL serialises where it matters through row locks (see `audit::append`).
    pub async fn begin(&self) -> Result<Tx> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("begin immediate").await,
            Backend::Postgres => self.writer.begin().await,
        }
        .context("Failed to start a database transaction")
    }

    /// A pooled connection for reads that need several statements but no write lock.
    pub async fn connection(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        self.pool
            .acquire()
            .await
            .context("Failed to get a database connection")
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .context("Database did not answer")
    }

    /// For single write statements outside a transaction (they queue with the transactions).
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Creates the folder of a SQLite file and asks sqlx to create the file (`mode=rwc`).
fn sqlite_url(url: &str) -> Result<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parent = std::path::Path::new(path).parent();
    if let Some(parent) = parent.filter(|p| path != ":memory:" && !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).context("Failed to create the data directory")?;
    }
    let mode = if query.contains("mode=") {
        ""
    } else {
        "mode=rwc"
    };
    let sep = if query.is_empty() || mode.is_empty() {
        ""
    } else {
        "&"
    };
    Ok(format!("sqlite://{path}?{query}{sep}{mode}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_asks_for_creation() {
        let dir = std::env::temp_dir().join(format!("pc-{}", uuid::Uuid::new_v4()));
        let file = dir.join("x.db");
        let url = sqlite_url(&format!("sqlite://{}", file.display())).ok();
        assert_eq!(url, Some(format!("sqlite://{}?mode=rwc", file.display())));
        assert!(dir.is_dir());
        let _ = std::fs::remove_dir_all(dir);
    }
}
