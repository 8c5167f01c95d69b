//! What the keymap's commands do on the screens.

use super::filter::{move_by, refilter, set_quick};
use super::sync::start_sync;
use super::{approvals, clean, flags, reviews, streams};
use crate::console::action::{
    BulkRevokeOrder, CampaignPurpose, Effect, OwnerChange, Pending, ReinstateOrder,
};
use crate::console::app::{App, CampaignForm, DetailState, Overlay, PickerState, Screen, Tone};
use crate::console::filter::QuickFilter;
use crate::console::keymap::Command;
use crate::console::layout;
use crate::console::overlays::activity::ActivityState;
use crate::console::overlays::busy::Busy;
use crate::console::overlays::command_line::CommandLine;
use crate::console::overlays::confirm::ConfirmState;
use crate::console::overlays::filter_input::FilterInput;
use crate::console::overlays::help::HelpState;
use crate::model::review::Verdict;

pub fn on_command(app: &mut App, command: Command, fx: &mut Vec<Effect>) {
    let moving = matches!(
        command,
        Command::Up
            | Command::Down
            | Command::PageUp
            | Command::PageDown
            | Command::Top
            | Command::Bottom
    );
    on_command_inner(app, command, fx);
    // The review queue pages from the registry: near the end of what is loaded, ask for more.
    if moving && let Screen::Reviews(r) = &mut app.screen {
        reviews::maybe_load_more(r, fx);
    }
}

