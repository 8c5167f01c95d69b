//! `N` on the reviews screen (admins): the campaign form. Esc keeps it as a draft that the same
//! key reopens, so typing is never lost.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::popup::{fitted, popup};
use super::{Hint, Overlay, Room, edit};
use crate::console::action::Effect;
use crate::console::app::{App, Tone};
use crate::console::keymap::{Command, Scope};
use crate::console::theme::Slot;
use crate::console::words::clean;
use crate::model::review::{
    CampaignFilter, CreateCampaign, JustificationPolicy, NoResponse, Recurrence, ReminderSchedule,
};

/// The fields of the campaign form, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignField {
    Name,
    Due,
    Team,
    Fallback,
    NoResponse,
    Quarterly,
}

impl CampaignField {
    pub const ALL: [CampaignField; 6] = [
        CampaignField::Name,
        CampaignField::Due,
        CampaignField::Team,
        CampaignField::Fallback,
        CampaignField::NoResponse,
        CampaignField::Quarterly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CampaignField::Name => "name",
            CampaignField::Due => "due date",
            CampaignField::Team => "team filter",
            CampaignField::Fallback => "fallback reviewer",
            CampaignField::NoResponse => "no-response outcome",
            CampaignField::Quarterly => "quarterly",
        }
    }

    /// True for the fields that take typed text (the others are chosen with left/right/space).
    pub fn is_text(self) -> bool {
        !matches!(self, CampaignField::NoResponse | CampaignField::Quarterly)
    }
}

/// The admin's campaign form. Kept as a draft when cancelled, so Esc never loses typing.
#[derive(Debug, Clone)]
pub struct CampaignForm {
    pub name: String,
    /// YYYY-MM-DD; the campaign is due at the end of that day (UTC).
    pub due: String,
    /// Empty: every active agent.
    pub team: String,
    /// Empty: the creator.
    pub fallback: String,
    pub no_response: NoResponse,
    pub quarterly: bool,
    pub focus: CampaignField,
    /// Why the last Enter was refused locally.
    pub error: Option<String>,
}

impl CampaignForm {
    /// A fresh form: named after the next calendar quarter, due in 30 days.
    pub fn new(now: i64) -> CampaignForm {
        use chrono::Datelike;
        let today = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let quarter = today.month0() / 3 + 1;
        let (year, next) = if quarter == 4 {
            (today.year() + 1, 1)
        } else {
            (today.year(), quarter + 1)
        };
        let due = today + chrono::Duration::days(30);
        CampaignForm {
            name: format!("{year}-Q{next} agent certification"),
            due: due.format("%Y-%m-%d").to_string(),
            team: String::new(),
            fallback: String::new(),
            no_response: NoResponse::Keep,
            quarterly: false,
            focus: CampaignField::Name,
            error: None,
        }
    }

    /// The focused text field, when the focus is on one.
    pub fn text_mut(&mut self) -> Option<&mut String> {
        match self.focus {
            CampaignField::Name => Some(&mut self.name),
            CampaignField::Due => Some(&mut self.due),
            CampaignField::Team => Some(&mut self.team),
            CampaignField::Fallback => Some(&mut self.fallback),
            CampaignField::NoResponse | CampaignField::Quarterly => None,
        }
    }
}

