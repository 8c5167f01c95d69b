//! The streams screen: every Shared Signals stream (receiver, delivery method, state as a word
//! and a marker, lag as events waiting and the age of the oldest, last delivery, last error),
//! and below it the selected stream in full.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{ago, clean, fit, span};
use crate::console::app::App;
use crate::console::layout;
use crate::console::streams::{StreamsState, dead, method_label, receiver_label, state_label};
use crate::console::theme::Slot;
use crate::model::signals::{StreamState, StreamSummary};

fn when(app: &App, t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{} ago", ago(app.now, t.timestamp())),
        None => "never".into(),
    }
}

fn slot(s: &StreamSummary) -> Slot {
    match s.status {
        StreamState::Paused if dead(s) => Slot::Error,
        StreamState::Enabled if s.consecutive_failures > 0 => Slot::Flag,
        StreamState::Paused => Slot::Flag,
        StreamState::Disabled => Slot::Dim,
        StreamState::Enabled => Slot::Hint,
    }
}

/// Lag: events waiting and how old the oldest is (`3 · 42s`), or `—`.
fn lag(s: &StreamSummary) -> String {
    if s.pending == 0 {
        "—".into()
    } else {
        format!("{} · {}", s.pending, span(s.lag_seconds as i64))
    }
}

pub fn title(frame: &mut Frame, app: &App, s: &StreamsState, area: Rect) {
    let t = &app.theme;
    let mut spans = vec![Span::styled(
        " Shared Signals streams ",
        t.style(Slot::Title),
    )];
    match &s.streams {
        None if s.error.is_none() => spans.push(Span::styled("· loading…", t.style(Slot::Dim))),
        None => {}
        Some(list) => {
            let waiting: u64 = list.iter().map(|x| x.pending).sum();
            let dead = list.iter().filter(|x| dead(x)).count();
            spans.push(Span::styled(
                format!("· {} streams · {waiting} events waiting ", list.len()),
                t.style(Slot::Accent),
            ));
            if dead > 0 {
                spans.push(Span::styled(
                    format!("· {dead} dead "),
                    t.style(Slot::Error),
                ));
            }
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

pub fn draw(frame: &mut Frame, app: &App, s: &StreamsState, area: Rect) {
    let t = &app.theme;
    let (top, bottom) = layout::streams(area);
    let w = area.width as usize;
    let list = s.streams.as_deref().unwrap_or(&[]);
    // Narrow terminals drop the last delivery column; the error takes what is left.
    let wide = w >= 100;
    let header = if wide {
        format!(
            "   {:<22} {:<4} {:<11} {:<12} {:<13} {}",
            "RECEIVER", "VIA", "STATE", "LAG", "DELIVERED", "LAST ERROR"
        )
    } else {
        format!(
            "   {:<18} {:<4} {:<11} {:<11} {}",
            "RECEIVER", "VIA", "STATE", "LAG", "LAST ERROR"
        )
    };
    let mut lines = vec![Line::from(Span::styled(
        fit(&header, w),
        t.style(Slot::TableHeader),
    ))];
    if list.is_empty() && s.streams.is_some() {
        lines.push(Line::from(Span::styled(
            "   no stream: a relying party subscribes with POST /ssf/streams (see docs/signals.md)",
            t.style(Slot::Dim),
        )));
    }
    let rows = (top.height as usize).saturating_sub(1);
    for n in s.list.visible(list.len(), rows) {
        let r = &list[n];
        let selected = s.selected_id.as_deref() == Some(r.stream_id.as_str());
        let (who, _) = receiver_label(&r.receiver);
        let error = r.last_error.as_deref().map_or("—".into(), clean);
        let text = if wide {
            format!(
                "{} {:<22} {:<4} {:<11} {:<12} {:<13} {}",
                if selected { "▶" } else { " " },
                fit(&clean(who), 22),
                method_label(&r.method),
                state_label(r),
                fit(&lag(r), 12),
                fit(&when(app, r.last_delivered_at), 13),
                error,
            )
        } else {
            format!(
                "{} {:<18} {:<4} {:<11} {:<11} {}",
                if selected { "▶" } else { " " },
                fit(&clean(who), 18),
                method_label(&r.method),
                state_label(r),
                fit(&lag(r), 11),
                error,
            )
        };
        let style = if selected {
            t.style(Slot::Selected)
        } else {
            t.style(slot(r))
        };
        lines.push(Line::from(Span::styled(fit(&format!(" {text}"), w), style)));
    }
    frame.render_widget(Paragraph::new(lines), top);

    if let Some(r) = s.selected() {
        frame.render_widget(
            Paragraph::new(particulars(app, r, w)).wrap(Wrap { trim: false }),
            bottom,
        );
    }
}

/// The selected stream in full.
fn particulars<'a>(app: &'a App, r: &'a StreamSummary, w: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    let label = |s: &str| Span::styled(format!(" {s:<15}"), t.style(Slot::Dim));
    let row = |l: &str, v: String| Line::from(vec![label(l), Span::raw(v)]);
    let (who, kind) = receiver_label(&r.receiver);
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!(
                " STREAM {} · {} {}",
                clean(&r.stream_id),
                if kind == "admin" { "admin" } else { "resource" },
                clean(who)
            ),
            w,
        ),
        t.style(Slot::Title),
    ))];
    lines.push(Line::from(vec![
        label("State"),
        Span::styled(state_label(r), t.style(slot(r))),
        Span::styled(
            r.reason
                .as_deref()
                .map_or(String::new(), |why| format!("   {}", clean(why))),
            t.style(Slot::Dim),
        ),
    ]));
    lines.push(row(
        "Delivery",
        format!(
            "{}{}",
            method_label(&r.method),
            r.endpoint_url
                .as_deref()
                .map_or(String::new(), |u| format!(" to {}", clean(u)))
        ),
    ));
    lines.push(row(
        "Lag",
        if r.pending == 0 {
            "nothing waits".into()
        } else {
            format!(
                "{} event(s) waiting, the oldest for {}",
                r.pending,
                span(r.lag_seconds as i64)
            )
        },
    ));
    lines.push(row(
        "Delivered",
        format!(
            "{} · last {} · {} refused by the receiver",
            r.delivered,
            when(app, r.last_delivered_at),
            r.failed
        ),
    ));
    lines.push(Line::from(vec![
        label("Last error"),
        match &r.last_error {
            Some(e) => Span::styled(
                format!(
                    "{} ({}; {} failure(s) in a row)",
                    clean(e),
                    when(app, r.last_error_at),
                    r.consecutive_failures
                ),
                t.style(Slot::Error),
            ),
            None => Span::styled("none", t.style(Slot::Dim)),
        },
    ]));
    if let Some(d) = &r.description {
        lines.push(row("Description", clean(d).into_owned()));
    }
    lines.push(row(
        "Created",
        format!("{} ago", ago(app.now, r.created_at.timestamp())),
    ));
    lines
}
