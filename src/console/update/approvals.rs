//! The approvals rules: the queue is polled with every sync (the header counts it, a new arrival
//! is announced on whatever screen is open), `y` approves and `n` denies with a reason, one key
//! per decision; the registry's refusals are shown as it says them. `+` on the detail requests a
//! scope through the catalogue picker.

use super::{clean, failed, reload_detail, went_offline};
use crate::client::{ClientError, ClientResult};
use crate::console::action::{Action, Effect};
use crate::console::app::{App, Overlay, Screen, Tone};
use crate::console::approvals::{ApprovalsState, refusal_text, tier_label};
use crate::console::layout;
use crate::console::overlays::notice::Notice;
use crate::console::overlays::required_text::{Deny, RequiredText};
use crate::console::overlays::scope_request::ScopeRequest;
use crate::model::approvals::{AccessRequest, RequestKind, RequestList, RequestStatus};

/// Agents whose grants the screen asks for at once (the queue's first ones).
const AGENTS_AT_ONCE: usize = 50;

pub(super) fn on_answer(app: &mut App, action: Action, fx: &mut Vec<Effect>) {
    match action {
        Action::ApprovalsLoaded(result) => on_loaded(app, result, fx),
        Action::ApprovalAgents(answers) => {
            let Screen::Approvals(s) = &mut app.screen else {
                return;
            };
            for (id, detail) in answers {
                s.grants_in_flight.remove(&id);
                s.grants.insert(
                    id,
                    detail.map(|d| d.agent.grants).map_err(|e| e.to_string()),
                );
            }
        }
        Action::ApprovalDecided {
            id,
            approve,
            result,
        } => on_decided(app, id, approve, result, fx),
        Action::CatalogueLoaded {
            agent_id,
            agent_name,
            result,
        } => {
            if matches!(app.overlay, Some(Overlay::Busy(_))) {
                app.overlay = None;
            }
            match result {
                Ok(list) => {
                    app.overlay = Some(Overlay::ScopeRequest(Box::new(ScopeRequest::new(
                        app, agent_id, agent_name, list,
                    ))));
                }
                Err(e) => failed(app, "reading the catalogue", &e),
            }
        }
        Action::ScopeRequested {
            agent_id,
            scope,
            result,
        } => {
            match result {
                Ok(r) => {
                    let text = match r.status {
                        RequestStatus::Approved => format!(
                            "{} granted at once ({} tier: approved by policy)",
                            clean(&scope),
                            r.tier.as_str()
                        ),
                        _ => format!(
                            "requested {} ({}): pending, needs {} approval{}",
                            clean(&scope),
                            tier_label(r.tier),
                            r.approvals_required,
                            if r.approvals_required == 1 { "" } else { "s" }
                        ),
                    };
                    app.message = Some((Tone::Ok, text));
                }
                Err(e) => refused(app, "the request", &e),
            }
            reload_detail(app, &agent_id, fx);
        }
        _ => {}
    }
}

/// Asks for the queue unless an answer is on its way (called on every sync and by `A`).
pub(crate) fn poll(app: &mut App, fx: &mut Vec<Effect>) {
    if app.waiting.in_flight || app.waiting.unsupported || app.me.is_none() {
        return;
    }
    app.waiting.in_flight = true;
    fx.push(Effect::LoadApprovals);
}

fn on_loaded(app: &mut App, result: ClientResult<RequestList>, fx: &mut Vec<Effect>) {
    app.waiting.in_flight = false;
    let list = match result {
        Ok(list) => list,
        Err(e) => {
            if matches!(e.status(), Some(404 | 405)) {
                // A registry without the queue: nothing can wait for me there.
                app.waiting.unsupported = true;
            }
            if e.is_unreachable() {
                went_offline(app, &e);
            }
            if let Screen::Approvals(s) = &mut app.screen {
                s.error = Some(e.to_string());
            }
            return;
        }
    };
    let pending: Vec<AccessRequest> = list
        .requests
        .into_iter()
        .filter(|r| r.status == RequestStatus::Pending)
        .collect();
    let new = app.waiting.replace(pending);
    announce(app, &new);
    let page = layout::approval_rows(app);
    let n = app.waiting.count();
    let Screen::Approvals(s) = &mut app.screen else {
        return;
    };
    s.error = None;
    // Keep the cursor on the same request when it is still there.
    let at = s
        .selected_id
        .as_deref()
        .and_then(|id| app.waiting.position(id))
        .unwrap_or(s.list.selected.min(n.saturating_sub(1)));
    s.list.select(at, n, page.max(1));
    s.selected_id = app.waiting.get(s.list.selected).map(|r| r.id.clone());
    load_agents(s, &app.waiting, fx);
}

