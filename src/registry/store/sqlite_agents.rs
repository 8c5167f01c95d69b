//! The SQLite bodies of [`AgentStore`]: listing, registering, grants and owners. The brake
//! (revoke over the tree, reinstate, decommission) lives in sqlite_brake.rs; this file
//! forwards to it.

use crate::registry::store::sql::{self};
use rusqlite::params;

use super::sqlite::{
    SqliteStore, agent_by_id, append_audit, bad_value, credentials_of, facts, invalid,
    kill_grant_tokens, like_pattern, load_agents, new_id, next_change, page, person_by_email,
    touch_agent, trigram_phrase, ts,
};
use super::{AgentStore, Guard, StoreError, StoreResult, Visibility};
use crate::model::api::{AgentPage, AgentQuery, RegisterAgent};
use crate::model::{
    Actor, Agent, AgentDetail, AgentKind, AgentRef, AgentSource, AgentStatus, Grant,
};

impl AgentStore for SqliteStore {
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
                if tx.is_postgres() {
                    // PostgreSQL's trigram index is on the three columns joined (agents_text_trgm).
                    clauses.push(format!(
                        "(a.id || ' ' || a.name || ' ' || a.description) LIKE ?{n} ESCAPE '\\'"
                    ));
                } else if let Some(phrase) = trigram_phrase(q) {
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
                    "1 = 1".to_string()
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
                Ok(rows.collect::<sql::Result<Vec<_>>>()?)
            };
            let parent = refs(
                "SELECT p.id, p.name, p.kind, p.status FROM agents a JOIN agents p ON p.id = a.parent_id WHERE a.id = ?1",
            )?
            .pop();
            let children = refs(
                "SELECT id, name, kind, status FROM agents WHERE parent_id = ?1 ORDER BY name, id",
            )?;
            let requests = super::sqlite::approvals::pending_for_agent(tx, id, self.clock.now())?;
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
                super::sqlite::approvals::file_grant_request(
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
}
