//! `steward audit list|verify`.
//!
//! `verify` fetches the whole chain and checks every link here with the same pure verifier the
//! registry uses; it does not take the registry's word for it. With `--db` it checks a SQLite
//! file directly, with no registry and no token.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::connect::Registry;
use super::output::{Listing, Out, safe};
use std::collections::{HashMap, HashSet};

use crate::client::witness::WitnessBook;
use crate::model::api::AuditQuery;
use crate::model::audit::{BrokenLink, ChainVerifier};
use crate::model::timeline::{MAX_TIMELINE_PAGE, TimelineEntry, TimelineQuery};
use crate::model::witness::{AuditHead, RESTORE_ACTION, RestoreMark, WitnessedHead, check_heads};
use crate::model::{ActorKind, AuditEvent};
use crate::registry;
use crate::registry::store::sqlite::OpenMode;
use crate::registry::store::{AuditStore, TokenStore};
use crate::registry::witness::read_signed_heads;

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

/// `steward audit list --agent ID --include-exchanges …`: the timeline, newest first, paged
/// from the registry.
pub async fn timeline(
    reg: &Registry,
    mut query: TimelineQuery,
    limit: Option<u32>,
    page_size: Option<u32>,
    json: bool,
) -> anyhow::Result<()> {
    if limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let page_size = page_size
        .unwrap_or(MAX_TIMELINE_PAGE)
        .min(MAX_TIMELINE_PAGE);
    let mut remaining = limit.map(u64::from);
    let mut listing = Listing::start(json, &TIMELINE_HEADERS, &TIMELINE_CAPS)?;
    loop {
        query.limit = Some(remaining.unwrap_or(page_size as u64).min(page_size as u64) as u32);
        let page = reg.check(reg.client.timeline(&query).await)?;
        let mut entries = page.entries;
        if let Some(r) = remaining {
            entries.truncate(r as usize);
        }
        listing.page(&entries, timeline_row)?;
        if let Some(r) = &mut remaining {
            *r -= entries.len() as u64;
            if *r == 0 {
                break;
            }
        }
        match page.next {
            None => break,
            Some(next) if Some(&next) == query.before.as_ref() => {
                bail!("the registry's paging did not advance past {next}; stopping")
            }
            Some(next) => query.before = Some(next),
        }
    }
    listing.finish("no activity matches")?;
    Ok(())
}

const TIMELINE_HEADERS: [&str; 8] = [
    "TIME",
    "KIND",
    "WHO",
    "ON BEHALF OF",
    "ACTION",
    "WHAT",
    "OUTCOME",
    "REASON",
];
const TIMELINE_CAPS: [usize; 8] = [19, 6, 40, 80, 28, 60, 8, 80];

fn timeline_row(e: &TimelineEntry) -> Vec<String> {
    let time = chrono::DateTime::parse_from_rfc3339(&e.time)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| safe(&e.time));
    let mut what = safe(&e.what);
    if let Some(t) = &e.target {
        what = if what.is_empty() {
            safe(t)
        } else {
            format!("{what} ({})", safe(t))
        };
    }
    vec![
        time,
        e.actor_kind.as_str().to_string(),
        safe(&e.actor),
        if e.chain.is_empty() {
            "-".into()
        } else {
            safe(&e.chain_line())
        },
        safe(&e.action),
        what,
        safe(&e.outcome),
        e.reason.as_deref().map(safe).unwrap_or_default(),
    ]
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

/// The chain as it is walked: every link checked, and the hashes at the witnessed sequences
/// and the restores collected on the way.
struct ChainWalk {
    verifier: ChainVerifier,
    wanted: HashSet<i64>,
    found: HashMap<i64, String>,
    restores: Vec<RestoreMark>,
}

impl ChainWalk {
    fn new(heads: &[WitnessedHead]) -> ChainWalk {
        ChainWalk {
            verifier: ChainVerifier::default(),
            wanted: heads.iter().map(|h| h.seq).collect(),
            found: HashMap::new(),
            restores: Vec::new(),
        }
    }

