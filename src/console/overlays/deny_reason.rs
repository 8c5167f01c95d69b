//! `n` on the approvals screen: the denial's reason (the registry requires one), then the denial.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::popup::{fitted, popup};
use super::{Hint, Overlay, Room, edit};
use crate::console::action::Effect;
use crate::console::app::{App, Tone};
use crate::console::keymap::{Command, Scope};
use crate::console::theme::Slot;
use crate::console::words::clean;

/// A denial waiting for its reason.
#[derive(Debug)]
pub struct DenyReason {
    /// The request's (and approval's) id.
    pub id: String,
    pub agent_name: String,
    pub scope: String,
    pub text: String,
}

impl Room for DenyReason {
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
            Some(Command::Cancel) => {
                app.message = Some((Tone::Info, "cancelled; nothing decided".into()));
                None
            }
            Some(Command::Accept) => {
                let reason = self.text.trim().to_string();
                if reason.is_empty() {
                    app.message = Some((
                        Tone::Error,
                        "a denial needs a reason: type it (esc cancels)".into(),
                    ));
                    return Some(Overlay::DenyReason(self));
                }
                app.message = Some((
                    Tone::Info,
                    format!(
                        "denying {} for {}…",
                        clean(&self.scope),
                        clean(&self.agent_name)
                    ),
                ));
                fx.push(Effect::DecideApproval {
                    id: self.id,
                    approve: false,
                    reason: Some(reason),
                });
                None
            }
            _ => {
                edit(&mut self.text, &key);
                Some(Overlay::DenyReason(self))
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let lines = vec![
            Line::from(Span::raw(format!(
                " Deny {} for {}",
                clean(&self.scope),
                clean(&self.agent_name)
            ))),
            Line::from(Span::styled(
                " The requester sees the reason.",
                t.style(Slot::Dim),
            )),
            Line::from(""),
            Line::from(vec![
                Span::styled(" Reason: ", t.style(Slot::Dim)),
                Span::styled(format!("{}▏", self.text), t.style(Slot::Input)),
            ]),
            Line::from(""),
            Line::from(Span::styled(
                " enter denies · esc cancels",
                t.style(Slot::Dim),
            )),
        ];
        let rect = fitted(area, 76, &lines);
        popup(frame, app, "Deny", rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing("reason"),
            Hint::Key(Command::Accept, "deny"),
            Hint::Key(Command::Cancel, "cancel"),
        ]
    }
}
