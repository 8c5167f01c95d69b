//! `?`: every binding, generated from the keymap (with the user's overrides).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::console::app::App;
use crate::console::theme::Slot;

pub fn draw(frame: &mut Frame, app: &App, scroll: u16, area: Rect) {
    let t = &app.theme;
    let mut lines = Vec::new();
    for (title, entries) in app.keymap.help() {
        lines.push(Line::from(Span::styled(
            format!(" {title}"),
            t.style(Slot::Title),
        )));
        for (keys, help) in entries {
            lines.push(Line::from(vec![
                Span::styled(format!("   {keys:<16}"), t.style(Slot::Accent)),
                Span::styled(help.to_string(), t.style(Slot::Hint)),
            ]));
        }
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(
        " Keys are set in config.toml's [keys] table; themes with :theme NAME.",
        t.style(Slot::Dim),
    )));
    let rect = Rect::new(
        area.x + 2,
        area.y + 1,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    let max = (lines.len() as u16).saturating_sub(rect.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll.min(max), 0))
            .block(
                Block::bordered()
                    .title(Span::styled(" Help: keys ", t.style(Slot::Title)))
                    .title_bottom(Span::styled(" ↑↓ scroll · esc closes ", t.style(Slot::Dim)))
                    .border_style(t.style(Slot::Border))
                    .style(t.style(Slot::Base)),
            ),
        rect,
    );
}
