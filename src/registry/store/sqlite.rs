//! The store's implementation, written once for both engines (see `sql.rs`), and its SQLite
//! engine: one file, WAL, one writer connection and a few readers. The name is older than the
//! PostgreSQL engine (`postgres.rs`); the code under it serves both.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};

use super::{AgentFacts, CredentialMaterial, Store, StoreError, StoreResult};

use crate::model::audit::{GENESIS_HASH, audit_time, event_hash};

use crate::model::{
    Actor, Agent, AgentKind, AgentSource, AgentStatus, AuditEvent, Credential, CredentialKind,
    Grant, Person, Role,
};
use crate::registry::clock::Clock;
use crate::registry::tokens::live::{
    self, ConsumedAssertion, LiveTokens, Refusals, TokenKind, TokenRecord,
};

/// The schema, one file per version under `migrations/sqlite/`. Never edit a shipped file;
/// append a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/01_people_agents_audit.sql"),
    include_str!("migrations/sqlite/02_token_service.sql"),
    include_str!("migrations/sqlite/03_reviews.sql"),
    include_str!("migrations/sqlite/04_people_email_index.sql"),
    include_str!("migrations/sqlite/05_catalogue_requests_upgrade.sql"),
    include_str!("migrations/sqlite/06_delegations_lineage.sql"),
    include_str!("migrations/sqlite/07_staged_signing_keys.sql"),
    include_str!("migrations/sqlite/08_campaign_work_steps.sql"),
    include_str!("migrations/sqlite/09_resource_credentials.sql"),
    include_str!("migrations/sqlite/10_timeline_indexes.sql"),
    include_str!("migrations/sqlite/11_owner_index_agent_search.sql"),
    include_str!("migrations/sqlite/12_leavers_succession.sql"),
    include_str!("migrations/sqlite/13_shared_signals.sql"),
    include_str!("migrations/sqlite/14_activity_flags.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Pooled reader connections for ordinary (possibly long) reads, and for short point reads
/// (API-token lookups, one agent) that must never queue behind bulk pages.
pub(super) const READERS: usize = 4;
pub(super) const POINT_READERS: usize = 2;

/// Most enabled credentials per agent (an assertion without a kid is tried against each).
pub const MAX_ENABLED_CREDENTIALS: i64 = 10;

#[path = "sqlite_perimeter.rs"]
pub(super) mod perimeter;
#[path = "sqlite_scopes.rs"]
pub(super) mod scopes;
#[path = "sqlite_timeline.rs"]
pub(super) mod timeline;

// The brake (revoke over the tree, reinstate, decommission, re-enabling credentials).
#[path = "sqlite_brake.rs"]
pub(super) mod brake;
// Delegations and API-token lineage, likewise.
#[path = "sqlite_api_tokens.rs"]
pub(super) mod api_tokens;
#[path = "sqlite_delegations.rs"]
pub(super) mod delegations;
// Owner succession, handovers and owner candidates.
#[path = "sqlite_ownership.rs"]
pub(super) mod ownership;

#[path = "sqlite_catalogue.rs"]
pub(super) mod catalogue;
#[path = "sqlite_resource_credentials.rs"]
pub(super) mod resource_credentials;

#[path = "sqlite_activity.rs"]
pub(super) mod activity;
#[path = "sqlite_flags.rs"]
pub(super) mod flags;

#[path = "sqlite_approvals.rs"]
pub(super) mod approvals;

// Writer turns (urgent first), bounded reader pools, the background checkpointer, hold times.
#[path = "sqlite_pool.rs"]
pub mod pool;

#[path = "sqlite_streams.rs"]
pub(super) mod streams;

// Bulk seeding: the text index filled once after the last batch.
/// Replicas over PostgreSQL hear each other's changes.
#[path = "replication.rs"]
pub(super) mod replication;
#[path = "sqlite_seed.rs"]
pub(super) mod seed;

// The token facts' in-memory copy, invalidated by every write (see its notes).
#[path = "sqlite_facts.rs"]
pub mod facts;

// Online backup and restore.
#[path = "sqlite_backup.rs"]
pub mod backup;

pub struct SqliteStore {
    /// The database underneath: a SQLite file, or a PostgreSQL database shared by replicas.
    pub(super) engine: Engine,
    /// Who writes next (the brake first); long work steps aside while anyone waits.
    pub(super) gate: pool::WriterGate,
    writer_stats: pool::WriterStats,
    /// API tokens whose `last_used_at` this process wrote lately (see `pool::TouchFilter`).
    touches: pool::TouchFilter,
    /// The token service's in-memory index, kept in step with `issued_tokens` (see tokens::live).
    pub(super) live: Arc<LiveTokens>,
    /// The catalogue's scopes, replaced as a whole after each import (see `CatalogueStore`).
    pub(super) catalogue: Arc<std::sync::RwLock<Arc<catalogue::ScopeIndex>>>,
    /// Agents' token facts and exchange subjects, as of the last write (see `facts`).
    pub(super) facts: Arc<facts::FactsCache>,
    /// On PostgreSQL: this replica's name, the channel its writes are published on, and the
    /// follower applying the other replicas' (see `replication`).
    replica: Option<Replica>,
    /// Serialises long campaign work (snapshots keep one contiguous item-id range each).
    pub(super) long_work: Mutex<()>,
    /// What time it is for every record and decision (see registry/clock.rs).
    pub(super) clock: Clock,
}

/// A PostgreSQL replica's part in sharing changes (see `replication`).
struct Replica {
    name: String,
    channel: String,
    _follower: replication::Follower,
}

/// The engine a store runs on (one per store, made once: the size difference does not matter).
#[allow(clippy::large_enum_variant)]
pub(super) enum Engine {
    Sqlite(SqliteFile),
    Postgres(super::postgres::PgDatabase),
}

/// One SQLite file: one writer connection, pooled readers, a background checkpointer.
pub(super) struct SqliteFile {
    /// First, so that it stops before the other connections close.
    checkpointer: pool::Checkpointer,
    path: PathBuf,
    pub(super) writer: Mutex<Connection>,
    readers: pool::ReaderPool,
    point_readers: pool::ReaderPool,
}

/// Whether opening may create a new, empty store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    CreateIfMissing,
    MustExist,
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    audit_time(t)
}

