//! The background side of access reviews: opens scheduled campaigns when they start, closes
//! campaigns when their close time passes (applying the no-response outcome), and delivers
//! reminders to a webhook receiver.
//!
//! Every step takes `now` as an argument, so tests drive it with their own clock through
//! [`ReviewScheduler::run_once`] and [`ReviewScheduler::run_reminders_once`]; the server runs
//! [`ReviewScheduler::spawn`], which calls `run_once` with the registry clock's time every minute.
//!
//! Delivery: one POST per (campaign, reviewer, slot), recorded in the store under that unique
//! key. A failed POST is retried with exponential backoff; a delivered one is never sent again.
//! Should the registry stop between a receiver's acknowledgement and the record of it, the
//! same message is sent once more with the same `Idempotency-Key`, so receivers can drop it.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use reqwest::Url;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ReminderAttempt, SYSTEM_ACTOR};
use crate::model::Actor;
use crate::model::review::{Campaign, CloseOutcome, Reminder, ReminderMessage};
use crate::registry::store::{Store, StoreError, StoreResult};

/// How often the server's background task runs.
pub const TICK: StdDuration = StdDuration::from_secs(60);

/// Reminders delivered per run at most (the rest wait for the next run).
const DELIVERY_BATCH: u32 = 500;

/// Exponential backoff for failed deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each further failure.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Attempts in total before a reminder is marked failed.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 30 s, 1 min, 2 min, … capped at 1 h; 8 attempts.
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::seconds(30),
            max_delay: Duration::hours(1),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 for the first failure).
    pub fn delay_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let delay = self
            .first_delay
            .checked_mul(1 << doublings)
            .unwrap_or(self.max_delay);
        delay.min(self.max_delay)
    }
}

/// What one reminder run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderRun {
    /// Reminders newly recorded for the current slots.
    pub planned: u64,
    /// Reminders cancelled (reviewer finished, replaced by a later slot, campaign closed).
    pub cancelled: u64,
    pub attempted: u64,
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub failed: u64,
    /// Reminders given up after the last retry.
    pub gave_up: u64,
}

/// What one background run did.
#[derive(Debug, Default)]
pub struct TickReport {
    pub started: Vec<Campaign>,
    pub closed: Vec<CloseOutcome>,
    pub reminders: ReminderRun,
    pub errors: Vec<String>,
}

#[derive(Clone)]
pub struct ReviewScheduler {
    store: Arc<dyn Store>,
    webhook: Option<Url>,
    http: reqwest::Client,
    pub retry: RetryPolicy,
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| StoreError::Internal(format!("the review scheduler's worker failed: {e}")))?
}