fn on_command_inner(app: &mut App, command: Command, fx: &mut Vec<Effect>) {
    let page = layout::table_rows(app).max(1) as isize;
    match command {
        Command::Up => move_by(app, -1),
        Command::Down => move_by(app, 1),
        Command::PageUp => move_by(app, -page),
        Command::PageDown => move_by(app, page),
        Command::Top => move_by(app, isize::MIN / 2),
        Command::Bottom => move_by(app, isize::MAX / 2),
        Command::Quit => app.quit = true,
        Command::Help => app.overlay = Some(Overlay::Help(HelpState::default())),
        Command::CommandLine => app.overlay = Some(Overlay::CommandLine(CommandLine::default())),
        // On the reviews screen, `/` filters the queue (the registry filters every page).
        Command::Filter if app.on_reviews() => {
            app.overlay = Some(Overlay::FilterInput(FilterInput));
        }
        Command::Filter => {
            if !matches!(app.screen, Screen::Inventory) {
                app.screen = Screen::Inventory;
            }
            app.overlay = Some(Overlay::FilterInput(FilterInput));
        }
        // Esc on the reviews screen clears its marks first, as on the inventory.
        Command::Back if matches!(&app.screen, Screen::Reviews(r) if !r.marks.is_empty()) => {
            if let Screen::Reviews(r) = &mut app.screen {
                let n = r.marks.len();
                r.marks.clear();
                app.message = Some((Tone::Info, format!("{n} marks cleared")));
            }
        }
        Command::Back => match &app.screen {
            Screen::Detail(_) | Screen::Reviews(_) | Screen::Approvals(_) | Screen::Streams(_) => {
                app.screen = Screen::Inventory
            }
            Screen::Inventory => {
                if !app.marks.is_empty() {
                    let n = app.marks.len();
                    app.marks.clear();
                    app.message = Some((Tone::Info, format!("{n} marks cleared")));
                } else if !app.spec.query.is_empty() {
                    app.spec.query.clear();
                    refilter(app, fx);
                } else if app.spec.quick != QuickFilter::All {
                    app.spec.quick = QuickFilter::All;
                    refilter(app, fx);
                }
            }
        },
        Command::Open => {
            if let Some(i) = app.selected_row() {
                let id = app.inventory.text(app.inventory.row(i).id).to_string();
                open_detail(app, id, Some(i), fx);
            }
        }
        Command::Mark if app.on_reviews() => reviews::toggle_mark(app),
        Command::Reassign => reviews::reassign(app),
        // Only the reviewer picker binds it (Prompt scope).
        Command::SwitchTarget => {}
        Command::Mark => {
            if let Some(i) = app.selected_row() {
                if !app.marks.remove(&i) {
                    app.marks.insert(i);
                }
                move_by(app, 1);
            }
        }
        Command::MarkAll => {
            let all = app.view.len();
            if all > 0 && app.view.iter().all(|i| app.marks.contains(i)) {
                app.marks.clear();
                app.message = Some((Tone::Info, "marks cleared".into()));
            } else {
                app.marks.extend(app.view.iter().copied());
                app.message = Some((Tone::Info, format!("{} marked", app.marks.len())));
            }
        }
        Command::NextQuickFilter | Command::PrevQuickFilter => {
            let q = app.spec.quick.cycle(command == Command::NextQuickFilter);
            set_quick(app, q, fx);
        }
        Command::Quick(q) => set_quick(app, q, fx),
        Command::Sort(column) => {
            if app.spec.sort.column == column {
                app.spec.sort.descending = !app.spec.sort.descending;
            } else {
                app.spec.sort.column = column;
                app.spec.sort.descending = false;
            }
            refilter(app, fx);
        }
        Command::Refresh => {
            if app.on_reviews() {
                reviews::open(app, fx);
            }
            if matches!(app.screen, Screen::Approvals(_)) {
                approvals::open(app, fx);
            }
            streams::poll(app, fx);
            if app.me.is_none() {
                if !app.me_in_flight {
                    app.me_in_flight = true;
                    fx.push(Effect::LoadMe);
                }
            } else {
                start_sync(app, fx);
                app.sync_requested = true;
            }
            app.message = Some((Tone::Info, "syncing with the registry…".into()));
        }
        Command::Reviews => reviews::open(app, fx),
        Command::Activity => match app.target() {
            Some((id, name, _)) => {
                let mut a = Box::new(ActivityState::new(Some((id, name))));
                a.reload(fx);
                app.overlay = Some(Overlay::Activity(a));
            }
            None => {
                app.message = Some((
                    Tone::Info,
                    "select an agent first (or :audit for everything)".into(),
                ))
            }
        },
        Command::ExportEvidence => export_evidence(app, "", fx),
        Command::AuditAll => {
            if let Err(why) = app.permits(command, None) {
                app.message = Some((Tone::Error, why));
                return;
            }
            let mut a = Box::new(ActivityState::new(None));
            a.reload(fx);
            app.overlay = Some(Overlay::Activity(a));
        }
        Command::CertifyScope => reviews::decide(app, Verdict::Certify, fx),
        Command::RevokeScope => reviews::decide(app, Verdict::Revoke, fx),
        Command::CertifyUnchanged => reviews::certify_unchanged(app, fx),
        Command::AcceptAgent => reviews::accept_agent(app, fx),
        Command::ReviewSort => reviews::cycle_sort(app, fx),
        Command::AcceptFiltered => reviews::accept_filtered(app, fx),
        Command::Approvals => approvals::open(app, fx),
        Command::Streams => streams::open(app, fx),
        Command::PauseStream => streams::pause(app),
        Command::ResumeStream => streams::resume(app, fx),
        Command::ApproveRequest => approvals::approve(app, fx),
        Command::DenyRequest => approvals::deny(app),
        Command::RequestScope => approvals::request_scope(app, fx),
        Command::AcknowledgeFlag => flags::acknowledge(app),
        Command::CampaignProgress | Command::CloseCampaign => {
            if let Err(why) = app.permits(command, None) {
                app.message = Some((Tone::Error, why));
                return;
            }
            let purpose = if command == Command::CloseCampaign {
                CampaignPurpose::Close
            } else {
                CampaignPurpose::Progress
            };
            app.overlay = Some(Overlay::Busy(Busy("reading the open campaigns…".into())));
            fx.push(Effect::LoadCampaigns(purpose));
        }
        Command::NewCampaign => {
            if let Err(why) = app.permits(command, None) {
                app.message = Some((Tone::Error, why));
                return;
            }
            let form = app
                .campaign_draft
                .take()
                .unwrap_or_else(|| Box::new(CampaignForm::new(app.now)));
            app.overlay = Some(Overlay::CampaignForm(form));
        }
        Command::UndoOwner => {
            let Some(last) = app.last_owner_change.take() else {
                app.message = Some((Tone::Info, "no owner change to undo".into()));
                return;
            };
            let changes: Vec<OwnerChange> = last.iter().map(OwnerChange::reversed).collect();
            app.message = Some((
                Tone::Info,
                format!("undoing the owner change of {} agent(s)…", changes.len()),
            ));
            fx.push(Effect::AssignOwners {
                changes,
                undo: true,
            });
        }
        Command::AssignOwner
            if !app.marks.is_empty() && matches!(app.screen, Screen::Inventory) =>
        {
            if let Err(why) = app.permits(command, None) {
                app.message = Some((Tone::Error, why));
                return;
            }
            let targets: Vec<OwnerChange> = app
                .marks
                .iter()
                .map(|&i| *app.inventory.row(i))
                .filter(|r| r.status != crate::model::AgentStatus::Decommissioned)
                .map(|r| OwnerChange {
                    id: app.inventory.text(r.id).to_string(),
                    name: app.inventory.text(r.name).to_string(),
                    before: (r.owner != crate::console::inventory::NONE)
                        .then(|| app.inventory.symbol(r.owner).to_string()),
                    after: None,
                })
                .collect();
            if targets.is_empty() {
                app.message = Some((
                    Tone::Error,
                    "every marked agent is decommissioned and keeps its last owner".into(),
                ));
                return;
            }
            let picker = PickerState::for_many(app, targets);
            fx.push(Effect::LoadOwnerCandidates {
                agent_id: picker.agent_id.clone(),
            });
            app.overlay = Some(Overlay::Picker(picker));
        }
        Command::AssignOwner => {
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            if !app.agent_allows(command, row.as_ref()) {
                app.message = Some((
                    Tone::Error,
                    "a decommissioned agent keeps its last owner".into(),
                ));
                return;
            }
            let before = row
                .filter(|r| r.owner != crate::console::inventory::NONE)
                .map(|r| app.inventory.symbol(r.owner).to_string());
            fx.push(Effect::LoadOwnerCandidates {
                agent_id: id.clone(),
            });
            app.overlay = Some(Overlay::Picker(PickerState::new(app, id, name, before)));
        }
        Command::Revoke => {
            if !app.marks.is_empty() && matches!(app.screen, Screen::Inventory) {
                let agents: Vec<(String, String)> = app
                    .marks
                    .iter()
                    .map(|&i| {
                        let r = app.inventory.row(i);
                        (
                            app.inventory.text(r.id).to_string(),
                            app.inventory.text(r.name).to_string(),
                        )
                    })
                    .collect();
                let expected = format!("revoke {}", agents.len());
                app.overlay = Some(Overlay::Confirm(ConfirmState::BulkRevoke(Pending::typed(
                    BulkRevokeOrder { agents },
                    expected,
                ))));
                return;
            }
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            // On the queues, X is one slip from a decision key: suspending the agent asks.
            if app.on_reviews() || matches!(app.screen, Screen::Approvals(_)) {
                reviews::ask_to_suspend(app, id, name);
                return;
            }
            app.message = Some((Tone::Info, format!("revoking {}…", clean(&name))));
            fx.push(Effect::Revoke { id });
        }
        Command::Reinstate => {
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            if !app.agent_allows(command, row.as_ref()) {
                app.message = Some((
                    Tone::Error,
                    "only a suspended agent can be reinstated".into(),
                ));
                return;
            }
            app.overlay = Some(Overlay::Confirm(ConfirmState::Reinstate(Pending::buttons(
                ReinstateOrder { id, name },
            ))));
        }
        Command::Decommission => {
            let Some((id, name, row)) = app.target() else {
                return;
            };
            if let Err(why) = app.permits(command, row.as_ref()) {
                app.message = Some((Tone::Error, why));
                return;
            }
            if !app.agent_allows(command, row.as_ref()) {
                app.message = Some((Tone::Error, "already decommissioned".into()));
                return;
            }
            app.overlay = Some(Overlay::Busy(Busy(format!(
                "asking the registry what decommissioning {} would do…",
                clean(&name)
            ))));
            fx.push(Effect::LoadPlan { id });
        }
        // `:` commands with an argument run from the command line; a key bound to them opens it.
        Command::OpenAgent | Command::Theme | Command::SaveTheme => {
            let word = app
                .keymap
                .bindings()
                .iter()
                .find(|b| b.command == Some(command))
                .and_then(|b| b.words.first())
                .copied()
                .unwrap_or("");
            app.overlay = Some(Overlay::CommandLine(CommandLine {
                text: format!("{word} "),
                history_pos: None,
            }));
        }
        // Dialog commands mean nothing on a screen.
        Command::Accept
        | Command::Cancel
        | Command::SwitchButton
        | Command::NextField
        | Command::PrevField
        | Command::NextValue
        | Command::ActorKind
        | Command::ToggleExchanges
        | Command::PrevValue => {}
    }
}

pub(super) fn open_detail(app: &mut App, id: String, row: Option<u32>, fx: &mut Vec<Effect>) {
    app.screen = Screen::Detail(Box::new(DetailState {
        id: id.clone(),
        row,
        detail: None,
        audit: None,
        tokens: None,
        activity: None,
        scroll: Default::default(),
        tree: Vec::new(),
    }));
    fx.push(Effect::LoadDetail { id });
}

/// `E` or `:export [PATH]`: the open campaigns' evidence, written by the runtime (no file I/O
/// here). The registry decides who may export; `/v1/me` only spares a refused round trip.
pub(super) fn export_evidence(app: &mut App, path: &str, fx: &mut Vec<Effect>) {
    if let Err(why) = app.permits(Command::ExportEvidence, None) {
        app.message = Some((Tone::Error, why));
        return;
    }
    app.message = Some((Tone::Info, "exporting the evidence…".into()));
    fx.push(Effect::ExportEvidence {
        path: (!path.is_empty()).then(|| std::path::PathBuf::from(path)),
    });
}
