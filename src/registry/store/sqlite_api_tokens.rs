//! The SQLite bodies of [`ApiTokenStore`] and the API-token helpers `sqlite.rs` shares: issuing
//! (with the parent cap) and revoking a token with its descendants. A child module of `sqlite`.

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{
    SqliteStore, append_audit, json_list, mark_tokens_revoked, parse_opt_ts, parse_ts,
    person_by_email, store_now, ts, unix_now,
};
use crate::model::Actor;
use crate::model::delegation::{ApiTokenInfo, RevokedApiTokens};
use crate::registry::store::{ApiTokenStore, NewApiToken, StoreError, StoreResult};
use crate::registry::tokens::live::LiveTokens;

/// Inserts an API token (or invitation) for an active person, capping its expiry at its
/// parent's, with its audit event. Returns the stored expiry.
pub(in crate::registry::store) fn insert_api_token(
    tx: &Tx<'_>,
    actor: &Actor,
    email: &str,
    token: &NewApiToken,
) -> StoreResult<DateTime<Utc>> {
    let person = person_by_email(tx, email)?
        .ok_or_else(|| StoreError::NotFound(format!("no person with email {email}")))?;
    if !person.active {
        return Err(StoreError::Conflict(format!(
            "{email} has left; tokens cannot be issued to them"
        )));
    }
    let mut expires_at = token.expires_at;
    if let Some(parent) = &token.parent_id {
        let parent_row: Option<(String, Option<String>)> = tx
            .query_row(
                "SELECT expires_at, revoked_at FROM api_tokens WHERE id = ?1 AND person_id = ?2",
                params![parent, person.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((parent_expiry, revoked)) = parent_row else {
            return Err(StoreError::NotFound(format!(
                "{email} has no API token {parent}"
            )));
        };
        if revoked.is_some() {
            return Err(StoreError::Forbidden(format!(
                "the API token {parent} has been revoked"
            )));
        }
        // Never outlive the token that minted it.
        expires_at = expires_at.min(parse_ts(&parent_expiry)?);
    }
    tx.execute(
        "INSERT INTO api_tokens (id, person_id, token_hash, name, created_at, expires_at, kind, parent_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            token.id,
            person.id,
            token.hash,
            token.name,
            ts(store_now()),
            ts(expires_at),
            if token.invitation { "invitation" } else { "api" },
            token.parent_id,
        ],
    )?;
    append_audit(
        tx,
        actor,
        if token.invitation {
            "invitation.issue"
        } else {
            "api_token.issue"
        },
        Some(&person.email),
        "success",
        None,
        &serde_json::json!({
            "token_id": token.id, "name": token.name, "expires_at": ts(expires_at),
            "parent": token.parent_id,
        }),
    )?;
    Ok(expires_at)
}

/// Revokes API tokens and every token they minted, transitively, and kills the live person
/// tokens (and exchanges) that came from any of them. Returns (API tokens newly revoked, live
/// tokens killed).
pub(in crate::registry::store) fn revoke_api_token_trees(
    tx: &Tx<'_>,
    live: &LiveTokens,
    roots: &[String],
) -> StoreResult<(u64, u64)> {
    if roots.is_empty() {
        return Ok((0, 0));
    }
    let tree: Vec<(String, Option<String>)> = tx
        .prepare(
            "WITH RECURSIVE tree(id) AS (
                 SELECT value FROM json_each(?1)
                 UNION SELECT t.id FROM api_tokens t JOIN tree ON t.parent_id = tree.id
             )
             SELECT a.id, a.revoked_at FROM api_tokens a JOIN tree ON a.id = tree.id",
        )?
        .query_map([json_list(roots)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<sql::Result<_>>()?;
    let ids: Vec<String> = tree.iter().map(|(id, _)| id.clone()).collect();
    let newly = tree.iter().filter(|(_, revoked)| revoked.is_none()).count() as u64;
    tx.execute(
        "UPDATE api_tokens SET revoked_at = ?1
         WHERE revoked_at IS NULL AND id IN (SELECT value FROM json_each(?2))",
        params![ts(store_now()), json_list(&ids)],
    )?;
    let killed = live.revoke_origins(&ids, unix_now());
    mark_tokens_revoked(tx, &killed)?;
    Ok((newly, killed.len() as u64))
}

fn info_from_row(r: &Row<'_>) -> sql::Result<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: r.get(0)?,
        label: r.get(1)?,
        kind: r.get(2)?,
        created_at: parse_ts(&r.get::<_, String>(3)?)?,
        expires_at: parse_ts(&r.get::<_, String>(4)?)?,
        last_used_at: parse_opt_ts(r.get(5)?)?,
        parent: r.get(6)?,
        revoked_at: parse_opt_ts(r.get(7)?)?,
        redeemed_at: parse_opt_ts(r.get(8)?)?,
    })
}

