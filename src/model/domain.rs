//! Domain types: the nouns every part of Steward speaks about.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A role a person may hold. Anyone may own agents; roles add powers on top of ownership.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads everything; revokes and reinstates agents.
    Responder,
    /// Reads everything, including the audit log; writes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Responder, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Responder => "responder",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A human principal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    /// False once the person has left; their agents need a new owner.
    pub active: bool,
    /// Email of the person's manager, the natural successor for their agents.
    pub manager: Option<String>,
    pub team: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Position in the change feed of this record's latest change.
    pub change_seq: i64,
    /// When the person was marked as having left (absent while active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<DateTime<Utc>>,
}

impl Person {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    Agent,
    SubAgent,
    Instance,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Agent => "agent",
            AgentKind::SubAgent => "sub-agent",
            AgentKind::Instance => "instance",
        }
    }

    pub fn parse(text: &str) -> Option<AgentKind> {
        [AgentKind::Agent, AgentKind::SubAgent, AgentKind::Instance]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    Suspended,
    Decommissioned,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Suspended => "suspended",
            AgentStatus::Decommissioned => "decommissioned",
        }
    }

    pub fn parse(text: &str) -> Option<AgentStatus> {
        [
            AgentStatus::Active,
            AgentStatus::Suspended,
            AgentStatus::Decommissioned,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// How the registry learnt of an agent.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentSource {
    /// Registered by its owner or an admin.
    Registered,
    /// Found by a scan of credentials in use ("shadow agent").
    Discovered,
}

impl AgentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentSource::Registered => "registered",
            AgentSource::Discovered => "discovered",
        }
    }

    pub fn parse(text: &str) -> Option<AgentSource> {
        [AgentSource::Registered, AgentSource::Discovered]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One scope an agent may request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Grant {
    pub scope: String,
    /// Email of who granted it, or `system` for seeded and discovered grants.
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub justification: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_certified_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// A registered public key; the agent signs a short assertion. Preferred.
    PublicKey,
    /// A static shared secret: allowed only as flagged technical debt.
    StaticSecret,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::PublicKey => "public-key",
            CredentialKind::StaticSecret => "static-secret",
        }
    }

    pub fn parse(text: &str) -> Option<CredentialKind> {
        [CredentialKind::PublicKey, CredentialKind::StaticSecret]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// How an agent proves itself. Never carries secret material.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Credential {
    pub id: String,
    pub kind: CredentialKind,
    pub label: String,
    /// A fingerprint of the key or secret (never the secret itself).
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A non-human principal, as listed. `grants` is complete; credentials come with the detail.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: AgentKind,
    pub parent_id: Option<String>,
    /// The owner's email, or null for an unowned agent.
    pub owner: Option<String>,
    pub owner_name: Option<String>,
    pub team: String,
    pub environment: String,
    pub status: AgentStatus,
    pub source: AgentSource,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// True while the agent has an enabled static secret (technical debt).
    pub static_secret: bool,
    /// Risk flags recorded on the agent (anomalies with a short name).
    pub flags: Vec<String>,
    pub grants: Vec<Grant>,
    /// Position in the change feed of this record's latest change.
    pub change_seq: i64,
    /// Set when the agent is **orphaned**: its owner has left (when they left). An orphaned
    /// agent counts as unowned work (`unowned=true` lists it) until it gets a new owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_left_at: Option<DateTime<Utc>>,
}

impl Agent {
    /// True when the agent's owner has left (the agent needs a new owner).
    pub fn orphaned(&self) -> bool {
        self.owner.is_some() && self.owner_left_at.is_some()
    }
}

/// A short reference to another agent (parent or child).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AgentRef {
    pub id: String,
    pub name: String,
    pub kind: AgentKind,
    pub status: AgentStatus,
}

/// An agent with everything around it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AgentDetail {
    #[serde(flatten)]
    pub agent: Agent,
    pub credentials: Vec<Credential>,
    pub parent: Option<AgentRef>,
    pub children: Vec<AgentRef>,
    /// Access requests and per-use approvals still pending for this agent, newest first.
    #[serde(default)]
    pub requests: Vec<crate::model::approvals::AccessRequest>,
    /// Its unresolved flags (open or acknowledged), severity first (filled by
    /// `GET /v1/agents/{id}`).
    #[serde(default)]
    pub open_flags: Vec<crate::model::flag::Flag>,
    /// What the caller may do to it now (filled by `GET /v1/agents/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may: Option<super::permissions::AgentActions>,
}
