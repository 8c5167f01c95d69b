//! `steward reviews …` and `steward campaigns …`: access reviews for scripts.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::{Subcommand, ValueEnum};

use crate::client::Client;
use crate::model::review::{
    Campaign, CampaignFilter, CampaignQuery, CampaignStatus, CreateCampaign, DecideItem,
    ExportFormat, JustificationPolicy, NoResponse, QueueQuery, Recurrence, ReminderSchedule,
    ReviewItem, ReviewItemQuery, Verdict,
};
use crate::model::text::strip_for_terminal;

#[derive(Subcommand, Debug)]
pub enum ReviewsCommand {
    /// Your review queue: items grouped by agent, by due date then risk.
    List {
        /// Every item of the open campaigns (admins and auditors).
        #[arg(long)]
        all: bool,
        /// Only this campaign (with --all).
        #[arg(long, requires = "all")]
        campaign: Option<String>,
        /// A JSON array of review items.
        #[arg(long)]
        json: bool,
    },
    /// Certify or revoke one review item.
    Decide {
        item: i64,
        decision: VerdictArg,
        /// Why; required when certifying an unused scope or revoking against the
        /// recommendation (per the campaign's policy).
        #[arg(long)]
        justification: Option<String>,
        /// Print the registry's answer (the item, what changed) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a review item to another reviewer (admins); with --agent, every item of that
    /// agent in the item's campaign. The reviewer by email or exact name.
    Reassign {
        item: i64,
        reviewer: String,
        /// Move every item of the item's agent in that campaign, not only this one.
        #[arg(long)]
        agent: bool,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write every item of a campaign with reviewer, decision, time, justification,
    /// recommendation and whether it was applied.
    Export {
        campaign: String,
        #[arg(long)]
        format: FormatArg,
        /// Write to this file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CampaignsCommand {
    /// Create a campaign (admins); it starts now and snapshots one item per (agent, grant).
    Create {
        name: String,
        /// The due date: YYYY-MM-DD (the end of that day, UTC) or an RFC 3339 time.
        #[arg(long)]
        due: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        /// Only agents owned by this email.
        #[arg(long)]
        owner: Option<String>,
        /// Reviews unowned agents and those whose owner left (default: you).
        #[arg(long)]
        fallback: Option<String>,
        /// What closing does to undecided items.
        #[arg(long, value_enum, default_value_t = NoResponseArg::Keep)]
        no_response: NoResponseArg,
        /// Repeat every quarter: closing schedules the next instance 3 months later.
        #[arg(long)]
        quarterly: bool,
        /// Days after the due date at which the campaign closes itself (default 0).
        #[arg(long)]
        grace_days: Option<u32>,
        /// Days without use after which a scope is recommended for revocation (default 30).
        #[arg(long)]
        lookback_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List campaigns with their progress.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One campaign with its progress per reviewer and team.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Close a campaign now (admins), applying its no-response outcome.
    /// Close a campaign, applying its no-response outcome to the undecided items. On a
    /// terminal it shows what the outcome will touch and asks first.
    Close {
        id: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Show what closing would do and stop: nothing changes.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum VerdictArg {
    Certify,
    Revoke,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Csv,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoResponseArg {
    Keep,
    Revoke,
    Recommendation,
}

/// The same registry and credential resolution as every other command.
fn client(server: Option<&str>) -> anyhow::Result<Client> {
    Ok(super::connect::Registry::connect(server)?.client)
}

pub async fn reviews(server: Option<&str>, command: ReviewsCommand) -> anyhow::Result<()> {
    let client = client(server)?;
    match command {
        ReviewsCommand::List {
            all: false, json, ..
        } => list_mine(&client, json).await,
        ReviewsCommand::List {
            all: true,
            campaign,
            json,
        } => list_all(&client, campaign, json).await,
        ReviewsCommand::Decide {
            item,
            decision,
            justification,
            json,
        } => decide(&client, item, decision, justification, json).await,
        ReviewsCommand::Reassign {
            item,
            reviewer,
            agent,
            reason,
            json,
        } => reassign(server, &client, item, &reviewer, agent, reason, json).await,
        ReviewsCommand::Export {
            campaign,
            format,
            out,
        } => export(&client, &campaign, format, out.as_deref()).await,
    }
}

pub async fn campaigns(server: Option<&str>, command: CampaignsCommand) -> anyhow::Result<()> {
    let client = client(server)?;
    match command {
        CampaignsCommand::Create {
            name,
            due,
            team,
            environment,
            owner,
            fallback,
            no_response,
            quarterly,
            grace_days,
            lookback_days,
            json,
        } => {
            let req = CreateCampaign {
                name,
                filter: CampaignFilter {
                    team,
                    environment,
                    owner,
                },
                starts_at: None,
                due_at: parse_due(&due)?,
                grace_days,
                recurrence: if quarterly {
                    Recurrence::Quarterly
                } else {
                    Recurrence::None
                },
                fallback_reviewer: fallback,
                reminders: ReminderSchedule::default(),
                no_response: match no_response {
                    NoResponseArg::Keep => NoResponse::Keep,
                    NoResponseArg::Revoke => NoResponse::Revoke,
                    NoResponseArg::Recommendation => NoResponse::Recommendation,
                },
                justification: JustificationPolicy::default(),
                lookback_days,
            };
            let c = client.create_campaign(&req).await?;
            if json {
                return print_json(&c);
            }
            println!("created campaign {}: {}", c.id, clean(&c.name));
            println!(
                "  {} item(s); due {}; no-response outcome: {}; fallback reviewer {}",
                c.progress.total,
                day(c.due_at),
                c.no_response.as_str(),
                c.fallback_reviewer
            );
            Ok(())
        }
        CampaignsCommand::List { json } => {
            let list = client.campaigns(&CampaignQuery::default()).await?;
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no campaigns");
            }
            for c in &list {
                println!("{}", campaign_line(c));
            }
            Ok(())
        }
        CampaignsCommand::Show { id, json } => {
            let d = client.campaign(&id).await?;
            if json {
                return print_json(&d);
            }
            println!("{}", campaign_line(&d.campaign));
            println!(
                "  no-response outcome: {} (undecided items recommended for revocation: {})",
                d.campaign.no_response.as_str(),
                d.pending_recommended_revoke
            );
            if !d.by_reviewer.is_empty() {
                println!("  by reviewer:");
                for r in &d.by_reviewer {
                    println!(
                        "    {:<40} {:>6}/{:<6} done, {} pending",
                        r.reviewer, r.progress.decided, r.progress.total, r.progress.pending
                    );
                }
            }
            if !d.by_team.is_empty() {
                println!("  by team:");
                for t in &d.by_team {
                    println!(
                        "    {:<40} {:>6}/{:<6} done, {} pending",
                        clean(&t.team),
                        t.progress.decided,
                        t.progress.total,
                        t.progress.pending
                    );
                }
            }
            Ok(())
        }
        CampaignsCommand::Close {
            id,
            yes,
            dry_run,
            json,
        } => {
            let detail = client.campaign(&id).await?;
            let p = &detail.campaign.progress;
            let preview = format!(
                "close {} ({}): no-response outcome {} touches {} undecided item(s) ({} recommended for revocation); decisions made are applied",
                detail.campaign.id,
                clean(&detail.campaign.name),
                detail.campaign.no_response.as_str(),
                p.pending,
                detail.pending_recommended_revoke
            );
            if dry_run {
                if json {
                    return print_json(&serde_json::json!({
                        "campaign": detail, "dry_run": true, "outcome": null,
                    }));
                }
                println!("{preview}");
                println!("dry run: nothing was closed");
                return Ok(());
            }
            if crate::cli::confirm::ask(&format!("{preview}. Close it?"), yes)?
                == crate::cli::confirm::Answer::Stop
            {
                anyhow::bail!("not confirmed: the campaign stays open");
            }
            let out = client.close_campaign(&id).await?;
            if json {
                return print_json(&out);
            }
            println!(
                "closed {}: no-response outcome {} applied to {} item(s): {} revoked, {} kept, {} already gone",
                out.campaign.id,
                out.no_response.as_str(),
                out.touched,
                out.revoked,
                out.kept,
                out.already_gone
            );
            if let Some(next) = &out.next {
                println!(
                    "next instance {} ({}) starts {}, due {}",
                    next.id,
                    clean(&next.name),
                    day(next.starts_at),
                    day(next.due_at)
                );
            }
            Ok(())
        }
    }
}

/// `YYYY-MM-DD` is the end of that day in UTC; anything else must be RFC 3339.
fn parse_due(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let end = NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time");
        return Ok(date.and_time(end).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| anyhow!("--due {text:?}: give a date (YYYY-MM-DD) or an RFC 3339 time"))
}

fn clean(text: &str) -> String {
    strip_for_terminal(text).into_owned()
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn campaign_line(c: &Campaign) -> String {
    let status = match c.status {
        CampaignStatus::Open if Utc::now() > c.due_at => "overdue",
        other => other.as_str(),
    };
    format!(
        "{}  {:<9} {:>6}/{:<6} done  due {}  {}",
        c.id,
        status,
        c.progress.decided,
        c.progress.total,
        day(c.due_at),
        clean(&c.name)
    )
}

fn item_line(i: &ReviewItem) -> String {
    // The same symbols as the console's.
    let markers: String = i.diff.markers.iter().map(|m| m.symbol()).collect();
    let decided = match &i.decided_by {
        Some(by) => format!("{} by {}", i.decision.as_str(), clean(by)),
        None => "undecided".into(),
    };
    format!(
        "    #{:<8} {:<3} {:<36} → {:<7} {:<28} {}",
        i.id,
        markers,
        clean(&i.scope),
        i.diff.recommendation.action.as_str(),
        decided,
        clean(&i.diff.recommendation.reason)
    )
}

async fn list_mine(client: &Client, json: bool) -> anyhow::Result<()> {
    let mut offset = 0;
    let mut first_page = true;
    let mut items_out: Vec<ReviewItem> = Vec::new();
    loop {
        let q = client
            .my_reviews(&QueueQuery {
                limit: Some(200),
                offset: Some(offset),
                ..Default::default()
            })
            .await?;
        if first_page && !json {
            if q.campaigns.is_empty() {
                println!("nothing to review");
            }
            for c in &q.campaigns {
                let due = crate::model::review::due_words(c.days_until_due, c.overdue);
                println!(
                    "{} ({}): {}/{} done, {due}",
                    clean(&c.name),
                    c.id,
                    c.progress.decided,
                    c.progress.total
                );
            }
        }
        first_page = false;
        for a in q.agents {
            if json {
                items_out.extend(a.items);
                continue;
            }
            println!(
                "  {} ({}) risk {}  {}/{}  {}/{} done",
                clean(&a.agent_name),
                a.agent_id,
                a.risk,
                clean(&a.team),
                clean(&a.environment),
                a.progress.decided,
                a.progress.total
            );
            for i in &a.items {
                println!("{}", item_line(i));
            }
            for r in &a.removed {
                println!(
                    "    {:<9} -   {:<36}   removed {} by {}",
                    "",
                    clean(&r.scope),
                    day(r.removed_at),
                    clean(&r.removed_by)
                );
            }
        }
        match q.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    if json {
        print_json(&items_out)?;
    }
    Ok(())
}

/// Every item of the open campaigns (or one campaign), page by page; JSON is written as the
/// pages arrive so that a large campaign never sits in memory.
async fn list_all(client: &Client, campaign: Option<String>, json: bool) -> anyhow::Result<()> {
    let ids: Vec<String> = match campaign {
        Some(id) => vec![id],
        None => client
            .campaigns(&CampaignQuery {
                status: Some(CampaignStatus::Open),
            })
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    let mut first = true;
    if json {
        write!(out, "[")?;
    }
    for id in ids {
        let mut after = None;
        loop {
            let page = client
                .campaign_items(
                    &id,
                    &ReviewItemQuery {
                        after,
                        limit: Some(1000),
                        ..Default::default()
                    },
                )
                .await?;
            for i in &page.items {
                if json {
                    writeln!(out, "{}", if first { "" } else { "," })?;
                    serde_json::to_writer(&mut out, i)?;
                } else {
                    writeln!(
                        out,
                        "{}  {} ({})  reviewer {}\n{}",
                        id,
                        clean(&i.agent_name),
                        i.agent_id,
                        clean(&i.reviewer),
                        item_line(i)
                    )?;
                }
                first = false;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    if json {
        writeln!(out, "\n]")?;
    }
    Ok(())
}

async fn decide(
    client: &Client,
    item: i64,
    decision: VerdictArg,
    justification: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let decision = match decision {
        VerdictArg::Certify => Verdict::Certify,
        VerdictArg::Revoke => Verdict::Revoke,
    };
    let out = client
        .decide(
            item,
            &DecideItem {
                decision,
                justification,
            },
        )
        .await?;
    if json {
        return print_json(&out);
    }
    let i = &out.item;
    if !out.changed {
        println!(
            "item {}: already {} ({} {}); nothing changed",
            i.id,
            i.decision.as_str(),
            clean(&i.agent_id),
            clean(&i.scope)
        );
        return Ok(());
    }
    let effect = if out.grant_removed {
        "grant removed"
    } else if out.grant_restored {
        "grant restored and certified"
    } else if decision == Verdict::Certify {
        "grant certified"
    } else {
        "the grant was already gone"
    };
    let was = if out.previous == crate::model::review::Decision::None {
        String::new()
    } else {
        format!(" (was {})", out.previous.as_str())
    };
    println!(
        "item {}: {}{was} — {} {}: {effect}",
        i.id,
        i.decision.as_str(),
        clean(&i.agent_name),
        clean(&i.scope)
    );
    Ok(())
}

async fn export(
    client: &Client,
    campaign: &str,
    format: FormatArg,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let format = match format {
        FormatArg::Csv => ExportFormat::Csv,
        FormatArg::Json => ExportFormat::Json,
    };
    let mut download = client.export_campaign(campaign, format).await?;
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = download.chunk().await? {
                stdout.write_all(&chunk)?;
            }
            stdout.flush()?;
        }
        Some(path) => {
            // Written beside the target and renamed at the end: a broken-off export never
            // leaves a file that looks complete.
            let partial = path.with_extension(match path.extension() {
                Some(ext) => format!("{}.partial", ext.to_string_lossy()),
                None => "partial".into(),
            });
            let written = async {
                let mut file = std::io::BufWriter::new(
                    std::fs::File::create(&partial)
                        .with_context(|| format!("cannot create {}", partial.display()))?,
                );
                let mut bytes = 0u64;
                while let Some(chunk) = download.chunk().await? {
                    file.write_all(&chunk)?;
                    bytes += chunk.len() as u64;
                }
                file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                anyhow::Ok(bytes)
            }
            .await;
            let bytes = match written {
                Ok(b) => b,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            };
            std::fs::rename(&partial, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} ({bytes} bytes)", path.display());
        }
    }
    Ok(())
}

/// `reviews reassign ITEM REVIEWER [--agent]`.
async fn reassign(
    server: Option<&str>,
    client: &Client,
    item: i64,
    reviewer: &str,
    agent: bool,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let reg = crate::cli::connect::Registry::connect(server)?;
    let reviewer = crate::cli::resolve::person(&reg, reviewer).await?;
    let req = crate::model::review::ReassignItems {
        reviewer: reviewer.clone(),
        reason,
    };
    let out = if agent {
        let it = client.review_item(item).await?;
        client
            .reassign_agent(&it.campaign_id, &it.agent_id, &req)
            .await?
    } else {
        client.reassign_item(item, &req).await?
    };
    if json {
        return print_json(&out);
    }
    match out.reassigned.len() {
        0 => println!("nothing moved: {} already reviews it", clean(&out.reviewer)),
        n => println!("{n} item(s) now reviewed by {}", clean(&out.reviewer)),
    }
    Ok(())
}