impl ApiTokenStore for SqliteStore {
    fn api_tokens_of(&self, email: &str) -> StoreResult<Vec<ApiTokenInfo>> {
        self.read(|tx| {
            let person = person_by_email(tx, email)?
                .ok_or_else(|| StoreError::NotFound(format!("no person with email {email}")))?;
            let tokens = tx
                .prepare(
                    "SELECT id, name, kind, created_at, expires_at, last_used_at, parent_id,
                            revoked_at, redeemed_at
                     FROM api_tokens WHERE person_id = ?1 ORDER BY created_at DESC, id",
                )?
                .query_map([&person.id], info_from_row)?
                .collect::<sql::Result<_>>()?;
            Ok(tokens)
        })
    }

    fn revoke_all_api_tokens(&self, actor: &Actor, email: &str) -> StoreResult<RevokedApiTokens> {
        self.write(|tx| {
            let person = person_by_email(tx, email)?
                .ok_or_else(|| StoreError::NotFound(format!("no person with email {email}")))?;
            let ids: Vec<String> = tx
                .prepare("SELECT id FROM api_tokens WHERE person_id = ?1 AND revoked_at IS NULL")?
                .query_map([&person.id], |r| r.get(0))?
                .collect::<sql::Result<_>>()?;
            let (api_tokens_revoked, tokens_revoked) =
                revoke_api_token_trees(tx, &self.live, &ids)?;
            append_audit(
                tx,
                actor,
                "api_token.revoke_all",
                Some(&person.email),
                "success",
                None,
                &serde_json::json!({
                    "api_tokens_revoked": api_tokens_revoked,
                    "tokens_revoked": tokens_revoked,
                }),
            )?;
            Ok(RevokedApiTokens {
                api_tokens_revoked,
                tokens_revoked,
            })
        })
    }

    fn redeem_invitation(
        &self,
        actor: &Actor,
        email: &str,
        invitation_id: &str,
        token: &NewApiToken,
    ) -> StoreResult<DateTime<Utc>> {
        self.write(|tx| {
            let now = ts(self.clock.now());
            // Spent in the same transaction that stores the new token: single use.
            let spent = tx.execute(
                "UPDATE api_tokens SET redeemed_at = ?1, revoked_at = ?1
                 WHERE id = ?2 AND kind = 'invitation' AND revoked_at IS NULL AND expires_at > ?1",
                params![now, invitation_id],
            )?;
            if spent == 0 {
                return Err(StoreError::Forbidden(format!(
                    "the invitation {invitation_id} was already redeemed, has expired or was revoked"
                )));
            }
            // Nothing can come from a spent invitation.
            revoke_api_token_trees(tx, &self.live, &[invitation_id.to_string()])?;
            let expires_at = insert_api_token(tx, actor, email, token)?;
            append_audit(
                tx,
                actor,
                "invitation.redeem",
                Some(email),
                "success",
                None,
                &serde_json::json!({"invitation_id": invitation_id, "token_id": token.id}),
            )?;
            Ok(expires_at)
        })
    }

    fn touch_api_token(&self, token_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        // A burst of requests with one token all find it stale at once: one of them writes.
        if !self.touches.claim(token_id, at) {
            return Ok(());
        }
        let out = self.write(|tx| {
            tx.execute(
                "UPDATE api_tokens SET last_used_at = ?1
                 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
                params![ts(at), token_id],
            )?;
            Ok(())
        });
        if out.is_err() {
            self.touches.forget(token_id);
        }
        out
    }

    fn revoke_presented_api_token(&self, actor: &Actor, hash: &str) -> StoreResult<Option<u64>> {
        self.write(|tx| {
            let found: Option<(String, String)> = tx
                .query_row(
                    "SELECT t.id, p.email FROM api_tokens t JOIN people p ON p.id = t.person_id
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, email)) = found else {
                return Ok(None);
            };
            let (revoked, killed) =
                revoke_api_token_trees(tx, &self.live, std::slice::from_ref(&id))?;
            append_audit(
                tx,
                actor,
                "api_token.revoke",
                Some(&email),
                "success",
                Some("revoked through /oauth/revoke"),
                &serde_json::json!({
                    "token_id": id, "api_tokens_revoked": revoked, "tokens_revoked": killed,
                }),
            )?;
            Ok(Some(killed))
        })
    }
}
