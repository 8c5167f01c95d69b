//! `o`: the owner picker. People are matched fuzzily as you type; people who left are listed,
//! marked, and never offered.

use crossterm::event::KeyEvent;
use fuzzy_matcher::FuzzyMatcher;
use fuzzy_matcher::skim::SkimMatcherV2;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::popup::popup;
use super::{Hint, Overlay, Room, edit};
use crate::console::action::Effect;
use crate::console::app::{App, Tone};
use crate::console::keymap::{Command, Scope};
use crate::console::layout::{centered, screen};
use crate::console::list::ListCursor;
use crate::console::theme::Slot;
use crate::console::words::{clean, fit};

#[derive(Debug, Clone)]
pub struct PickEntry {
    /// Index into the inventory's people.
    pub person: usize,
    /// False for people who have left: listed, marked, never chosen.
    pub offered: bool,
}

#[derive(Debug)]
pub struct PickerState {
    pub agent_id: String,
    pub agent_name: String,
    pub query: String,
    pub entries: Vec<PickEntry>,
    /// Over `entries` (always on an offered one, when any is).
    pub cursor: ListCursor,
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
    pub fn new(app: &App, agent_id: String, agent_name: String) -> PickerState {
        let mut p = PickerState {
            agent_id,
            agent_name,
            query: String::new(),
            entries: Vec::new(),
            cursor: ListCursor::default(),
        };
        p.fill(app);
        p
    }

    /// The person under the cursor, when it may be chosen.
    pub fn chosen(&self) -> Option<&PickEntry> {
        self.entries.get(self.cursor.selected).filter(|e| e.offered)
    }

    /// Offered people best match first, then people who left (marked).
    fn fill(&mut self, app: &App) {
        let matcher = SkimMatcherV2::default().ignore_case();
        let query = self.query.trim();
        let people = app.inventory.people();
        let mut scored: Vec<(bool, i64, usize)> = people
            .iter()
            .enumerate()
            .filter_map(|(i, person)| {
                let text = format!("{} {}", person.display_name, person.email);
                let score = if query.is_empty() {
                    0
                } else {
                    matcher.fuzzy_match(&text, query)?
                };
                Some((person.active, score, i))
            })
            .collect();
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.cmp(&a.1))
                .then_with(|| people[a.2].display_name.cmp(&people[b.2].display_name))
        });
        self.entries = scored
            .into_iter()
            .map(|(active, _, person)| PickEntry {
                person,
                offered: active,
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
            Some(Command::Accept) => {
                let Some(entry) = self.chosen() else {
                    app.message =
                        Some((Tone::Error, "no one to assign: type part of a name".into()));
                    return Some(Overlay::Picker(self));
                };
                let owner = app.inventory.people()[entry.person].email.clone();
                app.message = Some((
                    Tone::Info,
                    format!(
                        "assigning {} to {}…",
                        clean(&owner),
                        clean(&self.agent_name)
                    ),
                ));
                fx.push(Effect::SetOwner {
                    id: self.agent_id.clone(),
                    owner,
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
        let mut lines = vec![
            Line::from(vec![
                Span::styled(" owner for ", t.style(Slot::Dim)),
                Span::styled(clean(&self.agent_name).into_owned(), t.style(Slot::Accent)),
            ]),
            Line::from(vec![
                Span::styled(" > ", t.style(Slot::Accent)),
                Span::styled(format!("{}▏", self.query), t.style(Slot::Input)),
            ]),
            Line::from(""),
        ];
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
        for n in self.cursor.visible(self.entries.len(), room) {
            let e = &self.entries[n];
            let person = &app.inventory.people()[e.person];
            let team = person
                .team
                .as_deref()
                .map(|t| format!(" · {}", clean(t)))
                .unwrap_or_default();
            let selected = n == self.cursor.selected;
            let text = format!(
                "{} {} <{}>{team}{}",
                if selected { "▶" } else { " " },
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
            } else if selected {
                t.style(Slot::Selected)
            } else {
                t.style(Slot::Hint)
            };
            lines.push(Line::from(Span::styled(fit(&text, inner_w), style)));
        }
        popup(frame, app, "Assign owner", rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing("search people"),
            Hint::Key(Command::Down, "choose"),
            Hint::Key(Command::Accept, "assign"),
            Hint::Key(Command::Cancel, "cancel"),
        ]
    }
}