pub(super) fn parse_ts(text: &str) -> sql::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| sql::Error::conversion(e.to_string()))
}

pub(super) fn parse_opt_ts(text: Option<String>) -> sql::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

pub(super) fn bad_value(what: &str, value: &str) -> sql::Error {
    sql::Error::conversion(format!("unknown {what} {value:?} in the database"))
}

pub(super) fn map_sqlite(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Busy(
                    "the database is locked by another process; try again shortly".into(),
                );
            }
            ErrorCode::NotADatabase => {
                return StoreError::Internal("the database file is not a SQLite database".into());
            }
            ErrorCode::ReadOnly => {
                return StoreError::Internal("the database file is read-only".into());
            }
            ErrorCode::DiskFull => {
                return StoreError::Internal("the disk holding the database is full".into());
            }
            // A rule the service layer should have caught first: the caller learns that the
            // change conflicts, the log keeps the constraint's name (never the caller's text).
            ErrorCode::ConstraintViolation => {
                tracing::warn!(
                    constraint = %msg.clone().unwrap_or_else(|| e.to_string()),
                    "a write broke a database constraint"
                );
                return StoreError::Conflict(
                    "the change conflicts with a record that already exists".into(),
                );
            }
            _ => {}
        }
    }
    StoreError::Internal(format!("database error: {e}"))
}

/// PostgreSQL's refusals in the store's terms (SQLSTATE classes: 23 integrity, 40 transaction
/// rollback, 53 insufficient resources, 57 operator intervention, 08 connection).
pub(super) fn map_postgres(e: tokio_postgres::Error) -> StoreError {
    let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
    match code.get(..2).unwrap_or("") {
        "23" => {
            tracing::warn!(error = %super::sql::Error::Postgres(e), "a write broke a database constraint");
            StoreError::Conflict("the change conflicts with a record that already exists".into())
        }
        "40" | "53" | "57" => StoreError::Busy("the database is busy; try again shortly".into()),
        "08" => StoreError::Busy("the database cannot be reached; try again shortly".into()),
        _ if e.is_closed() => {
            StoreError::Busy("the database cannot be reached; try again shortly".into())
        }
        _ => StoreError::Internal(format!(
            "database error: {}",
            super::sql::Error::Postgres(e)
        )),
    }
}

impl From<super::sql::Error> for StoreError {
    fn from(e: super::sql::Error) -> Self {
        match e {
            super::sql::Error::Sqlite(e) => map_sqlite(e),
            super::sql::Error::Postgres(e) => map_postgres(e),
            e @ super::sql::Error::Statement { .. } => {
                StoreError::Internal(format!("database error: {e}"))
            }
            other => StoreError::Internal(format!("database error: {other}")),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        map_sqlite(e)
    }
}

pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: an acknowledged write survives a crash of the process and of the machine.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Whether a write's commit waits for the disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    Durable,
    /// Made durable by the next durable commit (see [`SqliteStore::write_step`]).
    Deferred,
}

/// `synchronous = NORMAL` on the writer for one transaction: in WAL mode its commit appends
/// to the log without syncing it. Set back to FULL when dropped, after the commit.
struct DeferredCommit<'c>(&'c Connection);

impl<'c> DeferredCommit<'c> {
    fn start(conn: &'c Connection) -> StoreResult<DeferredCommit<'c>> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(DeferredCommit(conn))
    }
}

