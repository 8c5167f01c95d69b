//! `steward flags list|ack|resolve`: behaviour flags and their decisions.

use clap::Subcommand;

use super::connect::Registry;
use super::output::{Out, Table, safe, when};
use crate::model::flag::{Flag, FlagQuery, Severity};

#[derive(Subcommand, Debug)]
pub enum FlagsCommand {
    /// Flags, severity first then newest (people without a role see their own agents').
    List {
        /// Only unresolved flags (open or acknowledged).
        #[arg(long)]
        open: bool,
        /// Only this agent's flags.
        #[arg(long)]
        agent: Option<String>,
        /// Only flags of at least this severity: low, medium, high, critical.
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a flag ("I am looking"): admins, responders, the agent's owner.
    Ack {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Resolve a flag: admins and responders.
    Resolve {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

fn print(out: &mut Out, list: &[Flag]) -> std::io::Result<()> {
    let headers = [
        "ID", "AGENT", "SEVERITY", "KIND", "STATE", "OPENED", "SUMMARY",
    ];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|f| {
            vec![
                f.id.clone(),
                safe(&f.agent_id),
                format!("{} {}", f.severity.marker(), f.severity.as_str()),
                f.kind.as_str().to_string(),
                f.state.as_str().to_string(),
                when(f.opened_at),
                safe(&f.summary),
            ]
        })
        .collect();
    let table = Table::fit(&headers, &[24, 24, 12, 18, 12, 20, 60], &rows);
    table.header(out, &headers)?;
    for row in &rows {
        table.row(out, row)?;
    }
    Ok(())
}

fn decided(out: &mut Out, f: &Flag, json: bool) -> anyhow::Result<()> {
    if json {
        out.json(f)?;
    } else {
        out.line(format_args!(
            "flag {} on agent {} is {}",
            f.id,
            safe(&f.agent_id),
            f.state.as_str()
        ))?;
    }
    Ok(())
}

pub async fn run(registry: &Registry, command: FlagsCommand) -> anyhow::Result<()> {
    let client = &registry.client;
    let mut out = Out::new();
    match command {
        FlagsCommand::List {
            open,
            agent,
            severity,
            json,
        } => {
            let severity = match severity.as_deref() {
                None => None,
                Some(s) => Some(Severity::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("--severity must be low, medium, high or critical, not {s:?}")
                })?),
            };
            let query = FlagQuery {
                agent,
                severity,
                state: open.then(|| "unresolved".to_string()),
                ..FlagQuery::default()
            };
            let list = registry.check(client.flags(&query).await)?.flags;
            if json {
                out.json(&list)?;
            } else if list.is_empty() {
                out.line("no flags")?;
            } else {
                print(&mut out, &list)?;
            }
        }
        FlagsCommand::Ack { id, reason, json } => {
            let f = registry.check(client.acknowledge_flag(&id, &reason).await)?;
            decided(&mut out, &f, json)?;
        }
        FlagsCommand::Resolve { id, reason, json } => {
            let f = registry.check(client.resolve_flag(&id, &reason).await)?;
            decided(&mut out, &f, json)?;
        }
    }
    out.flush()?;
    Ok(())
}
