//! The SQLite backend: one file, WAL, one writer connection and a few readers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::{
    AgentFacts, AgentTokenFacts, CredentialMaterial, Guard, NewApiToken, NewCredential, Reinstated,
    Revoked, SeedBatch, Store, StoreError, StoreResult, StoredSigningKey, TokenOwner,
    TrustedIssuer, Visibility,
};
use crate::model::api::{
    AgentPage, AgentQuery, AuditPage, AuditQuery, AuditVerification, ChangeFeed, CreatePerson,
    DecommissionOutcome, DecommissionPlan, PeoplePage, PeopleQuery, RegisterAgent, UpdatePerson,
};
use crate::model::audit::{ChainVerifier, GENESIS_HASH, audit_time, event_hash};
use crate::model::review::{
    BulkCertifyOutcome, Campaign, CampaignDetail, CampaignQuery, CloseOutcome, CreateCampaign,
    DecideItem, DecisionOutcome, ExportRow, QueueQuery, ReassignItems, ReassignOutcome, Reminder,
    ReminderPage, ReminderQuery, ReviewItem, ReviewItemPage, ReviewItemQuery, ReviewQueue,
    ScopeDiff,
};
use crate::registry::reviews::{
    BatchDecision, ItemGuard, ReassignTarget, ReminderAttempt, ReminderPlan,
};

type Now = DateTime<Utc>;
use crate::model::{
    Actor, Agent, AgentDetail, AgentKind, AgentRef, AgentSource, AgentStatus, AuditEvent,
    Credential, CredentialKind, Grant, Person, Role,
};
use crate::registry::clock::Clock;
use crate::registry::tokens::live::{
    ConsumedAssertion, LiveTokens, Refusals, TokenKind, TokenRecord,
};

/// The schema, one file per version under `migrations/sqlite/`. Never edit a shipped file;
/// append a new one.
const MIGRATIONS: &[&str] = &[
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
const READERS: usize = 4;
const POINT_READERS: usize = 2;

/// Most enabled credentials per agent (an assertion without a kid is tried against each).
pub const MAX_ENABLED_CREDENTIALS: i64 = 10;

// The access-review bodies live in their own file to keep this one from growing.
#[path = "sqlite_perimeter.rs"]
mod perimeter;
#[path = "sqlite_reviews.rs"]
mod reviews;
#[path = "sqlite_scopes.rs"]
mod scopes;
#[path = "sqlite_timeline.rs"]
mod timeline;

// The brake (revoke over the tree, reinstate, decommission, re-enabling credentials).
#[path = "sqlite_brake.rs"]
mod brake;
// Delegations and API-token lineage, likewise.
#[path = "sqlite_api_tokens.rs"]
mod api_tokens;
#[path = "sqlite_delegations.rs"]
mod delegations;
// Owner succession, handovers and owner candidates.
#[path = "sqlite_ownership.rs"]
pub(super) mod ownership;

#[path = "sqlite_catalogue.rs"]
mod catalogue;
#[path = "sqlite_resource_credentials.rs"]
mod resource_credentials;

#[path = "sqlite_activity.rs"]
mod activity;
#[path = "sqlite_flags.rs"]
mod flags;

#[path = "sqlite_approvals.rs"]
pub(super) mod approvals;

// Writer turns (urgent first), bounded reader pools, the background checkpointer, hold times.
#[path = "sqlite_pool.rs"]
pub mod pool;

#[path = "sqlite_streams.rs"]
mod streams;

// Bulk seeding: the text index filled once after the last batch.
#[path = "sqlite_seed.rs"]
mod seed;

// The token facts' in-memory copy, invalidated by every write (see its notes).
#[path = "sqlite_facts.rs"]
pub mod facts;

// Online backup and restore.
#[path = "sqlite_backup.rs"]
pub mod backup;

pub struct SqliteStore {
    /// First, so that it stops before the other connections close.
    _checkpointer: pool::Checkpointer,
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Who writes next (the brake first); long work steps aside while anyone waits.
    gate: pool::WriterGate,
    writer_stats: pool::WriterStats,
    readers: pool::ReaderPool,
    point_readers: pool::ReaderPool,
    /// API tokens whose `last_used_at` this process wrote lately (see `pool::TouchFilter`).
    touches: pool::TouchFilter,
    /// The token service's in-memory index, kept in step with `issued_tokens` (see tokens::live).
    live: Arc<LiveTokens>,
    /// The catalogue's scopes, replaced as a whole after each import (see `CatalogueStore`).
    catalogue: std::sync::RwLock<Arc<catalogue::ScopeIndex>>,
    /// Agents' token facts and exchange subjects, as of the last write (see `facts`).
    facts: facts::FactsCache,
    /// Serialises long campaign work (snapshots keep one contiguous item-id range each).
    long_work: Mutex<()>,
    /// What time it is for every record and decision (see registry/clock.rs).
    clock: Clock,
}

/// Whether opening may create a new, empty store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    CreateIfMissing,
    MustExist,
}

fn ts(t: DateTime<Utc>) -> String {
    audit_time(t)
}

fn parse_ts(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn parse_opt_ts(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

fn bad_value(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?} in the database").into(),
    )
}

