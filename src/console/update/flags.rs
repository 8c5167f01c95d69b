//! Behaviour flags on the detail: `a` opens the reason prompt for the agent's open flags, and the
//! registry's answers come back here (toast, then the detail reloads to show who acknowledged).

use super::{clean, failed, reload_detail};
use crate::client::ClientResult;
use crate::console::action::Effect;
use crate::console::app::{App, Screen, Tone};
use crate::console::keymap::Command;
use crate::console::overlays::required_text::{AckFlags, RequiredText};
use crate::model::flag::{Flag, FlagState};

/// `a` on the detail: the flags still open (not yet acknowledged), in the prompt.
pub(super) fn acknowledge(app: &mut App) {
    let Screen::Detail(d) = &app.screen else {
        return;
    };
    let Some(Ok(detail)) = &d.detail else {
        app.message = Some((Tone::Info, "the detail is still loading".into()));
        return;
    };
    let open: Vec<(String, String)> = detail
        .open_flags
        .iter()
        .filter(|f| f.state == FlagState::Open)
        .map(|f| {
            (
                f.id.clone(),
                format!(
                    "{} {} {} — {}",
                    f.severity.marker(),
                    f.severity.as_str(),
                    f.kind.as_str(),
                    clean(&f.summary)
                ),
            )
        })
        .collect();
    let acked = detail.open_flags.len() - open.len();
    let agent_id = detail.agent.id.clone();
    let agent_name = detail.agent.name.clone();
    if open.is_empty() {
        app.message = Some((
            Tone::Info,
            if acked == 0 {
                format!("{} has no open flag", clean(&agent_name))
            } else {
                format!(
                    "{} has no open flag to acknowledge ({acked} already acknowledged)",
                    clean(&agent_name)
                )
            },
        ));
        return;
    }
    let row = app.target().and_then(|(_, _, row)| row);
    if let Err(why) = app.permits(Command::AcknowledgeFlag, row.as_ref()) {
        app.message = Some((Tone::Error, why));
        return;
    }
    app.overlay = Some(RequiredText::open(AckFlags {
        agent_id,
        agent_name,
        flags: open,
    }));
}

pub(super) fn on_acknowledged(
    app: &mut App,
    agent_id: String,
    results: Vec<(String, ClientResult<Flag>)>,
    fx: &mut Vec<Effect>,
) {
    let total = results.len();
    let mut done = 0;
    let mut first_error = None;
    for (id, result) in results {
        match result {
            Ok(_) => done += 1,
            // Someone else acknowledged it meanwhile: it is acknowledged, which was the point.
            Err(e) if e.status() == Some(409) => done += 1,
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some((id, e));
                }
            }
        }
    }
    match first_error {
        None => {
            app.message = Some((
                Tone::Ok,
                format!(
                    "acknowledged {done} flag{} on {}",
                    if done == 1 { "" } else { "s" },
                    clean(&super::name_of(app, &agent_id))
                ),
            ))
        }
        Some((id, e)) => failed(
            app,
            &format!("acknowledging flag {id} ({done} of {total} acknowledged)"),
            &e,
        ),
    }
    reload_detail(app, &agent_id, fx);
}
