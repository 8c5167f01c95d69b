//! The terminal console: a keyboard-first view of the registry, reached only through `client`.
//!
//! Shape: `action` (what happens) → `update` (state changes, pure of I/O, one module per room:
//! keys, verbs, answers, reviews, sync, filter, command line) → `runtime` (carries out effects on
//! tasks, feeds results back) → `views` (draw the state, never change it). Each overlay is a room
//! of its own in `overlays` (state, keys, drawing, hints). `layout` says where things go and
//! `words` how they are written, for both sides; `list` is the one cursor every list uses.
//! `keymap` is the one list of bindings behind the footer, the help, the README's key table and
//! the `[keys]` overrides; `theme` and `config` read the TOML files; `inventory` and `cache`
//! hold the local view; `filter` runs off the UI thread.

pub mod action;
pub mod app;
pub mod approvals;
pub mod cache;
pub mod config;
pub mod detail_text;
pub mod filter;
pub mod inventory;
pub mod keymap;
pub mod layout;
pub mod list;
pub mod overlays;
pub mod runtime;
pub mod streams;
pub mod svg;
pub mod terminal;
pub mod theme;
pub mod update;
pub mod views;
pub mod words;

use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;

pub use action::Action;
pub use runtime::{Console, Options};

/// Refuses early, with a useful message, when there is no terminal to draw on.
pub fn require_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the console needs an interactive terminal; in scripts use the commands \
             (`steward agents list`, `steward revoke ID`, …)"
        );
    }
    Ok(())
}

/// Runs the console in this terminal until the person quits.
pub async fn run(options: Options) -> anyhow::Result<()> {
    require_terminal()?;
    let mut console = Console::open(options)?;
    let mut tui = terminal::Tui::enter()?;
    let size = tui.terminal.size()?;
    console.dispatch(Action::Resize {
        width: size.width,
        height: size.height,
    });
    console.start();
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result: anyhow::Result<()> = loop {
        if let Err(e) = tui.terminal.draw(|f| views::draw(f, &console.app)) {
            break Err(e.into());
        }
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    console.dispatch(Action::Key(key))
                }
                Some(Ok(Event::Resize(width, height))) => {
                    console.dispatch(Action::Resize { width, height })
                }
                // A paste goes into the field being typed in, never into commands (a pasted
                // "X" must not revoke anything).
                Some(Ok(Event::Paste(text))) if console.app.accepts_text() => {
                    for c in text.chars().filter(|c| !c.is_control()) {
                        console.dispatch(Action::Key(crossterm::event::KeyEvent::from(
                            crossterm::event::KeyCode::Char(c),
                        )));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e.into()),
                None => break Ok(()),
            },
            Some(action) = console.next() => console.dispatch(action),
            _ = tick.tick() => console.dispatch(Action::Tick { now: chrono::Utc::now().timestamp() }),
        }
        console.drain();
        if console.app.quit {
            break Ok(());
        }
    };
    drop(tui);
    let saved = console.shutdown().await;
    result.and(saved)
}
