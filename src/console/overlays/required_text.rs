//! A prompt for a text the registry requires before it acts: a review decision's justification,
//! an approval's denial reason, the reason for acknowledging flags. One room does the typing,
//! the refusal of an empty text, cancel and the popup; each purpose names its words and the
//! order it sends.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::popup::{fitted, popup};
use super::{Hint, Overlay, Room, edit};
use crate::console::action::Effect;
use crate::console::app::{App, Tone};
use crate::console::keymap::{Command, Scope};
use crate::console::theme::{Slot, Theme};
use crate::console::update::reviews::verb_ing;
use crate::console::words::clean;
use crate::model::review::Verdict;

/// What a required text is for.
pub trait Purpose: std::fmt::Debug + Sized {
    /// The popup's title.
    const TITLE: &'static str;
    /// The field's label ("Reason").
    const LABEL: &'static str;
    /// The footer's word for typing, and for enter.
    const TYPING: &'static str;
    const ACCEPT: &'static str;
    /// The popup's last line.
    const HOW: &'static str;
    /// Said when esc leaves, and when enter meets an empty text.
    const CANCELLED: &'static str;
    const MISSING: &'static str;

    /// The lines above the field: what will be done, and why a text is needed.
    fn heading(&self, theme: &Theme) -> Vec<Line<'static>>;
    /// Sends the order with the text; says what is under way.
    fn send(self, text: String, app: &mut App, fx: &mut Vec<Effect>);
    fn into_overlay(prompt: RequiredText<Self>) -> Overlay;
}

/// A purpose waiting for its text.
#[derive(Debug)]
pub struct RequiredText<P> {
    pub purpose: P,
    pub text: String,
}

impl<P: Purpose> RequiredText<P> {
    pub fn open(purpose: P) -> Overlay {
        P::into_overlay(RequiredText {
            purpose,
            text: String::new(),
        })
    }
}

impl<P: Purpose> Room for RequiredText<P> {
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
                app.message = Some((Tone::Info, P::CANCELLED.into()));
                None
            }
            Some(Command::Accept) => {
                let text = self.text.trim().to_string();
                if text.is_empty() {
                    app.message = Some((Tone::Error, P::MISSING.into()));
                    return Some(P::into_overlay(self));
                }
                self.purpose.send(text, app, fx);
                None
            }
            _ => {
                edit(&mut self.text, &key);
                Some(P::into_overlay(self))
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let mut lines = self.purpose.heading(t);
        lines.extend([
            Line::from(""),
            Line::from(vec![
                Span::styled(format!(" {}: ", P::LABEL), t.style(Slot::Dim)),
                Span::styled(format!("{}▏", self.text), t.style(Slot::Input)),
            ]),
            Line::from(""),
            Line::from(Span::styled(format!(" {}", P::HOW), t.style(Slot::Dim))),
        ]);
        let rect = fitted(area, 76, &lines);
        popup(frame, app, P::TITLE, rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing(P::TYPING),
            Hint::Key(Command::Accept, P::ACCEPT),
            Hint::Key(Command::Cancel, "cancel"),
        ]
    }
}

/// A review decision the registry wants justified (the item says so before, or a 422 after);
/// the decision is sent again with it.
#[derive(Debug)]
pub struct Justify {
    pub item_id: i64,
    pub verdict: Verdict,
    pub agent_name: String,
    pub scope: String,
    /// Why the registry wants one (the recommendation's reason or its refusal).
    pub why: String,
}

impl Purpose for Justify {
    const TITLE: &'static str = "Justification required";
    const LABEL: &'static str = "Justification";
    const TYPING: &'static str = "justification";
    const ACCEPT: &'static str = "send";
    const HOW: &'static str = "enter sends the decision with it · esc cancels";
    const CANCELLED: &'static str = "cancelled; nothing decided";
    const MISSING: &'static str = "type a justification first (esc cancels)";

