//! Drawing. Views read the state and never change it; every string that came from the registry
//! passes through `strip_for_terminal` before it reaches the screen.

pub mod approvals;
mod chrome;
pub mod detail;
mod inventory;
pub mod reviews;

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::widgets::Block;

use super::app::{App, MIN_HEIGHT, MIN_WIDTH, Screen};
use super::theme::Slot;
use crate::model::text::strip_for_terminal;

/// Untrusted text, made safe to draw.
pub fn clean(s: &str) -> Cow<'_, str> {
    strip_for_terminal(s)
}

pub use super::layout::{Areas, areas, centered};
pub use detail::length as detail_length;

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
        Screen::Approvals(s) => {
            approvals::title(frame, app, s, a.tabs);
            approvals::draw(frame, app, s, a.body);
        }
    }
    chrome::status(frame, app, a.status);
    chrome::footer(frame, app, a.footer);
    if let Some(overlay) = &app.overlay {
        overlay.draw(frame, app, area);
    }
}

/// "12s", "5m", "3h", "4d": how long a duration of `secs` is.
pub fn span(secs: i64) -> String {
    let d = secs.max(0);
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86400 => format!("{}h", d / 3600),
        86400..31_536_000 => format!("{}d", d / 86400),
        _ => format!("{}y", d / 31_536_000),
    }
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
