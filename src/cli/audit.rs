//! `steward audit list|verify`.
//!
//! `verify` fetches the whole chain and checks every link here with the same pure verifier the
//! registry uses; it does not take the registry's word for it. With `--db` it checks a SQLite
//! file directly, with no registry and no token.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::connect::Registry;
use super::output::{Listing, Out, safe};
use crate::model::api::{AuditQuery, AuditVerification};
use crate::model::audit::{BrokenLink, ChainVerifier};
use crate::model::{ActorKind, AuditEvent};
use crate::registry;
use crate::registry::store::Store;
use crate::registry::store::sqlite::OpenMode;

/// The registry's largest page of audit events.
const PAGE: u64 = 5000;

pub async fn list(
    reg: &Registry,
    target: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
    page_size: Option<u32>,
    json: bool,
) -> anyhow::Result<()> {
    let page_size = page_size.map(u64::from).unwrap_or(PAGE);
    if limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let mut remaining = limit.map(u64::from);
    let mut query = AuditQuery {
        after,
        target,
        ..Default::default()
    };
    let mut listing = Listing::start(json, &HEADERS, &CAPS)?;
    loop {
        query.limit = Some(remaining.unwrap_or(page_size).min(page_size) as u32);
        let page = reg.check(reg.client.audit(&query).await)?;
        let mut events = page.events;
        if let Some(r) = remaining {
            events.truncate(r as usize);
        }
        listing.page(&events, row)?;
        if let Some(r) = &mut remaining {
            *r -= events.len() as u64;
            if *r == 0 {
                break;
            }
        }
        match page.next {
            None => break,
            Some(next) if Some(next) <= query.after => {
                bail!("the registry's paging did not advance past event {next}; stopping")
            }
            Some(next) => query.after = Some(next),
        }
    }
    listing.finish("no audit events match")?;
    Ok(())
}

const HEADERS: [&str; 7] = [
    "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON",
];
const CAPS: [usize; 7] = [10, 19, 48, 28, 40, 8, 80];

fn row(e: &AuditEvent) -> Vec<String> {
    let kind = match e.actor.kind {
        ActorKind::Human => "",
        ActorKind::Agent => "agent ",
        ActorKind::System => "system ",
    };
    let mut actor = format!("{kind}{}", safe(&e.actor.id));
    if let Some(behalf) = &e.actor.on_behalf_of {
        actor.push_str(&format!(" for {}", safe(behalf)));
    }
    // The stored form is RFC 3339 with microseconds; seconds are enough on screen.
    let time = chrono::DateTime::parse_from_rfc3339(&e.time)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| safe(&e.time));
    vec![
        e.seq.to_string(),
        time,
        actor,
        safe(&e.action),
        e.target.as_deref().map(safe).unwrap_or_else(|| "-".into()),
        safe(&e.outcome),
        e.reason.as_deref().map(safe).unwrap_or_default(),
    ]
}

/// Fetches the chain page by page through the API and verifies it locally.
pub async fn verify_remote(reg: &Registry, page_size: Option<u32>) -> anyhow::Result<()> {
    let mut verifier = ChainVerifier::default();
    let mut query = AuditQuery {
        after: Some(0),
        limit: Some(page_size.unwrap_or(PAGE as u32)),
        ..Default::default()
    };
    loop {
        let page = reg.check(reg.client.audit(&query).await)?;
        for event in &page.events {
            if let Err(broken) = verifier.check(event) {
                return Err(broken_chain(&broken, verifier.checked));
            }
        }
        match page.next {
            None => break,
            // Every event up to `next` was checked in order, so a cursor that does not move
            // past the last checked event cannot be a real next page.
            Some(next) if next != verifier.last_seq => bail!(
                "the registry's paging is inconsistent: it said the next page starts after \
                 event {next}, but the last event it sent was {}",
                verifier.last_seq
            ),
            Some(next) => query.after = Some(next),
        }
    }
    report_intact(verifier.checked, verifier.last_seq, &verifier.last_hash)
}

/// Verifies a SQLite file directly (offline, no token).
pub async fn verify_file(db: PathBuf) -> anyhow::Result<()> {
    let result: AuditVerification = tokio::task::spawn_blocking(move || {
        let store = registry::open_store(&db, OpenMode::MustExist)?;
        store
            .audit_verify()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot verify the audit log in {}", db.display()))
    })
    .await??;
    match result.first_broken {
        Some(broken) => Err(broken_chain(&broken, result.events_checked)),
        None => report_intact(result.events_checked, result.head_seq, &result.head_hash),
    }
}

fn report_intact(events: u64, head_seq: i64, head_hash: &str) -> anyhow::Result<()> {
    let mut out = Out::new();
    if events == 0 {
        out.line("audit chain intact: 0 events (the log is empty)")?;
    } else {
        out.line(format_args!(
            "audit chain intact: {events} events, head {head_hash} (event #{head_seq})"
        ))?;
    }
    out.flush()?;
    Ok(())
}

fn broken_chain(broken: &BrokenLink, verified_before: u64) -> anyhow::Error {
    anyhow::anyhow!(
        "audit chain BROKEN at event #{}: {} ({} events before it verified)",
        broken.seq,
        safe(&broken.problem),
        verified_before
    )
}
