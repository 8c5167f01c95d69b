//! Ownership payloads: the ranked owner candidates of an agent, the reminders a manager gets
//! when they inherit a leaver's agents, and the counts of a succession.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a person is offered as an agent's owner, in ranking order (best first).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateReason {
    /// A member of the agent's team.
    Team,
    /// The manager of the agent's previous (or current, departed) owner.
    PreviousOwnerManager,
    /// A person the agent has acted for (the subject of its token exchanges).
    User,
    /// Anyone else in the directory.
    Other,
}

impl CandidateReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateReason::Team => "team",
            CandidateReason::PreviousOwnerManager => "previous owner's manager",
            CandidateReason::User => "uses the agent",
            CandidateReason::Other => "",
        }
    }
}

/// One person the registry offers as the agent's owner. People who left are never offered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct OwnerCandidate {
    pub email: String,
    pub display_name: String,
    pub team: Option<String>,
    pub reason: CandidateReason,
}

/// The ranked owner candidates of an agent: team first, then the previous owner's manager, then
/// the people who use the agent, then the rest (each group by name).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct OwnerCandidates {
    pub agent_id: String,
    /// The current owner (shown, not offered), if any.
    pub current_owner: Option<String>,
    /// Set when the current owner has left.
    pub current_owner_left_at: Option<DateTime<Utc>>,
    pub candidates: Vec<OwnerCandidate>,
    /// True when more people matched than `limit` allowed.
    pub truncated: bool,
}

/// A reminder to a manager: an agent of someone who left is now theirs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Handover {
    pub id: i64,
    pub agent_id: String,
    pub agent_name: String,
    /// The leaver the agent came from.
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct HandoverList {
    pub handovers: Vec<Handover>,
}

/// What a person's leaving did to their agents.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, ToSchema)]
pub struct Succession {
    /// The manager who inherited the agents, if any.
    pub successor: Option<String>,
    /// Agents handed to the successor.
    pub handed_over: u64,
    /// Agents left orphaned (no active manager to inherit them).
    pub orphaned: u64,
    /// Undecided review items of open campaigns that the leaver was to review, moved to the
    /// successor (or, with none, to each campaign's fallback reviewer).
    #[serde(default)]
    pub review_items_moved: u64,
}

/// The answer to marking a person as having left.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct LeaveOutcome {
    pub person: crate::model::Person,
    pub succession: Succession,
}

/// How many handovers were acknowledged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Acknowledged {
    pub acknowledged: u64,
}