impl Drop for DeferredCommit<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.pragma_update(None, "synchronous", "FULL") {
            tracing::error!(error = %e, "the writer could not return to synchronous = FULL");
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`, applying pending migrations.
    pub fn open(path: &Path, mode: OpenMode) -> StoreResult<SqliteStore> {
        SqliteStore::open_with_clock(path, mode, Clock::system())
    }

    /// [`open`](Self::open) with the clock the registry decides and records by (tests and
    /// embedders; see registry/clock.rs).
    pub fn open_with_clock(path: &Path, mode: OpenMode, clock: Clock) -> StoreResult<SqliteStore> {
        let exists = path.exists();
        if !exists {
            if mode == OpenMode::MustExist {
                return Err(StoreError::NotFound(format!(
                    "no database at {}; start `steward server --db {}` to create one",
                    path.display(),
                    path.display()
                )));
            }
            match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                    return Err(StoreError::NotFound(format!(
                        "cannot create the database {}: the folder {} does not exist",
                        path.display(),
                        dir.display()
                    )));
                }
                _ => {}
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer =
            Connection::open_with_flags(path, flags).map_err(|e| describe_open(path, e))?;
        writer
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| describe_open(path, e))?;
        // Only reads until the file is known to be ours: a newer store or someone else's
        // database must be left exactly as it was found (switching to WAL rewrites the header).
        let version = check_schema(&writer, path)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| describe_open(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Internal(format!(
                "{} cannot use write-ahead logging (journal mode stays {mode})",
                path.display()
            )));
        }
        configure(&writer).map_err(|e| describe_open(path, e))?;
        // The writer never checkpoints (a checkpoint copies the log into the file and syncs it,
        // on the path of whichever write crossed the threshold); the background checkpointer
        // does. After a checkpoint has emptied it, the log is cut back to 256 MiB.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .and_then(|()| writer.pragma_update(None, "journal_size_limit", pool::LONG_LOG_BYTES))
            .map_err(|e| describe_open(path, e))?;
        migrate(&writer, path, version)?;
        // A bulk seed cut short leaves the text index without its trigger: restore both.
        seed::repair_text_index(&Tx::sqlite(&writer)).map_err(|e| describe_open(path, e))?;
        #[cfg(unix)]
        restrict_permissions(path);
        let live = Arc::new(LiveTokens::new());
        clock
            .scope(|| load_live_tokens(&Tx::sqlite(&writer), &live))
            .map_err(|e| describe_open(path, e))?;
        let scopes = catalogue::load_scope_index(&Tx::sqlite(&writer))
            .map_err(|e| describe_open(path, e))?;
        let file = SqliteFile {
            checkpointer: pool::Checkpointer::start(path, pool::LONG_LOG_BYTES),
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: pool::ReaderPool::new(path, READERS, "readers"),
            point_readers: pool::ReaderPool::new(path, POINT_READERS, "point readers"),
        };
        Ok(SqliteStore::with_engine(
            Engine::Sqlite(file),
            live,
            scopes,
            clock,
        ))
    }

    /// Opens the store in a PostgreSQL database (`postgres://USER@HOST/DB`), migrating it
    /// (once, when replicas start together).
    pub fn connect_postgres(url: &str, clock: Clock) -> StoreResult<SqliteStore> {
        let db = super::postgres::PgDatabase::connect(url)?;
        db.write(|tx| Ok(seed::repair_text_index(tx)?))?;
        let channel = db.read(replication::channel_of)?;
        let mut store = SqliteStore::with_engine(
            Engine::Postgres(db.clone()),
            Arc::new(LiveTokens::new()),
            catalogue::ScopeIndex::new(),
            clock.clone(),
        );
        let name = format!("{:016x}", rand::random::<u64>());
        // Listens first, then loads: nothing another replica commits in between is missed.
        let follower = replication::follow(
            &db,
            channel.clone(),
            replication::Followed {
                replica: name.clone(),
                live: store.live.clone(),
                facts: store.facts.clone(),
                catalogue: store.catalogue.clone(),
                clock,
            },
            std::time::Duration::from_secs(30),
        )?;
        store.replica = Some(Replica {
            name,
            channel,
            _follower: follower,
        });
        Ok(store)
    }

    pub(super) fn with_engine(
        engine: Engine,
        live: Arc<LiveTokens>,
        scopes: catalogue::ScopeIndex,
        clock: Clock,
    ) -> SqliteStore {
        SqliteStore {
            engine,
            gate: pool::WriterGate::new(),
            writer_stats: pool::WriterStats::new(),
            touches: pool::TouchFilter::new(),
            live,
            catalogue: Arc::new(std::sync::RwLock::new(Arc::new(scopes))),
            facts: Arc::new(facts::FactsCache::new()),
            replica: None,
            long_work: Mutex::new(()),
            clock,
        }
    }

