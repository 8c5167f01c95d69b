//! The frame around the screens: header, offline banner, quick-filter tabs, status line, footer.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{ago, clean, fit};
use crate::console::app::{App, DetailState, Link, MIN_HEIGHT, MIN_WIDTH, Overlay, Tone};
use crate::console::filter::QuickFilter;
use crate::console::inventory::Counts;
use crate::console::keymap::Command;
use crate::console::overlays::Hint;
use crate::console::overlays::command_line::CommandLine;
use crate::console::theme::Slot;

/// The header's counts, as `update` last computed them.
pub fn counts(app: &App) -> Counts {
    app.counts.1
}

/// How fresh the view is, in words.
pub fn freshness(app: &App) -> String {
    let age = app
        .synced_at
        .map(|t| ago(app.now, t))
        .unwrap_or_else(|| "no".into());
    if let Some((received, total)) = app.sync_progress {
        return format!("syncing {} of {total}", received.min(total));
    }
    match &app.link {
        Link::Online if app.synced_at.is_some() => format!("synced {age} ago"),
        Link::Online | Link::Connecting => match app.synced_at {
            Some(_) => format!("cache {age} old · connecting"),
            None => "connecting".into(),
        },
        Link::Offline { .. } => match app.synced_at {
            Some(_) => format!("OFFLINE · cache {age} old"),
            None => "OFFLINE · no cache".into(),
        },
    }
}

pub fn header(frame: &mut Frame, app: &App, area: Rect) {
    let style = app.theme.style(Slot::Header);
    let server = app
        .me
        .as_ref()
        .map(|m| clean(&m.server_name).into_owned())
        .unwrap_or_else(|| "steward".into());
    let who = match &app.me {
        Some(m) => {
            let roles: Vec<&str> = m.person.roles.iter().map(|r| r.as_str()).collect();
            format!(
                "{} ({})",
                clean(&m.person.email),
                if roles.is_empty() {
                    "owner".to_string()
                } else {
                    roles.join(", ")
                }
            )
        }
        None => app
            .inventory
            .persona
            .as_deref()
            .map(|p| format!("{} (cached)", clean(p)))
            .unwrap_or_else(|| "signing in…".into()),
    };
    let c = counts(app);
    let url = clean(app.server_url.trim_end_matches('/')).into_owned();
    let fresh = freshness(app);
    let full = format!(
        "{} agents · {} unowned · {} suspended",
        c.total, c.unowned, c.suspended
    );
    let short = format!("{} agents · {} unowned", c.total, c.unowned);
    // What waits for me leads the counts, on every screen (a word and a marker, never colour).
    let waiting = match app.waiting.count() {
        0 => String::new(),
        n => match app.waiting.per_use() {
            0 => format!("⚑ {n} to approve · "),
            u => format!("⚑ {n} to approve ({u} per-use) · "),
        },
    };
    let full = format!("{waiting}{full}");
    let short = format!("{waiting}{short}");
    // The richest header that fits, losing the URL first, then detail in the counts.
    let variants = [
        (
            format!(" {server} · {url} · {who} "),
            format!(" {full} │ {fresh} "),
        ),
        (format!(" {server} · {who} "), format!(" {full} │ {fresh} ")),
        (
            format!(" {server} · {who} "),
            format!(" {short} │ {fresh} "),
        ),
        (format!(" {who} "), format!(" {short} │ {fresh} ")),
    ];
    let width = area.width as usize;
    let (left, right) = variants
        .iter()
        .find(|(l, r)| l.chars().count() + r.chars().count() <= width)
        .unwrap_or(&variants[3]);
    let right = fit(right, width);
    let left = fit(left, width.saturating_sub(right.chars().count()));
    let pad = width.saturating_sub(left.chars().count() + right.chars().count());
    let line = Line::from(vec![
        Span::styled(left, style),
        Span::styled(" ".repeat(pad), style),
        Span::styled(right, style),
    ]);
    frame.render_widget(Paragraph::new(line).style(style), area);
}

pub fn banner(frame: &mut Frame, app: &App, area: Rect) {
    let Link::Offline { error } = &app.link else {
        return;
    };
    let age = app
        .synced_at
        .map(|t| format!("from {} ago", ago(app.now, t)))
        .unwrap_or_else(|| "empty".into());
    let text = format!(
        " READ-ONLY: cannot use the registry: {}. Showing the cached view ({age}); actions fail until it answers. Retrying… ",
        clean(error)
    );
    frame.render_widget(
        Paragraph::new(fit(&text, area.width as usize)).style(app.theme.style(Slot::Banner)),
        area,
    );
}

