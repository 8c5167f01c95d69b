//! Confirmations of destructive orders: buttons (Cancel focused first) or a typed phrase. An
//! order leaves here only as [`Confirmed`], which only [`Pending::accept`] makes.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::{Hint, Overlay, Room, edit, popup};
use crate::console::action::{
    AcceptOrder, BulkOwnerOrder, BulkRevokeOrder, CloseCampaignOrder, Confirmation,
    DecommissionOrder, Effect, PauseStreamOrder, Pending, ReinstateOrder, SuspendOrder,
};
use crate::console::app::{App, Tone};
use crate::console::keymap::{Command, Scope};
use crate::console::theme::Slot;
use crate::console::words::clean;

#[derive(Debug)]
pub enum ConfirmState {
    Reinstate(Pending<ReinstateOrder>),
    Decommission(Pending<DecommissionOrder>),
    BulkRevoke(Pending<BulkRevokeOrder>),
    CloseCampaign(Pending<CloseCampaignOrder>),
    /// `X` on the reviews screen: suspending the whole agent asks first there.
    Suspend(Pending<SuspendOrder>),
    /// `o` on marked rows: one owner for all of them.
    BulkOwner(Pending<BulkOwnerOrder>),
    /// `Y` on the reviews screen: the recommendations of the filtered queue.
    AcceptRecommendations(Pending<AcceptOrder>),
    /// `p` on the streams screen.
    PauseStream(Pending<PauseStreamOrder>),
}

impl ConfirmState {
    fn confirmation(&self) -> &Confirmation {
        match self {
            ConfirmState::Reinstate(p) => &p.confirmation,
            ConfirmState::Decommission(p) => &p.confirmation,
            ConfirmState::BulkRevoke(p) => &p.confirmation,
            ConfirmState::CloseCampaign(p) => &p.confirmation,
            ConfirmState::Suspend(p) => &p.confirmation,
            ConfirmState::BulkOwner(p) => &p.confirmation,
            ConfirmState::AcceptRecommendations(p) => &p.confirmation,
            ConfirmState::PauseStream(p) => &p.confirmation,
        }
    }

    /// True when the confirmation is a typed phrase rather than buttons.
    pub fn is_typed(&self) -> bool {
        matches!(self.confirmation(), Confirmation::Typed { .. })
    }
}

impl Room for ConfirmState {
    fn scope(&self) -> Scope {
        if self.is_typed() {
            Scope::Prompt
        } else {
            Scope::Buttons
        }
    }

    fn takes_text(&self) -> bool {
        self.is_typed()
    }

