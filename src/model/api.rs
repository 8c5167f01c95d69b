//! Request and response bodies of the governance API (`/v1/`).
//!
//! Request bodies refuse unknown fields: a typo in a governance call must fail loudly rather than
//! be ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::audit::{AuditEvent, BrokenLink};
use super::domain::{Agent, AgentKind, AgentSource, AgentStatus, Person, Role};

/// Every error the API returns.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ApiErrorBody {
    /// A stable machine-readable code, e.g. `not_found`, `forbidden`, `invalid_text`.
    pub error: String,
    /// A sentence for humans.
    pub message: String,
}

/// Who is calling, as the server sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct WhoAmI {
    pub person: Person,
    pub token_id: String,
    pub token_expires_at: DateTime<Utc>,
    /// The registry's name for itself (shown in the console header).
    pub server_name: String,
    /// What the caller may do, from the registry's policy (absent from older registries).
    #[serde(default)]
    pub may: Option<super::permissions::Permissions>,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// Only agents without an owner: unowned ones and orphaned ones (whose owner has left).
    pub unowned: Option<bool>,
    /// Only agents owned by this email.
    pub owner: Option<String>,
    pub status: Option<AgentStatus>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub kind: Option<AgentKind>,
    /// Case-insensitive text search over name, description and id.
    pub q: Option<String>,
    /// Page size, 1 to 1000 (default 200).
    pub limit: Option<u32>,
    /// Return agents whose id sorts after this one (from the previous page's `next`).
    pub after: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct AgentPage {
    pub agents: Vec<Agent>,
    /// Pass as `after` to read the next page; null on the last page.
    pub next: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_kind")]
    pub kind: AgentKind,
    /// Required for sub-agents and instances.
    pub parent_id: Option<String>,
    /// The owner's email. A person who is not an admin may register only agents they own.
    pub owner: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `registered` unless an admin records a discovered agent.
    pub source: Option<AgentSource>,
}

fn default_kind() -> AgentKind {
    AgentKind::Agent
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddGrant {
    pub scope: String,
    pub justification: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetOwner {
    /// The new owner's email.
    pub owner: String,
    pub reason: Option<String>,
}

/// A reason for a governance action (revoke, reinstate, decommission, removing a grant).
#[derive(Deserialize, Serialize, Debug, Clone, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionReason {
    pub reason: Option<String>,
}

/// What a revocation did. Revoking an agent that is already suspended changes nothing and says so.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct RevokeOutcome {
    pub agent_id: String,
    pub previous_status: AgentStatus,
    pub status: AgentStatus,
    /// False when the agent was already suspended or decommissioned.
    pub changed: bool,
    pub credentials_disabled: u32,
    pub tokens_revoked: u64,
    /// The audit event that records the revocation (for adding an incident reference).
    pub audit_seq: i64,
    /// Time the registry spent, from receiving the call to committing it.
    pub elapsed_ms: f64,
    pub agent: Agent,
    /// Every agent of the tree the revoke covered, the target first, then its sub-agents and
    /// instances (breadth-first), each with its tokens killed and credentials disabled.
    #[serde(default)]
    pub stopped: Vec<crate::model::brake::StoppedAgent>,
    /// The latest expiry among the tokens this revoke killed: a resource server that validates
    /// JWTs offline (without introspection) accepts them until then. Null when none was killed.
    #[serde(default)]
    pub latest_token_expiry: Option<DateTime<Utc>>,
}

/// What a decommission did, across the agent and all its descendants.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct DecommissionOutcome {
    pub agent_id: String,
    /// Every agent decommissioned, the target first, then its sub-agents and instances.
    pub decommissioned: Vec<String>,
    pub grants_removed: u32,
    pub credentials_disabled: u32,
    pub tokens_revoked: u64,
    pub audit_seq: i64,
    pub elapsed_ms: f64,
    /// Agents under the target the cascade stopped at: owned by someone else, and the caller
    /// is not an admin. They and their own sub-agents are untouched.
    #[serde(default)]
    pub skipped: Vec<crate::model::brake::SkippedAgent>,
    /// Open review items closed because their agent was decommissioned.
    #[serde(default)]
    pub review_items_closed: u64,
}

/// What a decommission would do, shown before the confirmation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct DecommissionPlan {
    pub agent_id: String,
    pub agents: Vec<String>,
    pub grants: u32,
    pub credentials: u32,
    /// Agents under the target the cascade would stop at (owned by someone else; admins
    /// skip none).
    #[serde(default)]
    pub skipped: Vec<crate::model::brake::SkippedAgent>,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// Case-insensitive text search over name and email.
    pub q: Option<String>,
    pub active: Option<bool>,
    pub limit: Option<u32>,
    /// Return people whose email sorts after this one.
    pub after: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct PeoplePage {
    pub people: Vec<Person>,
    pub next: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePerson {
    pub email: String,
    pub display_name: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    pub manager: Option<String>,
    pub team: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePerson {
    pub display_name: Option<String>,
    pub roles: Option<Vec<Role>>,
    /// False marks the person as having left: their API tokens stop working.
    pub active: Option<bool>,
    pub manager: Option<String>,
    pub team: Option<String>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// A label for the token, e.g. the machine it is used on.
    pub name: Option<String>,
    /// Days until it expires (1 to the registry's maximum, `--api-token-max-days`, default 90).
    /// A token minted with another API token never outlives it.
    pub ttl_days: Option<u32>,
}

/// A freshly issued API token. The token itself is shown only in this answer.
#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct IssuedToken {
    pub id: String,
    pub person: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// `api`, or `invitation`: what an admin issues for someone else, single use, valid 24
    /// hours, good only for `POST /v1/me/tokens` (redeemed by that person for their own token).
    #[serde(default = "api_kind")]
    pub kind: String,
}

fn api_kind() -> String {
    "api".into()
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Return events with a sequence number above this one.
    pub after: Option<i64>,
    /// Page size, 1 to 5000 (default 500).
    pub limit: Option<u32>,
    /// Only events about this target (e.g. an agent id).
    pub target: Option<String>,
    /// Only events by this actor id.
    pub actor: Option<String>,
    /// Only events whose action starts with this prefix (e.g. `agent.`).
    pub action: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `after` to read the next page; null when there is nothing more.
    pub next: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    pub events_checked: u64,
    pub head_seq: i64,
    pub head_hash: String,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    /// The note, e.g. an incident reference such as `INC-4821`.
    pub text: String,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The cursor from the previous answer (0 for everything).
    pub after: Option<i64>,
    /// Page size, 1 to 5000 (default 1000).
    pub limit: Option<u32>,
}

/// Everything that changed after a cursor, as current records.
#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct ChangeFeed {
    pub agents: Vec<Agent>,
    pub people: Vec<Person>,
    /// Agents the caller can no longer see (for example, given to another owner).
    pub removed: Vec<String>,
    /// Pass as `after` next time.
    pub cursor: i64,
    /// True when more changes are waiting beyond this page.
    pub more: bool,
    /// On a first sync (`after` = 0): how many agents the caller will receive in all, so that a
    /// console can say "syncing N of M".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// The registry's health, unauthenticated: `status` is `ok`, or `not_synced` (503) on a replica
/// that lost the database's change feed.
#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub schema_version: i64,
    /// Whether this process fans out and pushes Shared Signals: always on SQLite; over
    /// PostgreSQL only the one replica holding the delivery lock does (the others serve polls).
    #[serde(default)]
    pub delivers_signals: bool,
}
