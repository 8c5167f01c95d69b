//! The rules of an access review that do not depend on storage: when a campaign's items may
//! change, who may be a reviewer, when a decision needs a justification, what repeating a
//! decision does, when a grant a review removed may be put back, and how a recurring
//! campaign's next instance is named and dated. Each backend's `ReviewStore` applies them
//! inside its transactions, on the facts it read there; the rules themselves read nothing.
//!
//! Who may decide, read or administer lives beside them in [`super`] (`may_decide`, …), and the
//! recommendation in [`super::diff`].

use chrono::{DateTime, Months, Utc};

use crate::model::Person;
use crate::model::audit::audit_time;
use crate::model::review::{
    Campaign, CampaignStatus, Decision, JustificationPolicy, JustificationRequired, Verdict,
};
use crate::registry::store::{StoreError, StoreResult};

fn invalid(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        code,
        message: message.into(),
    }
}

/// Items may be decided, reassigned or bulk-certified only while their campaign is open.
pub fn ensure_open(c: &Campaign) -> StoreResult<()> {
    match c.status {
        CampaignStatus::Open => Ok(()),
        CampaignStatus::Closed => Err(StoreError::Conflict(format!(
            "campaign {} ({}) closed at {}; its items can no longer be changed",
            c.id,
            c.name,
            c.closed_at.map(audit_time).unwrap_or_default()
        ))),
        CampaignStatus::Scheduled => Err(StoreError::Conflict(format!(
            "campaign {} ({}) has not started yet (it starts at {})",
            c.id,
            c.name,
            audit_time(c.starts_at)
        ))),
        CampaignStatus::Snapshotting => Err(StoreError::Conflict(format!(
            "campaign {} ({}) is still taking its items; try again shortly",
            c.id, c.name
        ))),
        CampaignStatus::Closing => Err(StoreError::Conflict(format!(
            "campaign {} ({}) is closing; its items can no longer be changed",
            c.id, c.name
        ))),
    }
}

/// The part a person is asked to play in a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewerRole {
    /// The reviewer items are reassigned to.
    Reviewer,
    /// The campaign's fallback reviewer (unowned agents, owners who left).
    Fallback,
}

/// Only a known person who has not left may review: `found` is what the store holds for
/// `email`. Returns that person.
pub fn ensure_reviewer(
    role: ReviewerRole,
    email: &str,
    found: Option<Person>,
) -> StoreResult<Person> {
    let person = found.ok_or_else(|| {
        invalid(
            "unknown_reviewer",
            match role {
                ReviewerRole::Reviewer => format!("no person with email {email}"),
                ReviewerRole::Fallback => {
                    format!("no person with email {email} to be the fallback reviewer")
                }
            },
        )
    })?;
    if !person.active {
        return Err(invalid(
            "reviewer_inactive",
            match role {
                ReviewerRole::Reviewer => format!("{} has left and cannot review", person.email),
                ReviewerRole::Fallback => format!(
                    "{} has left and cannot be the fallback reviewer",
                    person.email
                ),
            },
        ));
    }
    Ok(person)
}

/// Which decisions on an item need a justification, under the campaign's policy and the
/// item's recommendation: certifying against a recommendation to revoke (an unused scope),
/// and revoking against a recommendation to certify.
pub fn justification_required(
    policy: JustificationPolicy,
    recommended: Verdict,
) -> JustificationRequired {
    JustificationRequired {
        certify: policy.certify_unused && recommended == Verdict::Revoke,
        revoke: policy.revoke_against_recommendation && recommended == Verdict::Certify,
    }
}

/// Nothing is decided any more on a decommissioned agent (its items were closed and its grants
/// removed when it was decommissioned).
pub fn ensure_agent_decidable(
    agent_id: &str,
    scope: &str,
    decommissioned: bool,
) -> StoreResult<()> {
    if decommissioned {
        return Err(StoreError::Conflict(format!(
            "agent {agent_id} was decommissioned: its review items were closed and its grants \
             removed, so {scope} cannot be decided any more"
        )));
    }
    Ok(())
}

/// What deciding an item again with the decision it already has does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// The same decision and no new justification: nothing changes and nothing is recorded.
    Unchanged,
    /// The same decision with a different justification: the justification is recorded (never
    /// silently replaced), the grant is left as it is.
    NewJustification,
}

/// Whether deciding `decision` (with `justification`) repeats the item's `previous` decision
/// (with `recorded` justification); None: it is a new decision.
pub fn repeat_of(
    previous: Decision,
    recorded: Option<&str>,
    decision: Decision,
    justification: Option<&str>,
) -> Option<Repeat> {
    if previous != decision {
        return None;
    }
    if justification.is_none() || justification == recorded {
        Some(Repeat::Unchanged)
    } else {
        Some(Repeat::NewJustification)
    }
}

