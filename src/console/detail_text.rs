//! The agent detail's text: who owns it, its family, what it may do, how it proves itself, what
//! happened to it. Built here (not in `views`) because `update` needs its length to scroll.

use chrono::{DateTime, Utc};
use ratatui::text::{Line, Span};

use super::app::{App, DetailState, Screen};
use super::layout;
use super::words::{ago, clean, fit, span, status_text};
use crate::console::theme::Slot;
use crate::model::AgentDetail;

/// Live tokens listed in the detail (the rest are counted).
const LIVE_TOKENS_SHOWN: usize = 20;

fn when(app: &App, t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{} ago", ago(app.now, t.timestamp())),
        None => "never".into(),
    }
}

/// Lines of the detail on show, at the body's width (what scrolling runs over).
pub fn length(app: &App) -> usize {
    match &app.screen {
        Screen::Detail(d) => lines(app, d, layout::body(app).width as usize).len(),
        _ => 0,
    }
}

/// The detail's text: facts, the tree below the agent, live tokens, recent audit.
pub fn lines<'a>(app: &'a App, d: &'a DetailState, w: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    let label = |s: &str| Span::styled(format!(" {s:<13}"), t.style(Slot::Dim));
    let heading = |s: String| Line::from(Span::styled(format!(" {s}"), t.style(Slot::Title)));
    let mut lines: Vec<Line> = Vec::new();

    match &d.detail {
        None => {
            lines.push(Line::from(Span::styled(
                " loading from the registry…",
                t.style(Slot::Dim),
            )));
            // Meanwhile, what the cache knows.
            if let Some(r) = d.row.and_then(|i| app.inventory.rows().get(i as usize)) {
                lines.push(Line::from(vec![
                    label("Status"),
                    Span::styled(status_text(r.status), t.status_style(r.status)),
                ]));
                lines.push(Line::from(vec![
                    label("Owner"),
                    Span::raw(clean(app.inventory.owner_label(r)).into_owned()),
                ]));
            }
        }
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(
                fit(&format!(" cannot load this agent: {}", clean(e)), w),
                t.style(Slot::Error),
            )));
        }
        Some(Ok(detail)) => facts(app, d, detail, &mut lines, w),
    }

    lines.push(Line::from(""));
    match &d.tokens {
        None => lines.push(heading("LIVE TOKENS (loading…)".into())),
        Some(Err(e)) => {
            lines.push(heading("LIVE TOKENS".into()));
            lines.push(Line::from(Span::styled(
                fit(&format!("   not available: {}", clean(e)), w),
                t.style(Slot::Error),
            )));
        }
        Some(Ok(tokens)) => {
            lines.push(heading(format!(
                "LIVE TOKENS ({}) · exchanges in the last hour: {}",
                tokens.tokens.len(),
                tokens.exchanges_last_hour
            )));
            if tokens.tokens.is_empty() {
                lines.push(Line::from(Span::styled(
                    "   no live token acts as this agent",
                    t.style(Slot::Dim),
                )));
            }
            for tok in tokens.tokens.iter().take(LIVE_TOKENS_SHOWN) {
                let left = (tok.expires_at.timestamp() - app.now).max(0);
                let text = format!(
                    "   for {:<24} {:<28} aud {:<20} expires in {}",
                    fit(&clean(&tok.subject), 24),
                    fit(&clean(&tok.scopes.join(" ")), 28),
                    fit(&clean(&tok.audience.join(" ")), 20),
                    span(left),
                );
                lines.push(Line::from(Span::styled(fit(&text, w), t.style(Slot::Hint))));
            }
            if tokens.tokens.len() > LIVE_TOKENS_SHOWN {
                lines.push(Line::from(Span::styled(
                    format!("   … and {} more", tokens.tokens.len() - LIVE_TOKENS_SHOWN),
                    t.style(Slot::Dim),
                )));
            }
        }
    }
    lines.push(Line::from(""));
    match &d.audit {
        None => lines.push(heading("RECENT AUDIT (loading…)".into())),
        Some(Err(e)) => {
            lines.push(heading("RECENT AUDIT".into()));
            lines.push(Line::from(Span::styled(
                fit(&format!("   not available: {}", clean(e)), w),
                t.style(Slot::Error),
            )));
        }
        Some(Ok(events)) => {
            lines.push(heading(if events.is_empty() {
                "RECENT AUDIT".to_string()
            } else {
                format!("RECENT AUDIT (latest {}, newest first)", events.len())
            }));
            if events.is_empty() {
                lines.push(Line::from(Span::styled(
                    "   no events recorded about this agent",
                    t.style(Slot::Dim),
                )));
            }
            for e in events.iter().rev() {
                let time = e.time.get(..19).unwrap_or(&e.time).replace('T', " ");
                let reason = e
                    .reason
                    .as_deref()
                    .map(|r| format!(" — {}", clean(r)))
                    .unwrap_or_default();
                let text = format!(
                    "   {time}  #{:<6} {:<26} {:<20} {}{reason}",
                    e.seq,
                    fit(&clean(&e.actor.id), 26),
                    fit(&clean(&e.action), 20),
                    clean(&e.outcome),
                );
                let slot = if e.outcome == "success" {
                    Slot::Hint
                } else {
                    Slot::Error
                };
                lines.push(Line::from(Span::styled(fit(&text, w), t.style(slot))));
            }
        }
    }
    lines
}

