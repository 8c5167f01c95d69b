//! The SQLite bodies of [`TokenStore`]: signing keys, trusted issuers, credentials, token
//! records (the group commit), token revocation and pruning.

use std::sync::Arc;

use crate::registry::store::sql::{self, OptionalExtension};
use rusqlite::params;

use super::sqlite::{
    MAX_ENABLED_CREDENTIALS, STORED_TOKEN_COLUMNS, SqliteStore, agent_by_id, append_audit,
    credentials_of, facts, from_unix, json_list, mark_tokens_revoked, next_change, parse_opt_ts,
    parse_ts, stored_token, touch_agent, ts,
};
use super::{
    AgentTokenFacts, Guard, NewCredential, StoreError, StoreResult, StoredSigningKey, TokenStore,
    TrustedIssuer,
};
use crate::model::{Actor, AgentStatus, Credential, Person};
use crate::registry::tokens::live::{
    self, ConsumedAssertion, LiveChange, LiveTokens, TokenKind, TokenRecord,
};

impl TokenStore for SqliteStore {
    fn live_tokens(&self) -> Arc<LiveTokens> {
        self.live.clone()
    }

    fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT k.kid, k.private_key, k.public_key, k.created_at, k.retired_at,
                        coalesce((SELECT max(t.expires_at) FROM issued_tokens t WHERE t.kid = k.kid
                                  AND NOT EXISTS (SELECT 1 FROM token_revocations r WHERE r.jti = t.jti)), 0),
                        k.activates_at
                 FROM signing_keys k ORDER BY k.created_at DESC, k.kid",
            )?;
            let keys = stmt
                .query_map([], |r| {
                    Ok(StoredSigningKey {
                        kid: r.get(0)?,
                        private_key: r.get(1)?,
                        public_key: r.get(2)?,
                        created_at: parse_ts(&r.get::<_, String>(3)?)?,
                        retired_at: parse_opt_ts(r.get(4)?)?,
                        last_token_expiry: r.get(5)?,
                        activates_at: parse_opt_ts(r.get(6)?)?,
                    })
                })?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(keys)
        })
    }

    fn add_signing_key(&self, actor: &Actor, key: &StoredSigningKey) -> StoreResult<()> {
        self.write(|tx| {
            let now = ts(self.clock.now());
            let staged_until = key.activates_at.map(ts);
            if let Some(until) = &staged_until {
                let waiting: Option<(String, String)> = tx
                    .query_row(
                        "SELECT kid, activates_at FROM signing_keys
                         WHERE retired_at IS NULL AND activates_at > ?1",
                        [&now],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((kid, at)) = waiting {
                    return Err(StoreError::Conflict(format!(
                        "signing key {kid} is already staged to take over at {at}; \
                         rotate again after that (or use an immediate rotation)"
                    )));
                }
                tx.execute(
                    "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, activates_at)
                     VALUES (?1, 'EdDSA', ?2, ?3, ?4, ?5)",
                    params![key.kid, key.private_key, key.public_key, ts(key.created_at), until],
                )?;
                append_audit(
                    tx,
                    actor,
                    "signing_key.stage",
                    Some(&key.kid),
                    "success",
                    None,
                    &serde_json::json!({"kid": key.kid, "algorithm": "EdDSA", "activates_at": until}),
                )?;
                return Ok(());
            }
            let retired = tx.execute(
                "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
                [&now],
            )?;
            tx.execute(
                "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at)
                 VALUES (?1, 'EdDSA', ?2, ?3, ?4)",
                params![key.kid, key.private_key, key.public_key, ts(key.created_at)],
            )?;
            // The audit record names the key, never its private half.
            append_audit(
                tx,
                actor,
                if retired > 0 {
                    "signing_key.rotate"
                } else {
                    "signing_key.create"
                },
                Some(&key.kid),
                "success",
                None,
                &serde_json::json!({"kid": key.kid, "algorithm": "EdDSA", "retired": retired}),
            )?;
            Ok(())
        })
    }

    fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuer>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT issuer, jwks, audience, created_at FROM trusted_issuers ORDER BY issuer",
            )?;
            let issuers = stmt
                .query_map([], |r| {
                    Ok(TrustedIssuer {
                        issuer: r.get(0)?,
                        jwks: r.get(1)?,
                        audience: r.get(2)?,
                        created_at: parse_ts(&r.get::<_, String>(3)?)?,
                    })
                })?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(issuers)
        })
    }

    fn put_trusted_issuer(&self, actor: &Actor, issuer: &TrustedIssuer) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO trusted_issuers (issuer, jwks, audience, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (issuer) DO UPDATE SET jwks = excluded.jwks, audience = excluded.audience",
                params![
                    issuer.issuer,
                    issuer.jwks,
                    issuer.audience,
                    ts(issuer.created_at)
                ],
            )?;
            let kids: Vec<String> = serde_json::from_str::<serde_json::Value>(&issuer.jwks)
                .ok()
                .and_then(|v| v.get("keys").and_then(|k| k.as_array()).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|k| k.get("kid").and_then(|v| v.as_str()).map(str::to_string))
                .collect();
            append_audit(
                tx,
                actor,
                "trusted_issuer.put",
                Some(&issuer.issuer),
                "success",
                None,
                &serde_json::json!({"audience": issuer.audience, "kids": kids}),
            )?;
            Ok(())
        })
    }

    fn remove_trusted_issuer(&self, actor: &Actor, issuer: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let removed = tx.execute("DELETE FROM trusted_issuers WHERE issuer = ?1", [issuer])?;
            if removed > 0 {
                append_audit(
                    tx,
                    actor,
                    "trusted_issuer.remove",
                    Some(issuer),
                    "success",
                    None,
                    &serde_json::json!({}),
                )?;
            }
            Ok(removed > 0)
        })
    }

    fn agent_token_facts(&self, agent_id: &str) -> StoreResult<Option<AgentTokenFacts>> {
        // From the in-memory copy when it is current (see sqlite_facts.rs).
        self.facts.agent_or_read(agent_id, self.clock.now(), || {
            self.read(|tx| facts::read_agent_facts(tx, agent_id))
        })
    }

    fn cached_agent_token_facts(&self, agent_id: &str) -> Option<AgentTokenFacts> {
        self.facts.agent(agent_id, self.clock.now())
    }

    fn cached_person(&self, email: &str) -> Option<Person> {
        self.facts.person(email)
    }

    fn add_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential: &NewCredential,
        guard: Guard<'_>,
    ) -> StoreResult<Credential> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            match agent.status {
                AgentStatus::Active => {}
                AgentStatus::Suspended => {
                    // Suspension means suspended: a new key would undo the brake.
                    return Err(StoreError::Conflict(format!(
                        "agent {agent_id} is suspended; it cannot receive credentials until an \
                         admin or responder reinstates it"
                    )));
                }
                AgentStatus::Decommissioned => {
                    return Err(StoreError::Conflict(format!(
                        "agent {agent_id} is decommissioned; it cannot receive credentials"
                    )));
                }
            }
            let duplicate: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM credentials WHERE agent_id = ?1 AND fingerprint = ?2
                 AND disabled_at IS NULL)",
                params![agent_id, credential.fingerprint],
                |r| r.get(0),
            )?;
            if duplicate {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} already has this key enabled (fingerprint {})",
                    credential.fingerprint
                )));
            }
            // Credential ids derive from the key: the same key (or secret) registered before,
            // on this agent or another, must be refused by name, not by a constraint.
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM credentials WHERE id = ?1)",
                params![credential.id],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "this key is already registered (credential {}); generate a new key pair \
                     for each agent and each rotation",
                    credential.id
                )));
            }
            // Bounded work: an assertion without a kid is tried against every enabled key.
            let enabled: i64 = tx.query_row(
                "SELECT COUNT(*) FROM credentials WHERE agent_id = ?1 AND disabled_at IS NULL",
                params![agent_id],
                |r| r.get(0),
            )?;
            if enabled >= MAX_ENABLED_CREDENTIALS {
                return Err(StoreError::Conflict(format!(
                    "agent {agent_id} already has {enabled} enabled credentials, the most \
                     allowed ({MAX_ENABLED_CREDENTIALS}); disable one first"
                )));
            }
            tx.execute(
                "INSERT INTO credentials (id, agent_id, kind, label, fingerprint, material, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    credential.id,
                    agent_id,
                    credential.kind.as_str(),
                    credential.label,
                    credential.fingerprint,
                    credential.material,
                    ts(self.clock.now())
                ],
            )?;
            touch_agent(tx, agent_id)?;
            append_audit(
                tx,
                actor,
                "credential.add",
                Some(agent_id),
                "success",
                None,
                &serde_json::json!({
                    "credential_id": credential.id,
                    "kind": credential.kind.as_str(),
                    "label": credential.label,
                    "fingerprint": credential.fingerprint,
                }),
            )?;
            credentials_of(tx, agent_id)?
                .into_iter()
                .find(|c| c.id == credential.id)
                .ok_or_else(|| StoreError::Internal("credential vanished".into()))
        })
    }

    fn disable_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential_id: &str,
        guard: Guard<'_>,
    ) -> StoreResult<Credential> {
        self.write(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            let changed = tx.execute(
                "UPDATE credentials SET disabled_at = coalesce(disabled_at, ?1)
                 WHERE id = ?2 AND agent_id = ?3",
                params![ts(self.clock.now()), credential_id, agent_id],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!(
                    "agent {agent_id} has no credential {credential_id}"
                )));
            }
            touch_agent(tx, agent_id)?;
            append_audit(
                tx,
                actor,
                "credential.disable",
                Some(agent_id),
                "success",
                None,
                &serde_json::json!({"credential_id": credential_id}),
            )?;
            credentials_of(tx, agent_id)?
                .into_iter()
                .find(|c| c.id == credential_id)
                .ok_or_else(|| StoreError::Internal("credential vanished".into()))
        })
    }

    fn shares_database(&self) -> bool {
        self.is_postgres()
    }

    fn stored_token(&self, digest: &[u8; 32]) -> StoreResult<Option<(TokenRecord, bool)>> {
        self.read_point(|tx| {
            Ok(tx
                .prepare_cached(&format!(
                    "SELECT {STORED_TOKEN_COLUMNS} FROM issued_tokens t
                     WHERE digest = ?1 AND expires_at > ?2"
                ))?
                .query_row(
                    params![hex::encode(digest), self.clock.unix()],
                    stored_token,
                )
                .optional()?)
        })
    }

    fn spend_assertions(&self, spent: &[ConsumedAssertion]) -> StoreResult<Vec<bool>> {
        // In key order, so that two replicas spending overlapping batches never deadlock.
        let mut order: Vec<usize> = (0..spent.len()).collect();
        order.sort_by(|&a, &b| {
            (&spent[a].agent_id, &spent[a].jti).cmp(&(&spent[b].agent_id, &spent[b].jti))
        });
        self.write_unserialised(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO consumed_assertions (agent_id, jti, expires_at)
                 VALUES (?1, ?2, ?3)",
            )?;
            let mut fresh = vec![false; spent.len()];
            for n in order {
                let a = &spent[n];
                fresh[n] = insert.execute(params![a.agent_id, a.jti, a.expires_at])? == 1;
            }
            Ok(fresh)
        })
    }

    fn record_tokens(
        &self,
        tokens: &[TokenRecord],
        assertions: &[ConsumedAssertion],
    ) -> StoreResult<()> {
        self.write_keeping_facts(|tx| {
            let now = self.clock.unix();
            if !tokens.is_empty() {
                // Other replicas read these records back and index them.
                live::note(LiveChange::Issued {
                    jtis: tokens.iter().map(|t| t.jti.clone()).collect(),
                });
            }
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO issued_tokens (jti, kind, digest, kid, subject, client_id, actors,
                        parent_jti, scopes, audience, may_act, subject_source, client_auth,
                        credential_id, issued_at, expires_at, api_token_id, delegation_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                        ?17, ?18)",
                )?;
                let mut revoked = tx.prepare_cached(
                    "INSERT OR IGNORE INTO token_revocations (jti, revoked_at) VALUES (?1, ?2)",
                )?;
                for t in tokens {
                    // Written under the writer lock, which every revoking transaction also
                    // holds: a revoke that ran before this batch is seen here and stored.
                    if self.live.is_revoked(&t.jti) {
                        revoked.execute(params![t.jti, now])?;
                    }
                    insert.execute(params![
                        t.jti,
                        t.kind.as_str(),
                        hex::encode(t.digest),
                        t.kid,
                        t.subject,
                        t.client_id,
                        json_list(&t.actors),
                        t.parent_jti,
                        json_list(&t.scopes),
                        json_list(&t.audience),
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
                let mut spend = tx.prepare_cached(
                    "INSERT OR IGNORE INTO consumed_assertions (agent_id, jti, expires_at)
                     VALUES (?1, ?2, ?3)",
                )?;
                for a in assertions {
                    spend.execute(params![a.agent_id, a.jti, a.expires_at])?;
                }
            }
            // Usage, folded per batch: each scope's last use, each agent's and key's last sight.
            let mut scope_use: std::collections::HashMap<(&str, &str), i64> = Default::default();
            let mut agent_seen: std::collections::HashMap<&str, i64> = Default::default();
            let mut key_used: std::collections::HashMap<&str, i64> = Default::default();
            for t in tokens.iter().filter(|t| t.kind == TokenKind::Exchange) {
                let Some(agent) = t.client_id.as_deref() else {
                    continue;
                };
                for scope in &t.scopes {
                    let e = scope_use.entry((agent, scope)).or_insert(0);
                    *e = (*e).max(t.issued_at);
                }
                let e = agent_seen.entry(agent).or_insert(0);
                *e = (*e).max(t.issued_at);
                if let Some(cred) = t.credential_id.as_deref() {
                    let e = key_used.entry(cred).or_insert(0);
                    *e = (*e).max(t.issued_at);
                }
            }
            let mut use_scope = tx.prepare_cached(
                "UPDATE grants SET last_used_at = ?3
                 WHERE agent_id = ?1 AND scope = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)",
            )?;
            for ((agent, scope), at) in scope_use {
                use_scope.execute(params![agent, scope, ts(from_unix(at))])?;
            }
            let mut use_key = tx.prepare_cached(
                "UPDATE credentials SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
            )?;
            for (cred, at) in key_used {
                use_key.execute(params![cred, ts(from_unix(at))])?;
            }
            for (agent, at) in agent_seen {
                let seen = ts(from_unix(at));
                let previous: Option<Option<String>> = tx
                    .prepare_cached("SELECT last_seen_at FROM agents WHERE id = ?1")?
                    .query_row([agent], |r| r.get(0))
                    .optional()?;
                let Some(previous) = previous else { continue };
                // The change feed hears of an agent's activity at most once a minute: enough
                // for a console's "last seen" without turning every exchange into a change.
                let stale = previous
                    .as_deref()
                    .and_then(|p| parse_ts(p).ok())
                    .is_none_or(|p| from_unix(at) - p >= chrono::Duration::seconds(60));
                if stale {
                    let seq = next_change(tx)?;
                    tx.prepare_cached(
                        "UPDATE agents SET last_seen_at = ?1, change_seq = ?2 WHERE id = ?3",
                    )?
                    .execute(params![seen, seq, agent])?;
                } else if previous.as_deref() < Some(seen.as_str()) {
                    tx.prepare_cached("UPDATE agents SET last_seen_at = ?1 WHERE id = ?2")?
                        .execute(params![seen, agent])?;
                }
            }
            Ok(())
        })
    }

    fn revoke_token(&self, actor: &Actor, jti: &str) -> StoreResult<u64> {
        self.write(|tx| {
            let mut killed = self.live.revoke_tree(jti, self.clock.unix());
            if killed.is_empty() && tx.is_postgres() {
                // Issued by another replica and not indexed here yet: the stored revocation
                // is what the others and every later load go by.
                let stored = tx
                    .prepare_cached(
                        "SELECT t.jti FROM issued_tokens t
                         WHERE t.jti = ?1 AND t.expires_at > ?2
                           AND NOT EXISTS (SELECT 1 FROM token_revocations r WHERE r.jti = t.jti)",
                    )?
                    .query_row(params![jti, self.clock.unix()], |r| r.get::<_, String>(0))
                    .optional()?;
                killed.extend(stored);
            }
            mark_tokens_revoked(tx, &killed)?;
            if !killed.is_empty() {
                append_audit(
                    tx,
                    actor,
                    "token.revoke",
                    Some(jti),
                    "success",
                    None,
                    &serde_json::json!({"tokens_revoked": killed.len()}),
                )?;
            }
            Ok(killed.len() as u64)
        })
    }

    fn exchanges_since(&self, agent_id: &str, since: i64) -> StoreResult<u64> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT count(*) FROM issued_tokens
                     WHERE client_id = ?1 AND issued_at >= ?2 AND kind = 'exchange'",
                )?
                .query_row(params![agent_id, since], |r| r.get::<_, i64>(0))?
                .max(0) as u64)
        })
    }

    fn prune_tokens(&self, now: i64, keep_records_after: i64) -> StoreResult<()> {
        self.live.prune(now);
        self.write_keeping_facts(|tx| {
            tx.execute(
                "DELETE FROM consumed_assertions WHERE expires_at < ?1",
                [now - 2 * crate::registry::tokens::live::CLOCK_LEEWAY],
            )?;
            tx.execute(
                "DELETE FROM issued_tokens WHERE expires_at < ?1",
                [keep_records_after],
            )?;
            // Tokens live at most an hour: a revocation older than the records kept is of a
            // token whose record is gone.
            tx.execute(
                "DELETE FROM token_revocations WHERE revoked_at < ?1",
                [keep_records_after],
            )?;
            Ok(())
        })
    }
}
