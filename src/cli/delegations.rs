//! `steward delegations add|list|remove`: which agents may act for me, with which scopes and
//! until when.

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;

use super::connect::Registry;
use super::output::{Out, Table, safe, when, when_opt};
use crate::model::delegation::{CreateDelegation, Delegation};

#[derive(Subcommand, Debug)]
pub enum DelegationsCommand {
    /// Let an agent act for you with these scopes until a time.
    Add {
        agent: String,
        /// A scope the agent may use for you; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// How long: `30d`, `12h`, or an RFC 3339 time such as 2026-12-31T00:00:00Z.
        #[arg(long = "for", value_name = "DURATION", default_value = "30d")]
        until: String,
        #[arg(long)]
        json: bool,
    },
    /// Your delegations, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a delegation: the tokens exchanged under it die at once.
    Remove {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// `30d`, `12h` or an RFC 3339 time, as the moment it ends.
pub fn parse_until(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration such as 30d or 12h"))?;
    match unit {
        "d" => Ok(now + Duration::days(n)),
        "h" => Ok(now + Duration::hours(n)),
        _ => bail!("{text:?}: write a duration such as 30d or 12h, or an RFC 3339 time"),
    }
}

fn print(out: &mut Out, list: &[Delegation]) -> std::io::Result<()> {
    let headers = ["ID", "AGENT", "SCOPES", "EXPIRES", "STATE"];
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                safe(&d.agent_id),
                safe(&d.scopes.join(" ")),
                when(d.expires_at),
                if d.active {
                    "active".into()
                } else if d.revoked_at.is_some() {
                    format!("revoked {}", when_opt(d.revoked_at, ""))
                } else {
                    "expired".into()
                },
            ]
        })
        .collect();
    let table = Table::fit(&headers, &[24, 24, 48, 20, 32], &rows);
    table.header(out, &headers)?;
    for row in &rows {
        table.row(out, row)?;
    }
    Ok(())
}

pub async fn run(registry: &Registry, command: DelegationsCommand) -> anyhow::Result<()> {
    let client = &registry.client;
    let mut out = Out::new();
    match command {
        DelegationsCommand::Add {
            agent,
            scopes,
            until,
            json,
        } => {
            let expires_at = parse_until(&until, Utc::now()).context("--for")?;
            let created = registry.check(
                client
                    .create_delegation(&CreateDelegation {
                        agent_id: agent,
                        scopes,
                        expires_at,
                    })
                    .await,
            )?;
            if json {
                out.json(&created)?;
            } else {
                out.line(format_args!(
                    "delegation {}: agent {} may act for {} with {} until {}",
                    created.id,
                    safe(&created.agent_id),
                    safe(&created.person),
                    safe(&created.scopes.join(" ")),
                    when(created.expires_at)
                ))?;
            }
        }
        DelegationsCommand::List { json } => {
            let list = registry.check(client.delegations().await)?.delegations;
            if json {
                out.json(&list)?;
            } else if list.is_empty() {
                out.line(
                    "no delegations: only agents you own, or a token naming them, act for you",
                )?;
            } else {
                print(&mut out, &list)?;
            }
        }
        DelegationsCommand::Remove { id, json } => {
            let revoked = registry.check(client.revoke_delegation(&id).await)?;
            if json {
                out.json(&revoked)?;
            } else {
                out.line(format_args!(
                    "delegation {} to agent {} removed; {} live token(s) revoked",
                    revoked.delegation.id,
                    safe(&revoked.delegation.agent_id),
                    revoked.tokens_revoked
                ))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_reads_durations_and_times() {
        let now = Utc::now();
        assert_eq!(parse_until("30d", now).unwrap(), now + Duration::days(30));
        assert_eq!(parse_until("12h", now).unwrap(), now + Duration::hours(12));
        assert_eq!(
            parse_until("2030-01-01T00:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2030-01-01T00:00:00+00:00"
        );
        assert!(parse_until("soon", now).is_err());
        assert!(parse_until("3w", now).is_err());
    }
}
