//! `o`: the owner picker. People are ranked by the registry (`GET /v1/agents/{id}/owner-candidates`:
//! the agent's team, then the previous owner's manager, then the people who use the agent, then
//! the rest) and matched fuzzily as you type; the current owner is shown and not offered; people
//! who left are listed, marked, and never offered. On marked rows it picks one owner for all of
//! them, after a confirmation naming the count.
//!
//! `a` on the reviews screen opens the same picker to choose another reviewer for a review item
//! (tab: all the agent's items): the current reviewer is shown and not offered, people who left
//! are never offered, and the registry's answer (refusal included) is shown.

use std::collections::HashMap;

use crossterm::event::KeyEvent;
use fuzzy_matcher::FuzzyMatcher;
use fuzzy_matcher::skim::SkimMatcherV2;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::popup::popup;
use super::{Hint, Overlay, Room, edit};
use crate::console::action::{BulkOwnerOrder, Effect, OwnerChange, Pending, ReassignOrder};
use crate::console::app::{App, Tone};
use crate::console::keymap::{Command, Scope};
use crate::console::layout::{centered, screen};
use crate::console::list::ListCursor;
use crate::console::theme::Slot;
use crate::console::words::{clean, fit};
use crate::model::ownership::{CandidateReason, OwnerCandidates};

#[derive(Debug, Clone)]
pub struct PickEntry {
    /// Index into the inventory's people.
    pub person: usize,
    /// False for people who have left (and the current owner): listed, marked, never chosen.
    pub offered: bool,
    /// Why the registry ranks them where they are (once its ranking arrived).
    pub reason: Option<CandidateReason>,
}

#[derive(Debug)]
pub struct PickerState {
    /// The agent the ranking is for (the first of `targets`).
    pub agent_id: String,
    pub agent_name: String,
    /// Every agent that gets the chosen owner (`after` is filled in on Enter).
    pub targets: Vec<OwnerChange>,
    /// The registry's ranking by lowercased email, once it arrived.
    pub ranking: Option<HashMap<String, CandidateReason>>,
    /// Why the ranking could not be read (the picker still works, by name).
    pub ranking_error: Option<String>,
    pub query: String,
    pub entries: Vec<PickEntry>,
    /// Over `entries` (always on an offered one, when any is).
    pub cursor: ListCursor,
    /// Set when the picker chooses a reviewer for review items instead of an owner.
    pub reassign: Option<ReassignOrder>,
}

/// Lines above the list: the agent, the query, a blank.
const HEAD: usize = 3;

fn rect(area: Rect) -> Rect {
    centered(
        area,
        72.min(area.width.saturating_sub(4)),
        area.height.saturating_sub(4).min(22),
    )
}

/// People on screen at once.
fn page(app: &App) -> usize {
    (rect(screen(app)).height as usize)
        .saturating_sub(2 + HEAD)
        .max(1)
}

impl PickerState {
    pub fn new(
        app: &App,
        agent_id: String,
        agent_name: String,
        current_owner: Option<String>,
    ) -> PickerState {
        let target = OwnerChange {
            id: agent_id,
            name: agent_name,
            before: current_owner,
            after: None,
        };
        PickerState::for_many(app, vec![target])
    }

    /// One owner for several agents (`targets` is not empty).
    pub fn for_many(app: &App, targets: Vec<OwnerChange>) -> PickerState {
        let first = targets.first().cloned().unwrap_or(OwnerChange {
            id: String::new(),
            name: String::new(),
            before: None,
            after: None,
        });
        let mut p = PickerState {
            agent_id: first.id,
            agent_name: first.name,
            targets,
            ranking: None,
            ranking_error: None,
            query: String::new(),
            entries: Vec::new(),
            cursor: ListCursor::default(),
            reassign: None,
        };
        p.fill(app);
        p
    }

    /// Another reviewer for a review item (or all of its agent's items): the current reviewer
    /// shown and not offered, people who left never offered; no ranking, by name.
    pub fn for_reviewer(app: &App, order: ReassignOrder) -> PickerState {
        let mut p = PickerState {
            agent_id: order.agent_id.clone(),
            agent_name: order.agent_name.clone(),
            targets: Vec::new(),
            ranking: None,
            ranking_error: None,
            query: String::new(),
            entries: Vec::new(),
            cursor: ListCursor::default(),
            reassign: Some(order),
        };
        p.fill(app);
        p
    }

    /// The person under the cursor, when it may be chosen.
    pub fn chosen(&self) -> Option<&PickEntry> {
        self.entries.get(self.cursor.selected).filter(|e| e.offered)
    }

    /// The current owner when one agent is being given an owner.
    pub fn current_owner(&self) -> Option<&str> {
        if let Some(o) = &self.reassign {
            return Some(o.current.as_str());
        }
        match self.targets.as_slice() {
            [one] => one.before.as_deref(),
            _ => None,
        }
    }

