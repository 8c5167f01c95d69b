//! The SQLite bodies of the brake: revoking an agent's whole tree, reinstating it (alone or
//! with its tree), decommissioning with a cascade that stops at agents the caller may not
//! manage (closing the open review items of what it decommissions), and re-enabling a
//! credential: `BrakeStore` (brake.rs) for `SqliteStore`, sharing the transaction and audit helpers of `sqlite`; each call
//! is one transaction with its audit events.

use crate::registry::store::sql::{self, OptionalExtension, Tx};
use rusqlite::params;

use super::{
    SqliteStore, agent_by_id, append_audit, credentials_of, disable_credentials, facts, from_unix,
    mark_tokens_revoked, next_change, subtree, touch_agent, ts,
};
use crate::model::api::{DecommissionOutcome, DecommissionPlan};
use crate::model::brake::{ReinstatedAgent, SkippedAgent, StoppedAgent};
use crate::model::review::Decision;
use crate::model::{Actor, Agent, AgentStatus, Credential};
use crate::registry::store::{BrakeStore, Guard, Reinstated, Revoked, StoreError, StoreResult};

/// Who closes review items of a decommissioned agent, in the item's history.
pub const CLOSED_BY_DECOMMISSION: &str = "closed_by_decommission";

fn reinstated(agent: &Agent) -> ReinstatedAgent {
    ReinstatedAgent {
        agent_id: agent.id.clone(),
        name: agent.name.clone(),
        kind: agent.kind,
    }
}

/// The first ancestor of `id` that is not active, if any.
fn inactive_ancestor(tx: &Tx<'_>, id: &str) -> StoreResult<Option<Agent>> {
    let mut current = agent_by_id(tx, id)?.parent_id;
    let mut hops = 0;
    while let Some(parent_id) = current {
        let parent = agent_by_id(tx, &parent_id)?;
        if parent.status != AgentStatus::Active {
            return Ok(Some(parent));
        }
        current = parent.parent_id;
        hops += 1;
        if hops > 64 {
            break; // A cycle cannot be made through the API; never loop on a damaged file.
        }
    }
    Ok(None)
}

