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

// Flags right after the essentials: an open behaviour flag is where an incident starts.
const PRIORITY: [Column; 9] = [
    Column::Name,
    Column::Status,
    Column::Owner,
    Column::Flags,
    Column::Kind,
    Column::LastSeen,
    Column::Team,
    Column::Environment,
    Column::Scopes,
];

/// The most the name column asks for before other columns are shown.
const NAME_WANTS_AT_MOST: u16 = 60;

/// The columns that fit, in display order. The name, status and owner come first; the other
/// columns are shown only while the name keeps `name_wants` (the longest name on screen,
/// bounded), so that names are not cut to make room for less important columns.
pub fn columns_for(width: u16, name_wants: u16) -> Vec<Column> {
    let name_wants = name_wants.clamp(width_of(Column::Name), NAME_WANTS_AT_MOST);
    let mut used = 2u16; // the marker column
    let mut chosen = Vec::new();
    for c in PRIORITY {
        let w = width_of(c) + 1;
        let essential = matches!(c, Column::Name | Column::Status | Column::Owner);
        // The name's own width is reserved apart from its fixed share.
        let room_for_name = if c == Column::Name || chosen.contains(&Column::Name) {
            name_wants.saturating_sub(width_of(Column::Name))
        } else {
            0
        };
        if used + w <= width && (essential || used + w + room_for_name <= width) {
            used += w;
            chosen.push(c);
        }
    }
    Column::ALL
        .into_iter()
        .filter(|c| chosen.contains(c))
        .collect()
}

/// The longest name among the rows on screen (what the name column asks for), tree glyphs and
/// parents' names included.
pub fn name_wants(app: &App, height: usize) -> u16 {
    let start = app.cursor.offset.min(app.view.len());
    let end = (start + height).min(app.view.len());
    (start..end)
        .map(|k| {
            let (prefix, name) = tree_name(&app.inventory, &app.view, k);
            prefix.chars().count() + name.chars().count()
        })
        .max()
        .unwrap_or(0)
        .min(u16::MAX as usize) as u16
}

/// How far the tree looks up or down the view for a row's parent or next sibling.
const TREE_REACH: usize = 4096;
/// The deepest parent chain followed.
const TREE_DEPTH: usize = 32;

/// True when `ancestor` is a parent, grandparent… of row `i`.
fn descends_from(inv: &Inventory, mut i: u32, ancestor: u32) -> bool {
    for _ in 0..TREE_DEPTH {
        match inv.parent_of(inv.row(i)) {
            Some(p) if p == ancestor => return true,
            Some(p) => i = p,
            None => return false,
        }
    }
    false
}

/// The view position of row `k`'s parent when the parent is shown above it with only the
/// parent's own family in between (the row then hangs under it in the tree).
fn shown_parent(inv: &Inventory, view: &[u32], k: usize) -> Option<usize> {
    let p = inv.parent_of(inv.row(view[k]))?;
    for j in (k.saturating_sub(TREE_REACH)..k).rev() {
        let q = view[j];
        if q == p {
            return Some(j);
        }
        if !descends_from(inv, q, p) {
            return None;
        }
    }
    None
}

/// True when a sibling of row `k` (same parent) follows it within the parent's family.
fn has_later_sibling(inv: &Inventory, view: &[u32], k: usize) -> bool {
    let Some(p) = inv.parent_of(inv.row(view[k])) else {
        return false;
    };
    for &q in view.iter().skip(k + 1).take(TREE_REACH) {
        if inv.parent_of(inv.row(q)) == Some(p) {
            return true;
        }
        if !descends_from(inv, q, p) {
            return false;
        }
    }
    false
}

