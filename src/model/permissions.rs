//! What the caller may do, as the registry's policy answers it in `/v1/me`. The console hides
//! and explains with this; it never decides: the registry checks every call anyway.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which agents a permission covers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// No agent.
    #[default]
    None,
    /// The agents the caller owns.
    Owned,
    /// Every agent.
    All,
}

impl Reach {
    /// Whether it covers an agent the caller owns (`owned`) or not.
    pub fn covers(self, owned: bool) -> bool {
        match self {
            Reach::None => false,
            Reach::Owned => owned,
            Reach::All => true,
        }
    }
}

/// The caller's permissions. A registry older than this field sends none: every entry is then
/// `none`/false, and the console shows every key (the registry still refuses what it refuses).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, ToSchema)]
pub struct Permissions {
    /// Assign or change an agent's owner.
    pub set_owner: Reach,
    /// Revoke (suspend) an agent.
    pub revoke: Reach,
    /// Reinstate a suspended agent.
    pub reinstate: Reach,
    /// Decommission an agent (and manage its grants).
    pub decommission: Reach,
    /// Read every campaign's items and progress (and export the evidence).
    pub read_all_reviews: bool,
    /// Create and close campaigns, reassign items.
    pub administer_campaigns: bool,
    /// Read the whole audit log.
    pub read_audit: bool,
    /// Acknowledge behaviour flags (`POST /v1/flags/{id}/acknowledge`): admins and responders
    /// on every agent, an owner on their own.
    #[serde(default)]
    pub acknowledge_flags: Reach,
    /// List the Shared Signals streams with their lag and last error, pause and resume them
    /// (`/v1/streams`): admins.
    #[serde(default)]
    pub manage_streams: bool,
}

/// What the caller may do to one agent now (its status counted), as the registry answers it
/// with the agent's detail.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, ToSchema)]
pub struct AgentActions {
    pub revoke: bool,
    pub reinstate: bool,
    pub decommission: bool,
    pub set_owner: bool,
}
