//! The activity and audit timeline's storage: governance events and token exchanges, merged
//! newest first.

use super::StoreResult;
use crate::model::timeline::{TimelineKey, TimelinePage};

/// What a timeline read is narrowed to (checked and authorised by the route).
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    /// Only what concerns this agent id.
    pub agent: Option<String>,
    pub include_exchanges: bool,
    /// `human`, `agent` or `system`.
    pub actor_kind: Option<crate::model::ActorKind>,
    /// Lower-cased text to look for.
    pub text: Option<String>,
    /// Entries strictly older than this position.
    pub before: Option<TimelineKey>,
    /// 1 to [`crate::model::timeline::MAX_TIMELINE_PAGE`].
    pub limit: u32,
}

/// Reads the timeline.
///
/// Concurrency contract: one read transaction, so that the page is one snapshot of both the
/// audit log and the exchanges.
pub trait TimelineStore: Send + Sync {
    fn timeline(&self, filter: &TimelineFilter) -> StoreResult<TimelinePage>;
}
