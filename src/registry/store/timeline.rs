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

    /// Appends an `agent.register` event, dated at the agent's creation and written by
    /// `actor`, for every agent that has none (records imported or seeded in bulk). Returns
    /// how many it wrote. Writes in transactions of a few thousand events.
    fn backfill_registrations(&self, actor: &crate::model::Actor) -> StoreResult<u64>;

    /// Stores tokens issued elsewhere or earlier (a restored history, the demo's exchanges):
    /// their records, and the unexpired ones in the live index, so that introspection,
    /// revocation and the timeline see them. Usage and last-seen times are left alone.
    fn import_token_history(
        &self,
        tokens: &[crate::registry::tokens::live::TokenRecord],
    ) -> StoreResult<()>;
}
