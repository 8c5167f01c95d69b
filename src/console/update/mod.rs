//! State transitions: `update(app, action) -> effects`. No terminal, no network and no files
//! here, so the whole console can be driven (and tested) by feeding it actions.
//!
//! The rooms: `keys` routes a key to the open overlay or the screen's keymap, `verbs` carries
//! out keymap commands, `answers` takes the registry's answers to governance calls, `reviews`
//! holds the review screen's rules, `sync` the clock, the change feed and the cache, `filter`
//! the inventory's view and cursor, `command_line` the `:` commands.

pub mod answers;
pub mod approvals;
pub mod command_line;
pub mod filter;
pub mod flags;
pub mod keys;
pub mod owners;
pub mod reviews;
pub mod streams;
pub mod sync;
pub mod verbs;

use super::action::{Action, Effect};
use super::app::{App, Link, Screen, Tone};
use super::overlays::Overlay;
use super::overlays::notice::Notice;
use crate::client::ClientError;
use crate::model::text::strip_for_terminal;

pub use filter::{move_by, refilter};
pub use sync::{RETRY_EVERY, SAVE_EVERY, SYNC_EVERY, save};

pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    let mut fx = Vec::new();
    match action {
        Action::Key(key) => keys::on_key(app, key, &mut fx),
        Action::Command(c) => verbs::on_command(app, c, &mut fx),
        Action::Resize { width, height } => {
            app.width = width;
            app.height = height;
            filter::keep_visible(app);
        }
        Action::Tick { now } => sync::on_tick(app, now, &mut fx),
        Action::SyncPage(_) | Action::SyncDone(_) | Action::CacheSaved(_) | Action::Me(_) => {
            sync::on_sync(app, action, &mut fx)
        }
        Action::Filtered(outcome) => filter::on_filtered(app, outcome),
        Action::ReviewsLoaded(_)
        | Action::Decided { .. }
        | Action::BulkCertified { .. }
        | Action::AcceptPreviewed { .. }
        | Action::RecommendationsAccepted(_)
        | Action::Reassigned { .. } => reviews::on_answer(app, action, &mut fx),
        Action::ApprovalsLoaded(_)
        | Action::ApprovalAgents(_)
        | Action::ApprovalDecided { .. }
        | Action::CatalogueLoaded { .. }
        | Action::ScopeRequested { .. } => approvals::on_answer(app, action, &mut fx),
        Action::StreamsLoaded(_) | Action::StreamSet { .. } => {
            streams::on_answer(app, action, &mut fx)
        }
        Action::OwnersAssigned { .. }
        | Action::OwnerCandidatesLoaded { .. }
        | Action::HandoversLoaded(_) => owners::on_answer(app, action, &mut fx),
        Action::FlagsAcknowledged { agent_id, results } => {
            flags::on_acknowledged(app, agent_id, results, &mut fx)
        }
        action => answers::on_answer(app, action, &mut fx),
    }
    fx
}

/// Registry text, made safe to draw.
pub(crate) fn clean(s: &str) -> String {
    strip_for_terminal(s).into_owned()
}

pub(crate) fn name_of(app: &App, id: &str) -> String {
    match app.inventory.find_scan(id) {
        Some(i) => app.inventory.text(app.inventory.row(i).name).to_string(),
        None => id.to_string(),
    }
}

pub(crate) fn went_offline(app: &mut App, e: &ClientError) {
    let error = match e.status() {
        Some(401) => format!(
            "it refused the API token ({e}); sign in again with `steward login --server {}`",
            app.server_url.trim_end_matches('/')
        ),
        _ => e.to_string(),
    };
    app.link = Link::Offline { error };
}

/// A governance call failed: say so plainly; nothing local has changed.
pub(crate) fn failed(app: &mut App, what: &str, e: &ClientError) {
    if e.is_unreachable() {
        went_offline(app, e);
    }
    if matches!(app.overlay, Some(Overlay::Busy(_))) {
        app.overlay = None;
    }
    app.overlay = Some(Overlay::Notice(Notice {
        title: format!("Failed: {what}"),
        lines: vec![
            clean(&e.to_string()),
            String::new(),
            "Nothing was changed in this console; the registry's own state shows at the next sync."
                .into(),
        ],
        tone: Tone::Error,
    }));
    app.message = Some((Tone::Error, format!("{what} failed")));
}

pub(crate) fn reload_detail(app: &App, id: &str, fx: &mut Vec<Effect>) {
    if let Screen::Detail(d) = &app.screen
        && d.id == id
    {
        fx.push(Effect::LoadDetail { id: id.to_string() });
    }
}
