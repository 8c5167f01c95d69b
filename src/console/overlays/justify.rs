//! The justification prompt: the registry wants a reason for a review decision (the item says
//! so before, or a 422 says so after); the decision is sent again with it.

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
use crate::console::update::reviews::verb_ing;
use crate::console::words::clean;
use crate::model::review::Verdict;

/// A review decision waiting for its justification.
#[derive(Debug)]
pub struct JustifyState {
    pub item_id: i64,
    pub verdict: Verdict,
    pub agent_name: String,
    pub scope: String,
    /// Why the registry wants one (the recommendation's reason or its refusal).
    pub why: String,
    pub text: String,
}

impl Room for JustifyState {
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
                let text = self.text.trim().to_string();
                if text.is_empty() {
                    app.message = Some((
                        Tone::Error,
                        "type a justification first (esc cancels)".into(),
                    ));
                    return Some(Overlay::Justify(self));
                }
                app.message = Some((
                    Tone::Info,
                    format!("{} {}…", verb_ing(self.verdict), clean(&self.scope)),
                ));
                fx.push(Effect::Decide {
                    item_id: self.item_id,
                    verdict: self.verdict,
                    justification: Some(text),
                });
                None
            }
            _ => {
                edit(&mut self.text, &key);
                Some(Overlay::Justify(self))
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let verb = match self.verdict {
            Verdict::Certify => "Certify",
            Verdict::Revoke => "Revoke",
        };
        let lines = vec![
            Line::from(Span::raw(format!(
                " {verb} {} of {}",
                clean(&self.scope),
                clean(&self.agent_name)
            ))),
            Line::from(Span::styled(
                format!(" {}", clean(&self.why)),
                t.style(Slot::Dim),
            )),
            Line::from(""),
            Line::from(vec![
                Span::styled(" Justification: ", t.style(Slot::Dim)),
                Span::styled(format!("{}▏", self.text), t.style(Slot::Input)),
            ]),
            Line::from(""),
            Line::from(Span::styled(
                " enter sends the decision with it · esc cancels",
                t.style(Slot::Dim),
            )),
        ];
        let rect = fitted(area, 76, &lines);
        popup(frame, app, "Justification required", rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing("justification"),
            Hint::Key(Command::Accept, "send"),
            Hint::Key(Command::Cancel, "cancel"),
        ]
    }
}
