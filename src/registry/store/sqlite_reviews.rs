//! The SQLite bodies of [`ReviewStore`]: campaigns, review items, decisions, close, export,
//! scope diffs and reminders. It shares the transaction, audit and change-feed helpers of
//! `sqlite.rs`.
//!
//! Large campaigns never pass through memory whole: items are snapshotted with one
//! `INSERT … SELECT`, exported through a row callback, and closed in batches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::ReviewStore;
use super::sqlite::{
    SqliteStore, agent_by_id, append_audit, bad_value, facts, invalid, kill_grant_tokens, new_id,
    parse_opt_ts, parse_ts, person_by_email, touch_agent, ts,
};
use crate::model::Actor;
use crate::model::review::{
    AcceptOutcome, AcceptRecommendations, AcceptedItem, BulkCertifyOutcome, Campaign,
    CampaignDetail, CampaignFilter, CampaignQuery, CampaignStatus, CampaignWork, Change,
    CloseOutcome, CreateCampaign, DecideItem, Decision, DecisionOutcome, ExportRow, ItemEvent,
    JustificationPolicy, NoResponse, Progress, QueueAgent, QueueCampaign, QueueQuery, QueueSort,
    ReassignItems, ReassignOutcome, Recurrence, Reminder, ReminderPage, ReminderQuery,
    ReminderSchedule, ReminderStatus, RemovedScope, ReviewItem, ReviewItemPage, ReviewItemQuery,
    ReviewQueue, ReviewerProgress, ScopeDiff, ScopeDiffEntry, SkippedItem, TeamProgress, Usage,
    Verdict,
};
use crate::registry::reviews::diff::{self, DEFAULT_LOOKBACK_DAYS, GrantFacts};
use crate::registry::reviews::rules::{
    self, Repeat, ReviewerRole, campaign_reason, ensure_open, justification_required,
};
use crate::registry::reviews::{
    BatchDecision, ItemFacts, ItemGuard, ReassignTarget, ReminderAttempt, ReminderPlan,
    SYSTEM_DECIDER,
    schedule::{self, days_until},
};
use crate::registry::store::{Guard, StoreError, StoreResult};
use crate::registry::tokens::live::LiveTokens;

/// A campaign with the bookkeeping the API does not show.
struct CampaignRow {
    campaign: Campaign,
    /// When the items were snapshotted (the "as of" of their diffs).
    snapshot_at: Option<DateTime<Utc>>,
    /// Items of one campaign are inserted by one statement, so their ids form one range.
    first_item: i64,
    last_item: i64,
}

const CAMPAIGN_COLUMNS: &str = "id, name, series_id, instance, previous_id, next_id, filter_team,
    filter_environment, filter_owner, starts_at, due_at, grace_days, closes_at, recurrence,
    fallback_reviewer, reminders, no_response, justify_certify_unused, justify_revoke_against,
    lookback_days, status, created_by, created_at, closed_at, closed_by, items_total,
    items_certified, items_revoked, items_kept, snapshot_at, items_first_id, items_last_id,
    work_done, work_total";

fn json_column<T: serde::de::DeserializeOwned>(text: &str) -> sql::Result<T> {
    serde_json::from_str(text).map_err(|e| sql::Error::conversion(e.to_string()))
}

fn campaign_from_row(r: &Row<'_>) -> sql::Result<CampaignRow> {
    let recurrence: String = r.get(13)?;
    let reminders: String = r.get(15)?;
    let no_response: String = r.get(16)?;
    let status: String = r.get(20)?;
    let count = |i: usize| -> sql::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    let campaign = Campaign {
        id: r.get(0)?,
        name: r.get(1)?,
        series_id: r.get(2)?,
        instance: r.get(3)?,
        previous_id: r.get(4)?,
        next_id: r.get(5)?,
        filter: CampaignFilter {
            team: r.get(6)?,
            environment: r.get(7)?,
            owner: r.get(8)?,
        },
        starts_at: parse_ts(&r.get::<_, String>(9)?)?,
        due_at: parse_ts(&r.get::<_, String>(10)?)?,
        grace_days: r.get(11)?,
        closes_at: parse_ts(&r.get::<_, String>(12)?)?,
        recurrence: Recurrence::parse(&recurrence)
            .ok_or_else(|| bad_value("recurrence", &recurrence))?,
        fallback_reviewer: r.get(14)?,
        reminders: json_column::<ReminderSchedule>(&reminders)?,
        no_response: NoResponse::parse(&no_response)
            .ok_or_else(|| bad_value("no-response outcome", &no_response))?,
        justification: JustificationPolicy {
            certify_unused: r.get(17)?,
            revoke_against_recommendation: r.get(18)?,
        },
        lookback_days: r.get(19)?,
        status: CampaignStatus::parse(&status)
            .ok_or_else(|| bad_value("campaign status", &status))?,
        created_by: r.get(21)?,
        created_at: parse_ts(&r.get::<_, String>(22)?)?,
        closed_at: parse_opt_ts(r.get(23)?)?,
        closed_by: r.get(24)?,
        progress: Progress::from_counts(count(25)?, count(26)?, count(27)?, count(28)?),
        work: None,
    };
    let mut campaign = campaign;
    if matches!(
        campaign.status,
        CampaignStatus::Snapshotting | CampaignStatus::Closing
    ) {
        campaign.work = Some(CampaignWork {
            done: count(32)?,
            total: count(33)?,
        });
    }
    Ok(CampaignRow {
        campaign,
        snapshot_at: parse_opt_ts(r.get(29)?)?,
        first_item: r.get(30)?,
        last_item: r.get(31)?,
    })
}

fn campaign_row(tx: &Tx<'_>, id: &str) -> StoreResult<CampaignRow> {
    tx.query_row(
        &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1"),
        [id],
        campaign_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("no campaign with id {id}")))
}

/// What an item's rendering needs from its campaign.
#[derive(Clone, Copy)]
struct ItemContext {
    lookback_days: u32,
    justification: JustificationPolicy,
}

impl ItemContext {
    fn of(c: &Campaign) -> ItemContext {
        ItemContext {
            lookback_days: c.lookback_days,
            justification: c.justification,
        }
    }
}

const ITEM_COLUMNS: &str = "i.id, i.campaign_id, i.agent_id, i.agent_name, i.owner, i.team,
    i.environment, i.scope, i.reviewer, i.granted_by, i.granted_at, i.last_used_at,
    i.last_certified_at, i.usage, i.idle_days, i.drift, i.recommendation, i.decision,
    i.decided_by, i.decided_at, i.justification, i.applied, i.applied_at";

fn item_from_row(r: &Row<'_>, ctx: ItemContext) -> sql::Result<ReviewItem> {
    let usage: String = r.get(13)?;
    let drift: String = r.get(15)?;
    let recommendation: String = r.get(16)?;
    let decision: String = r.get(17)?;
    let usage = Usage::parse(&usage).ok_or_else(|| bad_value("usage", &usage))?;
    let change = Change::parse(&drift).ok_or_else(|| bad_value("drift", &drift))?;
    let recommended = Verdict::parse(&recommendation)
        .ok_or_else(|| bad_value("recommendation", &recommendation))?;
    let decision = Decision::parse(&decision).ok_or_else(|| bad_value("decision", &decision))?;
    let facts = GrantFacts {
        granted_by: r.get(9)?,
        granted_at: parse_ts(&r.get::<_, String>(10)?)?,
        last_used_at: parse_opt_ts(r.get(11)?)?,
        last_certified_at: parse_opt_ts(r.get(12)?)?,
    };
    let diff = diff::state_from_parts(
        &facts,
        usage,
        r.get(14)?,
        change,
        recommended,
        ctx.lookback_days,
    );
    Ok(ReviewItem {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        agent_id: r.get(2)?,
        agent_name: r.get(3)?,
        owner: r.get(4)?,
        team: r.get(5)?,
        environment: r.get(6)?,
        scope: r.get(7)?,
        reviewer: r.get(8)?,
        diff,
        decision,
        decided_by: r.get(18)?,
        decided_at: parse_opt_ts(r.get(19)?)?,
        justification: r.get(20)?,
        applied: r.get(21)?,
        applied_at: parse_opt_ts(r.get(22)?)?,
        justification_required: justification_required(ctx.justification, recommended),
        bulk_certifiable: decision == Decision::None
            && usage == Usage::Used
            && change == Change::Unchanged,
        history: Vec::new(),
    })
}

fn item_history(tx: &Tx<'_>, item_id: i64) -> StoreResult<Vec<ItemEvent>> {
    let mut stmt = tx.prepare_cached(
        "SELECT action, actor, at, justification, from_reviewer, to_reviewer, audit_seq
         FROM review_item_events WHERE item_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([item_id], |r| {
        Ok(ItemEvent {
            action: r.get(0)?,
            by: r.get(1)?,
            at: parse_ts(&r.get::<_, String>(2)?)?,
            justification: r.get(3)?,
            from_reviewer: r.get(4)?,
            to_reviewer: r.get(5)?,
            audit_seq: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<sql::Result<Vec<_>>>()?)
}

fn with_history(tx: &Tx<'_>, mut items: Vec<ReviewItem>) -> StoreResult<Vec<ReviewItem>> {
    let (Some(lo), Some(hi)) = (
        items.iter().map(|i| i.id).min(),
        items.iter().map(|i| i.id).max(),
    ) else {
        return Ok(items);
    };
    if hi - lo >= 4 * items.len() as i64 {
        // Sparse ids (a filtered page): one lookup per item.
        for item in &mut items {
            item.history = item_history(tx, item.id)?;
        }
        return Ok(items);
    }
    // Dense ids (a page in item order): one range query for the whole page.
    let mut by_item: HashMap<i64, Vec<ItemEvent>> = HashMap::new();
    let mut stmt = tx.prepare_cached(
        "SELECT item_id, action, actor, at, justification, from_reviewer, to_reviewer, audit_seq
         FROM review_item_events WHERE item_id BETWEEN ?1 AND ?2 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![lo, hi])?;
    while let Some(r) = rows.next()? {
        by_item.entry(r.get(0)?).or_default().push(ItemEvent {
            action: r.get(1)?,
            by: r.get(2)?,
            at: parse_ts(&r.get::<_, String>(3)?)?,
            justification: r.get(4)?,
            from_reviewer: r.get(5)?,
            to_reviewer: r.get(6)?,
            audit_seq: r.get(7)?,
        });
    }
    for item in &mut items {
        item.history = by_item.remove(&item.id).unwrap_or_default();
    }
    Ok(items)
}

/// An item without its history, its campaign taken from `cache` when already loaded: a batch
/// decides many items of few campaigns.
fn load_item_for_batch(
    tx: &Tx<'_>,
    id: i64,
    cache: &mut HashMap<String, Campaign>,
) -> StoreResult<(ReviewItem, Campaign)> {
    let campaign_id: String = tx
        .prepare_cached("SELECT campaign_id FROM review_items WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no review item {id}")))?;
    let c = match cache.get(&campaign_id) {
        Some(c) => c.clone(),
        None => {
            let c = campaign_row(tx, &campaign_id)?.campaign;
            cache.insert(campaign_id, c.clone());
            c
        }
    };
    let ctx = ItemContext::of(&c);
    let item = tx
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM review_items i WHERE i.id = ?1"
        ))?
        .query_row([id], |r| item_from_row(r, ctx))?;
    Ok((item, c))
}

fn load_item(tx: &Tx<'_>, id: i64) -> StoreResult<(ReviewItem, CampaignRow)> {
    let campaign_id: String = tx
        .query_row(
            "SELECT campaign_id FROM review_items WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no review item {id}")))?;
    let c = campaign_row(tx, &campaign_id)?;
    let ctx = ItemContext::of(&c.campaign);
    let mut item = tx.query_row(
        &format!("SELECT {ITEM_COLUMNS} FROM review_items i WHERE i.id = ?1"),
        [id],
        |r| item_from_row(r, ctx),
    )?;
    item.history = item_history(tx, id)?;
    Ok((item, c))
}

fn item_facts(item: &ReviewItem) -> ItemFacts {
    ItemFacts {
        item_id: item.id,
        campaign_id: item.campaign_id.clone(),
        agent_id: item.agent_id.clone(),
        reviewer: item.reviewer.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
fn add_event(
    tx: &Tx<'_>,
    item_id: i64,
    action: &str,
    actor: &str,
    at: &str,
    justification: Option<&str>,
    reviewers: Option<(&str, &str)>,
    audit_seq: Option<i64>,
) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO review_item_events (item_id, action, actor, at, justification, from_reviewer, to_reviewer, audit_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        item_id,
        action,
        actor,
        at,
        justification,
        reviewers.map(|r| r.0),
        reviewers.map(|r| r.1),
        audit_seq
    ])?;
    Ok(())
}

