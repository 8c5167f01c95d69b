//! The acknowledge prompt (`a` on the detail): an on-call engineer says "I am on it" for the
//! agent's open flags, with a reason the registry records and audits. The reason is required.

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

/// The open flags of one agent waiting for a reason.
#[derive(Debug)]
pub struct AckFlag {
    pub agent_id: String,
    pub agent_name: String,
    /// (flag id, one line about it), only flags still `open`.
    pub flags: Vec<(String, String)>,
    pub text: String,
}

impl Room for AckFlag {
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
                app.message = Some((Tone::Info, "cancelled; nothing acknowledged".into()));
                None
            }
            Some(Command::Accept) => {
                let reason = self.text.trim().to_string();
                if reason.is_empty() {
                    app.message = Some((
                        Tone::Error,
                        "type a reason first: the registry records who acknowledged and why (esc cancels)"
                            .into(),
                    ));
                    return Some(Overlay::AckFlag(self));
                }
                app.message = Some((
                    Tone::Info,
                    format!("acknowledging {} flag(s)…", self.flags.len()),
                ));
                fx.push(Effect::AcknowledgeFlags {
                    agent_id: self.agent_id,
                    ids: self.flags.into_iter().map(|(id, _)| id).collect(),
                    reason,
                });
                None
            }
            _ => {
                edit(&mut self.text, &key);
                Some(Overlay::AckFlag(self))
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let mut lines = vec![Line::from(Span::raw(format!(
            " Acknowledge {} open flag{} of {}",
            self.flags.len(),
            if self.flags.len() == 1 { "" } else { "s" },
            clean(&self.agent_name)
        )))];
        for (_, about) in self.flags.iter().take(6) {
            lines.push(Line::from(Span::styled(
                format!("   {}", clean(about)),
                t.style(Slot::Flag),
            )));
        }
        if self.flags.len() > 6 {
            lines.push(Line::from(Span::styled(
                format!("   … and {} more", self.flags.len() - 6),
                t.style(Slot::Dim),
            )));
        }
        lines.extend([
            Line::from(Span::styled(
                " Acknowledged flags stay on the agent until a responder resolves them.",
                t.style(Slot::Dim),
            )),
            Line::from(""),
            Line::from(vec![
                Span::styled(" Reason: ", t.style(Slot::Dim)),
                Span::styled(format!("{}▏", self.text), t.style(Slot::Input)),
            ]),
            Line::from(""),
            Line::from(Span::styled(
                " enter acknowledges · esc cancels",
                t.style(Slot::Dim),
            )),
        ]);
        let rect = fitted(area, 76, &lines);
        popup(frame, app, "Acknowledge flags", rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing("reason"),
            Hint::Key(Command::Accept, "acknowledge"),
            Hint::Key(Command::Cancel, "cancel"),
        ]
    }
}
