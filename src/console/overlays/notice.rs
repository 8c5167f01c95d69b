//! A result or an error to read, closed by a key.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::popup::{fitted, popup};
use super::{Hint, Overlay, Room};
use crate::console::action::Effect;
use crate::console::app::{App, Tone};
use crate::console::keymap::{Command, Scope};
use crate::console::theme::Slot;

#[derive(Debug)]
pub struct Notice {
    pub title: String,
    pub lines: Vec<String>,
    pub tone: Tone,
}

impl Room for Notice {
    fn scope(&self) -> Scope {
        Scope::Reading
    }

    fn key(
        self,
        _app: &mut App,
        _key: KeyEvent,
        command: Option<Command>,
        _fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        match command {
            Some(Command::Cancel | Command::PageDown) => None,
            _ => Some(Overlay::Notice(self)),
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let slot = match self.tone {
            Tone::Error => Slot::Error,
            Tone::Ok => Slot::Ok,
            Tone::Info => Slot::Hint,
        };
        let mut lines: Vec<Line> = self
            .lines
            .iter()
            .map(|l| Line::from(Span::styled(format!(" {l}"), t.style(slot))))
            .collect();
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            " enter closes",
            t.style(Slot::Dim),
        )));
        let rect = fitted(area, 84, &lines);
        popup(frame, app, &self.title, rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![Hint::Key(Command::Cancel, "close")]
    }
}