    /// Takes the registry's ranking (for this picker's agent) and re-sorts.
    pub fn ranked(&mut self, app: &App, answer: Result<OwnerCandidates, String>) {
        if self.reassign.is_some() {
            // An owner ranking means nothing for reviewers.
            return;
        }
        match answer {
            Ok(c) => {
                self.ranking = Some(
                    c.candidates
                        .into_iter()
                        .map(|c| (c.email.to_lowercase(), c.reason))
                        .collect(),
                );
                self.ranking_error = None;
            }
            Err(e) => self.ranking_error = Some(e),
        }
        self.fill(app);
    }

    /// Offered people in the registry's order (within it, best match first), then the current
    /// owner and the people who left (marked, never offered).
    fn fill(&mut self, app: &App) {
        let matcher = SkimMatcherV2::default().ignore_case();
        let query = self.query.trim();
        let people = app.inventory.people();
        let current = self.current_owner().map(str::to_lowercase);
        let ranking = self.ranking.as_ref();
        let mut scored: Vec<(bool, Option<CandidateReason>, i64, usize)> = people
            .iter()
            .enumerate()
            .filter_map(|(i, person)| {
                let text = format!("{} {}", person.display_name, person.email);
                let score = if query.is_empty() {
                    0
                } else {
                    matcher.fuzzy_match(&text, query)?
                };
                let email = person.email.to_lowercase();
                let offered = person.active && current.as_deref() != Some(email.as_str());
                let reason =
                    ranking.map(|r| r.get(&email).copied().unwrap_or(CandidateReason::Other));
                Some((offered, reason, score, i))
            })
            .collect();
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(a.1.cmp(&b.1))
                .then(b.2.cmp(&a.2))
                .then_with(|| people[a.3].display_name.cmp(&people[b.3].display_name))
        });
        self.entries = scored
            .into_iter()
            .map(|(offered, reason, _, person)| PickEntry {
                person,
                offered,
                reason,
            })
            .collect();
        let first = self.entries.iter().position(|e| e.offered).unwrap_or(0);
        self.cursor.reset();
        self.cursor.select(first, self.entries.len(), page(app));
    }

    /// The next offered entry up or down (people who left are skipped).
    fn step(&mut self, app: &App, forward: bool) {
        let n = self.entries.len();
        let mut i = self.cursor.selected;
        for _ in 0..n {
            i = if forward {
                (i + 1).min(n.saturating_sub(1))
            } else {
                i.saturating_sub(1)
            };
            if self.entries.get(i).is_some_and(|e| e.offered) {
                self.cursor.select(i, n, page(app));
                return;
            }
        }
    }
}

impl Room for PickerState {
    fn scope(&self) -> Scope {
        Scope::Prompt
    }

    fn takes_text(&self) -> bool {
        true
    }

