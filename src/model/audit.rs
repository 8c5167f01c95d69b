//! The audit log's events and the hash chain that makes tampering evident.
//!
//! Each event's hash covers its own fields and the previous event's hash, so changing, removing or
//! reordering any stored event breaks every link after it. Verification is a pure function so that
//! a client can check the chain it fetched without trusting the server that served it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The hash that the first event links to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Human,
    Agent,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Human => "human",
            ActorKind::Agent => "agent",
            ActorKind::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<ActorKind> {
        [ActorKind::Human, ActorKind::Agent, ActorKind::System]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// Who did something, and on whose behalf (the delegation chain, outermost actor first).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    /// A person's email, an agent's id, or the name of a system process.
    pub id: String,
    /// The person on whose behalf an agent acted, if any.
    pub on_behalf_of: Option<String>,
    /// The full delegation chain for nested delegation, newest actor first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

impl Actor {
    pub fn human(email: &str) -> Actor {
        Actor {
            kind: ActorKind::Human,
            id: email.to_string(),
            on_behalf_of: None,
            chain: Vec::new(),
        }
    }

    pub fn system(name: &str) -> Actor {
        Actor {
            kind: ActorKind::System,
            id: name.to_string(),
            on_behalf_of: None,
            chain: Vec::new(),
        }
    }
}

/// One append-only audit record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    /// RFC 3339 with microseconds, exactly as hashed.
    pub time: String,
    pub actor: Actor,
    /// What happened, e.g. `agent.revoke`.
    pub action: String,
    /// What it happened to, e.g. an agent id.
    pub target: Option<String>,
    /// `success`, or `denied`/`failed` for attempts that were refused.
    pub outcome: String,
    pub reason: Option<String>,
    /// Structured facts about the change (what was disabled, counts, before/after).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Formats a time the way audit events store and hash it.
pub fn audit_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The fields an event's hash covers, in a fixed order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    time: &'a str,
    actor: &'a Actor,
    action: &'a str,
    target: Option<&'a str>,
    outcome: &'a str,
    reason: Option<&'a str>,
    details: &'a serde_json::Value,
    prev_hash: &'a str,
}

/// The hash of an event's content linked to the previous hash (hex SHA-256).
#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    seq: i64,
    time: &str,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    outcome: &str,
    reason: Option<&str>,
    details: &serde_json::Value,
    prev_hash: &str,
) -> String {
    let hashed = Hashed {
        seq,
        time,
        actor,
        action,
        target,
        outcome,
        reason,
        details,
        prev_hash,
    };
    // serde_json writes struct fields in declaration order and map keys sorted: deterministic.
    let bytes = serde_json::to_vec(&hashed).expect("audit fields always serialise");
    hex::encode(Sha256::digest(&bytes))
}

impl AuditEvent {
    /// The hash this event should carry, recomputed from its content.
    pub fn expected_hash(&self) -> String {
        event_hash(
            self.seq,
            &self.time,
            &self.actor,
            &self.action,
            self.target.as_deref(),
            &self.outcome,
            self.reason.as_deref(),
            &self.details,
            &self.prev_hash,
        )
    }
}

/// The first place where a chain does not hold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct BrokenLink {
    pub seq: i64,
    pub problem: String,
}

/// Incremental verification of a chain that arrives in pages.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    pub last_seq: i64,
    pub last_hash: String,
    pub checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            last_seq: 0,
            last_hash: GENESIS_HASH.to_string(),
            checked: 0,
        }
    }
}

impl ChainVerifier {
    /// Checks the next event; the first failure names the broken event.
    pub fn check(&mut self, event: &AuditEvent) -> Result<(), BrokenLink> {
        let broken = |problem: String| BrokenLink {
            seq: event.seq,
            problem,
        };
        if event.seq != self.last_seq + 1 {
            return Err(broken(format!(
                "sequence jumps from {} to {} (events missing or reordered)",
                self.last_seq, event.seq
            )));
        }
        if event.prev_hash != self.last_hash {
            return Err(broken(format!(
                "prev_hash {} does not match the hash of event {} ({})",
                short(&event.prev_hash),
                self.last_seq,
                short(&self.last_hash)
            )));
        }
        let expected = event.expected_hash();
        if event.hash != expected {
            return Err(broken(format!(
                "content does not match its hash (stored {}, computed {}): the event was altered",
                short(&event.hash),
                short(&expected)
            )));
        }
        self.last_seq = event.seq;
        self.last_hash = event.hash.clone();
        self.checked += 1;
        Ok(())
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let actor = Actor::human("a@example.com");
                let details = serde_json::json!({"b": 1, "a": [seq]});
                let time = format!("2026-11-22T10:00:{seq:02}.000000Z");
                let hash = event_hash(
                    seq,
                    &time,
                    &actor,
                    "agent.revoke",
                    Some("ag_1"),
                    "success",
                    None,
                    &details,
                    &prev,
                );
                let ev = AuditEvent {
                    seq,
                    time,
                    actor,
                    action: "agent.revoke".into(),
                    target: Some("ag_1".into()),
                    outcome: "success".into(),
                    reason: None,
                    details,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                ev
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let mut v = ChainVerifier::default();
        for ev in chain(5) {
            v.check(&ev).unwrap();
        }
        assert_eq!(v.checked, 5);
    }

    #[test]
    fn edited_event_is_named() {
        let mut events = chain(5);
        events[2].reason = Some("edited".into());
        let mut v = ChainVerifier::default();
        let err = events.iter().try_for_each(|e| v.check(e)).unwrap_err();
        assert_eq!(err.seq, 3);
        assert!(err.problem.contains("altered"), "{}", err.problem);
    }

    #[test]
    fn removed_event_is_named() {
        let mut events = chain(5);
        events.remove(1);
        let mut v = ChainVerifier::default();
        let err = events.iter().try_for_each(|e| v.check(e)).unwrap_err();
        assert_eq!(err.seq, 3);
    }
}
