//! Where a key goes: into the open overlay (its own room decides), else to the screen's
//! keymap scope.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::verbs;
use crate::console::action::Effect;
use crate::console::app::App;
use crate::console::keymap::{Command, KeySpec};

pub(super) fn on_key(app: &mut App, key: KeyEvent, fx: &mut Vec<Effect>) {
    // A toast is about the agent it was shown for: it does not follow the cursor to another.
    let before = (app.target().map(|(id, _, _)| id), app.message.clone());
    route(app, key, fx);
    let after = app.target().map(|(id, _, _)| id);
    if after != before.0 && app.message == before.1 {
        app.message = None;
    }
}

fn route(app: &mut App, key: KeyEvent, fx: &mut Vec<Effect>) {
    if key.kind == crossterm::event::KeyEventKind::Release {
        return;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        verbs::on_command(app, Command::Quit, fx);
        return;
    }
    // Terminals send Alt+x as ESC x, so a quick "Esc, then x" arrives as Alt+x. Unless Alt+x is
    // bound, it means just that: Esc, then x.
    if key.modifiers.contains(KeyModifiers::ALT)
        && matches!(key.code, KeyCode::Char(_))
        && app
            .keymap
            .lookup_in(KeySpec::from_event(&key), app.key_scope())
            .is_none()
    {
        on_key(app, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE), fx);
        let mut plain = key;
        plain.modifiers.remove(KeyModifiers::ALT);
        on_key(app, plain, fx);
        return;
    }
    match app.overlay.take() {
        None => {
            let spec = KeySpec::from_event(&key);
            if let Some(command) = app.keymap.lookup_in(spec, app.key_scope()) {
                verbs::on_command(app, command, fx);
            }
        }
        Some(overlay) => {
            let back = overlay.key(app, key, fx);
            if app.overlay.is_none() {
                app.overlay = back;
            }
        }
    }
}
