//! The token service's storage: issued token records and spent assertions, signing keys,
//! trusted identity providers, agents' credentials and the facts an exchange reads. SQLite
//! bodies in sqlite_tokens.rs (and sqlite_facts.rs for the in-memory facts copy).

use std::sync::Arc;

use super::{AgentTokenFacts, Guard, NewCredential, StoreResult, StoredSigningKey, TrustedIssuer};
use crate::model::{Actor, Credential, Person};
use crate::registry::tokens::live::{ConsumedAssertion, LiveTokens, TokenRecord};

/// Token records, keys, issuers and credentials.
///
/// Concurrency contract:
/// - The live-token index is loaded when the store opens and updated by every call that
///   revokes (agents, tokens, grants, API tokens), so introspection never reads the database.
///   Revocations mark the index *before* their transaction commits (fail closed). The index is
///   per process: **depends on one registry process per database** (a second backend with
///   several replicas must share revocations, e.g. LISTEN/NOTIFY, and re-read on reconnect).
/// - `record_tokens` is the group commit: a batch of issued tokens and spent assertions in one
///   transaction. A token revoked (in the index) while its batch waited is stored revoked. A
///   spent assertion id is refused a second time by the in-memory index first and by the
///   table's key on commit: **depends on one process per database** for the in-memory half.
/// - `add_signing_key` retires the previous keys (or stages the new one) and records its
///   audit event in one transaction; "only one staged key at a time" is checked in that
///   transaction and holds because SQLite has one writer (**depends on SQLite's single
///   writer**; a second backend must lock the key set).
/// - `add_credential` checks the agent's status and its enabled-credential limit in the
///   writing transaction (same dependency on the single writer for the limit), with its
///   audit event; `disable_credential` likewise (re-enabling is the brake's: brake.rs).
/// - `agent_token_facts` reads one snapshot; the `cached_*` answers come from a copy that every
///   write touching token facts invalidates before the writer is released, so a cached answer
///   is never older than the last committed change of that agent or person.
pub trait TokenStore {
    fn live_tokens(&self) -> Arc<LiveTokens>;
    /// Every signing key, newest first.
    fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>>;
    /// Adds a signing key. Without `activates_at` it signs from now on and every other key is
    /// retired (kept for checks); with `activates_at` it is staged: published now,
    /// signing from then, and nothing is retired (the token service treats the older key as
    /// superseded once the new one activates). Only one staged key may wait at a time
    /// (Conflict otherwise). Atomic with its audit event.
    fn add_signing_key(&self, actor: &Actor, key: &StoredSigningKey) -> StoreResult<()>;
    fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuer>>;
    /// Adds or replaces a trusted identity provider.
    fn put_trusted_issuer(&self, actor: &Actor, issuer: &TrustedIssuer) -> StoreResult<()>;
    /// Removes a trusted identity provider; false if it was not trusted.
    fn remove_trusted_issuer(&self, actor: &Actor, issuer: &str) -> StoreResult<bool>;
    fn agent_token_facts(&self, agent_id: &str) -> StoreResult<Option<AgentTokenFacts>>;
    /// The agent's token facts when an in-memory copy holds them current (no database read:
    /// safe to call on an async worker); None when it does not (ask `agent_token_facts`).
    fn cached_agent_token_facts(&self, _agent_id: &str) -> Option<AgentTokenFacts> {
        None
    }
    /// A person, likewise (the subject of an exchange).
    fn cached_person(&self, _email: &str) -> Option<Person> {
        None
    }
    fn add_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential: &NewCredential,
        guard: Guard<'_>,
    ) -> StoreResult<Credential>;
    fn disable_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential_id: &str,
        guard: Guard<'_>,
    ) -> StoreResult<Credential>;
    /// True when other registry replicas share this database (PostgreSQL): what one process
    /// remembers, such as spent assertion ids, must then be decided in the database.
    fn shares_database(&self) -> bool {
        false
    }
    /// The stored record of the token with this digest (SHA-256 of its bytes), with whether it
    /// was revoked; None when no such token was stored or it has expired.
    fn stored_token(&self, digest: &[u8; 32]) -> StoreResult<Option<(TokenRecord, bool)>>;
    /// Spends single-use assertion ids in the database, atomically against every replica: true
    /// for each one spent by this call, false for each spent before (a replay, maybe on another
    /// replica). Durable when it returns.
    fn spend_assertions(&self, spent: &[ConsumedAssertion]) -> StoreResult<Vec<bool>>;
    /// Durably records a batch of issued tokens and spent assertions in one transaction (group
    /// commit), and marks each scope used and each agent seen.
    fn record_tokens(
        &self,
        tokens: &[TokenRecord],
        assertions: &[ConsumedAssertion],
    ) -> StoreResult<()>;
    /// Revokes a token and every token exchanged from it; returns how many were live.
    fn revoke_token(&self, actor: &Actor, jti: &str) -> StoreResult<u64>;
    /// Exchanges in which `agent_id` was the new actor, issued at or after `since` (Unix time).
    fn exchanges_since(&self, agent_id: &str, since: i64) -> StoreResult<u64>;
    /// Forgets spent assertions and the index's expired tokens; drops token records that
    /// expired before `keep_records_after` (Unix time).
    fn prune_tokens(&self, now: i64, keep_records_after: i64) -> StoreResult<()>;
}