    /// The SQLite file, or (on PostgreSQL) nothing: the database is not a path.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.engine {
            Engine::Sqlite(file) => Some(&file.path),
            Engine::Postgres(_) => None,
        }
    }

    /// Where the store lives, for messages: a file path, or the database URL without its
    /// password.
    pub fn location(&self) -> String {
        match &self.engine {
            Engine::Sqlite(file) => file.path.display().to_string(),
            Engine::Postgres(db) => db.display_url().to_string(),
        }
    }

    /// Runs `f` in one write transaction, bypassing every rule: for tests that inspect or
    /// deliberately damage the stored rows on either engine. Nothing in the registry calls it.
    #[doc(hidden)]
    pub fn raw_sql<T>(&self, f: impl FnOnce(&Tx<'_>) -> sql::Result<T>) -> sql::Result<T> {
        let mut failure = None;
        let out = self.write(|tx| match f(tx) {
            Ok(v) => Ok(v),
            Err(e) => {
                let message = e.to_string();
                failure = Some(e);
                Err(StoreError::Internal(message))
            }
        });
        match (out, failure) {
            (_, Some(e)) => Err(e),
            (Ok(v), None) => Ok(v),
            (Err(e), None) => Err(sql::Error::conversion(e.to_string())),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// How many agents and people the token facts' in-memory copy holds now, and their size.
    pub fn facts_cache_usage(&self) -> facts::FactsCacheUsage {
        self.facts.usage()
    }

    /// Runs `f` in one immediate (write-locking) transaction, after every urgent write waiting.
    /// Invalidates the token facts' in-memory copy once the transaction has ended, before the
    /// writer is released.
    #[track_caller]
    pub(super) fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.write_turn(
            false,
            true,
            Commit::Durable,
            std::panic::Location::caller(),
            f,
        )
    }

    /// [`write`](Self::write) for one step of long resumable work (a campaign's snapshot and
    /// close steps), committed without waiting for the disk, so that the writer's turn is the
    /// step's work alone and a revoke waits for nothing more (issue 10 item 3). The next
    /// durable commit (any ordinary write, at the latest the work's last one, which alone is
    /// acknowledged) makes it durable with its own: the log is one sequence. A crash can lose
    /// only steps not yet made durable; each moves its cursor with its items, so they are
    /// redone on resume and nothing acknowledged is lost.
    #[track_caller]
    pub(super) fn write_step<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.write_turn(
            false,
            true,
            Commit::Deferred,
            std::panic::Location::caller(),
            f,
        )
    }

    /// Between steps of long work: a checkpoint if the log has grown long (see
    /// [`pool::Checkpointer::catch_up_if_long`]). PostgreSQL checkpoints by itself.
    pub(super) fn checkpoint_if_long(&self) {
        if let Engine::Sqlite(file) = &self.engine {
            file.checkpointer.catch_up_if_long();
        }
    }

    /// [`write`](Self::write) for the few writes that touch no token fact (token records and
    /// their usage columns, the activity record, prunes): the facts' copy stays current.
    #[track_caller]
    pub(super) fn write_keeping_facts<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.write_turn(
            false,
            false,
            Commit::Durable,
            std::panic::Location::caller(),
            f,
        )
    }

    /// Like [`Self::write`], but before every ordinary write already waiting: the brake.
    #[track_caller]
    pub(super) fn write_urgent<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.write_turn(
            true,
            true,
            Commit::Durable,
            std::panic::Location::caller(),
            f,
        )
    }

    pub(super) fn write_turn<T>(
        &self,
        urgent: bool,
        touches_facts: bool,
        commit: Commit,
        site: &'static std::panic::Location<'static>,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let asked = std::time::Instant::now();
        let _turn = self.gate.enter(urgent);
        let granted = std::time::Instant::now();
        let out = match &self.engine {
            Engine::Sqlite(file) => (|| {
                let conn = file.writer.lock().map_err(|_| {
                    StoreError::Internal("the writer connection was poisoned".into())
                })?;
                // Dropped after `tx` (committed or rolled back) and before `conn` (the writer).
                let _facts = facts::InvalidateOnDrop(touches_facts.then_some(&self.facts));
                let _deferred = match commit {
                    Commit::Deferred => Some(DeferredCommit::start(&conn)?),
                    Commit::Durable => None,
                };
                let tx = rusqlite::Transaction::new_unchecked(
                    &conn,
                    rusqlite::TransactionBehavior::Immediate,
                )?;
                streams::before_write();
                let out = self.clock.scope(|| f(&Tx::sqlite(&tx)))?;
                tx.commit()?;
                streams::after_commit();
                Ok(out)
            })(),
            Engine::Postgres(db) => {
                let _facts = facts::InvalidateOnDrop(touches_facts.then_some(&self.facts));
                db.write(|tx| {
                    if commit == Commit::Deferred {
                        tx.execute("SET LOCAL synchronous_commit = off", [])?;
                    }
                    streams::before_write();
                    replication::take_catalogue();
                    let (out, changes) = live::recording(|| self.clock.scope(|| f(tx)));
                    let out = out?;
                    // Published inside the transaction: heard by the other replicas at its
                    // commit, never if it rolls back.
                    if let Some(replica) = &self.replica {
                        let notices = replication::notices(
                            &replica.name,
                            touches_facts,
                            replication::take_catalogue(),
                            changes,
                        );
                        replication::publish(tx, &replica.channel, &notices)?;
                    }
                    Ok(out)
                })
                .inspect(|_| streams::after_commit())
            }
        };
        self.writer_stats
            .record(site, granted - asked, granted.elapsed());
        out
    }

    /// A write that needs no place in the writers' order: it touches neither the audit chain
    /// nor the change feed, and its rows' own keys make it atomic (spent assertion ids). On
    /// PostgreSQL it does not wait for the replicas' write lock; on SQLite it is an ordinary
    /// write (there is one writer anyway).
    #[track_caller]
    pub(super) fn write_unserialised<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        match &self.engine {
            Engine::Postgres(db) => self.clock.scope(|| db.write_unserialised(f)),
            Engine::Sqlite(_) => self.write_keeping_facts(f),
        }
    }

    /// Runs `f` over a consistent snapshot on a pooled reader connection (waiting for one
    /// when all are lent).
    pub(super) fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        match &self.engine {
            Engine::Sqlite(file) => self.clock.scope(|| Self::read_on(&file.readers, f)),
            Engine::Postgres(db) => self.clock.scope(|| db.read(f)),
        }
    }

    /// Like [`Self::read`], on the pool kept for short point reads (one row or a few).
    pub(super) fn read_point<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        match &self.engine {
            Engine::Sqlite(file) => self.clock.scope(|| Self::read_on(&file.point_readers, f)),
            Engine::Postgres(db) => self.clock.scope(|| db.read(f)),
        }
    }

    fn read_on<T>(
        pool: &pool::ReaderPool,
        f: impl FnOnce(&Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = pool.get()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
        let out = f(&Tx::sqlite(&tx))?;
        tx.finish()?;
        Ok(out)
    }

    /// How long each call site of the writer waited for it and held it, longest hold first
    /// (for benchmarks; see `pool::WriterStats`).
    pub fn writer_report(&self) -> Vec<pool::WriteSite> {
        self.writer_stats.report()
    }

    /// Forgets the figures of [`Self::writer_report`].
    pub fn reset_writer_report(&self) {
        self.writer_stats.reset()
    }

    /// Reader connections open (ordinary, point): never above their pools' sizes.
    pub fn readers_open(&self) -> (usize, usize) {
        match &self.engine {
            Engine::Sqlite(file) => (file.readers.open(), file.point_readers.open()),
            Engine::Postgres(db) => (db.connections_open(), 0),
        }
    }
}

