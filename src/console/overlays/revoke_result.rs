//! What a one-key revocation did (status, credentials, tokens killed, time), and the optional
//! incident reference. Enter sends the reference and closes at once: its outcome comes back as
//! a toast, so the next key already belongs to the screen below.

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
use crate::model::AgentKind;
use crate::model::api::RevokeOutcome;
use crate::model::brake::StoppedAgent;
use chrono::{DateTime, Utc};

#[derive(Debug)]
pub struct RevokeResult {
    /// The agent's name, or "N agents" for a bulk revocation.
    pub name: String,
    /// The (first) agent's outcome.
    pub outcome: RevokeOutcome,
    /// A bulk revocation's other outcomes.
    pub more: Vec<RevokeOutcome>,
    /// A bulk revocation's failures: (agent id, error), nothing changed for these.
    pub failed: Vec<(String, String)>,
    /// From a bulk revocation of marked agents.
    pub bulk: bool,
    pub round_trip_ms: f64,
    /// The incident reference being typed.
    pub note: String,
    /// What became of the action's security events (read live from `/v1/signals/{seq}`).
    pub fan_out: Option<FanOutLine>,
}

/// The revoke result's Shared Signals line.
#[derive(Debug)]
pub enum FanOutLine {
    Known(crate::model::signals::FanOut),
    /// Not readable (no receivers' events, or not the caller's to see): the reason.
    Unknown(String),
}

impl FanOutLine {
    pub fn text(&self) -> String {
        match self {
            FanOutLine::Known(f) if !f.fanned_out => "queued for receivers…".into(),
            FanOutLine::Known(f) => format!(
                "{} receiver{} notified · {} pending · {} failed",
                f.notified,
                if f.notified == 1 { "" } else { "s" },
                f.pending,
                f.failed
            ),
            FanOutLine::Unknown(e) => format!("— ({})", clean(e)),
        }
    }
}

/// One line of the result: a label and its value. Other parts of the console add theirs with
/// [`RevokeResult::facts`] (a list, so that a new fact is one push).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub label: String,
    pub value: String,
    pub slot: Slot,
}

fn fact(label: &str, value: String) -> Fact {
    Fact {
        label: label.into(),
        value,
        slot: Slot::Base,
    }
}

/// At most this many agents of the stopped tree are named; the rest are counted.
const NAMED_AGENTS: usize = 8;

impl RevokeResult {
    pub fn single(name: String, outcome: RevokeOutcome, round_trip_ms: f64) -> RevokeResult {
        RevokeResult {
            name,
            outcome,
            more: Vec::new(),
            failed: Vec::new(),
            bulk: false,
            round_trip_ms,
            note: String::new(),
            fan_out: None,
        }
    }

    fn outcomes(&self) -> impl Iterator<Item = &RevokeOutcome> {
        std::iter::once(&self.outcome).chain(&self.more)
    }

    fn is_bulk(&self) -> bool {
        self.bulk
    }

    /// The audit events an incident reference is added to: each revocation's own.
    pub fn audit_seqs(&self) -> Vec<i64> {
        let mut seqs: Vec<i64> = self
            .outcomes()
            .map(|o| o.audit_seq)
            .filter(|s| *s > 0)
            .collect();
        seqs.dedup();
        seqs
    }

