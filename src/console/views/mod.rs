//! Drawing. Views read the state and never change it; every string that came from the registry
//! passes through `strip_for_terminal` before it reaches the screen.

mod chrome;
mod detail;
mod dialogs;
mod help;
mod inventory;
pub mod reviews;

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Block;

use super::app::{App, Link, MIN_HEIGHT, MIN_WIDTH, Overlay, Screen};
use super::theme::Slot;
use crate::model::text::strip_for_terminal;

/// Untrusted text, made safe to draw.
pub fn clean(s: &str) -> Cow<'_, str> {
    strip_for_terminal(s)
}

/// The screen's bands, top to bottom.
pub struct Areas {
    pub header: Rect,
    pub banner: Option<Rect>,
    pub tabs: Rect,
    pub body: Rect,
    pub status: Rect,
    pub footer: Rect,
}

pub fn areas(app: &App, area: Rect) -> Areas {
    let banner = matches!(app.link, Link::Offline { .. });
    let [header, banner_area, tabs, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner as u16),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        header,
        banner: banner.then_some(banner_area),
        tabs,
        body,
        status,
        footer,
    }
}

/// How many table rows fit (what a page is for PageUp/PageDown).
pub fn table_rows(app: &App) -> usize {
    let a = areas(app, Rect::new(0, 0, app.width, app.height));
    match app.screen {
        // The table's own header takes one line.
        Screen::Inventory => a.body.height.saturating_sub(1) as usize,
        Screen::Detail(_) | Screen::Reviews(_) => a.body.height as usize,
    }
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    frame.render_widget(Block::new().style(app.theme.style(Slot::Base)), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        chrome::too_small(frame, app, area);
        return;
    }
    let a = areas(app, area);
    chrome::header(frame, app, a.header);
    if let Some(b) = a.banner {
        chrome::banner(frame, app, b);
    }
    match &app.screen {
        Screen::Inventory => {
            chrome::tabs(frame, app, a.tabs);
            inventory::table(frame, app, a.body);
        }
        Screen::Detail(d) => {
            chrome::detail_title(frame, app, d, a.tabs);
            detail::draw(frame, app, d, a.body);
        }
        Screen::Reviews(r) => {
            reviews::title(frame, app, r, a.tabs);
            reviews::draw(frame, app, r, a.body);
        }
    }
    chrome::status(frame, app, a.status);
    chrome::footer(frame, app, a.footer);
    match &app.overlay {
        None | Some(Overlay::FilterInput) | Some(Overlay::CommandLine { .. }) => {}
        Some(Overlay::Picker(p)) => dialogs::picker(frame, app, p, area),
        Some(Overlay::Help { scroll }) => help::draw(frame, app, *scroll, area),
        Some(Overlay::Busy(text)) => dialogs::busy(frame, app, text, area),
        Some(Overlay::Confirm(c)) => dialogs::confirm(frame, app, c, area),
        Some(Overlay::Justify(j)) => reviews::justify(frame, app, j, area),
        Some(Overlay::CampaignForm(f)) => dialogs::campaign_form(frame, app, f, area),
        Some(Overlay::RevokeResult(r)) => dialogs::revoke_result(frame, app, r, area),
        Some(Overlay::Notice { title, lines, tone }) => {
            dialogs::notice(frame, app, title, lines, *tone, area)
        }
    }
}

/// A rectangle of at most `w`×`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// "12s", "5m", "3h", "4d", "never".
pub fn ago(now: i64, then: i64) -> String {
    if then == i64::MIN {
        return "never".into();
    }
    let d = (now - then).max(0);
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86400 => format!("{}h", d / 3600),
        86400..31_536_000 => format!("{}d", d / 86400),
        _ => format!("{}y", d / 31_536_000),
    }
}

/// Cuts text to `width` characters, marking the cut with an ellipsis.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}
