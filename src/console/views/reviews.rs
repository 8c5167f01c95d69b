//! "My reviews": agents waiting for the caller's decision on the left, the selected agent's scopes
//! (with their diff markers, decisions and the recommendation) on the right.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::{clean, fit};
use crate::console::app::{App, Overlay, ReviewsState};
use crate::console::keymap::Command;
use crate::console::layout;
use crate::console::theme::Slot;
pub use crate::console::words::due_text;
use crate::model::review::{Decision, ReviewItem, ScopeMarker, Usage, Verdict};

/// The screen's title band: campaign progress (done / total) and the due date.
pub fn title(frame: &mut Frame, app: &App, r: &ReviewsState, area: Rect) {
    let t = &app.theme;
    let title = if r.all {
        " Every reviewer's items (read-only) "
    } else {
        " My reviews "
    };
    let mut spans = vec![Span::styled(title, t.style(Slot::Title))];
    // Marks first: they decide what `Y` takes, so they never fall off the end of the line.
    if !r.marks.is_empty() {
        spans.push(Span::styled(
            format!("· {} marked ", r.marks.len()),
            t.style(Slot::Marked),
        ));
    }
    match &r.queue {
        Some(Ok(q)) if q.campaigns.is_empty() => {
            // An auditor (or an admin) with nothing assigned still reads every campaign.
            let text = if reads_all(app) {
                "· nothing assigned to you"
            } else {
                "· no open campaign"
            };
            spans.push(Span::styled(text, t.style(Slot::Dim)));
        }
        Some(Ok(q)) => {
            for c in &q.campaigns {
                spans.push(Span::styled("· ", t.style(Slot::Dim)));
                spans.push(Span::raw(format!("{} ", clean(&c.name))));
                spans.push(Span::styled(
                    format!("{}/{} decided ", c.progress.decided, c.progress.total),
                    t.style(Slot::Accent),
                ));
                if c.progress.pending == 0 {
                    spans.push(Span::styled("· done ", t.style(Slot::Ok)));
                } else {
                    spans.push(Span::styled(
                        format!("{} ({}) ", due_text(c), c.due_at.format("%Y-%m-%d")),
                        t.style(if c.overdue { Slot::Error } else { Slot::Dim }),
                    ));
                }
            }
        }
        _ => {}
    }
    if let Some(Ok(q)) = &r.queue {
        spans.push(Span::styled(
            format!("· {} of {} agents ", q.agents.len(), q.total_agents),
            t.style(Slot::Dim),
        ));
    }
    spans.push(Span::styled(
        format!("· sort: {} ", r.sort.as_str()),
        t.style(Slot::Dim),
    ));
    if !r.filter.is_empty() || matches!(app.overlay, Some(Overlay::FilterInput(_))) {
        spans.push(Span::styled(
            format!("· /{} ", clean(&r.filter)),
            t.style(Slot::Accent),
        ));
    }
    if r.loading {
        spans.push(Span::styled("· loading…", t.style(Slot::Dim)));
    }
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    if text.chars().count() > area.width as usize {
        // Too long: one plain line, cut.
        let line = Line::from(Span::styled(
            fit(&text, area.width as usize),
            t.style(Slot::Title),
        ));
        frame.render_widget(Paragraph::new(line), area);
    } else {
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }
}

/// The marks drawn before a scope, the same as the command line's.
pub fn marker_text(item: &ReviewItem) -> String {
    item.diff.markers.iter().map(|m| m.symbol()).collect()
}

/// "never used", "used 3d ago", "unused 81d".
fn usage_text(item: &ReviewItem) -> String {
    if item.diff.last_used_at.is_none() {
        return "never used".into();
    }
    match item.diff.usage {
        Usage::Used => format!("used {}d ago", item.diff.idle_days),
        Usage::Unused | Usage::New => format!("unused {}d", item.diff.idle_days),
    }
}

/// One symbol per decision, for narrow panes (the legend line says which is which).
fn decision_symbol(d: Decision) -> &'static str {
    match d {
        Decision::None => "·",
        Decision::Certify => "C",
        Decision::Revoke => "R",
        Decision::Keep => "k",
    }
}

fn decision_text(d: Decision) -> &'static str {
    match d {
        Decision::None => "pending",
        Decision::Certify => "CERTIFIED",
        Decision::Revoke => "REVOKED",
        Decision::Keep => "kept",
    }
}