fn facts<'a>(
    app: &App,
    d: &DetailState,
    detail: &'a AgentDetail,
    lines: &mut Vec<Line<'a>>,
    w: usize,
) {
    let t = &app.theme;
    let a = &detail.agent;
    let label = |s: &str| Span::styled(format!(" {s:<13}"), t.style(Slot::Dim));
    let heading = |s: String| Line::from(Span::styled(format!(" {s}"), t.style(Slot::Title)));
    let owner = match (&a.owner, &a.owner_name) {
        (Some(email), name) if a.owner_left_at.is_some() => format!(
            "— unowned — owner {} left on {}",
            clean(name.as_deref().unwrap_or(email)),
            a.owner_left_at
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        ),
        (Some(email), Some(name)) => format!("{} <{}>", clean(name), clean(email)),
        (Some(email), None) => clean(email).into_owned(),
        _ => "— unowned —".into(),
    };
    lines.push(Line::from(vec![
        label("Status"),
        Span::styled(status_text(a.status), t.status_style(a.status)),
        Span::styled(
            format!(
                "   {} · {} · created {}",
                a.kind.as_str(),
                a.source.as_str(),
                when(app, Some(a.created_at))
            ),
            t.style(Slot::Dim),
        ),
    ]));
    lines.push(Line::from(vec![
        label("Owner"),
        Span::styled(
            owner,
            if a.owner.is_some() {
                t.style(Slot::Hint)
            } else {
                t.style(Slot::Flag)
            },
        ),
    ]));
    lines.push(Line::from(vec![
        label("Team"),
        Span::raw(clean(&a.team).into_owned()),
        Span::styled("   environment ", t.style(Slot::Dim)),
        Span::raw(clean(&a.environment).into_owned()),
        Span::styled("   last seen ", t.style(Slot::Dim)),
        Span::raw(when(app, a.last_seen_at)),
    ]));
    if !a.description.is_empty() {
        lines.push(Line::from(vec![
            label("Description"),
            Span::raw(fit(&clean(&a.description), w.saturating_sub(15))),
        ]));
    }
    tree(app, d, detail, lines, w);
    let mut flags: Vec<String> = Vec::new();
    if a.static_secret {
        flags.push("static-secret".into());
    }
    if a.source == crate::model::AgentSource::Discovered {
        flags.push("discovered".into());
    }
    flags.extend(a.flags.iter().map(|f| clean(f).into_owned()));
    let flags = flags.join(" ");
    lines.push(Line::from(vec![
        label("Flags"),
        Span::styled(
            if flags.is_empty() {
                "—".to_string()
            } else {
                flags
            },
            t.style(Slot::Flag),
        ),
    ]));
    open_flags(app, detail, lines, w);
    recent_use(app, d, lines, w);

    lines.push(Line::from(""));
    lines.push(heading(format!("GRANTS ({})", a.grants.len())));
    lines.push(Line::from(Span::styled(
        fit(
            &format!(
                "   {:<34} {:<24} {:<11} {:<11} {}",
                "SCOPE", "GRANTED BY", "LAST USED", "CERTIFIED", "EXPIRES"
            ),
            w,
        ),
        t.style(Slot::TableHeader),
    )));
    for g in &a.grants {
        let unused = g.last_used_at.is_none();
        let text = format!(
            "   {:<34} {:<24} {:<11} {:<11} {}",
            fit(&clean(&g.scope), 34),
            fit(&clean(&g.granted_by), 24),
            when(app, g.last_used_at),
            when(app, g.last_certified_at),
            g.expires_at
                .map(|e| e.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "—".into()),
        );
        lines.push(Line::from(Span::styled(
            fit(&text, w),
            if unused {
                t.style(Slot::Dim)
            } else {
                t.style(Slot::Hint)
            },
        )));
    }

    pending_requests(app, detail, lines, w);

    lines.push(Line::from(""));
    lines.push(heading(format!(
        "CREDENTIALS ({})",
        detail.credentials.len()
    )));
    for c in &detail.credentials {
        let state = match c.disabled_at {
            Some(at) => format!("DISABLED {}", at.format("%Y-%m-%d %H:%M")),
            None => "enabled".into(),
        };
        let text = format!(
            "   {:<14} {:<20} {:<22} {:<26} last used {}",
            c.kind.as_str(),
            fit(&clean(&c.label), 20),
            fit(&clean(&c.fingerprint), 22),
            state,
            when(app, c.last_used_at)
        );
        let slot = if c.disabled_at.is_some() {
            Slot::Dim
        } else if c.kind == crate::model::CredentialKind::StaticSecret {
            Slot::Flag
        } else {
            Slot::Hint
        };
        lines.push(Line::from(Span::styled(fit(&text, w), t.style(slot))));
    }
}