    fn key(
        mut self,
        app: &mut App,
        key: KeyEvent,
        command: Option<Command>,
        fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        match command {
            Some(Command::Cancel) => None,
            Some(Command::SwitchTarget) => {
                if let Some(o) = &mut self.reassign {
                    o.whole_agent = !o.whole_agent;
                }
                Some(Overlay::Picker(self))
            }
            Some(Command::Accept) if self.reassign.is_some() => {
                let Some(entry) = self.chosen() else {
                    app.message =
                        Some((Tone::Error, "no one to choose: type part of a name".into()));
                    return Some(Overlay::Picker(self));
                };
                let person = &app.inventory.people()[entry.person];
                let mut order = self.reassign.take()?;
                order.reviewer = person.email.clone();
                let what = if order.whole_agent {
                    format!("the items of {}", clean(&order.agent_name))
                } else {
                    format!("{} of {}", clean(&order.scope), clean(&order.agent_name))
                };
                app.message = Some((
                    Tone::Info,
                    format!("reassigning {what} to {}…", clean(&order.reviewer)),
                ));
                fx.push(Effect::Reassign(order));
                None
            }
            Some(Command::Accept) => {
                let Some(entry) = self.chosen() else {
                    app.message =
                        Some((Tone::Error, "no one to assign: type part of a name".into()));
                    return Some(Overlay::Picker(self));
                };
                let person = &app.inventory.people()[entry.person];
                let (owner, owner_name) = (person.email.clone(), person.display_name.clone());
                let changes: Vec<OwnerChange> = self
                    .targets
                    .iter()
                    .map(|t| OwnerChange {
                        // A leaver cannot be given an agent back: undoing the change of an
                        // orphaned agent leaves it unowned.
                        before: t
                            .before
                            .clone()
                            .filter(|b| app.inventory.person(b).is_none_or(|p| p.active)),
                        after: Some(owner.clone()),
                        ..t.clone()
                    })
                    .collect();
                if changes.len() > 1 {
                    return Some(Overlay::Confirm(
                        crate::console::overlays::confirm::ConfirmState::BulkOwner(
                            Pending::buttons(BulkOwnerOrder {
                                owner,
                                owner_name,
                                changes,
                            }),
                        ),
                    ));
                }
                app.message = Some((
                    Tone::Info,
                    format!(
                        "assigning {} to {}…",
                        clean(&owner),
                        clean(&self.agent_name)
                    ),
                ));
                fx.push(Effect::AssignOwners {
                    changes,
                    undo: false,
                });
                None
            }
            Some(c @ (Command::Up | Command::Down)) => {
                self.step(app, c == Command::Down);
                Some(Overlay::Picker(self))
            }
            _ => {
                if edit(&mut self.query, &key) {
                    self.fill(app);
                }
                Some(Overlay::Picker(self))
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let rect = rect(area);
        let inner_w = rect.width.saturating_sub(2) as usize;
        let mut lines = self.head(app);
        let room = (rect.height as usize).saturating_sub(2 + HEAD);
        if self.entries.is_empty() {
            lines.push(Line::from(Span::styled(
                if app.inventory.people().is_empty() {
                    "   nobody known yet (the people list arrives with the sync)"
                } else {
                    "   no one matches"
                },
                t.style(Slot::Dim),
            )));
        }
        let current = if self.reassign.is_some() {
            "  (current reviewer)"
        } else {
            "  (current owner)"
        };
        for n in self.cursor.visible(self.entries.len(), room) {
            let e = &self.entries[n];
            let person = &app.inventory.people()[e.person];
            let team = person
                .team
                .as_deref()
                .map(|t| format!(" · {}", clean(t)))
                .unwrap_or_default();
            let selected = n == self.cursor.selected;
            let why = match e.reason {
                Some(r) if e.offered && r != CandidateReason::Other => {
                    format!("  [{}]", r.as_str())
                }
                _ => String::new(),
            };
            let text = format!(
                "{} {} <{}>{team}{why}{}",
                if selected { "▶" } else { " " },
                clean(&person.display_name),
                clean(&person.email),
                if e.offered {
                    ""
                } else if person.active {
                    current
                } else {
                    "  (left: not offered)"
                },
            );
            let style = if !e.offered {
                t.style(Slot::Dim)
            } else if selected {
                t.style(Slot::Selected)
            } else {
                t.style(Slot::Hint)
            };
            lines.push(Line::from(Span::styled(fit(&text, inner_w), style)));
        }
        let title = if self.reassign.is_some() {
            "Reassign review"
        } else {
            "Assign owner"
        };
        popup(frame, app, title, rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        if self.reassign.is_some() {
            return vec![
                Hint::Typing("search people"),
                Hint::Key(Command::SwitchTarget, "item/all"),
                Hint::Key(Command::Down, "choose"),
                Hint::Key(Command::Accept, "reassign"),
                Hint::Key(Command::Cancel, "cancel"),
            ];
        }
        vec![
            Hint::Typing("search people"),
            Hint::Key(Command::Down, "choose"),
            Hint::Key(Command::Accept, "assign"),
            Hint::Key(Command::Cancel, "cancel"),
        ]
    }
}

impl PickerState {
    /// The lines above the list ([`HEAD`] of them): what is being given to whom, the query, a
    /// blank.
    fn head(&self, app: &App) -> Vec<Line<'static>> {
        let t = &app.theme;
        let query = Line::from(vec![
            Span::styled(" > ", t.style(Slot::Accent)),
            Span::styled(format!("{}▏", self.query), t.style(Slot::Input)),
        ]);
        if let Some(o) = &self.reassign {
            let who = app
                .inventory
                .person(&o.current)
                .map_or(o.current.as_str(), |p| p.display_name.as_str());
            let subject = if o.whole_agent {
                format!("all items of {} (every reviewer's)", clean(&o.agent_name))
            } else {
                format!("{} of {}", clean(&o.scope), clean(&o.agent_name))
            };
            return vec![
                Line::from(vec![
                    Span::styled(" reviewer for ", t.style(Slot::Dim)),
                    Span::styled(subject, t.style(Slot::Accent)),
                    Span::styled(format!(" · now {}", clean(who)), t.style(Slot::Dim)),
                ]),
                query,
                Line::from(""),
            ];
        }
        let subject = match self.targets.len() {
            1 => clean(&self.agent_name).into_owned(),
            n => format!("{n} marked agents"),
        };
        let now = match (self.targets.len(), self.current_owner()) {
            (1, Some(o)) => {
                let left = app.inventory.person(o).is_some_and(|p| !p.active);
                format!(
                    " · now {}{}",
                    clean(
                        app.inventory
                            .person(o)
                            .map_or(o, |p| p.display_name.as_str())
                    ),
                    if left { " (left)" } else { "" }
                )
            }
            (1, None) => " · now unowned".to_string(),
            _ => String::new(),
        };
        let ranking = match (&self.ranking, &self.ranking_error) {
            (Some(_), _) => "",
            (None, Some(_)) => " · ranking unavailable: by name",
            (None, None) => " · ranking…",
        };
        vec![
            Line::from(vec![
                Span::styled(" owner for ", t.style(Slot::Dim)),
                Span::styled(subject, t.style(Slot::Accent)),
                Span::styled(format!("{now}{ranking}"), t.style(Slot::Dim)),
            ]),
            query,
            Line::from(""),
        ]
    }
}
