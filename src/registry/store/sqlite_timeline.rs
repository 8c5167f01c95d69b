//! The SQLite body of [`TimelineStore`](super::super::timeline::TimelineStore): governance events
//! from the audit log and token exchanges, each read newest first by its own index and merged.
//!
//! Exchanges come from one function, [`exchange_entries`]: today it reads the token table; when
//! the activity record exists it is the one place to switch.

use std::collections::HashMap;

use crate::registry::store::sql::{self, OptionalExtension, Tx};
use rusqlite::params;

use super::{SqliteStore, audit_from_row, from_unix, parse_json_list, ts};
use crate::model::timeline::{TimelineEntry, TimelineKey, TimelinePage, TimelineSource};
use crate::model::{ActorKind, AuditEvent};
use crate::registry::store::StoreResult;
use crate::registry::store::timeline::{TimelineFilter, TimelineStore};

impl TimelineStore for SqliteStore {
    fn timeline(&self, filter: &TimelineFilter) -> StoreResult<TimelinePage> {
        let limit = filter
            .limit
            .clamp(1, crate::model::timeline::MAX_TIMELINE_PAGE);
        self.read(|tx| {
            let mut names = Names::default();
            let mut entries = audit_entries(tx, filter, limit + 1, &mut names)?;
            let wants_exchanges =
                filter.include_exchanges && filter.actor_kind.is_none_or(|k| k == ActorKind::Agent);
            if wants_exchanges {
                entries.extend(exchange_entries(tx, filter, limit + 1, &mut names)?);
            }
            entries.sort_by_key(|e| std::cmp::Reverse(e.key()));
            let next = if entries.len() > limit as usize {
                entries.truncate(limit as usize);
                entries.last().map(TimelineEntry::cursor)
            } else {
                None
            };
            Ok(TimelinePage { entries, next })
        })
    }

    fn backfill_registrations(&self, actor: &crate::model::Actor) -> StoreResult<u64> {
        self.tl_backfill_registrations(actor)
    }

    fn import_token_history(
        &self,
        tokens: &[crate::registry::tokens::live::TokenRecord],
    ) -> StoreResult<()> {
        self.tl_import_token_history(tokens)
    }
}

/// Agent ids to names, looked up once per page.
#[derive(Default)]
struct Names(HashMap<String, Option<String>>);

impl Names {
    fn of(&mut self, tx: &Tx<'_>, id: &str) -> sql::Result<String> {
        if !self.0.contains_key(id) {
            let name: Option<String> = tx
                .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            self.0.insert(id.to_string(), name);
        }
        Ok(self.0[id].clone().unwrap_or_else(|| id.to_string()))
    }
}

/// The cursor's bound for the audit log: (time, seq) strictly below it.
fn audit_bound(before: Option<&TimelineKey>) -> (Option<String>, i64) {
    match before {
        None => (None, 0),
        // An exchange at the same time sorts below every audit event of that time.
        Some(k) if k.source_rank == 0 => (Some(k.time.clone()), 0),
        Some(k) => (Some(k.time.clone()), k.id.parse().unwrap_or(0)),
    }
}

fn audit_entries(
    tx: &Tx<'_>,
    f: &TimelineFilter,
    n: u32,
    names: &mut Names,
) -> StoreResult<Vec<TimelineEntry>> {
    let (before_time, before_seq) = audit_bound(f.before.as_ref());
    let kind = f.actor_kind.map(|k| k.as_str());
    let mut stmt = tx.prepare_cached(
        "SELECT seq, time, actor, action, target, outcome, reason, details, prev_hash, hash
         FROM audit_events
         WHERE (?1 IS NULL OR target = ?1 OR actor_id = ?1)
           AND (?2 IS NULL OR time < ?2 OR (time = ?2 AND seq < ?3))
           AND (?4 IS NULL OR json_extract(actor, '$.kind') = ?4)
           AND (?5 IS NULL
                OR instr(lower(action || ' ' || actor || ' ' || coalesce(target, '') || ' '
                               || outcome || ' ' || coalesce(reason, '') || ' ' || details), ?5) > 0
                OR target IN (SELECT id FROM agents WHERE instr(lower(name), ?5) > 0))
         ORDER BY time DESC, seq DESC LIMIT ?6",
    )?;
    let events = stmt
        .query_map(
            params![f.agent, before_time, before_seq, kind, f.text, n],
            audit_from_row,
        )?
        .collect::<sql::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        out.push(audit_entry(tx, e, names)?);
    }
    Ok(out)
}

