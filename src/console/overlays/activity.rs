//! The activity and audit view (`t` for the selected agent, `:audit` for everything): governance
//! events and token exchanges, newest first, each with its actor kind as a word, who, on whose
//! behalf (the delegation chain, newest actor last), what, the outcome and the reason. Filtered
//! by actor kind and text and paged by the registry (`GET /v1/audit/timeline`): moving past the
//! last entry asks for the next page.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};

use super::{Hint, Overlay, Room, edit};
use crate::console::action::Effect;
use crate::console::app::App;
use crate::console::keymap::{Command, Scope};
use crate::console::list::ListCursor;
use crate::console::theme::Slot;
use crate::console::words::clean;
use crate::model::ActorKind;
use crate::model::timeline::{TimelineEntry, TimelineQuery};

/// Entries asked for per page.
pub const ACTIVITY_PAGE: u32 = 200;

#[derive(Debug, Default)]
pub struct ActivityState {
    /// The agent (id, name) whose timeline this is; None: everything.
    pub agent: Option<(String, String)>,
    pub actor_kind: Option<ActorKind>,
    pub include_exchanges: bool,
    /// The text filter; sent when Enter leaves the field.
    pub text: String,
    pub editing: bool,
    pub entries: Vec<TimelineEntry>,
    /// The registry's cursor for the next (older) page.
    pub next: Option<String>,
    pub loading: bool,
    pub error: Option<String>,
    pub cursor: ListCursor,
    /// Answers to an older query are dropped.
    pub generation: u64,
}

impl ActivityState {
    pub fn new(agent: Option<(String, String)>) -> ActivityState {
        ActivityState {
            agent,
            include_exchanges: true,
            ..Default::default()
        }
    }

    /// The query for the first page (or, with `before`, the next one).
    pub fn query(&self, before: Option<String>) -> TimelineQuery {
        TimelineQuery {
            agent: self.agent.as_ref().map(|(id, _)| id.clone()),
            include_exchanges: Some(self.include_exchanges),
            actor_kind: self.actor_kind.map(|k| k.as_str().to_string()),
            q: Some(self.text.trim().to_string()).filter(|t| !t.is_empty()),
            before,
            limit: Some(ACTIVITY_PAGE),
        }
    }

    /// Starts over with the current filters.
    pub fn reload(&mut self, fx: &mut Vec<Effect>) {
        self.generation += 1;
        self.loading = true;
        self.error = None;
        fx.push(Effect::LoadTimeline {
            generation: self.generation,
            query: self.query(None),
            append: false,
        });
    }

    fn load_more(&mut self, fx: &mut Vec<Effect>) {
        if self.loading {
            return;
        }
        if let Some(next) = self.next.clone() {
            self.loading = true;
            fx.push(Effect::LoadTimeline {
                generation: self.generation,
                query: self.query(Some(next)),
                append: true,
            });
        }
    }