    /// What the revocation did, line by line: the agents stopped (the agent, its instances
    /// and sub-agents) with the tokens killed for each, the totals, the wall-clock time, and
    /// what stays valid at resource servers that validate JWTs offline.
    pub fn facts(&self, now: DateTime<Utc>) -> Vec<Fact> {
        let mut out = Vec::new();
        let o = &self.outcome;
        if self.is_bulk() {
            let changed = self.outcomes().filter(|o| o.changed).count();
            let unchanged = self.outcomes().count() - changed;
            out.push(fact(
                "agents",
                format!(
                    "{changed} revoked, {unchanged} already suspended or decommissioned, {} failed",
                    self.failed.len()
                ),
            ));
        } else {
            out.push(fact(
                "status",
                format!("{} → {}", o.previous_status.as_str(), o.status.as_str()),
            ));
        }
        let stopped: Vec<&StoppedAgent> = self.outcomes().flat_map(|o| o.stopped.iter()).collect();
        let instances = stopped
            .iter()
            .filter(|s| s.kind == AgentKind::Instance)
            .count();
        let subs = stopped
            .iter()
            .filter(|s| s.kind == AgentKind::SubAgent)
            .count();
        let roots = self.outcomes().count();
        out.push(fact(
            "stopped",
            format!(
                "{} {}, {instances} {}, {subs} {}",
                roots,
                if roots == 1 { "agent" } else { "agents" },
                if instances == 1 {
                    "instance"
                } else {
                    "instances"
                },
                if subs == 1 { "sub-agent" } else { "sub-agents" },
            ),
        ));
        for s in stopped.iter().take(NAMED_AGENTS) {
            out.push(Fact {
                label: String::new(),
                value: format!(
                    "▸ {} ({}) {} · {} {} killed · {} credentials disabled",
                    clean(&s.name),
                    s.kind.as_str(),
                    s.status.as_str(),
                    s.tokens_killed,
                    if s.tokens_killed == 1 {
                        "token"
                    } else {
                        "tokens"
                    },
                    s.credentials_disabled
                ),
                slot: Slot::Dim,
            });
        }
        if stopped.len() > NAMED_AGENTS {
            out.push(Fact {
                label: String::new(),
                value: format!("… and {} more", stopped.len() - NAMED_AGENTS),
                slot: Slot::Dim,
            });
        }
        let credentials: u64 = self
            .outcomes()
            .map(|o| {
                if o.stopped.is_empty() {
                    o.credentials_disabled as u64
                } else {
                    o.stopped
                        .iter()
                        .map(|s| s.credentials_disabled as u64)
                        .sum()
                }
            })
            .sum();
        let tokens: u64 = self.outcomes().map(|o| o.tokens_revoked).sum();
        out.push(fact("credentials", format!("{credentials} disabled")));
        out.push(fact("tokens killed", tokens.to_string()));
        out.push(fact(
            "wall-clock",
            if self.is_bulk() {
                format!("{:.0} ms for the whole order", self.round_trip_ms)
            } else {
                format!(
                    "{:.1} ms in the registry, {:.1} ms round trip",
                    o.elapsed_ms, self.round_trip_ms
                )
            },
        ));
        let latest = self.outcomes().filter_map(|o| o.latest_token_expiry).max();
        out.push(match latest {
            Some(t) if t > now => Fact {
                label: "offline JWTs".into(),
                value: format!(
                    "resource servers that validate JWTs offline accept the killed tokens \
                     until they expire: the last at {} UTC (in {})",
                    t.format("%H:%M:%S"),
                    crate::console::words::span((t - now).num_seconds())
                ),
                slot: Slot::Flag,
            },
            _ => fact(
                "offline JWTs",
                "no killed token is still within its lifetime".into(),
            ),
        });
        if !self.is_bulk() {
            out.push(fact(
                "signals",
                self.fan_out
                    .as_ref()
                    .map(FanOutLine::text)
                    .unwrap_or_else(|| "…".into()),
            ));
        }
        for (id, e) in &self.failed {
            out.push(Fact {
                label: "failed".into(),
                value: format!("✕ {}: {}", clean(id), clean(e)),
                slot: Slot::Error,
            });
        }
        let seqs = self.audit_seqs();
        out.push(fact(
            if seqs.len() == 1 {
                "audit event"
            } else {
                "audit events"
            },
            seqs.iter()
                .map(|s| format!("#{s}"))
                .collect::<Vec<_>>()
                .join(" "),
        ));
        out
    }
}

/// The room a fact's label takes: three spaces and fifteen columns.
const LABEL_WIDTH: usize = 18;

