//! The streams screen's rules (`:streams`): the list is asked for on opening, on ctrl-r and with
//! every sync while the screen is open (lag and last errors move); `p` pauses the selected
//! stream after a confirmation, `e` resumes it at once. Who may do any of it is the registry's
//! answer (`/v1/me` `may.manage_streams` spares a refused round trip; the route's 403 is shown
//! as it says it).

use super::{clean, failed, went_offline};
use crate::client::ClientResult;
use crate::console::action::{Action, Effect, PauseStreamOrder, Pending};
use crate::console::app::{App, Overlay, Screen, Tone};
use crate::console::keymap::Command;
use crate::console::layout;
use crate::console::overlays::confirm::ConfirmState;
use crate::console::streams::receiver_label;
use crate::model::signals::{StreamList, StreamState, StreamSummary};

pub(super) fn on_answer(app: &mut App, action: Action, fx: &mut Vec<Effect>) {
    match action {
        Action::StreamsLoaded(result) => on_loaded(app, result),
        Action::StreamSet { id, pause, result } => on_set(app, id, pause, result, fx),
        _ => {}
    }
}

/// `:streams`: open the screen (or reload it).
pub(super) fn open(app: &mut App, fx: &mut Vec<Effect>) {
    if let Err(why) = app.permits(Command::Streams, None) {
        app.message = Some((Tone::Error, why));
        return;
    }
    if !matches!(app.screen, Screen::Streams(_)) {
        app.screen = Screen::Streams(Box::default());
    }
    poll(app, fx);
}

/// Asks for the list again when the screen is open and no answer is awaited.
pub(crate) fn poll(app: &mut App, fx: &mut Vec<Effect>) {
    if let Screen::Streams(s) = &mut app.screen
        && !s.in_flight
    {
        s.in_flight = true;
        fx.push(Effect::LoadStreams);
    }
}

fn on_loaded(app: &mut App, result: ClientResult<StreamList>) {
    let page = layout::stream_rows(app);
    let Screen::Streams(s) = &mut app.screen else {
        return;
    };
    s.in_flight = false;
    match result {
        Ok(list) => s.replace(list.streams, page),
        Err(e) => {
            s.error = Some(e.to_string());
            if e.is_unreachable() {
                went_offline(app, &e);
            }
        }
    }
}

pub(super) fn move_by(app: &mut App, delta: isize) {
    let page = layout::stream_rows(app);
    if let Screen::Streams(s) = &mut app.screen {
        s.move_by(delta, page);
    }
}

fn selected(app: &App) -> Option<&StreamSummary> {
    let Screen::Streams(s) = &app.screen else {
        return None;
    };
    s.selected()
}

/// `p`: pause the selected stream, after a confirmation (its receiver hears nothing meanwhile).
pub(super) fn pause(app: &mut App) {
    let Some(s) = selected(app) else {
        app.message = Some((Tone::Info, "no stream selected".into()));
        return;
    };
    if s.status == StreamState::Paused {
        app.message = Some((Tone::Info, "the stream is paused already".into()));
        return;
    }
    let order = PauseStreamOrder {
        id: s.stream_id.clone(),
        receiver: s.receiver.clone(),
        pending: s.pending,
    };
    app.overlay = Some(Overlay::Confirm(ConfirmState::PauseStream(
        Pending::buttons(order),
    )));
}

/// `e`: resume the selected stream at once (its waiting events are delivered in order).
pub(super) fn resume(app: &mut App, fx: &mut Vec<Effect>) {
    let Some(s) = selected(app) else {
        app.message = Some((Tone::Info, "no stream selected".into()));
        return;
    };
    if s.status == StreamState::Enabled {
        app.message = Some((Tone::Info, "the stream is enabled already".into()));
        return;
    }
    let (id, who) = (
        s.stream_id.clone(),
        receiver_label(&s.receiver).0.to_string(),
    );
    app.message = Some((
        Tone::Info,
        format!("resuming the stream of {}…", clean(&who)),
    ));
    fx.push(Effect::ResumeStream { id });
}

fn on_set(
    app: &mut App,
    id: String,
    pause: bool,
    result: ClientResult<StreamSummary>,
    fx: &mut Vec<Effect>,
) {
    let what = if pause { "pausing" } else { "resuming" };
    match result {
        Ok(summary) => {
            let who = receiver_label(&summary.receiver).0.to_string();
            app.message = Some((
                Tone::Ok,
                format!(
                    "the stream of {} is {} ({} waiting)",
                    clean(&who),
                    summary.status.as_str(),
                    summary.pending
                ),
            ));
            if let Screen::Streams(s) = &mut app.screen
                && let Some(list) = &mut s.streams
                && let Some(row) = list.iter_mut().find(|r| r.stream_id == id)
            {
                *row = summary;
            }
            poll(app, fx);
        }
        Err(e) => failed(app, &format!("{what} the stream"), &e),
    }
}
