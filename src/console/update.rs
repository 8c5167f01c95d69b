//! State transitions: `update(app, action) -> effects`. No terminal and no network here, so the
//! whole console can be driven (and tested) by feeding it actions.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fuzzy_matcher::FuzzyMatcher;
use fuzzy_matcher::skim::SkimMatcherV2;

use super::action::{
    Action, BulkRevokeOrder, CampaignPurpose, CloseCampaignOrder, Confirmation, DecommissionOrder,
    Effect, Pending, ReinstateOrder,
};
use super::app::{
    App, CampaignField, CampaignForm, ConfirmState, DetailState, JustifyState, Link, NoteState,
    Overlay, PickEntry, PickerState, ReviewsState, RevokeResult, Screen, Tone, round_now,
};
use super::filter::{FilterJob, FilterOutcome, QuickFilter};
use super::keymap::{Command, KeySpec};
use super::views;
use crate::client::ClientError;
use crate::model::AgentStatus;
use crate::model::review::{
    CampaignFilter, CreateCampaign, Decision, JustificationPolicy, NoResponse, Progress,
    Recurrence, ReminderSchedule, ReviewQueue, Verdict,
};
use crate::model::text::strip_for_terminal;

/// How often the console asks the change feed while the registry answers (seconds).
pub const SYNC_EVERY: i64 = 3;
/// How often it retries while the registry is unreachable.
pub const RETRY_EVERY: i64 = 5;
/// How often a changed cache is written.
pub const SAVE_EVERY: i64 = 30;

pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    let mut fx = Vec::new();
    match action {
        Action::Key(key) => on_key(app, key, &mut fx),
        Action::Command(c) => on_command(app, c, &mut fx),
        Action::Resize { width, height } => {
            app.width = width;
            app.height = height;
            keep_visible(app);
        }
        Action::Tick { now } => on_tick(app, now, &mut fx),
        Action::Me(result) => {
            app.me_in_flight = false;
            match result {
                Ok(me) => {
                    let email = me.person.email.clone();
                    let inv = Arc::make_mut(&mut app.inventory);
                    if inv.persona.as_deref().is_some_and(|p| p != email) {
                        // The cache was another person's view: start over.
                        inv.clear();
                        // Nothing may point at the old rows any more.
                        app.view = Arc::from(Vec::new());
                        app.view_spec = None;
                        app.selected = 0;
                        app.offset = 0;
                        app.marks.clear();
                        app.screen = Screen::Inventory;
                        app.overlay = None;
                        app.message = Some((
                            Tone::Info,
                            format!(
                                "signed in as {email}; the cached view was another person's, resyncing"
                            ),
                        ));
                    }
                    inv.persona = Some(email.clone());
                    app.spec.me = Some(email);
                    app.me = Some(me);
                    app.link = Link::Online;
                    refilter(app, &mut fx);
                    start_sync(app, &mut fx);
                }
                Err(e) => went_offline(app, &e),
            }
        }
        Action::SyncPage(feed) => {
            let inv = Arc::make_mut(&mut app.inventory);
            inv.apply(&feed);
            app.sync_dirty = true;
            app.cache_dirty = true;
        }
        Action::SyncDone(result) => {
            app.sync_in_flight = false;
            if std::mem::take(&mut app.sync_requested) {
                app.message = Some(match &result {
                    Ok(()) => (Tone::Ok, "up to date with the registry".to_string()),
                    Err(e) => (
                        Tone::Error,
                        format!("sync failed: {}", clean(&e.to_string())),
                    ),
                });
            }
            match result {
                Ok(()) => {
                    app.synced_at = Some(app.now);
                    if app.link != Link::Online {
                        app.link = Link::Online;
                    }
                }
                Err(e) => went_offline(app, &e),
            }
            if std::mem::take(&mut app.sync_dirty) {
                refilter(app, &mut fx);
                if let Screen::Detail(d) = &app.screen
                    && d.detail.is_some()
                {
                    // Keep the open detail fresh as well.
                    let id = d.id.clone();
                    fx.push(Effect::LoadDetail { id });
                }
            }
        }
        Action::Filtered(outcome) => on_filtered(app, outcome),
        Action::DetailLoaded {
            id,
            detail,
            audit,
            tokens,
        } => {
            if let Screen::Detail(d) = &mut app.screen
                && d.id == id
            {
                d.detail = Some(detail.map_err(|e| e.to_string()));
                d.audit = Some(audit.map_err(|e| e.to_string()));
                d.tokens = Some(tokens.map_err(|e| e.to_string()));
            }
        }
        Action::OwnerSet { id, result } => match result {
            Ok(agent) => {
                Arc::make_mut(&mut app.inventory).upsert(&agent);
                app.cache_dirty = true;
                app.message = Some((
                    Tone::Ok,
                    format!(
                        "{} is now owned by {}",
                        clean(&agent.name),
                        clean(
                            agent
                                .owner_name
                                .as_deref()
                                .or(agent.owner.as_deref())
                                .unwrap_or("nobody")
                        )
                    ),
                ));
                refilter(app, &mut fx);
                reload_detail(app, &id, &mut fx);
            }
            Err(e) => failed(app, "assigning the owner", &e),
        },
        Action::Revoked {
            id,
            round_trip_ms,
            result,
        } => match result {
            Ok(outcome) => {
                Arc::make_mut(&mut app.inventory).upsert(&outcome.agent);
                app.cache_dirty = true;
                let name = outcome.agent.name.clone();
                app.message = Some(if outcome.changed {
                    (Tone::Ok, format!("revoked {}", clean(&name)))
                } else {
                    (
                        Tone::Info,
                        format!(
                            "{} was already {}; nothing changed",
                            clean(&name),
                            outcome.previous_status.as_str()
                        ),
                    )
                });
                app.overlay = Some(Overlay::RevokeResult(Box::new(RevokeResult {
                    name,
                    outcome,
                    round_trip_ms,
                    note: String::new(),
                    note_state: NoteState::Editing,
                })));
                refilter(app, &mut fx);
                reload_detail(app, &id, &mut fx);
            }
            Err(e) => failed(app, "the revocation", &e),
        },
        Action::BulkRevoked {
            round_trip_ms,
            results,
        } => {
            let mut lines = Vec::new();
            let (mut done, mut unchanged, mut errors) = (0, 0, 0);
            for (id, r) in &results {
                match r {
                    Ok(outcome) => {
                        Arc::make_mut(&mut app.inventory).upsert(&outcome.agent);
                        if outcome.changed {
                            done += 1;
                        } else {
                            unchanged += 1;
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        lines.push(format!("✕ {}: {e}", clean(id)));
                    }
                }
            }
            app.cache_dirty = true;
            app.marks.clear();
            app.message = Some((
                if errors > 0 { Tone::Error } else { Tone::Ok },
                format!("bulk revocation: {done} revoked, {unchanged} unchanged, {errors} failed"),
            ));
            let mut summary = vec![
                format!("revoked: {done}"),
                format!("already suspended or decommissioned: {unchanged}"),
                format!("failed (nothing changed for these): {errors}"),
                format!("elapsed: {round_trip_ms:.0} ms"),
            ];
            summary.extend(lines);
            app.overlay = Some(Overlay::Notice {
                title: "Bulk revocation".into(),
                lines: summary,
                tone: if errors > 0 { Tone::Error } else { Tone::Ok },
            });
            refilter(app, &mut fx);
        }
        Action::Reinstated { id, result } => match result {
            Ok(agent) => {
                Arc::make_mut(&mut app.inventory).upsert(&agent);
                app.cache_dirty = true;
                app.message = Some((
                    Tone::Ok,
                    format!(
                        "reinstated {}; its credentials stay disabled until rotated",
                        clean(&agent.name)
                    ),
                ));
                refilter(app, &mut fx);
                reload_detail(app, &id, &mut fx);
            }
            Err(e) => failed(app, "the reinstatement", &e),
        },
        Action::PlanLoaded { id, result } => {
            let waiting = matches!(&app.overlay, Some(Overlay::Busy(_)));
            if !waiting {
                return fx; // the person went back meanwhile
            }
            match result {
                Ok(plan) => {
                    let name = name_of(app, &id);
                    let names = plan.agents.iter().map(|a| name_of(app, a)).collect();
                    app.overlay = Some(Overlay::Confirm(ConfirmState::Decommission(
                        Pending::buttons(DecommissionOrder {
                            id,
                            name,
                            plan,
                            names,
                        }),
                    )));
                }
                Err(e) => {
                    app.overlay = None;
                    failed(app, "reading the decommission plan", &e);
                }
            }
        }
        Action::Decommissioned { id, result } => match result {
            Ok(outcome) => {
                let inv = Arc::make_mut(&mut app.inventory);
                for agent in &outcome.decommissioned {
                    inv.mark_decommissioned(agent);
                }
                app.cache_dirty = true;
                app.overlay = Some(Overlay::Notice {
                    title: format!("Decommissioned {}", clean(&name_of(app, &id))),
                    lines: vec![
                        format!("agents decommissioned: {}", outcome.decommissioned.len()),
                        format!("grants removed: {}", outcome.grants_removed),
                        format!("credentials disabled: {}", outcome.credentials_disabled),
                        format!("tokens revoked: {}", outcome.tokens_revoked),
                        format!("registry time: {:.1} ms", outcome.elapsed_ms),
                        format!("audit event: #{}", outcome.audit_seq),
                    ],
                    tone: Tone::Ok,
                });
                refilter(app, &mut fx);
                reload_detail(app, &id, &mut fx);
                start_sync(app, &mut fx);
            }
            Err(e) => failed(app, "the decommission", &e),
        },
        Action::NoteAdded { seq, result } => {
            let state = match &result {
                Ok(note) => NoteState::Added(*note),
                Err(e) => NoteState::Failed(e.to_string()),
            };
            match result {
                Ok(note) => {
                    app.message = Some((
                        Tone::Ok,
                        format!("incident reference added to audit event #{seq} (note #{note})"),
                    ))
                }
                Err(e) => failed(app, "adding the incident reference", &e),
            }
            if let Some(Overlay::RevokeResult(r)) = &mut app.overlay {
                r.note_state = state;
            }
        }
        Action::ReviewsLoaded(result) => on_reviews_loaded(app, result),
        Action::Decided {
            item_id,
            verdict,
            justification,
            result,
        } => on_decided(app, item_id, verdict, justification, result),
        Action::BulkCertified { agent_id, result } => match result {
            Ok(outcome) => {
                if let Screen::Reviews(r) = &mut app.screen {
                    let name = r
                        .selected_agent()
                        .filter(|a| a.agent_id == agent_id)
                        .map_or_else(|| agent_id.clone(), |a| a.agent_name.clone());
                    let mut skipped = String::new();
                    if !outcome.skipped.is_empty() {
                        skipped = format!(", {} skipped", outcome.skipped.len());
                    }
                    app.message = Some((
                        Tone::Ok,
                        format!(
                            "certified {} scopes of {}{skipped}; {} still to decide",
                            outcome.certified.len(),
                            clean(&name),
                            outcome.remaining
                        ),
                    ));
                    // The registry certified these: show them so at once, and move the
                    // cursor to the next undecided item (this agent's, else the next agent's).
                    if let Some(Ok(q)) = &mut r.queue
                        && let Some(agent) = q.agents.iter_mut().find(|a| a.agent_id == agent_id)
                    {
                        let campaign = q.campaigns.iter_mut().find(|c| c.id == agent.campaign_id);
                        let mut moved = Vec::new();
                        for item in &mut agent.items {
                            if outcome.certified.contains(&item.id) {
                                moved.push(item.decision);
                                item.decision = Decision::Certify;
                                item.bulk_certifiable = false;
                            }
                        }
                        for before in &moved {
                            recount(&mut agent.progress, *before, Decision::Certify);
                        }
                        if let Some(c) = campaign {
                            for before in &moved {
                                recount(&mut c.progress, *before, Decision::Certify);
                            }
                        }
                    }
                    if r.selected_item()
                        .is_some_and(|i| i.decision != Decision::None)
                    {
                        advance_to_undecided(r);
                    }
                    // The registry's own state (decisions, progress) comes with the reload.
                    r.loading = true;
                    fx.push(Effect::LoadReviews);
                }
            }
            Err(e) => failed(app, "certifying the unchanged scopes", &e),
        },
        Action::CampaignsLoaded { purpose, result } => {
            if !matches!(&app.overlay, Some(Overlay::Busy(_))) {
                return fx; // the person went back meanwhile
            }
            app.overlay = None;
            match result {
                Ok(campaigns) if campaigns.is_empty() => {
                    app.message = Some((Tone::Info, "no campaign is open".into()));
                }
                Ok(campaigns) => match purpose {
                    CampaignPurpose::Progress => {
                        app.overlay = Some(Overlay::Notice {
                            title: "Campaign progress".into(),
                            lines: progress_lines(&campaigns, app.now),
                            tone: Tone::Info,
                        });
                    }
                    CampaignPurpose::Close => {
                        // The campaign of the selected agent, else the first open one.
                        let wanted = match &app.screen {
                            Screen::Reviews(r) => r.selected_agent().map(|a| a.campaign_id.clone()),
                            _ => None,
                        };
                        let d = campaigns
                            .iter()
                            .find(|d| Some(&d.campaign.id) == wanted.as_ref())
                            .unwrap_or(&campaigns[0]);
                        let c = &d.campaign;
                        let pending = c.progress.pending;
                        let expected = format!("{} {pending}", c.no_response.as_str());
                        app.overlay = Some(Overlay::Confirm(ConfirmState::CloseCampaign(
                            Pending::typed(
                                CloseCampaignOrder {
                                    id: c.id.clone(),
                                    name: c.name.clone(),
                                    no_response: c.no_response,
                                    pending,
                                    pending_recommended_revoke: d.pending_recommended_revoke,
                                },
                                expected,
                            ),
                        )));
                    }
                },
                Err(e) => failed(app, "reading the open campaigns", &e),
            }
        }
        Action::CampaignClosed(result) => match result {
            Ok(o) => {
                let mut lines = vec![
                    format!("no-response outcome: {}", o.no_response.as_str()),
                    format!("undecided items it touched: {}", o.touched),
                    format!("  grants removed: {}", o.revoked),
                    format!("  grants left in place: {}", o.kept),
                    format!("  already gone: {}", o.already_gone),
                ];
                if let Some(next) = &o.next {
                    lines.push(format!(
                        "next instance: {} (starts {})",
                        clean(&next.name),
                        next.starts_at.format("%Y-%m-%d")
                    ));
                }
                app.message = Some((Tone::Ok, format!("closed {}", clean(&o.campaign.name))));
                app.overlay = Some(Overlay::Notice {
                    title: format!("Closed {}", clean(&o.campaign.name)),
                    lines,
                    tone: Tone::Ok,
                });
                if let Screen::Reviews(r) = &mut app.screen {
                    r.loading = true;
                    fx.push(Effect::LoadReviews);
                }
            }
            Err(e) => failed(app, "closing the campaign", &e),
        },
        Action::CampaignCreated { draft, result } => {
            if matches!(&app.overlay, Some(Overlay::Busy(_))) {
                app.overlay = None;
            }
            match result {
                Ok(c) => {
                    app.campaign_draft = None;
                    let name = clean(&c.name);
                    let items = c.progress.total;
                    app.message = Some((Tone::Ok, format!("created {name}: {items} items")));
                    app.overlay = Some(Overlay::Notice {
                        title: format!("Created {name}"),
                        lines: vec![
                            format!("{items} items to review ({})", c.status.as_str()),
                            format!("due {}", c.due_at.format("%Y-%m-%d %H:%M UTC")),
                            format!("no response → {}", c.no_response.as_str()),
                            format!("recurrence: {}", c.recurrence.as_str()),
                            format!("fallback reviewer: {}", clean(&c.fallback_reviewer)),
                        ],
                        tone: Tone::Ok,
                    });
                    if let Screen::Reviews(r) = &mut app.screen {
                        r.loading = true;
                        fx.push(Effect::LoadReviews);
                    }
                }
                Err(e) => {
                    // Nothing was created; the form comes back as it was sent.
                    app.campaign_draft = Some(draft);
                    failed(app, "creating the campaign", &e);
                }
            }
        }
        Action::CacheSaved(result) => {
            app.saving = false;
            if let Err(e) = result {
                app.message = Some((Tone::Error, format!("cannot write the cache: {e}")));
            }
        }
    }
    fx
}