/// The agent's place in its family: its parent above, its sub-agents and instances below as a
/// tree (names are ambiguous without it: instances share their parent's name).
fn tree(app: &App, d: &DetailState, detail: &AgentDetail, lines: &mut Vec<Line<'_>>, w: usize) {
    let t = &app.theme;
    let a = &detail.agent;
    let node = |name: &str, kind: crate::model::AgentKind, status: crate::model::AgentStatus| {
        format!("{} ({}, {})", clean(name), kind.as_str(), status.as_str())
    };
    let label = Span::styled(format!(" {:<13}", "Family"), t.style(Slot::Dim));
    let this = node(&a.name, a.kind, a.status);
    // The column under the agent's own name, where its branches start.
    let pad = match &detail.parent {
        Some(p) => {
            lines.push(Line::from(vec![
                label,
                Span::styled(
                    fit(&node(&p.name, p.kind, p.status), w.saturating_sub(14)),
                    t.style(Slot::Dim),
                ),
            ]));
            lines.push(Line::from(Span::styled(
                fit(&format!("{:14}└─ ▶ {this}", ""), w),
                t.style(Slot::Accent),
            )));
            " ".repeat(19)
        }
        None => {
            lines.push(Line::from(vec![
                label,
                Span::styled(
                    fit(&format!("▶ {this}"), w.saturating_sub(14)),
                    t.style(Slot::Accent),
                ),
            ]));
            " ".repeat(16)
        }
    };
    if d.tree.is_empty() && detail.children.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("{pad}no sub-agents or instances"),
            t.style(Slot::Dim),
        )));
    }
    if d.tree.is_empty() {
        // Until the tree is built (it is when the detail arrives): the children alone.
        for (i, c) in detail.children.iter().enumerate() {
            let branch = if i + 1 == detail.children.len() {
                "└─ "
            } else {
                "├─ "
            };
            lines.push(Line::from(Span::styled(
                fit(
                    &format!("{pad}{branch}{}", node(&c.name, c.kind, c.status)),
                    w,
                ),
                t.status_style(c.status),
            )));
        }
    }
    for n in &d.tree {
        lines.push(Line::from(Span::styled(
            fit(
                &format!("{pad}{}{}", n.prefix, node(&n.name, n.kind, n.status)),
                w,
            ),
            t.status_style(n.status),
        )));
    }
}

/// Access requests and per-use approvals still pending for the agent (`+` files one).
fn pending_requests(app: &App, detail: &AgentDetail, lines: &mut Vec<Line<'_>>, w: usize) {
    // Only when there are some: the `+` key is in the footer, and the detail's room is small.
    if detail.requests.is_empty() {
        return;
    }
    let t = &app.theme;
    lines.push(Line::from(""));
    let key = app
        .keymap
        .key_for(crate::console::keymap::Command::RequestScope)
        .map(|k| format!(" · {} requests a scope", k.label()))
        .unwrap_or_default();
    lines.push(Line::from(vec![
        Span::styled(
            format!(" PENDING REQUESTS ({})", detail.requests.len()),
            t.style(Slot::Title),
        ),
        Span::styled(key, t.style(Slot::Dim)),
    ]));
    for r in &detail.requests {
        let text = format!(
            "   {:<5} {:<34} {:<14} {}/{} approvals · by {} · {} ago",
            r.kind.as_str(),
            fit(&clean(&r.scope), 34),
            crate::console::approvals::tier_label(r.tier),
            r.approvals.len(),
            r.approvals_required,
            clean(&r.requester),
            ago(app.now, r.created_at.timestamp()),
        );
        lines.push(Line::from(Span::styled(fit(&text, w), t.style(Slot::Hint))));
    }
}

