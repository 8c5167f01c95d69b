//! The owner picker's ranking, decided here and read by the console and the CLI: people of the
//! agent's team first, then the previous owner's manager, then the people who use the agent
//! (subjects of its exchanges and its delegations), then everyone else; each group by name. The
//! current owner is shown apart and not offered; people who left are never offered (the store
//! hands over active people only, and the ranking checks nothing it was not given).

use std::collections::HashSet;

use crate::model::ownership::{CandidateReason, OwnerCandidate, OwnerCandidates};
use crate::registry::store::ownership::CandidateFacts;

/// The most candidates one answer carries.
pub const MAX_CANDIDATES: usize = 500;

/// Ranks `facts` and keeps the best `limit` (1..=MAX_CANDIDATES).
pub fn rank(facts: CandidateFacts, limit: usize) -> OwnerCandidates {
    let lower = |v: &[String]| -> HashSet<String> { v.iter().map(|e| e.to_lowercase()).collect() };
    let managers = lower(&facts.previous_owner_managers);
    let users = lower(&facts.users);
    let current = facts.current_owner.as_deref().map(str::to_lowercase);
    let mut ranked: Vec<OwnerCandidate> = facts
        .people
        .into_iter()
        .filter(|(email, _, _)| current.as_deref() != Some(email.to_lowercase().as_str()))
        .map(|(email, display_name, team)| {
            let key = email.to_lowercase();
            let reason = if team.as_deref() == Some(facts.team.as_str()) && !facts.team.is_empty() {
                CandidateReason::Team
            } else if managers.contains(&key) {
                CandidateReason::PreviousOwnerManager
            } else if users.contains(&key) {
                CandidateReason::User
            } else {
                CandidateReason::Other
            };
            OwnerCandidate {
                email,
                display_name,
                team,
                reason,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        (a.reason, a.display_name.to_lowercase(), &a.email).cmp(&(
            b.reason,
            b.display_name.to_lowercase(),
            &b.email,
        ))
    });
    let limit = limit.clamp(1, MAX_CANDIDATES);
    let truncated = ranked.len() > limit;
    ranked.truncate(limit);
    OwnerCandidates {
        agent_id: facts.agent_id,
        current_owner: facts.current_owner,
        current_owner_left_at: facts.current_owner_left_at,
        candidates: ranked,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(email: &str, name: &str, team: Option<&str>) -> (String, String, Option<String>) {
        (email.into(), name.into(), team.map(str::to_string))
    }

    fn facts() -> CandidateFacts {
        CandidateFacts {
            agent_id: "ag_1".into(),
            team: "payments".into(),
            current_owner: Some("owner@example.com".into()),
            current_owner_left_at: None,
            previous_owner_managers: vec!["Boss@example.com".into()],
            users: vec!["user@example.com".into(), "mate@example.com".into()],
            people: vec![
                p("zed@example.com", "Zed", Some("crm")),
                p("user@example.com", "Ursula", Some("crm")),
                p("boss@example.com", "Boss", Some("finance")),
                p("mate@example.com", "Mate", Some("payments")),
                p("owner@example.com", "Owner", Some("payments")),
                p("amy@example.com", "Amy", Some("payments")),
                p("abe@example.com", "Abe", None),
            ],
        }
    }

    #[test]
    fn team_then_manager_then_users_then_the_rest_and_never_the_current_owner() {
        let r = rank(facts(), 50);
        let order: Vec<(&str, CandidateReason)> = r
            .candidates
            .iter()
            .map(|c| (c.email.as_str(), c.reason))
            .collect();
        assert_eq!(
            order,
            vec![
                ("amy@example.com", CandidateReason::Team),
                // In the team and a user: the better reason wins.
                ("mate@example.com", CandidateReason::Team),
                ("boss@example.com", CandidateReason::PreviousOwnerManager),
                ("user@example.com", CandidateReason::User),
                ("abe@example.com", CandidateReason::Other),
                ("zed@example.com", CandidateReason::Other),
            ]
        );
        assert_eq!(r.current_owner.as_deref(), Some("owner@example.com"));
        assert!(!r.truncated);
    }

    #[test]
    fn the_limit_keeps_the_best_and_says_so() {
        let r = rank(facts(), 2);
        assert_eq!(r.candidates.len(), 2);
        assert!(r.truncated);
        assert!(
            r.candidates
                .iter()
                .all(|c| c.reason == CandidateReason::Team)
        );
    }

    #[test]
    fn an_agent_without_a_team_ranks_nobody_as_team() {
        let mut f = facts();
        f.team = String::new();
        f.people.push(p("nil@example.com", "Nil", Some("")));
        let r = rank(f, 50);
        assert!(
            r.candidates
                .iter()
                .all(|c| c.reason != CandidateReason::Team)
        );
    }
}
