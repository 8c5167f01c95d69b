//! Drawing shared by the overlays: a bordered pop-up sized to its text, and the two buttons.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::console::app::App;
use crate::console::layout::centered;
use crate::console::theme::Slot;

fn frame_block<'a>(app: &App, title: &str) -> Block<'a> {
    Block::bordered()
        .title(Span::styled(
            format!(" {title} "),
            app.theme.style(Slot::Title),
        ))
        .border_style(app.theme.style(Slot::Border))
        .style(app.theme.style(Slot::Base))
}

/// Rows that `lines` take when wrapped to `width` columns.
fn wrapped_height(lines: &[Line<'_>], width: u16) -> u16 {
    let width = width.max(1) as usize;
    lines
        .iter()
        .map(|l| {
            let rows = l.width().max(1).div_ceil(width);
            // Word wrapping can need one row more than the characters alone.
            (if rows > 1 { rows + 1 } else { rows }) as u16
        })
        .sum()
}

/// A centred pop-up as tall as its wrapped text (plus borders), within `area`.
pub fn fitted(area: Rect, max_width: u16, lines: &[Line<'_>]) -> Rect {
    let w = max_width.min(area.width.saturating_sub(2));
    let h = wrapped_height(lines, w.saturating_sub(2)) + 2;
    centered(area, w, h.min(area.height))
}

pub fn popup(frame: &mut Frame, app: &App, title: &str, rect: Rect, lines: Vec<Line<'_>>) {
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(frame_block(app, title))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

pub fn buttons<'a>(app: &App, confirm_focused: bool, action: &str) -> Line<'a> {
    let t = &app.theme;
    let (cancel, act) = if confirm_focused {
        (t.style(Slot::Button), t.style(Slot::ButtonFocused))
    } else {
        (t.style(Slot::ButtonFocused), t.style(Slot::Button))
    };
    Line::from(vec![
        Span::raw("   "),
        Span::styled(
            if confirm_focused {
                "  Cancel  "
            } else {
                "[ Cancel ]"
            },
            cancel,
        ),
        Span::raw("    "),
        Span::styled(
            if confirm_focused {
                format!("[ {action} ]")
            } else {
                format!("  {action}  ")
            },
            act,
        ),
    ])
}