/// Each unresolved behaviour flag with its evidence: observed against the baseline, the window.
fn open_flags(app: &App, detail: &AgentDetail, lines: &mut Vec<Line<'_>>, w: usize) {
    if detail.open_flags.is_empty() {
        return;
    }
    let t = &app.theme;
    lines.push(Line::from(""));
    // Only the keys the registry says this person may use on this agent.
    let row = app.target().and_then(|(_, _, row)| row);
    let keys: Vec<String> = [
        (
            crate::console::keymap::Command::AcknowledgeFlag,
            "acknowledges",
        ),
        (crate::console::keymap::Command::Revoke, "revokes the agent"),
    ]
    .into_iter()
    .filter(|(c, _)| app.permits(*c, row.as_ref()).is_ok())
    .filter_map(|(c, what)| Some(format!("{} {what}", app.keymap.key_for(c)?.label())))
    .collect();
    lines.push(Line::from(vec![
        Span::styled(
            format!(" OPEN FLAGS ({})", detail.open_flags.len()),
            t.style(Slot::Title),
        ),
        Span::styled(
            if keys.is_empty() {
                String::new()
            } else {
                format!("  {}", keys.join(" · "))
            },
            t.style(Slot::Dim),
        ),
    ]));
    for f in &detail.open_flags {
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "   {} {:<8} ",
                    f.severity.marker(),
                    f.severity.as_str().to_uppercase()
                ),
                t.style(Slot::Flag),
            ),
            Span::raw(fit(
                &format!(
                    "{} · {} · {} — {}",
                    f.kind.as_str(),
                    f.state.as_str(),
                    when(app, Some(f.opened_at)),
                    clean(&f.summary)
                ),
                w.saturating_sub(16),
            )),
        ]));
        let evidence = |k: &str, v: String| {
            Line::from(vec![
                Span::styled(format!("      {k:<9}"), t.style(Slot::Dim)),
                Span::raw(fit(&clean(&v), w.saturating_sub(16))),
            ])
        };
        lines.push(evidence("observed", f.evidence.observed.clone()));
        lines.push(evidence("baseline", f.evidence.baseline.clone()));
        lines.push(evidence(
            "window",
            format!(
                "{} → {}",
                f.evidence.window_from.format("%Y-%m-%d %H:%M"),
                f.evidence.window_to.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
        if let Some(by) = &f.acknowledged_by {
            lines.push(evidence(
                "acked",
                format!(
                    "by {} — {}",
                    by,
                    f.acknowledge_reason.clone().unwrap_or_default()
                ),
            ));
        }
    }
}

/// The scopes and audiences used in the last 24 hours, each with its count; a first use (not in
/// the baseline window before) is marked `★ first use`.
fn recent_use(app: &App, d: &DetailState, lines: &mut Vec<Line<'_>>, w: usize) {
    let t = &app.theme;
    let series = match &d.activity {
        Some(Ok(series)) => series,
        Some(Err(e)) => {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                fit(&format!(" ACTIVITY unavailable: {}", clean(e)), w),
                t.style(Slot::Dim),
            )));
            return;
        }
        None => return,
    };
    if series.scopes_24h.is_empty() && series.audiences_24h.is_empty() {
        // Quiet for a day: nothing to list (the chart, when drawn, shows the week).
        return;
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        " USED IN THE LAST 24 H",
        t.style(Slot::Title),
    )));
    for (what, uses) in [
        ("scopes", &series.scopes_24h),
        ("audiences", &series.audiences_24h),
    ] {
        let mut spans = vec![Span::styled(format!("   {what:<10}"), t.style(Slot::Dim))];
        if uses.is_empty() {
            spans.push(Span::styled("none", t.style(Slot::Dim)));
        }
        let mut used = 13;
        for (i, u) in uses.iter().enumerate() {
            let text = format!(
                "{}{} ×{}",
                if i == 0 { "" } else { ", " },
                clean(&u.name),
                u.count
            );
            let mark = if u.first_use { " ★ first use" } else { "" };
            let width = text.chars().count() + mark.chars().count();
            if used + width > w && i > 0 {
                spans.push(Span::styled(
                    format!(", … {} more", uses.len() - i),
                    t.style(Slot::Dim),
                ));
                break;
            }
            used += width;
            spans.push(Span::raw(text));
            if u.first_use {
                spans.push(Span::styled(mark, t.style(Slot::Flag)));
            }
        }
        lines.push(Line::from(spans));
    }
}
