//! Bulk seeding of an empty store (the demo enterprise): the agents' trigram text index
//! (`agents_text`, migration 11) is filled once after the last batch instead of row by row by
//! its insert trigger. Row by row through the trigger cost about four times as much as one
//! `rebuild` (100,000 demo-like agents: 93–100 s against 25 s, on a loaded machine).
//!
//! While a bulk seed runs the insert trigger is absent; [`repair_text_index`] restores it and
//! rebuilds the index, after the last batch and at every open (so a seed cut short by a crash
//! never leaves agents out of search).

use crate::registry::store::sql::{self, OptionalExtension, Tx};
use rusqlite::params;

use super::{SqliteStore, invalid, roles_text, ts};
use crate::model::AgentStatus;
use crate::registry::store::{SeedBatch, SeedStore, StoreError, StoreResult};

/// Migration 11's insert trigger, as SQLite keeps it.
const TEXT_TRIGGER: &str = "CREATE TRIGGER agents_text_insert AFTER INSERT ON agents BEGIN
        INSERT INTO agents_text(rowid, id, name, description)
        VALUES (new.rowid, new.id, new.name, new.description);
    END";

/// The PostgreSQL schema's trigram index (migrations/postgres/01_schema.sql).
const PG_TEXT_INDEX: &str = "CREATE INDEX IF NOT EXISTS agents_text_trgm ON agents
    USING gin ((id || ' ' || name || ' ' || description) gin_trgm_ops)";

/// Rebuilds the text index from the agents table and restores its insert trigger if the
/// trigger is missing (a bulk seed in progress or cut short). Returns whether it did.
pub(super) fn repair_text_index(conn: &Tx<'_>) -> sql::Result<bool> {
    if conn.is_postgres() {
        // PostgreSQL's trigram index is kept by the database; a bulk seed drops it until the end.
        let present: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pg_indexes
                            WHERE schemaname = current_schema() AND indexname = 'agents_text_trgm')",
            [],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(PG_TEXT_INDEX)?;
        }
        return Ok(!present);
    }
    let present: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master
                        WHERE type = 'trigger' AND name = 'agents_text_insert')",
        [],
        |r| r.get(0),
    )?;
    if present {
        return Ok(false);
    }
    conn.execute_batch("INSERT INTO agents_text(agents_text) VALUES ('rebuild');")?;
    conn.execute_batch(TEXT_TRIGGER)?;
    Ok(true)
}

impl SqliteStore {
    /// Starts a bulk seed: only on a store without agents, the text index's insert trigger is
    /// dropped until [`SqliteStore::sd_seed_finish`].
    pub(super) fn sd_seed_start(&self) -> StoreResult<()> {
        self.write(|tx| {
            let empty: bool =
                tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM agents)", [], |r| r.get(0))?;
            if !empty {
                return Err(StoreError::Conflict(
                    "a bulk seed starts only on a store without agents".into(),
                ));
            }
            if tx.is_postgres() {
                tx.execute_batch("DROP INDEX IF EXISTS agents_text_trgm")?;
            } else {
                tx.execute_batch("DROP TRIGGER IF EXISTS agents_text_insert;")?;
            }
            Ok(())
        })
    }

    /// Ends a bulk seed: the text index is built in one pass and its trigger restored.
    pub(super) fn sd_seed_finish(&self) -> StoreResult<()> {
        self.write(|tx| {
            repair_text_index(tx)?;
            Ok(())
        })
    }
}

impl SeedStore for SqliteStore {
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
        let file = match &self.engine {
            super::Engine::Sqlite(file) => file,
            super::Engine::Postgres(_) => {
                self.write(|tx| seed_batch(tx, batch))?;
                self.block_seeded(batch);
                return Ok(());
            }
        };
        let mut conn = file
            .writer
            .lock()
            .map_err(|_| StoreError::Internal("the writer connection was poisoned".into()))?;
        // A bulk batch touches far more pages than an ordinary write; with the default 2 MiB
        // page cache each miss is a read system call. Durability settings stay as they are.
        let previous: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
        conn.pragma_update(None, "cache_size", SEED_CACHE_SIZE)?;
        let result: StoreResult<()> = (|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            seed_batch(&Tx::sqlite(&tx), batch)?;
            tx.commit()?;
            Ok(())
        })();
        let restored = conn.pragma_update(None, "cache_size", previous);
        result?;
        // Seeded agents, people and grants: the facts' copy is stale (under the writer).
        self.facts.invalidate();
        restored?;
        drop(conn);
        self.block_seeded(batch);
        Ok(())
    }
}

impl SqliteStore {
    fn block_seeded(&self, batch: &SeedBatch) {
        // Seeded agents that are not active must never get tokens.
        self.live.block_agents(
            batch
                .agents
                .iter()
                .filter(|a| a.agent.status != AgentStatus::Active)
                .map(|a| a.agent.id.as_str()),
        );
    }
}

/// The writer's page cache while seeding, in SQLite's unit (negative: KiB): 256 MiB.
const SEED_CACHE_SIZE: i64 = -256 * 1024;

/// Inserts a batch of seeded people and agents with prepared statements in the caller's
/// transaction. Each record takes the next position in the change feed. Owners and managers
/// are resolved once per email and batch; one that is neither in the batch nor stored fails
/// the whole batch rather than being dropped.
fn seed_batch<'b>(tx: &Tx<'_>, batch: &'b SeedBatch) -> StoreResult<()> {
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
