//! The reviews screen's rules: the cursor never moves past undecided work, `C` acts only on the
//! agent on screen, decisions and progress are the registry's (the queue is reloaded after
//! each), and the last decision sums up.

use super::{clean, failed, went_offline};
use crate::client::{ClientError, ClientResult};
use crate::console::action::{AcceptOrder, Action, Effect, Pending, ReassignOrder, SuspendOrder};
use crate::console::app::{App, Justify, Overlay, RequiredText, ReviewsState, Screen, Tone};
use crate::console::layout;
use crate::console::overlays::confirm::ConfirmState;
use crate::console::overlays::notice::Notice;
use crate::console::overlays::picker::PickerState;
use crate::console::runtime::{REVIEW_MAX, REVIEW_PAGE};
use crate::console::words::due_text;
use crate::model::review::{Decision, DecisionOutcome, ReviewQueue, Verdict};

pub fn verb_ing(v: Verdict) -> &'static str {
    match v {
        Verdict::Certify => "certifying",
        Verdict::Revoke => "revoking",
    }
}

pub(super) fn on_answer(app: &mut App, action: Action, fx: &mut Vec<Effect>) {
    match action {
        Action::ReviewsLoaded(result) => on_reviews_loaded(app, result, fx),
        Action::Decided {
            item_id,
            verdict,
            justification,
            result,
        } => on_decided(app, item_id, verdict, justification, result, fx),
        Action::AcceptPreviewed {
            campaign_id,
            campaign_name,
            q,
            agent_ids,
            result,
        } => on_accept_previewed(app, campaign_id, campaign_name, q, agent_ids, result),
        Action::RecommendationsAccepted(result) => on_accepted(app, result, fx),
        Action::Reassigned { order, result } => on_reassigned(app, order, result, fx),
        Action::BulkCertified { agent_id, result } => match result {
            Ok(outcome) => {
                let page = layout::review_agent_rows(app);
                let Screen::Reviews(r) = &mut app.screen else {
                    return;
                };
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
                // The registry certified these: show them so at once; the counts come with
                // the reload.
                if let Some(Ok(q)) = &mut r.queue
                    && let Some(agent) = q.agents.iter_mut().find(|a| a.agent_id == agent_id)
                {
                    for item in &mut agent.items {
                        if outcome.certified.contains(&item.id) {
                            item.decision = Decision::Certify;
                            item.bulk_certifiable = false;
                        }
                    }
                }
                r.deciding = true;
                if r.selected_item()
                    .is_some_and(|i| i.decision != Decision::None)
                {
                    advance(r, page);
                }
                reload(r, fx);
            }
            Err(e) => failed(app, "certifying the unchanged scopes", &e),
        },
        _ => {}
    }
}

/// Asks for the queue again. While an answer is on its way it may predate the decision just
/// made: that answer is then dropped and the queue asked for once more.
pub(crate) fn reload(r: &mut ReviewsState, fx: &mut Vec<Effect>) {
    if r.loading {
        r.stale = true;
    } else {
        r.loading = true;
        fx.push(Effect::LoadReviews(r.query()));
    }
}

/// Paging: when the cursor comes within a few agents of the end of what is loaded and the
/// registry has more, ask for one more page.
pub(crate) fn maybe_load_more(r: &mut ReviewsState, fx: &mut Vec<Effect>) {
    let Some(Ok(q)) = &r.queue else {
        return;
    };
    let here = r.at().map_or(0, |(a, _)| a);
    let loaded = q.agents.len();
    if q.next_offset.is_some() && here + 5 >= loaded && r.limit < REVIEW_MAX && !r.loading {
        r.limit = (loaded as u32 + REVIEW_PAGE).min(REVIEW_MAX);
        reload(r, fx);
    }
}

/// `s`: the next order (due → risk → team → owner), asked of the registry.
pub(super) fn cycle_sort(app: &mut App, fx: &mut Vec<Effect>) {
    let Screen::Reviews(r) = &mut app.screen else {
        return;
    };
    r.sort = r.sort.next();
    let sort = r.sort.as_str();
    reload(r, fx);
    app.message = Some((Tone::Info, format!("sorted by {sort}")));
}

