//! What a one-key revocation did (status, credentials, tokens killed, time), and the optional
//! incident reference. Enter sends the reference and closes at once: its outcome comes back as
//! a toast, so the next key already belongs to the screen below.

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
use crate::model::api::RevokeOutcome;

#[derive(Debug)]
pub struct RevokeResult {
    pub name: String,
    pub outcome: RevokeOutcome,
    pub round_trip_ms: f64,
    /// The incident reference being typed.
    pub note: String,
    /// What became of the action's security events (read live from `/v1/signals/{seq}`).
    pub fan_out: Option<FanOutLine>,
}

/// The revoke result's Shared Signals line.
#[derive(Debug)]
pub enum FanOutLine {
    Known(crate::model::signals::FanOut),
    /// Not readable (no receivers' events, or not the caller's to see): the reason.
    Unknown(String),
}

impl FanOutLine {
    pub fn text(&self) -> String {
        match self {
            FanOutLine::Known(f) if !f.fanned_out => "queued for receivers…".into(),
            FanOutLine::Known(f) => format!(
                "{} receiver{} notified · {} pending · {} failed",
                f.notified,
                if f.notified == 1 { "" } else { "s" },
                f.pending,
                f.failed
            ),
            FanOutLine::Unknown(e) => format!("— ({})", clean(e)),
        }
    }
}

impl Room for Box<RevokeResult> {
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
                let text = self.note.trim().to_string();
                if !text.is_empty() {
                    app.message = Some((Tone::Info, "adding the incident reference…".into()));
                    fx.push(Effect::AddNote {
                        seq: self.outcome.audit_seq,
                        text,
                    });
                }
                None
            }
            _ => {
                edit(&mut self.note, &key);
                Some(Overlay::RevokeResult(self))
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let o = &self.outcome;
        let row = |k: &str, v: String| {
            Line::from(vec![
                Span::styled(format!("   {k:<18}"), t.style(Slot::Dim)),
                Span::raw(v),
            ])
        };
        let mut lines = vec![
            Line::from(vec![
                Span::styled(
                    if o.changed {
                        " ✓ REVOKED "
                    } else {
                        " · NO CHANGE "
                    },
                    if o.changed {
                        t.style(Slot::Ok)
                    } else {
                        t.style(Slot::Hint)
                    },
                ),
                Span::styled(clean(&self.name).into_owned(), t.style(Slot::Accent)),
                Span::styled(format!("  {}", clean(&o.agent_id)), t.style(Slot::Dim)),
            ]),
            Line::from(""),
            row(
                "status",
                format!("{} → {}", o.previous_status.as_str(), o.status.as_str()),
            ),
            row(
                "credentials",
                format!("{} disabled", o.credentials_disabled),
            ),
            row("tokens killed", o.tokens_revoked.to_string()),
            row(
                "elapsed",
                format!(
                    "{:.1} ms in the registry, {:.1} ms round trip",
                    o.elapsed_ms, self.round_trip_ms
                ),
            ),
            row("audit event", format!("#{}", o.audit_seq)),
            row(
                "signals",
                self.fan_out
                    .as_ref()
                    .map(FanOutLine::text)
                    .unwrap_or_else(|| "…".into()),
            ),
            Line::from(""),
        ];
        lines.push(Line::from(
            " Incident reference (optional; Enter adds it to the audit event, esc skips):",
        ));
        lines.push(Line::from(vec![
            Span::styled(" > ", t.style(Slot::Accent)),
            Span::styled(format!("{}▏", self.note), t.style(Slot::Input)),
        ]));
        let rect = fitted(area, 84, &lines);
        popup(frame, app, "Revocation", rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing("incident reference"),
            Hint::Key(Command::Accept, "add to audit"),
            Hint::Key(Command::Cancel, "skip"),
        ]
    }
}