    /// The registry's answer for `generation`.
    pub fn answered(
        &mut self,
        generation: u64,
        append: bool,
        result: Result<crate::model::timeline::TimelinePage, String>,
    ) {
        if generation != self.generation {
            return;
        }
        self.loading = false;
        match result {
            Ok(page) => {
                if !append {
                    self.entries.clear();
                    self.cursor = ListCursor::default();
                }
                self.entries.extend(page.entries);
                self.next = page.next;
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn title(&self) -> String {
        match &self.agent {
            Some((_, name)) => format!("Activity and audit · {}", clean(name)),
            None => "Activity and audit · everything".into(),
        }
    }
}

/// Rows of entries the view shows at this terminal height.
fn page_rows(app: &App) -> usize {
    (app.height as usize).saturating_sub(9).max(1)
}

fn next_kind(k: Option<ActorKind>) -> Option<ActorKind> {
    match k {
        None => Some(ActorKind::Human),
        Some(ActorKind::Human) => Some(ActorKind::Agent),
        Some(ActorKind::Agent) => Some(ActorKind::System),
        Some(ActorKind::System) => None,
    }
}

impl Room for Box<ActivityState> {
    fn scope(&self) -> Scope {
        if self.editing {
            Scope::Prompt
        } else {
            Scope::Activity
        }
    }

    fn takes_text(&self) -> bool {
        self.editing
    }

    fn key(
        mut self,
        app: &mut App,
        key: KeyEvent,
        command: Option<Command>,
        fx: &mut Vec<Effect>,
    ) -> Option<Overlay> {
        let page = page_rows(app);
        let len = self.entries.len();
        if self.editing {
            match command {
                Some(Command::Accept) => {
                    self.editing = false;
                    self.reload(fx);
                }
                Some(Command::Cancel) => {
                    self.editing = false;
                    if !self.text.is_empty() {
                        self.text.clear();
                        self.reload(fx);
                    }
                }
                _ => {
                    edit(&mut self.text, &key);
                }
            }
            return Some(Overlay::Activity(self));
        }
        match command {
            Some(Command::Back) => return None,
            Some(Command::Up) => self.cursor.move_by(-1, len, page),
            Some(Command::Down) => {
                if self.cursor.selected + 1 >= len {
                    self.load_more(fx);
                }
                self.cursor.move_by(1, len, page);
            }
            Some(Command::PageUp) => self.cursor.page_up(len, page),
            Some(Command::PageDown) => {
                if self.cursor.selected + page >= len {
                    self.load_more(fx);
                }
                self.cursor.page_down(len, page);
            }
            Some(Command::Top) => self.cursor.home(len, page),
            Some(Command::Bottom) => self.cursor.end(len, page),
            Some(Command::Filter) => self.editing = true,
            Some(Command::ActorKind) => {
                self.actor_kind = next_kind(self.actor_kind);
                self.reload(fx);
            }
            Some(Command::ToggleExchanges) => {
                self.include_exchanges = !self.include_exchanges;
                self.reload(fx);
            }
            _ => {}
        }
        Some(Overlay::Activity(self))
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        // Over the screen's body: the header and the footer stay.
        let rect = Rect {
            x: area.x,
            y: area.y + 1,
            width: area.width,
            height: area.height.saturating_sub(2),
        };
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(t.style(Slot::Border))
            .title(Span::styled(
                format!(" {} ", self.title()),
                t.style(Slot::Title),
            ));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        if inner.height < 3 {
            return;
        }
        let kind = self.actor_kind.map_or("all", |k| k.as_str());
        let text = if self.editing {
            format!("/{}▏", self.text)
        } else if self.text.is_empty() {
            "none".into()
        } else {
            format!("/{}", self.text)
        };
        let state = if self.loading {
            "loading…".to_string()
        } else if let Some(e) = &self.error {
            format!("✕ {}", clean(e))
        } else {
            format!(
                "{} shown{}",
                self.entries.len(),
                if self.next.is_some() {
                    ", more below"
                } else {
                    ", the end"
                }
            )
        };
        let filters = Line::from(vec![
            Span::styled(" actors ", t.style(Slot::Dim)),
            Span::styled(kind.to_string(), t.style(Slot::Accent)),
            Span::styled(" · exchanges ", t.style(Slot::Dim)),
            Span::styled(
                if self.include_exchanges {
                    "shown"
                } else {
                    "hidden"
                },
                t.style(Slot::Accent),
            ),
            Span::styled(" · text ", t.style(Slot::Dim)),
            Span::styled(
                text,
                t.style(if self.editing {
                    Slot::Input
                } else {
                    Slot::Accent
                }),
            ),
            Span::styled(format!(" · newest first · {state}"), t.style(Slot::Dim)),
        ]);
        frame.render_widget(Paragraph::new(filters), Rect { height: 1, ..inner });
        let table_area = Rect {
            y: inner.y + 1,
            height: inner.height - 1,
            ..inner
        };
        let page = table_area.height.saturating_sub(1) as usize;
        let mut cursor = self.cursor;
        cursor.keep_visible(self.entries.len(), page);
        let rows: Vec<Row> = self.entries[cursor.visible(self.entries.len(), page)]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let selected = cursor.offset + i == cursor.selected;
                let time = chrono::DateTime::parse_from_rfc3339(&e.time)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|_| clean(&e.time).into_owned());
                let mut what = clean(&e.what).into_owned();
                if what.is_empty() {
                    what = e
                        .target
                        .as_deref()
                        .map(|t| clean(t).into_owned())
                        .unwrap_or_default();
                }
                let row = Row::new(vec![
                    Cell::from(if selected { "▶" } else { " " }),
                    Cell::from(time),
                    Cell::from(e.actor_kind.as_str()),
                    Cell::from(clean(&e.actor).into_owned()),
                    Cell::from(if e.chain.is_empty() {
                        "—".to_string()
                    } else {
                        // People by the part before `@`, so that the whole chain fits.
                        e.chain
                            .iter()
                            .map(|c| clean(c.split('@').next().unwrap_or(c)).into_owned())
                            .collect::<Vec<_>>()
                            .join(" → ")
                    }),
                    Cell::from(clean(&e.action).into_owned()),
                    Cell::from(what),
                    Cell::from(clean(&e.outcome).into_owned()),
                    Cell::from(
                        e.reason
                            .as_deref()
                            .map(|r| clean(r).into_owned())
                            .unwrap_or_default(),
                    ),
                ]);
                if selected {
                    row.style(t.style(Slot::Selected))
                } else {
                    row
                }
            })
            .collect();
        let header = Row::new(vec![
            "",
            "TIME",
            "KIND",
            "WHO",
            "ON BEHALF OF",
            "ACTION",
            "WHAT",
            "OUTCOME",
            "REASON",
        ])
        .style(t.style(Slot::TableHeader));
        let table = Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Length(19),
                Constraint::Length(6),
                Constraint::Fill(2),
                Constraint::Fill(4),
                Constraint::Length(16),
                Constraint::Fill(3),
                Constraint::Length(8),
                Constraint::Fill(2),
            ],
        )
        .header(header)
        .column_spacing(1);
        frame.render_widget(table, table_area);
        if self.entries.is_empty() && !self.loading {
            let why = match &self.error {
                Some(e) => format!(" ✕ {}", clean(e)),
                None => " nothing matches these filters".into(),
            };
            frame.render_widget(
                Paragraph::new(Span::styled(why, t.style(Slot::Hint))),
                Rect {
                    y: table_area.y + 1,
                    height: 1,
                    ..table_area
                },
            );
        }
    }

    fn hints(&self) -> Vec<Hint> {
        if self.editing {
            vec![
                Hint::Typing("filter the timeline"),
                Hint::Key(Command::Accept, "apply"),
                Hint::Key(Command::Cancel, "clear"),
            ]
        } else {
            vec![
                Hint::Key(Command::Filter, "text"),
                Hint::Key(Command::ActorKind, "actor kind"),
                Hint::Key(Command::ToggleExchanges, "exchanges"),
                Hint::Key(Command::Back, "close"),
            ]
        }
    }
}
