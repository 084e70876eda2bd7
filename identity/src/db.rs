//! The storage seam. One code path for SQLite and PostgreSQL through sqlx's `Any` driver: queries are
//! written in the portable subset (numbered `$n` parameters, `returning`, text ids, bigint times) and
//! each database has its own migrations folder. See docs/design/storage.md.

use crate::error::{Context, Result};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
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
    /// SQLite: the connection that checkpoints the WAL in the background (see [`checkpoints`]),
    /// and what it saw.
    checkpointer: Option<(AnyPool, Arc<WalCounters>)>,
    backend: Backend,
}

/// How often the background checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL size (pages of 4 KiB) past which the background checkpointer makes the log start over
/// (see [`checkpoints`]).
const RESTART_PAGES: i64 = 2_000;
/// How long a RESTART checkpoint waits for the readers of older snapshots, holding the write
/// lock; when they take longer (a long audit search), it gives up until the next tick.
const RESTART_WAIT_MS: u32 = 3;
/// WAL size (pages) at which a committing writer checkpoints itself — a backstop for when the
/// background checkpointer falls behind; SQLite's default is 1 000.
const WRITER_CHECKPOINT_PAGES: i64 = 8_000;
/// How long a SQLite connection waits for a lock another process holds.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// The `(busy, log, checkpointed)` row of `pragma wal_checkpoint`.
type CheckpointRow = (i64, i64, i64);

/// What the background checkpointer saw (SQLite), for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// PASSIVE passes run.
    pub checkpoints: u64,
    /// RESTART checkpoints that let the log start over.
    pub restarts: u64,
    /// WAL size (pages) at the last pass.
    pub pages: u64,
    /// The largest WAL size a pass has seen.
    pub max_pages: u64,
}

#[derive(Debug, Default)]
struct WalCounters {
    checkpoints: AtomicU64,
    restarts: AtomicU64,
    pages: AtomicU64,
    max_pages: AtomicU64,
}

impl WalCounters {
    fn passed(&self, log: i64) {
        let log = u64::try_from(log).unwrap_or(0);
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.pages.store(log, Ordering::Relaxed);
        self.max_pages.fetch_max(log, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WalStats {
        WalStats {
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            pages: self.pages.load(Ordering::Relaxed),
            max_pages: self.max_pages.load(Ordering::Relaxed),
        }
    }
}

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`] on its own connection.
///
/// Left to SQLite, the commit that crosses 1 000 WAL pages runs the checkpoint itself — copies and
/// two fsyncs while every writer queued behind it waits, which shows as the p99 of token issuance.
/// So the copying happens here, PASSIVE: it never waits for, or blocks, readers and the writer.
///
/// A PASSIVE pass alone cannot bound the WAL under continuous load: SQLite writes the log from its
/// start again only when a write begins with every frame copied back and no reader on an older
/// snapshot — and with commits every few hundred microseconds and reads always in flight, that
/// moment never comes. The log then grows to the writer's backstop, where commits checkpoint
/// (and fsync) again, and p99 rises several-fold until the load stops. Past [`RESTART_PAGES`],
/// the checkpointer therefore runs a RESTART checkpoint (see [`restart_log`]).
/// Ends when `checkpointer` closes.
async fn checkpoints(checkpointer: AnyPool, writer: AnyPool, seen: Arc<WalCounters>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !checkpointer.is_closed() {
        tick.tick().await;
        let passive = sqlx::query_as::<_, CheckpointRow>("pragma wal_checkpoint(passive)")
            .fetch_one(&checkpointer)
            .await;
        let outcome = match passive {
            Ok((_, log, _)) => {
                seen.passed(log);
                if log < RESTART_PAGES {
                    continue;
                }
                restart_log(&writer).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok((busy, log, copied)) => {
                if busy == 0 {
                    seen.restarts.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(busy, log, copied, "WAL restart checkpoint")
            }
            Err(_) if checkpointer.is_closed() || writer.is_closed() => break,
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// A RESTART checkpoint, run on the writer connection in its turn (so it never meets our writer in
/// SQLite's busy handler, which sleeps in steps of up to 100 ms): it copies the little the PASSIVE
/// pass left, waits up to [`RESTART_WAIT_MS`] for the readers of older snapshots (new readers read
/// the database file), and the next commit writes the log from its start.
async fn restart_log(writer: &AnyPool) -> std::result::Result<CheckpointRow, sqlx::Error> {
    use sqlx::Executor;
    let mut conn = writer.acquire().await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "pragma busy_timeout = {RESTART_WAIT_MS}"
    )))
    .await?;
    let row = sqlx::query_as("pragma wal_checkpoint(restart)")
        .fetch_one(&mut *conn)
        .await;
    let restored = conn
        .execute(sqlx::AssertSqlSafe(format!(
            "pragma busy_timeout = {BUSY_TIMEOUT_MS}"
        )))
        .await;
    if restored.is_err() {
        // Never hand the writer back with the short timeout.
        conn.close_on_drop();
    }
    row
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
                                conn.execute(sqlx::AssertSqlSafe(format!(
                                    "pragma busy_timeout = {BUSY_TIMEOUT_MS}"
                                )))
                                .await?;
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
                let seen = Arc::new(WalCounters::default());
                tokio::spawn(checkpoints(
                    checkpointer.clone(),
                    writer.clone(),
                    seen.clone(),
                ));
                (readers, writer, Some((checkpointer, seen)))
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

    /// SQLite: what the background checkpointer saw.
    pub fn wal_stats(&self) -> Option<WalStats> {
        self.checkpointer.as_ref().map(|(_, seen)| seen.snapshot())
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
        if let Some((c, _)) = &self.checkpointer {
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

    /// Writes that never pause, with reads always in flight: a PASSIVE checkpoint alone never lets
    /// the WAL start over (it would grow to the writer's backstop and stay there); the background
    /// checkpointer's RESTART passes keep it far below that.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_continuous_writes() -> Result<()> {
        use std::sync::atomic::AtomicBool;
        let dir = std::env::temp_dir().join(format!("pc-{}", uuid::Uuid::new_v4()));
        let db = Db::connect(&format!("sqlite://{}", dir.join("w.db").display())).await?;
        sqlx::query("create table filler (id integer primary key, body blob not null)")
            .execute(db.writer())
            .await
            .context("create filler")?;
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (db, stop) = (db.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = sqlx::query("select max(id) from filler")
                            .fetch_one(db.pool())
                            .await;
                    }
                })
            })
            .collect();
        // Each transaction adds a page of its own (4 000 bytes do not share a leaf): twice the
        // backstop in frames, one small commit after another.
        let mut commits = 0;
        while commits < 2 * WRITER_CHECKPOINT_PAGES {
            let mut tx = db.begin().await?;
            sqlx::query("insert into filler (body) values (randomblob(4000))")
                .execute(&mut *tx)
                .await
                .context("insert filler")?;
            tx.commit().await.context("commit filler")?;
            commits += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            let _ = r.await;
        }
        let wal = db.wal_stats().expect("SQLite has a checkpointer");
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
        assert!(wal.restarts > 0, "the log never started over: {wal:?}");
        // Without the RESTART passes it reaches the backstop (7 971 pages seen).
        assert!(
            wal.max_pages < u64::try_from(2 * RESTART_PAGES).unwrap_or(0),
            "the WAL grew towards the writer's backstop: {wal:?}"
        );
        Ok(())
    }
}