    fn feed(&mut self, event: &AuditEvent) -> anyhow::Result<()> {
        if let Err(broken) = self.verifier.check(event) {
            return Err(broken_chain(&broken, self.verifier.checked));
        }
        if self.wanted.contains(&event.seq) {
            self.found.insert(event.seq, event.hash.clone());
        }
        if event.action == RESTORE_ACTION
            && let Some(to) = event.details["restored_to"].as_i64()
        {
            self.restores.push(RestoreMark {
                event_seq: event.seq,
                restored_to: to,
                at: chrono::DateTime::parse_from_rfc3339(&event.time)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Checks the walked chain against `heads`; on success records its head in `book`.
    fn finish(self, heads: &[WitnessedHead], book: Option<&WitnessBook>) -> anyhow::Result<()> {
        let report = check_heads(heads, self.verifier.last_seq, &self.restores, |seq| {
            self.found.get(&seq).cloned()
        });
        if !report.ok() {
            let mut text = format!(
                "audit chain does NOT extend what was witnessed ({} of {} witnessed heads hold):",
                report.confirmed,
                heads.len()
            );
            for f in &report.failures {
                text.push_str("\n  ");
                text.push_str(&safe(f));
            }
            bail!(text);
        }
        let mut out = Out::new();
        for r in &report.restores {
            out.line(format_args!("note: {}", safe(r)))?;
        }
        out.flush()?;
        report_intact(
            self.verifier.checked,
            self.verifier.last_seq,
            &self.verifier.last_hash,
        )?;
        if !heads.is_empty() {
            // On stderr: stdout stays the chain's verdict alone, for scripts.
            eprintln!(
                "witnessed heads: {} checked, all held",
                report.confirmed + report.restores.len()
            );
        }
        if let Some(book) = book {
            let head = AuditHead {
                seq: self.verifier.last_seq,
                hash: self.verifier.last_hash.clone(),
            };
            if let Err(e) = book.record(&head, "verify") {
                eprintln!("warning: the head was not recorded as witnessed: {e:#}");
            }
        }
        Ok(())
    }
}

/// The heads this machine witnessed for a registry, and its book (None when no data dir).
fn local_witness(
    registry: anyhow::Result<WitnessBook>,
) -> (Vec<WitnessedHead>, Option<WitnessBook>) {
    match registry {
        Ok(book) => match book.load() {
            Ok(heads) => (heads, Some(book)),
            Err(e) => {
                eprintln!("warning: {e:#}; witnessed heads are not checked");
                (Vec::new(), None)
            }
        },
        Err(e) => {
            eprintln!("warning: {e:#}; witnessed heads are not checked or recorded");
            (Vec::new(), None)
        }
    }
}

/// Fetches the chain page by page through the API and verifies it locally, then checks it
/// against the heads witnessed on this machine and records the head it saw.
pub async fn verify_remote(reg: &Registry, page_size: Option<u32>) -> anyhow::Result<()> {
    let (heads, book) = local_witness(WitnessBook::for_registry(reg.client.base_url().as_str()));
    let mut walk = ChainWalk::new(&heads);
    let mut query = AuditQuery {
        after: Some(0),
        limit: Some(page_size.unwrap_or(PAGE as u32)),
        ..Default::default()
    };
    loop {
        let page = reg.check(reg.client.audit(&query).await)?;
        for event in &page.events {
            walk.feed(event)?;
        }
        match page.next {
            None => break,
            // Every event up to `next` was checked in order, so a cursor that does not move
            // past the last checked event cannot be a real next page.
            Some(next) if next != walk.verifier.last_seq => bail!(
                "the registry's paging is inconsistent: it said the next page starts after \
                 event {next}, but the last event it sent was {}",
                walk.verifier.last_seq
            ),
            Some(next) => query.after = Some(next),
        }
    }
    walk.finish(&heads, book.as_ref())
}

/// Verifies a SQLite file directly (offline, no token), against the heads witnessed on this
/// machine for that file and, with `witness`, the registry's signed head file.
pub async fn verify_file(db: PathBuf, witness: Option<PathBuf>) -> anyhow::Result<()> {
    let (mut heads, book) = local_witness(WitnessBook::for_database(&db));
    tokio::task::spawn_blocking(move || {
        let store = registry::open_store(&db, OpenMode::MustExist)?;
        if let Some(file) = &witness {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the witness file {}", file.display()))?;
            let keys = store.signing_keys().map_err(|e| anyhow::anyhow!("{e}"))?;
            match read_signed_heads(&text, &keys) {
                Ok(signed) => heads.extend(signed),
                Err(problems) => bail!(
                    "the witness file {} does not check out:\n  {}",
                    file.display(),
                    problems
                        .iter()
                        .map(|p| safe(p))
                        .collect::<Vec<_>>()
                        .join("\n  ")
                ),
            }
        }
        let mut walk = ChainWalk::new(&heads);
        let mut query = AuditQuery {
            after: Some(0),
            limit: Some(PAGE as u32),
            ..Default::default()
        };
        loop {
            let page = store
                .audit_page(&query)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot read the audit log in {}", db.display()))?;
            for event in &page.events {
                walk.feed(event)?;
            }
            match page.next {
                Some(next) if next > query.after.unwrap_or(0) => query.after = Some(next),
                _ => break,
            }
        }
        walk.finish(&heads, book.as_ref())
    })
    .await?
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
