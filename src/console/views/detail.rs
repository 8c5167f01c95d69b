//! The agent detail: its text (built by `detail_text`) in the body, scrolled.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;

use crate::console::app::{App, DetailState};
use crate::console::detail_text::lines;

pub fn draw(frame: &mut Frame, app: &App, d: &DetailState, area: Rect) {
    let lines = lines(app, d, area.width as usize);
    let max_scroll = lines.len().saturating_sub(area.height as usize);
    let scroll = d.scroll.offset.min(max_scroll) as u16;
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), area);
}
