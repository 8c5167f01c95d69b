//! The SQLite bodies of [`FlagStore`]. A child module of `sqlite`.

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use rusqlite::params;

use super::{SqliteStore, append_audit, new_id, next_change, parse_opt_ts, parse_ts, ts};
use crate::model::Actor;
use crate::model::flag::{Evidence, Flag, FlagKind, FlagQuery, FlagState, Severity, flag_label};
use crate::registry::store::flags::{FlagStore, NewFlag};
use crate::registry::store::{StoreError, StoreResult, Visibility};

const COLUMNS: &str = "f.id, f.agent_id, f.kind, f.severity, f.state, f.summary, f.evidence, \
    f.refused_only, f.auto_suspended, f.opened_at, f.acknowledged_by, f.acknowledged_at, \
    f.acknowledge_reason, f.resolved_by, f.resolved_at, f.resolve_reason";

const SEVERITY_RANK: &str = "CASE f.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 \
    WHEN 'medium' THEN 2 ELSE 1 END";

fn bad(what: &str, v: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {v:?} in the database").into(),
    )
}

fn flag_from_row(r: &Row<'_>) -> sql::Result<Flag> {
    let kind: String = r.get(2)?;
    let severity: String = r.get(3)?;
    let state: String = r.get(4)?;
    let evidence: String = r.get(6)?;
    Ok(Flag {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        kind: FlagKind::parse(&kind).ok_or_else(|| bad("flag kind", &kind))?,
        severity: Severity::parse(&severity).ok_or_else(|| bad("severity", &severity))?,
        state: FlagState::parse(&state).ok_or_else(|| bad("flag state", &state))?,
        summary: r.get(5)?,
        evidence: serde_json::from_str::<Evidence>(&evidence)
            .map_err(|_| bad("evidence", &evidence))?,
        refused_only: r.get(7)?,
        auto_suspended: r.get(8)?,
        opened_at: parse_ts(&r.get::<_, String>(9)?)?,
        acknowledged_by: r.get(10)?,
        acknowledged_at: parse_opt_ts(r.get(11)?)?,
        acknowledge_reason: r.get(12)?,
        resolved_by: r.get(13)?,
        resolved_at: parse_opt_ts(r.get(14)?)?,
        resolve_reason: r.get(15)?,
    })
}

fn flag_by_id(tx: &Tx<'_>, id: &str) -> StoreResult<Option<(Flag, Option<String>)>> {
    Ok(tx
        .query_row(
            &format!(
                "SELECT {COLUMNS}, o.email FROM flags f JOIN agents a ON a.id = f.agent_id
                 LEFT JOIN people o ON o.id = a.owner_id WHERE f.id = ?1"
            ),
            [id],
            |r| Ok((flag_from_row(r)?, r.get::<_, Option<String>>(16)?)),
        )
        .optional()?)
}

