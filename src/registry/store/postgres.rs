//! The PostgreSQL engine: several registry replicas over one database.
//!
//! The store's code is the same as on SQLite (see `sql.rs`); what differs is how a transaction
//! begins:
//!
//! - **Writes are serialised across every replica** by one transaction-scoped advisory lock
//!   taken first in each write transaction, which is what SQLite's single writer gave: the
//!   audit chain reads its head and appends under it (it never forks), the change feed's
//!   counter is taken and committed in the same order (a reader's cursor can never pass a
//!   change that commits later), and review-item ids stay contiguous per snapshot. The lock is
//!   released at commit or rollback; a replica that dies releases it with its connection.
//! - **Reads** run at REPEATABLE READ, READ ONLY: one consistent snapshot per call, as a
//!   SQLite read transaction.
//! - **Migrations** run at start under a session advisory lock, so that replicas starting
//!   together migrate once; `schema_migrations` records each.

use std::time::Duration;

use super::sql::{self, PgConn, Tx};
use super::{StoreError, StoreResult};

/// The schema, one file per version under `migrations/postgres/`. Never edit a shipped file;
/// append a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/01_schema.sql"),
    include_str!("migrations/postgres/02_token_digest.sql"),
];

/// The schema version this build writes on PostgreSQL.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Advisory lock keys (PostgreSQL's one 64-bit key space per database): "stewardW", "stewardM",
/// each mixed with the schema's name, so that registries in two schemas of one database (set by
/// `?options=-csearch_path%3DNAME` in the URL) never wait for each other.
const WRITE_LOCK: i64 = 0x7374_6577_6172_6457;
const MIGRATE_LOCK: i64 = 0x7374_6577_6172_644d;

pub(super) fn lock_key(key: i64) -> String {
    format!("hashtextextended(current_schema(), {key})")
}

/// Connections per replica: writers queue on the advisory lock anyway; readers and the
/// token service's point reads use the rest.
const POOL_SIZE: u32 = 12;

/// How long a replica waits for a pooled connection before answering "busy".
const POOL_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct PgDatabase {
    pool: r2d2::Pool<Manager>,
    display_url: String,
    /// For connections outside the pool (the replica follower, the Shared Signals lock).
    config: tokio_postgres::Config,
}

struct Manager {
    config: tokio_postgres::Config,
}

/// The runtime that drives every PostgreSQL connection of this process (their sockets), so that
/// store calls can wait for the database from any thread (see `sql::wait`).
pub(super) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("steward-postgres")
            .enable_all()
            .build()
            .expect("start the PostgreSQL connections' runtime")
    })
}