/// The progress notice: per campaign, then per reviewer (least done first) and per team.
fn progress_lines(campaigns: &[crate::model::review::CampaignDetail], now: i64) -> Vec<String> {
    let pct = |p: &Progress| (p.decided * 100).checked_div(p.total).unwrap_or(100);
    let mut lines = Vec::new();
    for d in campaigns {
        let c = &d.campaign;
        let days = (c.due_at.timestamp() - now).div_euclid(86_400);
        let due = if days < 0 {
            format!("overdue by {} days", -days)
        } else {
            format!("due in {days} days")
        };
        lines.push(format!(
            "{}: {}/{} decided ({}%), {due}; no response → {}",
            clean(&c.name),
            c.progress.decided,
            c.progress.total,
            pct(&c.progress),
            c.no_response.as_str()
        ));
        let mut reviewers: Vec<_> = d.by_reviewer.iter().collect();
        reviewers.sort_by_key(|r| (pct(&r.progress), std::cmp::Reverse(r.progress.pending)));
        lines.push("  by reviewer (least done first):".into());
        for r in reviewers.iter().take(8) {
            lines.push(format!(
                "    {:<32} {:>5}/{:<5} {:>3}%",
                clean(&r.reviewer),
                r.progress.decided,
                r.progress.total,
                pct(&r.progress)
            ));
        }
        if reviewers.len() > 8 {
            lines.push(format!("    … and {} more", reviewers.len() - 8));
        }
        lines.push("  by team:".into());
        for t in d.by_team.iter().take(8) {
            lines.push(format!(
                "    {:<32} {:>5}/{:<5} {:>3}%",
                clean(&t.team),
                t.progress.decided,
                t.progress.total,
                pct(&t.progress)
            ));
        }
        if d.by_team.len() > 8 {
            lines.push(format!("    … and {} more", d.by_team.len() - 8));
        }
    }
    lines
}

fn verb_ing(v: Verdict) -> &'static str {
    match v {
        Verdict::Certify => "certifying",
        Verdict::Revoke => "revoking",
    }
}

fn on_reviews_loaded(app: &mut App, result: crate::client::ClientResult<ReviewQueue>) {
    let Screen::Reviews(r) = &mut app.screen else {
        return; // the person left the screen meanwhile
    };
    r.loading = false;
    match result {
        Ok(queue) => {
            let keep = r.selected_item().map(|i| i.id);
            let first = r.queue.is_none() || matches!(r.queue, Some(Err(_)));
            r.queue = Some(Ok(queue));
            if !keep.is_some_and(|id| r.select_item(id)) {
                let len = r.flat().len();
                r.selected = r.selected.min(len.saturating_sub(1));
            }
            if first {
                // Start where the work is: the first undecided item.
                r.selected = 0;
                if r.selected_item()
                    .is_some_and(|i| i.decision != Decision::None)
                {
                    advance_to_undecided(r);
                }
            }
        }
        Err(e) => {
            let text = e.to_string();
            // Keep the last good queue on screen; say what failed.
            if !matches!(r.queue, Some(Ok(_))) {
                r.queue = Some(Err(text.clone()));
            }
            app.message = Some((
                Tone::Error,
                format!("loading my reviews failed: {}", clean(&text)),
            ));
            if e.is_unreachable() {
                went_offline(app, &e);
            }
        }
    }
}

/// Moves the cursor to the next undecided item after the current one (wrapping). Stays put when
/// nothing is undecided.
fn advance_to_undecided(r: &mut ReviewsState) {
    let Some(Ok(q)) = &r.queue else {
        return;
    };
    let flat = r.flat();
    let n = flat.len();
    for step in 1..=n {
        let p = (r.selected + step) % n;
        let (a, i) = flat[p];
        if q.agents[a].items[i].decision == Decision::None {
            r.selected = p;
            return;
        }
    }
}

/// Moves one item from one decision to another in a progress count.
fn recount(p: &mut Progress, from: Decision, to: Decision) {
    let (mut c, mut r, mut k) = (p.certified, p.revoked, p.kept);
    for (d, add) in [(from, false), (to, true)] {
        let slot = match d {
            Decision::Certify => &mut c,
            Decision::Revoke => &mut r,
            Decision::Keep => &mut k,
            Decision::None => continue,
        };
        *slot = if add {
            *slot + 1
        } else {
            slot.saturating_sub(1)
        };
    }
    *p = Progress::from_counts(p.total, c, r, k);
}

