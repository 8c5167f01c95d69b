//! The brake over an agent's tree: what a revoke stopped, what a reinstatement restarted, what
//! a decommission left alone, and re-enabling a credential.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Agent, AgentKind, AgentStatus};

/// One agent of the tree a revoke covered (the target first, then its sub-agents and
/// instances, breadth-first), with what the revoke did to it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct StoppedAgent {
    pub agent_id: String,
    pub name: String,
    pub kind: AgentKind,
    pub previous_status: AgentStatus,
    pub status: AgentStatus,
    /// Live tokens in which it acted (and everything exchanged from them), now inactive.
    pub tokens_killed: u64,
    pub credentials_disabled: u32,
}

/// A reinstatement: by default the agent alone; with `subtree`, also every suspended sub-agent
/// and instance under it.
#[derive(Deserialize, Serialize, Debug, Clone, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReinstateRequest {
    pub reason: Option<String>,
    /// Also reinstate every suspended agent under this one (default false: the agent alone).
    #[serde(default)]
    pub subtree: bool,
}

/// One agent a reinstatement made active again.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ReinstatedAgent {
    pub agent_id: String,
    pub name: String,
    pub kind: AgentKind,
}

/// The reinstated agent (all its fields) and what else was reinstated with it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ReinstateOutcome {
    #[serde(flatten)]
    pub agent: Agent,
    /// Whether the caller asked for the whole tree.
    pub subtree: bool,
    /// Every agent made active by this call, the target first; empty when nothing changed.
    pub reinstated: Vec<ReinstatedAgent>,
    /// Suspended agents under the target that stay suspended (when `subtree` was false).
    pub still_suspended: Vec<ReinstatedAgent>,
}

/// An agent a decommission's cascade did not touch, because the caller may not manage it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct SkippedAgent {
    pub agent_id: String,
    pub name: String,
    /// Its owner's email, or null for an unowned agent.
    pub owner: Option<String>,
    pub why: String,
}

/// Re-enabling a disabled credential (admins and responders).
#[derive(Deserialize, Serialize, Debug, Clone, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableCredential {
    pub reason: Option<String>,
}