/// A new arrival shows on whatever screen is open: per-use approvals first (an agent waits).
fn announce(app: &mut App, new: &[AccessRequest]) {
    let Some(first) = new
        .iter()
        .find(|r| r.kind == RequestKind::Use)
        .or_else(|| new.first())
    else {
        return;
    };
    let what = match first.kind {
        RequestKind::Use => format!(
            "⚑ per-use approval waits for you: {} wants {} for {}",
            clean(&first.agent_name),
            clean(&first.scope),
            clean(first.subject.as_deref().unwrap_or("?"))
        ),
        RequestKind::Grant => format!(
            "⚑ new request waits for you: {} for {} ({})",
            clean(&first.scope),
            clean(&first.agent_name),
            tier_label(first.tier)
        ),
    };
    let more = if new.len() > 1 {
        format!(" (+{} more)", new.len() - 1)
    } else {
        String::new()
    };
    let key = app
        .keymap
        .key_for(crate::console::keymap::Command::Approvals)
        .map(|k| format!(" · {} to decide", k.label()))
        .unwrap_or_default();
    app.message = Some((Tone::Info, format!("{what}{more}{key}")));
}

/// Asks for the grants of the queue's agents not known yet.
fn load_agents(
    s: &mut ApprovalsState,
    waiting: &crate::console::approvals::Waiting,
    fx: &mut Vec<Effect>,
) {
    let mut ids: Vec<String> = Vec::new();
    for r in waiting.requests.iter().flatten() {
        // The queue carries the grants for its approvers: nothing to ask.
        if let Some(grants) = &r.agent_grants {
            s.grants.insert(r.agent_id.clone(), Ok(grants.clone()));
            continue;
        }
        if ids.len() >= AGENTS_AT_ONCE {
            break;
        }
        if !s.grants.contains_key(&r.agent_id)
            && !s.grants_in_flight.contains(&r.agent_id)
            && !ids.contains(&r.agent_id)
        {
            ids.push(r.agent_id.clone());
        }
    }
    if !ids.is_empty() {
        s.grants_in_flight.extend(ids.iter().cloned());
        fx.push(Effect::LoadApprovalAgents(ids));
    }
}

/// `A`: open the screen, or reload it.
pub(super) fn open(app: &mut App, fx: &mut Vec<Effect>) {
    if !matches!(app.screen, Screen::Approvals(_)) {
        app.screen = Screen::Approvals(Box::default());
    }
    if let Screen::Approvals(s) = &mut app.screen {
        // Fresh grants: a decision may have changed them.
        s.grants.clear();
        if app.waiting.requests.is_some() {
            let page = layout::approval_rows(app);
            let n = app.waiting.count();
            let Screen::Approvals(s) = &mut app.screen else {
                return;
            };
            s.list.select(0, n, page.max(1));
            s.selected_id = app.waiting.get(0).map(|r| r.id.clone());
            load_agents(s, &app.waiting, fx);
        }
    }
    app.waiting.unsupported = false;
    poll(app, fx);
}

pub(super) fn move_by(app: &mut App, delta: isize) {
    let page = layout::approval_rows(app);
    let n = app.waiting.count();
    let Screen::Approvals(s) = &mut app.screen else {
        return;
    };
    s.list.move_by(delta, n, page.max(1));
    s.selected_id = app.waiting.get(s.list.selected).map(|r| r.id.clone());
}

fn selected(app: &App) -> Option<&AccessRequest> {
    let Screen::Approvals(s) = &app.screen else {
        return None;
    };
    app.waiting
        .get(app.waiting.position(s.selected_id.as_deref()?)?)
}

