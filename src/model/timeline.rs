//! The activity and audit timeline: governance events and token exchanges, newest first, each
//! with who acted, on whose behalf (the delegation chain) and what came of it. Pure data and the
//! cursor arithmetic; the registry reads it, the console and the CLI show it.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ActorKind;

/// What `GET /v1/audit/timeline` returns at most per page.
pub const MAX_TIMELINE_PAGE: u32 = 500;

/// `GET /v1/audit/timeline` filters. Without `agent`, only admins, auditors and responders may read it.
#[derive(Deserialize, Serialize, Debug, Clone, Default, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Only what concerns this agent (events about it or by it, exchanges it took part in).
    pub agent: Option<String>,
    /// Also list token exchanges (default false: governance events only).
    pub include_exchanges: Option<bool>,
    /// Only entries whose actor is a `human`, an `agent` or the `system`.
    pub actor_kind: Option<String>,
    /// Only entries whose action, actor, chain, target, scope or reason contains this text
    /// (case-insensitive).
    pub q: Option<String>,
    /// The `next` cursor of the previous page: entries older than it.
    pub before: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// Where an entry comes from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimelineSource {
    /// A governance event of the audit log.
    Audit,
    /// A token exchange (an agent acting on someone's behalf).
    Exchange,
}

/// One line of the timeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct TimelineEntry {
    /// RFC 3339, UTC.
    pub time: String,
    pub source: TimelineSource,
    /// The audit event's sequence number (audit entries) or the token's id (exchanges).
    pub id: String,
    pub actor_kind: ActorKind,
    /// Who acted: a person's email, an agent's name, or a system process.
    pub actor: String,
    /// On whose behalf, oldest first: the person, then each agent that acted, the newest actor
    /// last (`ada@x → invoice-bot → invoice-bot.extractor`). Empty when nobody else was involved.
    #[serde(default)]
    pub chain: Vec<String>,
    /// What happened, e.g. `agent.revoke`, `review.decide` or `token.exchange`.
    pub action: String,
    /// What it happened to (an agent id, an item id, an audience).
    pub target: Option<String>,
    /// The decision and scope of review events, the scopes of an exchange, or empty.
    pub what: String,
    pub outcome: String,
    pub reason: Option<String>,
}

impl TimelineEntry {
    /// The chain as one line, newest actor outermost (last).
    pub fn chain_line(&self) -> String {
        self.chain.join(" → ")
    }

    /// The cursor that lists what is older than this entry.
    pub fn cursor(&self) -> String {
        encode_cursor(&self.time, self.source, &self.id)
    }

    /// Whether this entry matches a lower-cased text filter.
    pub fn matches_text(&self, needle_lower: &str) -> bool {
        if needle_lower.is_empty() {
            return true;
        }
        let hay = [
            self.action.as_str(),
            self.actor.as_str(),
            self.target.as_deref().unwrap_or(""),
            self.what.as_str(),
            self.outcome.as_str(),
            self.reason.as_deref().unwrap_or(""),
        ];
        hay.iter().any(|h| h.to_lowercase().contains(needle_lower))
            || self
                .chain
                .iter()
                .any(|c| c.to_lowercase().contains(needle_lower))
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct TimelinePage {
    /// Newest first.
    pub entries: Vec<TimelineEntry>,
    /// Pass as `before` for the next (older) page; null when there is nothing older.
    pub next: Option<String>,
}

/// The position of an entry in the newest-first order: time, then source, then id. Larger sorts
/// first. Audit ids compare as numbers (zero-padded), exchange ids as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimelineKey {
    pub time: String,
    pub source_rank: u8,
    pub id: String,
}

fn source_rank(source: TimelineSource) -> u8 {
    match source {
        TimelineSource::Exchange => 0,
        TimelineSource::Audit => 1,
    }
}

fn padded_id(source: TimelineSource, id: &str) -> String {
    match source {
        TimelineSource::Audit => format!("{:0>20}", id),
        TimelineSource::Exchange => id.to_string(),
    }
}

impl TimelineEntry {
    pub fn key(&self) -> TimelineKey {
        TimelineKey {
            time: self.time.clone(),
            source_rank: source_rank(self.source),
            id: padded_id(self.source, &self.id),
        }
    }
}

/// `TIME~SOURCE~ID`: opaque to clients, readable in logs.
pub fn encode_cursor(time: &str, source: TimelineSource, id: &str) -> String {
    let s = match source {
        TimelineSource::Audit => "a",
        TimelineSource::Exchange => "x",
    };
    format!("{time}~{s}~{id}")
}

/// The key a cursor points at; None for text that is not a cursor this registry wrote.
pub fn decode_cursor(cursor: &str) -> Option<TimelineKey> {
    let mut parts = cursor.splitn(3, '~');
    let time = parts.next()?;
    let source = match parts.next()? {
        "a" => TimelineSource::Audit,
        "x" => TimelineSource::Exchange,
        _ => return None,
    };
    let id = parts.next()?;
    chrono::DateTime::parse_from_rfc3339(time).ok()?;
    if id.is_empty() || (source == TimelineSource::Audit && id.parse::<i64>().is_err()) {
        return None;
    }
    Some(TimelineKey {
        time: time.to_string(),
        source_rank: source_rank(source),
        id: padded_id(source, id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: &str, source: TimelineSource, id: &str) -> TimelineEntry {
        TimelineEntry {
            time: time.into(),
            source,
            id: id.into(),
            actor_kind: ActorKind::Human,
            actor: "ada@example.com".into(),
            chain: vec![],
            action: "agent.revoke".into(),
            target: None,
            what: String::new(),
            outcome: "success".into(),
            reason: None,
        }
    }

    #[test]
    fn cursors_round_trip_and_order_newest_first() {
        let a = entry("2026-01-01T00:00:01.000000Z", TimelineSource::Audit, "9");
        let b = entry("2026-01-01T00:00:01.000000Z", TimelineSource::Audit, "10");
        let x = entry(
            "2026-01-01T00:00:01.000000Z",
            TimelineSource::Exchange,
            "zz",
        );
        assert_eq!(decode_cursor(&a.cursor()), Some(a.key()));
        // Same time: audit 10 > audit 9 > any exchange.
        assert!(b.key() > a.key());
        assert!(a.key() > x.key());
    }

    #[test]
    fn bad_cursors_are_refused() {
        for bad in [
            "",
            "x",
            "2026~a~1",
            "2026-01-01T00:00:00Z~q~1",
            "2026-01-01T00:00:00Z~a~one",
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn text_filter_reads_the_chain() {
        let mut e = entry("2026-01-01T00:00:00Z", TimelineSource::Exchange, "j");
        e.chain = vec!["ada@example.com".into(), "invoice-bot".into()];
        assert!(e.matches_text("invoice"));
        assert!(!e.matches_text("payroll"));
        assert_eq!(e.chain_line(), "ada@example.com → invoice-bot");
    }
}
