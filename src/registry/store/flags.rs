//! Activity and flags (bodies in sqlite_activity.rs and sqlite_flags.rs).

use chrono::{DateTime, Utc};

use super::{StoreResult, Visibility};
use crate::model::Actor;
use crate::model::activity::{ActivityEvent, HourlyPoint};
use crate::model::flag::{Flag, FlagKind, FlagQuery, FlagState, Severity};

/// Counts to add to one agent's hour: accepted/refused, and per item (`s:scope`, `a:audience`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HourDelta {
    pub agent_id: String,
    /// Start of the hour, Unix seconds.
    pub hour: i64,
    pub accepted: u32,
    pub refused: u32,
    pub items: Vec<(String, u32)>,
}

/// One row of history for rebuilding baselines.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryHour {
    pub agent_id: String,
    pub hour: i64,
    pub accepted: u32,
    pub refused: u32,
}

/// The activity record.
///
/// Concurrency contract: `record_activity` appends a batch (raw events and hourly additions)
/// in one write transaction; hourly rows add up (two batches for the same hour sum). Reads see
/// one snapshot. Events for agents the registry does not know are stored for the record (the
/// agent id is what the request named); hourly buckets only for known agents.
pub trait ActivityStore {
    fn record_activity(&self, events: &[ActivityEvent], hours: &[HourDelta]) -> StoreResult<()>;
    /// Raw events of one agent since `since`, newest first.
    fn activity(
        &self,
        agent_id: &str,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> StoreResult<Vec<ActivityEvent>>;
    /// The agent's hours in [from, to) that had activity, oldest first.
    fn activity_hours(&self, agent_id: &str, from: i64, to: i64) -> StoreResult<Vec<HourlyPoint>>;
    /// Item counts (`s:` scopes, `a:` audiences) in [from, to).
    fn activity_items(&self, agent_id: &str, from: i64, to: i64)
    -> StoreResult<Vec<(String, u32)>>;
    /// Every agent's hours since `from` (for rebuilding baselines at start), visited in
    /// batches.
    fn history_since(
        &self,
        from: i64,
        visit: &mut dyn FnMut(&[HistoryHour]),
        items: &mut dyn FnMut(&str, &str, i64),
    ) -> StoreResult<()>;
    /// Drops raw events before `raw_before` and hourly rows before `hours_before`.
    fn prune_activity(&self, raw_before: i64, hours_before: i64) -> StoreResult<u64>;
}

/// A flag a detector raised (the store adds id, state and times).
#[derive(Debug, Clone)]
pub struct NewFlag {
    pub agent_id: String,
    pub kind: FlagKind,
    pub severity: Severity,
    /// What makes two detections the same flag.
    pub key: String,
    pub summary: String,
    pub evidence: crate::model::flag::Evidence,
    pub refused_only: bool,
    pub at: DateTime<Utc>,
}

/// Flags: opened by the registry, decided by people.
///
/// Concurrency contract: `open_flag` runs in one write transaction with its audit event
/// (`flag.open`, by the system) and the agent's change-feed entry (its `flags` labels); an
/// unresolved flag with the same agent, kind and key makes it a no-op (`None`). `decide_flag`
/// reads the flag and the agent's facts, asks `guard`, checks the transition and writes the
/// change and its audit event in one transaction: two concurrent acknowledgements cannot both
/// succeed (the second gets 409 with the current state).
pub trait FlagStore {
    /// 404 when the agent does not exist.
    fn open_flag(&self, new: &NewFlag) -> StoreResult<Option<Flag>>;
    fn list_flags(&self, query: &FlagQuery, visibility: &Visibility) -> StoreResult<Vec<Flag>>;
    /// The flag and the agent's owner email.
    fn flag(&self, id: &str) -> StoreResult<Option<(Flag, Option<String>)>>;
    /// Moves a flag to `to` (acknowledged or resolved) with the reason.
    fn decide_flag(
        &self,
        actor: &Actor,
        id: &str,
        to: FlagState,
        reason: &str,
        guard: &(dyn Fn(&Flag, Option<&str>) -> StoreResult<()> + Sync),
    ) -> StoreResult<Flag>;
    /// Marks that the agent was suspended because of this flag.
    fn mark_auto_suspended(&self, id: &str) -> StoreResult<()>;
}
