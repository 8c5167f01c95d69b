//! Agents, their grants and owners. SQLite bodies in sqlite_agents.rs; the brake (revoke,
//! reinstate, decommission) is its own area in brake.rs.

use super::{Guard, StoreResult, Visibility};
use crate::model::api::{AgentPage, AgentQuery, RegisterAgent};
use crate::model::{Actor, Agent, AgentDetail, Grant};

/// The agents and what they hold.
///
/// Concurrency contract:
/// - Every mutating call is one write transaction: the `guard` runs inside it on the facts
///   read there (so the authorisation and the change see the same state), then the change,
///   its audit event(s) and its change-feed position commit together or not at all.
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
}
