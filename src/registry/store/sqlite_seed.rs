//! Bulk seeding of an empty store (the demo enterprise): the agents' trigram text index
//! (`agents_text`, migration 11) is filled once after the last batch instead of row by row by
//! its insert trigger. Row by row through the trigger cost about four times as much as one
//! `rebuild` (100,000 demo-like agents: 93–100 s against 25 s, on a loaded machine).
//!
//! While a bulk seed runs the insert trigger is absent; [`repair_text_index`] restores it and
//! rebuilds the index, after the last batch and at every open (so a seed cut short by a crash
//! never leaves agents out of search).

use rusqlite::Connection;

use super::SqliteStore;
use crate::registry::store::{StoreError, StoreResult};

/// Migration 11's insert trigger, as SQLite keeps it.
const TEXT_TRIGGER: &str = "CREATE TRIGGER agents_text_insert AFTER INSERT ON agents BEGIN
        INSERT INTO agents_text(rowid, id, name, description)
        VALUES (new.rowid, new.id, new.name, new.description);
    END";

/// Rebuilds the text index from the agents table and restores its insert trigger if the
/// trigger is missing (a bulk seed in progress or cut short). Returns whether it did.
pub(super) fn repair_text_index(conn: &Connection) -> rusqlite::Result<bool> {
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
            tx.execute_batch("DROP TRIGGER IF EXISTS agents_text_insert;")?;
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
