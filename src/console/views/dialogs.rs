//! Pop-ups: the owner picker, confirmations, the revocation result, notices.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::{centered, clean, fit};
use crate::console::action::Confirmation;
use crate::console::app::{
    App, CampaignField, CampaignForm, ConfirmState, NoteState, PickerState, RevokeResult, Tone,
};
use crate::console::theme::Slot;

fn frame_block<'a>(app: &App, title: &str) -> Block<'a> {
    Block::bordered()
        .title(Span::styled(
            format!(" {title} "),
            app.theme.style(Slot::Title),
        ))
        .border_style(app.theme.style(Slot::Border))
        .style(app.theme.style(Slot::Base))
}

/// Rows that `lines` take when wrapped to `width` columns.
fn wrapped_height(lines: &[Line<'_>], width: u16) -> u16 {
    let width = width.max(1) as usize;
    lines
        .iter()
        .map(|l| {
            let rows = l.width().max(1).div_ceil(width);
            // Word wrapping can need one row more than the characters alone.
            (if rows > 1 { rows + 1 } else { rows }) as u16
        })
        .sum()
}

/// A centred pop-up as tall as its wrapped text (plus borders), within `area`.
pub(super) fn fitted(area: Rect, max_width: u16, lines: &[Line<'_>]) -> Rect {
    let w = max_width.min(area.width.saturating_sub(2));
    let h = wrapped_height(lines, w.saturating_sub(2)) + 2;
    centered(area, w, h.min(area.height))
}

pub(super) fn popup(frame: &mut Frame, app: &App, title: &str, rect: Rect, lines: Vec<Line<'_>>) {
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(frame_block(app, title))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

pub fn picker(frame: &mut Frame, app: &App, p: &PickerState, area: Rect) {
    let t = &app.theme;
    let rect = centered(
        area,
        72.min(area.width - 4),
        area.height.saturating_sub(4).min(22),
    );
    let inner_w = rect.width.saturating_sub(2) as usize;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(" owner for ", t.style(Slot::Dim)),
            Span::styled(clean(&p.agent_name).into_owned(), t.style(Slot::Accent)),
        ]),
        Line::from(vec![
            Span::styled(" > ", t.style(Slot::Accent)),
            Span::styled(format!("{}▏", p.query), t.style(Slot::Input)),
        ]),
        Line::from(""),
    ];
    let room = (rect.height as usize).saturating_sub(2 + lines.len());
    let start = p.selected.saturating_sub(room.saturating_sub(1));
    if p.entries.is_empty() {
        lines.push(Line::from(Span::styled(
            if app.inventory.people().is_empty() {
                "   nobody known yet (the people list arrives with the sync)"
            } else {
                "   no one matches"
            },
            t.style(Slot::Dim),
        )));
    }
    for (n, e) in p.entries.iter().enumerate().skip(start).take(room) {
        let person = &app.inventory.people()[e.person];
        let team = person
            .team
            .as_deref()
            .map(|t| format!(" · {}", clean(t)))
            .unwrap_or_default();
        let text = format!(
            "{} {} <{}>{team}{}",
            if n == p.selected { "▶" } else { " " },
            clean(&person.display_name),
            clean(&person.email),
            if e.offered {
                ""
            } else {
                "  (left: not offered)"
            },
        );
        let style = if !e.offered {
            t.style(Slot::Dim)
        } else if n == p.selected {
            t.style(Slot::Selected)
        } else {
            t.style(Slot::Hint)
        };
        lines.push(Line::from(Span::styled(fit(&text, inner_w), style)));
    }
    popup(frame, app, "Assign owner", rect, lines);
}

pub fn busy(frame: &mut Frame, app: &App, text: &str, area: Rect) {
    let rect = centered(area, 64.min(area.width - 4), 5);
    popup(
        frame,
        app,
        "Please wait",
        rect,
        vec![Line::from(format!(" {text}")), Line::from(" esc goes back")],
    );
}

fn buttons<'a>(app: &App, confirm_focused: bool, action: &str) -> Line<'a> {
    let t = &app.theme;
    let (cancel, act) = if confirm_focused {
        (t.style(Slot::Button), t.style(Slot::ButtonFocused))
    } else {
        (t.style(Slot::ButtonFocused), t.style(Slot::Button))
    };
    Line::from(vec![
        Span::raw("   "),
        Span::styled(
            if confirm_focused {
                "  Cancel  "
            } else {
                "[ Cancel ]"
            },
            cancel,
        ),
        Span::raw("    "),
        Span::styled(
            if confirm_focused {
                format!("[ {action} ]")
            } else {
                format!("  {action}  ")
            },
            act,
        ),
    ])
}