/// The name of view row `k` as the table shows it: the tree's glyphs (`├─ `, `└─ `, `│  `)
/// when the row hangs under its parent shown above it, else the parent's name before its own
/// (`parent › name`) unless the name already starts with it, so that no row is ambiguous
/// whatever the sort or filter. Names are cleaned of control characters.
pub fn tree_name(inv: &Inventory, view: &[u32], k: usize) -> (String, String) {
    let row = inv.row(view[k]);
    let name = clean(inv.text(row.name)).into_owned();
    // The chain of shown ancestors, nearest first.
    let mut chain = vec![k];
    while chain.len() <= TREE_DEPTH {
        match shown_parent(inv, view, *chain.last().expect("not empty")) {
            Some(j) => chain.push(j),
            None => break,
        }
    }
    if chain.len() > 1 {
        let mut prefix = String::new();
        // Ancestors below the top one: a bar where their family continues below this row.
        for &j in chain[1..chain.len() - 1].iter().rev() {
            prefix.push_str(if has_later_sibling(inv, view, j) {
                "│  "
            } else {
                "   "
            });
        }
        prefix.push_str(if has_later_sibling(inv, view, k) {
            "├─ "
        } else {
            "└─ "
        });
        return (prefix, name);
    }
    let parent = match inv.parent_of(row) {
        Some(p) => clean(inv.text(inv.row(p).name)).into_owned(),
        // A parent this person cannot see: its id still tells families apart.
        None if row.parent.len > 0 => clean(inv.text(row.parent)).into_owned(),
        None => return (String::new(), name),
    };
    let prefixed = name
        .strip_prefix(parent.as_str())
        .is_some_and(|rest| rest.starts_with(['.', '/', ':']));
    if prefixed {
        (String::new(), name)
    } else {
        (String::new(), format!("{parent} › {name}"))
    }
}

/// The inventory's columns for the terminal as the table draws them.
pub fn columns_of(app: &App, area: Rect) -> Vec<Column> {
    columns_for(area.width, name_wants(app, area.height as usize))
}

/// Cuts a long name in the middle, keeping its end: sub-agents and instances differ in their
/// suffix (`parent.worker-7f3`), which must stay readable.
fn fit_middle(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    if width < 8 {
        return fit(text, width);
    }
    let chars: Vec<char> = text.chars().collect();
    // Keep the last `.segment` whole, with a little of what comes before it (the parent's
    // number: `explainer-2.summarizer` and `explainer-3.summarizer` must differ).
    let suffix = chars
        .iter()
        .rev()
        .position(|&c| c == '.')
        .map_or(0, |p| p + 1);
    let tail = ((width - 1) / 2).max(suffix + 2).min(width - 5);
    let head = width - 1 - tail;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[n - tail..]);
    out
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

