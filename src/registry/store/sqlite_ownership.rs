//! The SQLite bodies of [`OwnershipStore`] and of owner succession. A child module of `sqlite`.

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{
    SqliteStore, agent_by_id, append_audit, facts, like_pattern, next_change, parse_opt_ts,
    parse_ts, person_by_email, ts,
};
use crate::model::api::UpdatePerson;
use crate::model::ownership::{Handover, LeaveOutcome, Succession};
use crate::model::{Actor, Agent, AgentStatus, Person};
use crate::registry::service::succession::{
    HANDOVER_ACTION, ORPHANED_ACTION, Successor, successor,
};
use crate::registry::store::Guard;
use crate::registry::store::ownership::{CandidateFacts, OwnershipStore};
use crate::registry::store::{StoreError, StoreResult};

/// Applies the succession rule to the live agents of `leaver`, who has just been marked as left
/// in this transaction: each goes to the successor (audited, with a handover reminder to them)
/// or stays orphaned (audited, and its change-feed position moves so that every console learns
/// of it). Decommissioned agents are left as they are.
pub(in crate::registry::store) fn succeed(
    tx: &Tx<'_>,
    actor: &Actor,
    leaver: &Person,
    now: DateTime<Utc>,
) -> StoreResult<Succession> {
    let manager = match &leaver.manager {
        Some(m) => person_by_email(tx, m)?,
        None => None,
    };
    let heir = successor(leaver, manager.as_ref());
    let agents: Vec<(String, String)> = tx
        .prepare(
            "SELECT a.id, a.name FROM agents a
             WHERE a.owner_id = ?1 AND a.status != 'decommissioned' ORDER BY a.id",
        )?
        .query_map([&leaver.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<sql::Result<_>>()?;
    let mut out = Succession::default();
    let at = ts(now);
    for (agent_id, agent_name) in &agents {
        let seq = next_change(tx)?;
        match (&heir, &manager) {
            (Successor::Manager(email), Some(m)) => {
                tx.execute(
                    "UPDATE agents SET prev_owner_id = owner_id, owner_id = ?1, change_seq = ?2
                     WHERE id = ?3",
                    params![m.id, seq, agent_id],
                )?;
                tx.execute(
                    "INSERT INTO owner_handovers (agent_id, from_email, to_email, at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![agent_id, leaver.email, email, at],
                )?;
                append_audit(
                    tx,
                    actor,
                    HANDOVER_ACTION,
                    Some(agent_id),
                    "success",
                    Some("owner left"),
                    &serde_json::json!({
                        "before": leaver.email, "after": email, "agent_name": agent_name,
                        "reminder_to": email,
                    }),
                )?;
                out.handed_over += 1;
            }
            _ => {
                tx.execute(
                    "UPDATE agents SET change_seq = ?1 WHERE id = ?2",
                    params![seq, agent_id],
                )?;
                append_audit(
                    tx,
                    actor,
                    ORPHANED_ACTION,
                    Some(agent_id),
                    "success",
                    Some("owner left and has no active manager"),
                    &serde_json::json!({"owner": leaver.email, "agent_name": agent_name}),
                )?;
                out.orphaned += 1;
            }
        }
    }
    // Their review work follows: to the heir, else to each campaign's fallback reviewer.
    let heir_email = match &heir {
        Successor::Manager(email) => Some(email.as_str()),
        Successor::Nobody => None,
    };
    out.review_items_moved = crate::registry::store::sqlite_reviews::hand_over_review_items(
        tx,
        actor,
        &leaver.email,
        heir_email,
        now,
    )?;
    if let Successor::Manager(email) = heir {
        out.successor = Some(email);
    }
    Ok(out)
}

fn handover_from_row(r: &Row<'_>) -> sql::Result<Handover> {
    Ok(Handover {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        agent_name: r.get(2)?,
        from: r.get(3)?,
        to: r.get(4)?,
        at: parse_ts(&r.get::<_, String>(5)?)?,
        acknowledged_at: parse_opt_ts(r.get(6)?)?,
    })
}

/// An agent's team, owner, when the owner left, and the managers who may inherit it.
type AgentOwnerFacts = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The most handovers one answer lists.
const MAX_HANDOVERS: i64 = 1000;

impl OwnershipStore for SqliteStore {
    fn leave(&self, actor: &Actor, email: &str) -> StoreResult<LeaveOutcome> {
        self.write(|tx| {
            let before = person_by_email(tx, email)?
                .ok_or_else(|| StoreError::NotFound(format!("no person with email {email}")))?;
            if !before.active {
                return Err(StoreError::Conflict(format!("{email} has already left")));
            }
            let req = UpdatePerson {
                active: Some(false),
                ..UpdatePerson::default()
            };
            let (person, succession) = self.update_person_tx(tx, actor, email, &req)?;
            Ok(LeaveOutcome {
                person,
                succession: succession.unwrap_or_default(),
            })
        })
    }

    fn clear_owner(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            if agent.status == AgentStatus::Decommissioned {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} is decommissioned"
                )));
            }
            if agent.owner.is_none() {
                return Ok(agent);
            }
            let seq = next_change(tx)?;
            tx.execute(
                "UPDATE agents SET prev_owner_id = owner_id, owner_id = NULL, change_seq = ?1
                 WHERE id = ?2",
                params![seq, agent_id],
            )?;
            append_audit(
                tx,
                actor,
                "agent.owner.clear",
                Some(agent_id),
                "success",
                reason,
                &serde_json::json!({"before": agent.owner, "after": null}),
            )?;
            agent_by_id(tx, agent_id)
        })
    }

    fn candidate_facts(&self, agent_id: &str, q: Option<&str>) -> StoreResult<CandidateFacts> {
        self.read(|tx| {
            let row: Option<AgentOwnerFacts> = tx
                .query_row(
                    "SELECT a.team, o.email, CASE WHEN o.active = 0 THEN o.left_at END,
                            om.email, pm.email
                     FROM agents a
                     LEFT JOIN people o ON o.id = a.owner_id
                     LEFT JOIN people om ON om.id = o.manager_id AND om.active = 1 AND o.active = 0
                     LEFT JOIN people po ON po.id = a.prev_owner_id
                     LEFT JOIN people pm ON pm.id = po.manager_id AND pm.active = 1
                     WHERE a.id = ?1",
                    [agent_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let (team, owner, left_at, owner_manager, prev_manager) =
                row.ok_or_else(|| StoreError::NotFound(format!("no agent with id {agent_id}")))?;
            let users: Vec<String> = tx
                .prepare(
                    "SELECT p.email FROM people p WHERE p.active = 1 AND (
                        p.email IN (SELECT DISTINCT t.subject FROM issued_tokens t
                                    WHERE t.client_id = ?1)
                        OR p.id IN (SELECT d.person_id FROM delegations d WHERE d.agent_id = ?1))",
                )?
                .query_map([agent_id], |r| r.get(0))?
                .collect::<sql::Result<_>>()?;
            let pattern = q.map(like_pattern);
            let people = tx
                .prepare(
                    "SELECT email, display_name, team FROM people WHERE active = 1
                     AND (?1 IS NULL OR lower(email) LIKE ?1 ESCAPE '\\'
                          OR lower(display_name) LIKE ?1 ESCAPE '\\')",
                )?
                .query_map([&pattern], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<sql::Result<_>>()?;
            Ok(CandidateFacts {
                agent_id: agent_id.to_string(),
                team,
                current_owner: owner,
                current_owner_left_at: parse_opt_ts(left_at)?,
                previous_owner_managers: owner_manager.into_iter().chain(prev_manager).collect(),
                users,
                people,
            })
        })
    }

    fn handovers(&self, email: &str, all: bool) -> StoreResult<Vec<Handover>> {
        self.read(|tx| {
            Ok(tx
                .prepare(
                    "SELECT h.id, h.agent_id, coalesce(a.name, h.agent_id), h.from_email,
                            h.to_email, h.at, h.acknowledged_at
                     FROM owner_handovers h LEFT JOIN agents a ON a.id = h.agent_id
                     WHERE h.to_email = ?1 AND (?2 OR h.acknowledged_at IS NULL)
                     ORDER BY h.id DESC LIMIT ?3",
                )?
                .query_map(params![email, all, MAX_HANDOVERS], handover_from_row)?
                .collect::<sql::Result<_>>()?)
        })
    }

    fn acknowledge_handovers(&self, actor: &Actor, email: &str) -> StoreResult<u64> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE owner_handovers SET acknowledged_at = ?1
                 WHERE to_email = ?2 AND acknowledged_at IS NULL",
                params![ts(self.clock.now()), email],
            )? as u64;
            if n > 0 {
                append_audit(
                    tx,
                    actor,
                    "owner.handovers.acknowledge",
                    Some(email),
                    "success",
                    None,
                    &serde_json::json!({"acknowledged": n}),
                )?;
            }
            Ok(n)
        })
    }
}