pub fn tabs(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    // Roomy labels when they fit, tight ones on narrow terminals.
    let roomy: usize = QuickFilter::ALL
        .iter()
        .map(|q| q.label().len() + 3)
        .sum::<usize>()
        + 1;
    let tight = (area.width as usize) < roomy + 20;
    let mut spans = vec![Span::raw(" ")];
    for q in QuickFilter::ALL {
        let label = if tight && q == QuickFilter::Decommissioned {
            "decom"
        } else {
            q.label()
        };
        if q == app.spec.quick {
            spans.push(Span::styled(format!("[{label}]"), t.style(Slot::Selected)));
        } else if tight {
            spans.push(Span::styled(label.to_string(), t.style(Slot::Dim)));
        } else {
            spans.push(Span::styled(format!(" {label} "), t.style(Slot::Dim)));
        }
        spans.push(Span::raw(" "));
    }
    let mut right = Vec::new();
    if !app.spec.query.is_empty() {
        right.push(format!("/{}", app.spec.query));
    }
    if app.filtering {
        right.push("filtering…".into());
    }
    if !app.marks.is_empty() {
        right.push(format!("{} marked", app.marks.len()));
    }
    let sort = app.spec.sort;
    let shown = super::inventory::columns_for(
        area.width,
        super::inventory::name_wants(app, crate::console::layout::table_rows(app)),
    );
    if !shown.contains(&sort.column) {
        // The sorted column is off screen: say what the order is.
        right.push(format!(
            "sort: {} {}",
            sort.column.config_name(),
            if sort.descending { "▼" } else { "▲" }
        ));
    }
    // Of the view the tab shows, not of everything: the filter works within it.
    right.push(format!("{} of {}", app.view.len(), app.scope_len));
    let right = format!("{} ", right.join(" · "));
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let room = (area.width as usize).saturating_sub(used);
    let right = fit(&right, room);
    spans.push(Span::raw(
        " ".repeat(room.saturating_sub(right.chars().count())),
    ));
    spans.push(Span::styled(right, t.style(Slot::Accent)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn detail_title(frame: &mut Frame, app: &App, d: &DetailState, area: Rect) {
    let name = d
        .row
        .and_then(|i| app.inventory.rows().get(i as usize))
        .map(|r| app.inventory.text(r.name).to_string())
        .unwrap_or_else(|| d.id.clone());
    let line = Line::from(vec![
        Span::styled(" Agent ", app.theme.style(Slot::Dim)),
        Span::styled(clean(&name).into_owned(), app.theme.style(Slot::Title)),
        Span::styled(format!("  {}", clean(&d.id)), app.theme.style(Slot::Dim)),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

pub fn status(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let line = match &app.overlay {
        Some(Overlay::FilterInput(_)) => Line::from(vec![
            Span::styled("/", t.style(Slot::Accent)),
            Span::styled(format!("{}▏", app.spec.query), t.style(Slot::Input)),
            Span::styled(
                "  type to filter by name · enter keep · esc clear",
                t.style(Slot::Dim),
            ),
        ]),
        Some(Overlay::CommandLine(CommandLine { text, .. })) => Line::from(vec![
            Span::styled(":", t.style(Slot::Accent)),
            Span::styled(format!("{text}▏"), t.style(Slot::Input)),
            Span::styled(
                "  unowned mine all suspended decommissioned static stale · agent NAME · theme NAME · q",
                t.style(Slot::Dim),
            ),
        ]),
        _ => match &app.message {
            Some((tone, text)) => {
                let (slot, mark) = match tone {
                    Tone::Info => (Slot::Hint, "·"),
                    Tone::Ok => (Slot::Ok, "✓"),
                    Tone::Error => (Slot::Error, "✕"),
                };
                Line::from(Span::styled(
                    fit(&format!(" {mark} {text}"), area.width as usize),
                    t.style(slot),
                ))
            }
            None => Line::from(""),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

pub fn footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let pairs: Vec<(String, String)> = match &app.overlay {
        // An overlay's hints: its words, with the keys its scope binds them to.
        Some(overlay) => overlay
            .hints()
            .into_iter()
            .filter_map(|h| match h {
                Hint::Typing(what) => Some(("type".to_string(), what.to_string())),
                Hint::Key(command, word) => app
                    .keymap
                    .keys_label_in(command, overlay.scope())
                    .map(|k| (k, word.to_string())),
            })
            .collect(),
        None => {
            let target = app.target().and_then(|(_, _, row)| row);
            // The streams screen shows no agent: the agent verbs are not offered there.
            let on_streams = matches!(app.screen, crate::console::app::Screen::Streams(_));
            let mut pairs: Vec<(String, String)> = app
                .keymap
                .hints_in(app.key_scope())
                .into_iter()
                .filter(|(_, _, c)| {
                    app.permits(*c, target.as_ref()).is_ok()
                        && app.agent_allows(*c, target.as_ref())
                        // `u` earns its place only while there is an owner change to undo.
                        && (*c != Command::UndoOwner || app.last_owner_change.is_some())
                        && !(on_streams && c.acts_on_an_agent())
                })
                .map(|(k, w, _)| (k, w.to_string()))
                .collect();
            if !matches!(app.screen, crate::console::app::Screen::Inventory)
                && let Some(k) = app.keymap.key_for(Command::Back)
            {
                pairs.insert(0, (k.label(), "back".into()));
            }
            pairs
        }
    };
    // The help hint always shows (it leads to everything else); the others as room allows.
    let help = app
        .keymap
        .key_for(Command::Help)
        .map(|k| (k.label(), "help".to_string()))
        .filter(|_| app.overlay.is_none());
    let len = |(k, w): &(String, String)| k.chars().count() + w.chars().count() + 3;
    let budget = (area.width as usize).saturating_sub(help.as_ref().map_or(0, len));
    let mut shown = Vec::new();
    let mut used = 0;
    for pair in pairs {
        if help.as_ref().is_some_and(|h| h.0 == pair.0) {
            continue;
        }
        if used + len(&pair) > budget {
            break;
        }
        used += len(&pair);
        shown.push(pair);
    }
    shown.extend(help);
    let mut spans = Vec::new();
    for (key, word) in shown {
        spans.push(Span::styled(format!(" {key} "), t.style(Slot::Key)));
        spans.push(Span::styled(format!("{word} "), t.style(Slot::Hint)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn too_small(frame: &mut Frame, app: &App, area: Rect) {
    let text = format!(
        "Terminal too small: {}×{}. Steward needs at least {MIN_WIDTH}×{MIN_HEIGHT}; enlarge the window (q quits).",
        area.width, area.height
    );
    let y = area.height / 2;
    let rect = Rect::new(
        area.x,
        area.y + y.saturating_sub(1),
        area.width,
        area.height.min(3),
    );
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true })
            .style(app.theme.style(Slot::Error)),
        rect,
    );
}