/// Checks the campaign form and builds the request; an error names the field.
pub fn campaign_request(f: &CampaignForm) -> Result<CreateCampaign, String> {
    use crate::model::text::{check_email, check_line};
    let name = f.name.trim();
    if name.is_empty() {
        return Err("name: type a name for the campaign".into());
    }
    check_line("name", name, 128).map_err(|e| e.to_string())?;
    let due = chrono::NaiveDate::parse_from_str(f.due.trim(), "%Y-%m-%d")
        .map_err(|_| format!("due date: {:?} is not a date like 2027-03-31", f.due.trim()))?;
    // Due at the end of that day, UTC.
    let due_at = due
        .and_hms_opt(23, 59, 59)
        .expect("23:59:59 is a valid time")
        .and_utc();
    let team = f.team.trim();
    let team = if team.is_empty() {
        None
    } else {
        check_line("team filter", team, 64).map_err(|e| e.to_string())?;
        Some(team.to_string())
    };
    let fallback = f.fallback.trim();
    let fallback = if fallback.is_empty() {
        None
    } else {
        check_email(fallback).map_err(|e| format!("fallback reviewer: {e}"))?;
        Some(fallback.to_string())
    };
    Ok(CreateCampaign {
        name: name.to_string(),
        filter: CampaignFilter {
            team,
            ..CampaignFilter::default()
        },
        starts_at: None,
        due_at,
        grace_days: None,
        recurrence: if f.quarterly {
            Recurrence::Quarterly
        } else {
            Recurrence::None
        },
        fallback_reviewer: fallback,
        reminders: ReminderSchedule::default(),
        no_response: f.no_response,
        justification: JustificationPolicy::default(),
        lookback_days: None,
    })
}

impl Room for Box<CampaignForm> {
    fn scope(&self) -> Scope {
        Scope::Form
    }

    fn takes_text(&self) -> bool {
        self.focus.is_text()
    }

    fn key(
        mut self,
        app: &mut App,
        key: KeyEvent,
        command: Option<Command>,
        fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        let fields = CampaignField::ALL;
        let at = fields.iter().position(|&x| x == self.focus).unwrap_or(0);
        let n = fields.len();
        match command {
            Some(Command::Cancel) => {
                self.error = None;
                app.campaign_draft = Some(self);
                app.message = Some((
                    Tone::Info,
                    "cancelled; nothing created (the draft reopens with its key)".into(),
                ));
                return None;
            }
            Some(Command::Accept) => match campaign_request(&self) {
                Ok(request) => {
                    self.error = None;
                    app.message = Some((Tone::Info, format!("creating {}…", clean(&request.name))));
                    app.overlay = Some(Overlay::Busy(super::busy::Busy(format!(
                        "creating {}…",
                        clean(&request.name)
                    ))));
                    fx.push(Effect::CreateCampaign {
                        request: Box::new(request),
                        draft: self,
                    });
                    return None;
                }
                Err(why) => {
                    app.message = Some((Tone::Error, why.clone()));
                    self.error = Some(why);
                }
            },
            Some(Command::NextField) => self.focus = fields[(at + 1) % n],
            Some(Command::PrevField) => self.focus = fields[(at + n - 1) % n],
            Some(c @ (Command::NextValue | Command::PrevValue)) if !self.focus.is_text() => {
                let forward = c == Command::NextValue;
                match self.focus {
                    CampaignField::NoResponse => {
                        let all = [
                            NoResponse::Keep,
                            NoResponse::Revoke,
                            NoResponse::Recommendation,
                        ];
                        let i = all.iter().position(|&r| r == self.no_response).unwrap_or(0);
                        self.no_response = all[if forward { (i + 1) % 3 } else { (i + 2) % 3 }];
                    }
                    _ => self.quarterly = !self.quarterly,
                }
            }
            _ => {
                if let Some(text) = self.text_mut() {
                    edit(text, &key);
                }
            }
        }
        Some(Overlay::CampaignForm(self))
    }

    /// One line per field, the focused one highlighted.
    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let mut lines = vec![Line::from("")];
        for field in CampaignField::ALL {
            let focused = field == self.focus;
            let value = match field {
                CampaignField::Name => self.name.clone(),
                CampaignField::Due => self.due.clone(),
                CampaignField::Team => self.team.clone(),
                CampaignField::Fallback => self.fallback.clone(),
                CampaignField::NoResponse => format!("‹ {} ›", self.no_response.as_str()),
                CampaignField::Quarterly => {
                    format!("‹ {} ›", if self.quarterly { "yes" } else { "no" })
                }
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
        if let Some(error) = &self.error {
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

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Key(Command::NextField, "next field"),
            Hint::Key(Command::PrevValue, "choose"),
            Hint::Key(Command::Accept, "create"),
            Hint::Key(Command::Cancel, "cancel (keeps draft)"),
        ]
    }
}
