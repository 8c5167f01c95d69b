//! Access reviews in the registry: the diff rules, the reminder schedule, the background
//! scheduler (start, close at due date, reminders) and who may do what in a review.

pub mod diff;
pub mod rules;
pub mod schedule;
pub mod scheduler;

use crate::model::{Person, Role};
use crate::registry::policy;
use crate::registry::store::{StoreError, StoreResult};

pub use scheduler::{RetryPolicy, ReviewScheduler};

/// The name under which the registry itself acts in reviews (audit actor and `decided_by`).
pub const SYSTEM_ACTOR: &str = "steward-reviews";
/// What `decided_by` says for no-response outcomes applied at close.
pub const SYSTEM_DECIDER: &str = "system";

/// The facts about a review item that an authorisation decision needs, read inside the
/// transaction that acts on it.
#[derive(Debug, Clone)]
pub struct ItemFacts {
    pub item_id: i64,
    pub campaign_id: String,
    pub agent_id: String,
    pub reviewer: String,
}

/// A check run inside the transaction before a change to a review item.
pub type ItemGuard<'a> = &'a (dyn Fn(&ItemFacts) -> StoreResult<()> + Sync);

/// One decision of a batch (bulk loading such as the demo, or a confirmed bulk action), with
/// its own decider and time.
#[derive(Debug, Clone)]
pub struct BatchDecision {
    pub actor: crate::model::Actor,
    pub item_id: i64,
    pub decide: crate::model::review::DecideItem,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Which items a reassignment moves.
#[derive(Debug, Clone)]
pub enum ReassignTarget {
    Item(i64),
    /// Every item of one agent in one campaign.
    Agent {
        campaign_id: String,
        agent_id: String,
    },
}

/// The result of one webhook delivery attempt.
#[derive(Debug, Clone)]
pub enum ReminderAttempt {
    Delivered,
    /// Failed; `retry_at` is when to try again, or none to give up.
    Failed {
        error: String,
        retry_at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// What planning reminders did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderPlan {
    pub created: u64,
    pub cancelled: u64,
}

/// Creating and closing campaigns and reassigning items: admins.
pub fn may_administer(p: &Person) -> Result<(), StoreError> {
    if policy::is_admin(p) {
        Ok(())
    } else {
        Err(StoreError::Forbidden(format!(
            "{} may not administer review campaigns: it takes the admin role",
            p.email
        )))
    }
}

/// Every item of a campaign and its export (evidence): admins and auditors.
pub fn may_read_all_items(p: &Person) -> Result<(), StoreError> {
    if policy::is_admin(p) || p.has_role(Role::Auditor) {
        Ok(())
    } else {
        Err(StoreError::Forbidden(format!(
            "{} may not read every review item: it takes the admin or auditor role",
            p.email
        )))
    }
}

fn is_reviewer(p: &Person, item: &ItemFacts) -> bool {
    item.reviewer.eq_ignore_ascii_case(&p.email)
}

/// Deciding an item: its reviewer, or an admin.
pub fn may_decide(p: &Person, item: &ItemFacts) -> StoreResult<()> {
    if policy::is_admin(p) || is_reviewer(p, item) {
        Ok(())
    } else {
        Err(StoreError::Forbidden(format!(
            "{} may not decide review item {}: its reviewer is {}",
            p.email, item.item_id, item.reviewer
        )))
    }
}

/// Reading one item: its reviewer, admins and auditors.
pub fn may_read_item(p: &Person, item: &ItemFacts) -> StoreResult<()> {
    if may_read_all_items(p).is_ok() || is_reviewer(p, item) {
        Ok(())
    } else {
        Err(StoreError::Forbidden(format!(
            "{} may not read review item {}: its reviewer is {}",
            p.email, item.item_id, item.reviewer
        )))
    }
}
