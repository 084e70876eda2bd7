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
    /// SQLite: the connection that checkpoints the WAL in the background (see [`checkpoints`]).
    checkpointer: Option<AnyPool>,
    backend: Backend,
}

/// How often the background checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL size (pages) at which a committing writer checkpoints itself — a backstop for when the
/// background checkpointer falls behind; SQLite's default is 1 000.
const WRITER_CHECKPOINT_PAGES: i64 = 8_000;

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`] on its own connection
/// (PASSIVE: it never waits for, or blocks, readers and the writer). Left to SQLite, the commit
/// that crosses 1 000 WAL pages runs the checkpoint itself — copies and two fsyncs while every
/// writer queued behind it waits, which shows as the p99 of token issuance. Ends when `pool`
/// closes.
async fn checkpoints(pool: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        tick.tick().await;
        if let Err(e) = sqlx::query("pragma wal_checkpoint(passive)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                break;
            }
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
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

        let (pool, writer, checkpointer) = match backend {
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
                                conn.execute(sqlx::AssertSqlSafe(format!(
                                    "pragma wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}"
                                )))
                                .await?;
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
                let checkpointer = options(1)
                    .connect(&url)
                    .await
                    .context("Failed to open the SQLite database")?;
                tokio::spawn(checkpoints(checkpointer.clone()));
                (readers, writer, Some(checkpointer))
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .context("Failed to connect to PostgreSQL")?;
                (pool.clone(), pool, None)
            }
        };
        Ok(Self {
            pool,
            writer,
            checkpointer,
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
        if let Some(c) = &self.checkpointer {
            c.close().await;
        }
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

    /// Rows of `sql` as text, to compare a table before and after a migration.
    async fn dump(db: &Db, sql: &str) -> Result<Vec<String>> {
        use sqlx::Row;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(db.pool())
            .await
            .context("dump")?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).context("dump column"))
            .collect()
    }

    /// Migrations 0013 and 0014 rebuild audit_event and refresh_token on SQLite: every stored
    /// value survives, `seq` becomes the rowid, and the append-only guards are back.
    #[tokio::test]
    async fn sqlite_table_rebuilds_keep_every_row() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("pc-{}", uuid::Uuid::new_v4()));
        let db = Db::connect(&format!("sqlite://{}", dir.join("m.db").display())).await?;
        SQLITE_MIGRATIONS
            .run_to(12, db.pool())
            .await
            .context("migrate to 12")?;
        let mut conn = db.connection().await?;
        for stmt in [
            "pragma foreign_keys = off".to_owned(),
            "insert into token_family (family_id, application_id, user_id, scope, auth_time, created_at, expires_at) values ('f1', 'a', 'u', 'openid', 1, 1, 2)"
                .to_owned(),
            "insert into refresh_token values ('h1', 'f1', 1, 2, null), ('h2', 'f1', 3, 4, 5)"
                .to_owned(),
        ]
        .into_iter()
        .chain((1..=300).map(|i| {
            format!(
                "insert into audit_event values ({i}, 'e{i}', 'token.issued', 'success', \
                 'client', 'c', null, 'application', 'a{}', '10.0.0.1', 'ua \"q\"', 'r', \
                 '{{\"n\":{i}}}', {}, 'p{i}', 'h{i}', {}, 'a{}', {})",
                i % 7,
                1_700_000_000_000_i64 + i,
                if i % 2 == 0 { "'sign_in'" } else { "null" },
                i % 7,
                if i % 3 == 0 { "'u'" } else { "null" },
            )
        })) {
            sqlx::query(sqlx::AssertSqlSafe(stmt))
                .execute(&mut *conn)
                .await
                .context("seed")?;
        }
        drop(conn);
        let audit = "select json_array(seq, event_id, event, outcome, actor_type, actor_id, \
             actor_label, target_type, target_id, ip, user_agent, request_id, detail, created_at, \
             prev_hash, hash, category, application_id, user_id) from audit_event order by seq";
        let tokens = "select json_array(token_hash, family_id, created_at, expires_at, used_at) \
             from refresh_token order by token_hash";
        let (audit_before, tokens_before) = (dump(&db, audit).await?, dump(&db, tokens).await?);
        assert_eq!(audit_before.len(), 300);
        db.migrate().await?;
        assert_eq!(dump(&db, audit).await?, audit_before);
        assert_eq!(dump(&db, tokens).await?, tokens_before);
        // seq is the rowid now; refresh_token has none.
        assert_eq!(
            dump(
                &db,
                "select cast(count(*) as text) from audit_event where rowid = seq"
            )
            .await?,
            ["300"]
        );
        let no_rowid = sqlx::query("select rowid from refresh_token")
            .fetch_all(db.pool())
            .await;
        assert!(no_rowid.is_err());
        // The guards: no update, no delete of an event no checkpoint covers.
        for stmt in [
            "update audit_event set event = 'x' where seq = 5",
            "delete from audit_event where seq = 5",
        ] {
            let refused = sqlx::query(stmt).execute(db.writer()).await;
            assert!(refused.is_err(), "{stmt} was allowed");
        }
        // The filters' indexes are back.
        let indexes = dump(
            &db,
            "select name from sqlite_master where type = 'index' and tbl_name = 'audit_event' \
             and sql is not null order by name",
        )
        .await?;
        assert_eq!(
            indexes,
            [
                "audit_event_application_idx",
                "audit_event_category_idx",
                "audit_event_created_idx",
                "audit_event_target_idx",
                "audit_event_user_idx"
            ]
        );
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }
}