    fn key(
        self,
        app: &mut App,
        key: KeyEvent,
        command: Option<Command>,
        fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        if command == Some(Command::Cancel) {
            app.message = Some((Tone::Info, "cancelled; nothing changed".into()));
            return None;
        }
        macro_rules! handle {
            ($pending:ident, $variant:ident, $effect:expr, $busy:expr) => {{
                let mut $pending = $pending;
                match (&mut $pending.confirmation, command) {
                    (Confirmation::Buttons { confirm_focused }, Some(Command::SwitchButton)) => {
                        *confirm_focused = !*confirm_focused;
                    }
                    (_, Some(Command::Accept)) => {
                        return match $pending.accept() {
                            Ok(confirmed) => {
                                app.message = Some((Tone::Info, $busy(confirmed.order())));
                                fx.push($effect(confirmed));
                                None
                            }
                            Err(pending)
                                if matches!(pending.confirmation, Confirmation::Buttons { .. }) =>
                            {
                                app.message =
                                    Some((Tone::Info, "cancelled; nothing changed".into()));
                                None
                            }
                            Err(pending) => {
                                app.message = Some((
                                    Tone::Error,
                                    "the typed text does not match; nothing changed".into(),
                                ));
                                Some(Overlay::Confirm(ConfirmState::$variant(pending)))
                            }
                        };
                    }
                    (Confirmation::Typed { typed, .. }, _) => {
                        edit(typed, &key);
                    }
                    _ => {}
                }
                Some(Overlay::Confirm(ConfirmState::$variant($pending)))
            }};
        }
        match self {
            ConfirmState::Reinstate(p) => handle!(
                p,
                Reinstate,
                Effect::Reinstate,
                |o: &ReinstateOrder| format!("reinstating {}…", clean(&o.name))
            ),
            ConfirmState::Decommission(p) => handle!(
                p,
                Decommission,
                Effect::Decommission,
                |o: &DecommissionOrder| format!("decommissioning {}…", clean(&o.name))
            ),
            ConfirmState::CloseCampaign(p) => handle!(
                p,
                CloseCampaign,
                Effect::CloseCampaign,
                |o: &CloseCampaignOrder| format!("closing {}…", clean(&o.name))
            ),
            ConfirmState::BulkRevoke(p) => handle!(
                p,
                BulkRevoke,
                Effect::BulkRevoke,
                |o: &BulkRevokeOrder| format!("revoking {} agents…", o.agents.len())
            ),
            ConfirmState::Suspend(p) => {
                handle!(p, Suspend, Effect::Suspend, |o: &SuspendOrder| format!(
                    "revoking {}…",
                    clean(&o.name)
                ))
            }
            ConfirmState::BulkOwner(p) => handle!(
                p,
                BulkOwner,
                Effect::BulkAssignOwner,
                |o: &BulkOwnerOrder| format!(
                    "assigning {} to {} agents…",
                    clean(&o.owner_name),
                    o.changes.len()
                )
            ),
            ConfirmState::AcceptRecommendations(p) => handle!(
                p,
                AcceptRecommendations,
                Effect::AcceptRecommendations,
                |o: &AcceptOrder| format!("accepting {} recommendations…", o.items)
            ),
            ConfirmState::PauseStream(p) => handle!(
                p,
                PauseStream,
                Effect::PauseStream,
                |o: &PauseStreamOrder| format!("pausing the stream of {}…", clean(&o.receiver))
            ),
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let (title, mut lines, confirmation, action) = match self {
            ConfirmState::Reinstate(p) => (
                "Reinstate agent",
                vec![
                    Line::from(vec![
                        Span::raw(" Reinstate "),
                        Span::styled(clean(&p.order().name).into_owned(), t.style(Slot::Accent)),
                        Span::raw("?"),
                    ]),
                    Line::from(" Its status returns to active. Its credentials stay disabled"),
                    Line::from(" until they are rotated, so it cannot act before that."),
                ],
                &p.confirmation,
                "Reinstate",
            ),
            ConfirmState::Decommission(p) => {
                let o = p.order();
                let mut lines = vec![
                    Line::from(vec![
                        Span::raw(" Decommission "),
                        Span::styled(clean(&o.name).into_owned(), t.style(Slot::Accent)),
                        Span::raw("? This is what will happen:"),
                    ]),
                    Line::from(""),
                    Line::from(format!(
                        "  • {} agent(s) decommissioned (the agent, its sub-agents and instances):",
                        o.plan.agents.len()
                    )),
                ];
                for name in o.names.iter().take(6) {
                    lines.push(Line::from(format!("      {}", clean(name))));
                }
                if o.names.len() > 6 {
                    lines.push(Line::from(format!(
                        "      … and {} more",
                        o.names.len() - 6
                    )));
                }
                lines.push(Line::from(format!(
                    "  • {} grant(s) removed",
                    o.plan.grants
                )));
                lines.push(Line::from(format!(
                    "  • {} credential(s) disabled, live tokens revoked",
                    o.plan.credentials
                )));
                lines.push(Line::from(
                    "  • the records stay, for audit; this cannot be undone",
                ));
                ("Decommission agent", lines, &p.confirmation, "Decommission")
            }
            ConfirmState::CloseCampaign(p) => {
                let o = p.order();
                let what = match o.no_response {
                    crate::model::review::NoResponse::Keep => {
                        "kept: their grants stay, not stamped as certified".to_string()
                    }
                    crate::model::review::NoResponse::Revoke => {
                        "REVOKED: their grants are removed".to_string()
                    }
                    crate::model::review::NoResponse::Recommendation => format!(
                        "given the recommendation: {} revoked, the rest kept",
                        o.pending_recommended_revoke
                    ),
                };
                let lines = vec![
                    Line::from(vec![
                        Span::raw(" Close "),
                        Span::styled(clean(&o.name).into_owned(), t.style(Slot::Accent)),
                        Span::raw("?"),
                    ]),
                    Line::from(format!(
                        " No-response outcome: {}. It touches {} undecided item(s):",
                        o.no_response.as_str(),
                        o.pending
                    )),
                    Line::from(format!(" they will be {what}.")),
                    Line::from(
                        " Decisions already made are applied as decided. This cannot be undone.",
                    ),
                ];
                ("Close campaign", lines, &p.confirmation, "Close")
            }
            ConfirmState::Suspend(p) => (
                "Revoke agent",
                vec![
                    Line::from(vec![
                        Span::raw(" Revoke "),
                        Span::styled(clean(&p.order().name).into_owned(), t.style(Slot::Accent)),
                        Span::raw(" now?"),
                    ]),
                    Line::from(" The whole agent is suspended, its credentials disabled and its"),
                    Line::from(" live tokens killed (x revokes only the selected scope)."),
                ],
                &p.confirmation,
                "Revoke",
            ),
            ConfirmState::BulkRevoke(p) => {
                let o = p.order();
                let mut lines = vec![Line::from(format!(
                    " Revoke {} marked agents: suspend, disable credentials, kill tokens.",
                    o.agents.len()
                ))];
                for (_, name) in o.agents.iter().take(5) {
                    lines.push(Line::from(format!("   {}", clean(name))));
                }
                if o.agents.len() > 5 {
                    lines.push(Line::from(format!("   … and {} more", o.agents.len() - 5)));
                }
                ("Bulk revoke", lines, &p.confirmation, "Revoke")
            }
            ConfirmState::BulkOwner(p) => {
                let o = p.order();
                let mut lines = vec![
                    Line::from(format!(
                        " Give {} marked agents one owner:",
                        o.changes.len()
                    )),
                    Line::from(Span::styled(
                        format!("   {} <{}>", clean(&o.owner_name), clean(&o.owner)),
                        t.style(Slot::Accent),
                    )),
                ];
                for ch in o.changes.iter().take(5) {
                    let before = ch.before.as_deref().map_or("unowned".into(), clean);
                    lines.push(Line::from(format!(
                        "   {}  (now {before})",
                        clean(&ch.name)
                    )));
                }
                if o.changes.len() > 5 {
                    lines.push(Line::from(format!("   … and {} more", o.changes.len() - 5)));
                }
                lines.push(Line::from(
                    " Each change is audited; u undoes them afterwards.",
                ));
                let action = "Assign";
                ("Assign owner", lines, &p.confirmation, action)
            }
            ConfirmState::AcceptRecommendations(p) => {
                let o = p.order();
                let shown = if !o.agent_ids.is_empty() {
                    let n = o.agent_ids.len();
                    format!("{n} marked agent{}", if n == 1 { "" } else { "s" })
                } else {
                    o.q.as_deref()
                        .map_or("every agent of your queue".to_string(), |q| {
                            format!("the agents matching \"{}\"", clean(q))
                        })
                };
                let mut lines = vec![
                    Line::from(vec![
                        Span::raw(" Accept the recommendations in "),
                        Span::styled(clean(&o.campaign_name).into_owned(), t.style(Slot::Accent)),
                        Span::raw(format!(" for {shown}:")),
                    ]),
                    Line::from(""),
                    Line::from(Span::styled(
                        if o.agent_ids.is_empty() {
                            format!(
                                "   {} certify, {} revoke over {} agents",
                                o.certify, o.revoke, o.agents
                            )
                        } else {
                            let n = o.agent_ids.len();
                            format!(
                                "   {n} marked agent{}: {} certify, {} revoke",
                                if n == 1 { "" } else { "s" },
                                o.certify,
                                o.revoke
                            )
                        },
                        t.style(Slot::Accent),
                    )),
                    Line::from(""),
                    Line::from(
                        " Revoked grants are removed at once. Each decision is audited as yours;",
                    ),
                    Line::from(" you may change any of them until the campaign closes."),
                ];
                if o.skipped > 0 {
                    lines.push(Line::from(format!(
                        " {} item(s) cannot be accepted and stay for you to decide.",
                        o.skipped
                    )));
                }
                ("Accept recommendations", lines, &p.confirmation, "Accept")
            }
            ConfirmState::PauseStream(p) => {
                let o = p.order();
                let lines = vec![
                    Line::from(vec![
                        Span::raw(" Pause the stream of "),
                        Span::styled(clean(&o.receiver).into_owned(), t.style(Slot::Accent)),
                        Span::raw("?"),
                    ]),
                    Line::from(format!(
                        " Its receiver hears of no revocation until it is resumed: {} event(s)",
                        o.pending
                    )),
                    Line::from(" wait now and every new one joins them; none is lost: a resume"),
                    Line::from(" delivers them in order."),
                ];
                ("Pause stream", lines, &p.confirmation, "Pause")
            }
        };
        lines.push(Line::from(""));
        match confirmation {
            Confirmation::Buttons { confirm_focused } => {
                lines.push(popup::buttons(app, *confirm_focused, action));
            }
            Confirmation::Typed { expected, typed } => {
                lines.push(Line::from(vec![
                    Span::raw(" Type "),
                    Span::styled(expected.clone(), t.style(Slot::Accent)),
                    Span::raw(" and press Enter to confirm (esc cancels):"),
                ]));
                lines.push(Line::from(vec![
                    Span::styled(" > ", t.style(Slot::Accent)),
                    Span::styled(format!("{typed}▏"), t.style(Slot::Input)),
                ]));
            }
        }
        let rect = popup::fitted(area, 80, &lines);
        popup::popup(frame, app, title, rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        if self.is_typed() {
            vec![
                Hint::Typing("the phrase"),
                Hint::Key(Command::Accept, "confirm"),
                Hint::Key(Command::Cancel, "cancel"),
            ]
        } else {
            vec![
                Hint::Key(Command::SwitchButton, "switch button"),
                Hint::Key(Command::Accept, "press focused"),
                Hint::Key(Command::Cancel, "cancel"),
            ]
        }
    }
}
