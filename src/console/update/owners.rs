//! The registry's answers about owners: the picker's ranking, owner changes (one agent, many
//! marked ones, or the undo of the last change).

use std::sync::Arc;

use super::filter::refilter;
use super::{clean, failed, reload_detail};
use crate::console::action::{Action, Effect, OwnerChange};
use crate::console::app::{App, Overlay, Tone};

pub(super) fn on_answer(app: &mut App, action: Action, fx: &mut Vec<Effect>) {
    match action {
        Action::OwnerCandidatesLoaded { agent_id, result } => {
            // Only the picker still open for this agent takes it; a late answer is dropped and
            // whatever is on screen now stays.
            let ours = matches!(&app.overlay, Some(Overlay::Picker(p)) if p.agent_id == agent_id);
            if ours && let Some(Overlay::Picker(mut p)) = app.overlay.take() {
                p.ranked(app, result.map_err(|e| e.to_string()));
                app.overlay = Some(Overlay::Picker(p));
            }
        }
        Action::OwnersAssigned {
            changes,
            results,
            undo,
        } => {
            let mut done: Vec<OwnerChange> = Vec::new();
            let mut first_error = None;
            let mut errors = 0;
            for (change, result) in changes.into_iter().zip(results) {
                match result {
                    Ok(agent) => {
                        Arc::make_mut(&mut app.inventory).upsert(&agent);
                        reload_detail(app, &agent.id, fx);
                        done.push(change);
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            if !done.is_empty() {
                app.cache_dirty = true;
                refilter(app, fx);
            }
            if let Some(e) = first_error {
                failed(
                    app,
                    &format!(
                        "changing the owner of {errors} agent(s) ({} changed)",
                        done.len()
                    ),
                    &e,
                );
            }
            if done.is_empty() {
                return;
            }
            let who = |o: &Option<String>| match o {
                Some(email) => clean(
                    app.inventory
                        .person(email)
                        .map_or(email.as_str(), |p| p.display_name.as_str()),
                ),
                None => "nobody".into(),
            };
            let text = match (done.as_slice(), undo) {
                ([one], false) => format!(
                    "{} is now owned by {} · u undo",
                    clean(&one.name),
                    who(&one.after)
                ),
                ([one], true) => format!(
                    "undone: {} is owned by {} again",
                    clean(&one.name),
                    who(&one.after)
                ),
                (many, false) => format!(
                    "{} agents are now owned by {} · u undo",
                    many.len(),
                    who(&many[0].after)
                ),
                (many, true) => format!("undone: {} agents have their owners back", many.len()),
            };
            if !undo {
                app.marks.clear();
                app.last_owner_change = Some(done);
            }
            if !matches!(app.overlay, Some(Overlay::Notice(_))) {
                app.message = Some((Tone::Ok, text));
            }
        }
        Action::HandoversLoaded(Ok(list)) => {
            // The reminder of owner succession: shown while the handovers are unacknowledged
            // (`steward owner handovers --ack`), unless something more urgent is on screen.
            let Some(first) = list.handovers.first() else {
                return;
            };
            if app.message.is_none() && app.overlay.is_none() {
                let n = list.handovers.len();
                app.message = Some((
                    Tone::Info,
                    format!(
                        "{n} agent(s) of people who left are now yours, e.g. {} from {} (quick filter: mine)",
                        clean(&first.agent_name),
                        clean(&first.from)
                    ),
                ));
            }
        }
        // An older registry without handovers, or offline: nothing to remind.
        Action::HandoversLoaded(Err(_)) => {}
        _ => {}
    }
}