/// Opens one connection and leaves it driven by [`runtime`].
fn open(config: &tokio_postgres::Config) -> Result<PgConn, tokio_postgres::Error> {
    let config = config.clone();
    let (client, connection) =
        sql::wait(runtime().spawn(async move { config.connect(tokio_postgres::NoTls).await }))
            .expect("the PostgreSQL runtime runs")?;
    runtime().spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %sql::Error::Postgres(e), "a PostgreSQL connection ended");
        }
    });
    Ok(PgConn::new(client))
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = tokio_postgres::Error;

    fn connect(&self) -> Result<PgConn, tokio_postgres::Error> {
        open(&self.config)
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), tokio_postgres::Error> {
        sql::wait(conn.client.simple_query("")).map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// A connection of its own, outside the pool, for `LISTEN` (the replica follower, the Shared
/// Signals link): its notifications arrive on `notifications`, which ends when the connection
/// does; its socket is driven, on the current runtime, until this is dropped.
pub(super) struct Listening {
    pub client: tokio_postgres::Client,
    pub notifications: tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    driver: tokio::task::JoinHandle<()>,
}

impl Listening {
    pub async fn connect(
        config: &tokio_postgres::Config,
    ) -> Result<Listening, tokio_postgres::Error> {
        use futures::StreamExt;
        let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
        let (sender, notifications) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = message
                    && sender.send(n).is_err()
                {
                    return;
                }
            }
        });
        Ok(Listening {
            client,
            notifications,
            driver,
        })
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl PgDatabase {
    /// Connects, migrates (once across replicas) and opens the pool.
    pub fn connect(url: &str) -> StoreResult<PgDatabase> {
        let display_url = redact(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Invalid {
            code: "bad_database_url",
            message: format!("{display_url} is not a PostgreSQL URL: {e}"),
        })?;
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // The operator's name wins (`?application_name=` tells replicas apart in pg_stat_activity).
        if config.get_application_name().is_none() {
            config.application_name("steward");
        }
        // PostgreSQL's notices ("already exists, skipping") are not the operator's business.
        let options = format!(
            "{} -c client_min_messages=warning",
            config.get_options().unwrap_or_default()
        );
        config.options(options.trim());
        let unreachable = |e: tokio_postgres::Error| {
            StoreError::Busy(format!(
                "cannot reach PostgreSQL at {display_url}: {}",
                sql::Error::Postgres(e)
            ))
        };
        let mut first = open(&config).map_err(unreachable)?;
        migrate(&mut first.client, &display_url)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(2))
            .connection_timeout(POOL_WAIT)
            .build(Manager {
                config: config.clone(),
            })
            .map_err(|e| {
                StoreError::Busy(format!("cannot reach PostgreSQL at {display_url}: {e}"))
            })?;
        Ok(PgDatabase {
            pool,
            display_url,
            config,
        })
    }

    /// The connection settings, for a connection of its own outside the pool.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    pub fn connections_open(&self) -> usize {
        self.pool.state().connections as usize
    }

    fn conn(&self) -> StoreResult<r2d2::PooledConnection<Manager>> {
        self.pool.get().map_err(|e| {
            StoreError::Busy(format!(
                "no connection to PostgreSQL at {} is free or can be made: {e}",
                self.display_url
            ))
        })
    }

    /// One write transaction, serialised with every other replica's writes.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        conn.in_transaction(
            &format!(
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; \
                 SELECT pg_advisory_xact_lock({})",
                lock_key(WRITE_LOCK)
            ),
            f,
        )
    }

    /// One write transaction outside the replicas' order (see `SqliteStore::write_unserialised`).
    pub fn write_unserialised<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.conn()?;
        conn.in_transaction("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", f)
    }

    /// One read over a consistent snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        conn.in_transaction(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            f,
        )
    }
}

/// Applies pending migrations, holding the migration lock so that only one replica does.
fn migrate(client: &mut tokio_postgres::Client, display_url: &str) -> StoreResult<()> {
    use sql::wait;
    let failed = |e: tokio_postgres::Error| {
        StoreError::Internal(format!("{display_url}: {}", sql::Error::Postgres(e)))
    };
    wait(client.batch_execute(&format!(
        "SELECT pg_advisory_lock({})",
        lock_key(MIGRATE_LOCK)
    )))
    .map_err(failed)?;
    let result = (|| -> StoreResult<()> {
        wait(client.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        ))
        .map_err(failed)?;
        let version: i64 = wait(client.query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
            &[],
        ))
        .map_err(failed)?
        .get(0);
        if version > PG_SCHEMA_VERSION {
            return Err(StoreError::Invalid {
                code: "schema_too_new",
                message: format!(
                    "{display_url} has schema version {version}, newer than this steward \
                     understands ({PG_SCHEMA_VERSION}); upgrade steward"
                ),
            });
        }
        if version == 0 {
            // A database without our table of migrations must hold no other tables of ours.
            let tables: i64 = wait(client.query_one(
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'",
                &[],
            ))
            .map_err(failed)?
            .get(0);
            if tables > 0 {
                return Err(StoreError::Invalid {
                    code: "not_a_steward_database",
                    message: format!("{display_url} already has tables but is not a Steward store"),
                });
            }
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let next = i as i64 + 1;
            let tx = wait(client.transaction()).map_err(failed)?;
            wait(tx.batch_execute(migration)).map_err(failed)?;
            wait(tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&next, &chrono::Utc::now().to_rfc3339()],
            ))
            .map_err(failed)?;
            wait(tx.commit()).map_err(failed)?;
            tracing::info!(version = next, "migrated the PostgreSQL schema");
        }
        Ok(())
    })();
    let _ = wait(client.batch_execute(&format!(
        "SELECT pg_advisory_unlock({})",
        lock_key(MIGRATE_LOCK)
    )));
    result
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/steward"),
            "postgres://app:***@db.example:5432/steward"
        );
        assert_eq!(
            redact("postgres://app@db.example/steward"),
            "postgres://app@db.example/steward"
        );
        assert_eq!(redact("postgres:///steward"), "postgres:///steward");
    }
}