/// `space`: mark or unmark the agent on screen for `Y`, then go to the next agent's first item.
pub(super) fn toggle_mark(app: &mut App) {
    let page = layout::review_agent_rows(app);
    let Screen::Reviews(r) = &mut app.screen else {
        return;
    };
    let Some(agent) = r.selected_agent() else {
        return;
    };
    let key = (agent.campaign_id.clone(), agent.agent_id.clone());
    let name = clean(&agent.agent_name);
    let here = r.at().map_or(0, |(a, _)| a);
    let marked = !r.marks.remove(&key);
    if marked {
        r.marks.insert(key);
    }
    // The next agent, on its first undecided item (else its first); the last agent stays.
    let flat = r.flat();
    let next = match &r.queue {
        Some(Ok(q)) => flat
            .iter()
            .map(|&(a, _)| a)
            .find(|&a| a > here)
            .and_then(|na| {
                flat.iter()
                    .position(|&(a, i)| a == na && q.agents[a].items[i].decision == Decision::None)
                    .or_else(|| flat.iter().position(|&(a, _)| a == na))
            }),
        _ => None,
    };
    if let Some(p) = next {
        r.select(p, page);
    }
    let n = r.marks.len();
    app.message = Some((
        Tone::Info,
        format!(
            "{} {name}: {n} agent{} marked; Y accepts their recommendations",
            if marked { "marked" } else { "unmarked" },
            if n == 1 { "" } else { "s" },
        ),
    ));
}

/// `Y`: accept the recommendations of the marked agents, or with none marked of the filtered
/// queue (every agent the filter matches, on every page), in the campaign of the agent on
/// screen. The registry counts first (a dry run); the confirmation shows its counts and asks
/// for the count typed.
pub(super) fn accept_filtered(app: &mut App, fx: &mut Vec<Effect>) {
    let Screen::Reviews(r) = &app.screen else {
        return;
    };
    if !r.may_decide() {
        app.message = Some((Tone::Error, READ_ONLY.into()));
        return;
    }
    let Some(Ok(q)) = &r.queue else {
        return;
    };
    if !r.marks.is_empty() {
        // The bulk route decides within one campaign: the marks must be of one.
        let campaigns: std::collections::BTreeSet<&str> =
            r.marks.iter().map(|(c, _)| c.as_str()).collect();
        if campaigns.len() > 1 {
            app.message = Some((
                Tone::Error,
                format!(
                    "the marked agents are in {} campaigns; Y accepts one campaign at a time (esc clears the marks)",
                    campaigns.len()
                ),
            ));
            return;
        }
        let campaign_id = campaigns.into_iter().next().unwrap_or_default().to_string();
        let campaign_name = q
            .campaigns
            .iter()
            .find(|c| c.id == campaign_id)
            .map_or_else(|| campaign_id.clone(), |c| c.name.clone());
        let agent_ids = r.marks.iter().map(|(_, a)| a.clone()).collect();
        app.message = Some((
            Tone::Info,
            "counting what the recommendations decide for the marked agents…".into(),
        ));
        fx.push(Effect::PreviewAccept {
            campaign_id,
            campaign_name,
            q: None,
            agent_ids,
        });
        return;
    }
    let campaign = r
        .selected_agent()
        .and_then(|a| q.campaigns.iter().find(|c| c.id == a.campaign_id))
        .or(q.campaigns.first());
    let Some(c) = campaign else {
        app.message = Some((Tone::Info, "nothing to accept: no open campaign".into()));
        return;
    };
    let filter = r.filter.trim();
    let q = (!filter.is_empty()).then(|| filter.to_string());
    app.message = Some((
        Tone::Info,
        "counting what the recommendations decide…".into(),
    ));
    fx.push(Effect::PreviewAccept {
        campaign_id: c.id.clone(),
        campaign_name: c.name.clone(),
        q,
        agent_ids: Vec::new(),
    });
}

/// What the console says when the registry lets the person read the items but not decide.
pub const READ_ONLY: &str =
    "read-only: the registry lets you read every review item, not decide them";

/// What the console says when the queue says its items may not be reassigned.
pub const NO_REASSIGN: &str = "you may not reassign review items (admins do), says the registry";

/// `a`: choose another reviewer for the selected item (tab in the picker: all the agent's
/// items). Offered only when the queue says the caller may reassign; the registry decides the
/// call anyway.
pub(super) fn reassign(app: &mut App) {
    if let Err(why) = app.permits(crate::console::keymap::Command::Reassign, None) {
        app.message = Some((Tone::Error, why));
        return;
    }
    let Screen::Reviews(r) = &app.screen else {
        return;
    };
    let (Some(agent), Some(item)) = (r.selected_agent(), r.selected_item()) else {
        app.message = Some((Tone::Info, "nothing to reassign".into()));
        return;
    };
    let order = ReassignOrder {
        campaign_id: agent.campaign_id.clone(),
        agent_id: agent.agent_id.clone(),
        agent_name: agent.agent_name.clone(),
        item_id: item.id,
        scope: item.scope.clone(),
        current: item.reviewer.clone(),
        agent_items: agent.items.len(),
        whole_agent: false,
        reviewer: String::new(),
    };
    app.overlay = Some(Overlay::Picker(PickerState::for_reviewer(app, order)));
}