#[cfg(unix)]
pub(super) fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The store holds token hashes and key material: readable by its owner only. That includes
    // the write-ahead log and its index, which hold recent pages (a signing key's first) and
    // were created before the database file's mode was narrowed. SQLite creates them anew with
    // the database file's mode.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600));
    }
}

pub(super) fn describe_open(path: &Path, e: impl Into<sql::Error>) -> StoreError {
    match StoreError::from(e.into()) {
        StoreError::Internal(m) => StoreError::Internal(format!("{}: {m}", path.display())),
        StoreError::Busy(m) => StoreError::Busy(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Returns the schema version of a Steward store (0 for a new, empty file), refusing files
/// that are newer than this build or are not Steward stores. Writes nothing.
pub(super) fn check_schema(conn: &Connection, path: &Path) -> StoreResult<i64> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| describe_open(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Invalid {
            code: "schema_too_new",
            message: format!(
                "{} has schema version {version}, newer than this steward understands \
                 ({SCHEMA_VERSION}); upgrade steward",
                path.display()
            ),
        });
    }
    if version == 0 {
        // A brand-new file must be empty; anything else is not ours.
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(StoreError::Invalid {
                code: "not_a_steward_database",
                message: format!(
                    "{} is a SQLite database but not a Steward store",
                    path.display()
                ),
            });
        }
    }
    Ok(version)
}

pub(super) fn migrate(conn: &Connection, path: &Path, version: i64) -> StoreResult<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = i as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {next}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            describe_open(path, e)
        })?;
    }
    Ok(())
}

/// Creates a store at `path` with only the first `version` migrations applied, as an older
/// Steward would have left it: for tests of the upgrade path.
#[doc(hidden)]
pub fn create_at_version(path: &Path, version: i64) -> StoreResult<()> {
    let conn = Connection::open(path).map_err(|e| describe_open(path, e))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(|e| describe_open(path, e))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(version as usize) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .map_err(|e| describe_open(path, e))?;
    }
    Ok(())
}

/// Allocates the next position in the change feed.
pub(super) fn next_change(tx: &Tx<'_>) -> StoreResult<i64> {
    Ok(tx.query_row(
        "UPDATE counters SET value = value + 1 WHERE name = 'change_seq' RETURNING value",
        [],
        |r| r.get(0),
    )?)
}

