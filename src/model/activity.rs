//! Activity: what the registry sees an agent do (exchanges accepted and refused, sub-agent hops,
//! introspections, revocations), raw and per agent per hour. No I/O here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of thing happened.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    /// A token exchange with a person's token as subject (depth 1).
    Exchange,
    /// A sub-agent hop: an exchange whose subject token was itself exchanged (depth ≥ 2).
    Hop,
    /// A resource server introspected one of the agent's tokens.
    Introspection,
    /// The agent was revoked or decommissioned.
    Revoke,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Exchange => "exchange",
            ActivityKind::Hop => "hop",
            ActivityKind::Introspection => "introspection",
            ActivityKind::Revoke => "revoke",
        }
    }
    pub fn parse(text: &str) -> Option<ActivityKind> {
        [
            ActivityKind::Exchange,
            ActivityKind::Hop,
            ActivityKind::Introspection,
            ActivityKind::Revoke,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// One thing an agent did (or that was attempted in its name).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ActivityEvent {
    pub at: DateTime<Utc>,
    /// The agent named (for a refusal: the agent the request claimed to be).
    pub agent_id: String,
    pub kind: ActivityKind,
    /// True when the registry said yes.
    pub accepted: bool,
    /// For a refusal: the OAuth error code (`invalid_client`, `invalid_scope`, `rate_limited`…).
    pub reason: Option<String>,
    /// The person the token is for, when known.
    pub subject: Option<String>,
    /// Length of the `act` chain (1 for a first exchange, 2+ for hops; 0 when unknown).
    pub depth: u8,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    /// `private_key_jwt`, `client_secret`, or null when the agent did not authenticate.
    pub client_auth: Option<String>,
}

/// `GET /v1/agents/{id}/activity`: raw events, newest first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ActivityPage {
    pub agent_id: String,
    pub events: Vec<ActivityEvent>,
    /// How many days raw events are kept.
    pub retention_days: u32,
}

/// One hour of an agent's activity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct HourlyPoint {
    /// Start of the hour (UTC).
    pub hour: DateTime<Utc>,
    pub accepted: u32,
    pub refused: u32,
}

/// The agent's learned normal hourly rate, as a band.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct BaselineBand {
    /// Median of the agent's busiest hour per day over the window.
    pub median: f64,
    /// The band's top: median + 3 × MAD of the busiest hour per day.
    pub high: f64,
    /// What a rate spike must exceed: max(spike factor × high, spike floor).
    pub spike_threshold: f64,
    /// Days of history behind it.
    pub days: u32,
    /// False while there is less history than the registry needs before it judges.
    pub judging: bool,
}

/// A scope or audience used in the last 24 hours.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct RecentUse {
    pub name: String,
    pub count: u32,
    /// Not used in the baseline window before these 24 hours.
    pub first_use: bool,
}

/// `GET /v1/agents/{id}/activity/hourly`: the series for the sparkline, with the band.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct HourlySeries {
    pub agent_id: String,
    pub days: u32,
    /// Every hour of the period, oldest first (hours without activity are zeros).
    pub points: Vec<HourlyPoint>,
    pub baseline: BaselineBand,
    pub scopes_24h: Vec<RecentUse>,
    pub audiences_24h: Vec<RecentUse>,
}
