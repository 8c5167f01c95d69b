//! `steward resources …`, `steward request …` and `steward approvals …`: the catalogue and the
//! approval flow for scripts.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::connect::Registry;
use super::output::{Out, Table, safe, when};
use crate::model::approvals::{AccessRequest, CreateRequest, RequestQuery};
use crate::model::catalogue::Resource;
use crate::model::catalogue_file::parse_catalogue;

#[derive(Subcommand, Debug)]
pub enum ResourcesCommand {
    /// Every resource with its owner, audiences and scopes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One resource and its scopes.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Create or update resources from a TOML catalogue file (admins). Importing the same file
    /// twice changes nothing; a broken file is refused whole with its line and key.
    Import {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Register a resource server's Ed25519 public key (a JWK or PEM file; admins). Its
    /// servers then introspect tokens for the resource with assertions signed by that key.
    AddKey {
        id: String,
        #[arg(long)]
        public_key: PathBuf,
        #[arg(long)]
        label: Option<String>,
    },
    /// Create a static secret for a resource's servers (HTTP Basic `ID:SECRET` at
    /// introspection; admins). Printed once.
    AddSecret {
        id: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Disable one of a resource's credentials (admins).
    DisableKey { id: String, key: String },
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// What waits for your decision: access requests and per-use approvals, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve a request or a per-use approval.
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deny a request or a per-use approval.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

fn scope_lines(out: &mut Out, r: &Resource) -> anyhow::Result<()> {
    for s in &r.scopes {
        out.line(format_args!(
            "  {:<32} {:<12} {:<8} {}",
            safe(&s.name),
            s.tier.as_str(),
            s.approval.as_str(),
            safe(&s.description)
        ))?;
    }
    Ok(())
}

pub async fn resources(reg: &Registry, command: ResourcesCommand) -> anyhow::Result<()> {
    let mut out = Out::new();
    match command {
        credential_command @ (ResourcesCommand::AddKey { .. }
        | ResourcesCommand::AddSecret { .. }
        | ResourcesCommand::DisableKey { .. }) => {
            super::resource_credentials::run(reg, credential_command).await?;
        }
        ResourcesCommand::List { json } => {
            let list = reg.check(reg.client.resources().await)?;
            if json {
                out.json(&list.resources)?;
            } else if list.resources.is_empty() {
                out.line(
                    "the catalogue is empty; import one with `steward resources import FILE`",
                )?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .resources
                    .iter()
                    .map(|r| {
                        vec![
                            safe(&r.id),
                            safe(&r.name),
                            r.owner.as_deref().map_or("(admins)".into(), safe),
                            r.scopes.len().to_string(),
                            safe(&r.audiences.join(" ")),
                        ]
                    })
                    .collect();
                let headers = ["ID", "NAME", "OWNER", "SCOPES", "AUDIENCES"];
                let table = Table::fit(&headers, &[24, 32, 32, 6, 60], &rows);
                table.header(&mut out, &headers)?;
                for row in &rows {
                    table.row(&mut out, row)?;
                }
            }
        }
        ResourcesCommand::Show { id, json } => {
            let r = reg.check(reg.client.resource(&id).await)?;
            if json {
                out.json(&r)?;
            } else {
                out.line(format_args!("{} ({})", safe(&r.name), safe(&r.id)))?;
                out.line(format_args!(
                    "owner      {}",
                    r.owner
                        .as_deref()
                        .map_or("(none: admins approve)".into(), safe)
                ))?;
                out.line(format_args!("audiences  {}", safe(&r.audiences.join(" "))))?;
                if let Some(n) = r.approvers {
                    out.line(format_args!("approvers  {n}"))?;
                }
                if let Some(d) = &r.max_duration {
                    out.line(format_args!("longest    {}", safe(d)))?;
                }
                out.line(format_args!("scopes ({})", r.scopes.len()))?;
                scope_lines(&mut out, &r)?;
            }
        }
        ResourcesCommand::Import { file, json } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let catalogue =
                parse_catalogue(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let outcome = reg.check(reg.client.import_catalogue(&catalogue).await)?;
            if json {
                out.json(&outcome)?;
            } else {
                out.line(format_args!(
                    "imported {}: {} created, {} updated, {} unchanged",
                    file.display(),
                    outcome.created.len(),
                    outcome.updated.len(),
                    outcome.unchanged.len()
                ))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn describe(r: &AccessRequest) -> String {
    let who = match &r.subject {
        Some(s) => format!("for {}", safe(s)),
        None => format!("by {}", safe(&r.requester)),
    };
    format!(
        "{} {} {} [{}] on {} ({}) {who}, {} of {} approvals, {}",
        safe(&r.id),
        r.kind.as_str(),
        safe(&r.scope),
        r.tier.as_str(),
        safe(&r.agent_name),
        safe(&r.agent_id),
        r.approvals.len(),
        r.approvals_required,
        r.status.as_str()
    )
}

pub async fn request(
    reg: &Registry,
    agent: &str,
    scope: &str,
    justification: String,
    duration: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let req = CreateRequest {
        scope: scope.to_string(),
        justification,
        duration,
    };
    let r = reg.check(reg.client.request_scope(agent, &req).await)?;
    let mut out = Out::new();
    if json {
        out.json(&r)?;
    } else {
        out.line(describe(&r))?;
        if let Some(until) = r.grant_expires_at {
            out.line(format_args!("granted until {}", when(until)))?;
        }
    }
    out.flush()?;
    Ok(())
}

pub async fn approvals(reg: &Registry, command: ApprovalsCommand) -> anyhow::Result<()> {
    let mut out = Out::new();
    let (r, json) = match command {
        ApprovalsCommand::List { json } => {
            let list = reg.check(reg.client.approvals(&RequestQuery::default()).await)?;
            if json {
                out.json(&list.requests)?;
            } else if list.requests.is_empty() {
                out.line("nothing waits for your decision")?;
            } else {
                for r in &list.requests {
                    out.line(describe(r))?;
                    if let Some(j) = &r.justification {
                        out.line(format_args!("    why: {}", safe(j)))?;
                    }
                }
            }
            out.flush()?;
            return Ok(());
        }
        ApprovalsCommand::Approve { id, reason, json } => {
            (reg.check(reg.client.approve(&id, reason).await)?, json)
        }
        ApprovalsCommand::Deny { id, reason, json } => {
            (reg.check(reg.client.deny(&id, reason).await)?, json)
        }
    };
    if json {
        out.json(&r)?;
    } else {
        out.line(describe(&r))?;
        if let Some(until) = r.grant_expires_at {
            out.line(format_args!("granted until {}", when(until)))?;
        }
    }
    out.flush()?;
    Ok(())
}
