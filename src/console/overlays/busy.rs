//! "Please wait": the registry is asked before a dialog can open (the decommission plan, the
//! open campaigns). Esc goes back; the answer is then dropped.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;

use super::popup::popup;
use super::{Hint, Overlay, Room};
use crate::console::action::Effect;
use crate::console::app::App;
use crate::console::keymap::{Command, Scope};
use crate::console::layout::centered;

#[derive(Debug)]
pub struct Busy(pub String);

impl Room for Busy {
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
            Some(Command::Cancel) => None,
            _ => Some(Overlay::Busy(self)),
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let rect = centered(area, 64.min(area.width - 4), 5);
        popup(
            frame,
            app,
            "Please wait",
            rect,
            vec![
                Line::from(format!(" {}", self.0)),
                Line::from(" esc goes back"),
            ],
        );
    }

    fn hints(&self) -> Vec<Hint> {
        vec![Hint::Key(Command::Cancel, "back")]
    }
}
