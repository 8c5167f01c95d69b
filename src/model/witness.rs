//! Witnessed audit heads: what someone outside the database saw the chain's head to be, and the
//! check that a chain verified later still extends every head witnessed before.
//!
//! A hash chain proves that no event inside it was changed, but not that it was not cut short
//! (the last events deleted), wiped, or rewritten and re-linked from some event on. A head
//! witnessed outside the database (by a console, by `steward audit verify`, or signed by the
//! registry into a file of its own) pins the chain: a later chain must hold that very event
//! with that very hash. Pure logic; the files live in the client and the registry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The action of the audit event a restore appends (see `steward server restore`).
pub const RESTORE_ACTION: &str = "audit.restore";

/// The head of the chain as someone saw it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct AuditHead {
    /// The last event's sequence number (0 for an empty log).
    pub seq: i64,
    /// The last event's hash (the genesis hash for an empty log).
    pub hash: String,
}

/// A head with when and by what it was witnessed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WitnessedHead {
    pub seq: i64,
    pub hash: String,
    pub seen_at: DateTime<Utc>,
    /// Who witnessed it: `verify`, `console`, `registry` (a signed head file).
    pub by: String,
}

/// A restore found in the chain: events after `restored_to` that were witnessed before are
/// lost to it, not to tampering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreMark {
    /// The restore event's own sequence number.
    pub event_seq: i64,
    /// The sequence the copy ended at.
    pub restored_to: i64,
    /// When the restore happened: only heads witnessed before it can be lost to it.
    pub at: DateTime<Utc>,
}

/// What a chain does to a set of witnessed heads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WitnessReport {
    /// Heads the chain holds exactly.
    pub confirmed: usize,
    /// Problems that mean the chain was cut or rewritten (verify fails).
    pub failures: Vec<String>,
    /// Heads lost to a recorded restore (verify says so and passes).
    pub restores: Vec<String>,
}

impl WitnessReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks `heads` against a verified chain whose head is `chain_head`, where `hash_at(seq)`
/// gives the hash the chain holds at `seq` (None when there is no such event). `restores` are
/// the chain's restore events.
pub fn check_heads(
    heads: &[WitnessedHead],
    chain_head: i64,
    restores: &[RestoreMark],
    hash_at: impl Fn(i64) -> Option<String>,
) -> WitnessReport {
    let mut sorted: Vec<&WitnessedHead> = heads.iter().filter(|h| h.seq > 0).collect();
    sorted.sort_by_key(|h| h.seq);
    let mut report = WitnessReport::default();
    // The newest witnessed head still held exactly: a rewrite lies after it.
    let mut last_good = 0;
    for head in sorted {
        let when = head.seen_at.format("%Y-%m-%d %H:%M:%S UTC");
        if let Some(r) = restores
            .iter()
            .find(|r| head.seq > r.restored_to && head.seen_at <= r.at)
            .filter(|_| hash_at(head.seq).as_deref() != Some(head.hash.as_str()))
        {
            report.restores.push(format!(
                "events #{}..#{} (witnessed by {} on {when}) were lost when the registry was \
                 restored to #{} (event #{})",
                r.restored_to + 1,
                head.seq,
                head.by,
                r.restored_to,
                r.event_seq
            ));
            continue;
        }
        match hash_at(head.seq) {
            None => {
                let what = if chain_head == 0 {
                    "the audit log is empty (wiped)".to_string()
                } else {
                    format!("the chain now ends at #{chain_head}")
                };
                report.failures.push(format!(
                    "events #{}..#{} are missing: #{} was witnessed by {} on {when}, but {what}",
                    chain_head.max(last_good) + 1,
                    head.seq,
                    head.seq,
                    head.by
                ));
            }
            Some(hash) if hash != head.hash => {
                report.failures.push(format!(
                    "events #{}..#{} were rewritten: #{} no longer has the hash {} witnessed by \
                     {} on {when} (the chain was re-linked after the change)",
                    last_good + 1,
                    head.seq,
                    head.seq,
                    short(&head.hash),
                    head.by
                ));
            }
            Some(_) => {
                report.confirmed += 1;
                last_good = head.seq;
            }
        }
    }
    report
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

/// The bytes the registry signs for one head in its witness file.
pub fn signed_head_message(registry: &str, seq: i64, hash: &str, time: &str) -> Vec<u8> {
    format!("steward-audit-head:v1\n{registry}\n{seq}\n{hash}\n{time}").into_bytes()
}

/// One line of the registry's witness file (`--audit-witness FILE`), also the webhook's body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    /// The registry's issuer URL.
    pub registry: String,
    pub seq: i64,
    pub hash: String,
    /// RFC 3339.
    pub time: String,
    /// The signing key (as in the JWKS).
    pub kid: String,
    /// base64url Ed25519 signature over [`signed_head_message`].
    pub signature: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: i64, hash: &str) -> WitnessedHead {
        WitnessedHead {
            seq,
            hash: hash.into(),
            seen_at: DateTime::from_timestamp(0, 0).unwrap(),
            by: "verify".into(),
        }
    }

    fn chain(n: i64) -> impl Fn(i64) -> Option<String> {
        move |seq| (1..=n).contains(&seq).then(|| format!("h{seq}"))
    }

    #[test]
    fn a_chain_that_extends_every_head_passes() {
        let r = check_heads(&[head(3, "h3"), head(10, "h10")], 12, &[], chain(12));
        assert_eq!((r.confirmed, r.ok()), (2, true));
    }

    #[test]
    fn a_cut_tail_names_the_missing_range() {
        let r = check_heads(&[head(3, "h3"), head(50, "h50")], 25, &[], chain(25));
        assert_eq!(r.failures.len(), 1);
        assert!(
            r.failures[0].starts_with("events #26..#50 are missing"),
            "{r:?}"
        );
        let wiped = check_heads(&[head(50, "h50")], 0, &[], chain(0));
        assert!(wiped.failures[0].contains("#1..#50"), "{wiped:?}");
        assert!(wiped.failures[0].contains("empty"));
    }

    #[test]
    fn a_rewrite_names_the_range_after_the_last_good_head() {
        let rewritten = |seq: i64| {
            Some(if seq >= 7 {
                format!("x{seq}")
            } else {
                format!("h{seq}")
            })
        };
        let r = check_heads(&[head(5, "h5"), head(9, "h9")], 12, &[], rewritten);
        assert_eq!(r.confirmed, 1);
        assert!(
            r.failures[0].starts_with("events #6..#9 were rewritten"),
            "{r:?}"
        );
    }

    #[test]
    fn heads_lost_to_a_restore_are_named_as_such() {
        let restores = [RestoreMark {
            event_seq: 21,
            restored_to: 20,
            at: DateTime::from_timestamp(10, 0).unwrap(),
        }];
        let after = |seq: i64| (seq <= 21).then(|| format!("h{seq}"));
        let r = check_heads(&[head(20, "h20"), head(30, "h30")], 21, &restores, after);
        assert!(r.ok(), "{r:?}");
        assert!(r.restores[0].contains("restored to #20"), "{r:?}");
    }
}
