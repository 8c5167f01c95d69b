//! Overlays: everything drawn over a screen (prompts, the owner picker, confirmations, the
//! campaign form, notices, the help). Each is a room of its own module holding its state, its
//! keys, its drawing and its footer hints ([`Room`]); this module only routes. Adding an overlay
//! is one module plus one line in the `overlays!` list below.

pub mod activity;
pub mod busy;
pub mod campaign_form;
pub mod command_line;
pub mod confirm;
pub mod filter_input;
pub mod help;
pub mod notice;
pub mod picker;
pub mod popup;
pub mod required_text;
pub mod revoke_result;
pub mod scope_request;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::action::Effect;
use super::app::App;
use super::keymap::{Command, KeySpec, Scope};

/// One footer hint of an overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// A binding of the overlay's scope, with the footer's word for it here.
    Key(Command, &'static str),
    /// What typing does ("type: search people").
    Typing(&'static str),
}

/// What every overlay provides.
pub trait Room: Sized {
    /// The keymap scope its keys are bound in.
    fn scope(&self) -> Scope;

    /// True while typed characters go into one of its text fields (so a paste, or a key that is
    /// bound elsewhere, types instead of acting).
    fn takes_text(&self) -> bool {
        false
    }

    /// A key: `command` is its binding in [`Room::scope`] (None for typed characters while
    /// [`Room::takes_text`]). Returns the overlay to keep open; None closes it.
    fn key(
        self,
        app: &mut App,
        key: KeyEvent,
        command: Option<Command>,
        fx: &mut Vec<Effect>,
    ) -> Option<Overlay>;

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect);

    /// The footer while it is open, in order.
    fn hints(&self) -> Vec<Hint>;
}

macro_rules! overlays {
    ($( $(#[$doc:meta])* $variant:ident($state:ty) ),* $(,)?) => {
        /// The overlay open over the screen, if any.
        #[derive(Debug)]
        pub enum Overlay {
            $( $(#[$doc])* $variant($state), )*
        }

        impl Overlay {
            pub fn scope(&self) -> Scope {
                match self { $( Overlay::$variant(s) => s.scope(), )* }
            }

            pub fn takes_text(&self) -> bool {
                match self { $( Overlay::$variant(s) => s.takes_text(), )* }
            }

            pub fn hints(&self) -> Vec<Hint> {
                match self { $( Overlay::$variant(s) => s.hints(), )* }
            }

            pub fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
                match self { $( Overlay::$variant(s) => s.draw(frame, app, area), )* }
            }

            fn dispatch(
                self,
                app: &mut App,
                key: KeyEvent,
                command: Option<Command>,
                fx: &mut Vec<Effect>,
            ) -> Option<Overlay> {
                match self { $( Overlay::$variant(s) => s.key(app, key, command, fx), )* }
            }
        }
    };
}

overlays! {
    /// Typing a `/` query; the table follows as you type.
    FilterInput(filter_input::FilterInput),
    /// The `:` command line.
    CommandLine(command_line::CommandLine),
    /// The owner picker.
    Picker(picker::PickerState),
    /// `?`: the keys.
    Help(help::HelpState),
    /// Waiting for the registry before a dialog can open (e.g. the decommission plan).
    Busy(busy::Busy),
    /// A destructive order waiting for a yes.
    Confirm(confirm::ConfirmState),
    /// A review decision needs a justification: typed, then re-sent with it.
    Justify(required_text::RequiredText<required_text::Justify>),
    /// An admin fills in a new campaign.
    CampaignForm(Box<campaign_form::CampaignForm>),
    /// What a revocation did, and the incident reference prompt.
    RevokeResult(Box<revoke_result::RevokeResult>),
    /// The activity and audit timeline (`t`, `:audit`).
    Activity(Box<activity::ActivityState>),
    /// A result or an error to read.
    Notice(notice::Notice),
    /// `n` on the approvals screen: the denial's reason.
    DenyReason(required_text::RequiredText<required_text::Deny>),
    /// `a` on the detail: the reason for acknowledging the agent's open flags.
    AckFlag(required_text::RequiredText<required_text::AckFlags>),
    /// `+` on the detail: catalogue picker, justification, duration.
    ScopeRequest(Box<scope_request::ScopeRequest>),
}

impl Overlay {
    /// Routes a key to the open overlay: typed characters go into its text field when it has
    /// one; every other key is looked up in the overlay's keymap scope.
    pub fn key(self, app: &mut App, key: KeyEvent, fx: &mut Vec<Effect>) -> Option<Overlay> {
        let typed = matches!(key.code, KeyCode::Char(_))
            && !key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        let command = if typed && self.takes_text() {
            None
        } else {
            app.keymap
                .lookup_in(KeySpec::from_event(&key), self.scope())
        };
        self.dispatch(app, key, command, fx)
    }
}

/// Edits a one-line text field; true when the key was an edit.
pub fn edit(text: &mut String, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u') if ctrl => text.clear(),
        KeyCode::Char('w') if ctrl => {
            let trimmed = text.trim_end().len();
            text.truncate(trimmed);
            let cut = text.rfind(' ').map_or(0, |i| i + 1);
            text.truncate(cut);
        }
        KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
            if text.chars().count() < 200 {
                text.push(c)
            }
        }
        KeyCode::Backspace => {
            text.pop();
        }
        _ => return false,
    }
    true
}
