//! `steward owner candidates|clear|handovers` (`owner set` lives with the governance verbs).

use anyhow::bail;

use super::args::OwnerCommand;
use super::connect::Registry;
use super::output::{Out, Table, safe, when};
use super::resolve;

pub async fn run(reg: &Registry, command: OwnerCommand) -> anyhow::Result<()> {
    let mut out = Out::new();
    match command {
        OwnerCommand::Set { .. } => bail!("internal: owner set is dispatched to cli::govern"),
        OwnerCommand::Candidates { id, search, json } => {
            let id = resolve::agent(reg, &id).await?;
            let c = reg.check(
                reg.client
                    .owner_candidates(&id, search.as_deref(), Some(50))
                    .await,
            )?;
            if json {
                out.json(&c)?;
            } else {
                let current = match (&c.current_owner, c.current_owner_left_at) {
                    (Some(o), Some(t)) => format!("{} (left {})", safe(o), t.format("%Y-%m-%d")),
                    (Some(o), None) => safe(o),
                    (None, _) => "nobody".into(),
                };
                out.line(format_args!("current owner: {current}"))?;
                let rows: Vec<Vec<String>> = c
                    .candidates
                    .iter()
                    .map(|p| {
                        vec![
                            safe(&p.email),
                            safe(&p.display_name),
                            p.team.as_deref().map(safe).unwrap_or_else(|| "-".into()),
                            p.reason.as_str().to_string(),
                        ]
                    })
                    .collect();
                let headers = ["EMAIL", "NAME", "TEAM", "WHY"];
                let table = Table::fit(&headers, &[40, 32, 20, 26], &rows);
                table.header(&mut out, &headers)?;
                for r in &rows {
                    table.row(&mut out, r)?;
                }
                if c.truncated {
                    out.line("(more people match: narrow with --search)")?;
                }
            }
        }
        OwnerCommand::Clear { id, reason, json } => {
            let id = resolve::agent(reg, &id).await?;
            let agent = reg.check(reg.client.clear_owner(&id, reason).await)?;
            if json {
                out.json(&agent)?;
            } else {
                out.line(format_args!(
                    "{} ({}) is now unowned",
                    safe(&agent.name),
                    safe(&agent.id)
                ))?;
            }
        }
        OwnerCommand::Handovers { all, ack, json } => {
            let list = reg.check(reg.client.handovers(all).await)?;
            let acknowledged = if ack {
                Some(reg.check(reg.client.acknowledge_handovers().await)?)
            } else {
                None
            };
            if json {
                out.json(&serde_json::json!({
                    "handovers": list.handovers,
                    "acknowledged": acknowledged.map(|a| a.acknowledged),
                }))?;
            } else if list.handovers.is_empty() {
                out.line("no agents handed over to you")?;
            } else {
                for h in &list.handovers {
                    out.line(format_args!(
                        "{}  {} ({}) from {} who left · {}",
                        when(h.at),
                        safe(&h.agent_name),
                        safe(&h.agent_id),
                        safe(&h.from),
                        if h.acknowledged_at.is_some() {
                            "seen"
                        } else {
                            "new"
                        }
                    ))?;
                }
                if let Some(a) = acknowledged {
                    out.line(format_args!("{} marked as seen", a.acknowledged))?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}
