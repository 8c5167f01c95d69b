//! `/`: the fuzzy filter's prompt. The query lives in the filter spec (the table follows as you
//! type); the prompt itself is drawn in the status line.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::{Hint, Overlay, Room, edit};
use crate::console::action::Effect;
use crate::console::app::{App, Screen};
use crate::console::keymap::{Command, Scope};
use crate::console::update::reviews;
use crate::console::update::{move_by, refilter};

#[derive(Debug, Default)]
pub struct FilterInput;

impl Room for FilterInput {
    fn scope(&self) -> Scope {
        Scope::Prompt
    }

    fn takes_text(&self) -> bool {
        true
    }

    fn key(
        self,
        app: &mut App,
        key: KeyEvent,
        command: Option<Command>,
        fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        if let Screen::Reviews(r) = &mut app.screen {
            // The review queue's filter: the registry filters every page of the queue.
            match command {
                Some(Command::Cancel) => {
                    r.filter.clear();
                    reviews::reload(r, fx);
                    return None;
                }
                Some(Command::Accept) => return None,
                _ => {
                    if edit(&mut r.filter, &key) {
                        reviews::reload(r, fx);
                    }
                    return Some(Overlay::FilterInput(self));
                }
            }
        }
        match command {
            Some(Command::Cancel) => {
                app.spec.query.clear();
                refilter(app, fx);
                None
            }
            Some(Command::Accept) => None,
            Some(Command::Up) => {
                move_by(app, -1);
                Some(Overlay::FilterInput(self))
            }
            Some(Command::Down) => {
                move_by(app, 1);
                Some(Overlay::FilterInput(self))
            }
            _ => {
                let mut q = std::mem::take(&mut app.spec.query);
                let changed = edit(&mut q, &key);
                app.spec.query = q;
                if changed {
                    refilter(app, fx);
                }
                Some(Overlay::FilterInput(self))
            }
        }
    }

    fn draw(&self, _frame: &mut Frame, _app: &App, _area: Rect) {
        // The status line shows the query.
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing("filter by name"),
            Hint::Key(Command::Accept, "keep filter"),
            Hint::Key(Command::Cancel, "clear"),
            Hint::Key(Command::Down, "move"),
        ]
    }
}
