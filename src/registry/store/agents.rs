//! Agents, their grants and owners, and the brake (revoke, reinstate, decommission). SQLite
//! bodies in sqlite_agents.rs and sqlite_brake.rs.

use super::{Guard, Reinstated, Revoked, StoreResult, Visibility};
use crate::model::api::{
    AgentPage, AgentQuery, DecommissionOutcome, DecommissionPlan, RegisterAgent,
};
use crate::model::{Actor, Agent, AgentDetail, Grant};

/// The agents and what they hold.
///
/// Concurrency contract:
/// - Every mutating call is one write transaction: the `guard` runs inside it on the facts
///   read there (so the authorisation and the change see the same state), then the change,
///   its audit event(s) and its change-feed position commit together or not at all.
/// - `revoke_agent`: the status change of the whole subtree, the disabled credentials, the
///   killed live tokens, every audit event and change-feed entry commit together or not at
///   all. The live-token index is updated *before* the commit (fail closed), and the call
///   goes before ordinary writes already queued (the brake's urgent writer turn).
/// - `reinstate_agent` and `decommission_agent` likewise, each in one transaction, over the
///   subtree as read in that transaction.
/// - `register_agent`: the parent's existence and status (a decommissioned parent is refused)
///   are checked in the writing transaction. A parent decommissioned at the same moment is
///   seen only because SQLite serialises writers. **Depends on SQLite's single writer** (a
///   second backend must lock the parent row, e.g. `SELECT … FOR UPDATE`).
/// - `list_agents` and `agent_detail` read one snapshot; a page's cursor is a key of the
///   sort, so it stays valid across writes (an agent changed between pages is seen as it is
///   on the later page).
pub trait AgentStore {
    fn list_agents(&self, query: &AgentQuery, visibility: &Visibility) -> StoreResult<AgentPage>;
    fn agent_detail(&self, id: &str) -> StoreResult<Option<AgentDetail>>;
    fn register_agent(&self, actor: &Actor, req: &RegisterAgent) -> StoreResult<Agent>;
    fn add_grant(
        &self,
        actor: &Actor,
        agent_id: &str,
        grant: &Grant,
        guard: Guard<'_>,
    ) -> StoreResult<Agent>;
    fn remove_grant(
        &self,
        actor: &Actor,
        agent_id: &str,
        scope: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent>;
    fn set_owner(
        &self,
        actor: &Actor,
        agent_id: &str,
        owner_email: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent>;
    /// Suspends the agent and every agent under it, disables their credentials and kills their
    /// live tokens, in one transaction; the index is updated first (fail closed). A repeat that
    /// changes nothing records nothing.
    fn revoke_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Revoked>;
    /// Makes a suspended agent active again (with `subtree`, every suspended agent under it
    /// too), in one transaction. Refused while an ancestor is not active. Credentials stay
    /// disabled.
    fn reinstate_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        subtree: bool,
        guard: Guard<'_>,
    ) -> StoreResult<Reinstated>;
    /// The plan of a decommission. `guard` is asked for the target (an error refuses) and for
    /// each agent under it (an error skips that agent and everything under it).
    fn decommission_plan(&self, agent_id: &str, guard: Guard<'_>) -> StoreResult<DecommissionPlan>;
    fn decommission_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<DecommissionOutcome>;
}