fn on_decided(
    app: &mut App,
    item_id: i64,
    verdict: Verdict,
    justification: Option<String>,
    result: crate::client::ClientResult<crate::model::review::DecisionOutcome>,
) {
    let outcome = match result {
        Ok(o) => o,
        Err(ClientError::Api {
            status,
            code,
            message,
        }) if status == 422 && code == "justification_required" && justification.is_none() => {
            // The campaign wants a reason: ask for it and send the decision again.
            let Screen::Reviews(r) = &app.screen else {
                return;
            };
            let found = r
                .queue
                .as_ref()
                .and_then(|q| q.as_ref().ok())
                .and_then(|q| {
                    q.agents.iter().find_map(|a| {
                        a.items
                            .iter()
                            .find(|i| i.id == item_id)
                            .map(|i| (a.agent_name.clone(), i.scope.clone()))
                    })
                });
            let (agent_name, scope) = found.unwrap_or_else(|| (String::new(), item_id.to_string()));
            app.overlay = Some(Overlay::Justify(JustifyState {
                item_id,
                verdict,
                agent_name,
                scope,
                why: message,
                text: String::new(),
            }));
            app.message = Some((Tone::Info, "this decision needs a justification".into()));
            return;
        }
        Err(e) => {
            failed(app, "the review decision", &e);
            return;
        }
    };
    let Screen::Reviews(r) = &mut app.screen else {
        return;
    };
    let Some(Ok(q)) = &mut r.queue else {
        return;
    };
    let item = outcome.item;
    let mut moved_on = false;
    for agent in &mut q.agents {
        let Some(slot) = agent.items.iter_mut().find(|i| i.id == item.id) else {
            continue;
        };
        let before = slot.decision;
        let after = item.decision;
        *slot = item.clone();
        recount(&mut agent.progress, before, after);
        if let Some(c) = q.campaigns.iter_mut().find(|c| c.id == agent.campaign_id) {
            recount(&mut c.progress, before, after);
        }
        moved_on = true;
        break;
    }
    let what = match (verdict, outcome.grant_removed, outcome.grant_restored) {
        (Verdict::Revoke, true, _) => "revoked (grant removed)",
        (Verdict::Revoke, false, _) => "revoked",
        (Verdict::Certify, _, true) => "certified (grant restored)",
        (Verdict::Certify, _, false) => "certified",
    };
    app.message = Some(if outcome.changed {
        (Tone::Ok, format!("{what}: {}", clean(&item.scope)))
    } else {
        (
            Tone::Info,
            format!(
                "{} was already {}; nothing changed",
                clean(&item.scope),
                item.decision.as_str()
            ),
        )
    });
    if moved_on && r.selected_item().is_some_and(|i| i.id == item.id) {
        advance_to_undecided(r);
    }
}

/// Registry text, made safe to draw.
fn clean(s: &str) -> String {
    strip_for_terminal(s).into_owned()
}

fn name_of(app: &App, id: &str) -> String {
    match app.inventory.find_scan(id) {
        Some(i) => app.inventory.text(app.inventory.row(i).name).to_string(),
        None => id.to_string(),
    }
}

fn went_offline(app: &mut App, e: &ClientError) {
    let error = match e.status() {
        Some(401) => format!(
            "it refused the API token ({e}); sign in again with `steward login --server {}`",
            app.server_url.trim_end_matches('/')
        ),
        _ => e.to_string(),
    };
    app.link = Link::Offline { error };
}

/// A governance call failed: say so plainly; nothing local has changed.
fn failed(app: &mut App, what: &str, e: &ClientError) {
    if e.is_unreachable() {
        went_offline(app, e);
    }
    if matches!(app.overlay, Some(Overlay::Busy(_))) {
        app.overlay = None;
    }
    app.overlay = Some(Overlay::Notice {
        title: format!("Failed: {what}"),
        lines: vec![
            clean(&e.to_string()),
            String::new(),
            "Nothing was changed in this console; the registry's own state shows at the next sync."
                .into(),
        ],
        tone: Tone::Error,
    });
    app.message = Some((Tone::Error, format!("{what} failed")));
}

fn reload_detail(app: &App, id: &str, fx: &mut Vec<Effect>) {
    if let Screen::Detail(d) = &app.screen
        && d.id == id
    {
        fx.push(Effect::LoadDetail { id: id.to_string() });
    }
}

fn start_sync(app: &mut App, fx: &mut Vec<Effect>) {
    if app.sync_in_flight || app.me.is_none() {
        return;
    }
    app.sync_in_flight = true;
    app.last_sync_attempt = app.now;
    fx.push(Effect::Sync {
        after: app.inventory.cursor,
    });
}

fn on_tick(app: &mut App, now: i64, fx: &mut Vec<Effect>) {
    app.now = now;
    let hour = round_now(now);
    if hour != app.spec.now {
        app.spec.now = hour;
        if app.spec.quick == QuickFilter::Stale {
            refilter(app, fx);
        }
    }
    if app.me.is_none() {
        if !app.me_in_flight && now - app.last_sync_attempt >= RETRY_EVERY {
            app.me_in_flight = true;
            app.last_sync_attempt = now;
            fx.push(Effect::LoadMe);
        }
    } else {
        let every = if app.read_only() {
            RETRY_EVERY
        } else {
            SYNC_EVERY
        };
        if !app.sync_in_flight && now - app.last_sync_attempt >= every {
            start_sync(app, fx);
        }
    }
    if app.cache_dirty && !app.saving && now - app.last_save >= SAVE_EVERY {
        fx.push(save(app));
    }
}

/// Asks for the cache to be written with the current rows.
pub fn save(app: &mut App) -> Effect {
    if app.inventory.synced_at != app.synced_at {
        Arc::make_mut(&mut app.inventory).synced_at = app.synced_at;
    }
    app.saving = true;
    app.cache_dirty = false;
    app.last_save = app.now;
    Effect::SaveCache(app.inventory.clone())
}

/// Submits a filter job for the current spec.
pub fn refilter(app: &mut App, fx: &mut Vec<Effect>) {
    app.generation += 1;
    app.filtering = true;
    let narrow = match &app.view_spec {
        Some(prev) if app.spec.narrows(prev) && app.view_version == app.inventory.version => {
            Some(app.view.clone())
        }
        _ => None,
    };
    fx.push(Effect::Filter(FilterJob {
        generation: app.generation,
        spec: app.spec.clone(),
        inventory: app.inventory.clone(),
        narrow,
    }));
}

fn on_filtered(app: &mut App, outcome: FilterOutcome) {
    if outcome.generation != app.generation {
        return; // an answer to a question nobody is asking any more
    }
    let previous_row = app.selected_row();
    let query_changed = app
        .view_spec
        .as_ref()
        .is_none_or(|s| s.query != outcome.spec.query);
    // A new sort or quick filter starts at the top; fresh data keeps the cursor on its agent.
    let reordered = app
        .view_spec
        .as_ref()
        .is_some_and(|s| s.sort != outcome.spec.sort || s.quick != outcome.spec.quick);
    let position = app.selected;
    app.view = outcome.rows;
    app.view_version = outcome.inventory_version;
    app.view_spec = Some(outcome.spec);
    app.filtering = false;
    app.last_filter_ms = Some(outcome.elapsed_ms);
    app.selected = match (outcome.best, previous_row) {
        (Some(best), _) if query_changed => {
            // A jump to the best match puts it mid-screen, with its neighbours around it.
            let page = views::table_rows(app).max(1);
            if best < app.offset || best >= app.offset + page {
                app.offset = best.saturating_sub(page / 2);
            }
            best
        }
        _ if reordered => {
            app.offset = 0;
            0
        }
        (_, Some(row)) => app.view.iter().position(|&r| r == row).unwrap_or(position),
        _ => position,
    };
    clamp(app);
}