/// Describes a failed POST without the receiver's URL (webhook URLs often embed a secret).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        return "the receiver did not answer in time".into();
    }
    if e.is_connect() {
        return "cannot connect to the receiver".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl ReviewScheduler {
    /// `webhook`: where reminders are POSTed; without one they are recorded (visible in the
    /// API) but not sent.
    pub fn new(store: Arc<dyn Store>, webhook: Option<Url>) -> anyhow::Result<ReviewScheduler> {
        let http = reqwest::Client::builder()
            .connect_timeout(StdDuration::from_secs(5))
            .timeout(StdDuration::from_secs(10))
            .user_agent(concat!("steward-reminders/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ReviewScheduler {
            store,
            webhook,
            http,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> ReviewScheduler {
        self.retry = retry;
        self
    }

    /// Opens scheduled campaigns whose start has come.
    pub async fn start_due_once(&self, now: DateTime<Utc>) -> StoreResult<Vec<Campaign>> {
        blocking(&self.store, move |s| {
            s.start_due_campaigns(&Actor::system(SYSTEM_ACTOR), now)
        })
        .await
    }

    /// Closes every open campaign whose close time has passed.
    pub async fn close_due_once(&self, now: DateTime<Utc>) -> (Vec<CloseOutcome>, Vec<String>) {
        let mut closed = Vec::new();
        let mut errors = Vec::new();
        let due = match blocking(&self.store, move |s| s.campaigns_due_to_close(now)).await {
            Ok(due) => due,
            Err(e) => return (closed, vec![format!("cannot list campaigns to close: {e}")]),
        };
        for id in due {
            let result = blocking(&self.store, {
                let id = id.clone();
                move |s| s.close_campaign(&Actor::system(SYSTEM_ACTOR), &id, now)
            })
            .await;
            match result {
                Ok(outcome) => closed.push(outcome),
                // Closed meanwhile by an admin: nothing left to do.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => errors.push(format!("cannot close campaign {id}: {e}")),
            }
        }
        (closed, errors)
    }

    /// Plans the current reminder slots and delivers what is due, once.
    pub async fn run_reminders_once(&self, now: DateTime<Utc>) -> StoreResult<ReminderRun> {
        let deliverable = self.webhook.is_some();
        let plan = blocking(&self.store, move |s| s.plan_reminders(now, deliverable)).await?;
        let mut run = ReminderRun {
            planned: plan.created,
            cancelled: plan.cancelled,
            ..Default::default()
        };
        let Some(webhook) = &self.webhook else {
            return Ok(run);
        };
        let due = blocking(&self.store, move |s| s.due_reminders(now, DELIVERY_BATCH)).await?;
        for reminder in due {
            run.attempted += 1;
            let attempt = match self.post(webhook, &reminder, now).await {
                Ok(()) => {
                    run.delivered += 1;
                    ReminderAttempt::Delivered
                }
                Err(error) => {
                    let failures = reminder.attempts + 1;
                    let retry_at = (failures < self.retry.max_attempts)
                        .then(|| now + self.retry.delay_after(failures));
                    if retry_at.is_some() {
                        run.failed += 1;
                    } else {
                        run.gave_up += 1;
                    }
                    ReminderAttempt::Failed { error, retry_at }
                }
            };
            let id = reminder.id;
            blocking(&self.store, move |s| {
                s.record_reminder_attempt(id, now, &attempt)
            })
            .await?;
        }
        Ok(run)
    }

    async fn post(&self, webhook: &Url, r: &Reminder, now: DateTime<Utc>) -> Result<(), String> {
        let message = ReminderMessage {
            id: format!("{}:{}:{}", r.campaign_id, r.reviewer.to_lowercase(), r.slot),
            kind: "access-review.reminder".into(),
            campaign_id: r.campaign_id.clone(),
            campaign_name: r.campaign_name.clone(),
            reviewer: r.reviewer.clone(),
            slot: r.slot.clone(),
            due_at: r.due_at,
            days_until_due: super::schedule::days_until(now, r.due_at),
            overdue: now > r.due_at,
            pending_items: r.pending_items,
            sent_at: now,
        };
        let response = self
            .http
            .post(webhook.clone())
            .header("Idempotency-Key", &message.id)
            .json(&message)
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }

    /// One background run: start, close, remind. Errors are reported, not fatal.
    pub async fn run_once(&self, now: DateTime<Utc>) -> TickReport {
        let mut report = TickReport::default();
        let (closed, errors) = self.close_due_once(now).await;
        report.closed = closed;
        report.errors.extend(errors);
        // After closing: the next instance of a quarterly campaign may start at once.
        match self.start_due_once(now).await {
            Ok(started) => report.started = started,
            Err(e) => report.errors.push(format!("cannot start campaigns: {e}")),
        }
        match self.run_reminders_once(now).await {
            Ok(run) => report.reminders = run,
            Err(e) => report.errors.push(format!("cannot run reminders: {e}")),
        }
        report
    }

    /// Runs every minute until `stop` turns true (or its sender is dropped). A run in progress
    /// finishes first, so that a delivered reminder is always recorded.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let report = self.run_once(self.store.clock().now()).await;
                for c in &report.closed {
                    tracing::info!(
                        campaign = %c.campaign.id,
                        name = %c.campaign.name,
                        no_response = c.no_response.as_str(),
                        touched = c.touched,
                        "reviews: closed a campaign at its due date"
                    );
                }
                for c in &report.started {
                    tracing::info!(campaign = %c.id, name = %c.name, "reviews: started a campaign");
                }
                for e in &report.errors {
                    tracing::warn!(error = %e, "reviews: scheduler");
                }
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            break;
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_after(1), Duration::seconds(30));
        assert_eq!(p.delay_after(2), Duration::seconds(60));
        assert_eq!(p.delay_after(4), Duration::seconds(240));
        assert_eq!(p.delay_after(10), Duration::hours(1));
        assert_eq!(p.delay_after(40), Duration::hours(1));
    }
}