pub fn draw(frame: &mut Frame, app: &App, r: &ReviewsState, area: Rect) {
    let t = &app.theme;
    let q = match &r.queue {
        None => {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    " loading my reviews from the registry…",
                    t.style(Slot::Dim),
                )),
                area,
            );
            return;
        }
        Some(Err(e)) => {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    fit(
                        &format!(" cannot load my reviews: {}", clean(e)),
                        area.width as usize,
                    ),
                    t.style(Slot::Error),
                )),
                area,
            );
            return;
        }
        Some(Ok(q)) => q,
    };
    if q.agents.is_empty() {
        let key = |c: Command| {
            app.keymap
                .key_for_in(c, crate::console::keymap::Scope::Reviews)
                .map(|k| k.label())
                .unwrap_or_else(|| "—".into())
        };
        let text = if reads_all(app) {
            format!(
                " nothing to review: no open campaign has items for you. Read-only: {} shows every \
                 campaign's progress, {} exports the open campaigns' evidence (or :export PATH).",
                key(Command::CampaignProgress),
                key(Command::ExportEvidence)
            )
        } else {
            " nothing to review: no open campaign has items for you".to_string()
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, t.style(Slot::Dim)))
                .wrap(ratatui::widgets::Wrap { trim: false }),
            area,
        );
        return;
    }
    let (left, divider, right) = layout::reviews(area);
    let left_w = left.width;
    let current = r.at().map(|(a, _)| a);

    // Agents, in the server's order (due date, then risk); the cursor keeps the selected one
    // in view.
    let rows = left.height.saturating_sub(1) as usize;
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!(" AGENTS ({} of {})", q.agents.len(), q.total_agents),
            left_w as usize,
        ),
        t.style(Slot::TableHeader),
    ))];
    for a in r.agents.visible(q.agents.len(), rows) {
        let agent = &q.agents[a];
        let done = agent.progress.pending == 0;
        let progress = format!("{}/{}", agent.progress.decided, agent.progress.total);
        let selected = Some(a) == current;
        let mark = if selected {
            "▶"
        } else if done {
            "✓"
        } else {
            " "
        };
        // Marked for `Y`: the inventory's marker, before the name.
        let marked = r.is_marked(agent);
        let star = if marked { "*" } else { "" };
        let name_w = (left_w as usize).saturating_sub(progress.chars().count() + 5 + star.len());
        let text = format!(
            " {mark} {star}{:<name_w$} {progress}",
            fit(&clean(&agent.agent_name), name_w)
        );
        let style = if selected {
            t.style(Slot::Selected)
        } else if marked {
            t.style(Slot::Marked)
        } else if done {
            t.style(Slot::Dim)
        } else {
            t.style(Slot::Base)
        };
        lines.push(Line::from(Span::styled(fit(&text, left_w as usize), style)));
    }
    frame.render_widget(Paragraph::new(lines), left);
    frame.render_widget(
        Block::new()
            .borders(Borders::LEFT)
            .border_style(t.style(Slot::Border)),
        divider,
    );

    // The selected agent: facts, scopes with markers and decisions, the recommendation.
    let (Some(agent), Some(item)) = (r.selected_agent(), r.selected_item()) else {
        return;
    };
    let w = right.width as usize;
    let dim = t.style(Slot::Dim);
    let undecided = r.undecided_here();
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!(" ▶ {}", clean(&agent.agent_name)),
            t.style(Slot::Title),
        ),
        Span::styled(
            if undecided == 0 {
                "  all decided".to_string()
            } else {
                format!("  {undecided} to decide")
            },
            t.style(Slot::Accent),
        ),
        Span::styled(
            format!(
                "  owner {} · {} · {}",
                clean(agent.owner.as_deref().unwrap_or("— unowned —")),
                clean(&agent.team),
                clean(&agent.environment),
            ),
            dim,
        ),
    ])];
    // The risk score with its scale: what it adds up, so a number means something.
    lines.push(Line::from(vec![
        Span::styled(format!(" risk {}", agent.risk), t.style(Slot::Accent)),
        Span::styled(
            fit(
                " = 3 per flag + 2 static secret + 1 per scope to revoke or added; higher first",
                w.saturating_sub(8),
            ),
            dim,
        ),
    ]));
    if !agent.flags.is_empty() || agent.static_secret {
        let mut flags: Vec<String> = agent.flags.iter().map(|f| clean(f).into_owned()).collect();
        if agent.static_secret {
            flags.push("static secret".into());
        }
        lines.push(Line::from(Span::styled(
            fit(&format!(" flags: {}", flags.join(", ")), w),
            t.style(Slot::Flag),
        )));
    }
    lines.push(Line::from(Span::styled(
        fit(&format!(" {}", ScopeMarker::LEGEND), w),
        dim,
    )));
    // Narrow panes keep the recommendation: the decision becomes one symbol and the scope gives
    // way first.
    let narrow = w < 64;
    let fixed = if narrow { 36 } else { 44 };
    let scope_w = agent
        .items
        .iter()
        .map(|i| i.scope.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(8, 32)
        .min(w.saturating_sub(fixed).max(8));
    for it in &agent.items {
        let selected = it.id == item.id;
        let rec = match it.diff.recommendation.action {
            Verdict::Certify => "→ certify",
            Verdict::Revoke => "→ revoke",
        };
        let power = crate::model::review::scope_power(&it.scope).unwrap_or("");
        let decision = if narrow {
            decision_symbol(it.decision)
        } else {
            decision_text(it.decision)
        };
        let text = format!(
            "{}{:<3} {:<scope_w$} {:<5} {:<dw$} {:<12} {rec}",
            if selected { "▶" } else { " " },
            marker_text(it),
            fit(&clean(&it.scope), scope_w),
            power,
            decision,
            usage_text(it),
            dw = if narrow { 1 } else { 9 },
        );
        let style = if selected {
            t.style(Slot::Selected)
        } else {
            match it.decision {
                Decision::Certify => t.style(Slot::Ok),
                Decision::Revoke => t.style(Slot::Suspended),
                _ => t.style(Slot::Base),
            }
        };
        lines.push(Line::from(Span::styled(fit(&text, w), style)));
    }
    for removed in &agent.removed {
        lines.push(Line::from(Span::styled(
            fit(
                &format!(
                    " -   {:<scope_w$} removed by {}",
                    clean(&removed.scope),
                    clean(&removed.removed_by)
                ),
                w,
            ),
            dim,
        )));
    }
    lines.push(Line::from(""));
    let rec = &item.diff.recommendation;
    lines.push(Line::from(vec![
        Span::styled(" Recommendation ", dim),
        Span::styled(
            format!("{} {}", rec.action.as_str(), clean(&item.scope)),
            t.style(Slot::Accent),
        ),
    ]));
    lines.push(Line::from(Span::raw(fit(
        &format!(" because {}", clean(&rec.reason)),
        w,
    ))));
    let needs: Vec<&str> = [
        (item.justification_required.certify, "certify"),
        (item.justification_required.revoke, "revoke"),
    ]
    .into_iter()
    .filter_map(|(b, s)| b.then_some(s))
    .collect();
    if !needs.is_empty() {
        lines.push(Line::from(Span::styled(
            fit(
                &format!(" a justification is required to {}", needs.join(" or ")),
                w,
            ),
            dim,
        )));
    }
    if let (Some(by), Some(j)) = (&item.decided_by, &item.justification) {
        lines.push(Line::from(Span::styled(
            fit(
                &format!(
                    " {} by {}: {}",
                    decision_text(item.decision),
                    clean(by),
                    clean(j)
                ),
                w,
            ),
            dim,
        )));
    }
    let bulk = agent.items.iter().filter(|i| i.bulk_certifiable).count();
    if bulk > 0 {
        lines.push(Line::from(Span::styled(
            fit(
                &format!(
                    " {bulk} used, unchanged scope{} certified together by C",
                    if bulk == 1 { "" } else { "s" }
                ),
                w,
            ),
            t.style(Slot::Hint),
        )));
    }
    frame.render_widget(Paragraph::new(lines), right);
}

/// Whether the registry lets this person read every campaign (admins, auditors).
fn reads_all(app: &App) -> bool {
    app.me
        .as_ref()
        .and_then(|m| m.may.as_ref())
        .is_some_and(|may| may.read_all_reviews)
}
