//! Access reviews: campaigns, their items, decisions, close, export, scope diffs and
//! reminders. SQLite bodies in sqlite_reviews.rs; the rules (who may decide, what a decision
//! does to the grant, the recommendation) in `registry::reviews`.

use chrono::{DateTime, Utc};

use super::{Guard, StoreResult};
use crate::model::Actor;
use crate::model::review::{
    AcceptOutcome, AcceptRecommendations, BulkCertifyOutcome, Campaign, CampaignDetail,
    CampaignQuery, CloseOutcome, CreateCampaign, DecideItem, DecisionOutcome, ExportRow,
    QueueQuery, ReassignItems, ReassignOutcome, Reminder, ReminderPage, ReminderQuery, ReviewItem,
    ReviewItemPage, ReviewItemQuery, ReviewQueue, ScopeDiff,
};
use crate::registry::reviews::{
    BatchDecision, ItemGuard, ReassignTarget, ReminderAttempt, ReminderPlan,
};

/// Access reviews. `now` is passed in so that schedules, diffs and the background scheduler
/// can be driven by a test clock.
///
/// Concurrency contract:
/// - A decision (`decide_item`, `decide_items`, `certify_unchanged`,
///   `accept_recommendations`) is one write transaction: the `guard` on the item's facts, the
///   item's new state, the grant removed for a revoke (with its live tokens killed in the
///   index before commit), the campaign's counters, the audit events and change-feed entries
///   commit together or not at all. `decide_items` applies a whole batch or none of it.
/// - A campaign's snapshot and its close run in steps, each step its own short transaction
///   whose cursor moves with the rows it wrote, so a crash resumes where it stopped and the
///   outcome equals one uninterrupted run. Snapshots run one at a time in the process (a
///   mutex), so **a campaign's item ids form one contiguous range** (`items_first_id ..=
///   items_last_id`) that readers and exports rely on. **Depends on SQLite's single writer
///   and one process per database** (a second backend must allocate a campaign's ids as a
///   block, or stop relying on contiguity).
/// - `export_campaign` streams one snapshot, in item order.
/// - `plan_reminders` records each reviewer's reminder slot idempotently (a slot is a key:
///   planning twice plans once); `record_reminder_attempt` is one transaction per attempt.
pub trait ReviewStore {
    /// Creates a campaign; when it starts now, snapshots one item per (agent, grant).
    fn create_campaign(
        &self,
        actor: &Actor,
        req: &CreateCampaign,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign>;
    /// Opens scheduled campaigns whose start has come, snapshotting their items.
    fn start_due_campaigns(&self, actor: &Actor, now: DateTime<Utc>) -> StoreResult<Vec<Campaign>>;
    fn list_campaigns(&self, query: &CampaignQuery) -> StoreResult<Vec<Campaign>>;
    fn campaign_detail(&self, id: &str) -> StoreResult<Option<CampaignDetail>>;
    fn review_items(
        &self,
        campaign_id: &str,
        query: &ReviewItemQuery,
    ) -> StoreResult<ReviewItemPage>;
    fn review_item(&self, id: i64, guard: ItemGuard<'_>) -> StoreResult<ReviewItem>;
    /// One reviewer's queue, or (None) every reviewer's.
    fn review_queue(
        &self,
        reviewer: Option<&str>,
        query: &QueueQuery,
        now: DateTime<Utc>,
    ) -> StoreResult<ReviewQueue>;
    fn decide_item(
        &self,
        actor: &Actor,
        item_id: i64,
        req: &DecideItem,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<DecisionOutcome>;
    /// Applies many decisions in one transaction, all or none; returns how many changed
    /// something. Each decision is checked by `guard` and the same rules as `decide_item`.
    fn decide_items(&self, decisions: &[BatchDecision], guard: ItemGuard<'_>) -> StoreResult<u64>;
    /// Certifies the agent's undecided, used and unchanged items that pass `guard`.
    fn certify_unchanged(
        &self,
        actor: &Actor,
        campaign_id: &str,
        agent_id: &str,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<BulkCertifyOutcome>;
    /// Accepts the recommendation of many undecided items of one campaign; see
    /// [`AcceptRecommendations`]. `mine` limits the selection to that reviewer's items.
    fn accept_recommendations(
        &self,
        actor: &Actor,
        campaign_id: &str,
        req: &AcceptRecommendations,
        mine: Option<&str>,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<AcceptOutcome>;
    fn reassign_items(
        &self,
        actor: &Actor,
        target: &ReassignTarget,
        req: &ReassignItems,
        now: DateTime<Utc>,
    ) -> StoreResult<ReassignOutcome>;
    /// Closes an open campaign, applying its no-response outcome to undecided items.
    fn close_campaign(
        &self,
        actor: &Actor,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CloseOutcome>;
    /// Open campaigns whose `closes_at` has passed.
    fn campaigns_due_to_close(&self, now: DateTime<Utc>) -> StoreResult<Vec<String>>;
    /// Streams every item of a campaign, in item order, over one consistent snapshot.
    fn export_campaign(
        &self,
        id: &str,
        each: &mut dyn FnMut(ExportRow) -> StoreResult<()>,
    ) -> StoreResult<u64>;
    fn scope_diff(
        &self,
        agent_id: &str,
        lookback_days: u32,
        now: DateTime<Utc>,
        guard: Guard<'_>,
    ) -> StoreResult<ScopeDiff>;
    /// Records the current reminder slot for every reviewer with undecided items and cancels
    /// reminders that are no longer wanted. `deliverable`: a webhook is configured.
    fn plan_reminders(&self, now: DateTime<Utc>, deliverable: bool) -> StoreResult<ReminderPlan>;
    fn due_reminders(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Reminder>>;
    fn record_reminder_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        attempt: &ReminderAttempt,
    ) -> StoreResult<()>;
    /// Reminders, newest first; `reviewer` restricts to one person (non-admins).
    fn list_reminders(
        &self,
        query: &ReminderQuery,
        reviewer: Option<&str>,
    ) -> StoreResult<ReminderPage>;
}
