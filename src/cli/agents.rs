//! `steward agents list|show|register`: the inventory.

use anyhow::{Context, bail};

use super::args::AgentsCommand;
use super::connect::Registry;
use super::output::{Listing, Out, Table, safe, when, when_opt};
use crate::model::api::{AgentQuery, RegisterAgent};
use crate::model::{Agent, AgentDetail, AgentKind, AgentStatus};

/// The registry's largest page of agents.
const PAGE: u64 = 1000;

pub async fn run(reg: &Registry, command: AgentsCommand) -> anyhow::Result<()> {
    match command {
        AgentsCommand::List {
            unowned,
            owner,
            status,
            team,
            search,
            limit,
            page_size,
            json,
        } => {
            let query = AgentQuery {
                unowned: unowned.then_some(true),
                owner,
                status: status.as_deref().map(parse_status).transpose()?,
                team,
                q: search,
                ..Default::default()
            };
            list(reg, query, limit, page_size, json).await
        }
        AgentsCommand::Show { id, json } => {
            let id = super::resolve::agent(reg, &id).await?;
            show(reg, &id, json).await
        }
        // Keys, secrets and tokens are dispatched to `cli::tokens` before this.
        other @ (AgentsCommand::AddKey { .. }
        | AgentsCommand::AddSecret { .. }
        | AgentsCommand::DisableKey { .. }
        | AgentsCommand::EnableKey { .. }
        | AgentsCommand::Tokens { .. }) => bail!("internal: {other:?} belongs to cli::tokens"),
        AgentsCommand::Register {
            name,
            owner,
            scopes,
            description,
            team,
            environment,
            kind,
            parent,
            json,
        } => {
            let kind = AgentKind::parse(&kind).with_context(|| {
                format!(
                    "unknown kind {:?}: use agent, sub-agent or instance",
                    safe(&kind)
                )
            })?;
            let req = RegisterAgent {
                name,
                description,
                kind,
                parent_id: parent,
                owner: Some(owner),
                team,
                environment,
                scopes,
                source: None,
            };
            let agent = reg.check(reg.client.register_agent(&req).await)?;
            let mut out = Out::new();
            if json {
                out.json(&agent)?;
            } else {
                out.line(format_args!(
                    "registered {} as {} ({}, owner {}, {})",
                    safe(&agent.name),
                    agent.id,
                    agent.kind.as_str(),
                    owner_text(&agent),
                    scopes_text(agent.grants.len())
                ))?;
            }
            {
                out.flush()?;
                Ok(())
            }
        }
    }
}

pub fn parse_status(text: &str) -> anyhow::Result<AgentStatus> {
    AgentStatus::parse(text).with_context(|| {
        format!(
            "unknown status {:?}: use active, suspended or decommissioned",
            safe(text)
        )
    })
}

const HEADERS: [&str; 7] = ["ID", "NAME", "KIND", "STATUS", "OWNER", "TEAM", "SCOPES"];
const CAPS: [usize; 7] = [40, 40, 9, 14, 40, 24, 6];

fn row(agent: &Agent) -> Vec<String> {
    vec![
        safe(&agent.id),
        safe(&agent.name),
        agent.kind.as_str().to_string(),
        agent.status.as_str().to_string(),
        match (&agent.owner, agent.owner_left_at) {
            (Some(email), Some(_)) => format!("{} (left)", safe(email)),
            (Some(email), None) => safe(email),
            (None, _) => "-".into(),
        },
        safe(&agent.team),
        agent.grants.len().to_string(),
    ]
}

/// Pages through the inventory with `after`/`next`, writing each page as it arrives.
async fn list(
    reg: &Registry,
    mut query: AgentQuery,
    limit: Option<u32>,
    page_size: Option<u32>,
    json: bool,
) -> anyhow::Result<()> {
    let page_size = page_size.map(u64::from).unwrap_or(PAGE);
    if limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let mut remaining = limit.map(u64::from);
    let mut listing = Listing::start(json, &HEADERS, &CAPS)?;
    loop {
        query.limit = Some(remaining.unwrap_or(page_size).min(page_size) as u32);
        let page = reg.check(reg.client.list_agents(&query).await)?;
        let mut agents = page.agents;
        if let Some(r) = remaining {
            agents.truncate(r as usize);
        }
        listing.page(&agents, row)?;
        if let Some(r) = &mut remaining {
            *r -= agents.len() as u64;
            if *r == 0 {
                break;
            }
        }
        match page.next {
            None => break,
            Some(next) if Some(&next) == query.after.as_ref() => {
                bail!("the registry's paging did not advance past {next}; stopping")
            }
            Some(next) => query.after = Some(next),
        }
    }
    listing.finish("no agents match")?;
    Ok(())
}