fn clamp(app: &mut App) {
    if app.view.is_empty() {
        app.selected = 0;
    } else if app.selected >= app.view.len() {
        app.selected = app.view.len() - 1;
    }
    keep_visible(app);
}

fn keep_visible(app: &mut App) {
    let page = views::table_rows(app).max(1);
    if app.selected < app.offset {
        app.offset = app.selected;
    } else if app.selected >= app.offset + page {
        app.offset = app.selected + 1 - page;
    }
    let max_offset = app.view.len().saturating_sub(page);
    app.offset = app.offset.min(max_offset);
}

fn move_by(app: &mut App, delta: isize) {
    if let Screen::Reviews(r) = &mut app.screen {
        let len = r.flat().len();
        if len > 0 {
            r.selected = (r.selected as isize + delta).clamp(0, len as isize - 1) as usize;
        }
        return;
    }
    if let Screen::Detail(d) = &mut app.screen {
        let max = d.max_scroll.get() as isize;
        d.scroll = (d.scroll as isize + delta).clamp(0, max) as u16;
        return;
    }
    let len = app.view.len();
    if len == 0 {
        return;
    }
    app.selected = (app.selected as isize + delta).clamp(0, len as isize - 1) as usize;
    keep_visible(app);
}

fn on_key(app: &mut App, key: KeyEvent, fx: &mut Vec<Effect>) {
    if key.kind == crossterm::event::KeyEventKind::Release {
        return;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        on_command(app, Command::Quit, fx);
        return;
    }
    // Terminals send Alt+x as ESC x, so a quick "Esc, then x" arrives as Alt+x. Unless Alt+x is
    // bound, it means just that: Esc, then x.
    if key.modifiers.contains(KeyModifiers::ALT)
        && matches!(key.code, KeyCode::Char(_))
        && app
            .keymap
            .lookup_in(KeySpec::from_event(&key), app.key_scope())
            .is_none()
    {
        on_key(app, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE), fx);
        let mut plain = key;
        plain.modifiers.remove(KeyModifiers::ALT);
        on_key(app, plain, fx);
        return;
    }
    match app.overlay.take() {
        None => {
            let spec = KeySpec::from_event(&key);
            if let Some(command) = app.keymap.lookup_in(spec, app.key_scope()) {
                on_command(app, command, fx);
            }
        }
        Some(overlay) => {
            let back = overlay_key(app, overlay, key, fx);
            if app.overlay.is_none() {
                app.overlay = back;
            }
        }
    }
}

/// Edits a one-line text field; true when the key was an edit.
fn edit(text: &mut String, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u') if ctrl => text.clear(),
        KeyCode::Char('w') if ctrl => {
            let trimmed = text.trim_end().len();
            text.truncate(trimmed);
            let cut = text.rfind(' ').map_or(0, |i| i + 1);
            text.truncate(cut);
        }
        KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
            if text.chars().count() < 200 {
                text.push(c)
            }
        }
        KeyCode::Backspace => {
            text.pop();
        }
        _ => return false,
    }
    true
}

/// Checks the campaign form and builds the request; an error names the field.
fn campaign_request(f: &CampaignForm) -> Result<CreateCampaign, String> {
    use crate::model::text::{check_email, check_line};
    let name = f.name.trim();
    if name.is_empty() {
        return Err("name: type a name for the campaign".into());
    }
    check_line("name", name, 128).map_err(|e| e.to_string())?;
    let due = chrono::NaiveDate::parse_from_str(f.due.trim(), "%Y-%m-%d")
        .map_err(|_| format!("due date: {:?} is not a date like 2027-03-31", f.due.trim()))?;
    // Due at the end of that day, UTC.
    let due_at = due
        .and_hms_opt(23, 59, 59)
        .expect("23:59:59 is a valid time")
        .and_utc();
    let team = f.team.trim();
    let team = if team.is_empty() {
        None
    } else {
        check_line("team filter", team, 64).map_err(|e| e.to_string())?;
        Some(team.to_string())
    };
    let fallback = f.fallback.trim();
    let fallback = if fallback.is_empty() {
        None
    } else {
        check_email(fallback).map_err(|e| format!("fallback reviewer: {e}"))?;
        Some(fallback.to_string())
    };
    Ok(CreateCampaign {
        name: name.to_string(),
        filter: CampaignFilter {
            team,
            ..CampaignFilter::default()
        },
        starts_at: None,
        due_at,
        grace_days: None,
        recurrence: if f.quarterly {
            Recurrence::Quarterly
        } else {
            Recurrence::None
        },
        fallback_reviewer: fallback,
        reminders: ReminderSchedule::default(),
        no_response: f.no_response,
        justification: JustificationPolicy::default(),
        lookback_days: None,
    })
}

/// A key in the campaign form; returns the form to keep open.
fn campaign_form_key(
    app: &mut App,
    mut f: Box<CampaignForm>,
    key: KeyEvent,
    fx: &mut Vec<Effect>,
) -> Option<Overlay> {
    let fields = CampaignField::ALL;
    let at = fields.iter().position(|&x| x == f.focus).unwrap_or(0);
    let backward = key.code == KeyCode::BackTab
        || (key.code == KeyCode::Tab && key.modifiers.contains(KeyModifiers::SHIFT));
    match key.code {
        KeyCode::Esc => {
            f.error = None;
            app.campaign_draft = Some(f);
            app.message = Some((
                Tone::Info,
                "cancelled; nothing created (the draft reopens with its key)".into(),
            ));
            return None;
        }
        KeyCode::Enter => match campaign_request(&f) {
            Ok(request) => {
                f.error = None;
                app.message = Some((Tone::Info, format!("creating {}…", clean(&request.name))));
                app.overlay = Some(Overlay::Busy(format!("creating {}…", clean(&request.name))));
                fx.push(Effect::CreateCampaign {
                    request: Box::new(request),
                    draft: f,
                });
                return None;
            }
            Err(why) => {
                app.message = Some((Tone::Error, why.clone()));
                f.error = Some(why);
            }
        },
        KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
            let back = backward || key.code == KeyCode::Up;
            let n = fields.len();
            f.focus = fields[if back { (at + n - 1) % n } else { (at + 1) % n }];
        }
        KeyCode::Left | KeyCode::Right | KeyCode::Char(' ') if !f.focus.is_text() => {
            let forward = key.code != KeyCode::Left;
            match f.focus {
                CampaignField::NoResponse => {
                    let all = [
                        NoResponse::Keep,
                        NoResponse::Revoke,
                        NoResponse::Recommendation,
                    ];
                    let i = all.iter().position(|&r| r == f.no_response).unwrap_or(0);
                    f.no_response = all[if forward { (i + 1) % 3 } else { (i + 2) % 3 }];
                }
                _ => f.quarterly = !f.quarterly,
            }
        }
        _ => {
            if let Some(text) = f.text_mut() {
                edit(text, &key);
            }
        }
    }
    Some(Overlay::CampaignForm(f))
}

