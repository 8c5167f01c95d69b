//! What waits for me: the access requests and per-use approvals the registry says I may decide
//! (`GET /v1/approvals`), polled on the sync tick so that the header counts them on every screen,
//! and the approvals screen's own state.

use std::collections::{BTreeMap, BTreeSet};

use super::list::ListCursor;
use crate::model::Grant;
use crate::model::approvals::{AccessRequest, RequestKind};
use crate::model::catalogue::Tier;

/// The approvals queue as the registry last answered it, shared by every screen.
#[derive(Debug, Default)]
pub struct Waiting {
    /// Pending requests I may decide, newest first. None until the first answer.
    pub requests: Option<Vec<AccessRequest>>,
    pub in_flight: bool,
    /// Ids already seen, so that only new arrivals are announced.
    pub seen: BTreeSet<String>,
    /// The registry does not offer the queue (an older registry): stop asking.
    pub unsupported: bool,
}

impl Waiting {
    pub fn count(&self) -> usize {
        self.requests.as_ref().map_or(0, Vec::len)
    }

    /// Per-use approvals among them (a human in the loop: an agent is waiting right now).
    pub fn per_use(&self) -> usize {
        self.requests.as_ref().map_or(0, |r| {
            r.iter().filter(|q| q.kind == RequestKind::Use).count()
        })
    }

    /// Takes a new answer; returns the requests that were not there before (none on the first
    /// answer: what was waiting at start is counted in the header, not announced).
    pub fn replace(&mut self, mut requests: Vec<AccessRequest>) -> Vec<AccessRequest> {
        requests.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let first = self.requests.is_none();
        let new: Vec<AccessRequest> = requests
            .iter()
            .filter(|r| !self.seen.contains(&r.id))
            .cloned()
            .collect();
        self.seen.extend(requests.iter().map(|r| r.id.clone()));
        self.requests = Some(requests);
        if first { Vec::new() } else { new }
    }

    pub fn get(&self, index: usize) -> Option<&AccessRequest> {
        self.requests.as_ref()?.get(index)
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.requests.as_ref()?.iter().position(|r| r.id == id)
    }
}

/// The approvals screen (`A`).
#[derive(Debug, Default)]
pub struct ApprovalsState {
    /// Over [`Waiting::requests`].
    pub list: ListCursor,
    /// The id under the cursor, kept across reloads.
    pub selected_id: Option<String>,
    /// The grants of the agents in the queue (their use shows beside each request), by agent id;
    /// an error when the registry would not show the agent.
    pub grants: BTreeMap<String, Result<Vec<Grant>, String>>,
    /// Agents asked for and not answered yet.
    pub grants_in_flight: BTreeSet<String>,
    /// The last error of the queue itself.
    pub error: Option<String>,
}

/// A tier as a word with a marker (never colour alone): `▲ critical`.
pub fn tier_label(tier: Tier) -> String {
    format!("{} {}", tier_marker(tier), tier.as_str())
}

pub fn tier_marker(tier: Tier) -> &'static str {
    match tier {
        Tier::Low => "○",
        Tier::Medium => "◐",
        Tier::High => "●",
        Tier::Critical => "▲",
        Tier::Unclassified => "?",
    }
}

/// The longest grant a tier allows by default, as a duration (`365d`); a resource's own
/// `max_duration` wins when it has one. Unclassified scopes are treated as high.
pub fn default_duration(tier: Tier, resource_max: Option<&str>) -> String {
    if let Some(max) = resource_max {
        return max.to_string();
    }
    match tier {
        Tier::Low | Tier::Medium => "365d",
        Tier::High | Tier::Unclassified => "90d",
        Tier::Critical => "30d",
    }
    .to_string()
}

/// What the registry's refusal codes mean, in the approver's words.
pub fn refusal_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "self_approval" => {
            "You may not decide this one: it is your own request, or the agent is yours \
             (separation of duties). Another approver must decide it."
        }
        "already_decided" => "It was already decided (by you or another approver).",
        "request_expired" => "It expired before it was decided; the requester may ask again.",
        "duration_too_long" => "The duration is longer than the scope's tier allows.",
        "unknown_scope" => "The scope is not in the catalogue.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::approvals::RequestStatus;
    use chrono::{Duration, Utc};

    fn req(id: &str, minutes_ago: i64) -> AccessRequest {
        let at = Utc::now() - Duration::minutes(minutes_ago);
        AccessRequest {
            id: id.into(),
            kind: RequestKind::Grant,
            status: RequestStatus::Pending,
            agent_id: "a".into(),
            agent_name: "bot".into(),
            agent_owner: None,
            scope: "crm:read".into(),
            scopes: vec!["crm:read".into()],
            resource_id: "crm".into(),
            tier: Tier::Medium,
            requester: "x@example.com".into(),
            subject: None,
            audience: vec![],
            chain: vec![],
            justification: None,
            duration: None,
            approvals_required: 1,
            approvals: vec![],
            created_at: at,
            expires_at: at + Duration::days(14),
            decided_at: None,
            decided_by: None,
            reason: None,
            grant_expires_at: None,
            used_at: None,
            agent_grants: None,
        }
    }

    #[test]
    fn newest_first_and_only_new_arrivals_are_announced() {
        let mut w = Waiting::default();
        assert!(w.replace(vec![req("old", 30), req("new", 1)]).is_empty());
        let ids: Vec<&str> = w
            .requests
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["new", "old"]);
        let fresh = w.replace(vec![req("old", 30), req("newer", 0)]);
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].id, "newer");
        assert!(w.replace(vec![req("newer", 0)]).is_empty());
    }

    #[test]
    fn tiers_read_as_words_with_markers_and_default_durations() {
        assert_eq!(tier_label(Tier::Critical), "▲ critical");
        assert_eq!(default_duration(Tier::Low, None), "365d");
        assert_eq!(default_duration(Tier::High, None), "90d");
        assert_eq!(default_duration(Tier::Critical, None), "30d");
        assert_eq!(default_duration(Tier::Critical, Some("14d")), "14d");
    }
}
