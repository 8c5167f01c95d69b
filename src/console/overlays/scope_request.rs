//! `+` on the agent detail: request a scope. A fuzzy picker over the catalogue (each scope with
//! its tier and resource, as the owner picker does for people), then the justification, then the
//! duration (pre-filled with the longest the tier allows). Enter moves on; the last Enter sends
//! the request; the registry decides everything (tier policy, approvers, the longest duration).

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
use crate::console::approvals::{default_duration, tier_label};
use crate::console::keymap::{Command, Scope};
use crate::console::layout::{centered, screen};
use crate::console::list::ListCursor;
use crate::console::theme::Slot;
use crate::console::words::{clean, fit};
use crate::model::approvals::CreateRequest;
use crate::model::catalogue::{ApprovalMode, ResourceList, Tier};

/// One scope of the catalogue, as the picker lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueEntry {
    pub scope: String,
    pub tier: Tier,
    pub approval: ApprovalMode,
    pub resource: String,
    pub description: String,
    /// The resource's own longest grant, when it sets one.
    pub max_duration: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Pick,
    Justify,
    Duration,
}

#[derive(Debug)]
pub struct ScopeRequest {
    pub agent_id: String,
    pub agent_name: String,
    pub catalogue: Vec<CatalogueEntry>,
    pub query: String,
    /// Indices into `catalogue`, best match first.
    pub matches: Vec<usize>,
    pub cursor: ListCursor,
    pub step: Step,
    /// The scope chosen (an index into `catalogue`), once past the picker.
    pub chosen: Option<usize>,
    pub justification: String,
    pub duration: String,
}

/// Lines above the list: the agent, the query, a blank.
const HEAD: usize = 3;

fn rect(area: Rect) -> Rect {
    centered(
        area,
        96.min(area.width.saturating_sub(4)),
        area.height.saturating_sub(4).min(22),
    )
}

fn page(app: &App) -> usize {
    (rect(screen(app)).height as usize)
        .saturating_sub(2 + HEAD)
        .max(1)
}

impl ScopeRequest {
    pub fn new(
        app: &App,
        agent_id: String,
        agent_name: String,
        list: ResourceList,
    ) -> ScopeRequest {
        let mut catalogue: Vec<CatalogueEntry> = list
            .resources
            .into_iter()
            .flat_map(|r| {
                let resource = r.name.clone();
                let max = r.max_duration.clone();
                r.scopes.into_iter().map(move |s| CatalogueEntry {
                    scope: s.name,
                    tier: s.tier,
                    approval: s.approval,
                    resource: resource.clone(),
                    description: s.description,
                    max_duration: max.clone(),
                })
            })
            .collect();
        catalogue.sort_by(|a, b| a.scope.cmp(&b.scope));
        let mut p = ScopeRequest {
            agent_id,
            agent_name,
            catalogue,
            query: String::new(),
            matches: Vec::new(),
            cursor: ListCursor::default(),
            step: Step::Pick,
            chosen: None,
            justification: String::new(),
            duration: String::new(),
        };
        p.fill(app);
        p
    }

    /// The entry under the cursor.
    pub fn selected(&self) -> Option<&CatalogueEntry> {
        self.catalogue.get(*self.matches.get(self.cursor.selected)?)
    }

    fn fill(&mut self, app: &App) {
        let matcher = SkimMatcherV2::default().ignore_case();
        let query = self.query.trim();
        let mut scored: Vec<(i64, usize)> = self
            .catalogue
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                if query.is_empty() {
                    return Some((0, i));
                }
                let text = format!("{} {} {}", e.scope, e.resource, e.description);
                matcher.fuzzy_match(&text, query).map(|s| (s, i))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        self.matches = scored.into_iter().map(|(_, i)| i).collect();
        self.cursor.reset();
        self.cursor.select(0, self.matches.len(), page(app));
    }

    fn entry(&self) -> Option<&CatalogueEntry> {
        self.catalogue.get(self.chosen?)
    }
}