fn audit_entry(tx: &Tx<'_>, e: AuditEvent, names: &mut Names) -> sql::Result<TimelineEntry> {
    let actor = match e.actor.kind {
        ActorKind::Agent => names.of(tx, &e.actor.id)?,
        _ => e.actor.id.clone(),
    };
    // The stored chain is newest actor first; shown oldest first, the newest actor outermost.
    let mut chain = Vec::new();
    if e.actor.on_behalf_of.is_some() || !e.actor.chain.is_empty() {
        if let Some(p) = &e.actor.on_behalf_of {
            chain.push(p.clone());
        }
        if e.actor.chain.is_empty() {
            chain.push(actor.clone());
        } else {
            for id in e.actor.chain.iter().rev() {
                chain.push(names.of(tx, id)?);
            }
        }
    }
    Ok(TimelineEntry {
        time: e.time,
        source: TimelineSource::Audit,
        id: e.seq.to_string(),
        actor_kind: e.actor.kind,
        actor,
        chain,
        what: what_of(&e.action, &e.details),
        action: e.action,
        target: e.target,
        outcome: e.outcome,
        reason: e.reason,
    })
}

/// The decision and scope of a review event, a grant's scope, a revoke's count.
fn what_of(action: &str, d: &serde_json::Value) -> String {
    let s = |k: &str| d.get(k).and_then(|v| v.as_str());
    match (s("decision"), s("scope")) {
        (Some(decision), Some(scope)) => return format!("{decision} {scope}"),
        (None, Some(scope)) => return scope.to_string(),
        _ => {}
    }
    if action == "agent.revoke" {
        let killed = d
            .get("tokens_revoked_in_tree")
            .or_else(|| d.get("tokens_revoked"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        return format!("{killed} tokens killed");
    }
    if let Some(decision) = s("decision") {
        return decision.to_string();
    }
    String::new()
}

/// Token exchanges, newest first, below the cursor. The one reader of exchange history.
fn exchange_entries(
    tx: &Tx<'_>,
    f: &TimelineFilter,
    n: u32,
    names: &mut Names,
) -> StoreResult<Vec<TimelineEntry>> {
    // Exchanges carry whole seconds: an entry at SECS.000000 is below a cursor at a later
    // instant, or at the same instant when the cursor is an audit event (which sorts above).
    let (max_secs, jti_below): (i64, Option<String>) = match &f.before {
        None => (i64::MAX, None),
        Some(k) => {
            let t = chrono::DateTime::parse_from_rfc3339(&k.time)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_default();
            let whole = t.timestamp_subsec_micros() == 0;
            if whole && k.source_rank == 0 {
                (t.timestamp(), Some(k.id.clone()))
            } else {
                (t.timestamp(), None)
            }
        }
    };
    let mut stmt = tx.prepare_cached(
        "SELECT t.jti, t.subject, t.client_id, t.actors, t.scopes, t.audience, t.issued_at,
                EXISTS (SELECT 1 FROM token_revocations r WHERE r.jti = t.jti)
         FROM issued_tokens t
         WHERE t.kind = 'exchange'
           AND (t.issued_at < ?1 OR (t.issued_at = ?1 AND (?2 IS NULL OR t.jti < ?2)))
           AND (?3 IS NULL OR t.client_id = ?3
                OR EXISTS (SELECT 1 FROM json_each(t.actors) j WHERE j.value = ?3))
           AND (?4 IS NULL
                OR instr(lower(t.subject || ' ' || t.actors || ' ' || t.scopes || ' '
                               || t.audience || ' token.exchange'), ?4) > 0
                OR EXISTS (SELECT 1 FROM json_each(t.actors) j JOIN agents a ON a.id = j.value
                           WHERE instr(lower(a.name), ?4) > 0))
         ORDER BY t.issued_at DESC, t.jti DESC LIMIT ?5",
    )?;
    let rows = stmt
        .query_map(params![max_secs, jti_below, f.agent, f.text, n], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                parse_json_list(&r.get::<_, String>(3)?)?,
                parse_json_list(&r.get::<_, String>(4)?)?,
                parse_json_list(&r.get::<_, String>(5)?)?,
                r.get::<_, i64>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (jti, subject, client_id, actors, scopes, audience, issued_at, revoked) in rows {
        // `actors` is newest first: the chain reads person → oldest agent → … → newest.
        let mut chain = vec![subject];
        for id in actors.iter().rev() {
            chain.push(names.of(tx, id)?);
        }
        let newest = actors.first().cloned().or(client_id).unwrap_or_default();
        out.push(TimelineEntry {
            time: ts(from_unix(issued_at)),
            source: TimelineSource::Exchange,
            id: jti,
            actor_kind: ActorKind::Agent,
            actor: names.of(tx, &newest)?,
            chain,
            action: "token.exchange".into(),
            target: (!audience.is_empty()).then(|| audience.join(" ")),
            what: scopes.join(" "),
            outcome: if revoked { "revoked" } else { "issued" }.into(),
            reason: None,
        });
    }
    Ok(out)
}

/// Registrations backfilled per transaction.
const BACKFILL_CHUNK: usize = 5000;

impl SqliteStore {
    pub(super) fn tl_backfill_registrations(
        &self,
        actor: &crate::model::Actor,
    ) -> StoreResult<u64> {
        let mut written = 0u64;
        let mut after = String::new();
        loop {
            let agents: Vec<(String, String, String, String, String, String)> =
                self.read(|tx| {
                    let mut stmt = tx.prepare(
                        "SELECT a.id, a.name, a.kind, a.team, a.source, a.created_at FROM agents a
                     WHERE a.id > ?1 AND NOT EXISTS (SELECT 1 FROM audit_events e
                        WHERE e.target = a.id AND e.action = 'agent.register')
                     ORDER BY a.id LIMIT ?2",
                    )?;
                    let rows = stmt
                        .query_map(params![after, BACKFILL_CHUNK as i64], |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        })?
                        .collect::<sql::Result<Vec<_>>>()?;
                    Ok(rows)
                })?;
            let Some(last) = agents.last() else {
                return Ok(written);
            };
            after = last.0.clone();
            self.write(|tx| {
                for (id, name, kind, team, source, created_at) in &agents {
                    let at = chrono::DateTime::parse_from_rfc3339(created_at)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|e| crate::registry::store::StoreError::Internal(e.to_string()))?;
                    super::at_audit_time(at, || {
                        super::append_audit(
                            tx,
                            actor,
                            "agent.register",
                            Some(id),
                            "success",
                            None,
                            &serde_json::json!({
                                "name": name, "kind": kind, "team": team, "source": source,
                                "backfilled": true,
                            }),
                        )
                    })?;
                }
                Ok(())
            })?;
            written += agents.len() as u64;
        }
    }

    pub(super) fn tl_import_token_history(
        &self,
        tokens: &[crate::registry::tokens::live::TokenRecord],
    ) -> StoreResult<()> {
        let now = self.clock.unix();
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO issued_tokens (jti, kind, digest, kid, subject, client_id,
                    actors, parent_jti, scopes, audience, may_act, subject_source, client_auth,
                    credential_id, issued_at, expires_at, api_token_id, delegation_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18)",
            )?;
            for t in tokens {
                insert.execute(params![
                    t.jti,
                    t.kind.as_str(),
                    hex::encode(t.digest),
                    t.kid,
                    t.subject,
                    t.client_id,
                    super::json_list(&t.actors),
                    t.parent_jti,
                    super::json_list(&t.scopes),
                    super::json_list(&t.audience),
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
            Ok(())
        })?;
        // Oldest first, so that a parent is in the index before the tokens exchanged from it.
        let mut live: Vec<&crate::registry::tokens::live::TokenRecord> =
            tokens.iter().filter(|t| t.expires_at > now).collect();
        live.sort_by_key(|t| t.issued_at);
        for t in live {
            // A token the index refuses (its agent is suspended) is history only.
            let _ = self.live.issue(t.clone(), now);
        }
        Ok(())
    }
}