/// Succession for review work: the undecided items of open campaigns that `leaver` was to
/// review go to `heir` (the manager who inherits their agents) or, with no heir, to the
/// campaign's fallback reviewer (else the first active admin). One `review.reassign` audit
/// event per campaign and agent, and a `reassign` event on each item. Returns the items moved.
pub(super) fn hand_over_review_items(
    tx: &Tx<'_>,
    actor: &Actor,
    leaver: &str,
    heir: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let items: Vec<(i64, String, String, String)> = tx
        .prepare(
            "SELECT i.id, i.campaign_id, i.agent_id, c.fallback_reviewer FROM review_items i
             JOIN campaigns c ON c.id = i.campaign_id
             WHERE i.reviewer = ?1 COLLATE NOCASE AND i.decision = 'none'
               AND c.status IN ('open', 'snapshotting')
             ORDER BY i.campaign_id, i.agent_id, i.id",
        )?
        .query_map([leaver], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<sql::Result<_>>()?;
    if items.is_empty() {
        return Ok(0);
    }
    let usable = |email: &str| -> StoreResult<bool> {
        Ok(!email.eq_ignore_ascii_case(leaver)
            && person_by_email(tx, email)?.is_some_and(|p| p.active))
    };
    let first_admin: Option<String> = tx
        .query_row(
            "SELECT email FROM people WHERE active = 1 AND email != ?1 COLLATE NOCASE
               AND (',' || roles || ',') LIKE '%,admin,%' ORDER BY email LIMIT 1",
            [leaver],
            |r| r.get(0),
        )
        .optional()?;
    // (campaign, agent, to) → item ids.
    let mut groups: BTreeMap<(String, String, String), Vec<i64>> = BTreeMap::new();
    for (id, campaign_id, agent_id, fallback) in items {
        let to = match heir {
            Some(h) if usable(h)? => Some(h.to_string()),
            _ if usable(&fallback)? => Some(fallback),
            _ => first_admin.clone(),
        };
        let Some(to) = to else {
            continue; // nobody is left to take it; it stays with the leaver's name on it
        };
        groups
            .entry((campaign_id, agent_id, to))
            .or_default()
            .push(id);
    }
    let now_text = ts(now);
    let mut moved = 0;
    for ((campaign_id, agent_id, to), ids) in groups {
        let seq = append_audit(
            tx,
            actor,
            "review.reassign",
            Some(&agent_id),
            "success",
            Some("reviewer left"),
            &serde_json::json!({
                "campaign_id": campaign_id, "items": ids, "from": [leaver], "to": to,
                "succession": true,
            }),
        )?;
        for id in &ids {
            tx.execute(
                "UPDATE review_items SET reviewer = ?1 WHERE id = ?2",
                params![to, id],
            )?;
            add_event(
                tx,
                *id,
                "reassign",
                &actor.id,
                &now_text,
                Some("reviewer left"),
                Some((leaver, &to)),
                Some(seq),
            )?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Moves one item from one decision's counter to another's.
fn adjust_counters(
    tx: &Tx<'_>,
    campaign_id: &str,
    from: Decision,
    to: Decision,
) -> StoreResult<()> {
    let column = |d: Decision| match d {
        Decision::Certify => Some("items_certified"),
        Decision::Revoke => Some("items_revoked"),
        Decision::Keep => Some("items_kept"),
        Decision::None => None,
    };
    if let Some(c) = column(from) {
        tx.execute(
            &format!("UPDATE campaigns SET {c} = {c} - 1 WHERE id = ?1"),
            [campaign_id],
        )?;
    }
    if let Some(c) = column(to) {
        tx.execute(
            &format!("UPDATE campaigns SET {c} = {c} + 1 WHERE id = ?1"),
            [campaign_id],
        )?;
    }
    Ok(())
}

fn grant_present(tx: &Tx<'_>, agent_id: &str, scope: &str) -> StoreResult<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM grants WHERE agent_id = ?1 AND scope = ?2")?
        .exists(params![agent_id, scope])?)
}

/// The agent's last certification: its certification record or the latest stamp on a grant.
fn agent_baseline(tx: &Tx<'_>, agent_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let text: Option<String> = tx.query_row(
        "SELECT nullif(max(
             coalesce((SELECT certified_at FROM agent_certifications WHERE agent_id = ?1), ''),
             coalesce((SELECT max(last_certified_at) FROM grants WHERE agent_id = ?1), '')), '')",
        [agent_id],
        |r| r.get(0),
    )?;
    Ok(parse_opt_ts(text)?)
}

/// The effect of applying one verdict to one item.
struct Applied {
    changed: bool,
    previous: Decision,
    grant_removed: bool,
    grant_restored: bool,
}

/// Applies a reviewer's verdict to an item of an open campaign, with its audit events.
impl SqliteStore {
    /// Keeps the live-token index in step with a verdict: a removed grant kills the agent's
    /// live tokens carrying the scope; a restored one may be exchanged again.
    fn follow_grant_change(
        &self,
        tx: &Tx<'_>,
        item: &ReviewItem,
        applied: &Applied,
    ) -> StoreResult<()> {
        if applied.grant_removed {
            kill_grant_tokens(tx, &self.live, &item.agent_id, &item.scope)?;
        }
        if applied.grant_restored {
            self.live.restore_grant(&item.agent_id, &item.scope);
        }
        Ok(())
    }
}

fn apply_verdict(
    tx: &Tx<'_>,
    actor: &Actor,
    c: &Campaign,
    item: &ReviewItem,
    verdict: Verdict,
    justification: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let previous = item.decision;
    let decision = Decision::from(verdict);
    let now_text = ts(now);
    // A decommission closed the agent's open items; no decision on it means anything now.
    let status: String = tx
        .prepare_cached("SELECT status FROM agents WHERE id = ?1")?
        .query_row([&item.agent_id], |r| r.get(0))?;
    rules::ensure_agent_decidable(
        &item.agent_id,
        &item.scope,
        status == crate::model::AgentStatus::Decommissioned.as_str(),
    )?;
    let mut out = Applied {
        changed: true,
        previous,
        grant_removed: false,
        grant_restored: false,
    };
    let repeat = rules::repeat_of(
        previous,
        item.justification.as_deref(),
        decision,
        justification,
    );
    if repeat == Some(Repeat::Unchanged) {
        out.changed = false;
        return Ok(out);
    }
    if repeat == Some(Repeat::NewJustification) {
        // Same decision, new justification: recorded, not silently replaced.
        let seq = append_audit(
            tx,
            actor,
            "review.decide",
            Some(&item.agent_id),
            "success",
            justification,
            &serde_json::json!({
                "campaign_id": c.id, "item_id": item.id, "scope": item.scope,
                "decision": decision.as_str(), "previous": previous.as_str(),
                "justification_changed": true, "previous_justification": item.justification,
            }),
        )?;
        tx.execute(
            "UPDATE review_items SET justification = ?1, decided_by = ?2, decided_at = ?3 WHERE id = ?4",
            params![justification, actor.id, now_text, item.id],
        )?;
        add_event(
            tx,
            item.id,
            decision.as_str(),
            &actor.id,
            &now_text,
            justification,
            None,
            Some(seq),
        )?;
        return Ok(out);
    }
    // Checked after the repeat above: repeating a decision needs nothing new.
    rules::ensure_justified(
        item.justification_required,
        verdict,
        justification,
        &item.scope,
        &item.diff.recommendation.reason,
    )?;
    let present = grant_present(tx, &item.agent_id, &item.scope)?;
    match verdict {
        Verdict::Certify => {
            if !present {
                rules::ensure_restorable(&item.agent_id, &item.scope, previous, || {
                    let agent = agent_by_id(tx, &item.agent_id)?;
                    Ok(agent.status == crate::model::AgentStatus::Decommissioned)
                })?;
                // A changed mind: put back the grant this review removed, as it was.
                tx.execute(
                    "INSERT INTO grants (agent_id, scope, granted_by, granted_at, expires_at, justification, last_used_at, last_certified_at)
                     SELECT agent_id, scope, granted_by, granted_at, grant_expires_at, grant_justification, last_used_at, ?2
                     FROM review_items WHERE id = ?1",
                    params![item.id, now_text],
                )?;
                append_audit(
                    tx,
                    actor,
                    "grant.add",
                    Some(&item.agent_id),
                    "success",
                    Some(&format!(
                        "restored: the reviewer changed a revoke to certify in {}",
                        campaign_reason(c)
                    )),
                    &serde_json::json!({
                        "scope": item.scope, "campaign_id": c.id, "item_id": item.id,
                        "restored": true,
                    }),
                )?;
                out.grant_restored = true;
            } else {
                tx.execute(
                    "UPDATE grants SET last_certified_at = ?1 WHERE agent_id = ?2 AND scope = ?3",
                    params![now_text, item.agent_id, item.scope],
                )?;
            }
            // A grant that came in before the catalogue got a 90-day deadline at the upgrade;
            // certifying it in a review gives it back the expiry it had.
            let lifted = tx.execute(
                "UPDATE grants SET expires_at = (SELECT previous_expires_at FROM upgrade_deadlines d
                     WHERE d.agent_id = grants.agent_id AND d.scope = grants.scope)
                 WHERE agent_id = ?1 AND scope = ?2
                   AND expires_at = (SELECT deadline FROM upgrade_deadlines d
                                     WHERE d.agent_id = ?1 AND d.scope = ?2)",
                params![item.agent_id, item.scope],
            )?;
            if lifted > 0 {
                tx.execute(
                    "DELETE FROM upgrade_deadlines WHERE agent_id = ?1 AND scope = ?2",
                    params![item.agent_id, item.scope],
                )?;
                append_audit(
                    tx,
                    actor,
                    "grant.upgrade_deadline_lifted",
                    Some(&item.agent_id),
                    "success",
                    Some(&format!("certified in {}", campaign_reason(c))),
                    &serde_json::json!({"scope": item.scope, "campaign_id": c.id, "item_id": item.id}),
                )?;
            }
            tx.execute(
                "INSERT INTO agent_certifications (agent_id, certified_at) VALUES (?1, ?2)
                 ON CONFLICT (agent_id) DO UPDATE
                 SET certified_at = max(agent_certifications.certified_at, excluded.certified_at)",
                params![item.agent_id, now_text],
            )?;
            touch_agent(tx, &item.agent_id)?;
        }
        Verdict::Revoke => {
            if present {
                tx.execute(
                    "DELETE FROM grants WHERE agent_id = ?1 AND scope = ?2",
                    params![item.agent_id, item.scope],
                )?;
                touch_agent(tx, &item.agent_id)?;
                append_audit(
                    tx,
                    actor,
                    "grant.remove",
                    Some(&item.agent_id),
                    "success",
                    Some(&format!("revoked in {}", campaign_reason(c))),
                    &serde_json::json!({
                        "scope": item.scope, "campaign_id": c.id, "item_id": item.id,
                        "justification": justification,
                    }),
                )?;
                out.grant_removed = true;
            }
        }
    }
    let seq = append_audit(
        tx,
        actor,
        "review.decide",
        Some(&item.agent_id),
        "success",
        justification,
        &serde_json::json!({
            "campaign_id": c.id, "item_id": item.id, "scope": item.scope,
            "decision": decision.as_str(), "previous": previous.as_str(),
            "grant_removed": out.grant_removed, "grant_restored": out.grant_restored,
            "grant_present": present || out.grant_restored,
        }),
    )?;
    tx.execute(
        "UPDATE review_items SET decision = ?1, decided_by = ?2, decided_at = ?3, justification = ?4,
             applied = 1, applied_at = ?3, changes = changes + ?5
         WHERE id = ?6",
        params![
            decision.as_str(),
            actor.id,
            now_text,
            justification,
            (previous != Decision::None) as i64,
            item.id
        ],
    )?;
    add_event(
        tx,
        item.id,
        decision.as_str(),
        &actor.id,
        &now_text,
        justification,
        None,
        Some(seq),
    )?;
    adjust_counters(tx, &c.id, previous, decision)?;
    Ok(out)
}

/// Agents snapshotted per step, at most. Each step is one short write transaction; between
/// steps the writer is released, so a revoke waits at most one step behind a campaign of any
/// size.
pub(super) const SNAPSHOT_STEP_AGENTS: i64 = 250;
/// Items settled per close step, at most (each revoke also writes a grant removal and its
/// audit event).
pub(super) const CLOSE_STEP_ITEMS: i64 = 250;
/// The work one step aims at: a close step stops after this long, and the next snapshot
/// step takes fewer agents when the last one took longer (more when it took under half).
pub(super) const STEP_TARGET: std::time::Duration = std::time::Duration::from_millis(20);
/// The fewest agents a snapshot step takes.
pub(super) const SNAPSHOT_STEP_MIN: i64 = 10;

