//! `?`: every binding, generated from the keymap (with the user's overrides). Two columns when
//! the terminal is wide enough, otherwise one that scrolls.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::console::app::App;
use crate::console::keymap::Scope;
use crate::console::theme::Slot;
use crate::console::update::COMMANDS;

fn section_lines<'a>(app: &App, title: &'a str, entries: &[(String, &'a str)]) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut lines = vec![Line::from(Span::styled(
        format!(" {title}"),
        t.style(Slot::Title),
    ))];
    let width = entries
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    for (keys, help) in entries {
        lines.push(Line::from(vec![
            Span::styled(format!("   {keys:<width$} "), t.style(Slot::Accent)),
            Span::styled(*help, t.style(Slot::Hint)),
        ]));
    }
    lines.push(Line::from(""));
    lines
}

pub fn draw(frame: &mut Frame, app: &App, scroll: u16, area: Rect) {
    let t = &app.theme;
    let sections = app.keymap.help();
    let footer = Line::from(Span::styled(
        " Rebind keys in config.toml [keys].",
        t.style(Slot::Dim),
    ));
    let rect = Rect::new(
        area.x,
        area.y + 1,
        area.width,
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    let block = Block::bordered()
        .title(Span::styled(" Help: keys ", t.style(Slot::Title)))
        .title_bottom(Span::styled(" ↑↓ scroll · esc closes ", t.style(Slot::Dim)))
        .border_style(t.style(Slot::Border))
        .style(t.style(Slot::Base));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);

    let commands: Vec<(String, &str)> = COMMANDS.iter().map(|(c, h)| (c.to_string(), *h)).collect();
    let mut columns: Vec<Vec<Line>> = Vec::new();
    if inner.width >= 110 {
        // The inventory's keys on the right, everything else on the left.
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for (title, entries) in &sections {
            let lines = section_lines(app, title, entries);
            if *title == Scope::Inventory.title() {
                right.extend(lines);
            } else {
                left.extend(lines);
            }
        }
        left.extend(section_lines(app, "Commands (after :)", &commands));
        right.push(footer);
        columns.push(left);
        columns.push(right);
    } else {
        let mut one = Vec::new();
        for (title, entries) in &sections {
            one.extend(section_lines(app, title, entries));
        }
        one.extend(section_lines(app, "Commands (after :)", &commands));
        one.push(footer);
        columns.push(one);
    }
    let areas = Layout::horizontal(vec![Constraint::Fill(1); columns.len()]).split(inner);
    for (lines, column) in columns.into_iter().zip(areas.iter()) {
        let max = (lines.len() as u16).saturating_sub(column.height);
        frame.render_widget(Paragraph::new(lines).scroll((scroll.min(max), 0)), *column);
    }
}
