//! Drawing. Views read the state and never change it; every string that came from the registry
//! passes through `strip_for_terminal` before it reaches the screen.

pub mod approvals;
mod chrome;
pub mod detail;
mod inventory;
pub mod reviews;
pub mod streams;

use ratatui::Frame;
use ratatui::widgets::Block;

use super::app::{App, MIN_HEIGHT, MIN_WIDTH, Screen};
use super::theme::Slot;

pub use super::layout::{Areas, areas, centered};
pub use super::words::{ago, clean, fit, span};

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
        Screen::Streams(s) => {
            streams::title(frame, app, s, a.tabs);
            streams::draw(frame, app, s, a.body);
        }
    }
    chrome::status(frame, app, a.status);
    chrome::footer(frame, app, a.footer);
    if let Some(overlay) = &app.overlay {
        overlay.draw(frame, app, area);
    }
}
