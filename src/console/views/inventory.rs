//! The inventory table. Only the rows on screen are built, whatever the inventory's size.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::{ago, clean, fit};
use crate::console::app::App;
use crate::console::filter::Column;
use crate::console::inventory::{AgentRow, Inventory, NONE};
use crate::console::theme::{Slot, Theme};
use crate::model::{AgentSource, AgentStatus};

/// Fixed widths, and the order in which columns give way on narrow terminals.
fn width_of(c: Column) -> u16 {
    match c {
        Column::Name => 26,
        Column::Kind => 9,
        Column::Owner => 16,
        Column::Status => 16,
        Column::Team => 11,
        Column::Environment => 10,
        Column::Scopes => 24,
        Column::LastSeen => 11,
        Column::Flags => 18,
    }
}

const PRIORITY: [Column; 9] = [
    Column::Name,
    Column::Status,
    Column::Owner,
    Column::Kind,
    Column::LastSeen,
    Column::Flags,
    Column::Team,
    Column::Environment,
    Column::Scopes,
];

/// The columns that fit, in display order.
pub fn columns_for(width: u16) -> Vec<Column> {
    let mut used = 2u16; // the marker column
    let mut chosen = Vec::new();
    for c in PRIORITY {
        let w = width_of(c) + 1;
        if used + w <= width {
            used += w;
            chosen.push(c);
        }
    }
    Column::ALL
        .into_iter()
        .filter(|c| chosen.contains(c))
        .collect()
}

pub use crate::console::words::status_text;

pub fn status_style(theme: &Theme, s: AgentStatus) -> Style {
    theme.status_style(s)
}

/// Flags as words: the registry's risk flags, plus what the row itself shows.
pub fn flags_text(inv: &Inventory, r: &AgentRow) -> String {
    let mut words: Vec<String> = Vec::new();
    if r.static_secret {
        words.push("static-secret".into());
    }
    if r.source == AgentSource::Discovered {
        words.push("discovered".into());
    }
    let labels = inv.text(r.flags);
    // Behaviour flags (`severity:kind`): the highest severity first, as a marker and a word
    // (never colour alone), then each kind once.
    if let Some(top) = crate::model::flag::highest_severity(labels.split(' ')) {
        words.insert(
            0,
            format!("{} {}", top.marker(), top.as_str().to_uppercase()),
        );
    }
    for w in labels.split(' ').filter(|w| !w.is_empty()) {
        let kind = w.split_once(':').map(|(_, k)| k).unwrap_or(w);
        let kind = clean(kind).into_owned();
        if !words.contains(&kind) {
            words.push(kind);
        }
    }
    words.join(" ")
}

fn cell_text(app: &App, r: &AgentRow, c: Column, width: usize) -> (String, Option<Style>) {
    let inv = &app.inventory;
    let t = &app.theme;
    let text = match c {
        Column::Name => clean(inv.text(r.name)).into_owned(),
        Column::Kind => r.kind.as_str().to_string(),
        Column::Owner => {
            if r.owner == NONE {
                return (fit("— unowned —", width), Some(t.style(Slot::Flag)));
            }
            clean(inv.owner_label(r)).into_owned()
        }
        Column::Status => {
            return (
                status_text(r.status).to_string(),
                Some(status_style(t, r.status)),
            );
        }
        Column::Team => clean(inv.symbol(r.team)).into_owned(),
        Column::Environment => clean(inv.symbol(r.environment)).into_owned(),
        Column::Scopes => {
            let scopes = clean(inv.text(r.scopes));
            if r.scope_count == 0 {
                "0".to_string()
            } else {
                format!(
                    "{} {}",
                    r.scope_count,
                    scopes.split(' ').collect::<Vec<_>>().join(",")
                )
            }
        }
        Column::LastSeen => ago(app.now, r.last_seen),
        Column::Flags => {
            let f = flags_text(inv, r);
            let style = (!f.is_empty()).then(|| t.style(Slot::Flag));
            return (fit(&f, width), style);
        }
    };
    (fit(&text, width), None)
}

pub fn table(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let columns = columns_for(area.width);
    let fixed: u16 = columns
        .iter()
        .filter(|c| **c != Column::Name)
        .map(|c| width_of(*c) + 1)
        .sum::<u16>()
        + 3;
    let name_width = area.width.saturating_sub(fixed).max(width_of(Column::Name));
    let widths: Vec<Constraint> = std::iter::once(Constraint::Length(1))
        .chain(columns.iter().map(|c| {
            Constraint::Length(if *c == Column::Name {
                name_width
            } else {
                width_of(*c)
            })
        }))
        .collect();
    let sort = app.spec.sort;
    let header = Row::new(
        std::iter::once(Cell::from(" ")).chain(columns.iter().map(|c| {
            let arrow = if sort.column == *c {
                if sort.descending { " ▼" } else { " ▲" }
            } else {
                ""
            };
            Cell::from(format!("{}{arrow}", c.title()))
        })),
    )
    .style(t.style(Slot::TableHeader));

    let height = area.height.saturating_sub(1) as usize;
    let start = app.cursor.offset.min(app.view.len());
    let end = (start + height).min(app.view.len());
    // Only the visible slice is turned into widgets.
    let rows = app.view[start..end].iter().enumerate().map(|(n, &i)| {
        let r = app.inventory.row(i);
        let selected = start + n == app.cursor.selected;
        let marked = app.marks.contains(&i);
        let marker = match (selected, marked) {
            (true, true) => "▶",
            (true, false) => "▶",
            (false, true) => "*",
            _ => " ",
        };
        let mut cells = vec![Cell::from(Span::styled(
            if marked && selected { "*" } else { marker },
            t.style(Slot::Marked),
        ))];
        for c in &columns {
            let w = if *c == Column::Name {
                name_width
            } else {
                width_of(*c)
            } as usize;
            let (text, style) = cell_text(app, r, *c, w);
            cells.push(match style {
                Some(s) if !selected => Cell::from(Span::styled(text, s)),
                _ => Cell::from(text),
            });
        }
        let mut row = Row::new(cells);
        if selected {
            row = row.style(t.style(Slot::Selected));
        } else if marked {
            row = row.style(t.style(Slot::Marked));
        } else if r.status == AgentStatus::Decommissioned {
            row = row.style(t.style(Slot::Decommissioned));
        }
        row
    });
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, area);
    if app.view.is_empty() && height > 0 {
        let text = if app.filtering {
            "filtering…"
        } else if app.inventory.rows().is_empty() {
            "no agents yet (syncing with the registry…)"
        } else {
            "no agent matches this view · esc clears the filter"
        };
        frame.render_widget(
            Paragraph::new(format!("  {text}")).style(t.style(Slot::Dim)),
            Rect::new(area.x, area.y + 1, area.width, 1),
        );
    }
}
