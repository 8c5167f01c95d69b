//! The SQLite bodies of [`DelegationStore`]. A child module of `sqlite`.

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{
    SqliteStore, append_audit, json_list, mark_tokens_revoked, new_id, parse_json_list,
    parse_opt_ts, parse_ts, person_by_email, ts,
};
use crate::model::delegation::{Delegation, RevokedDelegation};
use crate::model::{Actor, AgentStatus};
use crate::registry::store::delegations::{DelegationStore, NewDelegation};
use crate::registry::store::{StoreError, StoreResult};

const COLUMNS: &str =
    "d.id, p.email, d.agent_id, d.scopes, d.created_at, d.expires_at, d.revoked_at";
const FROM: &str = "delegations d JOIN people p ON p.id = d.person_id";

fn delegation_from_row(r: &Row<'_>, now: DateTime<Utc>) -> sql::Result<Delegation> {
    let expires_at = parse_ts(&r.get::<_, String>(5)?)?;
    let revoked_at = parse_opt_ts(r.get(6)?)?;
    Ok(Delegation {
        id: r.get(0)?,
        person: r.get(1)?,
        agent_id: r.get(2)?,
        scopes: parse_json_list(&r.get::<_, String>(3)?)?,
        created_at: parse_ts(&r.get::<_, String>(4)?)?,
        active: revoked_at.is_none() && expires_at > now,
        expires_at,
        revoked_at,
    })
}

fn delegation_by_id(tx: &Tx<'_>, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Delegation>> {
    Ok(tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM {FROM} WHERE d.id = ?1"),
            [id],
            |r| delegation_from_row(r, now),
        )
        .optional()?)
}

fn active_of(
    tx: &Tx<'_>,
    person_email: &str,
    agent_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Delegation>> {
    Ok(tx
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM {FROM}
                 WHERE p.email = ?1 COLLATE NOCASE AND d.agent_id = ?2
                   AND d.revoked_at IS NULL AND d.expires_at > ?3
                 ORDER BY d.created_at DESC LIMIT 1"
            ),
            params![person_email, agent_id, ts(now)],
            |r| delegation_from_row(r, now),
        )
        .optional()?)
}

impl DelegationStore for SqliteStore {
    fn create_delegation(
        &self,
        actor: &Actor,
        person_email: &str,
        new: &NewDelegation,
        now: DateTime<Utc>,
    ) -> StoreResult<Delegation> {
        self.write(|tx| {
            let person = person_by_email(tx, person_email)?.ok_or_else(|| {
                StoreError::NotFound(format!("no person with email {person_email}"))
            })?;
            let status: Option<String> = tx
                .query_row(
                    "SELECT status FROM agents WHERE id = ?1",
                    [&new.agent_id],
                    |r| r.get(0),
                )
                .optional()?;
            match status.as_deref().and_then(AgentStatus::parse) {
                None => {
                    return Err(StoreError::NotFound(format!(
                        "no agent with id {}",
                        new.agent_id
                    )));
                }
                Some(AgentStatus::Active) => {}
                Some(other) => {
                    return Err(StoreError::Conflict(format!(
                        "agent {} is {}; nobody can delegate to it",
                        new.agent_id,
                        other.as_str()
                    )));
                }
            }
            if let Some(existing) = active_of(tx, &person.email, &new.agent_id, now)? {
                return Err(StoreError::Conflict(format!(
                    "{} already delegates to agent {} ({}); remove it first to change it",
                    person.email, new.agent_id, existing.id
                )));
            }
            let id = new_id("dlg");
            tx.execute(
                "INSERT INTO delegations (id, person_id, agent_id, scopes, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    person.id,
                    new.agent_id,
                    json_list(&new.scopes),
                    ts(now),
                    ts(new.expires_at)
                ],
            )?;
            append_audit(
                tx,
                actor,
                "delegation.create",
                Some(&new.agent_id),
                "success",
                None,
                &serde_json::json!({
                    "delegation_id": id, "person": person.email, "scopes": new.scopes,
                    "expires_at": ts(new.expires_at),
                }),
            )?;
            delegation_by_id(tx, &id, now)?
                .ok_or_else(|| StoreError::Internal("delegation vanished".into()))
        })
    }

    fn delegations_of(
        &self,
        person_email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Delegation>> {
        self.read(|tx| {
            let list = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM {FROM} WHERE p.email = ?1 COLLATE NOCASE
                     ORDER BY d.created_at DESC, d.id"
                ))?
                .query_map([person_email], |r| delegation_from_row(r, now))?
                .collect::<sql::Result<_>>()?;
            Ok(list)
        })
    }

    fn revoke_delegation(
        &self,
        actor: &Actor,
        person_email: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<RevokedDelegation> {
        self.write(|tx| {
            let found = delegation_by_id(tx, id, now)?
                .filter(|d| d.person.eq_ignore_ascii_case(person_email))
                .ok_or_else(|| {
                    StoreError::NotFound(format!("{person_email} has no delegation {id}"))
                })?;
            if found.revoked_at.is_some() {
                // Idempotent: nothing more to kill, nothing more to record.
                return Ok(RevokedDelegation {
                    delegation: found,
                    tokens_revoked: 0,
                });
            }
            tx.execute(
                "UPDATE delegations SET revoked_at = ?1, revoked_by = ?2 WHERE id = ?3",
                params![ts(now), actor.id, id],
            )?;
            let killed = self
                .live
                .revoke_origins(&[id.to_string()], self.clock.unix());
            mark_tokens_revoked(tx, &killed)?;
            append_audit(
                tx,
                actor,
                "delegation.revoke",
                Some(&found.agent_id),
                "success",
                None,
                &serde_json::json!({
                    "delegation_id": id, "person": found.person, "tokens_revoked": killed.len(),
                }),
            )?;
            let delegation = delegation_by_id(tx, id, now)?
                .ok_or_else(|| StoreError::Internal("delegation vanished".into()))?;
            Ok(RevokedDelegation {
                delegation,
                tokens_revoked: killed.len() as u64,
            })
        })
    }

    fn active_delegation(
        &self,
        person_email: &str,
        agent_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Delegation>> {
        self.read(|tx| active_of(tx, person_email, agent_id, now))
    }
}