/// A new decision that the policy wants justified must carry a justification. `reason` is the
/// recommendation's reason, quoted in the refusal.
pub fn ensure_justified(
    required: JustificationRequired,
    verdict: Verdict,
    justification: Option<&str>,
    scope: &str,
    reason: &str,
) -> StoreResult<()> {
    let needs = match verdict {
        Verdict::Certify => required.certify,
        Verdict::Revoke => required.revoke,
    };
    if needs && justification.is_none() {
        let why = match verdict {
            Verdict::Certify => format!("certifying {scope} needs a justification: {reason}"),
            Verdict::Revoke => format!(
                "revoking {scope} against the recommendation to certify it ({reason}) needs a \
                 justification"
            ),
        };
        return Err(invalid("justification_required", why));
    }
    Ok(())
}

/// Certifying a grant the agent no longer holds: allowed only as a reviewer changing their
/// mind about a revoke of this same review (the review then puts the grant back). A grant
/// removed outside the review stays removed; so does every grant of a decommissioned agent.
pub fn ensure_restorable(
    agent_id: &str,
    scope: &str,
    previous: Decision,
    decommissioned: impl FnOnce() -> StoreResult<bool>,
) -> StoreResult<()> {
    if previous != Decision::Revoke {
        return Err(StoreError::Conflict(format!(
            "agent {agent_id} no longer holds {scope}: it was removed outside this review; \
             decide revoke to record that it should stay removed"
        )));
    }
    if decommissioned()? {
        return Err(StoreError::Conflict(format!(
            "agent {agent_id} is decommissioned; the revoked grant {scope} cannot be restored"
        )));
    }
    Ok(())
}

/// How a campaign is named in the reasons of the audit events it causes.
pub fn campaign_reason(c: &Campaign) -> String {
    format!("access review \"{}\" ({})", c.name, c.id)
}

/// The next instance of a quarterly campaign: its dates a quarter later (as many quarters as
/// it takes to be due after `now`), its name advanced likewise, and its instance number.
pub fn next_instance(c: &Campaign, now: DateTime<Utc>) -> StoreResult<(Campaign, u32)> {
    let quarter = Months::new(3);
    let mut next = c.clone();
    let mut instance = c.instance;
    loop {
        next.starts_at = next
            .starts_at
            .checked_add_months(quarter)
            .ok_or_else(|| StoreError::Internal("date overflow".into()))?;
        next.due_at = next
            .due_at
            .checked_add_months(quarter)
            .ok_or_else(|| StoreError::Internal("date overflow".into()))?;
        instance += 1;
        next.name = next_instance_name(&next.name, instance);
        if next.due_at > now {
            break;
        }
    }
    Ok((next, instance))
}

