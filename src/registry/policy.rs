//! Who may do what. Every route asks here; the console only hides what these refuse anyway.
//!
//! Roles: `admin` does everything; `responder` reads everything and revokes or reinstates;
//! `auditor` reads everything, the audit log included, and writes nothing. Every person may
//! own agents, and sees and manages the agents they own.

use crate::model::permissions::AgentActions;
use crate::model::{AgentStatus, Person, Role};
use crate::registry::store::{AgentFacts, StoreError, StoreResult, Visibility};

pub fn is_admin(p: &Person) -> bool {
    p.has_role(Role::Admin)
}

/// Admins, responders and auditors read every agent; everyone else reads their own.
pub fn reads_everything(p: &Person) -> bool {
    Role::ALL.iter().any(|r| p.has_role(*r))
}

pub fn visibility(p: &Person) -> Visibility {
    if reads_everything(p) {
        Visibility::All
    } else {
        Visibility::OwnedBy(p.email.clone())
    }
}

fn owns(p: &Person, agent: &AgentFacts) -> bool {
    agent
        .owner_email
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case(&p.email))
}

/// A caller who may not read an agent learns nothing about it: the same 404 as for an agent
/// that does not exist (its owner and its existence stay hidden). A caller who may read it is
/// told plainly what they may not do.
fn refuse(p: &Person, what: &str, agent: &AgentFacts) -> StoreError {
    if !may_see(p, agent) {
        return hidden(agent);
    }
    StoreError::Forbidden(format!("{} may not {what} agent {}", p.email, agent.id))
}

fn may_see(p: &Person, agent: &AgentFacts) -> bool {
    reads_everything(p) || owns(p, agent)
}

/// Exactly what a missing agent answers (see the store's `agent_by_id`).
fn hidden(agent: &AgentFacts) -> StoreError {
    StoreError::NotFound(format!("no agent with id {}", agent.id))
}

pub fn may_read_agent(p: &Person, agent: &AgentFacts) -> StoreResult<()> {
    if may_see(p, agent) {
        Ok(())
    } else {
        Err(hidden(agent))
    }
}

/// Grants, decommissioning: the owner or an admin.
pub fn may_manage_agent(p: &Person, agent: &AgentFacts) -> StoreResult<()> {
    if is_admin(p) || owns(p, agent) {
        Ok(())
    } else {
        Err(refuse(p, "manage", agent))
    }
}

/// Revocation is an emergency brake: admins, responders and the owner may pull it.
pub fn may_revoke_agent(p: &Person, agent: &AgentFacts) -> StoreResult<()> {
    if is_admin(p) || p.has_role(Role::Responder) || owns(p, agent) {
        Ok(())
    } else {
        Err(refuse(p, "revoke", agent))
    }
}

/// Reinstating undoes a brake someone else may have pulled: admins and responders only.
pub fn may_reinstate_agent(p: &Person, agent: &AgentFacts) -> StoreResult<()> {
    if is_admin(p) || p.has_role(Role::Responder) {
        Ok(())
    } else if !may_see(p, agent) {
        Err(hidden(agent))
    } else {
        Err(StoreError::Forbidden(format!(
            "{} may not reinstate agents: it takes the admin or responder role",
            p.email
        )))
    }
}

/// Re-enabling a credential lifts part of a brake: admins and responders only, never the owner
/// alone (an owner cannot undo a responder's revoke).
pub fn may_enable_credential(p: &Person, _agent: &AgentFacts) -> StoreResult<()> {
    if is_admin(p) || p.has_role(Role::Responder) {
        Ok(())
    } else {
        Err(StoreError::Forbidden(format!(
            "{} may not re-enable credentials: it takes the admin or responder role",
            p.email
        )))
    }
}

/// Assigning or changing an owner: admins only.
pub fn may_set_owner(p: &Person, agent: &AgentFacts) -> StoreResult<()> {
    if is_admin(p) {
        Ok(())
    } else if !may_see(p, agent) {
        Err(hidden(agent))
    } else {
        Err(StoreError::Forbidden(format!(
            "{} may not change owners: it takes the admin role",
            p.email
        )))
    }
}

/// What a person may do to one agent now: the rules above, with the agent's status (a
/// decommissioned agent takes no action; only a suspended one can be reinstated). Sent with the
/// agent's detail so that the console offers exactly these.
pub fn agent_actions(p: &Person, agent: &AgentFacts) -> AgentActions {
    let live = agent.status != AgentStatus::Decommissioned;
    AgentActions {
        revoke: live && may_revoke_agent(p, agent).is_ok(),
        reinstate: agent.status == AgentStatus::Suspended && may_reinstate_agent(p, agent).is_ok(),
        decommission: live && may_manage_agent(p, agent).is_ok(),
        set_owner: live && may_set_owner(p, agent).is_ok(),
    }
}

/// The full audit log: admins, auditors and responders (who investigate incidents).
pub fn may_read_audit(p: &Person) -> bool {
    reads_everything(p)
}

/// The Shared Signals streams' admin view (`/v1/streams`: list, show, pause, resume): admins.
pub fn may_manage_streams(p: &Person) -> bool {
    is_admin(p)
}

/// Direct grants: admins only, and never to an agent they own (they request like any owner).
pub fn may_grant_directly(p: &Person, agent: &AgentFacts) -> StoreResult<()> {
    if !is_admin(p) {
        return Err(StoreError::Forbidden(format!(
            "{} may not grant scopes directly: ask for them with an access request",
            p.email
        )));
    }
    if owns(p, agent) {
        return Err(StoreError::Refused {
            status: 403,
            code: "self_approval",
            message: format!(
                "{} owns agent {}: nobody grants scopes to an agent they own; file an access \
                 request for another approver",
                p.email, agent.id
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgentStatus;

    fn person(email: &str, roles: Vec<Role>) -> Person {
        serde_json::from_value(serde_json::json!({
            "id": email, "email": email, "display_name": email, "roles": roles, "active": true,
            "manager": null, "team": null, "created_at": "2026-01-01T00:00:00Z", "change_seq": 0,
        }))
        .expect("a person")
    }

    #[test]
    fn callers_who_cannot_read_an_agent_learn_neither_its_owner_nor_its_existence() {
        let agent = AgentFacts {
            id: "ag_1".into(),
            owner_email: Some("secret-owner@example.com".into()),
            status: AgentStatus::Active,
        };
        let stranger = person("stranger@example.com", vec![]);
        let checks: [fn(&Person, &AgentFacts) -> StoreResult<()>; 5] = [
            may_read_agent,
            may_manage_agent,
            may_revoke_agent,
            may_reinstate_agent,
            may_set_owner,
        ];
        for check in checks {
            match check(&stranger, &agent) {
                Err(StoreError::NotFound(m)) => assert_eq!(m, "no agent with id ag_1"),
                other => panic!("expected the missing-agent 404, got {other:?}"),
            }
        }
        // An auditor may read it: told what they may not do, still without the owner's name.
        let auditor = person("aud@example.com", vec![Role::Auditor]);
        match may_manage_agent(&auditor, &agent) {
            Err(StoreError::Forbidden(m)) => assert!(!m.contains("secret-owner"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