pub fn confirm(frame: &mut Frame, app: &App, c: &ConfirmState, area: Rect) {
    let t = &app.theme;
    let (title, mut lines, confirmation, action) = match c {
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
    };
    lines.push(Line::from(""));
    match confirmation {
        Confirmation::Buttons { confirm_focused } => {
            lines.push(buttons(app, *confirm_focused, action));
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
    let rect = fitted(area, 80, &lines);
    popup(frame, app, title, rect, lines);
}

pub fn revoke_result(frame: &mut Frame, app: &App, r: &RevokeResult, area: Rect) {
    let t = &app.theme;
    let o = &r.outcome;
    let row = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("   {k:<18}"), t.style(Slot::Dim)),
            Span::raw(v),
        ])
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                if o.changed {
                    " ✓ REVOKED "
                } else {
                    " · NO CHANGE "
                },
                if o.changed {
                    t.style(Slot::Ok)
                } else {
                    t.style(Slot::Hint)
                },
            ),
            Span::styled(clean(&r.name).into_owned(), t.style(Slot::Accent)),
            Span::styled(format!("  {}", clean(&o.agent_id)), t.style(Slot::Dim)),
        ]),
        Line::from(""),
        row(
            "status",
            format!("{} → {}", o.previous_status.as_str(), o.status.as_str()),
        ),
        row(
            "credentials",
            format!("{} disabled", o.credentials_disabled),
        ),
        row("tokens killed", o.tokens_revoked.to_string()),
        row(
            "elapsed",
            format!(
                "{:.1} ms in the registry, {:.1} ms round trip",
                o.elapsed_ms, r.round_trip_ms
            ),
        ),
        row("audit event", format!("#{}", o.audit_seq)),
        Line::from(""),
    ];
    match &r.note_state {
        NoteState::Editing => {
            lines.push(Line::from(
                " Incident reference (optional; Enter adds it to the audit event, esc skips):",
            ));
            lines.push(Line::from(vec![
                Span::styled(" > ", t.style(Slot::Accent)),
                Span::styled(format!("{}▏", r.note), t.style(Slot::Input)),
            ]));
        }
        NoteState::Sending => lines.push(Line::from(" adding the incident reference…")),
        NoteState::Added(n) => lines.push(Line::from(Span::styled(
            format!(" ✓ incident reference recorded (audit note #{n}) · enter closes"),
            t.style(Slot::Ok),
        ))),
        NoteState::Failed(e) => lines.push(Line::from(Span::styled(
            format!(
                " ✕ the incident reference was not recorded: {} · enter closes",
                clean(e)
            ),
            t.style(Slot::Error),
        ))),
    }
    let rect = fitted(area, 84, &lines);
    popup(frame, app, "Revocation", rect, lines);
}

pub fn notice(frame: &mut Frame, app: &App, title: &str, body: &[String], tone: Tone, area: Rect) {
    let t = &app.theme;
    let slot = match tone {
        Tone::Error => Slot::Error,
        Tone::Ok => Slot::Ok,
        Tone::Info => Slot::Hint,
    };
    let mut lines: Vec<Line> = body
        .iter()
        .map(|l| Line::from(Span::styled(format!(" {l}"), t.style(slot))))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        " enter closes",
        t.style(Slot::Dim),
    )));
    let rect = fitted(area, 84, &lines);
    popup(frame, app, title, rect, lines);
}

/// The admin's campaign form: one line per field, the focused one highlighted.
pub fn campaign_form(frame: &mut Frame, app: &App, f: &CampaignForm, area: Rect) {
    let t = &app.theme;
    let mut lines = vec![Line::from("")];
    for field in CampaignField::ALL {
        let focused = field == f.focus;
        let value = match field {
            CampaignField::Name => f.name.clone(),
            CampaignField::Due => f.due.clone(),
            CampaignField::Team => f.team.clone(),
            CampaignField::Fallback => f.fallback.clone(),
            CampaignField::NoResponse => format!("‹ {} ›", f.no_response.as_str()),
            CampaignField::Quarterly => format!("‹ {} ›", if f.quarterly { "yes" } else { "no" }),
        };
        let shown = if field.is_text() && value.is_empty() && !focused {
            match field {
                CampaignField::Team => "(every team)".to_string(),
                CampaignField::Fallback => "(you)".to_string(),
                _ => String::new(),
            }
        } else if field.is_text() && focused {
            format!("{value}▏")
        } else {
            value
        };
        let value_style = if focused {
            t.style(Slot::Input)
        } else if field.is_text() && shown.starts_with('(') {
            t.style(Slot::Dim)
        } else {
            t.style(Slot::Base)
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "{} {:>19}: ",
                    if focused { "▶" } else { " " },
                    field.label()
                ),
                if focused {
                    t.style(Slot::Accent)
                } else {
                    t.style(Slot::Dim)
                },
            ),
            Span::styled(shown, value_style),
        ]));
    }
    lines.push(Line::from(""));
    if let Some(error) = &f.error {
        lines.push(Line::from(Span::styled(
            format!(" {error}"),
            t.style(Slot::Error),
        )));
    }
    lines.push(Line::from(Span::styled(
        " tab/shift-tab move · ←/→/space choose · enter creates · esc cancels",
        t.style(Slot::Dim),
    )));
    let rect = fitted(area, 76, &lines);
    popup(frame, app, "New campaign", rect, lines);
}