/// The agent and the agents under it that `guard` allows, breadth-first, target first; the
/// agents refused by `guard` are skipped with everything under them.
fn managed_tree(
    tx: &Tx<'_>,
    root: Agent,
    guard: Guard<'_>,
) -> StoreResult<(Vec<Agent>, Vec<SkippedAgent>)> {
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let mut queue = std::collections::VecDeque::from([root]);
    let mut children =
        tx.prepare_cached("SELECT id FROM agents WHERE parent_id = ?1 ORDER BY id")?;
    while let Some(agent) = queue.pop_front() {
        let ids = children
            .query_map([&agent.id], |r| r.get::<_, String>(0))?
            .collect::<sql::Result<Vec<_>>>()?;
        for id in ids {
            let child = agent_by_id(tx, &id)?;
            match guard(&facts(&child)) {
                Ok(()) => queue.push_back(child),
                // Refused either way: a caller who may not even read the agent is told 404.
                Err(StoreError::Forbidden(_) | StoreError::NotFound(_)) => {
                    skipped.push(SkippedAgent {
                        agent_id: child.id.clone(),
                        name: child.name.clone(),
                        why: match &child.owner {
                            Some(o) => format!("owned by {o}; only an admin decommissions it"),
                            None => "unowned; only an admin decommissions it".into(),
                        },
                        owner: child.owner,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        kept.push(agent);
    }
    Ok((kept, skipped))
}

impl BrakeStore for SqliteStore {
    fn revoke_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Revoked> {
        // The brake: before every ordinary write already waiting for the writer.
        self.write_urgent(|tx| {
            let root = agent_by_id(tx, agent_id)?;
            guard(&facts(&root))?;
            let ids = subtree(tx, agent_id)?;
            // First of all, every agent of the tree is blocked in the index and every live
            // token in which one acts (with everything exchanged from those) is inactive:
            // introspection and exchanges read the index, not this transaction.
            let now_unix = self.clock.unix();
            let killed: Vec<Vec<String>> = ids
                .iter()
                .map(|id| self.live.revoke_agent(id, now_unix))
                .collect();
            let now = ts(self.clock.now());
            let mut stopped = Vec::with_capacity(ids.len());
            let mut changed_any = false;
            for (id, killed) in ids.iter().zip(&killed) {
                let agent = agent_by_id(tx, id)?;
                let changed = agent.status == AgentStatus::Active;
                if changed {
                    let seq = next_change(tx)?;
                    tx.execute(
                        "UPDATE agents SET status = 'suspended', change_seq = ?1 WHERE id = ?2",
                        params![seq, id],
                    )?;
                }
                // Credentials are disabled even when the agent was already suspended: a
                // credential enabled since must not survive a repeated revoke.
                let credentials_disabled = disable_credentials(tx, id, &now)?;
                if credentials_disabled > 0 && !changed {
                    touch_agent(tx, id)?;
                }
                mark_tokens_revoked(tx, killed)?;
                changed_any |= changed || credentials_disabled > 0 || !killed.is_empty();
                stopped.push(StoppedAgent {
                    agent_id: id.clone(),
                    name: agent.name.clone(),
                    kind: agent.kind,
                    previous_status: agent.status,
                    status: if changed {
                        AgentStatus::Suspended
                    } else {
                        agent.status
                    },
                    tokens_killed: killed.len() as u64,
                    credentials_disabled,
                });
            }
            let audit_seq = if changed_any {
                // One event per agent the revoke changed; the target's names the whole tree.
                let mut root_seq = 0;
                for s in &stopped {
                    let is_root = s.agent_id == agent_id;
                    let acted = s.previous_status != s.status
                        || s.credentials_disabled > 0
                        || s.tokens_killed > 0;
                    if !is_root && !acted {
                        continue;
                    }
                    let mut details = serde_json::json!({
                        "previous_status": s.previous_status.as_str(),
                        "changed": s.previous_status != s.status,
                        "credentials_disabled": s.credentials_disabled,
                        "tokens_revoked": s.tokens_killed,
                    });
                    if is_root {
                        details["subtree"] = serde_json::json!(
                            stopped
                                .iter()
                                .skip(1)
                                .map(|d| &d.agent_id)
                                .collect::<Vec<_>>()
                        );
                        details["tokens_revoked_in_tree"] =
                            serde_json::json!(stopped.iter().map(|d| d.tokens_killed).sum::<u64>());
                    } else {
                        details["cascade_from"] = serde_json::json!(agent_id);
                    }
                    let seq = append_audit(
                        tx,
                        actor,
                        "agent.revoke",
                        Some(&s.agent_id),
                        "success",
                        reason,
                        &details,
                    )?;
                    if is_root {
                        root_seq = seq;
                    }
                }
                root_seq
            } else {
                // Nothing to do: a repeat records nothing and points at the revoke that did it.
                tx.query_row(
                    "SELECT coalesce(max(seq), 0) FROM audit_events
                     WHERE target = ?1 AND action = 'agent.revoke'",
                    [agent_id],
                    |r| r.get(0),
                )?
            };
            // From the index: a token issued a moment ago may not be in its table yet.
            let all_killed: Vec<String> = killed.iter().flatten().cloned().collect();
            let latest_token_expiry = self.live.latest_expiry(&all_killed).map(from_unix);
            let root_stop = &stopped[0];
            Ok(Revoked {
                previous_status: root.status,
                changed: root_stop.previous_status != root_stop.status,
                credentials_disabled: root_stop.credentials_disabled,
                tokens_revoked: stopped.iter().map(|s| s.tokens_killed).sum(),
                audit_seq,
                agent: agent_by_id(tx, agent_id)?,
                stopped,
                latest_token_expiry,
            })
        })
    }

    fn reinstate_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        whole_tree: bool,
        guard: Guard<'_>,
    ) -> StoreResult<Reinstated> {
        self.write(|tx| {
            let root = agent_by_id(tx, agent_id)?;
            guard(&facts(&root))?;
            if root.status == AgentStatus::Decommissioned {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} is decommissioned; it cannot be reinstated"
                )));
            }
            if let Some(parent) = inactive_ancestor(tx, agent_id)? {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} cannot be reinstated while {} ({}) above it is {}; \
                     reinstate that one with subtree to restart the tree",
                    parent.id,
                    parent.name,
                    parent.status.as_str()
                )));
            }
            let mut tree = Vec::new();
            for id in subtree(tx, agent_id)? {
                tree.push(agent_by_id(tx, &id)?);
            }
            let mut done = Vec::new();
            let mut still_suspended = Vec::new();
            for agent in &tree {
                if agent.status != AgentStatus::Suspended {
                    continue;
                }
                let is_root = agent.id == agent_id;
                if !is_root && !whole_tree {
                    still_suspended.push(reinstated(agent));
                    continue;
                }
                let seq = next_change(tx)?;
                tx.execute(
                    "UPDATE agents SET status = 'active', change_seq = ?1 WHERE id = ?2",
                    params![seq, agent.id],
                )?;
                // New tokens may name the agent again; the tokens killed by the revoke stay
                // dead, and its credentials stay disabled until someone re-enables them.
                self.live.unblock_agent(&agent.id);
                append_audit(
                    tx,
                    actor,
                    "agent.reinstate",
                    Some(&agent.id),
                    "success",
                    reason,
                    &serde_json::json!({
                        "previous_status": "suspended",
                        "subtree": whole_tree,
                        "cascade_from": if is_root { None } else { Some(agent_id) },
                    }),
                )?;
                done.push(reinstated(agent));
            }
            Ok(Reinstated {
                agent: agent_by_id(tx, agent_id)?,
                reinstated: done,
                still_suspended,
            })
        })
    }

    fn decommission_plan(&self, agent_id: &str, guard: Guard<'_>) -> StoreResult<DecommissionPlan> {
        self.read(|tx| {
            let root = agent_by_id(tx, agent_id)?;
            guard(&facts(&root))?;
            let (agents, skipped) = managed_tree(tx, root, guard)?;
            let mut grants = 0u32;
            let mut credentials = 0u32;
            for a in &agents {
                grants += a.grants.len() as u32;
                credentials += tx.query_row(
                    "SELECT count(*) FROM credentials WHERE agent_id = ?1 AND disabled_at IS NULL",
                    [&a.id],
                    |r| r.get::<_, u32>(0),
                )?;
            }
            Ok(DecommissionPlan {
                agent_id: agent_id.to_string(),
                agents: agents.into_iter().map(|a| a.id).collect(),
                grants,
                credentials,
                skipped,
            })
        })
    }

    fn decommission_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<DecommissionOutcome> {
        self.write(|tx| {
            let root = agent_by_id(tx, agent_id)?;
            guard(&facts(&root))?;
            let now = ts(self.clock.now());
            let (tree, skipped) = managed_tree(tx, root, guard)?;
            let mut decommissioned = Vec::new();
            let mut grants_removed = 0u32;
            let mut credentials_disabled = 0u32;
            let mut tokens_revoked = 0u64;
            let mut review_items_closed = 0u64;
            let mut audit_seq = 0;
            for target in &tree {
                let id = &target.id;
                let creds = disable_credentials(tx, id, &now)?;
                let grants = tx.execute("DELETE FROM grants WHERE agent_id = ?1", [id])? as u32;
                let killed = self.live.revoke_agent(id, self.clock.unix());
                mark_tokens_revoked(tx, &killed)?;
                tokens_revoked += killed.len() as u64;
                let changed = target.status != AgentStatus::Decommissioned;
                let closed = close_open_items(tx, actor, id, &now)?;
                review_items_closed += closed;
                if !changed && creds == 0 && grants == 0 && killed.is_empty() && closed == 0 {
                    continue;
                }
                let seq = next_change(tx)?;
                tx.execute(
                    "UPDATE agents SET status = 'decommissioned', change_seq = ?1 WHERE id = ?2",
                    params![seq, id],
                )?;
                let is_root = id == agent_id;
                let event = append_audit(
                    tx,
                    actor,
                    "agent.decommission",
                    Some(id),
                    "success",
                    reason,
                    &serde_json::json!({
                        "previous_status": target.status.as_str(),
                        "grants_removed": target.grants.iter().map(|g| &g.scope).collect::<Vec<_>>(),
                        "credentials_disabled": creds,
                        "tokens_revoked": killed.len(),
                        "review_items_closed": closed,
                        "cascade_from": if is_root { None } else { Some(agent_id) },
                        "skipped": if is_root {
                            serde_json::json!(skipped.iter().map(|s| &s.agent_id).collect::<Vec<_>>())
                        } else {
                            serde_json::Value::Null
                        },
                    }),
                )?;
                if is_root {
                    audit_seq = event;
                }
                grants_removed += grants;
                credentials_disabled += creds;
                decommissioned.push(id.clone());
            }
            if audit_seq == 0 {
                // Already fully decommissioned: say so in the record, change nothing.
                audit_seq = append_audit(
                    tx,
                    actor,
                    "agent.decommission",
                    Some(agent_id),
                    "success",
                    reason,
                    &serde_json::json!({"previous_status": "decommissioned", "changed": false}),
                )?;
            }
            Ok(DecommissionOutcome {
                agent_id: agent_id.to_string(),
                decommissioned,
                grants_removed,
                credentials_disabled,
                tokens_revoked,
                audit_seq,
                elapsed_ms: 0.0,
                skipped,
                review_items_closed,
            })
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
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            let row: Option<(String, bool)> = tx
                .query_row(
                    "SELECT fingerprint, disabled_at IS NOT NULL FROM credentials
                     WHERE id = ?1 AND agent_id = ?2",
                    params![credential_id, agent_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((fingerprint, disabled)) = row else {
                return Err(StoreError::NotFound(format!(
                    "agent {agent_id} has no credential {credential_id}"
                )));
            };
            let find = |tx: &Tx<'_>| {
                credentials_of(tx, agent_id)?
                    .into_iter()
                    .find(|c| c.id == credential_id)
                    .ok_or_else(|| StoreError::Internal("credential vanished".into()))
            };
            if !disabled {
                return find(tx);
            }
            match agent.status {
                AgentStatus::Active => {}
                AgentStatus::Suspended => {
                    return Err(StoreError::Conflict(format!(
                        "agent {agent_id} is suspended; reinstate it before enabling a credential"
                    )));
                }
                AgentStatus::Decommissioned => {
                    return Err(StoreError::Conflict(format!(
                        "agent {agent_id} is decommissioned; its credentials stay disabled"
                    )));
                }
            }
            let duplicate: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM credentials WHERE agent_id = ?1 AND fingerprint = ?2
                 AND disabled_at IS NULL)",
                params![agent_id, fingerprint],
                |r| r.get(0),
            )?;
            if duplicate {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} already has this key enabled (fingerprint {fingerprint})"
                )));
            }
            tx.execute(
                "UPDATE credentials SET disabled_at = NULL WHERE id = ?1 AND agent_id = ?2",
                params![credential_id, agent_id],
            )?;
            touch_agent(tx, agent_id)?;
            append_audit(
                tx,
                actor,
                "credential.enable",
                Some(agent_id),
                "success",
                reason,
                &serde_json::json!({"credential_id": credential_id, "fingerprint": fingerprint}),
            )?;
            find(tx)
        })
    }
}

