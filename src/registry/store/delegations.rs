//! Delegations: a person's explicit consent that an agent may act for them, with which scopes
//! and until when (bodies in sqlite_delegations.rs).

use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::model::Actor;
use crate::model::delegation::{Delegation, RevokedDelegation};

/// A delegation to store (already checked by the HTTP layer).
#[derive(Debug, Clone)]
pub struct NewDelegation {
    pub agent_id: String,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// Who may act for whom.
///
/// Concurrency contract: `create_delegation` and `revoke_delegation` each run in one write
/// transaction together with their audit event; a person holds at most one active delegation
/// per agent (checked in that transaction). `revoke_delegation` marks the delegation dead in
/// the live-token index and kills every live token exchanged under it (and everything derived
/// from them) before its transaction commits, so an exchange that read the delegation as
/// active but had not yet entered its token in the index is refused there. `active_delegation`
/// reads one consistent snapshot.
pub trait DelegationStore {
    /// 404 when the agent does not exist, 409 when it is not active or when the person already
    /// holds an active delegation to it.
    fn create_delegation(
        &self,
        actor: &Actor,
        person_email: &str,
        new: &NewDelegation,
        now: DateTime<Utc>,
    ) -> StoreResult<Delegation>;
    /// Every delegation the person made, newest first (active, expired and revoked).
    fn delegations_of(
        &self,
        person_email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Delegation>>;
    /// Revokes one of the person's delegations (404 when it is not theirs); idempotent.
    fn revoke_delegation(
        &self,
        actor: &Actor,
        person_email: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<RevokedDelegation>;
    /// The person's active delegation to the agent, if any.
    fn active_delegation(
        &self,
        person_email: &str,
        agent_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Delegation>>;
}
