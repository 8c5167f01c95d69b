//! `steward streams list | show | pause | resume`: the Shared Signals streams to relying
//! parties, with their state, lag and last error (admins).

use clap::Subcommand;

use super::connect::Registry;
use super::output::safe;
use crate::model::signals::StreamSummary;

#[derive(Subcommand, Debug)]
pub enum StreamsCommand {
    /// Every stream: receiver, method, state, pending SETs, lag, last error.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One stream in full.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Hold a stream's events (they are delivered, in order, when it is resumed).
    Pause {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused stream (also one the transmitter paused after failures).
    Resume {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

fn line(s: &StreamSummary) -> String {
    let method = if s.method.ends_with("8935") {
        "push"
    } else {
        "poll"
    };
    format!(
        "{}\t{}\t{method}\t{}\tpending {}\tlag {}s\tdelivered {}\tfailed {}\t{}",
        s.stream_id,
        safe(&s.receiver),
        s.status.as_str(),
        s.pending,
        s.lag_seconds,
        s.delivered,
        s.failed,
        safe(s.last_error.as_deref().unwrap_or("-")),
    )
}

pub async fn run(reg: &Registry, command: StreamsCommand) -> anyhow::Result<()> {
    match command {
        StreamsCommand::List { json } => {
            let list = reg.check(reg.client.streams().await)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.streams.is_empty() {
                eprintln!(
                    "no streams: receivers create them at /ssf/streams (see docs/signals.md)"
                );
            } else {
                for s in &list.streams {
                    println!("{}", line(s));
                }
            }
        }
        StreamsCommand::Show { id, json } => {
            let s = reg.check(reg.client.stream(&id).await)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("stream      {}", s.stream_id);
                println!("receiver    {}", safe(&s.receiver));
                println!(
                    "delivery    {} {}",
                    s.method,
                    safe(s.endpoint_url.as_deref().unwrap_or(""))
                );
                println!(
                    "status      {}{}",
                    s.status.as_str(),
                    s.reason
                        .as_deref()
                        .map(|r| format!(" ({})", safe(r)))
                        .unwrap_or_default()
                );
                println!("pending     {} (lag {} s)", s.pending, s.lag_seconds);
                println!("delivered   {}", s.delivered);
                println!("failed      {}", s.failed);
                println!("failures    {} in a row", s.consecutive_failures);
                if let Some(e) = &s.last_error {
                    println!("last error  {}", safe(e));
                }
            }
        }
        StreamsCommand::Pause { id, reason } => {
            let s = reg.check(reg.client.set_stream(&id, "pause", reason).await)?;
            println!("{}", line(&s));
        }
        StreamsCommand::Resume { id, reason } => {
            let s = reg.check(reg.client.set_stream(&id, "resume", reason).await)?;
            println!("{}", line(&s));
        }
    }
    Ok(())
}