thread_local! {
    /// When set, the time audit events written on this thread carry (see [`at_audit_time`]).
    static AUDIT_CLOCK: std::cell::Cell<Option<DateTime<Utc>>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with audit events dated `at`: a decision recorded for the time it was made (the
/// batch decisions carry their own time), a backfilled registration dated at the agent's
/// creation. Only within one store call on the calling thread.
pub(super) fn at_audit_time<T>(at: DateTime<Utc>, f: impl FnOnce() -> T) -> T {
    let before = AUDIT_CLOCK.with(|c| c.replace(Some(at)));
    let out = f();
    AUDIT_CLOCK.with(|c| c.set(before));
    out
}

/// Appends one audit event linked to the previous one; returns its sequence number.
pub(super) fn append_audit(
    tx: &Tx<'_>,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    outcome: &str,
    reason: Option<&str>,
    details: &serde_json::Value,
) -> StoreResult<i64> {
    let (last_seq, prev_hash): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS_HASH.to_string()));
    let seq = last_seq + 1;
    let time = audit_time(AUDIT_CLOCK.with(|c| c.get()).unwrap_or_else(store_now));
    let hash = event_hash(
        seq, &time, actor, action, target, outcome, reason, details, &prev_hash,
    );
    let actor_json =
        serde_json::to_string(actor).map_err(|e| StoreError::Internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO audit_events (seq, time, actor, actor_id, action, target, outcome, reason, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            seq,
            time,
            actor_json,
            actor.id,
            action,
            target,
            outcome,
            reason,
            details.to_string(),
            prev_hash,
            hash
        ],
    )?;
    // An action that ends access gets its outbox row in this same transaction.
    streams::outbox_on_audit(tx, seq, actor, action, target, outcome, reason, details)?;
    Ok(seq)
}

pub(super) const PERSON_COLUMNS: &str = "p.id, p.email, p.display_name, p.roles, p.active, m.email, p.team, p.created_at, p.change_seq, p.left_at";

pub(super) fn person_from_row(r: &Row<'_>) -> sql::Result<Person> {
    let roles: String = r.get(3)?;
    Ok(Person {
        id: r.get(0)?,
        email: r.get(1)?,
        display_name: r.get(2)?,
        roles: roles.split(',').filter_map(Role::parse).collect(),
        active: r.get(4)?,
        manager: r.get(5)?,
        team: r.get(6)?,
        created_at: parse_ts(&r.get::<_, String>(7)?)?,
        change_seq: r.get(8)?,
        left_at: parse_opt_ts(r.get(9)?)?,
    })
}

pub(super) fn roles_text(roles: &[Role]) -> String {
    let mut roles: Vec<Role> = roles.to_vec();
    roles.sort();
    roles.dedup();
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn person_by_email(tx: &Tx<'_>, email: &str) -> StoreResult<Option<Person>> {
    // Cached: every token exchange looks its person up.
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN people m ON m.id = p.manager_id
             WHERE p.email = ?1 COLLATE NOCASE"
        ))?
        .query_row([email], person_from_row)
        .optional()?)
}

pub(super) fn person_id(tx: &Tx<'_>, email: &str) -> StoreResult<String> {
    tx.query_row(
        "SELECT id FROM people WHERE email = ?1 COLLATE NOCASE",
        [email],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("no person with email {email}")))
}

pub(super) const AGENT_COLUMNS: &str = "a.id, a.name, a.description, a.kind, a.parent_id, o.email, o.display_name,
    a.team, a.environment, a.status, a.source, a.created_at, a.last_seen_at, a.flags, a.change_seq,
    EXISTS (SELECT 1 FROM credentials c WHERE c.agent_id = a.id AND c.kind = 'static-secret' AND c.disabled_at IS NULL),
    CASE WHEN o.active = 0 THEN o.left_at END";

pub(super) const AGENT_FROM: &str = "agents a LEFT JOIN people o ON o.id = a.owner_id";

pub(super) fn agent_from_row(r: &Row<'_>) -> sql::Result<Agent> {
    let kind: String = r.get(3)?;
    let status: String = r.get(9)?;
    let source: String = r.get(10)?;
    let flags: String = r.get(13)?;
    Ok(Agent {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        kind: AgentKind::parse(&kind).ok_or_else(|| bad_value("agent kind", &kind))?,
        parent_id: r.get(4)?,
        owner: r.get(5)?,
        owner_name: r.get(6)?,
        team: r.get(7)?,
        environment: r.get(8)?,
        status: AgentStatus::parse(&status).ok_or_else(|| bad_value("agent status", &status))?,
        source: AgentSource::parse(&source).ok_or_else(|| bad_value("agent source", &source))?,
        created_at: parse_ts(&r.get::<_, String>(11)?)?,
        last_seen_at: parse_opt_ts(r.get(12)?)?,
        flags: flags
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        change_seq: r.get(14)?,
        static_secret: r.get(15)?,
        grants: Vec::new(),
        owner_left_at: parse_opt_ts(r.get(16)?)?,
    })
}

pub(super) fn grants_of(tx: &Tx<'_>, agent_id: &str) -> StoreResult<Vec<Grant>> {
    let mut stmt = tx.prepare_cached(
        "SELECT scope, granted_by, granted_at, expires_at, justification, last_used_at, last_certified_at
         FROM grants WHERE agent_id = ?1 ORDER BY scope",
    )?;
    let rows = stmt.query_map([agent_id], |r| {
        Ok(Grant {
            scope: r.get(0)?,
            granted_by: r.get(1)?,
            granted_at: parse_ts(&r.get::<_, String>(2)?)?,
            expires_at: parse_opt_ts(r.get(3)?)?,
            justification: r.get(4)?,
            last_used_at: parse_opt_ts(r.get(5)?)?,
            last_certified_at: parse_opt_ts(r.get(6)?)?,
        })
    })?;
    Ok(rows.collect::<sql::Result<Vec<_>>>()?)
}

