//! `:`: the command line, with its history. The commands themselves are keymap bindings (their
//! `:` words); `update::command_line` runs them.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::{Hint, Overlay, Room, edit};
use crate::console::action::Effect;
use crate::console::app::App;
use crate::console::keymap::{Command, Scope};
use crate::console::update::command_line::run_command_line;

#[derive(Debug, Default)]
pub struct CommandLine {
    pub text: String,
    /// Position in the history while browsing it with Up/Down.
    pub history_pos: Option<usize>,
}

impl Room for CommandLine {
    fn scope(&self) -> Scope {
        Scope::Prompt
    }

    fn takes_text(&self) -> bool {
        true
    }

    fn key(
        mut self,
        app: &mut App,
        key: KeyEvent,
        command: Option<Command>,
        fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        match command {
            Some(Command::Cancel) => None,
            Some(Command::Accept) => {
                let line = self.text.trim().to_string();
                if !line.is_empty() {
                    app.history.retain(|h| h != &line);
                    app.history.push(line.clone());
                    run_command_line(app, &line, fx);
                }
                None
            }
            Some(c @ (Command::Up | Command::Down)) => {
                if !app.history.is_empty() {
                    let last = app.history.len() - 1;
                    self.history_pos = match (c, self.history_pos) {
                        (Command::Up, None) => Some(last),
                        (Command::Up, Some(p)) => Some(p.saturating_sub(1)),
                        (_, Some(p)) if p < last => Some(p + 1),
                        _ => None,
                    };
                    self.text = self
                        .history_pos
                        .map_or_else(String::new, |p| app.history[p].clone());
                }
                Some(Overlay::CommandLine(self))
            }
            _ => {
                if key.code == KeyCode::Backspace && self.text.is_empty() {
                    return None;
                }
                edit(&mut self.text, &key);
                Some(Overlay::CommandLine(self))
            }
        }
    }

    fn draw(&self, _frame: &mut Frame, _app: &App, _area: Rect) {
        // The status line shows the text being typed.
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Key(Command::Accept, "run"),
            Hint::Key(Command::Up, "history"),
            Hint::Key(Command::Cancel, "close"),
        ]
    }
}