/// Handles a key inside an overlay; returns the overlay to keep (None closes it).
fn overlay_key(
    app: &mut App,
    overlay: Overlay,
    key: KeyEvent,
    fx: &mut Vec<Effect>,
) -> Option<Overlay> {
    match overlay {
        Overlay::FilterInput => match key.code {
            KeyCode::Esc => {
                app.spec.query.clear();
                refilter(app, fx);
                None
            }
            KeyCode::Enter => None,
            KeyCode::Up => {
                move_by(app, -1);
                Some(Overlay::FilterInput)
            }
            KeyCode::Down => {
                move_by(app, 1);
                Some(Overlay::FilterInput)
            }
            _ => {
                let mut q = std::mem::take(&mut app.spec.query);
                let changed = edit(&mut q, &key);
                app.spec.query = q;
                if changed {
                    refilter(app, fx);
                }
                Some(Overlay::FilterInput)
            }
        },
        Overlay::CommandLine {
            mut text,
            mut history_pos,
        } => match key.code {
            KeyCode::Esc => None,
            KeyCode::Enter => {
                let line = text.trim().to_string();
                if !line.is_empty() {
                    app.history.retain(|h| h != &line);
                    app.history.push(line.clone());
                    run_command_line(app, &line, fx);
                }
                None
            }
            KeyCode::Up | KeyCode::Down => {
                if !app.history.is_empty() {
                    let last = app.history.len() - 1;
                    history_pos = match (key.code, history_pos) {
                        (KeyCode::Up, None) => Some(last),
                        (KeyCode::Up, Some(p)) => Some(p.saturating_sub(1)),
                        (_, Some(p)) if p < last => Some(p + 1),
                        _ => None,
                    };
                    text = history_pos.map_or_else(String::new, |p| app.history[p].clone());
                }
                Some(Overlay::CommandLine { text, history_pos })
            }
            _ => {
                if key.code == KeyCode::Backspace && text.is_empty() {
                    return None;
                }
                edit(&mut text, &key);
                Some(Overlay::CommandLine { text, history_pos })
            }
        },
        Overlay::Picker(mut p) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Enter => {
                let Some(entry) = p.entries.get(p.selected).filter(|e| e.offered) else {
                    app.message =
                        Some((Tone::Error, "no one to assign: type part of a name".into()));
                    return Some(Overlay::Picker(p));
                };
                let owner = app.inventory.people()[entry.person].email.clone();
                app.message = Some((
                    Tone::Info,
                    format!("assigning {} to {}…", clean(&owner), clean(&p.agent_name)),
                ));
                fx.push(Effect::SetOwner {
                    id: p.agent_id.clone(),
                    owner,
                });
                None
            }
            KeyCode::Up | KeyCode::Down => {
                let forward = key.code == KeyCode::Down;
                p.selected = next_offered(&p.entries, p.selected, forward);
                Some(Overlay::Picker(p))
            }
            _ => {
                if edit(&mut p.query, &key) {
                    fill_picker(app, &mut p);
                }
                Some(Overlay::Picker(p))
            }
        },
        Overlay::Help { scroll } => match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') | KeyCode::Char('?') => None,
            KeyCode::Down | KeyCode::Char('j') => Some(Overlay::Help { scroll: scroll + 1 }),
            KeyCode::Up | KeyCode::Char('k') => Some(Overlay::Help {
                scroll: scroll.saturating_sub(1),
            }),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(Overlay::Help {
                scroll: scroll + 10,
            }),
            KeyCode::PageUp => Some(Overlay::Help {
                scroll: scroll.saturating_sub(10),
            }),
            _ => Some(Overlay::Help { scroll }),
        },
        Overlay::Busy(text) => match key.code {
            KeyCode::Esc => None,
            _ => Some(Overlay::Busy(text)),
        },
        Overlay::Notice { title, lines, tone } => match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') | KeyCode::Char(' ') => None,
            _ => Some(Overlay::Notice { title, lines, tone }),
        },
        Overlay::RevokeResult(mut r) => {
            if r.note_state != NoteState::Editing {
                return match key.code {
                    KeyCode::Esc | KeyCode::Enter => None,
                    _ => Some(Overlay::RevokeResult(r)),
                };
            }
            match key.code {
                KeyCode::Esc => None,
                KeyCode::Enter => {
                    let text = r.note.trim().to_string();
                    if text.is_empty() {
                        return None;
                    }
                    r.note_state = NoteState::Sending;
                    fx.push(Effect::AddNote {
                        seq: r.outcome.audit_seq,
                        text,
                    });
                    Some(Overlay::RevokeResult(r))
                }
                _ => {
                    edit(&mut r.note, &key);
                    Some(Overlay::RevokeResult(r))
                }
            }
        }
        Overlay::Confirm(state) => confirm_key(app, state, key, fx),
        Overlay::CampaignForm(f) => campaign_form_key(app, f, key, fx),
        Overlay::Justify(mut j) => match key.code {
            KeyCode::Esc => {
                app.message = Some((Tone::Info, "cancelled; nothing decided".into()));
                None
            }
            KeyCode::Enter => {
                let text = j.text.trim().to_string();
                if text.is_empty() {
                    app.message = Some((
                        Tone::Error,
                        "type a justification first (esc cancels)".into(),
                    ));
                    return Some(Overlay::Justify(j));
                }
                app.message = Some((
                    Tone::Info,
                    format!("{} {}…", verb_ing(j.verdict), clean(&j.scope)),
                ));
                fx.push(Effect::Decide {
                    item_id: j.item_id,
                    verdict: j.verdict,
                    justification: Some(text),
                });
                None
            }
            _ => {
                edit(&mut j.text, &key);
                Some(Overlay::Justify(j))
            }
        },
    }
}

fn confirm_key(
    app: &mut App,
    state: ConfirmState,
    key: KeyEvent,
    fx: &mut Vec<Effect>,
) -> Option<Overlay> {
    if key.code == KeyCode::Esc {
        app.message = Some((Tone::Info, "cancelled; nothing changed".into()));
        return None;
    }
    macro_rules! handle {
        ($pending:ident, $variant:ident, $effect:expr, $busy:expr) => {{
            let mut $pending = $pending;
            match (&mut $pending.confirmation, key.code) {
                (
                    Confirmation::Buttons { confirm_focused },
                    KeyCode::Left | KeyCode::Right | KeyCode::Tab | KeyCode::BackTab,
                ) => {
                    *confirm_focused = !*confirm_focused;
                }
                (Confirmation::Typed { typed, .. }, _) if key.code != KeyCode::Enter => {
                    edit(typed, &key);
                }
                (_, KeyCode::Enter) => {
                    return match $pending.accept() {
                        Ok(confirmed) => {
                            app.message = Some((Tone::Info, $busy(confirmed.order())));
                            fx.push($effect(confirmed));
                            None
                        }
                        Err(pending)
                            if matches!(pending.confirmation, Confirmation::Buttons { .. }) =>
                        {
                            app.message = Some((Tone::Info, "cancelled; nothing changed".into()));
                            None
                        }
                        Err(pending) => {
                            app.message = Some((
                                Tone::Error,
                                "the typed text does not match; nothing changed".into(),
                            ));
                            Some(Overlay::Confirm(ConfirmState::$variant(pending)))
                        }
                    };
                }
                _ => {}
            }
            Some(Overlay::Confirm(ConfirmState::$variant($pending)))
        }};
    }
    match state {
        ConfirmState::Reinstate(p) => handle!(
            p,
            Reinstate,
            Effect::Reinstate,
            |o: &ReinstateOrder| format!("reinstating {}…", clean(&o.name))
        ),
        ConfirmState::Decommission(p) => handle!(
            p,
            Decommission,
            Effect::Decommission,
            |o: &DecommissionOrder| format!("decommissioning {}…", clean(&o.name))
        ),
        ConfirmState::CloseCampaign(p) => handle!(
            p,
            CloseCampaign,
            Effect::CloseCampaign,
            |o: &CloseCampaignOrder| format!("closing {}…", clean(&o.name))
        ),
        ConfirmState::BulkRevoke(p) => handle!(
            p,
            BulkRevoke,
            Effect::BulkRevoke,
            |o: &BulkRevokeOrder| format!("revoking {} agents…", o.agents.len())
        ),
    }
}

