//! The SQLite bodies of [`PeopleStore`]: people and their API tokens (issuing, revoking, the
//! bearer lookup). The leave's owner succession lives in sqlite_ownership.rs.

use crate::registry::store::sql::{self, OptionalExtension, Tx};
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::sqlite::{
    PERSON_COLUMNS, SqliteStore, api_tokens, append_audit, invalid, like_pattern,
    mark_tokens_revoked, new_id, next_change, ownership, page, parse_opt_ts, parse_ts,
    person_by_email, person_from_row, person_id, roles_text, ts,
};
use super::{NewApiToken, PeopleStore, StoreError, StoreResult, TokenOwner};
use crate::model::api::{CreatePerson, PeoplePage, PeopleQuery, UpdatePerson};
use crate::model::{Actor, Person, Role};

impl PeopleStore for SqliteStore {
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
                .collect::<sql::Result<Vec<_>>>()?;
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
}

impl SqliteStore {
    /// Changes a person inside `tx`. Marking them as left also dates the leave, ends their API
    /// and live tokens, and applies owner succession to their agents (returned).
    pub(super) fn update_person_tx(
        &self,
        tx: &Tx<'_>,
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
                .collect::<sql::Result<_>>()?;
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