/// The agents the next snapshot step takes, after one of `current` agents took `took`:
/// in proportion when it overran [`STEP_TARGET`], a quarter more when it took under half,
/// always within [`SNAPSHOT_STEP_MIN`]..=[`SNAPSHOT_STEP_AGENTS`].
pub(super) fn next_step_size(current: i64, took: std::time::Duration) -> i64 {
    let next = if took > STEP_TARGET {
        (current as f64 * STEP_TARGET.as_secs_f64() / took.as_secs_f64()) as i64
    } else if took < STEP_TARGET / 2 {
        current + current / 4 + 1
    } else {
        current
    };
    next.clamp(SNAPSHOT_STEP_MIN, SNAPSHOT_STEP_AGENTS)
}

/// The agents a campaign covers, in id order (the snapshot's cursor order). Parameters:
/// ?1 team, ?2 environment, ?3 owner email.
const MATCHING_AGENTS: &str = "FROM agents a LEFT JOIN people o ON o.id = a.owner_id
    WHERE a.status = 'active'
      AND (?1 IS NULL OR a.team = ?1)
      AND (?2 IS NULL OR a.environment = ?2)
      AND (?3 IS NULL OR o.email = ?3 COLLATE NOCASE)";

/// How many agents the campaign covers and whether any of them holds a grant (a read).
fn count_matching(tx: &Tx<'_>, f: &CampaignFilter) -> StoreResult<(u64, bool)> {
    let (agents, with_grants): (i64, i64) = tx.query_row(
        &format!(
            "SELECT count(*), coalesce(max(CASE WHEN EXISTS (SELECT 1 FROM grants g WHERE g.agent_id = a.id)
                                  THEN 1 ELSE 0 END), 0)
             {MATCHING_AGENTS}"
        ),
        params![f.team, f.environment, f.owner],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((agents.max(0) as u64, with_grants != 0))
}

/// Where a campaign's long work stands (the columns the API does not show).
struct WorkState {
    at: DateTime<Utc>,
    actor: Actor,
    agent_cursor: String,
    item_cursor: i64,
}

fn work_state(tx: &Tx<'_>, id: &str) -> StoreResult<WorkState> {
    let (at, actor, agent_cursor, item_cursor): (Option<String>, Option<String>, String, i64) = tx
        .query_row(
            "SELECT work_at, work_actor, work_agent_cursor, work_item_cursor FROM campaigns WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
    let at = at.ok_or_else(|| StoreError::Internal(format!("campaign {id} has no work time")))?;
    let actor =
        actor.ok_or_else(|| StoreError::Internal(format!("campaign {id} has no work actor")))?;
    Ok(WorkState {
        at: parse_ts(&at)?,
        actor: serde_json::from_str(&actor).map_err(|e| StoreError::Internal(e.to_string()))?,
        agent_cursor,
        item_cursor,
    })
}

/// Puts a scheduled campaign in `snapshotting`, as of `now`, on behalf of `actor`.
fn begin_snapshot(
    tx: &Tx<'_>,
    id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    agents: u64,
) -> StoreResult<()> {
    let actor = serde_json::to_string(actor).map_err(|e| StoreError::Internal(e.to_string()))?;
    tx.execute(
        "UPDATE campaigns SET status = 'snapshotting', work_at = ?1, work_actor = ?2,
             work_agent_cursor = '', work_done = 0, work_total = ?3, work_agents = 0
         WHERE id = ?4 AND status = 'scheduled'",
        params![ts(now), actor, agents as i64, id],
    )?;
    Ok(())
}

/// One step of a snapshot: the items of the next `step_agents` agents after the cursor, as their grants stand now and judged as of the campaign's start. When no agent is
/// left, opens the campaign and writes `campaign.start`. Returns whether the snapshot is done.
/// Idempotent: the cursor moves in the same transaction as the items.
fn snapshot_step(tx: &Tx<'_>, id: &str, step_agents: i64) -> StoreResult<bool> {
    let row = campaign_row(tx, id)?;
    let c = &row.campaign;
    if c.status != CampaignStatus::Snapshotting {
        return Ok(true);
    }
    let work = work_state(tx, id)?;
    let f = &c.filter;
    let (agents, end): (i64, Option<String>) = tx.query_row(
        &format!(
            "SELECT count(*), max(id) FROM (SELECT a.id {MATCHING_AGENTS} AND a.id > ?4 ORDER BY a.id LIMIT ?5) AS step"
        ),
        params![f.team, f.environment, f.owner, work.agent_cursor, step_agents],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some(end) = end else {
        return finish_snapshot(tx, &row, &work).map(|()| true);
    };
    let before: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM review_items", [], |r| {
        r.get(0)
    })?;
    if tx.is_postgres() {
        // PostgreSQL's identity skips the values of rolled-back inserts; under the write lock
        // the next id is set to follow the last one, as SQLite's rowid does.
        tx.query_row(
            "SELECT setval(pg_get_serial_sequence('review_items', 'id'), ?1, ?2 > 0)",
            [before.max(1), before],
            |r| r.get::<_, i64>(0),
        )?;
    }
    // The export and the item pages rely on one contiguous id range per campaign: this step's
    // items must follow the last step's directly (checked here, per step, rather than by
    // counting every item of the campaign at the end, which took most of a second at 1M).
    if row.last_item != 0 && before != row.last_item {
        return Err(StoreError::Internal(format!(
            "campaign {} items are not one contiguous id range",
            c.id
        )));
    }
    let cutoff = ts(diff::cutoff(work.at, c.lookback_days));
    // The rules mirror `reviews::diff` (usage, drift, recommendation); the tests check that
    // both agree.
    let inserted = tx.execute(
        &format!(
            "INSERT INTO review_items (campaign_id, agent_id, agent_name, owner, team, environment, scope,
             reviewer, granted_by, granted_at, grant_expires_at, grant_justification, last_used_at,
             last_certified_at, baseline_at, usage, idle_days, drift, recommendation)
         SELECT ?6, x.id, x.name, x.owner_email, x.team, x.environment, g.scope, x.reviewer,
             g.granted_by, g.granted_at, g.expires_at, g.justification, g.last_used_at,
             g.last_certified_at, x.baseline,
             CASE WHEN g.last_used_at >= ?8 THEN 'used'
                  WHEN coalesce(g.last_used_at, g.granted_at) < ?8 THEN 'unused'
                  ELSE 'new' END,
             max(0, (unixepoch(?9) - unixepoch(coalesce(g.last_used_at, g.granted_at))) / 86400),
             CASE WHEN x.baseline IS NULL THEN 'never-certified'
                  WHEN g.granted_at > x.baseline THEN 'added'
                  WHEN g.last_certified_at IS NULL THEN 'never-certified'
                  ELSE 'unchanged' END,
             CASE WHEN g.last_used_at >= ?8 THEN 'certify'
                  WHEN coalesce(g.last_used_at, g.granted_at) < ?8 THEN 'revoke'
                  ELSE 'certify' END
         FROM (
             SELECT a.id, a.name, a.team, a.environment, o.email AS owner_email,
                 CASE WHEN o.active = 1 THEN o.email ELSE ?7 END AS reviewer,
                 nullif(max(
                     coalesce((SELECT certified_at FROM agent_certifications ac WHERE ac.agent_id = a.id), ''),
                     coalesce((SELECT max(g2.last_certified_at) FROM grants g2 WHERE g2.agent_id = a.id), '')
                 ), '') AS baseline
             {MATCHING_AGENTS} AND a.id > ?4 AND a.id <= ?5
             ORDER BY a.id
         ) x
         JOIN grants g ON g.agent_id = x.id
         ORDER BY x.id, g.scope"
        ),
        params![
            f.team,
            f.environment,
            f.owner,
            work.agent_cursor,
            end,
            c.id,
            c.fallback_reviewer,
            cutoff,
            ts(work.at),
        ],
    )? as i64;
    let with_items: i64 = if inserted == 0 {
        0
    } else {
        tx.query_row(
            "SELECT count(DISTINCT agent_id) FROM review_items WHERE id > ?1",
            [before],
            |r| r.get(0),
        )?
    };
    // Only one snapshot runs at a time (`long_work`), so a campaign's items stay one range.
    let first = if row.first_item == 0 && inserted > 0 {
        before + 1
    } else {
        row.first_item
    };
    let last = if inserted > 0 {
        before + inserted
    } else {
        row.last_item
    };
    tx.execute(
        "UPDATE campaigns SET work_agent_cursor = ?1, work_done = work_done + ?2,
             work_agents = work_agents + ?3, items_first_id = ?4, items_last_id = ?5
         WHERE id = ?6",
        params![end, agents, with_items, first, last, id],
    )?;
    Ok(false)
}

