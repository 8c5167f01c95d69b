//! Owner succession: who inherits the agents of a person who leaves.
//!
//! The rule: each agent of a leaver goes to the leaver's manager when they have one who is still
//! active (audited, with a reminder to the manager, see `owner_handovers`); otherwise the agent
//! stays with the leaver's name on it and becomes **orphaned**: unowned work that the admin's
//! `unowned` views list with "owner left", until someone is given it. Decommissioned agents keep
//! their last owner (there is nothing left to own). The store applies the rule inside the
//! transaction that marks the person as left, so the leave and the succession are one.

use crate::model::Person;

/// Who takes over a leaver's agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Successor {
    /// The leaver's manager (their email).
    Manager(String),
    /// Nobody: the agents become orphaned (unowned work).
    Nobody,
}

/// The successor for the agents of `leaver`, whose manager (if any) is `manager`.
pub fn successor(leaver: &Person, manager: Option<&Person>) -> Successor {
    match manager {
        Some(m) if m.active && !m.email.eq_ignore_ascii_case(&leaver.email) => {
            Successor::Manager(m.email.clone())
        }
        _ => Successor::Nobody,
    }
}

/// The audit action of one agent handed to a leaver's manager.
pub const HANDOVER_ACTION: &str = "agent.owner.succession";
/// The audit action of one agent left orphaned by its owner's leaving.
pub const ORPHANED_ACTION: &str = "agent.owner.orphaned";

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str, active: bool) -> Person {
        serde_json::from_value(serde_json::json!({
            "id": email, "email": email, "display_name": email, "roles": [], "active": active,
            "manager": null, "team": null, "created_at": "2026-01-01T00:00:00Z", "change_seq": 0,
        }))
        .expect("a person")
    }

    #[test]
    fn an_active_manager_inherits() {
        let leaver = person("ada@example.com", false);
        let boss = person("bo@example.com", true);
        assert_eq!(
            successor(&leaver, Some(&boss)),
            Successor::Manager("bo@example.com".into())
        );
    }

    #[test]
    fn no_manager_or_a_manager_who_left_orphans_the_agents() {
        let leaver = person("ada@example.com", false);
        assert_eq!(successor(&leaver, None), Successor::Nobody);
        let gone = person("bo@example.com", false);
        assert_eq!(successor(&leaver, Some(&gone)), Successor::Nobody);
        // A record that names the leaver as their own manager never hands to them.
        let me = person("ADA@example.com", true);
        assert_eq!(successor(&leaver, Some(&me)), Successor::Nobody);
    }
}
