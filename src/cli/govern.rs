//! The governance verbs on one agent: grant, ungrant, owner set, revoke, reinstate, decommission.
//! None of them prompts: they are for scripts (the console confirms where it matters).

use serde::Serialize;

use super::connect::Registry;
use super::output::{Out, safe};
use crate::model::Agent;
use crate::model::api::{AddGrant, DecommissionOutcome, DecommissionPlan, SetOwner};

fn named(agent: &Agent) -> String {
    format!("{} ({})", safe(&agent.name), safe(&agent.id))
}

fn scopes(n: usize) -> String {
    match n {
        1 => "1 scope".into(),
        n => format!("{n} scopes"),
    }
}

/// Prints `agent` as JSON or `line` for humans.
fn report(agent: &Agent, json: bool, line: String) -> anyhow::Result<()> {
    let mut out = Out::new();
    if json {
        out.json(agent)?;
    } else {
        out.line(line)?;
    }
    out.flush()?;
    Ok(())
}

pub async fn grant(
    reg: &Registry,
    id: &str,
    scope: &str,
    justification: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let req = AddGrant {
        scope: scope.to_string(),
        justification,
        expires_at: None,
    };
    let agent = reg.check(reg.client.add_grant(id, &req).await)?;
    let line = format!(
        "granted {} to {}; it now holds {}",
        safe(scope),
        named(&agent),
        scopes(agent.grants.len())
    );
    report(&agent, json, line)
}

pub async fn ungrant(reg: &Registry, id: &str, scope: &str, json: bool) -> anyhow::Result<()> {
    let agent = reg.check(reg.client.remove_grant(id, scope).await)?;
    let line = format!(
        "removed {} from {}; it now holds {}",
        safe(scope),
        named(&agent),
        scopes(agent.grants.len())
    );
    report(&agent, json, line)
}

pub async fn set_owner(
    reg: &Registry,
    id: &str,
    email: &str,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let req = SetOwner {
        owner: email.to_string(),
        reason,
    };
    let agent = reg.check(reg.client.set_owner(id, &req).await)?;
    let owner = match (&agent.owner, &agent.owner_name) {
        (Some(e), Some(n)) => format!("{} <{}>", safe(n), safe(e)),
        (Some(e), None) => safe(e),
        (None, _) => "nobody".into(),
    };
    let line = format!("{} is now owned by {owner}", named(&agent));
    report(&agent, json, line)
}

pub async fn revoke(
    reg: &Registry,
    id: &str,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let outcome = reg.check(reg.client.revoke(id, reason).await)?;
    let mut out = Out::new();
    if json {
        out.json(&outcome)?;
    } else {
        let what = if outcome.changed {
            format!(
                "revoked {}: status {} (was {})",
                named(&outcome.agent),
                outcome.status.as_str(),
                outcome.previous_status.as_str()
            )
        } else {
            format!(
                "{} was already {}: nothing changed",
                named(&outcome.agent),
                outcome.previous_status.as_str()
            )
        };
        out.line(what)?;
        out.line(format_args!(
            "  credentials disabled  {}",
            outcome.credentials_disabled
        ))?;
        out.line(format_args!(
            "  tokens revoked        {} (in the whole tree)",
            outcome.tokens_revoked
        ))?;
        // The brake covers the tree: every agent under the target is listed with its counts.
        out.line(format_args!(
            "  {:<24} {:<10} {:<11} {:>6} {:>12}",
            "stopped", "kind", "status", "tokens", "credentials"
        ))?;
        for s in &outcome.stopped {
            out.line(format_args!(
                "  {:<24} {:<10} {:<11} {:>6} {:>12}",
                safe(&s.name),
                s.kind.as_str(),
                s.status.as_str(),
                s.tokens_killed,
                s.credentials_disabled
            ))?;
            out.line(format_args!("    {}", safe(&s.agent_id)))?;
        }
        out.line(format_args!(
            "  elapsed               {:.1} ms in the registry",
            outcome.elapsed_ms
        ))?;
        out.line(format_args!(
            "  audit event           #{}",
            outcome.audit_seq
        ))?;
    }
    out.flush()?;
    Ok(())
}