pub(super) fn credentials_of(tx: &Tx<'_>, agent_id: &str) -> StoreResult<Vec<Credential>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, kind, label, fingerprint, created_at, disabled_at, last_used_at
         FROM credentials WHERE agent_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([agent_id], |r| {
        let kind: String = r.get(1)?;
        Ok(Credential {
            id: r.get(0)?,
            kind: CredentialKind::parse(&kind)
                .ok_or_else(|| bad_value("credential kind", &kind))?,
            label: r.get(2)?,
            fingerprint: r.get(3)?,
            created_at: parse_ts(&r.get::<_, String>(4)?)?,
            disabled_at: parse_opt_ts(r.get(5)?)?,
            last_used_at: parse_opt_ts(r.get(6)?)?,
        })
    })?;
    Ok(rows.collect::<sql::Result<Vec<_>>>()?)
}

/// Loads agents matching a WHERE clause, each with its grants.
pub(super) fn load_agents(
    tx: &Tx<'_>,
    where_sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<Agent>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE {where_sql}"
    ))?;
    let mut agents = stmt
        .query_map(params, agent_from_row)?
        .collect::<sql::Result<Vec<_>>>()?;
    for agent in &mut agents {
        agent.grants = grants_of(tx, &agent.id)?;
    }
    Ok(agents)
}

pub(super) fn agent_by_id(tx: &Tx<'_>, id: &str) -> StoreResult<Agent> {
    load_agents(tx, "a.id = ?1", &[&id])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("no agent with id {id}")))
}

pub(super) fn facts(agent: &Agent) -> AgentFacts {
    AgentFacts {
        id: agent.id.clone(),
        owner_email: agent.owner.clone(),
        status: agent.status,
    }
}

pub(super) fn touch_agent(tx: &Tx<'_>, id: &str) -> StoreResult<()> {
    let seq = next_change(tx)?;
    tx.execute(
        "UPDATE agents SET change_seq = ?1 WHERE id = ?2",
        params![seq, id],
    )?;
    Ok(())
}

/// Disables every enabled credential of an agent; returns how many.
pub(super) fn disable_credentials(tx: &Tx<'_>, id: &str, now: &str) -> StoreResult<u32> {
    Ok(tx.execute(
        "UPDATE credentials SET disabled_at = ?1 WHERE agent_id = ?2 AND disabled_at IS NULL",
        params![now, id],
    )? as u32)
}

/// The agent and all its descendants, the agent first (breadth-first).
pub(super) fn subtree(tx: &Tx<'_>, id: &str) -> StoreResult<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "WITH RECURSIVE tree(id, depth) AS (
             SELECT ?1, 0
             UNION ALL
             SELECT a.id, tree.depth + 1 FROM agents a JOIN tree ON a.parent_id = tree.id
         )
         SELECT id FROM tree ORDER BY depth, id",
    )?;
    let ids = stmt
        .query_map([id], |r| r.get(0))?
        .collect::<sql::Result<Vec<String>>>()?;
    Ok(ids)
}

pub(super) fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// An FTS5 query matching `text` as a substring (trigram tokenizer), or None when the text is
/// too short for trigrams (under three characters: the scan with LIMIT stays cheap, since short
/// texts match many agents).
pub(super) fn trigram_phrase(text: &str) -> Option<String> {
    (text.chars().count() >= 3).then(|| format!("\"{}\"", text.replace('"', "\"\"")))
}

pub(super) fn invalid(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        code,
        message: message.into(),
    }
}

pub(super) fn new_id(prefix: &str) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

impl Store for SqliteStore {
    fn schema_version(&self) -> StoreResult<i64> {
        self.read(|tx| match tx.as_sqlite() {
            Some(conn) => Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?),
            None => Ok(
                tx.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })?,
            ),
        })
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// The time by the clock of the store call running on this thread (installed by `write_turn`,
/// `read` and `read_point`), for helpers that see only the transaction. Methods use
/// `self.clock` instead.
pub(super) fn store_now() -> DateTime<Utc> {
    crate::registry::clock::current_now()
}

/// [`store_now`] in seconds since the Unix epoch.
pub(super) fn unix_now() -> i64 {
    store_now().timestamp()
}

pub(super) fn from_unix(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

pub(super) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub(super) fn parse_json_list(text: &str) -> sql::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| sql::Error::conversion(e.to_string()))
}

/// A grant was removed in this transaction: kills the agent's live tokens carrying the scope
/// (and what was exchanged from them) and stores their revocation. Returns how many died.
pub(super) fn kill_grant_tokens(
    tx: &Tx<'_>,
    live: &LiveTokens,
    agent_id: &str,
    scope: &str,
) -> StoreResult<usize> {
    let killed = live.revoke_grant(agent_id, scope, unix_now());
    mark_tokens_revoked(tx, &killed)?;
    Ok(killed.len())
}

