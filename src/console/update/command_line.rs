//! `:` commands. Each word is a keymap binding (`Binding::words`), so the help, the README and
//! this agree; the ones with an argument are carried out here.

use super::clean;
use super::filter::refilter;
use super::verbs::{on_command, open_detail};
use crate::console::action::Effect;
use crate::console::app::{App, Overlay, Tone};
use crate::console::keymap::Command;
use crate::console::overlays::filter_input::FilterInput;

pub fn run_command_line(app: &mut App, line: &str, fx: &mut Vec<Effect>) {
    let line = line.trim().trim_start_matches(':');
    let (word, rest) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(w, r)| (w, r.trim()));
    let Some(command) = app.keymap.command_for_word(word) else {
        let words: Vec<String> = app
            .keymap
            .bindings()
            .iter()
            .filter(|b| !b.words.is_empty())
            .map(|b| b.words_label())
            .collect();
        app.message = Some((
            Tone::Error,
            format!("unknown command {:?}; try {}", clean(word), words.join(" ")),
        ));
        return;
    };
    match command {
        Command::OpenAgent => open_agent(app, rest, fx),
        Command::ExportEvidence => super::verbs::export_evidence(app, rest, fx),
        Command::Theme | Command::SaveTheme => {
            if rest.is_empty() {
                fx.push(Effect::ListThemes);
                return;
            }
            fx.push(Effect::LoadTheme {
                name: rest.to_string(),
                remember: command == Command::SaveTheme,
            });
        }
        other => on_command(app, other, fx),
    }
}

/// `:agent NAME`: opens the agent whose id or name (any case) is exactly NAME; otherwise the
/// inventory is filtered by NAME, so that the person picks among the matches.
fn open_agent(app: &mut App, text: &str, fx: &mut Vec<Effect>) {
    if text.is_empty() {
        app.message = Some((Tone::Error, ":agent needs a name or an id".into()));
        return;
    }
    if let Some(row) = exact_agent(app, text) {
        if !app.spec.query.is_empty() {
            app.spec.query.clear();
            refilter(app, fx);
        }
        let id = app.inventory.text(app.inventory.row(row).id).to_string();
        open_detail(app, id, Some(row), fx);
        return;
    }
    app.screen = crate::console::app::Screen::Inventory;
    app.spec.query = text.to_string();
    refilter(app, fx);
    app.overlay = Some(Overlay::FilterInput(FilterInput));
    app.message = Some((
        Tone::Info,
        format!(
            "no agent is named exactly {:?}; the matches are listed (enter opens one)",
            clean(text)
        ),
    ));
}

/// An agent's row by exact id, else exact name (any case).
fn exact_agent(app: &App, text: &str) -> Option<u32> {
    let inv = &app.inventory;
    if let Some(i) = inv.find_scan(text) {
        return Some(i);
    }
    (0..inv.rows().len() as u32)
        .filter(|&i| !inv.row(i).hidden)
        .find(|&i| inv.text(inv.row(i).name).eq_ignore_ascii_case(text))
}