/// `y`: approve at once (no confirmation: one key per decision).
pub(super) fn approve(app: &mut App, fx: &mut Vec<Effect>) {
    let Some(r) = selected(app) else {
        app.message = Some((Tone::Info, "nothing waits for you".into()));
        return;
    };
    let (id, text) = (
        r.id.clone(),
        format!(
            "approving {} for {}…",
            clean(&r.scope),
            clean(&r.agent_name)
        ),
    );
    app.message = Some((Tone::Info, text));
    fx.push(Effect::DecideApproval {
        id,
        approve: true,
        reason: None,
    });
}

/// `n`: the reason prompt, then the denial.
pub(super) fn deny(app: &mut App) {
    let Some(r) = selected(app) else {
        app.message = Some((Tone::Info, "nothing waits for you".into()));
        return;
    };
    app.overlay = Some(RequiredText::open(Deny {
        id: r.id.clone(),
        agent_name: r.agent_name.clone(),
        scope: r.scope.clone(),
    }));
}

/// `+` on the detail: read the catalogue, then the picker opens.
pub(super) fn request_scope(app: &mut App, fx: &mut Vec<Effect>) {
    let Screen::Detail(_) = &app.screen else {
        return;
    };
    let Some((agent_id, agent_name, _)) = app.target() else {
        return;
    };
    app.overlay = Some(Overlay::Busy(crate::console::overlays::busy::Busy(
        "reading the catalogue…".into(),
    )));
    fx.push(Effect::LoadCatalogue {
        agent_id,
        agent_name,
    });
}

fn on_decided(
    app: &mut App,
    id: String,
    approve: bool,
    result: ClientResult<AccessRequest>,
    fx: &mut Vec<Effect>,
) {
    match result {
        Ok(r) => {
            let text = match (approve, r.status) {
                (false, _) => format!("denied {} for {}", clean(&r.scope), clean(&r.agent_name)),
                (true, RequestStatus::Approved) => match r.kind {
                    RequestKind::Grant => format!(
                        "approved {} for {}{}",
                        clean(&r.scope),
                        clean(&r.agent_name),
                        r.grant_expires_at
                            .map(|t| format!(" (grant until {})", t.format("%Y-%m-%d")))
                            .unwrap_or_default()
                    ),
                    RequestKind::Use => format!(
                        "approved one use of {} by {}; the agent may exchange now",
                        clean(&r.scope),
                        clean(&r.agent_name)
                    ),
                },
                (true, _) => format!(
                    "your approval of {} is recorded: {} of {}; it waits for another approver",
                    clean(&r.scope),
                    r.approvals.len(),
                    r.approvals_required
                ),
            };
            app.message = Some((Tone::Ok, text));
            // Off my queue at once; the reload confirms.
            if let Some(list) = &mut app.waiting.requests {
                list.retain(|q| q.id != id);
            }
            let n = app.waiting.count();
            let page = layout::approval_rows(app);
            if let Screen::Approvals(s) = &mut app.screen {
                let at = s.list.selected.min(n.saturating_sub(1));
                s.list.select(at, n, page.max(1));
                s.selected_id = app.waiting.get(s.list.selected).map(|r| r.id.clone());
                s.grants.remove(&r.agent_id);
            }
        }
        Err(e) => refused(
            app,
            if approve {
                "the approval"
            } else {
                "the denial"
            },
            &e,
        ),
    }
    poll(app, fx);
}

/// A refusal, as the registry said it (its code and message), with what it means.
fn refused(app: &mut App, what: &str, e: &ClientError) {
    let ClientError::Api { code, message, .. } = e else {
        failed(app, what, e);
        return;
    };
    let mut lines = vec![format!("{}: {}", clean(code), clean(message))];
    if let Some(meaning) = refusal_text(code) {
        lines.push(String::new());
        lines.push(meaning.to_string());
    }
    lines.push(String::new());
    lines.push("Nothing was changed.".into());
    app.overlay = Some(Overlay::Notice(Notice {
        title: format!("The registry refused {what}"),
        lines,
        tone: Tone::Error,
    }));
    app.message = Some((Tone::Error, format!("refused: {}", clean(code))));
}
