//! The rules of registering an agent and of granting a scope directly: who may, and what the
//! grant is. The routes parse and answer; the store re-checks what depends on the agent's state
//! (`policy::may_manage_agent`, `policy::may_grant_directly`) inside the writing transaction.

use chrono::{DateTime, Duration, Utc};

use super::approvals;
use crate::model::api::{AddGrant, RegisterAgent};
use crate::model::catalogue::{ScopeInfo, Tier};
use crate::model::{AgentKind, AgentSource, Grant, Person};
use crate::registry::policy;
use crate::registry::store::{StoreError, StoreResult};

fn invalid(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        code,
        message: message.into(),
    }
}

/// A registration's shape and who may make it: a top-level agent has no parent, a sub-agent or
/// an instance has one; an admin registers any agent, owned or not, and records discovered
/// ones; anyone else registers only agents they own, and never records a discovered one.
/// (Whether the caller may see the parent is the route's next check, on the parent's facts.)
pub fn may_register(p: &Person, req: &RegisterAgent) -> StoreResult<()> {
    match (req.kind, &req.parent_id) {
        (AgentKind::Agent, Some(_)) => {
            return Err(invalid(
                "invalid_parent",
                "a top-level agent has no parent; use kind sub-agent or instance",
            ));
        }
        (AgentKind::SubAgent | AgentKind::Instance, None) => {
            return Err(invalid(
                "invalid_parent",
                format!("a {} needs a parent_id", req.kind.as_str()),
            ));
        }
        _ => {}
    }
    if policy::is_admin(p) {
        return Ok(());
    }
    let own = req
        .owner
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case(&p.email));
    if !own {
        return Err(StoreError::Forbidden(format!(
            "{} may register only agents they own (set owner to {})",
            p.email, p.email
        )));
    }
    if req.source == Some(AgentSource::Discovered) {
        return Err(StoreError::Forbidden(
            "only admins record discovered agents".into(),
        ));
    }
    Ok(())
}

/// Granting a scope directly, without a request: admins only. Everyone else asks.
pub fn may_grant_directly(p: &Person, agent_id: &str) -> StoreResult<()> {
    if policy::is_admin(p) {
        return Ok(());
    }
    Err(StoreError::Forbidden(format!(
        "{} may not grant scopes directly: ask for them with POST /v1/agents/{agent_id}/requests",
        p.email
    )))
}

/// The grant an admin's direct grant makes: only a catalogued `low` or `medium` scope (a
/// higher tier goes through an approved request), for at most the catalogue's duration for
/// it (its default when none is asked). `info` is the catalogue's entry for the scope (None:
/// not catalogued).
pub fn direct_grant(
    p: &Person,
    agent_id: &str,
    info: Option<&ScopeInfo>,
    req: AddGrant,
    now: DateTime<Utc>,
) -> StoreResult<Grant> {
    may_grant_directly(p, agent_id)?;
    let info = info.ok_or_else(|| {
        invalid(
            "unknown_scope",
            format!("{} is not in the resource catalogue", req.scope),
        )
    })?;
    let grant_policy = approvals::grant_policy(info);
    if !matches!(info.tier, Tier::Low | Tier::Medium) {
        return Err(StoreError::Forbidden(format!(
            "{} is {} tier: it is granted only through an approved request              (POST /v1/agents/{agent_id}/requests)",
            req.scope,
            info.tier.as_str()
        )));
    }
    let asked = req.expires_at.map(|t| (t - now).num_seconds());
    let duration = approvals::grant_duration(&grant_policy, &req.scope, asked)?;
    Ok(Grant {
        scope: req.scope,
        granted_by: p.email.clone(),
        granted_at: now,
        expires_at: Some(req.expires_at.unwrap_or(now + Duration::seconds(duration))),
        justification: req.justification,
        last_used_at: None,
        last_certified_at: None,
    })
}

/// Acting on a registered agent: each action paired with the one rule that says who may take it
/// (`policy`), checked by the store inside the transaction that acts, on the agent as it is
/// then. Routes call these; nothing else chooses the guard.
pub mod act {
    use crate::model::api::{DecommissionOutcome, DecommissionPlan};
    use crate::model::{Actor, Agent, Person};
    use crate::registry::policy;
    use crate::registry::store::{Reinstated, Revoked, Store, StoreResult};

    /// The brake: admins and responders, and an owner for their own agents.
    pub fn revoke(
        store: &dyn Store,
        by: &Person,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
    ) -> StoreResult<Revoked> {
        store.revoke_agent(actor, agent_id, reason, &|f| {
            policy::may_revoke_agent(by, f)
        })
    }

    /// Admins and responders only: an owner cannot undo a revoke of their own agent.
    pub fn reinstate(
        store: &dyn Store,
        by: &Person,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        subtree: bool,
    ) -> StoreResult<Reinstated> {
        store.reinstate_agent(actor, agent_id, reason, subtree, &|f| {
            policy::may_reinstate_agent(by, f)
        })
    }

    /// Who may manage the agent (its owner or an admin) may see what decommissioning does.
    pub fn decommission_plan(
        store: &dyn Store,
        by: &Person,
        agent_id: &str,
    ) -> StoreResult<DecommissionPlan> {
        store.decommission_plan(agent_id, &|f| policy::may_manage_agent(by, f))
    }

