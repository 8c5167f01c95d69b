//! Access requests and per-use approvals: one queue, one record type. An access request (`grant`)
//! asks for a scope for an agent; once approved it becomes a time-bound grant. A per-use approval
//! (`use`) is a human yes for one token exchange of a `per-use` scope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::catalogue::Tier;

/// Which kind of decision a request asks for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// A grant of a scope to an agent.
    Grant,
    /// One exchange of a per-use scope.
    Use,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Grant => "grant",
            RequestKind::Use => "use",
        }
    }

    pub fn parse(text: &str) -> Option<RequestKind> {
        match text {
            "grant" => Some(RequestKind::Grant),
            "use" => Some(RequestKind::Use),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
            RequestStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<RequestStatus> {
        [
            RequestStatus::Pending,
            RequestStatus::Approved,
            RequestStatus::Denied,
            RequestStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One approver's yes (or `policy` for a low-tier grant approved at once).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ApprovalVote {
    /// An email, or `policy`.
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// An access request or a per-use approval. Its id is also the approval's id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AccessRequest {
    pub id: String,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub agent_id: String,
    pub agent_name: String,
    /// The agent's owner (never an approver of it).
    pub agent_owner: Option<String>,
    /// The scope asked for; for a per-use approval, its scopes separated by spaces.
    pub scope: String,
    /// Every scope the request covers (one for a grant).
    pub scopes: Vec<String>,
    pub resource_id: String,
    pub tier: Tier,
    /// Who asked: a person's email (grant) or the agent's id (use).
    pub requester: String,
    /// Per-use: the person the agent acts for.
    pub subject: Option<String>,
    /// Per-use: the audiences of the exchange.
    pub audience: Vec<String>,
    /// Per-use: the delegation chain, newest actor first (the agent itself included).
    pub chain: Vec<String>,
    pub justification: Option<String>,
    /// Grant: how long the grant lasts once approved (`30d`, `12h`).
    pub duration: Option<String>,
    /// How many distinct approvals complete it.
    pub approvals_required: u32,
    pub approvals: Vec<ApprovalVote>,
    pub created_at: DateTime<Utc>,
    /// Pending: when it expires undecided. Approved per-use: when it can no longer be used.
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    /// The denial's reason.
    pub reason: Option<String>,
    /// Grant: when the resulting grant ends.
    pub grant_expires_at: Option<DateTime<Utc>>,
    /// Per-use: when the exchange spent it.
    pub used_at: Option<DateTime<Utc>>,
    /// In the approver's queue only: the agent's current grants and their use, so that an
    /// approver who may not read the agent otherwise still decides with them in view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_grants: Option<Vec<crate::model::Grant>>,
}

/// `POST /v1/agents/{id}/requests`.
#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub scope: String,
    pub justification: String,
    /// `30d` or `12h`; defaults to the tier's longest grant.
    pub duration: Option<String>,
}

/// `POST /v1/approvals/{id}/approve` and `/deny` (deny needs a reason).
#[derive(Serialize, Deserialize, Clone, Debug, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    pub reason: Option<String>,
}

/// `GET /v1/approvals` and `GET /v1/agents/{id}/requests` filters.
#[derive(Deserialize, Serialize, Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// `pending` (the default for the approvals queue), `approved`, `denied`, `expired`, or `all`.
    pub status: Option<String>,
    /// `grant` or `use`.
    pub kind: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct RequestList {
    pub requests: Vec<AccessRequest>,
}