/// Rewrites the agent's `flags` labels from its unresolved flags (highest severity first) and
/// moves it up the change feed.
fn relabel(tx: &Tx<'_>, agent_id: &str) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT f.severity, f.kind FROM flags f WHERE f.agent_id = ?1 AND f.state != 'resolved'
         ORDER BY {SEVERITY_RANK} DESC, f.opened_at"
    ))?;
    let mut labels: Vec<String> = Vec::new();
    for row in stmt.query_map([agent_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (s, k) = row?;
        if let (Some(s), Some(k)) = (Severity::parse(&s), FlagKind::parse(&k)) {
            let l = flag_label(s, k);
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
    }
    let seq = next_change(tx)?;
    tx.execute(
        "UPDATE agents SET flags = ?1, change_seq = ?2 WHERE id = ?3",
        params![labels.join(","), seq, agent_id],
    )?;
    Ok(())
}

impl FlagStore for SqliteStore {
    fn open_flag(&self, new: &NewFlag) -> StoreResult<Option<Flag>> {
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM agents WHERE id = ?1", [&new.agent_id], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!(
                    "no agent with id {}",
                    new.agent_id
                )));
            }
            let dup: Option<String> = tx
                .query_row(
                    "SELECT id FROM flags WHERE agent_id = ?1 AND kind = ?2 AND dedup_key = ?3
                     AND state != 'resolved'",
                    params![new.agent_id, new.kind.as_str(), new.key],
                    |r| r.get(0),
                )
                .optional()?;
            if dup.is_some() {
                return Ok(None);
            }
            let id = new_id("flg");
            let evidence = serde_json::to_string(&new.evidence)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            tx.execute(
                "INSERT INTO flags (id, agent_id, kind, severity, dedup_key, state, summary, evidence, refused_only, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?8, ?9)",
                params![
                    id,
                    new.agent_id,
                    new.kind.as_str(),
                    new.severity.as_str(),
                    new.key,
                    new.summary,
                    evidence,
                    new.refused_only,
                    ts(new.at.min(self.clock.now())),
                ],
            )?;
            append_audit(
                tx,
                &Actor::system("steward-behaviour"),
                "flag.open",
                Some(&new.agent_id),
                "success",
                Some(&new.summary),
                &serde_json::json!({
                    "flag": id,
                    "kind": new.kind.as_str(),
                    "severity": new.severity.as_str(),
                    "observed": new.evidence.observed,
                    "baseline": new.evidence.baseline,
                    "refused_only": new.refused_only,
                }),
            )?;
            relabel(tx, &new.agent_id)?;
            Ok(flag_by_id(tx, &id)?.map(|(f, _)| f))
        })
    }

    fn list_flags(&self, q: &FlagQuery, visibility: &Visibility) -> StoreResult<Vec<Flag>> {
        let limit = q.limit.unwrap_or(200).clamp(1, 1000);
        self.read(|tx| {
            let mut clauses: Vec<String> = Vec::new();
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
            if let Some(agent) = &q.agent {
                args.push(Box::new(agent.clone()));
                clauses.push(format!("f.agent_id = ?{}", args.len()));
            }
            if let Some(sev) = q.severity {
                let rank = Severity::ALL.iter().position(|s| *s == sev).unwrap_or(0) + 1;
                args.push(Box::new(rank as i64));
                clauses.push(format!("{SEVERITY_RANK} >= ?{}", args.len()));
            }
            match q.state.as_deref() {
                None => {}
                Some("unresolved") => clauses.push("f.state != 'resolved'".into()),
                Some(s) => {
                    let state = FlagState::parse(s).ok_or_else(|| StoreError::Invalid {
                        code: "invalid_state",
                        message: format!(
                            "state must be open, acknowledged, resolved or unresolved, not {s:?}"
                        ),
                    })?;
                    args.push(Box::new(state.as_str()));
                    clauses.push(format!("f.state = ?{}", args.len()));
                }
            }
            if let Some(since) = q.since {
                args.push(Box::new(ts(since)));
                clauses.push(format!("f.opened_at >= ?{}", args.len()));
            }
            if let Visibility::OwnedBy(email) = visibility {
                args.push(Box::new(email.clone()));
                clauses.push(format!("o.email = ?{}", args.len()));
            }
            args.push(Box::new(limit as i64));
            let sql = format!(
                "SELECT {COLUMNS} FROM flags f JOIN agents a ON a.id = f.agent_id
                 LEFT JOIN people o ON o.id = a.owner_id {} ORDER BY {SEVERITY_RANK} DESC,
                 f.opened_at DESC, f.id LIMIT ?{}",
                if clauses.is_empty() {
                    String::new()
                } else {
                    format!("WHERE {}", clauses.join(" AND "))
                },
                args.len()
            );
            let mut stmt = tx.prepare(&sql)?;
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
            let rows = stmt
                .query_map(refs.as_slice(), flag_from_row)?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn flag(&self, id: &str) -> StoreResult<Option<(Flag, Option<String>)>> {
        self.read(|tx| flag_by_id(tx, id))
    }

    fn decide_flag(
        &self,
        actor: &Actor,
        id: &str,
        to: FlagState,
        reason: &str,
        guard: &(dyn Fn(&Flag, Option<&str>) -> StoreResult<()> + Sync),
    ) -> StoreResult<Flag> {
        self.write(|tx| {
            let (flag, owner) = flag_by_id(tx, id)?
                .ok_or_else(|| StoreError::NotFound(format!("no flag with id {id}")))?;
            guard(&flag, owner.as_deref())?;
            let allowed = match to {
                FlagState::Acknowledged => flag.state == FlagState::Open,
                FlagState::Resolved => flag.state != FlagState::Resolved,
                FlagState::Open => false,
            };
            if !allowed {
                return Err(StoreError::Refused {
                    status: 409,
                    code: "flag_state",
                    message: format!(
                        "flag {id} is already {}{}; it cannot be {}",
                        flag.state.as_str(),
                        match flag.state {
                            FlagState::Acknowledged => format!(
                                " (by {}: {})",
                                flag.acknowledged_by.clone().unwrap_or_default(),
                                flag.acknowledge_reason.clone().unwrap_or_default()
                            ),
                            FlagState::Resolved => format!(
                                " (by {}: {})",
                                flag.resolved_by.clone().unwrap_or_default(),
                                flag.resolve_reason.clone().unwrap_or_default()
                            ),
                            FlagState::Open => String::new(),
                        },
                        to.as_str()
                    ),
                });
            }
            let now = ts(self.clock.now());
            let action = match to {
                FlagState::Acknowledged => {
                    tx.execute(
                        "UPDATE flags SET state = 'acknowledged', acknowledged_by = ?1,
                         acknowledged_at = ?2, acknowledge_reason = ?3 WHERE id = ?4",
                        params![actor.id, now, reason, id],
                    )?;
                    "flag.acknowledge"
                }
                _ => {
                    tx.execute(
                        "UPDATE flags SET state = 'resolved', resolved_by = ?1,
                         resolved_at = ?2, resolve_reason = ?3 WHERE id = ?4",
                        params![actor.id, now, reason, id],
                    )?;
                    "flag.resolve"
                }
            };
            append_audit(
                tx,
                actor,
                action,
                Some(&flag.agent_id),
                "success",
                Some(reason),
                &serde_json::json!({
                    "flag": id,
                    "kind": flag.kind.as_str(),
                    "severity": flag.severity.as_str(),
                    "from": flag.state.as_str(),
                    "to": to.as_str(),
                }),
            )?;
            relabel(tx, &flag.agent_id)?;
            Ok(flag_by_id(tx, id)?.expect("updated above").0)
        })
    }

    fn mark_auto_suspended(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE flags SET auto_suspended = 1 WHERE id = ?1",
                params![id],
            )?;
            Ok(())
        })
    }
}