/// The last step of a snapshot: checks the item range, opens the campaign, writes
/// `campaign.start`.
fn finish_snapshot(tx: &Tx<'_>, row: &CampaignRow, work: &WorkState) -> StoreResult<()> {
    let c = &row.campaign;
    let (first, last) = (row.first_item, row.last_item);
    // One contiguous range: each step checked that it followed the last.
    let items = if first == 0 { 0 } else { last - first + 1 };
    let agents: i64 = tx.query_row(
        "SELECT work_agents FROM campaigns WHERE id = ?1",
        [&c.id],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE campaigns SET status = 'open', snapshot_at = ?1, items_total = ?2,
             work_done = work_total
         WHERE id = ?3",
        params![ts(work.at), items, c.id],
    )?;
    append_audit(
        tx,
        &work.actor,
        "campaign.start",
        Some(&c.id),
        "success",
        None,
        &serde_json::json!({
            "name": c.name, "items": items, "agents": agents, "due_at": ts(c.due_at),
            "no_response": c.no_response.as_str(), "fallback_reviewer": c.fallback_reviewer,
        }),
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_campaign(
    tx: &Tx<'_>,
    id: &str,
    series_id: &str,
    instance: u32,
    previous_id: Option<&str>,
    c: &Campaign,
    created_by: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let reminders =
        serde_json::to_string(&c.reminders).map_err(|e| StoreError::Internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO campaigns (id, name, series_id, instance, previous_id, filter_team,
             filter_environment, filter_owner, starts_at, due_at, grace_days, closes_at, recurrence,
             fallback_reviewer, reminders, no_response, justify_certify_unused,
             justify_revoke_against, lookback_days, status, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19, 'scheduled', ?20, ?21)",
        params![
            id,
            c.name,
            series_id,
            instance,
            previous_id,
            c.filter.team,
            c.filter.environment,
            c.filter.owner,
            ts(c.starts_at),
            ts(c.due_at),
            c.grace_days,
            ts(c.due_at + Duration::days(c.grace_days as i64)),
            c.recurrence.as_str(),
            c.fallback_reviewer,
            reminders,
            c.no_response.as_str(),
            c.justification.certify_unused,
            c.justification.revoke_against_recommendation,
            c.lookback_days,
            created_by,
            ts(now)
        ],
    )?;
    Ok(())
}

fn progress_add(p: &mut Progress, decision: &str, n: u64) {
    p.total += n;
    match decision {
        "certify" => p.certified += n,
        "revoke" => p.revoked += n,
        "keep" => p.kept += n,
        _ => p.pending += n,
    }
    p.decided = p.certified + p.revoked + p.kept;
}

/// Scopes removed from an agent after `since` that it does not hold now, latest removal each,
/// from the audit log (`grant.remove` and decommissioning).
fn removed_since(
    tx: &Tx<'_>,
    agent_id: &str,
    since: DateTime<Utc>,
    exclude: &BTreeSet<String>,
) -> StoreResult<Vec<RemovedScope>> {
    let mut stmt = tx.prepare_cached(
        "SELECT time, actor_id, reason, action, details FROM audit_events
         WHERE target = ?1 AND action IN ('grant.remove', 'agent.decommission') AND time > ?2
         ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![agent_id, ts(since)])?;
    let mut latest: BTreeMap<String, RemovedScope> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let time: String = r.get(0)?;
        let action: String = r.get(3)?;
        let details: serde_json::Value = json_column(&r.get::<_, String>(4)?)?;
        let scopes: Vec<String> = if action == "grant.remove" {
            details["scope"]
                .as_str()
                .map(str::to_string)
                .into_iter()
                .collect()
        } else {
            details["grants_removed"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        for scope in scopes {
            latest.insert(
                scope.clone(),
                RemovedScope {
                    scope,
                    removed_by: r.get(1)?,
                    removed_at: parse_ts(&time)?,
                    reason: r.get(2)?,
                },
            );
        }
    }
    let held: BTreeSet<String> = tx
        .prepare_cached("SELECT scope FROM grants WHERE agent_id = ?1")?
        .query_map([agent_id], |r| r.get(0))?
        .collect::<sql::Result<_>>()?;
    Ok(latest
        .into_values()
        .filter(|r| !held.contains(&r.scope) && !exclude.contains(&r.scope))
        .collect())
}

fn reminder_from_row(r: &Row<'_>) -> sql::Result<Reminder> {
    let status: String = r.get(8)?;
    Ok(Reminder {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        campaign_name: r.get(2)?,
        reviewer: r.get(3)?,
        slot: r.get(4)?,
        slot_at: parse_ts(&r.get::<_, String>(5)?)?,
        due_at: parse_ts(&r.get::<_, String>(6)?)?,
        pending_items: r.get::<_, i64>(7)?.max(0) as u64,
        status: ReminderStatus::parse(&status)
            .ok_or_else(|| bad_value("reminder status", &status))?,
        attempts: r.get(9)?,
        last_attempt_at: parse_opt_ts(r.get(10)?)?,
        next_attempt_at: parse_opt_ts(r.get(11)?)?,
        last_error: r.get(12)?,
        delivered_at: parse_opt_ts(r.get(13)?)?,
        created_at: parse_ts(&r.get::<_, String>(14)?)?,
    })
}

const REMINDER_SELECT: &str = "SELECT r.id, r.campaign_id, c.name, r.reviewer, r.slot, r.slot_at,
    c.due_at, r.pending_items, r.status, r.attempts, r.last_attempt_at, r.next_attempt_at,
    r.last_error, r.delivered_at, r.created_at
    FROM review_reminders r JOIN campaigns c ON c.id = r.campaign_id";

impl SqliteStore {
    /// Writes the campaign (and, when it starts now, puts it in `snapshotting`) in one short
    /// transaction; `finish_snapshots` then takes its items in steps.
    pub(super) fn create_campaign_record(
        &self,
        actor: &Actor,
        req: &CreateCampaign,
        now: DateTime<Utc>,
    ) -> StoreResult<String> {
        let starts_now = req.starts_at.is_none_or(|s| s <= now);
        // Counted on a reader, so that the writer is not held for a scan of the estate.
        let matching = if starts_now {
            Some(self.read(|tx| count_matching(tx, &req.filter))?)
        } else {
            None
        };
        self.write(|tx| {
            let fallback_email = req.fallback_reviewer.as_deref().unwrap_or(&actor.id);
            let fallback = rules::ensure_reviewer(
                ReviewerRole::Fallback,
                fallback_email,
                person_by_email(tx, fallback_email)?,
            )?;
            let starts_at = req.starts_at.unwrap_or(now);
            if req.due_at <= starts_at {
                return Err(invalid("invalid_dates", "due_at must be after starts_at"));
            }
            let id = new_id("cmp");
            let mut c = Campaign {
                id: id.clone(),
                name: req.name.clone(),
                series_id: id.clone(),
                instance: 1,
                previous_id: None,
                next_id: None,
                filter: req.filter.clone(),
                starts_at,
                due_at: req.due_at,
                grace_days: req.grace_days.unwrap_or(0),
                closes_at: req.due_at,
                recurrence: req.recurrence,
                fallback_reviewer: fallback.email.clone(),
                reminders: req.reminders.clone(),
                no_response: req.no_response,
                justification: req.justification,
                lookback_days: req.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS),
                status: CampaignStatus::Scheduled,
                created_by: actor.id.clone(),
                created_at: now,
                closed_at: None,
                closed_by: None,
                progress: Progress::default(),
                work: None,
            };
            c.closes_at = c.due_at + Duration::days(c.grace_days as i64);
            insert_campaign(tx, &id, &id, 1, None, &c, &actor.id, now)?;
            append_audit(
                tx,
                actor,
                "campaign.create",
                Some(&id),
                "success",
                None,
                &serde_json::json!({
                    "name": c.name, "filter": c.filter, "starts_at": ts(c.starts_at),
                    "due_at": ts(c.due_at), "grace_days": c.grace_days,
                    "recurrence": c.recurrence.as_str(), "no_response": c.no_response.as_str(),
                    "fallback_reviewer": c.fallback_reviewer, "lookback_days": c.lookback_days,
                    "justification": c.justification, "reminders": c.reminders,
                }),
            )?;
            if let Some((agents, with_grants)) = matching.filter(|_| starts_at <= now) {
                if !with_grants {
                    return Err(invalid(
                        "empty_campaign",
                        "no active agent with grants matches the campaign's filter; \
                         nothing would be reviewed",
                    ));
                }
                begin_snapshot(tx, &id, actor, now, agents)?;
            }
            Ok(id)
        })
    }

    /// Takes the items of every campaign in `snapshotting`, one at a time (a snapshot left
    /// half done by a restart first), in steps of `SNAPSHOT_STEP_AGENTS` agents, each its own
    /// transaction, stepping aside between steps for any waiting writer.
    pub(super) fn finish_snapshots(&self) -> StoreResult<()> {
        let _one_at_a_time = self
            .long_work
            .lock()
            .map_err(|_| StoreError::Internal("the long-work lock was poisoned".into()))?;
        loop {
            let next: Option<String> = self.read(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT id FROM campaigns WHERE status = 'snapshotting'
                         ORDER BY work_agent_cursor = '', rowid LIMIT 1",
                        [],
                        |r| r.get(0),
                    )
                    .optional()?)
            })?;
            let Some(id) = next else { return Ok(()) };
            let mut step = SNAPSHOT_STEP_AGENTS;
            loop {
                let mut began = None;
                let done = self.write_step(|tx| {
                    began = Some(std::time::Instant::now());
                    snapshot_step(tx, &id, step)
                })?;
                if done {
                    break;
                }
                if let Some(began) = began {
                    step = next_step_size(step, began.elapsed());
                }
                self.step_aside();
            }
        }
    }

    /// Between two steps of long work: lets writers already waiting go first (briefly bounded,
    /// so that a stream of writes cannot stall the work for good), and a checkpoint catch up
    /// when the write-ahead log has grown long.
    pub(super) fn step_aside(&self) {
        self.checkpoint_if_long();
        for _ in 0..100 {
            if self.gate.waiting() == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Puts an open campaign in `closing`, as of `now`, on behalf of `actor`. A campaign
    /// already `closing` (a close interrupted by a restart) is resumed as it was begun.
    pub(super) fn begin_close(
        &self,
        actor: &Actor,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let row = campaign_row(tx, id)?;
            let c = row.campaign;
            match c.status {
                CampaignStatus::Open => {}
                CampaignStatus::Closing => return Ok(()),
                CampaignStatus::Closed => {
                    return Err(StoreError::Conflict(format!(
                        "campaign {id} is already closed (at {})",
                        c.closed_at.map(ts).unwrap_or_default()
                    )));
                }
                CampaignStatus::Scheduled | CampaignStatus::Snapshotting => {
                    return Err(StoreError::Conflict(format!(
                        "campaign {id} has not started yet; nothing to close"
                    )));
                }
            }
            let items = if row.first_item == 0 {
                0
            } else {
                row.last_item - row.first_item + 1
            };
            let work_actor =
                serde_json::to_string(actor).map_err(|e| StoreError::Internal(e.to_string()))?;
            tx.execute(
                "UPDATE campaigns SET status = 'closing', closed_by = ?1, work_at = ?2,
                     work_actor = ?3, work_item_cursor = ?4, work_done = 0, work_total = ?5,
                     close_kept = 0, close_revoked = 0, close_already_gone = 0
                 WHERE id = ?6",
                params![actor.id, ts(now), work_actor, row.first_item - 1, items, id],
            )?;
            Ok(())
        })
    }
}