fn next_offered(entries: &[PickEntry], from: usize, forward: bool) -> usize {
    let n = entries.len();
    let mut i = from;
    for _ in 0..n {
        i = if forward {
            (i + 1).min(n.saturating_sub(1))
        } else {
            i.saturating_sub(1)
        };
        if entries.get(i).is_some_and(|e| e.offered) {
            return i;
        }
    }
    from
}

/// Fills the owner picker: offered people best match first, then people who left (marked).
fn fill_picker(app: &App, p: &mut PickerState) {
    let matcher = SkimMatcherV2::default().ignore_case();
    let query = p.query.trim();
    let mut scored: Vec<(bool, i64, usize)> = app
        .inventory
        .people()
        .iter()
        .enumerate()
        .filter_map(|(i, person)| {
            let text = format!("{} {}", person.display_name, person.email);
            let score = if query.is_empty() {
                0
            } else {
                matcher.fuzzy_match(&text, query)?
            };
            Some((person.active, score, i))
        })
        .collect();
    let people = app.inventory.people();
    scored.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then_with(|| people[a.2].display_name.cmp(&people[b.2].display_name))
    });
    p.entries = scored
        .into_iter()
        .map(|(active, _, person)| PickEntry {
            person,
            offered: active,
        })
        .collect();
    p.selected = p.entries.iter().position(|e| e.offered).unwrap_or(0);
}

fn on_command(app: &mut App, command: Command, fx: &mut Vec<Effect>) {
    let page = views::table_rows(app).max(1) as isize;
    match command {
        Command::Up => move_by(app, -1),
        Command::Down => move_by(app, 1),
        Command::PageUp => move_by(app, -page),
        Command::PageDown => move_by(app, page),
        Command::Top => move_by(app, isize::MIN / 2),
        Command::Bottom => move_by(app, isize::MAX / 2),
        Command::Quit => app.quit = true,
        Command::Help => app.overlay = Some(Overlay::Help { scroll: 0 }),
        Command::CommandLine => {
            app.overlay = Some(Overlay::CommandLine {
                text: String::new(),
                history_pos: None,
            })
        }
        Command::Filter => {
            if !matches!(app.screen, Screen::Inventory) {
                app.screen = Screen::Inventory;
            }
            app.overlay = Some(Overlay::FilterInput);
        }
        Command::Back => match &app.screen {
            Screen::Detail(_) | Screen::Reviews(_) => app.screen = Screen::Inventory,
            Screen::Inventory => {
                if !app.marks.is_empty() {
                    let n = app.marks.len();
                    app.marks.clear();
                    app.message = Some((Tone::Info, format!("{n} marks cleared")));
                } else if !app.spec.query.is_empty() {
                    app.spec.query.clear();
                    refilter(app, fx);
                } else if app.spec.quick != QuickFilter::All {
                    app.spec.quick = QuickFilter::All;
                    refilter(app, fx);
                }
            }
        },
        Command::Open => {
            if let Some(i) = app.selected_row() {
                let id = app.inventory.text(app.inventory.row(i).id).to_string();
                open_detail(app, id, Some(i), fx);
            }
        }
        Command::Mark => {
            if let Some(i) = app.selected_row() {
                if !app.marks.remove(&i) {
                    app.marks.insert(i);
                }
                move_by(app, 1);
            }
        }
        Command::NextQuickFilter | Command::PrevQuickFilter => {
            let q = app.spec.quick.cycle(command == Command::NextQuickFilter);
            set_quick(app, q, fx);
        }
        Command::Quick(q) => set_quick(app, q, fx),
        Command::Sort(column) => {
            if app.spec.sort.column == column {
                app.spec.sort.descending = !app.spec.sort.descending;
            } else {
                app.spec.sort.column = column;
                app.spec.sort.descending = false;
            }
            refilter(app, fx);
        }
        Command::Refresh => {
            if let Screen::Reviews(r) = &mut app.screen
                && !r.loading
            {
                r.loading = true;
                fx.push(Effect::LoadReviews);
            }
            if app.me.is_none() {
                if !app.me_in_flight {
                    app.me_in_flight = true;
                    fx.push(Effect::LoadMe);
                }
            } else {
                start_sync(app, fx);
                app.sync_requested = true;
            }
            app.message = Some((Tone::Info, "syncing with the registry…".into()));
        }
        Command::Reviews => {
            if let Screen::Reviews(r) = &mut app.screen {
                if !r.loading {
                    r.loading = true;
                    fx.push(Effect::LoadReviews);
                }
                return;
            }
            app.screen = Screen::Reviews(Box::new(ReviewsState {
                loading: true,
                ..Default::default()
            }));
            fx.push(Effect::LoadReviews);
        }
        Command::CertifyScope | Command::RevokeScope => {
            let verdict = if command == Command::CertifyScope {
                Verdict::Certify
            } else {
                Verdict::Revoke
            };
            let Screen::Reviews(r) = &app.screen else {
                return;
            };
            let (Some(agent), Some(item)) = (r.selected_agent(), r.selected_item()) else {
                return;
            };
            let required = match verdict {
                Verdict::Certify => item.justification_required.certify,
                Verdict::Revoke => item.justification_required.revoke,
            };
            if required {
                app.overlay = Some(Overlay::Justify(JustifyState {
                    item_id: item.id,
                    verdict,
                    agent_name: agent.agent_name.clone(),
                    scope: item.scope.clone(),
                    why: item.diff.recommendation.reason.clone(),
                    text: String::new(),
                }));
                return;
            }
            app.message = Some((
                Tone::Info,
                format!("{} {}…", verb_ing(verdict), clean(&item.scope)),
            ));
            fx.push(Effect::Decide {
                item_id: item.id,
                verdict,
                justification: None,
            });
        }
        Command::CertifyUnchanged => {
            let Screen::Reviews(r) = &app.screen else {
                return;
            };
            let Some(agent) = r.selected_agent() else {
                return;
            };
            let n = agent.items.iter().filter(|i| i.bulk_certifiable).count();
            if n == 0 {
                app.message = Some((
                    Tone::Error,
                    format!(
                        "{} has no undecided scope that is used and unchanged; decide the others with c or x",
                        clean(&agent.agent_name)
                    ),
                ));
                return;
            }
            app.message = Some((
                Tone::Info,
                format!(
                    "certifying {n} used, unchanged scopes of {}…",
                    clean(&agent.agent_name)
                ),
            ));
            fx.push(Effect::CertifyUnchanged {
                campaign_id: agent.campaign_id.clone(),
                agent_id: agent.agent_id.clone(),
            });
        }
        Command::CampaignProgress | Command::CloseCampaign => {
            if let Err(why) = app.permits(command, None) {
                app.message = Some((Tone::Error, why));
                return;
            }
            let purpose = if command == Command::CloseCampaign {
                CampaignPurpose::Close
            } else {
                CampaignPurpose::Progress
            };
            app.overlay = Some(Overlay::Busy("reading the open campaigns…".into()));
            fx.push(Effect::LoadCampaigns(purpose));
        }
        Command::NewCampaign => {
            if let Err(why) = app.permits(command, None) {
                app.message = Some((Tone::Error, why));
                return;
            }
            let form = app
                .campaign_draft
                .take()
                .unwrap_or_else(|| Box::new(CampaignForm::new(app.now)));
            app.overlay = Some(Overlay::CampaignForm(form));
        }
        Command::AssignOwner => {
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            if row.is_some_and(|r| r.status == AgentStatus::Decommissioned) {
                app.message = Some((
                    Tone::Error,
                    "a decommissioned agent keeps its last owner".into(),
                ));
                return;
            }
            let mut picker = PickerState {
                agent_id: id,
                agent_name: name,
                query: String::new(),
                entries: Vec::new(),
                selected: 0,
            };
            fill_picker(app, &mut picker);
            app.overlay = Some(Overlay::Picker(picker));
        }
        Command::Revoke => {
            if !app.marks.is_empty() && matches!(app.screen, Screen::Inventory) {
                let agents: Vec<(String, String)> = app
                    .marks
                    .iter()
                    .map(|&i| {
                        let r = app.inventory.row(i);
                        (
                            app.inventory.text(r.id).to_string(),
                            app.inventory.text(r.name).to_string(),
                        )
                    })
                    .collect();
                let expected = format!("revoke {}", agents.len());
                app.overlay = Some(Overlay::Confirm(ConfirmState::BulkRevoke(Pending::typed(
                    BulkRevokeOrder { agents },
                    expected,
                ))));
                return;
            }
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            app.message = Some((Tone::Info, format!("revoking {}…", clean(&name))));
            fx.push(Effect::Revoke { id });
        }
        Command::Reinstate => {
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            if row.is_some_and(|r| r.status != AgentStatus::Suspended) {
                app.message = Some((
                    Tone::Error,
                    "only a suspended agent can be reinstated".into(),
                ));
                return;
            }
            app.overlay = Some(Overlay::Confirm(ConfirmState::Reinstate(Pending::buttons(
                ReinstateOrder { id, name },
            ))));
        }
        Command::Decommission => {
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            if row.is_some_and(|r| r.status == AgentStatus::Decommissioned) {
                app.message = Some((Tone::Error, "already decommissioned".into()));
                return;
            }
            app.overlay = Some(Overlay::Busy(format!(
                "asking the registry what decommissioning {} would do…",
                clean(&name)
            )));
            fx.push(Effect::LoadPlan { id });
        }
    }
}