fn owner_text(agent: &Agent) -> String {
    if let (Some(email), Some(left)) = (&agent.owner, agent.owner_left_at) {
        let who = match &agent.owner_name {
            Some(name) => format!("{} <{}>", safe(name), safe(email)),
            None => safe(email),
        };
        return format!(
            "none: orphaned (owner {who} left on {})",
            left.format("%Y-%m-%d")
        );
    }
    match (&agent.owner, &agent.owner_name) {
        (Some(email), Some(name)) => format!("{} <{}>", safe(name), safe(email)),
        (Some(email), None) => safe(email),
        (None, _) => "none (unowned)".into(),
    }
}

fn scopes_text(n: usize) -> String {
    match n {
        1 => "1 scope".into(),
        n => format!("{n} scopes"),
    }
}

async fn show(reg: &Registry, id: &str, json: bool) -> anyhow::Result<()> {
    let detail = reg.check(reg.client.agent(id).await)?;
    let mut out = Out::new();
    if json {
        out.json(&detail)?;
    } else {
        write_detail(&mut out, &detail)?;
    }
    out.flush()?;
    Ok(())
}

fn write_detail(out: &mut Out, d: &AgentDetail) -> std::io::Result<()> {
    let a = &d.agent;
    out.line(format_args!("{}  ({})", safe(&a.name), safe(&a.id)))?;
    let field =
        |out: &mut Out, label: &str, value: String| out.line(format_args!("  {label:<13}{value}"));
    field(out, "kind", a.kind.as_str().into())?;
    field(out, "status", a.status.as_str().into())?;
    field(out, "owner", owner_text(a))?;
    field(out, "team", safe(&a.team))?;
    field(out, "environment", safe(&a.environment))?;
    field(out, "source", a.source.as_str().into())?;
    if let Some(p) = &d.parent {
        field(
            out,
            "parent",
            format!(
                "{} ({}, {}, {})",
                safe(&p.name),
                safe(&p.id),
                p.kind.as_str(),
                p.status.as_str()
            ),
        )?;
    }
    field(out, "created", when(a.created_at))?;
    field(out, "last seen", when_opt(a.last_seen_at, "never"))?;
    if a.static_secret {
        field(out, "debt", "holds an enabled static secret".into())?;
    }
    if !a.flags.is_empty() {
        let flags: Vec<String> = a.flags.iter().map(|f| safe(f)).collect();
        field(out, "flags", flags.join(", "))?;
    }
    if !a.description.is_empty() {
        field(out, "description", safe(&a.description))?;
    }

    out.line(format_args!("grants ({})", a.grants.len()))?;
    if !a.grants.is_empty() {
        let rows: Vec<Vec<String>> = a
            .grants
            .iter()
            .map(|g| {
                vec![
                    format!("  {}", safe(&g.scope)),
                    safe(&g.granted_by),
                    when(g.granted_at),
                    when_opt(g.last_used_at, "never"),
                    when_opt(g.expires_at, "-"),
                ]
            })
            .collect();
        let headers = ["  SCOPE", "GRANTED BY", "GRANTED", "LAST USED", "EXPIRES"];
        let t = Table::fit(&headers, &[60, 40, 20, 20, 20], &rows);
        t.header(out, &headers)?;
        for r in &rows {
            t.row(out, r)?;
        }
    }

    out.line(format_args!("credentials ({})", d.credentials.len()))?;
    if !d.credentials.is_empty() {
        let rows: Vec<Vec<String>> = d
            .credentials
            .iter()
            .map(|c| {
                vec![
                    format!("  {}", safe(&c.id)),
                    c.kind.as_str().to_string(),
                    safe(&c.label),
                    safe(&c.fingerprint),
                    match c.disabled_at {
                        Some(t) => format!("disabled {}", when(t)),
                        None => "enabled".into(),
                    },
                ]
            })
            .collect();
        let headers = ["  ID", "KIND", "LABEL", "FINGERPRINT", "STATE"];
        let t = Table::fit(&headers, &[40, 14, 30, 30, 30], &rows);
        t.header(out, &headers)?;
        for r in &rows {
            t.row(out, r)?;
        }
    }

    if !d.children.is_empty() {
        out.line(format_args!("children ({})", d.children.len()))?;
        let rows: Vec<Vec<String>> = d
            .children
            .iter()
            .map(|c| {
                vec![
                    format!("  {}", safe(&c.id)),
                    safe(&c.name),
                    c.kind.as_str().to_string(),
                    c.status.as_str().to_string(),
                ]
            })
            .collect();
        let headers = ["  ID", "NAME", "KIND", "STATUS"];
        let t = Table::fit(&headers, &[42, 40, 9, 14], &rows);
        t.header(out, &headers)?;
        for r in &rows {
            t.row(out, r)?;
        }
    }
    Ok(())
}
