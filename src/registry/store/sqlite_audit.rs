//! The SQLite bodies of [`AuditStore`]: the audit log's pages, verification and head, notes,
//! and the change feed. Appending an event is `sqlite::append_audit`, called by every area in
//! the transaction of its change.

use crate::registry::store::sql::{self, OptionalExtension};
use rusqlite::params;

use super::sqlite::{
    PERSON_COLUMNS, SqliteStore, append_audit, audit_from_row, load_agents, page, person_from_row,
    person_id,
};
use super::{AuditStore, StoreError, StoreResult, Visibility};
use crate::model::Actor;
use crate::model::api::{AuditPage, AuditQuery, AuditVerification, ChangeFeed};
use crate::model::audit::{ChainVerifier, GENESIS_HASH};

impl AuditStore for SqliteStore {
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
                .collect::<sql::Result<Vec<_>>>()?;
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
                let event = match audit_from_row(&row) {
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
                .collect::<sql::Result<Vec<_>>>()?;
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

    fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        details: serde_json::Value,
    ) -> StoreResult<i64> {
        self.write(|tx| append_audit(tx, actor, action, target, "success", None, &details))
    }
}
