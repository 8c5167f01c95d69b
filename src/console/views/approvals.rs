//! The approvals screen: what waits for me, newest first (kind, tier as a word and a marker,
//! scope, agent, who asks or for whom), and below it the selected request's particulars: the
//! justification, the approvals so far, for a per-use approval the subject, audience and chain,
//! and the agent's current grants with their use.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{ago, clean, fit};
use crate::console::app::App;
use crate::console::approvals::{ApprovalsState, tier_label};
use crate::console::layout;
use crate::console::theme::Slot;
use crate::model::approvals::{AccessRequest, RequestKind};
use crate::model::catalogue::Tier;

fn when(app: &App, t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{} ago", ago(app.now, t.timestamp())),
        None => "never".into(),
    }
}

fn tier_slot(tier: Tier) -> Slot {
    match tier {
        Tier::Low => Slot::Dim,
        Tier::Medium => Slot::Hint,
        Tier::High | Tier::Unclassified => Slot::Flag,
        Tier::Critical => Slot::Error,
    }
}

/// Who asks (a grant's requester) or for whom the agent acts (a per-use approval's subject).
fn who(r: &AccessRequest) -> String {
    match r.kind {
        RequestKind::Grant => format!("by {}", clean(&r.requester)),
        RequestKind::Use => format!("for {}", clean(r.subject.as_deref().unwrap_or("?"))),
    }
}

pub fn title(frame: &mut Frame, app: &App, s: &ApprovalsState, area: Rect) {
    let t = &app.theme;
    let mut spans = vec![Span::styled(" Waiting for me ", t.style(Slot::Title))];
    match &app.waiting.requests {
        None => spans.push(Span::styled("· loading…", t.style(Slot::Dim))),
        Some(list) => {
            let uses = app.waiting.per_use();
            spans.push(Span::styled(
                format!(
                    "· {} to decide{} ",
                    list.len(),
                    if uses > 0 {
                        format!(" ({uses} per-use: an agent is waiting)")
                    } else {
                        String::new()
                    }
                ),
                t.style(Slot::Accent),
            ));
        }
    }
    if let Some(e) = &s.error {
        spans.push(Span::styled(
            format!("· cannot load: {}", clean(e)),
            t.style(Slot::Error),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn draw(frame: &mut Frame, app: &App, s: &ApprovalsState, area: Rect) {
    let t = &app.theme;
    let (top, bottom) = layout::approvals(area);
    let w = area.width as usize;
    let list = app.waiting.requests.as_deref().unwrap_or(&[]);
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!(
                "   {:<5} {:<14} {:<28} {:<20} {:<26} {}",
                "KIND", "TIER", "SCOPE", "AGENT", "REQUESTER / SUBJECT", "AGE"
            ),
            w,
        ),
        t.style(Slot::TableHeader),
    ))];
    if list.is_empty() && app.waiting.requests.is_some() {
        lines.push(Line::from(Span::styled(
            "   nothing waits for you",
            t.style(Slot::Dim),
        )));
    }
    let rows = (top.height as usize).saturating_sub(1);
    for n in s.list.visible(list.len(), rows) {
        let r = &list[n];
        let selected = s.selected_id.as_deref() == Some(r.id.as_str());
        let text = format!(
            "{} {:<5} {:<14} {:<28} {:<20} {:<26} {}",
            if selected { "▶" } else { " " },
            r.kind.as_str(),
            tier_label(r.tier),
            fit(&clean(&r.scope), 28),
            fit(&clean(&r.agent_name), 20),
            fit(&who(r), 26),
            ago(app.now, r.created_at.timestamp()),
        );
        let style = if selected {
            t.style(Slot::Selected)
        } else {
            t.style(tier_slot(r.tier))
        };
        lines.push(Line::from(Span::styled(fit(&format!(" {text}"), w), style)));
    }
    frame.render_widget(Paragraph::new(lines), top);

    let Some(r) = s
        .selected_id
        .as_deref()
        .and_then(|id| list.iter().find(|r| r.id == id))
    else {
        return;
    };
    frame.render_widget(Paragraph::new(particulars(app, s, r, w)), bottom);
}