/// Closes the undecided items of open campaigns about a decommissioned agent: the grant is
/// gone, so each is recorded as revoked, decided by the decommission (its history says so),
/// with one audit event for the agent. Returns how many were closed.
fn close_open_items(tx: &Tx<'_>, actor: &Actor, agent_id: &str, now: &str) -> StoreResult<u64> {
    let items: Vec<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT i.id, i.campaign_id, i.scope FROM review_items i
             JOIN campaigns c ON c.id = i.campaign_id
             WHERE i.agent_id = ?1 AND i.decision = 'none' AND c.status = 'open'
             ORDER BY i.id",
        )?
        .query_map([agent_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<sql::Result<Vec<_>>>()?;
    if items.is_empty() {
        return Ok(0);
    }
    let why = format!("closed: agent {agent_id} was decommissioned");
    let seq = append_audit(
        tx,
        actor,
        "review.close_by_decommission",
        Some(agent_id),
        "success",
        Some(&why),
        &serde_json::json!({
            "items": items.iter().map(|(id, c, scope)| serde_json::json!({
                "item_id": id, "campaign_id": c, "scope": scope,
            })).collect::<Vec<_>>(),
        }),
    )?;
    let revoke = Decision::Revoke.as_str();
    for (item_id, campaign_id, _) in &items {
        tx.execute(
            "UPDATE review_items SET decision = ?1, decided_by = ?2, decided_at = ?3,
                 justification = ?4, applied = 1, applied_at = ?3
             WHERE id = ?5",
            params![revoke, actor.id, now, why, item_id],
        )?;
        tx.execute(
            "INSERT INTO review_item_events (item_id, action, actor, at, justification, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![item_id, CLOSED_BY_DECOMMISSION, actor.id, now, why, seq],
        )?;
        tx.execute(
            "UPDATE campaigns SET items_revoked = items_revoked + 1 WHERE id = ?1",
            [campaign_id],
        )?;
    }
    Ok(items.len() as u64)
}