/// Stores the revocation of tokens already marked revoked in the live index.
pub(super) fn mark_tokens_revoked(tx: &Tx<'_>, jtis: &[String]) -> StoreResult<()> {
    if jtis.is_empty() {
        return Ok(());
    }
    // Sorted, the inserts walk the index in order.
    let mut sorted = jtis.to_vec();
    sorted.sort_unstable();
    tx.execute(
        "INSERT OR IGNORE INTO token_revocations (jti, revoked_at)
         SELECT value, ?1 FROM json_each(?2)",
        params![unix_now(), json_list(&sorted)],
    )?;
    Ok(())
}

/// Fills the live index from the database: unexpired tokens, blocked agents, spent assertions.
/// The columns [`stored_token`] reads, from `issued_tokens t`.
pub(in crate::registry::store) const STORED_TOKEN_COLUMNS: &str =
    "jti, kind, digest, kid, subject, client_id, actors, parent_jti, scopes, audience,
     may_act, subject_source, client_auth, credential_id, issued_at, expires_at,
     EXISTS (SELECT 1 FROM token_revocations r WHERE r.jti = t.jti),
     api_token_id, delegation_id";

/// A token record as stored, with whether it was revoked (columns: [`STORED_TOKEN_COLUMNS`]).
pub(in crate::registry::store) fn stored_token(r: &Row<'_>) -> sql::Result<(TokenRecord, bool)> {
    let kind: String = r.get(1)?;
    let digest: String = r.get(2)?;
    let digest: [u8; 32] = hex::decode(&digest)
        .ok()
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| bad_value("token digest", &digest))?;
    Ok((
        TokenRecord {
            jti: r.get(0)?,
            kind: TokenKind::parse(&kind).ok_or_else(|| bad_value("token kind", &kind))?,
            digest,
            kid: r.get(3)?,
            subject: r.get(4)?,
            client_id: r.get(5)?,
            actors: parse_json_list(&r.get::<_, String>(6)?)?,
            parent_jti: r.get(7)?,
            scopes: parse_json_list(&r.get::<_, String>(8)?)?,
            audience: parse_json_list(&r.get::<_, String>(9)?)?,
            may_act: r.get(10)?,
            subject_source: r.get(11)?,
            client_auth: r.get(12)?,
            credential_id: r.get(13)?,
            issued_at: r.get(14)?,
            expires_at: r.get(15)?,
            api_token_id: r.get(17)?,
            delegation_id: r.get(18)?,
        },
        r.get::<_, bool>(16)?,
    ))
}

pub(super) fn load_live_tokens(conn: &Tx<'_>, live: &LiveTokens) -> sql::Result<()> {
    let now = unix_now();
    let mut stmt = conn.prepare(&format!(
        "SELECT {STORED_TOKEN_COLUMNS} FROM issued_tokens t WHERE expires_at > ?1 ORDER BY issued_at"
    ))?;
    let tokens = stmt
        .query_map([now], stored_token)?
        .collect::<sql::Result<Vec<_>>>()?;
    let strings = |sql: &str| -> sql::Result<Vec<String>> {
        conn.prepare(sql)?
            .query_map([], |r| r.get(0))?
            .collect::<sql::Result<Vec<String>>>()
    };
    let now_text = ts(store_now());
    let refusals = Refusals {
        blocked_agents: strings("SELECT id FROM agents WHERE status != 'active'")?,
        // Revoked (or redeemed) API tokens and revoked delegations that could still be
        // presented: nothing may come from them again.
        dead_origins: conn
            .prepare(
                "SELECT id FROM api_tokens WHERE revoked_at IS NOT NULL AND expires_at > ?1
                 UNION ALL
                 SELECT id FROM delegations WHERE revoked_at IS NOT NULL AND expires_at > ?1",
            )?
            .query_map([&now_text], |r| r.get(0))?
            .collect::<sql::Result<Vec<String>>>()?,
        left_subjects: strings("SELECT email FROM people WHERE active = 0")?,
    };
    let assertions = conn
        .prepare("SELECT agent_id, jti, expires_at FROM consumed_assertions WHERE expires_at > ?1")?
        .query_map(
            [now - 2 * crate::registry::tokens::live::CLOCK_LEEWAY],
            |r| {
                Ok(ConsumedAssertion {
                    agent_id: r.get(0)?,
                    jti: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            },
        )?
        .collect::<sql::Result<Vec<_>>>()?;
    live.load(tokens, refusals, assertions);
    Ok(())
}

pub(super) fn audit_from_row(r: &Row<'_>) -> sql::Result<AuditEvent> {
    let actor: String = r.get(2)?;
    let details: String = r.get(7)?;
    let json_err = |e: serde_json::Error| sql::Error::conversion(e.to_string());
    Ok(AuditEvent {
        seq: r.get(0)?,
        time: r.get(1)?,
        actor: serde_json::from_str(&actor).map_err(json_err)?,
        action: r.get(3)?,
        target: r.get(4)?,
        outcome: r.get(5)?,
        reason: r.get(6)?,
        details: serde_json::from_str(&details).map_err(json_err)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

/// Splits a list fetched with one extra row into a page and the key of its last item.
pub(super) fn page<T, K>(
    mut items: Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<K>) {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        let next = items.last().map(key);
        (items, next)
    } else {
        (items, None)
    }
}