    pub fn decommission(
        store: &dyn Store,
        by: &Person,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
    ) -> StoreResult<DecommissionOutcome> {
        store.decommission_agent(actor, agent_id, reason, &|f| {
            policy::may_manage_agent(by, f)
        })
    }

    /// Removing a scope narrows access: the owner or an admin, without approval.
    pub fn remove_grant(
        store: &dyn Store,
        by: &Person,
        actor: &Actor,
        agent_id: &str,
        scope: &str,
    ) -> StoreResult<Agent> {
        store.remove_grant(actor, agent_id, scope, None, &|f| {
            policy::may_manage_agent(by, f)
        })
    }

    /// Giving an agent an owner: admins only.
    pub fn set_owner(
        store: &dyn Store,
        by: &Person,
        actor: &Actor,
        agent_id: &str,
        owner: &str,
        reason: Option<&str>,
    ) -> StoreResult<Agent> {
        store.set_owner(actor, agent_id, owner, reason, &|f| {
            policy::may_set_owner(by, f)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use crate::model::catalogue::ApprovalMode;

    fn person(email: &str, roles: Vec<Role>) -> Person {
        Person {
            id: "p1".into(),
            email: email.into(),
            display_name: email.into(),
            roles,
            active: true,
            manager: None,
            team: None,
            created_at: Utc::now(),
            change_seq: 0,
            left_at: None,
        }
    }

    fn registration(owner: Option<&str>, kind: AgentKind, parent: Option<&str>) -> RegisterAgent {
        let mut req: RegisterAgent = serde_json::from_value(serde_json::json!({
            "name": "invoice-bot", "description": "pays invoices"
        }))
        .unwrap();
        req.owner = owner.map(str::to_string);
        req.kind = kind;
        req.parent_id = parent.map(str::to_string);
        req
    }

    fn status(e: StoreError) -> String {
        match e {
            StoreError::Forbidden(_) => "forbidden".into(),
            StoreError::Invalid { code, .. } => code.into(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_person_registers_only_agents_they_own_and_never_discovered_ones() {
        let alice = person("alice@example.com", vec![]);
        let admin = person("root@example.com", vec![Role::Admin]);
        let mine = registration(Some("ALICE@example.com"), AgentKind::Agent, None);
        may_register(&alice, &mine).unwrap();
        // Abuse: registering an agent for someone else, or unowned.
        let theirs = registration(Some("bob@example.com"), AgentKind::Agent, None);
        assert_eq!(
            status(may_register(&alice, &theirs).unwrap_err()),
            "forbidden"
        );
        let unowned = registration(None, AgentKind::Agent, None);
        assert_eq!(
            status(may_register(&alice, &unowned).unwrap_err()),
            "forbidden"
        );
        let mut discovered = mine.clone();
        discovered.source = Some(AgentSource::Discovered);
        assert_eq!(
            status(may_register(&alice, &discovered).unwrap_err()),
            "forbidden"
        );
        // An admin may do all three.
        for req in [&theirs, &unowned, &discovered] {
            may_register(&admin, req).unwrap();
        }
        // The tree's shape is checked for everyone, admins included.
        let orphan = registration(None, AgentKind::SubAgent, None);
        assert_eq!(
            status(may_register(&admin, &orphan).unwrap_err()),
            "invalid_parent"
        );
        let top_with_parent = registration(None, AgentKind::Agent, Some("agt_1"));
        assert_eq!(
            status(may_register(&admin, &top_with_parent).unwrap_err()),
            "invalid_parent"
        );
    }

    #[test]
    fn only_admins_grant_directly_and_only_low_or_medium_catalogued_scopes() {
        let now = Utc::now();
        let owner = person("alice@example.com", vec![Role::Responder]);
        let admin = person("root@example.com", vec![Role::Admin]);
        let info = |tier: Tier| -> ScopeInfo {
            ScopeInfo {
                scope: "crm:read".into(),
                resource_id: "crm".into(),
                audiences: vec![],
                tier,
                approval: ApprovalMode::default(),
                resource_owner: None,
                approvers: None,
                max_duration_secs: None,
            }
        };
        let ask = || AddGrant {
            scope: "crm:read".into(),
            justification: None,
            expires_at: None,
        };
        // Abuse: a non-admin granting directly, whatever the scope.
        let e = direct_grant(&owner, "agt_1", Some(&info(Tier::Low)), ask(), now).unwrap_err();
        assert_eq!(status(e), "forbidden");
        // Abuse: a high-tier scope without its approved request.
        let e = direct_grant(&admin, "agt_1", Some(&info(Tier::High)), ask(), now).unwrap_err();
        assert_eq!(status(e), "forbidden");
        let e = direct_grant(&admin, "agt_1", None, ask(), now).unwrap_err();
        assert_eq!(status(e), "unknown_scope");
        let g = direct_grant(&admin, "agt_1", Some(&info(Tier::Medium)), ask(), now).unwrap();
        assert_eq!(g.granted_by, "root@example.com");
        assert!(g.expires_at.is_some_and(|t| t > now));
    }
}