fn on_reassigned(
    app: &mut App,
    order: ReassignOrder,
    result: ClientResult<crate::model::review::ReassignOutcome>,
    fx: &mut Vec<Effect>,
) {
    let out = match result {
        Ok(o) => o,
        Err(e) => {
            let what = if order.whole_agent {
                format!("reassigning the items of {}", clean(&order.agent_name))
            } else {
                format!(
                    "reassigning {} of {}",
                    clean(&order.scope),
                    clean(&order.agent_name)
                )
            };
            failed(app, &what, &e);
            return;
        }
    };
    let who = app
        .inventory
        .person(&out.reviewer)
        .map_or(out.reviewer.clone(), |p| p.display_name.clone());
    app.message = Some(match out.reassigned.len() {
        0 => (
            Tone::Info,
            format!(
                "nothing moved: {} already reviews {}",
                clean(&who),
                if order.whole_agent {
                    format!("every item of {}", clean(&order.agent_name))
                } else {
                    clean(&order.scope)
                }
            ),
        ),
        n => (
            Tone::Ok,
            format!(
                "{n} item{} of {} now reviewed by {} <{}>",
                if n == 1 { "" } else { "s" },
                clean(&order.agent_name),
                clean(&who),
                clean(&out.reviewer)
            ),
        ),
    });
    if let Screen::Reviews(r) = &mut app.screen {
        reload(r, fx);
    }
}

fn on_accept_previewed(
    app: &mut App,
    campaign_id: String,
    campaign_name: String,
    q: Option<String>,
    agent_ids: Vec<String>,
    result: ClientResult<crate::model::review::AcceptOutcome>,
) {
    let out = match result {
        Ok(o) => o,
        Err(e) => return failed(app, "counting the recommendations", &e),
    };
    let items = out.decided.len() as u64;
    if items == 0 {
        app.message = Some((
            Tone::Info,
            format!(
                "nothing to accept: no undecided item{} is yours to decide",
                if !agent_ids.is_empty() {
                    " of the marked agents"
                } else if q.is_some() {
                    " matching the filter"
                } else {
                    ""
                }
            ),
        ));
        return;
    }
    let order = AcceptOrder {
        campaign_id,
        campaign_name,
        q,
        agent_ids,
        items,
        certify: out.certify,
        revoke: out.revoke,
        agents: out.agents,
        skipped: out.skipped.len() as u64,
    };
    app.overlay = Some(Overlay::Confirm(ConfirmState::AcceptRecommendations(
        Pending::typed(order, items.to_string()),
    )));
}

fn on_accepted(
    app: &mut App,
    result: ClientResult<crate::model::review::AcceptOutcome>,
    fx: &mut Vec<Effect>,
) {
    let out = match result {
        Ok(o) => o,
        Err(e) => return failed(app, "accepting the recommendations", &e),
    };
    let mut text = format!(
        "accepted: {} certified, {} revoked over {} agents",
        out.certify, out.revoke, out.agents
    );
    if !out.skipped.is_empty() {
        text.push_str(&format!(
            "; {} skipped (decide them by hand)",
            out.skipped.len()
        ));
    }
    if !out.refused.is_empty() {
        text.push_str(&format!("; {} refused", out.refused.len()));
    }
    app.message = Some((Tone::Ok, text));
    if let Screen::Reviews(r) = &mut app.screen {
        // The marked agents are decided: the marks did their job.
        r.marks.clear();
        r.deciding = true;
        reload(r, fx);
    }
}