impl Room for ScopeRequest {
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
        let keep = |s: ScopeRequest| Some(Overlay::ScopeRequest(Box::new(s)));
        match (self.step, command) {
            (_, Some(Command::Cancel)) => {
                app.message = Some((Tone::Info, "cancelled; nothing requested".into()));
                None
            }
            (Step::Pick, Some(c @ (Command::Up | Command::Down))) => {
                let delta = if c == Command::Down { 1 } else { -1 };
                self.cursor.move_by(delta, self.matches.len(), page(app));
                keep(self)
            }
            (Step::Pick, Some(Command::Accept)) => {
                let Some(i) = self.matches.get(self.cursor.selected).copied() else {
                    app.message = Some((Tone::Error, "no scope matches: type less".into()));
                    return keep(self);
                };
                let e = &self.catalogue[i];
                self.duration = default_duration(e.tier, e.max_duration.as_deref());
                self.chosen = Some(i);
                self.step = Step::Justify;
                keep(self)
            }
            (Step::Justify, Some(Command::Accept)) => {
                if self.justification.trim().is_empty() {
                    app.message = Some((
                        Tone::Error,
                        "say why the agent needs it (esc cancels)".into(),
                    ));
                    return keep(self);
                }
                self.step = Step::Duration;
                keep(self)
            }
            (Step::Duration, Some(Command::Accept)) => {
                let e = self.entry()?;
                let scope = e.scope.clone();
                let duration = self.duration.trim().to_string();
                app.message = Some((
                    Tone::Info,
                    format!(
                        "requesting {} for {}…",
                        clean(&scope),
                        clean(&self.agent_name)
                    ),
                ));
                fx.push(Effect::RequestScope {
                    agent_id: self.agent_id.clone(),
                    request: CreateRequest {
                        scope,
                        justification: self.justification.trim().to_string(),
                        duration: (!duration.is_empty()).then_some(duration),
                    },
                });
                None
            }
            (Step::Pick, _) => {
                if edit(&mut self.query, &key) {
                    self.fill(app);
                }
                keep(self)
            }
            (Step::Justify, _) => {
                edit(&mut self.justification, &key);
                keep(self)
            }
            (Step::Duration, _) => {
                edit(&mut self.duration, &key);
                keep(self)
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let rect = rect(area);
        let inner_w = rect.width.saturating_sub(2) as usize;
        let mut lines = vec![Line::from(vec![
            Span::styled(" request a scope for ", t.style(Slot::Dim)),
            Span::styled(clean(&self.agent_name).into_owned(), t.style(Slot::Accent)),
        ])];
        if let (Step::Justify | Step::Duration, Some(e)) = (self.step, self.entry()) {
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                Span::styled(" Scope:         ", t.style(Slot::Dim)),
                Span::raw(format!(
                    "{}  {}  ({})",
                    clean(&e.scope),
                    tier_label(e.tier),
                    clean(&e.resource)
                )),
            ]));
            if e.approval == ApprovalMode::PerUse {
                lines.push(Line::from(Span::styled(
                    "                each use also waits for a person's approval (per-use)",
                    t.style(Slot::Dim),
                )));
            }
            let field = |label: &str, text: &str, active: bool| {
                Line::from(vec![
                    Span::styled(format!(" {label:<15}"), t.style(Slot::Dim)),
                    Span::styled(
                        format!("{text}{}", if active { "▏" } else { "" }),
                        if active {
                            t.style(Slot::Input)
                        } else {
                            t.style(Slot::Hint)
                        },
                    ),
                ])
            };
            lines.push(field(
                "Justification:",
                &self.justification,
                self.step == Step::Justify,
            ));
            if self.step == Step::Duration {
                lines.push(field("Duration:", &self.duration, true));
                lines.push(Line::from(Span::styled(
                    format!(
                        "                e.g. 30d or 12h; the {} tier allows at most {}",
                        e.tier.as_str(),
                        default_duration(e.tier, e.max_duration.as_deref())
                    ),
                    t.style(Slot::Dim),
                )));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                if self.step == Step::Justify {
                    " enter: next (duration) · esc cancels"
                } else {
                    " enter sends the request · esc cancels"
                },
                t.style(Slot::Dim),
            )));
            let h = (lines.len() as u16 + 2).min(rect.height);
            let r = Rect { height: h, ..rect };
            popup(frame, app, "Request a scope", r, lines);
            return;
        }
        lines.push(Line::from(vec![
            Span::styled(" > ", t.style(Slot::Accent)),
            Span::styled(format!("{}▏", self.query), t.style(Slot::Input)),
        ]));
        lines.push(Line::from(""));
        let room = (rect.height as usize).saturating_sub(2 + HEAD);
        if self.matches.is_empty() {
            lines.push(Line::from(Span::styled(
                if self.catalogue.is_empty() {
                    "   the catalogue is empty: an admin imports it (steward resources import)"
                } else {
                    "   no scope matches"
                },
                t.style(Slot::Dim),
            )));
        }
        for n in self.cursor.visible(self.matches.len(), room) {
            let e = &self.catalogue[self.matches[n]];
            let selected = n == self.cursor.selected;
            let text = format!(
                "{} {:<30} {:<14} {:<12} {}{}",
                if selected { "▶" } else { " " },
                fit(&clean(&e.scope), 30),
                tier_label(e.tier),
                fit(&clean(&e.resource), 12),
                if e.approval == ApprovalMode::PerUse {
                    "per-use · "
                } else {
                    ""
                },
                clean(&e.description),
            );
            let style = if selected {
                t.style(Slot::Selected)
            } else {
                t.style(Slot::Hint)
            };
            lines.push(Line::from(Span::styled(fit(&text, inner_w), style)));
        }
        popup(frame, app, "Request a scope", rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        match self.step {
            Step::Pick => vec![
                Hint::Typing("search the catalogue"),
                Hint::Key(Command::Down, "choose"),
                Hint::Key(Command::Accept, "next"),
                Hint::Key(Command::Cancel, "cancel"),
            ],
            Step::Justify => vec![
                Hint::Typing("justification"),
                Hint::Key(Command::Accept, "next"),
                Hint::Key(Command::Cancel, "cancel"),
            ],
            Step::Duration => vec![
                Hint::Typing("duration"),
                Hint::Key(Command::Accept, "request"),
                Hint::Key(Command::Cancel, "cancel"),
            ],
        }
    }
}
