//! The brake: revoking an agent with everything under it, reinstating it, decommissioning it,
//! and re-enabling a credential that a revoke disabled. SQLite bodies in sqlite_brake.rs.

use super::{Guard, Reinstated, Revoked, StoreResult};
use crate::model::api::{DecommissionOutcome, DecommissionPlan};
use crate::model::{Actor, Credential};

/// The emergency brake and its undoing.
///
/// Concurrency contract:
/// - Every call is one write transaction: the `guard` runs inside it on the facts read there,
///   then the change, its audit event(s) and change-feed entries commit together or not at all.
/// - `revoke_agent`: the status change of the whole subtree, the disabled credentials, the
///   killed live tokens, every audit event and change-feed entry commit together or not at
///   all. The live-token index is updated *before* the commit (fail closed), and the call
///   goes before ordinary writes already queued (the brake's urgent writer turn).
/// - `reinstate_agent` and `decommission_agent` likewise, each in one transaction, over the
///   subtree as read in that transaction.
/// - `enable_credential` checks the agent's status and its enabled-credential limit in the
///   writing transaction: the limit holds because SQLite has one writer (**depends on SQLite's
///   single writer**; a second backend must lock the agent's credential set).
pub trait BrakeStore {
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
    /// Re-enables a disabled credential of an active agent, with its audit event; enabling an
    /// enabled one changes nothing and records nothing.
    fn enable_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Credential>;
}