fn cell_text(
    app: &App,
    k: usize,
    r: &AgentRow,
    c: Column,
    width: usize,
) -> (String, Option<Style>) {
    let inv = &app.inventory;
    let t = &app.theme;
    let text = match c {
        Column::Name => {
            let (prefix, name) = tree_name(inv, &app.view, k);
            let room = width.saturating_sub(prefix.chars().count());
            return (format!("{prefix}{}", fit_middle(&name, room)), None);
        }
        Column::Kind => r.kind.as_str().to_string(),
        Column::Owner => {
            if r.owner == NONE {
                return (fit("— unowned —", width), Some(t.style(Slot::Flag)));
            }
            if let Some(p) = inv.owner_left(r) {
                let text = format!("owner left: {}", clean(&p.display_name));
                return (fit(&text, width), Some(t.style(Slot::Flag)));
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
    let columns = columns_of(
        app,
        Rect::new(area.x, area.y, area.width, area.height.saturating_sub(1)),
    );
    let dropped: Vec<&str> = Column::ALL
        .into_iter()
        .filter(|c| !columns.contains(c))
        .map(|c| match c {
            Column::Environment => "env",
            Column::LastSeen => "seen",
            c => c.config_name(),
        })
        .collect();
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
            if *c == Column::Name && !dropped.is_empty() {
                // Narrow terminals name the columns that gave way.
                let mut text = format!("{}{arrow}  hidden:", c.title());
                for (n, name) in dropped.iter().enumerate() {
                    let rest = dropped.len() - n;
                    let more = if rest > 1 { 8 } else { 0 }; // room for " +N more"
                    if text.chars().count() + 1 + name.len() + more > name_width as usize {
                        text.push_str(&format!(" +{rest} more"));
                        break;
                    }
                    text.push(' ');
                    text.push_str(name);
                }
                return Cell::from(text);
            }
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
            let (text, style) = cell_text(app, start + n, r, *c, w);
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
        let text = if let Some((received, total)) = app.sync_progress {
            format!(
                "syncing {} of {total} agents with the registry…",
                received.min(total)
            )
        } else if app.filtering {
            "filtering…".into()
        } else if app.inventory.rows().is_empty() {
            "no agents yet (syncing with the registry…)".into()
        } else {
            "no agent matches this view · esc clears the filter".into()
        };
        frame.render_widget(
            Paragraph::new(format!("  {text}")).style(t.style(Slot::Dim)),
            Rect::new(area.x, area.y + 1, area.width, 1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_suffix() {
        let name = "analytics-dashboard-explainer-2.summarizer";
        let cut = fit_middle(name, 24);
        assert_eq!(cut.chars().count(), 24);
        assert!(cut.ends_with("2.summarizer"), "{cut}");
        assert!(cut.starts_with("analytics-"), "{cut}");
        assert_eq!(fit_middle("short", 24), "short");
    }

    #[test]
    fn the_name_keeps_its_room_before_minor_columns() {
        // Wide: everything fits beside a long name.
        assert_eq!(columns_for(200, 44).len(), Column::ALL.len());
        // 80 columns with 44-character names: name, owner and status stay; the rest give way.
        let narrow = columns_for(80, 44);
        assert_eq!(narrow, vec![Column::Name, Column::Owner, Column::Status]);
        // Short names leave room for more.
        assert!(columns_for(80, 20).len() > narrow.len());
        // 120 columns with 44-character names: the flags stay (where an incident starts), and
        // no column is shown while one before it in priority gave way.
        let wide = columns_for(120, 44);
        assert!(wide.contains(&Column::Flags), "{wide:?}");
        let shown: Vec<usize> = PRIORITY.iter().map(|c| wide.contains(c) as usize).collect();
        assert!(shown.windows(2).all(|w| w[0] >= w[1]), "{wide:?}");
    }
}

#[cfg(test)]
mod tree_tests {
    use super::*;
    use crate::console::inventory::tests::agent;
    use crate::model::AgentKind;

    fn inventory() -> Inventory {
        let mut inv = Inventory::new("x");
        let child = |id: &str, name: &str, parent: &str| {
            let mut a = agent(id, name, None);
            a.parent_id = Some(parent.into());
            a.kind = AgentKind::SubAgent;
            a
        };
        inv.upsert(&agent("p", "invoice-bot", None));
        inv.upsert(&child("e", "invoice-bot.extractor", "p"));
        inv.upsert(&child("i", "invoice-bot.extractor.i1", "e"));
        inv.upsert(&child("w", "writer", "p"));
        inv.upsert(&agent("q", "other", None));
        inv.upsert(&child("h", "helper", "ghost-parent-id"));
        inv
    }

    fn shown(inv: &Inventory, view: &[u32]) -> Vec<String> {
        (0..view.len())
            .map(|k| {
                let (prefix, name) = tree_name(inv, view, k);
                format!("{prefix}{name}")
            })
            .collect()
    }

    #[test]
    fn children_hang_under_their_parent_with_tree_glyphs() {
        let inv = inventory();
        // Tree order: p, e, i, w, q, h.
        assert_eq!(
            shown(&inv, &[0, 1, 2, 3, 4, 5]),
            [
                "invoice-bot",
                "├─ invoice-bot.extractor",
                "│  └─ invoice-bot.extractor.i1",
                "└─ writer",
                "other",
                "ghost-parent-id › helper",
            ]
        );
    }

    #[test]
    fn separated_from_their_parent_rows_name_it() {
        let inv = inventory();
        // Another sort or a filter: the parent is not right above.
        assert_eq!(
            shown(&inv, &[3, 4, 2, 0]),
            [
                "invoice-bot › writer",
                "other",
                // Already carries its parent's name.
                "invoice-bot.extractor.i1",
                "invoice-bot",
            ]
        );
        // The parent above, but a stranger in between: not nested.
        assert_eq!(shown(&inv, &[0, 4, 3])[2], "invoice-bot › writer");
        // Filtered to the instance under its grandparent: named, not nested.
        assert_eq!(shown(&inv, &[0, 2])[1], "invoice-bot.extractor.i1");
    }
}