fn map_sqlite(e: rusqlite::Error) -> StoreError {
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        map_sqlite(e)
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: an acknowledged write survives a crash of the process and of the machine.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
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
        // does. After a checkpoint has emptied it, the log is cut back to 64 MiB.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .and_then(|()| writer.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024))
            .map_err(|e| describe_open(path, e))?;
        migrate(&writer, path, version)?;
        // A bulk seed cut short leaves the text index without its trigger: restore both.
        seed::repair_text_index(&writer).map_err(|e| describe_open(path, e))?;
        #[cfg(unix)]
        restrict_permissions(path);
        let live = Arc::new(LiveTokens::new());
        clock
            .scope(|| load_live_tokens(&writer, &live))
            .map_err(|e| describe_open(path, e))?;
        let scopes = catalogue::load_scope_index(&writer).map_err(|e| describe_open(path, e))?;
        Ok(SqliteStore {
            _checkpointer: pool::Checkpointer::start(path),
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            gate: pool::WriterGate::new(),
            writer_stats: pool::WriterStats::new(),
            readers: pool::ReaderPool::new(path, READERS, "readers"),
            point_readers: pool::ReaderPool::new(path, POINT_READERS, "point readers"),
            touches: pool::TouchFilter::new(),
            live,
            catalogue: std::sync::RwLock::new(Arc::new(scopes)),
            facts: facts::FactsCache::new(),
            long_work: Mutex::new(()),
            clock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many agents and people the token facts' in-memory copy holds now, and their size.
    pub fn facts_cache_usage(&self) -> facts::FactsCacheUsage {
        self.facts.usage()
    }

    /// Runs `f` in one immediate (write-locking) transaction, after every urgent write waiting.
    /// Invalidates the token facts' in-memory copy once the transaction has ended, before the
    /// writer is released.
    #[track_caller]
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.write_turn(false, true, std::panic::Location::caller(), f)
    }

    /// [`write`](Self::write) for the few writes that touch no token fact (token records and
    /// their usage columns, the activity record, prunes): the facts' copy stays current.
    #[track_caller]
    fn write_keeping_facts<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.write_turn(false, false, std::panic::Location::caller(), f)
    }

    /// Like [`Self::write`], but before every ordinary write already waiting: the brake.
    #[track_caller]
    fn write_urgent<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.write_turn(true, true, std::panic::Location::caller(), f)
    }

    fn write_turn<T>(
        &self,
        urgent: bool,
        touches_facts: bool,
        site: &'static std::panic::Location<'static>,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let asked = std::time::Instant::now();
        let _turn = self.gate.enter(urgent);
        let granted = std::time::Instant::now();
        let out = (|| {
            let mut conn = self
                .writer
                .lock()
                .map_err(|_| StoreError::Internal("the writer connection was poisoned".into()))?;
            // Dropped after `tx` (committed or rolled back) and before `conn` (the writer).
            let _facts = facts::InvalidateOnDrop(touches_facts.then_some(&self.facts));
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            streams::before_write();
            let out = self.clock.scope(|| f(&tx))?;
            tx.commit()?;
            streams::after_commit();
            Ok(out)
        })();
        self.writer_stats
            .record(site, granted - asked, granted.elapsed());
        out
    }

    /// Runs `f` over a consistent snapshot on a pooled reader connection (waiting for one
    /// when all are lent).
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.clock.scope(|| Self::read_on(&self.readers, f))
    }

    /// Like [`Self::read`], on the pool kept for short point reads (one row or a few).
    fn read_point<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.clock.scope(|| Self::read_on(&self.point_readers, f))
    }

    fn read_on<T>(
        pool: &pool::ReaderPool,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = pool.get()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
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
        (self.readers.open(), self.point_readers.open())
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
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

fn describe_open(path: &Path, e: rusqlite::Error) -> StoreError {
    match map_sqlite(e) {
        StoreError::Internal(m) => StoreError::Internal(format!("{}: {m}", path.display())),
        StoreError::Busy(m) => StoreError::Busy(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// Returns the schema version of a Steward store (0 for a new, empty file), refusing files
/// that are newer than this build or are not Steward stores. Writes nothing.
fn check_schema(conn: &Connection, path: &Path) -> StoreResult<i64> {
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

fn migrate(conn: &Connection, path: &Path, version: i64) -> StoreResult<()> {
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
pub(super) fn next_change(tx: &Transaction<'_>) -> StoreResult<i64> {
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
    tx: &Transaction<'_>,
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

const PERSON_COLUMNS: &str = "p.id, p.email, p.display_name, p.roles, p.active, m.email, p.team, p.created_at, p.change_seq, p.left_at";

fn person_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
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

fn roles_text(roles: &[Role]) -> String {
    let mut roles: Vec<Role> = roles.to_vec();
    roles.sort();
    roles.dedup();
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn person_by_email(tx: &Transaction<'_>, email: &str) -> StoreResult<Option<Person>> {
    // Cached: every token exchange looks its person up.
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN people m ON m.id = p.manager_id
             WHERE p.email = ?1 COLLATE NOCASE"
        ))?
        .query_row([email], person_from_row)
        .optional()?)
}

fn person_id(tx: &Transaction<'_>, email: &str) -> StoreResult<String> {
    tx.query_row(
        "SELECT id FROM people WHERE email = ?1 COLLATE NOCASE",
        [email],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("no person with email {email}")))
}

const AGENT_COLUMNS: &str = "a.id, a.name, a.description, a.kind, a.parent_id, o.email, o.display_name,
    a.team, a.environment, a.status, a.source, a.created_at, a.last_seen_at, a.flags, a.change_seq,
    EXISTS (SELECT 1 FROM credentials c WHERE c.agent_id = a.id AND c.kind = 'static-secret' AND c.disabled_at IS NULL),
    CASE WHEN o.active = 0 THEN o.left_at END";

const AGENT_FROM: &str = "agents a LEFT JOIN people o ON o.id = a.owner_id";

fn agent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Agent> {
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

fn grants_of(tx: &Transaction<'_>, agent_id: &str) -> StoreResult<Vec<Grant>> {
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
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn credentials_of(tx: &Transaction<'_>, agent_id: &str) -> StoreResult<Vec<Credential>> {
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
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Loads agents matching a WHERE clause, each with its grants.
fn load_agents(
    tx: &Transaction<'_>,
    where_sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<Agent>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE {where_sql}"
    ))?;
    let mut agents = stmt
        .query_map(params, agent_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for agent in &mut agents {
        agent.grants = grants_of(tx, &agent.id)?;
    }
    Ok(agents)
}

fn agent_by_id(tx: &Transaction<'_>, id: &str) -> StoreResult<Agent> {
    load_agents(tx, "a.id = ?1", &[&id])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("no agent with id {id}")))
}

fn facts(agent: &Agent) -> AgentFacts {
    AgentFacts {
        id: agent.id.clone(),
        owner_email: agent.owner.clone(),
        status: agent.status,
    }
}

fn touch_agent(tx: &Transaction<'_>, id: &str) -> StoreResult<()> {
    let seq = next_change(tx)?;
    tx.execute(
        "UPDATE agents SET change_seq = ?1 WHERE id = ?2",
        params![seq, id],
    )?;
    Ok(())
}

/// Disables every enabled credential of an agent; returns how many.
fn disable_credentials(tx: &Transaction<'_>, id: &str, now: &str) -> StoreResult<u32> {
    Ok(tx.execute(
        "UPDATE credentials SET disabled_at = ?1 WHERE agent_id = ?2 AND disabled_at IS NULL",
        params![now, id],
    )? as u32)
}

/// The agent and all its descendants, the agent first (breadth-first).
fn subtree(tx: &Transaction<'_>, id: &str) -> StoreResult<Vec<String>> {
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
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

fn like_pattern(text: &str) -> String {
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
fn trigram_phrase(text: &str) -> Option<String> {
    (text.chars().count() >= 3).then(|| format!("\"{}\"", text.replace('"', "\"\"")))
}

fn invalid(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        code,
        message: message.into(),
    }
}

fn new_id(prefix: &str) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

impl SqliteStore {
    /// Changes a person inside `tx`. Marking them as left also dates the leave, ends their API
    /// and live tokens, and applies owner succession to their agents (returned).
    pub(super) fn update_person_tx(
        &self,
        tx: &Transaction<'_>,
        actor: &Actor,
        email: &str,
        req: &UpdatePerson,
    ) -> StoreResult<(Person, Option<crate::model::ownership::Succession>)> {
        let before = person_by_email(tx, email)?
            .ok_or_else(|| StoreError::NotFound(format!("no person with email {email}")))?;
        let manager_id = match &req.manager {
            Some(m) if m.eq_ignore_ascii_case(email) => {
                return Err(invalid(
                    "invalid_manager",
                    "a person cannot manage themselves",
                ));
            }
            Some(m) => Some(person_id(tx, m)?),
            None => None,
        };
        let seq = next_change(tx)?;
        tx.execute(
            "UPDATE people SET
                display_name = coalesce(?1, display_name),
                roles = coalesce(?2, roles),
                active = coalesce(?3, active),
                manager_id = coalesce(?4, manager_id),
                team = coalesce(?5, team),
                change_seq = ?6
             WHERE id = ?7",
            params![
                req.display_name,
                req.roles.as_deref().map(roles_text),
                req.active,
                manager_id,
                req.team,
                seq,
                before.id
            ],
        )?;
        let after = person_by_email(tx, email)?
            .ok_or_else(|| StoreError::Internal("person vanished".into()))?;
        // The registry never loses its last admin: checked after the change, inside the
        // transaction, so two admins demoting each other at once cannot both succeed.
        let was_admin = before.active && before.has_role(Role::Admin);
        let is_admin = after.active && after.has_role(Role::Admin);
        if was_admin && !is_admin {
            let admins_left: i64 = tx.query_row(
                "SELECT COUNT(*) FROM people WHERE active = 1
                 AND (',' || roles || ',') LIKE '%,admin,%'",
                [],
                |r| r.get(0),
            )?;
            if admins_left == 0 {
                return Err(StoreError::Conflict(format!(
                    "{email} is the last active admin: make someone else an admin first"
                )));
            }
        }
        // Leaving ends every API token for good: coming back later must not revive tokens
        // that were left on old machines.
        let (tokens_revoked, live_tokens_revoked) = if before.active && !after.active {
            // Every token where they are the subject dies too (person tokens, exchanges and
            // what was derived from them), and no new one may name them.
            let killed = self.live.revoke_subject(&after.email, self.clock.unix());
            mark_tokens_revoked(tx, &killed)?;
            let ids: Vec<String> = tx
                .prepare("SELECT id FROM api_tokens WHERE person_id = ?1")?
                .query_map([&before.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let (revoked, more) = api_tokens::revoke_api_token_trees(tx, &self.live, &ids)?;
            (revoked, killed.len() as u64 + more)
        } else {
            if !before.active && after.active {
                self.live.restore_subject(&after.email);
            }
            (0, 0)
        };
        let action = match (before.active, after.active) {
            (true, false) => "person.deactivate",
            (false, true) => "person.reactivate",
            _ => "person.update",
        };
        append_audit(
            tx,
            actor,
            action,
            Some(&after.email),
            "success",
            None,
            &serde_json::json!({
                "roles": {"before": roles_text(&before.roles), "after": roles_text(&after.roles)},
                "active": {"before": before.active, "after": after.active},
                "manager": {"before": before.manager, "after": after.manager},
                "tokens_revoked": tokens_revoked,
                "live_tokens_revoked": live_tokens_revoked,
            }),
        )?;
        // The leave is dated, and their agents pass on (registry/service/succession.rs);
        // coming back clears the date (agents handed over stay with their new owners).
        match (before.active, after.active) {
            (true, false) => {
                let now = self.clock.now();
                tx.execute(
                    "UPDATE people SET left_at = ?1 WHERE id = ?2",
                    params![ts(now), after.id],
                )?;
                let after = person_by_email(tx, email)?
                    .ok_or_else(|| StoreError::Internal("person vanished".into()))?;
                let succession = ownership::succeed(tx, actor, &after, now)?;
                Ok((after, Some(succession)))
            }
            (false, true) => {
                tx.execute(
                    "UPDATE people SET left_at = NULL WHERE id = ?1",
                    params![after.id],
                )?;
                let after = person_by_email(tx, email)?
                    .ok_or_else(|| StoreError::Internal("person vanished".into()))?;
                Ok((after, None))
            }
            _ => Ok((after, None)),
        }
    }
}

impl Store for SqliteStore {
    fn schema_version(&self) -> StoreResult<i64> {
        self.read(|tx| Ok(tx.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>> {
        self.read_point(|tx| {
            type Row = (
                String,
                String,
                String,
                Option<String>,
                String,
                Option<String>,
                Option<String>,
            );
            let row: Option<Row> = tx
                .query_row(
                    "SELECT t.id, p.email, t.expires_at, t.revoked_at, t.kind, t.redeemed_at,
                            t.last_used_at
                     FROM api_tokens t JOIN people p ON p.id = t.person_id WHERE t.token_hash = ?1",
                    [token_hash],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((token_id, email, expires_at, revoked_at, kind, redeemed_at, last_used_at)) =
                row
            else {
                return Ok(None);
            };
            let person = person_by_email(tx, &email)?
                .ok_or_else(|| StoreError::Internal("token owner vanished".into()))?;
            Ok(Some(TokenOwner {
                person,
                token_id,
                expires_at: parse_ts(&expires_at)?,
                revoked: revoked_at.is_some(),
                invitation: kind == "invitation",
                redeemed: redeemed_at.is_some(),
                last_used_at: parse_opt_ts(last_used_at)?,
            }))
        })
    }

    fn create_person(&self, actor: &Actor, req: &CreatePerson) -> StoreResult<Person> {
        self.write(|tx| {
            if person_by_email(tx, &req.email)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a person with email {} already exists",
                    req.email
                )));
            }
            let manager_id = match &req.manager {
                Some(m) => Some(person_id(tx, m)?),
                None => None,
            };
            let id = new_id("p");
            let seq = next_change(tx)?;
            tx.execute(
                "INSERT INTO people (id, email, display_name, roles, active, manager_id, team, created_at, change_seq)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    req.email,
                    req.display_name,
                    roles_text(&req.roles),
                    manager_id,
                    req.team,
                    ts(self.clock.now()),
                    seq
                ],
            )?;
            append_audit(
                tx,
                actor,
                "person.create",
                Some(&req.email),
                "success",
                None,
                &serde_json::json!({"roles": roles_text(&req.roles), "manager": req.manager}),
            )?;
            person_by_email(tx, &req.email)?
                .ok_or_else(|| StoreError::Internal("person vanished".into()))
        })
    }

    fn update_person(&self, actor: &Actor, email: &str, req: &UpdatePerson) -> StoreResult<Person> {
        self.write(|tx| self.update_person_tx(tx, actor, email, req))
            .map(|(person, _)| person)
    }

    fn person(&self, email: &str) -> StoreResult<Option<Person>> {
        // Every exchange reads its subject: from the facts' copy when it is current.
        self.facts
            .person_or_read(email, || self.read(|tx| person_by_email(tx, email)))
    }

    fn list_people(&self, query: &PeopleQuery) -> StoreResult<PeoplePage> {
        let limit = query.limit.unwrap_or(200).clamp(1, 5000);
        self.read(|tx| {
            let pattern = query.q.as_deref().map(like_pattern);
            let mut stmt = tx.prepare(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN people m ON m.id = p.manager_id
                 WHERE (?1 IS NULL OR lower(p.email) LIKE ?1 ESCAPE '\\' OR lower(p.display_name) LIKE ?1 ESCAPE '\\')
                   AND (?2 IS NULL OR p.active = ?2)
                   AND (?3 IS NULL OR p.email > ?3)
                 ORDER BY p.email LIMIT ?4"
            ))?;
            let people = stmt
                .query_map(
                    params![pattern, query.active, query.after, limit + 1],
                    person_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(page(people, limit, |p| p.email.clone()))
                .map(|(people, next)| PeoplePage { people, next })
        })
    }

    fn issue_api_token(
        &self,
        actor: &Actor,
        email: &str,
        token: &NewApiToken,
    ) -> StoreResult<DateTime<Utc>> {
        self.write(|tx| api_tokens::insert_api_token(tx, actor, email, token))
    }

    fn revoke_api_token(&self, actor: &Actor, email: &str, token_id: &str) -> StoreResult<u64> {
        self.write(|tx| {
            let owned: Option<Option<String>> = tx
                .query_row(
                    "SELECT revoked_at FROM api_tokens
                     WHERE id = ?1 AND person_id = (SELECT id FROM people WHERE email = ?2 COLLATE NOCASE)",
                    params![token_id, email],
                    |r| r.get(0),
                )
                .optional()?;
            if owned.is_none() {
                return Err(StoreError::NotFound(format!(
                    "{email} has no API token {token_id}"
                )));
            }
            let (revoked, killed) =
                api_tokens::revoke_api_token_trees(tx, &self.live, &[token_id.to_string()])?;
            // A repeat changes nothing and records nothing.
            if revoked == 0 && killed == 0 {
                return Ok(0);
            }
            append_audit(
                tx,
                actor,
                "api_token.revoke",
                Some(email),
                "success",
                None,
                &serde_json::json!({
                    "token_id": token_id,
                    "api_tokens_revoked": revoked,
                    "tokens_revoked": killed,
                }),
            )?;
            Ok(killed)
        })
    }

    fn list_agents(&self, query: &AgentQuery, visibility: &Visibility) -> StoreResult<AgentPage> {
        let limit = query.limit.unwrap_or(200).clamp(1, 1000);
        self.read(|tx| {
            let visible_owner = match visibility {
                Visibility::All => None,
                Visibility::OwnedBy(email) => Some(email.clone()),
            };
            // The SQL names only the filters given, so that SQLite can use an index for them:
            // `(?1 IS NULL OR o.email = ?1)` hides the owner from the planner, which then walks
            // every agent in id order (2.1 s for 22 agents of one owner at 1M).
            let mut clauses: Vec<String> = Vec::new();
            let mut params: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
            let bind = |params: &mut Vec<Box<dyn rusqlite::ToSql>>, v: Box<dyn rusqlite::ToSql>| {
                params.push(v);
                params.len()
            };
            for owner in [visible_owner.as_ref(), query.owner.as_ref()]
                .into_iter()
                .flatten()
            {
                // The owner's id first (people_email_nocase), then agents_owner_id (owner, id).
                let n = bind(&mut params, Box::new(owner.clone()));
                clauses.push(format!(
                    "a.owner_id IN (SELECT id FROM people WHERE email = ?{n} COLLATE NOCASE)"
                ));
            }
            if query.unowned.unwrap_or(false) {
                // Unowned includes orphaned agents: their owner left.
                clauses.push("(a.owner_id IS NULL OR o.active = 0)".into());
            }
            if let Some(status) = query.status {
                let n = bind(&mut params, Box::new(status.as_str()));
                clauses.push(format!("a.status = ?{n}"));
            }
            if let Some(team) = &query.team {
                let n = bind(&mut params, Box::new(team.clone()));
                clauses.push(format!("a.team = ?{n}"));
            }
            if let Some(env) = &query.environment {
                let n = bind(&mut params, Box::new(env.clone()));
                clauses.push(format!("a.environment = ?{n}"));
            }
            if let Some(kind) = query.kind {
                let n = bind(&mut params, Box::new(kind.as_str()));
                clauses.push(format!("a.kind = ?{n}"));
            }
            if let Some(q) = query.q.as_deref() {
                let n = bind(&mut params, Box::new(like_pattern(q)));
                let like = format!(
                    "(lower(a.name) LIKE ?{n} ESCAPE '\\' OR lower(a.description) LIKE ?{n} \
                     ESCAPE '\\' OR a.id LIKE ?{n} ESCAPE '\\')"
                );
                // Three characters or more: the trigram index (agents_text) narrows the rows
                // first; the LIKE above keeps the exact meaning (it folds ASCII only).
                if let Some(phrase) = trigram_phrase(q) {
                    let m = bind(&mut params, Box::new(phrase));
                    clauses.push(format!(
                        "a.rowid IN (SELECT rowid FROM agents_text WHERE agents_text MATCH ?{m})"
                    ));
                }
                clauses.push(like);
            }
            if let Some(after) = &query.after {
                let n = bind(&mut params, Box::new(after.clone()));
                clauses.push(format!("a.id > ?{n}"));
            }
            let n = bind(&mut params, Box::new(limit + 1));
            let where_sql = format!(
                "{} ORDER BY a.id LIMIT ?{n}",
                if clauses.is_empty() {
                    "1".to_string()
                } else {
                    clauses.join(" AND ")
                }
            );
            let refs: Vec<&dyn rusqlite::ToSql> = params.iter().map(|p| p.as_ref()).collect();
            let agents = load_agents(tx, &where_sql, &refs)?;
            let (agents, next) = page(agents, limit, |a| a.id.clone());
            Ok(AgentPage { agents, next })
        })
    }

    fn agent_detail(&self, id: &str) -> StoreResult<Option<AgentDetail>> {
        self.read_point(|tx| {
            let agent = match agent_by_id(tx, id) {
                Ok(a) => a,
                Err(StoreError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let credentials = credentials_of(tx, id)?;
            let refs = |sql: &str| -> StoreResult<Vec<AgentRef>> {
                let mut stmt = tx.prepare_cached(sql)?;
                let rows = stmt.query_map([id], |r| {
                    let kind: String = r.get(2)?;
                    let status: String = r.get(3)?;
                    Ok(AgentRef {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        kind: AgentKind::parse(&kind).ok_or_else(|| bad_value("kind", &kind))?,
                        status: AgentStatus::parse(&status)
                            .ok_or_else(|| bad_value("status", &status))?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            };
            let parent = refs(
                "SELECT p.id, p.name, p.kind, p.status FROM agents a JOIN agents p ON p.id = a.parent_id WHERE a.id = ?1",
            )?
            .pop();
            let children = refs(
                "SELECT id, name, kind, status FROM agents WHERE parent_id = ?1 ORDER BY name, id",
            )?;
            let requests = approvals::pending_for_agent(tx, id, self.clock.now())?;
            Ok(Some(AgentDetail {
                agent,
                credentials,
                parent,
                children,
                requests,
                open_flags: Vec::new(),
                may: None,
            }))
        })
    }

    fn register_agent(&self, actor: &Actor, req: &RegisterAgent) -> StoreResult<Agent> {
        self.write(|tx| {
            let owner_id = match &req.owner {
                Some(email) => {
                    let owner = person_by_email(tx, email)?.ok_or_else(|| {
                        invalid("unknown_owner", format!("no person with email {email}"))
                    })?;
                    if !owner.active {
                        return Err(invalid(
                            "owner_inactive",
                            format!("{email} has left and cannot own agents"),
                        ));
                    }
                    Some(owner.id)
                }
                None => None,
            };
            let parent = match &req.parent_id {
                Some(pid) => Some(agent_by_id(tx, pid).map_err(|_| {
                    invalid("unknown_parent", format!("no agent with id {pid}"))
                })?),
                None => None,
            };
            if let Some(p) = &parent
                && p.status == AgentStatus::Decommissioned
            {
                return Err(StoreError::Conflict(format!(
                    "parent {} is decommissioned",
                    p.id
                )));
            }
            let team = req
                .team
                .clone()
                .or_else(|| parent.as_ref().map(|p| p.team.clone()))
                .unwrap_or_else(|| "unassigned".into());
            let environment = req
                .environment
                .clone()
                .or_else(|| parent.as_ref().map(|p| p.environment.clone()))
                .unwrap_or_else(|| "production".into());
            let id = new_id("ag");
            let seq = next_change(tx)?;
            let now = ts(self.clock.now());
            let source = req.source.unwrap_or(AgentSource::Registered);
            tx.execute(
                "INSERT INTO agents (id, name, description, kind, parent_id, owner_id, team, environment, status, source, created_at, change_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?10, ?11)",
                params![
                    id,
                    req.name,
                    req.description,
                    req.kind.as_str(),
                    req.parent_id,
                    owner_id,
                    team,
                    environment,
                    source.as_str(),
                    now,
                    seq
                ],
            )?;
            append_audit(
                tx,
                actor,
                "agent.register",
                Some(&id),
                "success",
                None,
                &serde_json::json!({
                    "name": req.name, "kind": req.kind.as_str(), "owner": req.owner,
                    "parent_id": req.parent_id, "scopes": req.scopes, "source": source.as_str(),
                }),
            )?;
            // Scopes asked for at registration are requests like any other (low tier: granted
            // at once by policy); an unknown scope refuses the whole registration.
            let agent = agent_by_id(tx, &id)?;
            let mut asked: Vec<&String> = req.scopes.iter().collect();
            asked.sort();
            asked.dedup();
            for scope in asked {
                approvals::file_grant_request(
                    tx,
                    actor,
                    &agent,
                    scope,
                    Some("asked for at registration"),
                    None,
                    self.clock.now(),
                )?;
            }
            agent_by_id(tx, &id)
        })
    }

    fn add_grant(
        &self,
        actor: &Actor,
        agent_id: &str,
        grant: &Grant,
        guard: Guard<'_>,
    ) -> StoreResult<Agent> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            if agent.status == AgentStatus::Decommissioned {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} is decommissioned; it cannot receive grants"
                )));
            }
            if agent.grants.iter().any(|g| g.scope == grant.scope) {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} already holds {}",
                    grant.scope
                )));
            }
            tx.execute(
                "INSERT INTO grants (agent_id, scope, granted_by, granted_at, expires_at, justification)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    agent_id,
                    grant.scope,
                    grant.granted_by,
                    ts(grant.granted_at),
                    grant.expires_at.map(ts),
                    grant.justification
                ],
            )?;
            touch_agent(tx, agent_id)?;
            self.live.restore_grant(agent_id, &grant.scope);
            append_audit(
                tx,
                actor,
                "grant.add",
                Some(agent_id),
                "success",
                grant.justification.as_deref(),
                &serde_json::json!({"scope": grant.scope, "expires_at": grant.expires_at.map(ts)}),
            )?;
            agent_by_id(tx, agent_id)
        })
    }

    fn remove_grant(
        &self,
        actor: &Actor,
        agent_id: &str,
        scope: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            let removed = tx.execute(
                "DELETE FROM grants WHERE agent_id = ?1 AND scope = ?2",
                params![agent_id, scope],
            )?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!(
                    "agent {agent_id} does not hold {scope}"
                )));
            }
            touch_agent(tx, agent_id)?;
            // The agent's live tokens carrying the scope die with the grant.
            let killed = kill_grant_tokens(tx, &self.live, agent_id, scope)?;
            append_audit(
                tx,
                actor,
                "grant.remove",
                Some(agent_id),
                "success",
                reason,
                &serde_json::json!({"scope": scope, "tokens_revoked": killed}),
            )?;
            agent_by_id(tx, agent_id)
        })
    }

    fn set_owner(
        &self,
        actor: &Actor,
        agent_id: &str,
        owner_email: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            let owner = person_by_email(tx, owner_email)?.ok_or_else(|| {
                invalid("unknown_owner", format!("no person with email {owner_email}"))
            })?;
            if !owner.active {
                return Err(invalid(
                    "owner_inactive",
                    format!("{owner_email} has left and cannot own agents"),
                ));
            }
            if agent.status == AgentStatus::Decommissioned {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} is decommissioned"
                )));
            }
            if agent.owner.as_deref() == Some(owner.email.as_str()) {
                return Ok(agent);
            }
            let seq = next_change(tx)?;
            tx.execute(
                "UPDATE agents SET prev_owner_id = owner_id, owner_id = ?1, change_seq = ?2 WHERE id = ?3",
                params![owner.id, seq, agent_id],
            )?;
            append_audit(
                tx,
                actor,
                "agent.owner.set",
                Some(agent_id),
                "success",
                reason,
                &serde_json::json!({"before": agent.owner, "after": owner.email}),
            )?;
            agent_by_id(tx, agent_id)
        })
    }

    fn revoke_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Revoked> {
        self.bk_revoke_agent(actor, agent_id, reason, guard)
    }

    fn reinstate_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        subtree: bool,
        guard: Guard<'_>,
    ) -> StoreResult<Reinstated> {
        self.bk_reinstate_agent(actor, agent_id, reason, subtree, guard)
    }

    fn decommission_plan(&self, agent_id: &str, guard: Guard<'_>) -> StoreResult<DecommissionPlan> {
        self.bk_decommission_plan(agent_id, guard)
    }

    fn decommission_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<DecommissionOutcome> {
        self.bk_decommission_agent(actor, agent_id, reason, guard)
    }

    fn audit_page(&self, query: &AuditQuery) -> StoreResult<AuditPage> {
        let limit = query.limit.unwrap_or(500).clamp(1, 5000);
        self.read(|tx| {
            let prefix = query
                .action
                .as_deref()
                .map(|a| format!("{}%", a.replace('%', "")));
            let mut stmt = tx.prepare(
                "SELECT seq, time, actor, action, target, outcome, reason, details, prev_hash, hash
                 FROM audit_events
                 WHERE seq > ?1 AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR actor_id = ?3)
                   AND (?4 IS NULL OR action LIKE ?4)
                 ORDER BY seq LIMIT ?5",
            )?;
            let events = stmt
                .query_map(
                    params![
                        query.after.unwrap_or(0),
                        query.target,
                        query.actor,
                        prefix,
                        limit + 1
                    ],
                    audit_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (events, next) = page(events, limit, |e| e.seq);
            Ok(AuditPage { events, next })
        })
    }

    fn audit_verify(&self) -> StoreResult<AuditVerification> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT seq, time, actor, action, target, outcome, reason, details, prev_hash, hash
                 FROM audit_events ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            let mut verifier = ChainVerifier::default();
            let mut first_broken = None;
            while let Some(row) = rows.next()? {
                let event = match audit_from_row(row) {
                    Ok(e) => e,
                    Err(e) => {
                        first_broken = Some(crate::model::audit::BrokenLink {
                            seq: row.get(0)?,
                            problem: format!("the stored event cannot be read: {e}"),
                        });
                        break;
                    }
                };
                if let Err(broken) = verifier.check(&event) {
                    first_broken = Some(broken);
                    break;
                }
            }
            Ok(AuditVerification {
                ok: first_broken.is_none(),
                events_checked: verifier.checked,
                head_seq: verifier.last_seq,
                head_hash: verifier.last_hash,
                first_broken,
            })
        })
    }

    fn audit_head(&self) -> StoreResult<crate::model::witness::AuditHead> {
        self.read(|tx| {
            let head: Option<(i64, String)> = tx
                .query_row(
                    "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (seq, hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
            Ok(crate::model::witness::AuditHead { seq, hash })
        })
    }

    fn add_audit_note(&self, actor: &Actor, seq: i64, text: &str) -> StoreResult<i64> {
        self.write(|tx| {
            let target: Option<Option<String>> = tx
                .query_row(
                    "SELECT target FROM audit_events WHERE seq = ?1",
                    [seq],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(target) = target else {
                return Err(StoreError::NotFound(format!("no audit event {seq}")));
            };
            append_audit(
                tx,
                actor,
                "audit.note",
                target.as_deref(),
                "success",
                Some(text),
                &serde_json::json!({"note_on": seq}),
            )
        })
    }

    fn changes(&self, after: i64, limit: u32, visibility: &Visibility) -> StoreResult<ChangeFeed> {
        let limit = limit.clamp(1, 5000);
        self.read(|tx| {
            let head: i64 = tx.query_row(
                "SELECT value FROM counters WHERE name = 'change_seq'",
                [],
                |r| r.get(0),
            )?;
            let fetch = limit as i64;
            // The agents changed after the cursor that concern the caller: for an owner, those
            // they own and those they owned before (every change of owner is in the audit log),
            // which their console must drop. A first sync (after = 0) has nothing to drop.
            let touched = match visibility {
                Visibility::All => load_agents(
                    tx,
                    "a.change_seq > ?1 ORDER BY a.change_seq LIMIT ?2",
                    &[&after, &fetch],
                )?,
                Visibility::OwnedBy(email) => {
                    let me = person_id(tx, email)?;
                    load_agents(
                        tx,
                        "a.change_seq > ?1 AND (a.owner_id = ?3 OR (?1 > 0 AND (
                             a.prev_owner_id = ?3 OR EXISTS (
                                 SELECT 1 FROM audit_events e
                                 WHERE e.target = a.id
                                   AND e.action IN ('agent.owner.set', 'agent.owner.clear',
                                                    'agent.owner.succession')
                                   AND json_extract(e.details, '$.before') = ?4))))
                         ORDER BY a.change_seq LIMIT ?2",
                        &[&after, &fetch, &me, email],
                    )?
                }
            };
            let mut stmt = tx.prepare(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN people m ON m.id = p.manager_id
                 WHERE p.change_seq > ?1 ORDER BY p.change_seq LIMIT ?2"
            ))?;
            let people = stmt
                .query_map(params![after, fetch], person_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // Each list is complete up to its last item when it is full; the page ends where the
            // first full list ends, so no change can be skipped. The agent list counts removals
            // too: a page full of them must not let the cursor jump past later changes.
            let agent_limit =
                (touched.len() as i64 >= fetch).then(|| touched.last().map(|a| a.change_seq));
            let people_limit =
                (people.len() as i64 >= fetch).then(|| people.last().map(|p| p.change_seq));
            let cut = [agent_limit.flatten(), people_limit.flatten()]
                .into_iter()
                .flatten()
                .min();
            let (cursor, more) = match cut {
                Some(cut) => (cut, true),
                None => (head.max(after), false),
            };
            let people = people
                .into_iter()
                .filter(|p| p.change_seq <= cursor)
                .collect();
            let mut agents = Vec::new();
            let mut removed = Vec::new();
            for agent in touched.into_iter().filter(|a| a.change_seq <= cursor) {
                let visible = match visibility {
                    Visibility::All => true,
                    Visibility::OwnedBy(email) => agent.owner.as_deref() == Some(email.as_str()),
                };
                if visible {
                    agents.push(agent);
                } else {
                    removed.push(agent.id);
                }
            }
            let total = if after == 0 {
                let n: i64 = match visibility {
                    Visibility::All => {
                        tx.query_row("SELECT count(*) FROM agents", [], |r| r.get(0))?
                    }
                    Visibility::OwnedBy(email) => tx.query_row(
                        "SELECT count(*) FROM agents a JOIN people o ON o.id = a.owner_id
                         WHERE o.email = ?1 COLLATE NOCASE",
                        [email],
                        |r| r.get(0),
                    )?,
                };
                Some(n as u64)
            } else {
                None
            };
            Ok(ChangeFeed {
                agents,
                people,
                removed,
                cursor,
                more,
                total,
            })
        })
    }

    fn is_empty(&self) -> StoreResult<bool> {
        self.read(|tx| {
            let n: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM agents) + (SELECT count(*) FROM people)",
                [],
                |r| r.get(0),
            )?;
            Ok(n == 0)
        })
    }

    fn seed_start(&self) -> StoreResult<()> {
        self.sd_seed_start()
    }

    fn seed_finish(&self) -> StoreResult<()> {
        self.sd_seed_finish()
    }

    fn seed(&self, batch: &SeedBatch) -> StoreResult<()> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| StoreError::Internal("the writer connection was poisoned".into()))?;
        // A bulk batch touches far more pages than an ordinary write; with the default 2 MiB
        // page cache each miss is a read system call. Durability settings stay as they are.
        let previous: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
        conn.pragma_update(None, "cache_size", SEED_CACHE_SIZE)?;
        let result: StoreResult<()> = (|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            self.clock.scope(|| seed_batch(&tx, batch))?;
            tx.commit()?;
            Ok(())
        })();
        let restored = conn.pragma_update(None, "cache_size", previous);
        result?;
        // Seeded agents, people and grants: the facts' copy is stale (under the writer).
        self.facts.invalidate();
        restored?;
        drop(conn);
        // Seeded agents that are not active must never get tokens.
        self.live.block_agents(
            batch
                .agents
                .iter()
                .filter(|a| a.agent.status != AgentStatus::Active)
                .map(|a| a.agent.id.as_str()),
        );
        Ok(())
    }

    fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        details: serde_json::Value,
    ) -> StoreResult<i64> {
        self.write(|tx| append_audit(tx, actor, action, target, "success", None, &details))
    }

    fn live_tokens(&self) -> Arc<LiveTokens> {
        self.live.clone()
    }

    fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT k.kid, k.private_key, k.public_key, k.created_at, k.retired_at,
                        coalesce((SELECT max(t.expires_at) FROM issued_tokens t WHERE t.kid = k.kid
                                  AND NOT EXISTS (SELECT 1 FROM token_revocations r WHERE r.jti = t.jti)), 0),
                        k.activates_at
                 FROM signing_keys k ORDER BY k.created_at DESC, k.kid",
            )?;
            let keys = stmt
                .query_map([], |r| {
                    Ok(StoredSigningKey {
                        kid: r.get(0)?,
                        private_key: r.get(1)?,
                        public_key: r.get(2)?,
                        created_at: parse_ts(&r.get::<_, String>(3)?)?,
                        retired_at: parse_opt_ts(r.get(4)?)?,
                        last_token_expiry: r.get(5)?,
                        activates_at: parse_opt_ts(r.get(6)?)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
    }

    fn add_signing_key(&self, actor: &Actor, key: &StoredSigningKey) -> StoreResult<()> {
        self.write(|tx| {
            let now = ts(self.clock.now());
            let staged_until = key.activates_at.map(ts);
            if let Some(until) = &staged_until {
                let waiting: Option<(String, String)> = tx
                    .query_row(
                        "SELECT kid, activates_at FROM signing_keys
                         WHERE retired_at IS NULL AND activates_at > ?1",
                        [&now],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((kid, at)) = waiting {
                    return Err(StoreError::Conflict(format!(
                        "signing key {kid} is already staged to take over at {at}; \
                         rotate again after that (or use an immediate rotation)"
                    )));
                }
                tx.execute(
                    "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, activates_at)
                     VALUES (?1, 'EdDSA', ?2, ?3, ?4, ?5)",
                    params![key.kid, key.private_key, key.public_key, ts(key.created_at), until],
                )?;
                append_audit(
                    tx,
                    actor,
                    "signing_key.stage",
                    Some(&key.kid),
                    "success",
                    None,
                    &serde_json::json!({"kid": key.kid, "algorithm": "EdDSA", "activates_at": until}),
                )?;
                return Ok(());
            }
            let retired = tx.execute(
                "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
                [&now],
            )?;
            tx.execute(
                "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at)
                 VALUES (?1, 'EdDSA', ?2, ?3, ?4)",
                params![key.kid, key.private_key, key.public_key, ts(key.created_at)],
            )?;
            // The audit record names the key, never its private half.
            append_audit(
                tx,
                actor,
                if retired > 0 {
                    "signing_key.rotate"
                } else {
                    "signing_key.create"
                },
                Some(&key.kid),
                "success",
                None,
                &serde_json::json!({"kid": key.kid, "algorithm": "EdDSA", "retired": retired}),
            )?;
            Ok(())
        })
    }

    fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuer>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT issuer, jwks, audience, created_at FROM trusted_issuers ORDER BY issuer",
            )?;
            let issuers = stmt
                .query_map([], |r| {
                    Ok(TrustedIssuer {
                        issuer: r.get(0)?,
                        jwks: r.get(1)?,
                        audience: r.get(2)?,
                        created_at: parse_ts(&r.get::<_, String>(3)?)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(issuers)
        })
    }

    fn put_trusted_issuer(&self, actor: &Actor, issuer: &TrustedIssuer) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO trusted_issuers (issuer, jwks, audience, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (issuer) DO UPDATE SET jwks = excluded.jwks, audience = excluded.audience",
                params![
                    issuer.issuer,
                    issuer.jwks,
                    issuer.audience,
                    ts(issuer.created_at)
                ],
            )?;
            let kids: Vec<String> = serde_json::from_str::<serde_json::Value>(&issuer.jwks)
                .ok()
                .and_then(|v| v.get("keys").and_then(|k| k.as_array()).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|k| k.get("kid").and_then(|v| v.as_str()).map(str::to_string))
                .collect();
            append_audit(
                tx,
                actor,
                "trusted_issuer.put",
                Some(&issuer.issuer),
                "success",
                None,
                &serde_json::json!({"audience": issuer.audience, "kids": kids}),
            )?;
            Ok(())
        })
    }

    fn remove_trusted_issuer(&self, actor: &Actor, issuer: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let removed = tx.execute("DELETE FROM trusted_issuers WHERE issuer = ?1", [issuer])?;
            if removed > 0 {
                append_audit(
                    tx,
                    actor,
                    "trusted_issuer.remove",
                    Some(issuer),
                    "success",
                    None,
                    &serde_json::json!({}),
                )?;
            }
            Ok(removed > 0)
        })
    }

    fn agent_token_facts(&self, agent_id: &str) -> StoreResult<Option<AgentTokenFacts>> {
        // From the in-memory copy when it is current (see sqlite_facts.rs).
        self.facts.agent_or_read(agent_id, self.clock.now(), || {
            self.read(|tx| facts::read_agent_facts(tx, agent_id))
        })
    }

    fn cached_agent_token_facts(&self, agent_id: &str) -> Option<AgentTokenFacts> {
        self.facts.agent(agent_id, self.clock.now())
    }

    fn cached_person(&self, email: &str) -> Option<Person> {
        self.facts.person(email)
    }

    fn add_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential: &NewCredential,
        guard: Guard<'_>,
    ) -> StoreResult<Credential> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            match agent.status {
                AgentStatus::Active => {}
                AgentStatus::Suspended => {
                    // Suspension means suspended: a new key would undo the brake.
                    return Err(StoreError::Conflict(format!(
                        "agent {agent_id} is suspended; it cannot receive credentials until an \
                         admin or responder reinstates it"
                    )));
                }
                AgentStatus::Decommissioned => {
                    return Err(StoreError::Conflict(format!(
                        "agent {agent_id} is decommissioned; it cannot receive credentials"
                    )));
                }
            }
            let duplicate: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM credentials WHERE agent_id = ?1 AND fingerprint = ?2
                 AND disabled_at IS NULL)",
                params![agent_id, credential.fingerprint],
                |r| r.get(0),
            )?;
            if duplicate {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} already has this key enabled (fingerprint {})",
                    credential.fingerprint
                )));
            }
            // Credential ids derive from the key: the same key (or secret) registered before,
            // on this agent or another, must be refused by name, not by a constraint.
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM credentials WHERE id = ?1)",
                params![credential.id],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "this key is already registered (credential {}); generate a new key pair \
                     for each agent and each rotation",
                    credential.id
                )));
            }
            // Bounded work: an assertion without a kid is tried against every enabled key.
            let enabled: i64 = tx.query_row(
                "SELECT COUNT(*) FROM credentials WHERE agent_id = ?1 AND disabled_at IS NULL",
                params![agent_id],
                |r| r.get(0),
            )?;
            if enabled >= MAX_ENABLED_CREDENTIALS {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} already has {enabled} enabled credentials, the most \
                     allowed ({MAX_ENABLED_CREDENTIALS}); disable one first"
                )));
            }
            tx.execute(
                "INSERT INTO credentials (id, agent_id, kind, label, fingerprint, material, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    credential.id,
                    agent_id,
                    credential.kind.as_str(),
                    credential.label,
                    credential.fingerprint,
                    credential.material,
                    ts(self.clock.now())
                ],
            )?;
            touch_agent(tx, agent_id)?;
            append_audit(
                tx,
                actor,
                "credential.add",
                Some(agent_id),
                "success",
                None,
                &serde_json::json!({
                    "credential_id": credential.id,
                    "kind": credential.kind.as_str(),
                    "label": credential.label,
                    "fingerprint": credential.fingerprint,
                }),
            )?;
            credentials_of(tx, agent_id)?
                .into_iter()
                .find(|c| c.id == credential.id)
                .ok_or_else(|| StoreError::Internal("credential vanished".into()))
        })
    }

    fn disable_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential_id: &str,
        guard: Guard<'_>,
    ) -> StoreResult<Credential> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            let changed = tx.execute(
                "UPDATE credentials SET disabled_at = coalesce(disabled_at, ?1)
                 WHERE id = ?2 AND agent_id = ?3",
                params![ts(self.clock.now()), credential_id, agent_id],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!(
                    "agent {agent_id} has no credential {credential_id}"
                )));
            }
            touch_agent(tx, agent_id)?;
            append_audit(
                tx,
                actor,
                "credential.disable",
                Some(agent_id),
                "success",
                None,
                &serde_json::json!({"credential_id": credential_id}),
            )?;
            credentials_of(tx, agent_id)?
                .into_iter()
                .find(|c| c.id == credential_id)
                .ok_or_else(|| StoreError::Internal("credential vanished".into()))
        })
    }

    fn enable_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Credential> {
        self.bk_enable_credential(actor, agent_id, credential_id, reason, guard)
    }

    fn record_tokens(
        &self,
        tokens: &[TokenRecord],
        assertions: &[ConsumedAssertion],
    ) -> StoreResult<()> {
        self.write_keeping_facts(|tx| {
            let now = self.clock.unix();
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO issued_tokens (jti, kind, digest, kid, subject, client_id, actors,
                        parent_jti, scopes, audience, may_act, subject_source, client_auth,
                        credential_id, issued_at, expires_at, api_token_id, delegation_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                        ?17, ?18)",
                )?;
                let mut revoked = tx.prepare_cached(
                    "INSERT OR IGNORE INTO token_revocations (jti, revoked_at) VALUES (?1, ?2)",
                )?;
                for t in tokens {
                    // Written under the writer lock, which every revoking transaction also
                    // holds: a revoke that ran before this batch is seen here and stored.
                    if self.live.is_revoked(&t.jti) {
                        revoked.execute(params![t.jti, now])?;
                    }
                    insert.execute(params![
                        t.jti,
                        t.kind.as_str(),
                        hex::encode(t.digest),
                        t.kid,
                        t.subject,
                        t.client_id,
                        json_list(&t.actors),
                        t.parent_jti,
                        json_list(&t.scopes),
                        json_list(&t.audience),
                        t.may_act,
                        t.subject_source,
                        t.client_auth,
                        t.credential_id,
                        t.issued_at,
                        t.expires_at,
                        t.api_token_id,
                        t.delegation_id
                    ])?;
                }
                let mut spend = tx.prepare_cached(
                    "INSERT OR IGNORE INTO consumed_assertions (agent_id, jti, expires_at)
                     VALUES (?1, ?2, ?3)",
                )?;
                for a in assertions {
                    spend.execute(params![a.agent_id, a.jti, a.expires_at])?;
                }
            }
            // Usage, folded per batch: each scope's last use, each agent's and key's last sight.
            let mut scope_use: std::collections::HashMap<(&str, &str), i64> = Default::default();
            let mut agent_seen: std::collections::HashMap<&str, i64> = Default::default();
            let mut key_used: std::collections::HashMap<&str, i64> = Default::default();
            for t in tokens.iter().filter(|t| t.kind == TokenKind::Exchange) {
                let Some(agent) = t.client_id.as_deref() else {
                    continue;
                };
                for scope in &t.scopes {
                    let e = scope_use.entry((agent, scope)).or_insert(0);
                    *e = (*e).max(t.issued_at);
                }
                let e = agent_seen.entry(agent).or_insert(0);
                *e = (*e).max(t.issued_at);
                if let Some(cred) = t.credential_id.as_deref() {
                    let e = key_used.entry(cred).or_insert(0);
                    *e = (*e).max(t.issued_at);
                }
            }
            let mut use_scope = tx.prepare_cached(
                "UPDATE grants SET last_used_at = ?3
                 WHERE agent_id = ?1 AND scope = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)",
            )?;
            for ((agent, scope), at) in scope_use {
                use_scope.execute(params![agent, scope, ts(from_unix(at))])?;
            }
            let mut use_key = tx.prepare_cached(
                "UPDATE credentials SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
            )?;
            for (cred, at) in key_used {
                use_key.execute(params![cred, ts(from_unix(at))])?;
            }
            for (agent, at) in agent_seen {
                let seen = ts(from_unix(at));
                let previous: Option<Option<String>> = tx
                    .prepare_cached("SELECT last_seen_at FROM agents WHERE id = ?1")?
                    .query_row([agent], |r| r.get(0))
                    .optional()?;
                let Some(previous) = previous else { continue };
                // The change feed hears of an agent's activity at most once a minute: enough
                // for a console's "last seen" without turning every exchange into a change.
                let stale = previous
                    .as_deref()
                    .and_then(|p| parse_ts(p).ok())
                    .is_none_or(|p| from_unix(at) - p >= chrono::Duration::seconds(60));
                if stale {
                    let seq = next_change(tx)?;
                    tx.prepare_cached(
                        "UPDATE agents SET last_seen_at = ?1, change_seq = ?2 WHERE id = ?3",
                    )?
                    .execute(params![seen, seq, agent])?;
                } else if previous.as_deref() < Some(seen.as_str()) {
                    tx.prepare_cached("UPDATE agents SET last_seen_at = ?1 WHERE id = ?2")?
                        .execute(params![seen, agent])?;
                }
            }
            Ok(())
        })
    }

    fn revoke_token(&self, actor: &Actor, jti: &str) -> StoreResult<u64> {
        self.write(|tx| {
            let killed = self.live.revoke_tree(jti, self.clock.unix());
            mark_tokens_revoked(tx, &killed)?;
            if !killed.is_empty() {
                append_audit(
                    tx,
                    actor,
                    "token.revoke",
                    Some(jti),
                    "success",
                    None,
                    &serde_json::json!({"tokens_revoked": killed.len()}),
                )?;
            }
            Ok(killed.len() as u64)
        })
    }

    fn exchanges_since(&self, agent_id: &str, since: i64) -> StoreResult<u64> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT count(*) FROM issued_tokens
                     WHERE client_id = ?1 AND issued_at >= ?2 AND kind = 'exchange'",
                )?
                .query_row(params![agent_id, since], |r| r.get::<_, i64>(0))?
                .max(0) as u64)
        })
    }

    fn prune_tokens(&self, now: i64, keep_records_after: i64) -> StoreResult<()> {
        self.live.prune(now);
        self.write_keeping_facts(|tx| {
            tx.execute(
                "DELETE FROM consumed_assertions WHERE expires_at < ?1",
                [now - 2 * crate::registry::tokens::live::CLOCK_LEEWAY],
            )?;
            tx.execute(
                "DELETE FROM issued_tokens WHERE expires_at < ?1",
                [keep_records_after],
            )?;
            // Tokens live at most an hour: a revocation older than the records kept is of a
            // token whose record is gone.
            tx.execute(
                "DELETE FROM token_revocations WHERE revoked_at < ?1",
                [keep_records_after],
            )?;
            Ok(())
        })
    }
    // Access reviews: bodies in sqlite_reviews.rs.
    fn create_campaign(&self, a: &Actor, r: &CreateCampaign, now: Now) -> StoreResult<Campaign> {
        self.rv_create_campaign(a, r, now)
    }
    fn start_due_campaigns(&self, a: &Actor, now: Now) -> StoreResult<Vec<Campaign>> {
        self.rv_start_due_campaigns(a, now)
    }
    fn list_campaigns(&self, q: &CampaignQuery) -> StoreResult<Vec<Campaign>> {
        self.rv_list_campaigns(q)
    }
    fn campaign_detail(&self, id: &str) -> StoreResult<Option<CampaignDetail>> {
        self.rv_campaign_detail(id)
    }
    fn review_items(&self, id: &str, q: &ReviewItemQuery) -> StoreResult<ReviewItemPage> {
        self.rv_review_items(id, q)
    }
    fn review_item(&self, id: i64, guard: ItemGuard<'_>) -> StoreResult<ReviewItem> {
        self.rv_review_item(id, guard)
    }
    fn review_queue(
        &self,
        who: Option<&str>,
        q: &QueueQuery,
        now: Now,
    ) -> StoreResult<ReviewQueue> {
        self.rv_review_queue(who, q, now)
    }
    fn decide_item(
        &self,
        a: &Actor,
        id: i64,
        r: &DecideItem,
        now: Now,
        guard: ItemGuard<'_>,
    ) -> StoreResult<DecisionOutcome> {
        self.rv_decide_item(a, id, r, now, guard)
    }
    fn decide_items(&self, d: &[BatchDecision], guard: ItemGuard<'_>) -> StoreResult<u64> {
        self.rv_decide_items(d, guard)
    }
    fn certify_unchanged(
        &self,
        a: &Actor,
        campaign: &str,
        agent: &str,
        now: Now,
        guard: ItemGuard<'_>,
    ) -> StoreResult<BulkCertifyOutcome> {
        self.rv_certify_unchanged(a, campaign, agent, now, guard)
    }
    fn accept_recommendations(
        &self,
        a: &Actor,
        campaign: &str,
        r: &crate::model::review::AcceptRecommendations,
        mine: Option<&str>,
        now: Now,
        guard: ItemGuard<'_>,
    ) -> StoreResult<crate::model::review::AcceptOutcome> {
        self.rv_accept_recommendations(a, campaign, r, mine, now, guard)
    }
    fn reassign_items(
        &self,
        a: &Actor,
        t: &ReassignTarget,
        r: &ReassignItems,
        now: Now,
    ) -> StoreResult<ReassignOutcome> {
        self.rv_reassign_items(a, t, r, now)
    }
    fn close_campaign(&self, a: &Actor, id: &str, now: Now) -> StoreResult<CloseOutcome> {
        self.rv_close_campaign(a, id, now)
    }
    fn campaigns_due_to_close(&self, now: Now) -> StoreResult<Vec<String>> {
        self.rv_campaigns_due_to_close(now)
    }
    fn export_campaign(
        &self,
        id: &str,
        each: &mut dyn FnMut(ExportRow) -> StoreResult<()>,
    ) -> StoreResult<u64> {
        self.rv_export_campaign(id, each)
    }
    fn scope_diff(&self, id: &str, days: u32, now: Now, g: Guard<'_>) -> StoreResult<ScopeDiff> {
        self.rv_scope_diff(id, days, now, g)
    }
    fn plan_reminders(&self, now: Now, deliverable: bool) -> StoreResult<ReminderPlan> {
        self.rv_plan_reminders(now, deliverable)
    }
    fn due_reminders(&self, now: Now, limit: u32) -> StoreResult<Vec<Reminder>> {
        self.rv_due_reminders(now, limit)
    }
    fn record_reminder_attempt(&self, id: i64, now: Now, a: &ReminderAttempt) -> StoreResult<()> {
        self.rv_record_reminder_attempt(id, now, a)
    }
    fn list_reminders(&self, q: &ReminderQuery, who: Option<&str>) -> StoreResult<ReminderPage> {
        self.rv_list_reminders(q, who)
    }
}