    fn heading(&self, theme: &Theme) -> Vec<Line<'static>> {
        let verb = match self.verdict {
            Verdict::Certify => "Certify",
            Verdict::Revoke => "Revoke",
        };
        vec![
            Line::from(Span::raw(format!(
                " {verb} {} of {}",
                clean(&self.scope),
                clean(&self.agent_name)
            ))),
            Line::from(Span::styled(
                format!(" {}", clean(&self.why)),
                theme.style(Slot::Dim),
            )),
        ]
    }

    fn send(self, text: String, app: &mut App, fx: &mut Vec<Effect>) {
        app.message = Some((
            Tone::Info,
            format!("{} {}…", verb_ing(self.verdict), clean(&self.scope)),
        ));
        fx.push(Effect::Decide {
            item_id: self.item_id,
            verdict: self.verdict,
            justification: Some(text),
        });
    }

    fn into_overlay(prompt: RequiredText<Self>) -> Overlay {
        Overlay::Justify(prompt)
    }
}

/// `n` on the approvals screen: a denial needs a reason, which the requester sees.
#[derive(Debug)]
pub struct Deny {
    /// The request's (and approval's) id.
    pub id: String,
    pub agent_name: String,
    pub scope: String,
}

impl Purpose for Deny {
    const TITLE: &'static str = "Deny";
    const LABEL: &'static str = "Reason";
    const TYPING: &'static str = "reason";
    const ACCEPT: &'static str = "deny";
    const HOW: &'static str = "enter denies · esc cancels";
    const CANCELLED: &'static str = "cancelled; nothing decided";
    const MISSING: &'static str = "a denial needs a reason: type it (esc cancels)";

    fn heading(&self, theme: &Theme) -> Vec<Line<'static>> {
        vec![
            Line::from(Span::raw(format!(
                " Deny {} for {}",
                clean(&self.scope),
                clean(&self.agent_name)
            ))),
            Line::from(Span::styled(
                " The requester sees the reason.",
                theme.style(Slot::Dim),
            )),
        ]
    }

    fn send(self, text: String, app: &mut App, fx: &mut Vec<Effect>) {
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
            reason: Some(text),
        });
    }

    fn into_overlay(prompt: RequiredText<Self>) -> Overlay {
        Overlay::DenyReason(prompt)
    }
}

/// `a` on the detail: an on-call engineer says "I am on it" for the agent's open flags, with a
/// reason the registry records and audits.
#[derive(Debug)]
pub struct AckFlags {
    pub agent_id: String,
    pub agent_name: String,
    /// (flag id, one line about it), only flags still `open`.
    pub flags: Vec<(String, String)>,
}

impl Purpose for AckFlags {
    const TITLE: &'static str = "Acknowledge flags";
    const LABEL: &'static str = "Reason";
    const TYPING: &'static str = "reason";
    const ACCEPT: &'static str = "acknowledge";
    const HOW: &'static str = "enter acknowledges · esc cancels";
    const CANCELLED: &'static str = "cancelled; nothing acknowledged";
    const MISSING: &'static str =
        "type a reason first: the registry records who acknowledged and why (esc cancels)";

    fn heading(&self, theme: &Theme) -> Vec<Line<'static>> {
        let n = self.flags.len();
        let mut lines = vec![Line::from(Span::raw(format!(
            " Acknowledge {n} open flag{} of {}",
            if n == 1 { "" } else { "s" },
            clean(&self.agent_name)
        )))];
        for (_, about) in self.flags.iter().take(6) {
            lines.push(Line::from(Span::styled(
                format!("   {}", clean(about)),
                theme.style(Slot::Flag),
            )));
        }
        if n > 6 {
            lines.push(Line::from(Span::styled(
                format!("   … and {} more", n - 6),
                theme.style(Slot::Dim),
            )));
        }
        lines.push(Line::from(Span::styled(
            " Acknowledged flags stay on the agent until a responder resolves them.",
            theme.style(Slot::Dim),
        )));
        lines
    }

    fn send(self, text: String, app: &mut App, fx: &mut Vec<Effect>) {
        app.message = Some((
            Tone::Info,
            format!("acknowledging {} flag(s)…", self.flags.len()),
        ));
        fx.push(Effect::AcknowledgeFlags {
            agent_id: self.agent_id,
            ids: self.flags.into_iter().map(|(id, _)| id).collect(),
            reason: text,
        });
    }

    fn into_overlay(prompt: RequiredText<Self>) -> Overlay {
        Overlay::AckFlag(prompt)
    }
}
