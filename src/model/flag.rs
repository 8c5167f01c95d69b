//! Flags: departures from an agent's learned behaviour, with their evidence. No I/O here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::activity::ActivityEvent;

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }
    /// A marker that does not rely on colour.
    pub fn marker(self) -> &'static str {
        match self {
            Severity::Low => "·",
            Severity::Medium => "!",
            Severity::High => "!!",
            Severity::Critical => "!!!",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlagState {
    Open,
    Acknowledged,
    Resolved,
}

impl FlagState {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagState::Open => "open",
            FlagState::Acknowledged => "acknowledged",
            FlagState::Resolved => "resolved",
        }
    }
    pub fn parse(text: &str) -> Option<FlagState> {
        [
            FlagState::Open,
            FlagState::Acknowledged,
            FlagState::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Which detector raised a flag.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FlagKind {
    RateSpike,
    FirstScope,
    NewAudience,
    OffHours,
    DeeperDelegation,
    NewSubject,
    RefusedBurst,
    RemovedScope,
}

impl FlagKind {
    pub const ALL: [FlagKind; 8] = [
        FlagKind::RateSpike,
        FlagKind::FirstScope,
        FlagKind::NewAudience,
        FlagKind::OffHours,
        FlagKind::DeeperDelegation,
        FlagKind::NewSubject,
        FlagKind::RefusedBurst,
        FlagKind::RemovedScope,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::RateSpike => "rate-spike",
            FlagKind::FirstScope => "first-scope",
            FlagKind::NewAudience => "new-audience",
            FlagKind::OffHours => "off-hours",
            FlagKind::DeeperDelegation => "deeper-delegation",
            FlagKind::NewSubject => "new-subject",
            FlagKind::RefusedBurst => "refused-burst",
            FlagKind::RemovedScope => "removed-scope",
        }
    }
    pub fn parse(text: &str) -> Option<FlagKind> {
        FlagKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Observed against the baseline, the window, and the events that triggered it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Evidence {
    /// What was seen, e.g. "412 exchanges in the hour from 03:00".
    pub observed: String,
    /// What is normal for this agent, e.g. "busiest hour: median 4, high 7 (28 days)".
    pub baseline: String,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    /// The triggering events (at most a few).
    pub events: Vec<ActivityEvent>,
}

/// A flag: a record with a life (open → acknowledged → resolved).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Flag {
    pub id: String,
    pub agent_id: String,
    pub kind: FlagKind,
    pub severity: Severity,
    pub state: FlagState,
    /// One line for lists.
    pub summary: String,
    pub evidence: Evidence,
    /// Raised only from refused or unauthenticated events (never triggers auto-suspend).
    pub refused_only: bool,
    /// The agent was suspended automatically because of this flag.
    pub auto_suspended: bool,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledge_reason: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolve_reason: Option<String>,
}

/// `GET /v1/flags` filters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct FlagQuery {
    /// Only this agent's flags.
    pub agent: Option<String>,
    /// Only flags of at least this severity.
    pub severity: Option<Severity>,
    /// Only flags in this state; `unresolved` is accepted for open or acknowledged.
    pub state: Option<String>,
    /// Only flags opened at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (default 200, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct FlagPage {
    /// Severity first, then newest first.
    pub flags: Vec<Flag>,
}

/// `POST /v1/flags/{id}/acknowledge` and `/resolve`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct FlagDecision {
    pub reason: String,
}

/// The label an agent's `flags` list carries for an unresolved flag: `severity:kind`.
pub fn flag_label(severity: Severity, kind: FlagKind) -> String {
    format!("{}:{}", severity.as_str(), kind.as_str())
}

/// The highest severity among an agent's flag labels (`severity:kind`), if any.
pub fn highest_severity<'a>(labels: impl IntoIterator<Item = &'a str>) -> Option<Severity> {
    labels
        .into_iter()
        .filter_map(|l| Severity::parse(l.split(':').next().unwrap_or("")))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_the_highest_wins() {
        let l = flag_label(Severity::High, FlagKind::RateSpike);
        assert_eq!(l, "high:rate-spike");
        assert_eq!(
            highest_severity(["low:off-hours", l.as_str(), "medium:new-audience"]),
            Some(Severity::High)
        );
        assert_eq!(highest_severity(["night-burst"]), None);
        for k in FlagKind::ALL {
            assert_eq!(FlagKind::parse(k.as_str()), Some(k));
        }
    }
}