/// The time by the clock of the store call running on this thread (installed by `write_turn`,
/// `read` and `read_point`), for helpers that see only the transaction. Methods use
/// `self.clock` instead.
fn store_now() -> DateTime<Utc> {
    crate::registry::clock::current_now()
}

/// [`store_now`] in seconds since the Unix epoch.
fn unix_now() -> i64 {
    store_now().timestamp()
}

fn from_unix(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn parse_json_list(text: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A grant was removed in this transaction: kills the agent's live tokens carrying the scope
/// (and what was exchanged from them) and stores their revocation. Returns how many died.
fn kill_grant_tokens(
    tx: &Transaction<'_>,
    live: &LiveTokens,
    agent_id: &str,
    scope: &str,
) -> StoreResult<usize> {
    let killed = live.revoke_grant(agent_id, scope, unix_now());
    mark_tokens_revoked(tx, &killed)?;
    Ok(killed.len())
}

/// Stores the revocation of tokens already marked revoked in the live index.
fn mark_tokens_revoked(tx: &Transaction<'_>, jtis: &[String]) -> StoreResult<()> {
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
fn load_live_tokens(conn: &Connection, live: &LiveTokens) -> rusqlite::Result<()> {
    let now = unix_now();
    let mut stmt = conn.prepare(
        "SELECT jti, kind, digest, kid, subject, client_id, actors, parent_jti, scopes, audience,
                may_act, subject_source, client_auth, credential_id, issued_at, expires_at,
                EXISTS (SELECT 1 FROM token_revocations r WHERE r.jti = t.jti),
                api_token_id, delegation_id
         FROM issued_tokens t WHERE expires_at > ?1 ORDER BY issued_at",
    )?;
    let tokens = stmt
        .query_map([now], |r| {
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
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let strings = |sql: &str| -> rusqlite::Result<Vec<String>> {
        conn.prepare(sql)?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
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
            .collect::<rusqlite::Result<Vec<String>>>()?,
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
        .collect::<rusqlite::Result<Vec<_>>>()?;
    live.load(tokens, refusals, assertions);
    Ok(())
}

fn audit_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    let actor: String = r.get(2)?;
    let details: String = r.get(7)?;
    let json_err = |e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    };
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
fn page<T, K>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> (Vec<T>, Option<K>) {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        let next = items.last().map(key);
        (items, next)
    } else {
        (items, None)
    }
}

/// The writer's page cache while seeding, in SQLite's unit (negative: KiB): 256 MiB.
const SEED_CACHE_SIZE: i64 = -256 * 1024;

/// Inserts a batch of seeded people and agents with prepared statements in the caller's
/// transaction. Each record takes the next position in the change feed. Owners and managers
/// are resolved once per email and batch; one that is neither in the batch nor stored fails
/// the whole batch rather than being dropped.
fn seed_batch<'b>(tx: &Transaction<'_>, batch: &'b SeedBatch) -> StoreResult<()> {
    let mut seq: i64 = tx.query_row(
        "SELECT value FROM counters WHERE name = 'change_seq'",
        [],
        |r| r.get(0),
    )?;
    // email → person id: the batch's own people, then stored ones as they are asked for.
    let mut ids: std::collections::HashMap<&'b str, String> = batch
        .people
        .iter()
        .map(|p| (p.person.email.as_str(), p.person.id.clone()))
        .collect();
    let mut find_person = tx.prepare_cached("SELECT id FROM people WHERE email = ?1")?;
    let mut person_id = |email: &'b str, role: &str, of: &str| -> StoreResult<String> {
        if let Some(id) = ids.get(email) {
            return Ok(id.clone());
        }
        let id: String = find_person
            .query_row([email], |r| r.get(0))
            .optional()?
            .ok_or_else(|| {
                invalid(
                    "unknown_person",
                    format!("seeding {of}: its {role} {email} is not in the directory"),
                )
            })?;
        ids.insert(email, id.clone());
        Ok(id)
    };
    {
        let mut insert_person = tx.prepare_cached(
            "INSERT INTO people (id, email, display_name, roles, active, team, created_at, change_seq, left_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for p in &batch.people {
            seq += 1;
            let person = &p.person;
            insert_person.execute(params![
                person.id,
                person.email,
                person.display_name,
                roles_text(&person.roles),
                person.active,
                person.team,
                ts(person.created_at),
                seq,
                person.left_at.filter(|_| !person.active).map(ts),
            ])?;
        }
        let mut set_manager =
            tx.prepare_cached("UPDATE people SET manager_id = ?1 WHERE id = ?2")?;
        for p in &batch.people {
            if let Some(m) = &p.manager_email {
                let manager = person_id(m, "manager", &p.person.email)?;
                set_manager.execute(params![manager, p.person.id])?;
            }
        }
    }
    let mut insert_agent = tx.prepare_cached(
        "INSERT INTO agents (id, name, description, kind, parent_id, owner_id, team, environment, status, source, created_at, last_seen_at, flags, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let mut insert_grant = tx.prepare_cached(
        "INSERT INTO grants (agent_id, scope, granted_by, granted_at, expires_at, justification, last_used_at, last_certified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut insert_credential = tx.prepare_cached(
        "INSERT INTO credentials (id, agent_id, kind, label, fingerprint, material, created_at, disabled_at, last_used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for s in &batch.agents {
        seq += 1;
        let a = &s.agent;
        let owner_id = match &a.owner {
            Some(email) => Some(person_id(email, "owner", &a.id)?),
            None => None,
        };
        insert_agent.execute(params![
            a.id,
            a.name,
            a.description,
            a.kind.as_str(),
            a.parent_id,
            owner_id,
            a.team,
            a.environment,
            a.status.as_str(),
            a.source.as_str(),
            ts(a.created_at),
            a.last_seen_at.map(ts),
            a.flags.join(","),
            seq
        ])?;
        for g in &a.grants {
            insert_grant.execute(params![
                a.id,
                g.scope,
                g.granted_by,
                ts(g.granted_at),
                g.expires_at.map(ts),
                g.justification,
                g.last_used_at.map(ts),
                g.last_certified_at.map(ts)
            ])?;
        }
        for c in &s.credentials {
            let cred = &c.credential;
            insert_credential.execute(params![
                cred.id,
                a.id,
                cred.kind.as_str(),
                cred.label,
                cred.fingerprint,
                c.material,
                ts(cred.created_at),
                cred.disabled_at.map(ts),
                cred.last_used_at.map(ts)
            ])?;
        }
    }
    tx.execute(
        "UPDATE counters SET value = ?1 WHERE name = 'change_seq'",
        [seq],
    )?;
    Ok(())
}
