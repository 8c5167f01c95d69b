//! The registry's answers to governance calls: owners, revocations, reinstatements,
//! decommissions, incident notes, campaigns, the agent detail, the theme.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::filter::refilter;
use super::sync::start_sync;
use super::{clean, failed, name_of, reload_detail};
use crate::console::action::{
    Action, CampaignPurpose, CloseCampaignOrder, DecommissionOrder, Effect, Pending,
};
use crate::console::app::{App, Overlay, RevokeResult, Screen, Tone, TreeNode};
use crate::console::overlays::revoke_result::FanOutLine;

/// The revoke result's fan-out line is read again every this many ms while SETs wait, at most
/// [`FAN_OUT_POLLS`] times (about five seconds).
const FAN_OUT_EVERY_MS: u64 = 250;
const FAN_OUT_POLLS: u32 = 20;
use crate::console::overlays::confirm::ConfirmState;
use crate::console::overlays::notice::Notice;
use crate::model::review::Progress;
use crate::model::{AgentDetail, AgentRef};

pub(super) fn on_answer(app: &mut App, action: Action, fx: &mut Vec<Effect>) {
    match action {
        Action::DetailLoaded {
            id,
            detail,
            audit,
            tokens,
            activity,
        } => {
            let tree = match &detail {
                Ok(detail) => family_tree(app, detail),
                Err(_) => Vec::new(),
            };
            if let Screen::Detail(d) = &mut app.screen
                && d.id == id
            {
                d.tree = tree;
                d.detail = Some(detail.map_err(|e| e.to_string()));
                d.audit = Some(audit.map_err(|e| e.to_string()));
                d.tokens = Some(tokens.map_err(|e| e.to_string()));
                d.activity = Some(activity.map_err(|e| e.to_string()));
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
                refilter(app, fx);
                reload_detail(app, &id, fx);
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
                let seq = outcome.audit_seq;
                app.overlay = Some(Overlay::RevokeResult(Box::new(RevokeResult::single(
                    name,
                    outcome,
                    round_trip_ms,
                ))));
                fx.push(Effect::LoadFanOut {
                    seq,
                    attempt: 0,
                    delay_ms: FAN_OUT_EVERY_MS,
                });
                refilter(app, fx);
                reload_detail(app, &id, fx);
            }
            Err(e) => failed(app, "the revocation", &e),
        },
        Action::BulkRevoked {
            round_trip_ms,
            results,
        } => {
            let mut outcomes = Vec::new();
            let mut failed = Vec::new();
            for (id, r) in results {
                match r {
                    Ok(outcome) => {
                        Arc::make_mut(&mut app.inventory).upsert(&outcome.agent);
                        outcomes.push(outcome);
                    }
                    Err(e) => failed.push((id, e.to_string())),
                }
            }
            app.cache_dirty = true;
            app.marks.clear();
            let done = outcomes.iter().filter(|o| o.changed).count();
            let unchanged = outcomes.len() - done;
            let errors = failed.len();
            app.message = Some((
                if errors > 0 { Tone::Error } else { Tone::Ok },
                format!("bulk revocation: {done} revoked, {unchanged} unchanged, {errors} failed"),
            ));
            // The same counts as one revoke, and the incident reference prompt; with nothing
            // revoked at all, the failures alone.
            let mut outcomes = outcomes.into_iter();
            app.overlay = Some(match outcomes.next() {
                Some(first) => Overlay::RevokeResult(Box::new(RevokeResult {
                    name: match done + unchanged + errors {
                        1 => "1 agent".into(),
                        n => format!("{n} agents"),
                    },
                    outcome: first,
                    more: outcomes.collect(),
                    failed,
                    bulk: true,
                    round_trip_ms,
                    note: String::new(),
                    fan_out: None,
                })),
                None => Overlay::Notice(Notice {
                    title: "Bulk revocation".into(),
                    lines: std::iter::once(format!("failed (nothing changed for these): {errors}"))
                        .chain(failed.iter().map(|(id, e)| format!("✕ {}: {e}", clean(id))))
                        .collect(),
                    tone: Tone::Error,
                }),
            });
            refilter(app, fx);
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
                refilter(app, fx);
                reload_detail(app, &id, fx);
            }
            Err(e) => failed(app, "the reinstatement", &e),
        },
        Action::PlanLoaded { id, result } => {
            let waiting = matches!(&app.overlay, Some(Overlay::Busy(_)));
            if !waiting {
                return; // the person went back meanwhile
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
                app.overlay = Some(Overlay::Notice(Notice {
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
                }));
                refilter(app, fx);
                reload_detail(app, &id, fx);
                start_sync(app, fx);
            }
            Err(e) => failed(app, "the decommission", &e),
        },
        Action::EvidenceExported(result) => match result {
            Ok(files) if files.is_empty() => {
                app.message = Some((Tone::Info, "no open campaign to export".into()))
            }
            Ok(files) => {
                let list: Vec<String> = files
                    .iter()
                    .map(|(p, bytes)| format!("{} ({bytes} bytes)", p.display()))
                    .collect();
                app.message = Some((Tone::Ok, format!("evidence written to {}", list.join(", "))));
            }
            Err(e) => app.message = Some((Tone::Error, format!("the export failed: {e}"))),
        },
        Action::TimelineLoaded {
            generation,
            append,
            result,
        } => {
            if let Some(Overlay::Activity(a)) = &mut app.overlay {
                a.answered(generation, append, result.map_err(|e| e.to_string()));
            }
        }
        Action::FanOutLoaded {
            seq,
            attempt,
            result,
        } => {
            // Only the revoke result still open for this action shows it; a closed overlay
            // stops the polling.
            if let Some(Overlay::RevokeResult(r)) = &mut app.overlay
                && r.outcome.audit_seq == seq
            {
                match result {
                    Ok(f) => {
                        let waiting = !f.fanned_out || f.pending > 0;
                        r.fan_out = Some(FanOutLine::Known(f));
                        if waiting && attempt + 1 < FAN_OUT_POLLS {
                            fx.push(Effect::LoadFanOut {
                                seq,
                                attempt: attempt + 1,
                                delay_ms: FAN_OUT_EVERY_MS,
                            });
                        }
                    }
                    Err(e) => r.fan_out = Some(FanOutLine::Unknown(e.to_string())),
                }
            }
        }
        Action::NoteAdded { seq, result } => match result {
            Ok(note) => {
                app.message = Some((
                    Tone::Ok,
                    format!("incident reference added to audit event #{seq} (note #{note})"),
                ))
            }
            Err(e) => failed(app, "adding the incident reference", &e),
        },
        Action::CampaignsLoaded { purpose, result } => {
            if !matches!(&app.overlay, Some(Overlay::Busy(_))) {
                return; // the person went back meanwhile
            }
            app.overlay = None;
            match result {
                Ok(campaigns) if campaigns.is_empty() => {
                    app.message = Some((Tone::Info, "no campaign is open".into()));
                }
                Ok(campaigns) => match purpose {
                    CampaignPurpose::Progress => {
                        app.overlay = Some(Overlay::Notice(Notice {
                            title: "Campaign progress".into(),
                            lines: progress_lines(&campaigns, app.now),
                            tone: Tone::Info,
                        }));
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
                app.overlay = Some(Overlay::Notice(Notice {
                    title: format!("Closed {}", clean(&o.campaign.name)),
                    lines,
                    tone: Tone::Ok,
                }));
                if let Screen::Reviews(r) = &mut app.screen {
                    r.loading = true;
                    fx.push(Effect::LoadReviews(r.query()));
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
                    app.overlay = Some(Overlay::Notice(Notice {
                        title: format!("Created {name}"),
                        lines: vec![
                            format!("{items} items to review ({})", c.status.as_str()),
                            format!("due {}", c.due_at.format("%Y-%m-%d %H:%M UTC")),
                            format!("no response → {}", c.no_response.as_str()),
                            format!("recurrence: {}", c.recurrence.as_str()),
                            format!("fallback reviewer: {}", clean(&c.fallback_reviewer)),
                        ],
                        tone: Tone::Ok,
                    }));
                    if let Screen::Reviews(r) = &mut app.screen {
                        r.loading = true;
                        fx.push(Effect::LoadReviews(r.query()));
                    }
                }
                Err(e) => {
                    // Nothing was created; the form comes back as it was sent.
                    app.campaign_draft = Some(draft);
                    failed(app, "creating the campaign", &e);
                }
            }
        }
        Action::ThemeLoaded { name, result } => match result {
            Ok(theme) => {
                app.theme = if app.no_color {
                    theme.without_colors()
                } else {
                    theme
                };
                app.message = Some((
                    Tone::Ok,
                    if app.no_color {
                        format!("theme {name} (without colours: NO_COLOR is set)")
                    } else {
                        format!("theme {name}")
                    },
                ));
            }
            Err(m) => app.message = Some((Tone::Error, m)),
        },
        Action::ThemeNames(names) => {
            app.message = Some((
                Tone::Info,
                format!("theme {}; available: {}", app.theme.name, names.join(", ")),
            ));
        }
        _ => {}
    }
}

/// The progress notice: per campaign, then per reviewer (least done first) and per team.
fn progress_lines(campaigns: &[crate::model::review::CampaignDetail], now: i64) -> Vec<String> {
    let pct = |p: &Progress| (p.decided * 100).checked_div(p.total).unwrap_or(100);
    let mut lines = Vec::new();
    for d in campaigns {
        let c = &d.campaign;
        let now = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let days = crate::model::review::days_until(now, c.due_at);
        let due = crate::model::review::due_words(days, now > c.due_at);
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

/// How deep the detail's tree goes below the agent.
const TREE_DEPTH: usize = 3;
/// Entries the tree lists at most (the rest are counted).
const TREE_MAX: usize = 60;

/// The agent's sub-agents and instances as a tree: its children as the registry lists them,
/// their own children from the local view, drawn with `├─ └─ │`.
fn family_tree(app: &App, detail: &AgentDetail) -> Vec<TreeNode> {
    let inv = &app.inventory;
    // One pass over the local view per level, for every agent of that level at once.
    let mut below: HashMap<String, Vec<AgentRef>> = HashMap::new();
    let mut frontier: HashSet<String> = detail.children.iter().map(|c| c.id.clone()).collect();
    for _ in 1..TREE_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let mut next = HashSet::new();
        for r in inv.rows().iter().filter(|r| !r.hidden) {
            let parent = inv.text(r.parent);
            if !parent.is_empty() && frontier.contains(parent) {
                let id = inv.text(r.id).to_string();
                next.insert(id.clone());
                below.entry(parent.to_string()).or_default().push(AgentRef {
                    id,
                    name: inv.text(r.name).to_string(),
                    kind: r.kind,
                    status: r.status,
                });
            }
        }
        frontier = next;
    }
    for list in below.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    }
    let children_of = |id: &str| below.get(id).cloned().unwrap_or_default();
    let mut out = Vec::new();
    fn walk(
        nodes: &[AgentRef],
        prefix: &str,
        depth: usize,
        out: &mut Vec<TreeNode>,
        children_of: &dyn Fn(&str) -> Vec<AgentRef>,
    ) {
        for (i, node) in nodes.iter().enumerate() {
            if out.len() >= TREE_MAX {
                return;
            }
            let last = i + 1 == nodes.len();
            out.push(TreeNode {
                prefix: format!("{prefix}{}", if last { "└─ " } else { "├─ " }),
                name: node.name.clone(),
                kind: node.kind,
                status: node.status,
            });
            if depth < TREE_DEPTH {
                let below = children_of(&node.id);
                let prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
                walk(&below, &prefix, depth + 1, out, children_of);
            }
        }
    }
    walk(&detail.children, "", 1, &mut out, &children_of);
    out
}
