//! The demo enterprise's access review: an open quarterly campaign, "2026-Q4 agent
//! certification", about half decided.
//!
//! It started 40 days before `now` and was due 2 days before `now`; it closes itself after a
//! 14-day grace period (12 days after `now`, applying the `recommendation` no-response outcome).
//! So reviewers who finished are done, and reviewers with undecided items are *overdue*: the
//! console shows "overdue by 2 days" for them and the reminder schedule is in its daily
//! overdue phase. Roughly: reviewers holding 40 % of the items finished, the next ones holding
//! 20 % decided half of theirs, the rest have not started (at least one reviewer is overdue).
//! Everything is deterministic for a given estate.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Duration, Utc};

use crate::model::Actor;
use crate::model::Role;
use crate::model::api::PeopleQuery;
use crate::model::review::{
    CampaignFilter, CreateCampaign, DecideItem, JustificationPolicy, NoResponse, Recurrence,
    ReminderSchedule, ReviewItemQuery, Verdict,
};
use crate::registry::reviews::BatchDecision;
use crate::registry::store::Store;

pub const DEMO_CAMPAIGN_NAME: &str = "2026-Q4 agent certification";

/// What the demo campaign holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCampaign {
    pub campaign_id: String,
    pub items: u64,
    pub decided: u64,
    pub reviewers: u64,
    pub finished_reviewers: u64,
    /// Reviewers with undecided items past the due date.
    pub overdue_reviewers: u64,
    /// The overdue reviewer with the most undecided items.
    pub most_overdue: Option<String>,
}

/// FNV-1a: a stable hash so that the same estate always gets the same decisions.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Diligence {
    Finished,
    Half,
    NotStarted,
}

/// The first active admin (by email): the fallback reviewer.
fn first_admin(store: &dyn Store) -> anyhow::Result<String> {
    let mut after = None;
    loop {
        let page = store
            .list_people(&PeopleQuery {
                active: Some(true),
                limit: Some(5000),
                after: after.clone(),
                ..Default::default()
            })
            .map_err(|e| anyhow!("{e}"))?;
        if let Some(p) = page.people.iter().find(|p| p.has_role(Role::Admin)) {
            return Ok(p.email.clone());
        }
        match page.next {
            Some(n) => after = Some(n),
            None => anyhow::bail!("the demo campaign needs an active admin as fallback reviewer"),
        }
    }
}

/// Creates the demo campaign over every active agent and decides about half of its items as
/// their reviewers would have. Call it after the demo enterprise is seeded.
pub fn seed_demo_campaign(store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<DemoCampaign> {
    let fallback = first_admin(store)?;
    let starts_at = now - Duration::days(40);
    let due_at = now - Duration::days(2);
    let actor = Actor::system("steward-demo");
    let campaign = store
        .create_campaign(
            &actor,
            &CreateCampaign {
                name: DEMO_CAMPAIGN_NAME.into(),
                filter: CampaignFilter::default(),
                starts_at: Some(starts_at),
                due_at,
                grace_days: Some(14),
                recurrence: Recurrence::Quarterly,
                fallback_reviewer: Some(fallback),
                reminders: ReminderSchedule::default(),
                no_response: NoResponse::Recommendation,
                justification: JustificationPolicy::default(),
                lookback_days: None,
            },
            now,
        )
        .map_err(|e| anyhow!("{e}"))
        .context("cannot create the demo campaign")?;
    let id = campaign.id.clone();

    // Items per reviewer (bounded by the number of people, not of items).
    let per_reviewer: BTreeMap<String, u64> = store
        .campaign_detail(&id)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("the demo campaign vanished"))?
        .by_reviewer
        .into_iter()
        .map(|r| (r.reviewer.to_lowercase(), r.progress.total))
        .collect();
    let total: u64 = per_reviewer.values().sum();
    // Reviewers in a stable shuffled order: the first ones finish, the next do half.
    let mut order: Vec<(&String, &u64)> = per_reviewer.iter().collect();
    order.sort_by_key(|(r, _)| stable_hash(r));
    let mut diligence: BTreeMap<String, Diligence> = BTreeMap::new();
    let mut covered = 0u64;
    for (reviewer, n) in &order {
        let class = if covered * 10 < total * 4 {
            Diligence::Finished
        } else if covered * 10 < total * 6 {
            Diligence::Half
        } else {
            Diligence::NotStarted
        };
        covered += **n;
        diligence.insert((*reviewer).clone(), class);
    }
    // At least one overdue reviewer, even in a tiny estate.
    if !diligence.values().any(|d| *d != Diligence::Finished)
        && let Some((last, _)) = order.last()
    {
        diligence.insert((*last).clone(), Diligence::Half);
    }

    // The decisions, one transaction per page, at times spread over the campaign.
    let span = (due_at - Duration::days(1) - starts_at)
        .num_seconds()
        .max(1) as u64;
    let mut decided = 0u64;
    for_each_page(store, &id, |items| {
        let mut batch = Vec::new();
        for i in items {
            let h = stable_hash(&format!("{}:{}", i.agent_id, i.scope));
            let decide = match diligence.get(&i.reviewer.to_lowercase()) {
                Some(Diligence::Finished) => true,
                Some(Diligence::Half) => h.is_multiple_of(2),
                _ => false,
            };
            if !decide {
                continue;
            }
            let (decision, justification) = match i.diff.recommendation.action {
                Verdict::Certify if h % 100 < 8 => (
                    Verdict::Revoke,
                    Some("no longer needed since the move to the v2 API"),
                ),
                Verdict::Certify => (Verdict::Certify, None),
                Verdict::Revoke if h % 100 < 25 => (
                    Verdict::Certify,
                    Some("used only by the quarter-end reconciliation run"),
                ),
                Verdict::Revoke => (Verdict::Revoke, None),
            };
            batch.push(BatchDecision {
                actor: Actor::human(&i.reviewer),
                item_id: i.id,
                decide: DecideItem {
                    decision,
                    justification: justification.map(str::to_string),
                },
                at: starts_at + Duration::hours(1) + Duration::seconds((h % span) as i64),
            });
        }
        if !batch.is_empty() {
            decided += store
                .decide_items(&batch, &|_| Ok(()))
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    })?;

    let finished = diligence
        .values()
        .filter(|d| **d == Diligence::Finished)
        .count() as u64;
    let detail = store
        .campaign_detail(&id)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("the demo campaign vanished"))?;
    let overdue: Vec<_> = detail
        .by_reviewer
        .iter()
        .filter(|r| r.progress.pending > 0)
        .collect();
    Ok(DemoCampaign {
        campaign_id: id,
        items: total,
        decided,
        reviewers: per_reviewer.len() as u64,
        finished_reviewers: finished,
        overdue_reviewers: overdue.len() as u64,
        most_overdue: overdue.first().map(|r| r.reviewer.clone()),
    })
}

/// Calls `f` with each page of a campaign's items, in item order.
fn for_each_page(
    store: &dyn Store,
    campaign_id: &str,
    mut f: impl FnMut(&[crate::model::review::ReviewItem]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = None;
    loop {
        let page = store
            .review_items(
                campaign_id,
                &ReviewItemQuery {
                    after,
                    limit: Some(1000),
                    ..Default::default()
                },
            )
            .map_err(|e| anyhow!("{e}"))?;
        f(&page.items)?;
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}