fn set_quick(app: &mut App, q: QuickFilter, fx: &mut Vec<Effect>) {
    app.screen = Screen::Inventory;
    if app.spec.quick != q {
        app.spec.quick = q;
        app.selected = 0;
        app.offset = 0;
        refilter(app, fx);
    }
}

fn open_detail(app: &mut App, id: String, row: Option<u32>, fx: &mut Vec<Effect>) {
    app.screen = Screen::Detail(Box::new(DetailState {
        id: id.clone(),
        row,
        detail: None,
        audit: None,
        tokens: None,
        scroll: 0,
        max_scroll: std::cell::Cell::new(0),
    }));
    fx.push(Effect::LoadDetail { id });
}

/// The `:` commands, for the help screen and the command line's hint.
pub const COMMANDS: [(&str, &str); 6] = [
    (":unowned :mine :all", "quick filters, as 1-7"),
    (":suspended :decommissioned", "also :static :stale"),
    (":agent NAME", "open an agent by name or id"),
    (":theme NAME", "switch theme; alone, lists"),
    (":help", "this help"),
    (":q", "quit"),
];

/// `:` commands.
pub fn run_command_line(app: &mut App, line: &str, fx: &mut Vec<Effect>) {
    let (word, rest) = line
        .trim()
        .trim_start_matches(':')
        .split_once(char::is_whitespace)
        .map_or((line.trim().trim_start_matches(':'), ""), |(w, r)| {
            (w, r.trim())
        });
    if let Some(q) = QuickFilter::parse(word) {
        set_quick(app, q, fx);
        return;
    }
    match word {
        "q" | "quit" => app.quit = true,
        "help" => app.overlay = Some(Overlay::Help { scroll: 0 }),
        "agent" => {
            if rest.is_empty() {
                app.message = Some((Tone::Error, ":agent needs a name or an id".into()));
                return;
            }
            match find_agent(app, rest) {
                Some(row) => {
                    if !app.spec.query.is_empty() {
                        app.spec.query.clear();
                        refilter(app, fx);
                    }
                    let id = app.inventory.text(app.inventory.row(row).id).to_string();
                    open_detail(app, id, Some(row), fx);
                }
                None => {
                    app.message = Some((Tone::Error, format!("no agent matches {:?}", clean(rest))))
                }
            }
        }
        "theme" => {
            if rest.is_empty() {
                app.message = Some((
                    Tone::Info,
                    format!(
                        "theme {}; available: {}",
                        app.theme.name,
                        super::config::theme_names(&app.config_dir).join(", ")
                    ),
                ));
                return;
            }
            match super::config::load_theme(&app.config_dir, rest) {
                Ok(theme) => {
                    app.theme = if app.no_color {
                        theme.without_colors()
                    } else {
                        theme
                    };
                    app.message = Some((
                        Tone::Ok,
                        if app.no_color {
                            format!("theme {rest} (without colours: NO_COLOR is set)")
                        } else {
                            format!("theme {rest}")
                        },
                    ));
                }
                Err(super::config::ThemeLookup::Unknown(m)) => app.message = Some((Tone::Error, m)),
                Err(super::config::ThemeLookup::Broken(e)) => {
                    app.message = Some((Tone::Error, e.to_string()))
                }
            }
        }
        _ => {
            app.message = Some((
                Tone::Error,
                format!(
                    "unknown command {:?}; try :unowned :mine :all :suspended :decommissioned \
                     :static :stale :agent NAME :theme NAME :help :q",
                    clean(word)
                ),
            ))
        }
    }
}

/// An agent's row by exact id, exact name (any case), or else the best fuzzy name match.
fn find_agent(app: &App, text: &str) -> Option<u32> {
    let inv = &app.inventory;
    let visible = || (0..inv.rows().len() as u32).filter(|&i| !inv.row(i).hidden);
    if let Some(i) = inv.find_scan(text) {
        return Some(i);
    }
    if let Some(i) = visible().find(|&i| inv.text(inv.row(i).name).eq_ignore_ascii_case(text)) {
        return Some(i);
    }
    let matcher = SkimMatcherV2::default().ignore_case();
    visible()
        .filter_map(|i| {
            matcher
                .fuzzy_match(inv.text(inv.row(i).name), text)
                .map(|s| (s, i))
        })
        .max_by_key(|&(s, i)| (s, std::cmp::Reverse(i)))
        .map(|(_, i)| i)
}