fn on_reviews_loaded(app: &mut App, result: ClientResult<ReviewQueue>, fx: &mut Vec<Effect>) {
    let page = layout::review_agent_rows(app);
    let Screen::Reviews(r) = &mut app.screen else {
        return; // the person left the screen meanwhile
    };
    r.loading = false;
    if std::mem::take(&mut r.stale) && matches!(r.queue, Some(Ok(_))) {
        // Asked before the latest decision: what is on screen is newer. Ask again.
        reload(r, fx);
        return;
    }
    match result {
        Ok(queue) => {
            let keep = r.selected_item().map(|i| i.id);
            let first = !matches!(r.queue, Some(Ok(_)));
            r.queue = Some(Ok(queue));
            if first || !keep.is_some_and(|id| r.select_item(id, page)) {
                // Start where the work is: the first undecided item.
                r.select(0, page);
                if r.selected_item()
                    .is_some_and(|i| i.decision != Decision::None)
                {
                    advance(r, page);
                }
            }
            if let Some(lines) = r.deciding.then(|| summary(r)).flatten() {
                r.deciding = false;
                if app.overlay.is_none() {
                    app.overlay = Some(Overlay::Notice(Notice {
                        title: "Review done".into(),
                        lines,
                        tone: Tone::Ok,
                    }));
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

/// Once nothing is left to decide: what the person decided (the registry's counts) and where
/// each campaign stands. None while work is left.
fn summary(r: &ReviewsState) -> Option<Vec<String>> {
    let Some(Ok(q)) = &r.queue else {
        return None;
    };
    // The campaigns' counts are the caller's whole queue: a filtered page all decided is not
    // the end of the review.
    if q.agents.iter().any(|a| a.progress.pending > 0)
        || q.campaigns.is_empty()
        || q.campaigns.iter().any(|c| c.progress.pending > 0)
    {
        return None;
    }
    let mut lines = Vec::new();
    for c in &q.campaigns {
        let p = &c.progress;
        lines.push(format!(
            "{}: certified {}, revoked {}, left {} (kept or undecided)",
            clean(&c.name),
            p.certified,
            p.revoked,
            p.kept + p.pending
        ));
        lines.push(format!(
            "  your part: {}/{} decided · {} · closes {}",
            p.decided,
            p.total,
            due_text(c),
            c.closes_at.format("%Y-%m-%d")
        ));
    }
    lines.push(String::new());
    lines.push(
        "Nothing is left for you to decide. Revoked grants are already removed; you may still \
         change a decision until the campaign closes."
            .into(),
    );
    Some(lines)
}

/// Moves the cursor to the next undecided item: first of the agent on screen (after the
/// cursor, then before it), and only when that agent is all decided, of the next agents. Stays
/// put when nothing is undecided.
pub fn advance(r: &mut ReviewsState, agent_page: usize) {
    let Some(Ok(q)) = &r.queue else {
        return;
    };
    let flat = r.flat();
    let n = flat.len();
    let Some((here, _)) = r.at() else {
        return;
    };
    let undecided = |p: usize| {
        let (a, i) = flat[p];
        q.agents[a].items[i].decision == Decision::None
    };
    let start = r.items.selected;
    let same_agent = (1..=n)
        .map(|step| (start + step) % n)
        .find(|&p| flat[p].0 == here && undecided(p));
    let next = same_agent.or_else(|| {
        (1..=n)
            .map(|step| (start + step) % n)
            .find(|&p| undecided(p))
    });
    if let Some(p) = next {
        r.select(p, agent_page);
    }
}

fn on_decided(
    app: &mut App,
    item_id: i64,
    verdict: Verdict,
    justification: Option<String>,
    result: ClientResult<DecisionOutcome>,
    fx: &mut Vec<Effect>,
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
            app.overlay = Some(RequiredText::open(Justify {
                item_id,
                verdict,
                agent_name,
                scope,
                why: message,
            }));
            app.message = Some((Tone::Info, "this decision needs a justification".into()));
            return;
        }
        Err(e) => {
            failed(app, "the review decision", &e);
            return;
        }
    };
    let page = layout::review_agent_rows(app);
    let Screen::Reviews(r) = &mut app.screen else {
        return;
    };
    let Some(Ok(q)) = &mut r.queue else {
        return;
    };
    let item = outcome.item;
    let mut found = false;
    for agent in &mut q.agents {
        if let Some(slot) = agent.items.iter_mut().find(|i| i.id == item.id) {
            *slot = item.clone();
            found = true;
            break;
        }
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
    r.deciding = true;
    if found && r.selected_item().is_some_and(|i| i.id == item.id) {
        advance(r, page);
    }
    // The registry's progress (and the summary at the last decision) come with the reload.
    reload(r, fx);
}

/// `c` / `x`: decide the item under the cursor, asking for a justification first when the
/// item says the registry wants one.
pub(super) fn decide(app: &mut App, verdict: Verdict, fx: &mut Vec<Effect>) {
    let Screen::Reviews(r) = &app.screen else {
        return;
    };
    if !r.may_decide() {
        app.message = Some((Tone::Error, READ_ONLY.into()));
        return;
    }
    let (Some(agent), Some(item)) = (r.selected_agent(), r.selected_item()) else {
        return;
    };
    let required = match verdict {
        Verdict::Certify => item.justification_required.certify,
        Verdict::Revoke => item.justification_required.revoke,
    };
    if required {
        app.overlay = Some(RequiredText::open(Justify {
            item_id: item.id,
            verdict,
            agent_name: agent.agent_name.clone(),
            scope: item.scope.clone(),
            why: item.diff.recommendation.reason.clone(),
        }));
        return;
    }
    app.message = Some((
        Tone::Info,
        format!(
            "{} {} of {}…",
            verb_ing(verdict),
            clean(&item.scope),
            clean(&agent.agent_name)
        ),
    ));
    fx.push(Effect::Decide {
        item_id: item.id,
        verdict,
        justification: None,
    });
}

/// `C`: certify the used, unchanged scopes of the agent on screen, and only that agent.
pub(super) fn certify_unchanged(app: &mut App, fx: &mut Vec<Effect>) {
    let Screen::Reviews(r) = &app.screen else {
        return;
    };
    if !r.may_decide() {
        app.message = Some((Tone::Error, READ_ONLY.into()));
        return;
    }
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
            "certifying {n} used, unchanged scope{} of {}…",
            if n == 1 { "" } else { "s" },
            clean(&agent.agent_name)
        ),
    ));
    fx.push(Effect::CertifyUnchanged {
        campaign_id: agent.campaign_id.clone(),
        agent_id: agent.agent_id.clone(),
    });
}

/// `y`: decide every undecided scope of the agent on screen as the registry recommends, and
/// only that agent. Decisions that need a justification are left for `c`/`x` (and said so).
pub(super) fn accept_agent(app: &mut App, fx: &mut Vec<Effect>) {
    let Screen::Reviews(r) = &app.screen else {
        return;
    };
    if !r.may_decide() {
        app.message = Some((Tone::Error, READ_ONLY.into()));
        return;
    }
    let Some(agent) = r.selected_agent() else {
        return;
    };
    let (mut sent, mut held) = (0, 0);
    for item in agent.items.iter().filter(|i| i.decision == Decision::None) {
        let verdict = item.diff.recommendation.action;
        let required = match verdict {
            Verdict::Certify => item.justification_required.certify,
            Verdict::Revoke => item.justification_required.revoke,
        };
        if required {
            held += 1;
            continue;
        }
        sent += 1;
        fx.push(Effect::Decide {
            item_id: item.id,
            verdict,
            justification: None,
        });
    }
    let name = clean(&agent.agent_name);
    app.message = Some(match (sent, held) {
        (0, 0) => (Tone::Info, format!("every scope of {name} is decided")),
        (0, _) => (
            Tone::Error,
            format!("{name}: each undecided scope needs a justification; decide them with c or x"),
        ),
        (_, 0) => (
            Tone::Info,
            format!("accepting {sent} recommendation(s) for {name}…"),
        ),
        _ => (
            Tone::Info,
            format!(
                "accepting {sent} recommendation(s) for {name}; {held} need a justification (c or x)"
            ),
        ),
    });
}

/// `r`: open the screen, or reload it.
pub(super) fn open(app: &mut App, fx: &mut Vec<Effect>) {
    if let Screen::Reviews(r) = &mut app.screen {
        reload(r, fx);
        return;
    }
    // An auditor (who reads every item and administers no campaign) sees every reviewer's
    // queue, read-only; the registry says so in the answer.
    let all = app
        .me
        .as_ref()
        .and_then(|m| m.may.as_ref())
        .is_some_and(|m| m.read_all_reviews && !m.administer_campaigns);
    let r = ReviewsState {
        loading: true,
        all,
        limit: REVIEW_PAGE,
        ..Default::default()
    };
    fx.push(Effect::LoadReviews(r.query()));
    app.screen = Screen::Reviews(Box::new(r));
}

/// `X` on the reviews screen: one Shift away from `x` (revoke a scope), so suspending the whole
/// agent asks first here.
pub(super) fn ask_to_suspend(app: &mut App, id: String, name: String) {
    app.overlay = Some(Overlay::Confirm(ConfirmState::Suspend(Pending::buttons(
        SuspendOrder { id, name },
    ))));
}