impl ReviewStore for SqliteStore {
    fn create_campaign(
        &self,
        actor: &Actor,
        req: &CreateCampaign,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign> {
        let id = self.create_campaign_record(actor, req, now)?;
        self.finish_snapshots()?;
        self.read(|tx| Ok(campaign_row(tx, &id)?.campaign))
    }

    fn start_due_campaigns(&self, actor: &Actor, now: DateTime<Utc>) -> StoreResult<Vec<Campaign>> {
        let due: Vec<String> = self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT id FROM campaigns WHERE status = 'scheduled' AND starts_at <= ?1 ORDER BY starts_at",
            )?;
            let ids = stmt
                .query_map([ts(now)], |r| r.get(0))?
                .collect::<sql::Result<Vec<String>>>()?;
            Ok(ids)
        })?;
        // A snapshot interrupted by a restart is finished before any other starts.
        self.finish_snapshots()?;
        let mut started = Vec::new();
        for id in due {
            let c = self.read(|tx| campaign_row(tx, &id))?.campaign;
            if c.status != CampaignStatus::Scheduled || c.starts_at > now {
                continue;
            }
            let (agents, _) = self.read(|tx| count_matching(tx, &c.filter))?;
            // Re-checked inside the transaction in case another run won.
            let begun = self.write(|tx| {
                let c = campaign_row(tx, &id)?.campaign;
                if c.status != CampaignStatus::Scheduled || c.starts_at > now {
                    return Ok(false);
                }
                begin_snapshot(tx, &id, actor, now, agents)?;
                Ok(true)
            })?;
            if begun {
                started.push(id);
            }
        }
        self.finish_snapshots()?;
        self.read(|tx| {
            started
                .iter()
                .map(|id| Ok(campaign_row(tx, id)?.campaign))
                .collect()
        })
    }

    fn list_campaigns(&self, query: &CampaignQuery) -> StoreResult<Vec<Campaign>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE (?1 IS NULL OR status = ?1)
                 ORDER BY CASE status WHEN 'open' THEN 0 WHEN 'scheduled' THEN 1 ELSE 2 END,
                     due_at DESC, id"
            ))?;
            let rows = stmt
                .query_map([query.status.map(|s| s.as_str())], campaign_from_row)?
                .map(|r| r.map(|c| c.campaign))
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn campaign_detail(&self, id: &str) -> StoreResult<Option<CampaignDetail>> {
        self.read(|tx| {
            let c = match campaign_row(tx, id) {
                Ok(c) => c,
                Err(StoreError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut by_reviewer: HashMap<String, Progress> = HashMap::new();
            let mut by_team: BTreeMap<String, Progress> = BTreeMap::new();
            let mut pending_recommended_revoke = 0u64;
            let mut stmt = tx.prepare(
                "SELECT reviewer, team, decision, recommendation, count(*) FROM review_items
                 WHERE id BETWEEN ?1 AND ?2 AND +campaign_id = ?3
                 GROUP BY reviewer, team, decision, recommendation",
            )?;
            let mut rows = stmt.query(params![c.first_item, c.last_item, id])?;
            while let Some(r) = rows.next()? {
                let reviewer: String = r.get(0)?;
                let team: String = r.get(1)?;
                let decision: String = r.get(2)?;
                let recommendation: String = r.get(3)?;
                let n = r.get::<_, i64>(4)?.max(0) as u64;
                progress_add(by_reviewer.entry(reviewer).or_default(), &decision, n);
                progress_add(by_team.entry(team).or_default(), &decision, n);
                if decision == "none" && recommendation == "revoke" {
                    pending_recommended_revoke += n;
                }
            }
            let mut by_reviewer: Vec<ReviewerProgress> = by_reviewer
                .into_iter()
                .map(|(reviewer, progress)| ReviewerProgress { reviewer, progress })
                .collect();
            by_reviewer.sort_by(|a, b| {
                b.progress
                    .pending
                    .cmp(&a.progress.pending)
                    .then_with(|| a.reviewer.cmp(&b.reviewer))
            });
            Ok(Some(CampaignDetail {
                campaign: c.campaign,
                by_reviewer,
                by_team: by_team
                    .into_iter()
                    .map(|(team, progress)| TeamProgress { team, progress })
                    .collect(),
                pending_recommended_revoke,
            }))
        })
    }

    fn review_items(
        &self,
        campaign_id: &str,
        query: &ReviewItemQuery,
    ) -> StoreResult<ReviewItemPage> {
        let limit = query.limit.unwrap_or(200).clamp(1, 1000) as i64;
        self.read(|tx| {
            let c = campaign_row(tx, campaign_id)?;
            let ctx = ItemContext::of(&c.campaign);
            let lower = query.after.unwrap_or(0).max(c.first_item - 1);
            let mut stmt = tx.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM review_items i
                 WHERE i.id > ?1 AND i.id <= ?2 AND +i.campaign_id = ?3
                   AND (?4 IS NULL OR i.reviewer = ?4)
                   AND (?5 IS NULL OR i.decision = ?5)
                   AND (?6 IS NULL OR i.agent_id = ?6)
                 ORDER BY i.id LIMIT ?7"
            ))?;
            let items = stmt
                .query_map(
                    params![
                        lower,
                        c.last_item,
                        campaign_id,
                        query.reviewer,
                        query.decision.map(|d| d.as_str()),
                        query.agent_id,
                        limit + 1
                    ],
                    |r| item_from_row(r, ctx),
                )?
                .collect::<sql::Result<Vec<_>>>()?;
            let (items, next) = super::sqlite::page(items, limit as u32, |i| i.id);
            Ok(ReviewItemPage {
                items: with_history(tx, items)?,
                next,
            })
        })
    }

    fn review_item(&self, id: i64, guard: ItemGuard<'_>) -> StoreResult<ReviewItem> {
        self.read(|tx| {
            let (item, _) = load_item(tx, id)?;
            guard(&item_facts(&item))?;
            Ok(item)
        })
    }

    fn review_queue(
        &self,
        reviewer: Option<&str>,
        query: &QueueQuery,
        now: DateTime<Utc>,
    ) -> StoreResult<ReviewQueue> {
        let limit = query.limit.unwrap_or(100).clamp(1, 500) as i64;
        let offset = query.offset.unwrap_or(0);
        let pending_only = query.pending_only.unwrap_or(false);
        let text = query
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(super::sqlite::like_pattern);
        // One reviewer's items, or (the whole queue) everyone's: the first uses the index on
        // the reviewer.
        let whose = if reviewer.is_some() {
            "i.reviewer = ?1"
        } else {
            "?1 IS NULL"
        };
        let order = match query.sort.unwrap_or_default() {
            QueueSort::Due => "due_at, risk DESC, name, agent_id",
            QueueSort::Risk => "risk DESC, due_at, name, agent_id",
            QueueSort::Team => "team, due_at, risk DESC, name, agent_id",
            QueueSort::Owner => "owner IS NOT NULL, owner, due_at, risk DESC, name, agent_id",
        };
        self.read(|tx| {
            // The caller's open campaigns and their progress in each.
            let mut campaigns: Vec<(CampaignRow, Progress)> = Vec::new();
            {
                let mut stmt = tx.prepare(&format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = 'open' ORDER BY due_at, id"
                ))?;
                let open = stmt
                    .query_map([], campaign_from_row)?
                    .collect::<sql::Result<Vec<_>>>()?;
                let mut count = tx.prepare_cached(
                    "SELECT decision, count(*) FROM review_items
                     WHERE campaign_id = ?1 AND (?2 IS NULL OR reviewer = ?2) GROUP BY decision",
                )?;
                for c in open {
                    let mut progress = Progress::default();
                    let mut rows = count.query(params![c.campaign.id, reviewer])?;
                    while let Some(r) = rows.next()? {
                        let decision: String = r.get(0)?;
                        progress_add(&mut progress, &decision, r.get::<_, i64>(1)?.max(0) as u64);
                    }
                    if progress.total > 0 {
                        campaigns.push((c, progress));
                    }
                }
            }
            let by_id: HashMap<&str, &CampaignRow> = campaigns
                .iter()
                .map(|(c, _)| (c.campaign.id.as_str(), c))
                .collect();
            // One row per (campaign, agent), ordered by due date then risk, paged in SQL so
            // that a fallback reviewer with many agents costs no more memory than one page.
            let grouped = format!(
                "SELECT i.campaign_id AS campaign_id, i.agent_id AS agent_id,
                    c.due_at AS due_at, a.name AS name, a.team AS team, o.email AS owner,
                    3 * (CASE WHEN a.flags = '' THEN 0
                              ELSE length(a.flags) - length(replace(a.flags, ',', '')) + 1 END)
                    + 2 * (CASE WHEN EXISTS (SELECT 1 FROM credentials k WHERE k.agent_id = a.id
                                  AND k.kind = 'static-secret' AND k.disabled_at IS NULL)
                           THEN 1 ELSE 0 END)
                    + sum(CASE WHEN i.recommendation = 'revoke' THEN 1 ELSE 0 END)
                    + sum(CASE WHEN i.drift = 'added' THEN 1 ELSE 0 END) AS risk,
                    sum(CASE WHEN i.decision = 'none' THEN 1 ELSE 0 END) AS pending
                FROM campaigns c
                JOIN review_items i ON i.campaign_id = c.id AND {whose}
                JOIN agents a ON a.id = i.agent_id
                LEFT JOIN people o ON o.id = a.owner_id
                WHERE c.status = 'open'
                  AND (?3 IS NULL OR a.name LIKE ?3 ESCAPE '\\' OR a.team LIKE ?3 ESCAPE '\\'
                       OR a.environment LIKE ?3 ESCAPE '\\' OR o.email LIKE ?3 ESCAPE '\\')
                GROUP BY i.campaign_id, i.agent_id, c.id, a.id, o.id
                HAVING ?2 = 0 OR sum(CASE WHEN i.decision = 'none' THEN 1 ELSE 0 END) > 0"
            );
            let total_agents: i64 = tx.query_row(
                &format!("SELECT count(*) FROM ({grouped}) AS g"),
                params![reviewer, pending_only as i64, text],
                |r| r.get(0),
            )?;
            let mut stmt = tx.prepare(&format!(
                "SELECT campaign_id, agent_id, risk FROM ({grouped}) AS g
                 ORDER BY {order} LIMIT ?4 OFFSET ?5"
            ))?;
            let page = stmt
                .query_map(
                    params![reviewer, pending_only as i64, text, limit, offset as i64],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)),
                )?
                .collect::<sql::Result<Vec<_>>>()?;
            let mut agents = Vec::with_capacity(page.len());
            let mut items_stmt = tx.prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM review_items i
                 WHERE i.campaign_id = ?1 AND i.agent_id = ?2 AND (?3 IS NULL OR i.reviewer = ?3)
                 ORDER BY i.scope"
            ))?;
            for (campaign_id, agent_id, risk) in page {
                let Some(c) = by_id.get(campaign_id.as_str()) else {
                    continue;
                };
                let ctx = ItemContext::of(&c.campaign);
                let items = items_stmt
                    .query_map(params![campaign_id, agent_id, reviewer], |r| {
                        item_from_row(r, ctx)
                    })?
                    .collect::<sql::Result<Vec<_>>>()?;
                let items = with_history(tx, items)?;
                let agent = agent_by_id(tx, &agent_id)?;
                let baseline: Option<String> = tx
                    .query_row(
                        "SELECT baseline_at FROM review_items WHERE campaign_id = ?1 AND agent_id = ?2 LIMIT 1",
                        params![campaign_id, agent_id],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                let baseline = parse_opt_ts(baseline)?;
                let since = baseline.unwrap_or_else(|| {
                    diff::cutoff(
                        c.snapshot_at.unwrap_or(c.campaign.starts_at),
                        c.campaign.lookback_days,
                    )
                });
                let in_review: BTreeSet<String> = items.iter().map(|i| i.scope.clone()).collect();
                let removed = removed_since(tx, &agent_id, since, &in_review)?;
                let mut progress = Progress::default();
                for i in &items {
                    progress_add(&mut progress, i.decision.as_str(), 1);
                }
                agents.push(QueueAgent {
                    campaign_id,
                    agent_id,
                    agent_name: agent.name,
                    owner: agent.owner,
                    team: agent.team,
                    environment: agent.environment,
                    due_at: c.campaign.due_at,
                    risk: risk.max(0) as u32,
                    flags: agent.flags,
                    static_secret: agent.static_secret,
                    last_certified_at: baseline,
                    progress,
                    items,
                    removed,
                });
            }
            let shown = offset + agents.len() as u64;
            let next_offset = (shown < total_agents as u64 && !agents.is_empty()).then_some(shown);
            let campaigns = campaigns
                .iter()
                .map(|(c, progress)| {
                    let c = &c.campaign;
                    QueueCampaign {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        due_at: c.due_at,
                        closes_at: c.closes_at,
                        days_until_due: days_until(now, c.due_at),
                        overdue: now > c.due_at,
                        no_response: c.no_response,
                        justification: c.justification,
                        lookback_days: c.lookback_days,
                        progress: *progress,
                    }
                })
                .collect();
            Ok(ReviewQueue {
                reviewer: reviewer.unwrap_or("*").to_string(),
                as_of: now,
                campaigns,
                total_agents: total_agents.max(0) as u64,
                offset,
                next_offset,
                agents,
                may_decide: true,
                may_reassign: false,
            })
        })
    }

    fn decide_item(
        &self,
        actor: &Actor,
        item_id: i64,
        req: &DecideItem,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<DecisionOutcome> {
        self.write(|tx| {
            let (item, c) = load_item(tx, item_id)?;
            guard(&item_facts(&item))?;
            ensure_open(&c.campaign)?;
            let justification = req
                .justification
                .as_deref()
                .map(str::trim)
                .filter(|j| !j.is_empty());
            let applied = apply_verdict(
                tx,
                actor,
                &c.campaign,
                &item,
                req.decision,
                justification,
                now,
            )?;
            self.follow_grant_change(tx, &item, &applied)?;
            let (item, _) = load_item(tx, item_id)?;
            Ok(DecisionOutcome {
                changed: applied.changed,
                previous: applied.previous,
                grant_removed: applied.grant_removed,
                grant_restored: applied.grant_restored,
                item,
            })
        })
    }

    fn decide_items(&self, decisions: &[BatchDecision], guard: ItemGuard<'_>) -> StoreResult<u64> {
        self.write(|tx| {
            let mut changed = 0;
            let mut campaigns = HashMap::new();
            for d in decisions {
                let (item, c) = load_item_for_batch(tx, d.item_id, &mut campaigns)?;
                guard(&item_facts(&item))?;
                ensure_open(&c)?;
                let justification = d
                    .decide
                    .justification
                    .as_deref()
                    .map(str::trim)
                    .filter(|j| !j.is_empty());
                // Its audit events are dated when the decision was made.
                let applied = super::sqlite::at_audit_time(d.at, || {
                    apply_verdict(
                        tx,
                        &d.actor,
                        &c,
                        &item,
                        d.decide.decision,
                        justification,
                        d.at,
                    )
                })?;
                self.follow_grant_change(tx, &item, &applied)?;
                changed += applied.changed as u64;
            }
            Ok(changed)
        })
    }

    fn certify_unchanged(
        &self,
        actor: &Actor,
        campaign_id: &str,
        agent_id: &str,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<BulkCertifyOutcome> {
        self.write(|tx| {
            let c = campaign_row(tx, campaign_id)?;
            let ctx = ItemContext::of(&c.campaign);
            let items = tx
                .prepare(&format!(
                    "SELECT {ITEM_COLUMNS} FROM review_items i
                     WHERE i.campaign_id = ?1 AND i.agent_id = ?2 ORDER BY i.scope"
                ))?
                .query_map(params![campaign_id, agent_id], |r| item_from_row(r, ctx))?
                .collect::<sql::Result<Vec<_>>>()?;
            if items.is_empty() {
                return Err(StoreError::NotFound(format!(
                    "agent {agent_id} has no items in campaign {campaign_id}"
                )));
            }
            let mut refusal = None;
            let mine: Vec<&ReviewItem> = items
                .iter()
                .filter(|i| match guard(&item_facts(i)) {
                    Ok(()) => true,
                    Err(e) => {
                        refusal.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if mine.is_empty() {
                return Err(refusal.unwrap_or_else(|| {
                    StoreError::Forbidden("no item of this agent is yours to decide".into())
                }));
            }
            ensure_open(&c.campaign)?;
            let mut certified = Vec::new();
            let mut skipped = Vec::new();
            for item in mine.iter().filter(|i| i.bulk_certifiable) {
                if !grant_present(tx, agent_id, &item.scope)? {
                    skipped.push(SkippedItem {
                        item_id: item.id,
                        scope: item.scope.clone(),
                        reason: "the agent no longer holds this scope".into(),
                    });
                    continue;
                }
                apply_verdict(tx, actor, &c.campaign, item, Verdict::Certify, None, now)?;
                certified.push(item.id);
            }
            let remaining = mine
                .iter()
                .filter(|i| i.decision == Decision::None && !certified.contains(&i.id))
                .count() as u64;
            Ok(BulkCertifyOutcome {
                campaign_id: campaign_id.to_string(),
                agent_id: agent_id.to_string(),
                certified,
                skipped,
                remaining,
            })
        })
    }

    /// Accepts the recommendation of many undecided items in one transaction, each item in
    /// its own savepoint: an item that cannot be decided (a justification is needed, its agent
    /// was decommissioned, its scope removed meanwhile) is skipped with the reason and the rest
    /// go on. `mine` restricts the selection to one reviewer's items; `guard` (the single
    /// decision's rule) is asked for every item. A dry run rolls everything back.
    fn accept_recommendations(
        &self,
        actor: &Actor,
        campaign_id: &str,
        req: &AcceptRecommendations,
        mine: Option<&str>,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<AcceptOutcome> {
        let justification = req
            .justification
            .as_deref()
            .map(str::trim)
            .filter(|j| !j.is_empty());
        self.write(|tx| {
            let c = campaign_row(tx, campaign_id)?;
            ensure_open(&c.campaign)?;
            let ctx = ItemContext::of(&c.campaign);
            // (item, named): named items were asked for by id or agent; refusing them is said.
            let mut candidates: Vec<(ReviewItem, bool)> = Vec::new();
            let mut refused = Vec::new();
            let named = !req.item_ids.is_empty() || !req.agent_ids.is_empty();
            if named {
                let mut by_id = tx.prepare_cached(&format!(
                    "SELECT {ITEM_COLUMNS} FROM review_items i WHERE i.id = ?1 AND i.campaign_id = ?2"
                ))?;
                for id in &req.item_ids {
                    match by_id
                        .query_row(params![id, campaign_id], |r| item_from_row(r, ctx))
                        .optional()?
                    {
                        Some(item) => candidates.push((item, true)),
                        None => refused.push(SkippedItem {
                            item_id: *id,
                            scope: String::new(),
                            reason: format!("no review item {id} in campaign {campaign_id}"),
                        }),
                    }
                }
                let mut by_agent = tx.prepare_cached(&format!(
                    "SELECT {ITEM_COLUMNS} FROM review_items i
                     WHERE i.campaign_id = ?1 AND i.agent_id = ?2 ORDER BY i.scope"
                ))?;
                for agent in &req.agent_ids {
                    let items = by_agent
                        .query_map(params![campaign_id, agent], |r| item_from_row(r, ctx))?
                        .collect::<sql::Result<Vec<_>>>()?;
                    // An agent's decided items are not a refusal: only its undecided ones
                    // are in question.
                    candidates.extend(
                        items
                            .into_iter()
                            .filter(|i| i.decision == Decision::None)
                            .map(|i| (i, true)),
                    );
                }
            } else {
                let text = req
                    .q
                    .as_deref()
                    .map(str::trim)
                    .filter(|q| !q.is_empty())
                    .map(super::sqlite::like_pattern);
                let items = tx
                    .prepare(&format!(
                        "SELECT {ITEM_COLUMNS} FROM review_items i
                         JOIN agents a ON a.id = i.agent_id
                         LEFT JOIN people o ON o.id = a.owner_id
                         WHERE i.campaign_id = ?1 AND i.decision = 'none'
                           AND (?2 IS NULL OR i.reviewer = ?2)
                           AND (?3 IS NULL OR a.name LIKE ?3 ESCAPE '\\' OR a.team LIKE ?3 ESCAPE '\\'
                                OR a.environment LIKE ?3 ESCAPE '\\' OR o.email LIKE ?3 ESCAPE '\\')
                         ORDER BY i.id"
                    ))?
                    .query_map(params![campaign_id, mine, text], |r| item_from_row(r, ctx))?
                    .collect::<sql::Result<Vec<_>>>()?;
                candidates.extend(items.into_iter().map(|i| (i, false)));
            }
            let mut seen = BTreeSet::new();
            let mut chosen = Vec::new();
            for (item, _) in candidates {
                if !seen.insert(item.id) {
                    continue;
                }
                let refuse = |reason: String| SkippedItem {
                    item_id: item.id,
                    scope: item.scope.clone(),
                    reason,
                };
                if let Some(me) = mine
                    && !item.reviewer.eq_ignore_ascii_case(me)
                {
                    refused.push(refuse(format!(
                        "item {} is not {me}'s to review: its reviewer is {}",
                        item.id, item.reviewer
                    )));
                    continue;
                }
                if let Err(e) = guard(&item_facts(&item)) {
                    refused.push(refuse(e.to_string()));
                    continue;
                }
                if item.decision != Decision::None {
                    refused.push(refuse(format!(
                        "item {} is decided already ({})",
                        item.id,
                        item.decision.as_str()
                    )));
                    continue;
                }
                chosen.push(item);
            }
            if let Some(expect) = req.expect
                && expect != chosen.len() as u64
            {
                return Err(StoreError::Conflict(format!(
                    "the selection changed: {} items are undecided now, {expect} were confirmed; \
                     look again and confirm the new count",
                    chosen.len()
                )));
            }
            tx.execute_batch("SAVEPOINT accept_all")?;
            let mut decided = Vec::new();
            let mut skipped = Vec::new();
            let mut changes = Vec::new();
            for item in &chosen {
                let verdict = item.diff.recommendation.action;
                tx.execute_batch("SAVEPOINT accept_one")?;
                match apply_verdict(tx, actor, &c.campaign, item, verdict, justification, now) {
                    Ok(applied) => {
                        tx.execute_batch("RELEASE accept_one")?;
                        decided.push(AcceptedItem {
                            item_id: item.id,
                            agent_id: item.agent_id.clone(),
                            scope: item.scope.clone(),
                            decision: verdict,
                        });
                        changes.push((item, applied));
                    }
                    Err(StoreError::Conflict(reason) | StoreError::Invalid { message: reason, .. }) => {
                        tx.execute_batch("ROLLBACK TO accept_one; RELEASE accept_one")?;
                        skipped.push(SkippedItem {
                            item_id: item.id,
                            scope: item.scope.clone(),
                            reason,
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            if req.dry_run {
                tx.execute_batch("ROLLBACK TO accept_all; RELEASE accept_all")?;
            } else {
                tx.execute_batch("RELEASE accept_all")?;
                for (item, applied) in &changes {
                    self.follow_grant_change(tx, item, applied)?;
                }
            }
            let count = |v: Verdict| decided.iter().filter(|d| d.decision == v).count() as u64;
            Ok(AcceptOutcome {
                campaign_id: campaign_id.to_string(),
                dry_run: req.dry_run,
                certify: count(Verdict::Certify),
                revoke: count(Verdict::Revoke),
                agents: decided
                    .iter()
                    .map(|d| d.agent_id.as_str())
                    .collect::<BTreeSet<_>>()
                    .len() as u64,
                decided,
                skipped,
                refused,
            })
        })
    }

    fn reassign_items(
        &self,
        actor: &Actor,
        target: &ReassignTarget,
        req: &ReassignItems,
        now: DateTime<Utc>,
    ) -> StoreResult<ReassignOutcome> {
        self.write(|tx| {
            let to = rules::ensure_reviewer(
                ReviewerRole::Reviewer,
                &req.reviewer,
                person_by_email(tx, &req.reviewer)?,
            )?;
            let (campaign_id, agent_id, ids): (String, String, Vec<(i64, String)>) = match target {
                ReassignTarget::Item(id) => {
                    let (item, _) = load_item(tx, *id)?;
                    (item.campaign_id, item.agent_id, vec![(item.id, item.reviewer)])
                }
                ReassignTarget::Agent {
                    campaign_id,
                    agent_id,
                } => {
                    campaign_row(tx, campaign_id)?;
                    let ids = tx
                        .prepare(
                            "SELECT id, reviewer FROM review_items WHERE campaign_id = ?1 AND agent_id = ?2 ORDER BY id",
                        )?
                        .query_map(params![campaign_id, agent_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<sql::Result<Vec<_>>>()?;
                    if ids.is_empty() {
                        return Err(StoreError::NotFound(format!(
                            "agent {agent_id} has no items in campaign {campaign_id}"
                        )));
                    }
                    (campaign_id.clone(), agent_id.clone(), ids)
                }
            };
            let c = campaign_row(tx, &campaign_id)?;
            ensure_open(&c.campaign)?;
            let moved: Vec<(i64, String)> = ids
                .into_iter()
                .filter(|(_, from)| !from.eq_ignore_ascii_case(&to.email))
                .collect();
            if moved.is_empty() {
                return Ok(ReassignOutcome {
                    reviewer: to.email,
                    reassigned: Vec::new(),
                });
            }
            let seq = append_audit(
                tx,
                actor,
                "review.reassign",
                Some(&agent_id),
                "success",
                req.reason.as_deref(),
                &serde_json::json!({
                    "campaign_id": campaign_id,
                    "items": moved.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                    "from": moved.iter().map(|(_, f)| f).collect::<BTreeSet<_>>(),
                    "to": to.email,
                }),
            )?;
            let now_text = ts(now);
            for (id, from) in &moved {
                tx.execute(
                    "UPDATE review_items SET reviewer = ?1 WHERE id = ?2",
                    params![to.email, id],
                )?;
                add_event(
                    tx,
                    *id,
                    "reassign",
                    &actor.id,
                    &now_text,
                    req.reason.as_deref(),
                    Some((from, &to.email)),
                    Some(seq),
                )?;
            }
            Ok(ReassignOutcome {
                reviewer: to.email,
                reassigned: moved.into_iter().map(|(id, _)| id).collect(),
            })
        })
    }

    fn close_campaign(
        &self,
        actor: &Actor,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CloseOutcome> {
        self.begin_close(actor, id, now)?;
        while !self.write_step(|tx| close_step(tx, &self.live, id, Some(STEP_TARGET)))? {
            self.step_aside();
        }
        self.write(|tx| finish_close(tx, id))
    }

    fn campaigns_due_to_close(&self, now: DateTime<Utc>) -> StoreResult<Vec<String>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT id FROM campaigns WHERE status IN ('open', 'closing') AND closes_at <= ?1
                 ORDER BY closes_at",
            )?;
            let ids = stmt
                .query_map([ts(now)], |r| r.get(0))?
                .collect::<sql::Result<Vec<String>>>()?;
            Ok(ids)
        })
    }

    fn export_campaign(
        &self,
        id: &str,
        each: &mut dyn FnMut(ExportRow) -> StoreResult<()>,
    ) -> StoreResult<u64> {
        self.read(|tx| {
            let c = campaign_row(tx, id)?;
            let lookback = c.campaign.lookback_days;
            let mut stmt = tx.prepare(
                "SELECT i.id, i.agent_id, i.agent_name, i.owner, i.team, i.environment, i.scope,
                     i.reviewer, i.usage, i.idle_days, i.drift, i.recommendation, i.last_used_at,
                     i.decision, i.decided_by, i.decided_at, i.justification, i.applied,
                     i.applied_at, i.changes
                 FROM review_items i
                 WHERE i.id BETWEEN ?1 AND ?2 AND +i.campaign_id = ?3 ORDER BY i.id",
            )?;
            let mut rows = stmt.query(params![c.first_item, c.last_item, id])?;
            let mut n = 0u64;
            while let Some(r) = rows.next()? {
                let usage: String = r.get(8)?;
                let drift: String = r.get(10)?;
                let recommendation: String = r.get(11)?;
                let decision: String = r.get(13)?;
                let usage = Usage::parse(&usage).ok_or_else(|| bad_value("usage", &usage))?;
                let idle_days: i64 = r.get(9)?;
                let last_used_at = parse_opt_ts(r.get(12)?)?;
                let row = ExportRow {
                    item_id: r.get(0)?,
                    campaign_id: c.campaign.id.clone(),
                    campaign_name: c.campaign.name.clone(),
                    agent_id: r.get(1)?,
                    agent_name: r.get(2)?,
                    owner: r.get(3)?,
                    team: r.get(4)?,
                    environment: r.get(5)?,
                    scope: r.get(6)?,
                    reviewer: r.get(7)?,
                    usage,
                    idle_days,
                    change: Change::parse(&drift).ok_or_else(|| bad_value("drift", &drift))?,
                    recommendation: Verdict::parse(&recommendation)
                        .ok_or_else(|| bad_value("recommendation", &recommendation))?,
                    recommendation_reason: diff::reason(usage, idle_days, last_used_at, lookback),
                    decision: Decision::parse(&decision)
                        .ok_or_else(|| bad_value("decision", &decision))?,
                    decided_by: r.get(14)?,
                    decided_at: parse_opt_ts(r.get(15)?)?,
                    justification: r.get(16)?,
                    applied: r.get(17)?,
                    applied_at: parse_opt_ts(r.get(18)?)?,
                    changed_minds: r.get(19)?,
                };
                each(row)?;
                n += 1;
            }
            Ok(n)
        })
    }

    fn scope_diff(
        &self,
        agent_id: &str,
        lookback_days: u32,
        now: DateTime<Utc>,
        guard: Guard<'_>,
    ) -> StoreResult<ScopeDiff> {
        self.read(|tx| {
            let agent = agent_by_id(tx, agent_id)?;
            guard(&facts(&agent))?;
            let baseline = agent_baseline(tx, agent_id)?;
            let scopes = agent
                .grants
                .iter()
                .map(|g| ScopeDiffEntry {
                    scope: g.scope.clone(),
                    state: diff::scope_state(
                        &GrantFacts {
                            granted_by: g.granted_by.clone(),
                            granted_at: g.granted_at,
                            last_used_at: g.last_used_at,
                            last_certified_at: g.last_certified_at,
                        },
                        baseline,
                        now,
                        lookback_days,
                    ),
                })
                .collect();
            let since = baseline.unwrap_or_else(|| diff::cutoff(now, lookback_days));
            let removed = removed_since(tx, agent_id, since, &BTreeSet::new())?;
            Ok(ScopeDiff {
                agent_id: agent.id,
                agent_name: agent.name,
                as_of: now,
                lookback_days,
                last_certified_at: baseline,
                scopes,
                removed,
            })
        })
    }

    fn plan_reminders(&self, now: DateTime<Utc>, deliverable: bool) -> StoreResult<ReminderPlan> {
        self.write(|tx| {
            let now_text = ts(now);
            let mut plan = ReminderPlan::default();
            // Closed campaigns remind nobody.
            plan.cancelled += tx.execute(
                "UPDATE review_reminders SET status = 'cancelled', next_attempt_at = NULL,
                     last_error = 'the campaign closed'
                 WHERE status IN ('pending', 'unsent')
                   AND campaign_id IN (SELECT id FROM campaigns WHERE status = 'closed')",
                [],
            )? as u64;
            let open = tx
                .prepare(&format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = 'open' ORDER BY id"
                ))?
                .query_map([], campaign_from_row)?
                .collect::<sql::Result<Vec<_>>>()?;
            for row in open {
                let c = &row.campaign;
                let slot = schedule::current_slot(&c.reminders, c.starts_at, c.due_at, now);
                let key = slot.as_ref().map(|s| s.key.as_str());
                // A newer slot replaces an older one still waiting for delivery.
                plan.cancelled += tx.execute(
                    "UPDATE review_reminders SET status = 'cancelled', next_attempt_at = NULL,
                         last_error = 'replaced by a later reminder'
                     WHERE campaign_id = ?1 AND status IN ('pending', 'unsent')
                       AND (?2 IS NULL OR slot != ?2)",
                    params![c.id, key],
                )? as u64;
                // A reviewer who has finished is not reminded again.
                plan.cancelled += tx.execute(
                    "UPDATE review_reminders SET status = 'cancelled', next_attempt_at = NULL,
                         last_error = 'the reviewer has finished'
                     WHERE campaign_id = ?1 AND status IN ('pending', 'unsent')
                       AND NOT EXISTS (SELECT 1 FROM review_items i
                                       WHERE i.campaign_id = ?1 AND i.reviewer = review_reminders.reviewer
                                         AND i.decision = 'none')",
                    [&c.id],
                )? as u64;
                let Some(slot) = slot else { continue };
                // Planned already (this minute or earlier): the slot's reviewers are fixed
                // when it comes due, so the scan over the campaign's items runs once per slot.
                let planned: bool = tx
                    .prepare_cached(
                        "SELECT 1 FROM review_reminders WHERE campaign_id = ?1 AND slot = ?2 LIMIT 1",
                    )?
                    .exists(params![c.id, slot.key])?;
                if planned {
                    continue;
                }
                let status = if deliverable {
                    ReminderStatus::Pending
                } else {
                    ReminderStatus::Unsent
                };
                // One reminder per reviewer per slot: the unique key makes a repeat a no-op.
                plan.created += tx.execute(
                    "INSERT OR IGNORE INTO review_reminders (campaign_id, reviewer, slot, slot_at,
                         pending_items, status, next_attempt_at, created_at)
                     SELECT ?1, reviewer, ?2, ?3, count(*), ?4, CASE WHEN ?4 = 'pending' THEN ?5 END, ?5
                     FROM review_items WHERE campaign_id = ?1 AND decision = 'none'
                     GROUP BY reviewer",
                    params![c.id, slot.key, ts(slot.at), status.as_str(), now_text],
                )? as u64;
            }
            Ok(plan)
        })
    }

    fn due_reminders(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Reminder>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(&format!(
                "{REMINDER_SELECT} WHERE r.status = 'pending' AND r.next_attempt_at <= ?1
                 ORDER BY r.next_attempt_at, r.id LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map(params![ts(now), limit], reminder_from_row)?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn record_reminder_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        attempt: &ReminderAttempt,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let changed = match attempt {
                ReminderAttempt::Delivered => tx.execute(
                    "UPDATE review_reminders SET status = 'delivered', attempts = attempts + 1,
                         last_attempt_at = ?1, delivered_at = ?1, next_attempt_at = NULL, last_error = NULL
                     WHERE id = ?2",
                    params![ts(now), id],
                )?,
                ReminderAttempt::Failed { error, retry_at } => tx.execute(
                    "UPDATE review_reminders SET attempts = attempts + 1, last_attempt_at = ?1,
                         last_error = ?2, next_attempt_at = ?3,
                         status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END
                     WHERE id = ?4 AND status = 'pending'",
                    params![ts(now), error, retry_at.map(ts), id],
                )?,
            };
            if changed == 0 && matches!(attempt, ReminderAttempt::Delivered) {
                return Err(StoreError::NotFound(format!("no reminder {id}")));
            }
            Ok(())
        })
    }

    fn list_reminders(
        &self,
        query: &ReminderQuery,
        reviewer: Option<&str>,
    ) -> StoreResult<ReminderPage> {
        let limit = query.limit.unwrap_or(200).clamp(1, 1000);
        self.read(|tx| {
            let reviewer = reviewer.or(query.reviewer.as_deref());
            let mut stmt = tx.prepare(&format!(
                "{REMINDER_SELECT}
                 WHERE (?1 IS NULL OR r.reviewer = ?1) AND (?2 IS NULL OR r.campaign_id = ?2)
                   AND (?3 IS NULL OR r.id < ?3)
                 ORDER BY r.id DESC LIMIT ?4"
            ))?;
            let rows = stmt
                .query_map(
                    params![reviewer, query.campaign_id, query.before, limit + 1],
                    reminder_from_row,
                )?
                .collect::<sql::Result<Vec<_>>>()?;
            let (reminders, next) = super::sqlite::page(rows, limit, |r| r.id);
            Ok(ReminderPage { reminders, next })
        })
    }
}

/// Schedules the next quarterly instance: same settings, three months later. If closing came
/// One step of a close: applies the no-response outcome to the next `CLOSE_STEP_ITEMS`
/// items after the cursor (keeps change no grant; each revoke removes its grant with its own
/// audit event), stopping early once `budget` is spent (after at least one item). Returns
/// whether no item is left. Idempotent: the cursor and the running totals move in the same
/// transaction as the items.
fn close_step(
    tx: &Tx<'_>,
    live: &LiveTokens,
    id: &str,
    budget: Option<std::time::Duration>,
) -> StoreResult<bool> {
    let until = budget.map(|b| std::time::Instant::now() + b);
    let row = campaign_row(tx, id)?;
    let c = &row.campaign;
    if c.status != CampaignStatus::Closing {
        return Ok(true);
    }
    let work = work_state(tx, id)?;
    let now_text = ts(work.at);
    let note = format!(
        "no response by the due date; the campaign's no-response outcome is {}",
        c.no_response.as_str()
    );
    let system = Actor::system(crate::registry::reviews::SYSTEM_ACTOR);
    let batch: Vec<(i64, String, String, String)> = tx
        .prepare_cached(
            "SELECT id, agent_id, scope, recommendation FROM review_items
             WHERE id > ?1 AND id <= ?2 AND +campaign_id = ?3 AND decision = 'none'
             ORDER BY id LIMIT ?4",
        )?
        .query_map(
            params![work.item_cursor, row.last_item, id, CLOSE_STEP_ITEMS],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<sql::Result<Vec<_>>>()?;
    if batch.is_empty() {
        return Ok(true);
    }
    let mut cursor = work.item_cursor;
    let (mut kept, mut revoked, mut already_gone) = (0i64, 0i64, 0i64);
    for (item_id, agent_id, scope, recommendation) in batch {
        if cursor != work.item_cursor && until.is_some_and(|u| std::time::Instant::now() >= u) {
            break;
        }
        cursor = item_id;
        let keep = match c.no_response {
            NoResponse::Keep => true,
            NoResponse::Revoke => false,
            NoResponse::Recommendation => recommendation == "certify",
        };
        let mut seq = None;
        if keep {
            kept += 1;
        } else {
            let removed = tx
                .prepare_cached("DELETE FROM grants WHERE agent_id = ?1 AND scope = ?2")?
                .execute(params![agent_id, scope])?;
            if removed > 0 {
                touch_agent(tx, &agent_id)?;
                kill_grant_tokens(tx, live, &agent_id, &scope)?;
                seq = Some(append_audit(
                    tx,
                    &system,
                    "grant.remove",
                    Some(&agent_id),
                    "success",
                    Some(&format!("{note}; {}", campaign_reason(c))),
                    &serde_json::json!({
                        "scope": scope, "campaign_id": id, "item_id": item_id,
                        "decided_by": SYSTEM_DECIDER,
                    }),
                )?);
                revoked += 1;
            } else {
                already_gone += 1;
            }
        }
        let decision = if keep { "keep" } else { "revoke" };
        tx.prepare_cached(
            "UPDATE review_items SET decision = ?1, decided_by = ?2, decided_at = ?3,
                 justification = ?4, applied = 1, applied_at = ?3
             WHERE id = ?5",
        )?
        .execute(params![decision, SYSTEM_DECIDER, now_text, note, item_id])?;
        add_event(
            tx,
            item_id,
            decision,
            SYSTEM_DECIDER,
            &now_text,
            Some(&note),
            None,
            seq,
        )?;
    }
    tx.execute(
        "UPDATE campaigns SET work_item_cursor = ?1, work_done = ?1 - items_first_id + 1,
             items_kept = items_kept + ?2, items_revoked = items_revoked + ?3 + ?4,
             close_kept = close_kept + ?2, close_revoked = close_revoked + ?3,
             close_already_gone = close_already_gone + ?4
         WHERE id = ?5",
        params![cursor, kept, revoked, already_gone, id],
    )?;
    Ok(false)
}

/// The last step of a close: marks the campaign closed, cancels its reminders, writes
/// `campaign.close` and schedules the next quarterly instance.
fn finish_close(tx: &Tx<'_>, id: &str) -> StoreResult<CloseOutcome> {
    let c = campaign_row(tx, id)?.campaign;
    if c.status != CampaignStatus::Closing {
        // Another close (the scheduler's or an admin's) finished it meanwhile.
        return Err(StoreError::Conflict(format!(
            "campaign {id} is already closed (at {})",
            c.closed_at.map(ts).unwrap_or_default()
        )));
    }
    let work = work_state(tx, id)?;
    let (kept, revoked, already_gone): (i64, i64, i64) = tx.query_row(
        "SELECT close_kept, close_revoked, close_already_gone FROM campaigns WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (kept, revoked, already_gone) = (kept as u64, revoked as u64, already_gone as u64);
    let revoke_decisions = revoked + already_gone;
    tx.execute(
        "UPDATE campaigns SET status = 'closed', closed_at = ?1, work_done = work_total WHERE id = ?2",
        params![ts(work.at), id],
    )?;
    tx.execute(
        "UPDATE review_reminders SET status = 'cancelled', next_attempt_at = NULL,
             last_error = 'the campaign closed'
         WHERE campaign_id = ?1 AND status IN ('pending', 'unsent')",
        [id],
    )?;
    append_audit(
        tx,
        &work.actor,
        "campaign.close",
        Some(id),
        "success",
        None,
        &serde_json::json!({
            "no_response": c.no_response.as_str(),
            "touched": kept + revoke_decisions, "kept": kept, "revoked": revoked,
            "already_gone": already_gone,
        }),
    )?;
    let next = if c.recurrence == Recurrence::Quarterly {
        Some(schedule_next_instance(tx, &work.actor, &c, work.at)?)
    } else {
        None
    };
    Ok(CloseOutcome {
        campaign: campaign_row(tx, id)?.campaign,
        no_response: c.no_response,
        touched: kept + revoke_decisions,
        revoked,
        kept,
        already_gone,
        next,
    })
}

/// so late that its due date has passed too, it moves on by further quarters.
fn schedule_next_instance(
    tx: &Tx<'_>,
    actor: &Actor,
    c: &Campaign,
    now: DateTime<Utc>,
) -> StoreResult<Campaign> {
    let (next, instance) = rules::next_instance(c, now)?;
    let id = new_id("cmp");
    insert_campaign(
        tx,
        &id,
        &c.series_id,
        instance,
        Some(&c.id),
        &next,
        SYSTEM_DECIDER,
        now,
    )?;
    tx.execute(
        "UPDATE campaigns SET next_id = ?1 WHERE id = ?2",
        params![id, c.id],
    )?;
    append_audit(
        tx,
        actor,
        "campaign.create",
        Some(&id),
        "success",
        Some(&format!("next quarterly instance after {}", c.id)),
        &serde_json::json!({
            "name": next.name, "previous_id": c.id, "series_id": c.series_id,
            "instance": instance, "starts_at": ts(next.starts_at), "due_at": ts(next.due_at),
        }),
    )?;
    Ok(campaign_row(tx, &id)?.campaign)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The campaign the step tests create over the whole estate: starting now, due in 30 days,
    /// the fallback reviewer set and the recommendation applied to what nobody decides.
    fn step_campaign(name: &str, recurrence: Recurrence, now: DateTime<Utc>) -> CreateCampaign {
        CreateCampaign {
            name: name.into(),
            filter: CampaignFilter::default(),
            starts_at: None,
            due_at: now + Duration::days(30),
            grace_days: None,
            recurrence,
            fallback_reviewer: Some("sec@example.com".into()),
            reminders: ReminderSchedule::default(),
            no_response: NoResponse::Recommendation,
            justification: JustificationPolicy::default(),
            lookback_days: None,
        }
    }

    /// A store with a fallback reviewer and `agents` agents of two grants each (one used, one
    /// not), the same every time.
    fn estate(path: &std::path::Path, agents: usize, now: DateTime<Utc>) -> SqliteStore {
        use crate::model::{Agent, AgentKind, AgentSource, AgentStatus, Grant, Person};
        use crate::registry::store::{SeedAgent, SeedBatch, SeedPerson, SeedStore};
        let store = SqliteStore::open(
            path,
            crate::registry::store::sqlite::OpenMode::CreateIfMissing,
        )
        .unwrap();
        let people = ["sec@example.com", "owner@example.com"]
            .into_iter()
            .map(|email| SeedPerson {
                person: Person {
                    id: format!("p_{}", email.replace(['@', '.'], "_")),
                    email: email.into(),
                    display_name: email.into(),
                    roles: vec![],
                    active: true,
                    manager: None,
                    team: None,
                    created_at: now,
                    change_seq: 0,
                    left_at: None,
                },
                manager_email: None,
            })
            .collect();
        let grant = |scope: &str, used: i64| Grant {
            scope: scope.into(),
            granted_by: "granter@example.com".into(),
            granted_at: now - Duration::days(300),
            expires_at: None,
            justification: None,
            last_used_at: Some(now - Duration::days(used)),
            last_certified_at: Some(now - Duration::days(90)),
        };
        let agents = (0..agents)
            .map(|i| SeedAgent {
                agent: Agent {
                    id: format!("ag_{i:05}"),
                    name: format!("agent-{i}"),
                    description: String::new(),
                    kind: AgentKind::Agent,
                    parent_id: None,
                    owner: (i % 3 != 0).then(|| "owner@example.com".into()),
                    owner_name: None,
                    team: "payments".into(),
                    environment: "production".into(),
                    status: AgentStatus::Active,
                    source: AgentSource::Registered,
                    created_at: now - Duration::days(400),
                    last_seen_at: None,
                    static_secret: false,
                    flags: vec![],
                    grants: vec![grant("crm.orders:read", 2), grant("wiki:read", 60)],
                    change_seq: 0,
                    owner_left_at: None,
                },
                credentials: Vec::new(),
            })
            .collect();
        store.seed(&SeedBatch { people, agents }).unwrap();
        store
    }

    /// Items, grants and audit of a store, with the campaign's id and times left out.
    fn outcome(path: &std::path::Path, id: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut out = Vec::new();
        for sql in [
            "SELECT id, agent_id, scope, reviewer, usage, idle_days, drift, recommendation,
                 decision, decided_by, decided_at, applied FROM review_items ORDER BY id",
            "SELECT item_id, action, actor, at, audit_seq FROM review_item_events ORDER BY id",
            "SELECT agent_id, scope FROM grants ORDER BY agent_id, scope",
            "SELECT seq, actor_id, action, target, reason, details FROM audit_events ORDER BY seq",
            "SELECT status, items_total, items_kept, items_revoked, items_first_id, items_last_id,
                 snapshot_at, closed_at, closed_by FROM campaigns ORDER BY rowid",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .unwrap();
            for row in rows {
                out.push(row.unwrap().join("|").replace(id, "CMP"));
            }
        }
        out
    }

    /// Issue 10 item 3: a campaign step's commit does not wait for the disk; every other
    /// write's does, also after a step that failed.
    #[test]
    fn a_step_commits_without_syncing_and_every_other_write_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.db");
        let store =
            SqliteStore::open(&path, super::super::sqlite::OpenMode::CreateIfMissing).unwrap();
        let level = |tx: &Tx<'_>| -> StoreResult<i64> {
            Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
        };
        assert_eq!(store.write_step(level).unwrap(), 1, "NORMAL inside a step");
        assert_eq!(store.write(level).unwrap(), 2, "FULL after it");
        let failed: StoreResult<()> =
            store.write_step(|_| Err(StoreError::Conflict("refused".into())));
        assert!(failed.is_err());
        assert_eq!(
            store.write(level).unwrap(),
            2,
            "FULL after a step that failed"
        );
        assert_eq!(store.write_urgent(level).unwrap(), 2);
    }

    /// Issue 10 item 3: a snapshot and a close stopped half way by a restart resume where they
    /// were and end with exactly the items, decisions, grants and audit of an uninterrupted run.
    #[test]
    fn interrupted_snapshot_and_close_resume_to_the_same_outcome() {
        let now = Utc::now();
        let agents = 2 * SNAPSHOT_STEP_AGENTS as usize + 37;
        let admin = Actor::human("sec@example.com");
        let req = step_campaign("2026-Q4 large", Recurrence::Quarterly, now);
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Vec::new();
        for interrupted in [false, true] {
            let path = dir.path().join(format!("run-{interrupted}.db"));
            let store = estate(&path, agents, now);
            let id = store.create_campaign_record(&admin, &req, now).unwrap();
            let store = if interrupted {
                assert!(
                    !store
                        .write(|tx| snapshot_step(tx, &id, SNAPSHOT_STEP_AGENTS))
                        .unwrap()
                );
                let c = store.campaign_detail(&id).unwrap().unwrap().campaign;
                assert_eq!(c.status, CampaignStatus::Snapshotting);
                let work = c.work.unwrap();
                assert_eq!(
                    (work.done, work.total),
                    (SNAPSHOT_STEP_AGENTS as u64, agents as u64)
                );
                drop(store);
                // A restart: the scheduler's next run finishes the snapshot.
                let store =
                    SqliteStore::open(&path, crate::registry::store::sqlite::OpenMode::MustExist)
                        .unwrap();
                assert!(
                    store
                        .start_due_campaigns(&Actor::system("scheduler"), now)
                        .unwrap()
                        .is_empty()
                );
                store
            } else {
                store.finish_snapshots().unwrap();
                store
            };
            let c = store.campaign_detail(&id).unwrap().unwrap().campaign;
            assert_eq!(
                (c.status, c.progress.total),
                (CampaignStatus::Open, 2 * agents as u64)
            );
            let closed_at = now + Duration::days(31);
            let store = if interrupted {
                store.begin_close(&admin, &id, closed_at).unwrap();
                assert!(
                    !store
                        .write(|tx| close_step(tx, &store.live, &id, None))
                        .unwrap()
                );
                let c = store.campaign_detail(&id).unwrap().unwrap().campaign;
                assert_eq!(c.status, CampaignStatus::Closing);
                assert_eq!(c.work.unwrap().done, CLOSE_STEP_ITEMS as u64);
                drop(store);
                let store =
                    SqliteStore::open(&path, crate::registry::store::sqlite::OpenMode::MustExist)
                        .unwrap();
                let due = store.campaigns_due_to_close(closed_at).unwrap();
                assert_eq!(due, vec![id.clone()]);
                // The scheduler resumes it (as the admin who began it, at the time it began).
                store
                    .close_campaign(
                        &Actor::system("scheduler"),
                        &id,
                        closed_at + Duration::hours(1),
                    )
                    .unwrap();
                store
            } else {
                store.close_campaign(&admin, &id, closed_at).unwrap();
                store
            };
            let c = store.campaign_detail(&id).unwrap().unwrap().campaign;
            assert_eq!(c.status, CampaignStatus::Closed);
            assert_eq!(
                (c.progress.kept, c.progress.revoked),
                (agents as u64, agents as u64)
            );
            drop(store);
            runs.push(outcome(&path, &id));
        }
        assert!(runs[0].len() > 4 * agents);
        // The next quarterly instance gets a fresh id in each run.
        let strip = |rows: &Vec<String>| -> Vec<String> {
            rows.iter()
                .map(|r| r.split("cmp_").next().unwrap().to_string())
                .collect()
        };
        assert_eq!(strip(&runs[0]), strip(&runs[1]));
    }

    /// Issue 10 item 3: snapshot steps of the fewest agents and close steps cut short by their
    /// time budget (here after one item each) end with exactly the items, decisions, grants and
    /// audit of full steps.
    #[test]
    fn steps_cut_short_end_with_the_outcome_of_full_steps() {
        let now = Utc::now();
        let agents = 23;
        let admin = Actor::human("sec@example.com");
        let req = step_campaign("short steps", Recurrence::None, now);
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Vec::new();
        for short in [false, true] {
            let path = dir.path().join(format!("run-{short}.db"));
            let store = estate(&path, agents, now);
            let id = store.create_campaign_record(&admin, &req, now).unwrap();
            let step = if short {
                SNAPSHOT_STEP_MIN
            } else {
                SNAPSHOT_STEP_AGENTS
            };
            let mut snapshot_steps = 0;
            while !store.write(|tx| snapshot_step(tx, &id, step)).unwrap() {
                snapshot_steps += 1;
            }
            assert_eq!(snapshot_steps, if short { 3 } else { 1 });
            let budget = short.then_some(std::time::Duration::ZERO);
            store
                .begin_close(&admin, &id, now + Duration::days(31))
                .unwrap();
            let mut close_steps = 0u64;
            while !store
                .write(|tx| close_step(tx, &store.live, &id, budget))
                .unwrap()
            {
                close_steps += 1;
                if short {
                    let c = store.campaign_detail(&id).unwrap().unwrap().campaign;
                    assert_eq!(c.status, CampaignStatus::Closing);
                    assert_eq!(c.work.unwrap().done, close_steps);
                }
            }
            assert_eq!(close_steps, if short { 2 * agents as u64 } else { 1 });
            store.write(|tx| finish_close(tx, &id)).unwrap();
            drop(store);
            runs.push(outcome(&path, &id));
        }
        assert!(runs[0].len() > 4 * agents);
        assert_eq!(runs[0], runs[1]);
    }

    #[test]
    fn snapshot_steps_shrink_when_slow_and_grow_back_when_quick() {
        use std::time::Duration as D;
        assert_eq!(next_step_size(250, D::from_millis(40)), 125);
        assert_eq!(next_step_size(250, D::from_secs(10)), SNAPSHOT_STEP_MIN);
        assert_eq!(next_step_size(100, D::from_millis(15)), 100);
        assert_eq!(next_step_size(100, D::from_millis(1)), 126);
        assert_eq!(next_step_size(240, D::from_millis(1)), SNAPSHOT_STEP_AGENTS);
    }

    /// Issue 10 item 3: a revoke that comes while the writer is held (by a campaign step, say)
    /// and ordinary writes already wait goes before all of them.
    #[test]
    fn a_revoke_goes_before_ordinary_writes_that_queued_first() {
        use crate::registry::store::BrakeStore;
        let now = Utc::now();
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(estate(&dir.path().join("q.db"), 6, now));
        let admin = Actor::human("sec@example.com");
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let store = store.clone();
            std::thread::spawn(move || {
                store
                    .write(|_| {
                        held_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok(())
                    })
                    .unwrap()
            })
        };
        held_rx.recv().unwrap();
        let mut writers = Vec::new();
        for i in 1..=3 {
            let (s, admin) = (store.clone(), admin.clone());
            writers.push(std::thread::spawn(move || {
                s.decommission_agent(&admin, &format!("ag_0000{i}"), None, &|_| Ok(()))
                    .unwrap()
                    .audit_seq
            }));
            while store.gate.waiting() < i {
                std::thread::yield_now();
            }
        }
        let revoke = {
            let (store, admin) = (store.clone(), admin.clone());
            std::thread::spawn(move || {
                store
                    .revoke_agent(&admin, "ag_00005", Some("incident"), &|_| Ok(()))
                    .unwrap()
                    .audit_seq
            })
        };
        while store.gate.urgent_waiting() < 1 {
            std::thread::yield_now();
        }
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        let revoked_at = revoke.join().unwrap();
        for w in writers {
            let decommissioned_at = w.join().unwrap();
            assert!(
                revoked_at < decommissioned_at,
                "the revoke (audit {revoked_at}) went after a decommission ({decommissioned_at})"
            );
        }
    }

    /// Issue 10 item 2: a burst of requests with one API token writes its `last_used_at` once,
    /// not once per request (each was a write the brake queued behind).
    #[test]
    fn a_burst_of_touches_of_one_api_token_writes_once() {
        use crate::registry::store::api_tokens::ApiTokenStore;
        let now = Utc::now();
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(estate(&dir.path().join("t.db"), 1, now));
        let (_, token) =
            crate::registry::bootstrap_admin(store.as_ref(), "root@example.com", "Root", "t")
                .unwrap();
        store.reset_writer_report();
        let threads: Vec<_> = (0..32)
            .map(|i| {
                let (store, id) = (store.clone(), token.id.clone());
                std::thread::spawn(move || {
                    store
                        .touch_api_token(&id, now + Duration::milliseconds(i))
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let touches: u64 = store
            .writer_report()
            .iter()
            .filter(|s| s.site.contains("sqlite_api_tokens"))
            .map(|s| s.count)
            .sum();
        assert_eq!(touches, 1);
        // A minute later it is written again.
        store
            .touch_api_token(&token.id, now + Duration::minutes(1))
            .unwrap();
        let touches: u64 = store
            .writer_report()
            .iter()
            .filter(|s| s.site.contains("sqlite_api_tokens"))
            .map(|s| s.count)
            .sum();
        assert_eq!(touches, 2);
    }
}