/// The selected request in full, then the agent's grants.
fn particulars<'a>(
    app: &'a App,
    s: &'a ApprovalsState,
    r: &'a AccessRequest,
    w: usize,
) -> Vec<Line<'a>> {
    let t = &app.theme;
    let label = |s: &str| Span::styled(format!(" {s:<15}"), t.style(Slot::Dim));
    let row =
        |l: &str, v: String| Line::from(vec![label(l), Span::raw(fit(&v, w.saturating_sub(16)))]);
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!(
                " {} {} for {}",
                match r.kind {
                    RequestKind::Grant => "ACCESS REQUEST:",
                    RequestKind::Use => "PER-USE APPROVAL:",
                },
                clean(&r.scope),
                clean(&r.agent_name)
            ),
            w,
        ),
        t.style(Slot::Title),
    ))];
    lines.push(Line::from(vec![
        label("Tier"),
        Span::styled(tier_label(r.tier), t.style(tier_slot(r.tier))),
        Span::styled(
            format!(
                "   resource {} · agent owner {}",
                clean(&r.resource_id),
                clean(r.agent_owner.as_deref().unwrap_or("none"))
            ),
            t.style(Slot::Dim),
        ),
    ]));
    match r.kind {
        RequestKind::Grant => lines.push(row(
            "Requester",
            format!(
                "{} · for {}",
                clean(&r.requester),
                r.duration.as_deref().unwrap_or("the tier's maximum")
            ),
        )),
        RequestKind::Use => {
            lines.push(row(
                "Subject",
                format!(
                    "{} · audience {}",
                    clean(r.subject.as_deref().unwrap_or("?")),
                    clean(&r.audience.join(" "))
                ),
            ));
            lines.push(row("Chain", clean(&r.chain.join(" → ")).into_owned()));
        }
    }
    lines.push(row(
        "Justification",
        clean(r.justification.as_deref().unwrap_or("—")).into_owned(),
    ));
    let votes: Vec<String> = r
        .approvals
        .iter()
        .map(|v| clean(&v.by).into_owned())
        .collect();
    lines.push(row(
        "Approvals",
        format!(
            "{} of {}{} · expires in {}",
            r.approvals.len(),
            r.approvals_required,
            if votes.is_empty() {
                String::new()
            } else {
                format!(" ({})", votes.join(", "))
            },
            super::span(r.expires_at.timestamp() - app.now),
        ),
    ));
    match s.grants.get(&r.agent_id) {
        None => lines.push(Line::from(Span::styled(
            " GRANTS (loading…)",
            t.style(Slot::Title),
        ))),
        Some(Err(e)) => lines.push(Line::from(Span::styled(
            fit(&format!(" GRANTS: cannot show them: {}", clean(e)), w),
            t.style(Slot::Error),
        ))),
        Some(Ok(grants)) => {
            lines.push(Line::from(Span::styled(
                format!(" THE AGENT'S GRANTS NOW ({})", grants.len()),
                t.style(Slot::Title),
            )));
            if grants.is_empty() {
                lines.push(Line::from(Span::styled("   none", t.style(Slot::Dim))));
            }
            for g in grants {
                let text = format!(
                    "   {:<34} last used {:<10} expires {}",
                    fit(&clean(&g.scope), 34),
                    when(app, g.last_used_at),
                    g.expires_at
                        .map(|e| e.format("%Y-%m-%d").to_string())
                        .unwrap_or_else(|| "—".into()),
                );
                let slot = if g.last_used_at.is_none() {
                    Slot::Dim
                } else {
                    Slot::Hint
                };
                lines.push(Line::from(Span::styled(fit(&text, w), t.style(slot))));
            }
        }
    }
    lines
}
