//! The cost of the serialised audit append: prints figures, asserts nothing about speed.
//!
//!     cargo run --release --example audit_append -- [--db PATH_OR_POSTGRES_URL]
//!         [--appends N] [--threads T]
//!
//! Each append is one write transaction holding one audit event (the store's `record`), as every
//! change of the registry does: on SQLite behind its single writer, on PostgreSQL behind the
//! write lock every replica takes (store/postgres.rs). Runs the appends from one thread, then from
//! T threads at once, and verifies the chain after. Without `--db`, a SQLite file in a temporary
//! folder; a PostgreSQL database must be empty.

use std::sync::Arc;
use std::time::{Duration, Instant};

use steward::model::Actor;
use steward::registry;
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;

fn main() -> anyhow::Result<()> {
    let mut db: Option<String> = None;
    let mut appends = 5_000usize;
    let mut threads = 8usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match (args[i].as_str(), value) {
            ("--db", Some(v)) => db = Some(v),
            ("--appends", Some(v)) => appends = v.parse()?,
            ("--threads", Some(v)) => threads = v.parse()?,
            (other, _) => anyhow::bail!("unknown or incomplete option {other}"),
        }
        i += 2;
    }
    let dir = tempfile::tempdir()?;
    let path = match &db {
        Some(d) => std::path::PathBuf::from(d),
        None => dir.path().join("audit.db"),
    };
    let store = registry::open_store(&path, OpenMode::CreateIfMissing)?;
    println!(
        "store: {}; load average {}",
        if store.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite (WAL, synchronous FULL)"
        },
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    let actor = Actor::system("audit-bench");

    // One thread: the cost of one append end to end (transaction, chain head, insert, commit).
    let started = Instant::now();
    let mut serial = Vec::with_capacity(appends);
    for n in 0..appends {
        serial.push(append(&store, &actor, n)?);
    }
    report("1 thread", &mut serial, started.elapsed());

    // Many threads: appends queue on the one writer (or the one lock).
    let store2 = Arc::clone(&store);
    let started = Instant::now();
    let per_thread = appends / threads.max(1);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store2);
            std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
                let actor = Actor::system("audit-bench");
                let mut out = Vec::with_capacity(per_thread);
                for k in 0..per_thread {
                    out.push(append(&store, &actor, 1_000_000 + t * per_thread + k)?);
                }
                Ok(out)
            })
        })
        .collect();
    let mut parallel = Vec::new();
    for h in handles {
        parallel.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("a thread panicked"))??,
        );
    }
    report(
        &format!("{threads} threads"),
        &mut parallel,
        started.elapsed(),
    );

    let verified = store.audit_verify().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "chain: {} events checked, intact: {}",
        verified.events_checked, verified.ok
    );
    anyhow::ensure!(verified.ok, "the audit chain is broken");
    Ok(())
}

/// One audit event in its own write transaction; how long it took.
fn append(
    store: &steward::registry::store::SqliteStore,
    actor: &Actor,
    n: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    store
        .record(
            actor,
            "bench.append",
            Some(&format!("agt_{n:08}")),
            serde_json::json!({"n": n}),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(started.elapsed())
}

fn report(label: &str, times: &mut [Duration], wall: Duration) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{label}: {} appends in {:.2} s = {:.0}/s; each p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        wall.as_secs_f64(),
        times.len() as f64 / wall.as_secs_f64(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}