pub async fn reinstate(
    reg: &Registry,
    id: &str,
    reason: Option<String>,
    subtree: bool,
    json: bool,
) -> anyhow::Result<()> {
    let outcome = reg.check(reg.client.reinstate_tree(id, reason, subtree).await)?;
    let mut out = Out::new();
    if json {
        out.json(&outcome)?;
        out.flush()?;
        return Ok(());
    }
    let agent = &outcome.agent;
    if outcome.reinstated.is_empty() {
        out.line(format_args!(
            "{} is {}: nothing reinstated",
            named(agent),
            agent.status.as_str()
        ))?;
    } else {
        let scope = if subtree {
            "with its tree"
        } else {
            "the agent alone"
        };
        if outcome.reinstated.iter().any(|a| a.agent_id == agent.id) {
            out.line(format_args!(
                "reinstated {}: status active ({scope}); credentials stay disabled until \
                 re-enabled (`steward agents enable-key ID KEY`)",
                named(agent)
            ))?;
        } else {
            out.line(format_args!(
                "{} was already active; under it ({scope}), credentials stay disabled until \
                 re-enabled:",
                named(agent)
            ))?;
        }
        for a in outcome.reinstated.iter().filter(|a| a.agent_id != agent.id) {
            out.line(format_args!(
                "  also reinstated {} ({}, {})",
                safe(&a.name),
                a.kind.as_str(),
                safe(&a.agent_id)
            ))?;
        }
    }
    if !outcome.still_suspended.is_empty() {
        out.line(format_args!(
            "still suspended under it: {} (use --subtree to reinstate them too)",
            listed(
                &outcome
                    .still_suspended
                    .iter()
                    .map(|a| a.agent_id.clone())
                    .collect::<Vec<_>>()
            )
        ))?;
    }
    out.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct DecommissionReport {
    plan: DecommissionPlan,
    outcome: DecommissionOutcome,
}

fn listed(ids: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(|id| safe(id))
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

fn agents(n: usize) -> String {
    match n {
        1 => "1 agent".into(),
        n => format!("{n} agents"),
    }
}

/// Shows the plan, then carries it out (no prompt: this is for scripts).
/// How a destructive verb was asked for (`--yes`, `--dry-run`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked {
    pub yes: bool,
    pub dry_run: bool,
}

pub async fn decommission(
    reg: &Registry,
    id: &str,
    reason: Option<String>,
    asked: Asked,
    json: bool,
) -> anyhow::Result<()> {
    let plan = reg.check(reg.client.decommission_plan(id).await)?;
    let mut out = Out::new();
    if json && asked.dry_run {
        out.json(&serde_json::json!({"plan": plan, "outcome": null, "dry_run": true}))?;
        out.flush()?;
        return Ok(());
    }
    if !json {
        out.line(format_args!(
            "plan: decommission {} ({}), remove {} grants, disable {} credentials",
            agents(plan.agents.len()),
            listed(&plan.agents),
            plan.grants,
            plan.credentials
        ))?;
        for skip in &plan.skipped {
            out.line(format_args!(
                "  skips {} ({}): {}",
                safe(&skip.name),
                safe(&skip.agent_id),
                safe(&skip.why)
            ))?;
        }
        out.flush()?;
    }
    if asked.dry_run {
        out.line("dry run: nothing was decommissioned")?;
        out.flush()?;
        return Ok(());
    }
    let question = format!(
        "decommission {} with its grants and credentials? This cannot be undone.",
        agents(plan.agents.len())
    );
    if super::confirm::ask(&question, asked.yes)? == super::confirm::Answer::Stop {
        anyhow::bail!("not confirmed: nothing was decommissioned");
    }
    let outcome = reg.check(reg.client.decommission(id, reason).await)?;
    if json {
        out.json(&DecommissionReport { plan, outcome })?;
    } else {
        out.line(format_args!(
            "decommissioned {} ({})",
            agents(outcome.decommissioned.len()),
            listed(&outcome.decommissioned)
        ))?;
        out.line(format_args!(
            "  grants removed        {}",
            outcome.grants_removed
        ))?;
        out.line(format_args!(
            "  review items closed   {}",
            outcome.review_items_closed
        ))?;
        for skip in &outcome.skipped {
            out.line(format_args!(
                "  skipped {} ({}): {}",
                safe(&skip.name),
                safe(&skip.agent_id),
                safe(&skip.why)
            ))?;
        }
        out.line(format_args!(
            "  credentials disabled  {}",
            outcome.credentials_disabled
        ))?;
        out.line(format_args!(
            "  tokens revoked        {}",
            outcome.tokens_revoked
        ))?;
        out.line(format_args!(
            "  elapsed               {:.1} ms in the registry",
            outcome.elapsed_ms
        ))?;
        out.line(format_args!(
            "  audit event           #{}",
            outcome.audit_seq
        ))?;
    }
    out.flush()?;
    Ok(())
}
