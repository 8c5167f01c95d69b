//! Who may read and decide flags. The store calls [`may_decide`] inside the transaction that
//! changes the flag.
//!
//! - read: admins, responders, auditors, and the agent's owner; anyone else gets the same 404
//!   as for an agent they cannot read (the flag's existence stays hidden);
//! - acknowledge: admins, responders, and the agent's owner (they may say "I am looking");
//! - resolve: admins and responders only. The owner is the party under suspicion: they may
//!   not close a flag on their own agent. Auditors read and never write.

use crate::model::flag::{Flag, FlagState};
use crate::model::permissions::Reach;
use crate::model::{Person, Role};
use crate::registry::policy;
use crate::registry::store::{StoreError, StoreResult};

fn owns(p: &Person, owner: Option<&str>) -> bool {
    owner.is_some_and(|o| o.eq_ignore_ascii_case(&p.email))
}

fn hidden(flag_id: &str) -> StoreError {
    StoreError::NotFound(format!("no flag with id {flag_id}"))
}

pub fn may_read(p: &Person, flag: &Flag, owner: Option<&str>) -> StoreResult<()> {
    if policy::reads_everything(p) || owns(p, owner) {
        Ok(())
    } else {
        Err(hidden(&flag.id))
    }
}

/// The rule itself: may `p` move a flag on an agent they own (`owned`) or not to `to`?
fn allowed(p: &Person, owned: bool, to: FlagState) -> bool {
    let responder = policy::is_admin(p) || p.has_role(Role::Responder);
    match to {
        FlagState::Acknowledged => responder || owned,
        FlagState::Resolved => responder,
        FlagState::Open => false,
    }
}

/// Which agents' flags `p` may move to `to` (what `/v1/me` says, from the same rule).
pub fn reach(p: &Person, to: FlagState) -> Reach {
    if allowed(p, false, to) {
        Reach::All
    } else if allowed(p, true, to) {
        Reach::Owned
    } else {
        Reach::None
    }
}

/// May `p` move `flag` (owned by `owner`) to `to`?
pub fn may_decide(p: &Person, flag: &Flag, owner: Option<&str>, to: FlagState) -> StoreResult<()> {
    may_read(p, flag, owner)?;
    if allowed(p, owns(p, owner), to) {
        return Ok(());
    }
    Err(StoreError::Forbidden(match to {
        FlagState::Resolved if owns(p, owner) => format!(
            "{} owns agent {} and may not resolve a flag on it; an admin or responder resolves it",
            p.email, flag.agent_id
        ),
        _ => format!(
            "{} may not {} flag {}: admins and responders decide flags",
            p.email,
            match to {
                FlagState::Resolved => "resolve",
                _ => "acknowledge",
            },
            flag.id
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flag::{Evidence, FlagKind, Severity};
    use chrono::Utc;

    fn person(email: &str, roles: &[Role]) -> Person {
        Person {
            id: email.into(),
            email: email.into(),
            display_name: email.into(),
            roles: roles.to_vec(),
            active: true,
            manager: None,
            team: None,
            created_at: Utc::now(),
            change_seq: 0,
            left_at: None,
        }
    }

    fn flag() -> Flag {
        Flag {
            id: "flg_1".into(),
            agent_id: "agt_1".into(),
            kind: FlagKind::RateSpike,
            severity: Severity::High,
            state: FlagState::Open,
            summary: String::new(),
            evidence: Evidence {
                observed: String::new(),
                baseline: String::new(),
                window_from: Utc::now(),
                window_to: Utc::now(),
                events: vec![],
            },
            refused_only: false,
            auto_suspended: false,
            opened_at: Utc::now(),
            acknowledged_by: None,
            acknowledged_at: None,
            acknowledge_reason: None,
            resolved_by: None,
            resolved_at: None,
            resolve_reason: None,
        }
    }

    #[test]
    fn the_matrix() {
        let f = flag();
        let owner = Some("o@x.test");
        let ack = FlagState::Acknowledged;
        let res = FlagState::Resolved;
        for roles in [&[Role::Admin][..], &[Role::Responder]] {
            let p = person("r@x.test", roles);
            assert!(may_decide(&p, &f, owner, ack).is_ok());
            assert!(may_decide(&p, &f, owner, res).is_ok());
        }
        let auditor = person("a@x.test", &[Role::Auditor]);
        assert!(may_read(&auditor, &f, owner).is_ok());
        assert!(matches!(
            may_decide(&auditor, &f, owner, ack),
            Err(StoreError::Forbidden(_))
        ));
        let o = person("o@x.test", &[]);
        assert!(may_decide(&o, &f, owner, ack).is_ok());
        assert!(matches!(
            may_decide(&o, &f, owner, res),
            Err(StoreError::Forbidden(_))
        ));
        let stranger = person("s@x.test", &[]);
        assert!(matches!(
            may_read(&stranger, &f, owner),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            may_decide(&stranger, &f, owner, ack),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            may_decide(&stranger, &f, None, ack),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn me_says_the_same_as_the_rule() {
        let ack = FlagState::Acknowledged;
        let res = FlagState::Resolved;
        let responder = person("r@x.test", &[Role::Responder]);
        assert_eq!(reach(&responder, ack), Reach::All);
        assert_eq!(reach(&responder, res), Reach::All);
        let owner = person("o@x.test", &[]);
        assert_eq!(reach(&owner, ack), Reach::Owned);
        assert_eq!(reach(&owner, res), Reach::None);
        let auditor = person("a@x.test", &[Role::Auditor]);
        assert_eq!(reach(&auditor, ack), Reach::Owned);
        assert_eq!(reach(&auditor, res), Reach::None);
    }
}