/// The name of the next instance: `2026-Q4 …` becomes `2027-Q1 …`; other names get `#N`.
pub fn next_instance_name(name: &str, instance: u32) -> String {
    let bytes = name.as_bytes();
    for i in 0..bytes.len().saturating_sub(6) {
        let w = &bytes[i..i + 7];
        let is_quarter = w[..4].iter().all(u8::is_ascii_digit)
            && &w[4..6] == b"-Q"
            && (b'1'..=b'4').contains(&w[6])
            && (i == 0 || !bytes[i - 1].is_ascii_digit())
            && bytes.get(i + 7).is_none_or(|b| !b.is_ascii_digit());
        // ASCII bytes at i and i + 6 make both ends character boundaries.
        if is_quarter {
            let year: u32 = name[i..i + 4].parse().unwrap_or(0);
            let quarter = (w[6] - b'0') as u32;
            let (year, quarter) = if quarter == 4 {
                (year + 1, 1)
            } else {
                (year, quarter + 1)
            };
            return format!("{}{year:04}-Q{quarter}{}", &name[..i], &name[i + 7..]);
        }
    }
    let base = match name.rsplit_once(" #") {
        Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => base,
        _ => name,
    };
    format!("{base} #{instance}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn person(email: &str, active: bool) -> Person {
        Person {
            id: "p1".into(),
            email: email.into(),
            display_name: email.into(),
            roles: vec![Role::Responder],
            active,
            manager: None,
            team: None,
            created_at: Utc::now(),
            change_seq: 0,
            left_at: None,
        }
    }

    fn code(e: StoreError) -> String {
        match e {
            StoreError::Invalid { code, .. } => code.to_string(),
            StoreError::Conflict(m) => format!("conflict: {m}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn next_instance_names() {
        assert_eq!(
            next_instance_name("2026-Q4 agent certification", 2),
            "2027-Q1 agent certification"
        );
        assert_eq!(next_instance_name("Review 2026-Q2", 2), "Review 2026-Q3");
        assert_eq!(next_instance_name("Team review", 2), "Team review #2");
        assert_eq!(next_instance_name("Team review #2", 3), "Team review #3");
        assert_eq!(next_instance_name("x12026-Q1", 2), "x12026-Q1 #2");
        assert_eq!(
            next_instance_name("Überprüfung ✓ 2026-Q2 — Zürich", 2),
            "Überprüfung ✓ 2026-Q3 — Zürich"
        );
        assert_eq!(next_instance_name("✓✓✓", 2), "✓✓✓ #2");
    }

    #[test]
    fn only_a_known_person_who_has_not_left_may_review() {
        let e = ensure_reviewer(ReviewerRole::Reviewer, "ghost@example.com", None).unwrap_err();
        assert_eq!(code(e), "unknown_reviewer");
        let e = ensure_reviewer(
            ReviewerRole::Fallback,
            "gone@example.com",
            Some(person("gone@example.com", false)),
        )
        .unwrap_err();
        assert_eq!(code(e), "reviewer_inactive");
        let p = ensure_reviewer(
            ReviewerRole::Reviewer,
            "here@example.com",
            Some(person("here@example.com", true)),
        )
        .unwrap();
        assert_eq!(p.email, "here@example.com");
    }

    #[test]
    fn going_against_the_recommendation_needs_a_justification_when_the_policy_says_so() {
        let strict = JustificationPolicy {
            certify_unused: true,
            revoke_against_recommendation: true,
        };
        let lax = JustificationPolicy {
            certify_unused: false,
            revoke_against_recommendation: false,
        };
        let against_revoke = justification_required(strict, Verdict::Revoke);
        assert_eq!(
            (against_revoke.certify, against_revoke.revoke),
            (true, false)
        );
        let against_certify = justification_required(strict, Verdict::Certify);
        assert_eq!(
            (against_certify.certify, against_certify.revoke),
            (false, true)
        );
        let none = justification_required(lax, Verdict::Revoke);
        assert_eq!((none.certify, none.revoke), (false, false));

        let e = ensure_justified(
            against_revoke,
            Verdict::Certify,
            None,
            "crm:write",
            "unused",
        )
        .unwrap_err();
        assert_eq!(code(e), "justification_required");
        let e = ensure_justified(against_certify, Verdict::Revoke, None, "crm:write", "used")
            .unwrap_err();
        assert_eq!(code(e), "justification_required");
        // Following the recommendation, or giving a reason, passes.
        ensure_justified(against_revoke, Verdict::Revoke, None, "crm:write", "unused").unwrap();
        ensure_justified(
            against_revoke,
            Verdict::Certify,
            Some("quarter-end job"),
            "crm:write",
            "unused",
        )
        .unwrap();
    }

    #[test]
    fn a_repeated_decision_changes_nothing_unless_its_justification_is_new() {
        use Decision::{Certify, None as Undecided, Revoke};
        assert_eq!(repeat_of(Undecided, None, Certify, None), None);
        assert_eq!(repeat_of(Certify, None, Revoke, None), None);
        assert_eq!(
            repeat_of(Certify, Some("why"), Certify, None),
            Some(Repeat::Unchanged)
        );
        assert_eq!(
            repeat_of(Certify, Some("why"), Certify, Some("why")),
            Some(Repeat::Unchanged)
        );
        assert_eq!(
            repeat_of(Certify, Some("why"), Certify, Some("because")),
            Some(Repeat::NewJustification)
        );
    }

    #[test]
    fn a_grant_comes_back_only_when_this_review_removed_it_and_the_agent_lives() {
        let e = ensure_restorable("agt_1", "crm:write", Decision::None, || Ok(false)).unwrap_err();
        assert!(code(e).contains("removed outside this review"));
        let e =
            ensure_restorable("agt_1", "crm:write", Decision::Certify, || Ok(false)).unwrap_err();
        assert!(code(e).contains("removed outside this review"));
        let e = ensure_restorable("agt_1", "crm:write", Decision::Revoke, || Ok(true)).unwrap_err();
        assert!(code(e).contains("decommissioned"));
        ensure_restorable("agt_1", "crm:write", Decision::Revoke, || Ok(false)).unwrap();
        let e = ensure_agent_decidable("agt_1", "crm:write", true).unwrap_err();
        assert!(code(e).contains("decommissioned"));
        ensure_agent_decidable("agt_1", "crm:write", false).unwrap();
    }
}
