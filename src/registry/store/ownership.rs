//! Ownership beyond setting one owner: who the registry offers as an agent's owner, and the
//! reminders managers get when they inherit a leaver's agents (bodies in sqlite_ownership.rs;
//! the succession itself runs inside `update_person`, in the transaction that marks the leave).

use super::{Guard, StoreResult};
use crate::model::ownership::{Handover, LeaveOutcome, OwnerCandidates};
use crate::model::{Actor, Agent};

/// The facts the owner ranking is made from (see `registry::service::ownership`).
#[derive(Debug, Clone, Default)]
pub struct CandidateFacts {
    pub agent_id: String,
    pub team: String,
    pub current_owner: Option<String>,
    pub current_owner_left_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Managers of the previous owner and of a current owner who left (active ones only).
    pub previous_owner_managers: Vec<String>,
    /// People the agent acted for (token-exchange subjects, delegations), active ones only.
    pub users: Vec<String>,
    /// Every active person: (email, display name, team).
    pub people: Vec<(String, String, Option<String>)>,
}

/// Concurrency contract: `candidate_facts` and `handovers` read one consistent snapshot;
/// `leave`, `clear_owner` and `acknowledge_handovers` are each one write transaction with their
/// audit events (a leave and its succession commit together or not at all).
pub trait OwnershipStore {
    /// Marks a person as having left (as `update_person` with `active = false`) and reports the
    /// succession of their agents. 404 for an unknown person, 409 when they already left or
    /// are the last active admin.
    fn leave(&self, actor: &Actor, email: &str) -> StoreResult<LeaveOutcome>;
    /// Makes an agent unowned (the undo of giving an unowned agent an owner). `guard` decides
    /// whether the caller may; 409 for a decommissioned agent.
    fn clear_owner(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent>;
    /// 404 when the agent does not exist. `q` narrows the people by email or name.
    fn candidate_facts(&self, agent_id: &str, q: Option<&str>) -> StoreResult<CandidateFacts>;
    /// The handovers to `email` (unacknowledged ones unless `all`), newest first.
    fn handovers(&self, email: &str, all: bool) -> StoreResult<Vec<Handover>>;
    /// Marks every open handover to `email` as seen; returns how many.
    fn acknowledge_handovers(&self, actor: &Actor, email: &str) -> StoreResult<u64>;
}

/// Ranks candidate facts into the answer the route returns.
pub fn ranked(facts: CandidateFacts, limit: usize) -> OwnerCandidates {
    crate::registry::service::ownership::rank(facts, limit)
}