/// Splits `text` at spaces into pieces no wider than `width` columns (a word wider than that
/// is cut), so that each piece can start under the value column.
fn hanging(text: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let width = width.max(10);
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let used = line.width();
        let need = if line.is_empty() { 0 } else { 1 } + word.width();
        if used + need <= width {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        let mut rest = word;
        while rest.width() > width {
            let mut cut = 0;
            let mut w = 0;
            for (i, c) in rest.char_indices() {
                let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                if w + cw > width {
                    break;
                }
                w += cw;
                cut = i + c.len_utf8();
            }
            out.push(rest[..cut].to_string());
            rest = &rest[cut..];
        }
        line.push_str(rest);
    }
    out.push(line);
    out
}

impl Room for Box<RevokeResult> {
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
                let text = self.note.trim().to_string();
                if !text.is_empty() {
                    app.message = Some((Tone::Info, "adding the incident reference…".into()));
                    for seq in self.audit_seqs() {
                        fx.push(Effect::AddNote {
                            seq,
                            text: text.clone(),
                        });
                    }
                }
                None
            }
            _ => {
                edit(&mut self.note, &key);
                Some(Overlay::RevokeResult(self))
            }
        }
    }

    fn draw(&self, frame: &mut Frame, app: &App, area: Rect) {
        let t = &app.theme;
        let o = &self.outcome;
        let any_changed = self.outcomes().any(|o| o.changed);
        let mut lines = vec![
            Line::from(vec![
                Span::styled(
                    if any_changed {
                        " ✓ REVOKED "
                    } else {
                        " · NO CHANGE "
                    },
                    if any_changed {
                        t.style(Slot::Ok)
                    } else {
                        t.style(Slot::Hint)
                    },
                ),
                Span::styled(clean(&self.name).into_owned(), t.style(Slot::Accent)),
                Span::styled(
                    if self.is_bulk() {
                        String::new()
                    } else {
                        format!("  {}", clean(&o.agent_id))
                    },
                    t.style(Slot::Dim),
                ),
            ]),
            Line::from(""),
        ];
        // Long values (the stopped agents, the offline-JWT warning) continue under the value,
        // not under the label: the label column stays readable.
        // The popup's inner width, as `fitted` makes it.
        let width = usize::from(96.min(area.width.saturating_sub(2)).saturating_sub(2));
        for f in self.facts(Utc::now()) {
            for (i, part) in hanging(&f.value, width.saturating_sub(LABEL_WIDTH))
                .into_iter()
                .enumerate()
            {
                let label = if i == 0 { f.label.as_str() } else { "" };
                lines.push(Line::from(vec![
                    Span::styled(format!("   {label:<15}"), t.style(Slot::Dim)),
                    Span::styled(part, t.style(f.slot)),
                ]));
            }
        }
        lines.push(Line::from(""));
        lines.push(Line::from(
            " Incident reference (optional; Enter adds it to the audit record, esc skips):",
        ));
        lines.push(Line::from(vec![
            Span::styled(" > ", t.style(Slot::Accent)),
            Span::styled(format!("{}▏", self.note), t.style(Slot::Input)),
        ]));
        let rect = fitted(area, 96, &lines);
        popup(frame, app, "Revocation", rect, lines);
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            Hint::Typing("incident reference"),
            Hint::Key(Command::Accept, "add to audit"),
            Hint::Key(Command::Cancel, "skip"),
        ]
    }
}

#[cfg(test)]
mod hanging_tests {
    use super::hanging;

    #[test]
    fn long_values_break_at_spaces_within_the_width() {
        let text = "inv-bot (agent), inv-bot.extractor (sub-agent), inv-bot#2 (instance)";
        let parts = hanging(text, 30);
        assert!(parts.len() > 1, "{parts:?}");
        assert!(parts.iter().all(|p| p.chars().count() <= 30), "{parts:?}");
        assert_eq!(parts.join(" "), text);
    }

    #[test]
    fn a_word_wider_than_the_room_is_cut_not_lost() {
        let parts = hanging(&"x".repeat(25), 10);
        assert_eq!(parts, vec!["x".repeat(10), "x".repeat(10), "x".repeat(5)]);
        assert_eq!(hanging("", 10), vec![String::new()]);
        assert_eq!(hanging("short", 10), vec!["short".to_string()]);
    }
}
