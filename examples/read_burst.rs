//! A revoke during a burst of large reads (issue 10 item 2): seeds `--agents N` agents
//! (default 20,000), then sends `--readers N` (default 1,000) concurrent
//! `GET /v1/agents?limit=1000` while an admin revokes one agent every 20 ms, and prints the
//! revoke latency (p50, p99, max; round trip and inside the registry), how the reads were
//! answered, and the process's peak resident set. Prints figures, asserts nothing.
//!
//!     cargo run --release --example read_burst -- [--agents N] [--readers N] [--rounds N]
//!
//! Client and registry share the process (and its resident set), as in token_bench.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use steward::model::{Agent, AgentKind, AgentSource, AgentStatus, Grant};
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::store::{SeedAgent, SeedBatch};
use steward::registry::{self, Server};

fn agent(id: String, team: &str) -> SeedAgent {
    let now = Utc::now();
    SeedAgent {
        agent: Agent {
            id: id.clone(),
            name: format!("{id} reads the order book"),
            description: "an agent with a description long enough to look like a real one".into(),
            kind: AgentKind::Agent,
            parent_id: None,
            owner: None,
            owner_name: None,
            team: team.into(),
            environment: "production".into(),
            status: AgentStatus::Active,
            source: AgentSource::Registered,
            created_at: now - Duration::days(400),
            last_seen_at: None,
            static_secret: false,
            flags: vec![],
            grants: vec![Grant {
                scope: "crm.orders:read".into(),
                granted_by: "bench@example.com".into(),
                granted_at: now - Duration::days(300),
                expires_at: None,
                justification: None,
                last_used_at: None,
                last_certified_at: None,
            }],
            change_seq: 0,
            owner_left_at: None,
        },
        credentials: Vec::new(),
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut agents, mut readers, mut rounds) = (20_000usize, 1_000usize, 3usize);
    while let Some(a) = args.next() {
        let v: usize = args.next().unwrap_or_default().parse()?;
        match a.as_str() {
            "--agents" => agents = v,
            "--readers" => readers = v,
            "--rounds" => rounds = v,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let limits = registry::perimeter::raise_open_files_limit()?;
    let dir = tempfile::tempdir()?;
    let store = registry::open_store(&dir.path().join("burst.db"), OpenMode::CreateIfMissing)?;
    let (_, token) = registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Admin", "b")?;
    for start in (0..agents).step_by(10_000) {
        let batch = (start..agents.min(start + 10_000))
            .map(|i| agent(format!("ag_{i:07}"), "estate"))
            .collect();
        store.seed(&SeedBatch {
            people: vec![],
            agents: batch,
        })?;
    }
    let brakes = (0..5_000)
        .map(|i| agent(format!("brake-{i:05}"), "brake"))
        .collect();
    store.seed(&SeedBatch {
        people: vec![],
        agents: brakes,
    })?;
    let store_dyn: Arc<dyn Store> = store.clone();
    let server = Server::bind("127.0.0.1:0", store_dyn, "bench").await?;
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(readers + 16)
        .timeout(StdDuration::from_secs(120))
        .build()?;
    let admin = token.token;
    println!(
        "{agents} agents; {readers} concurrent GET /v1/agents?limit=1000 per round, {rounds} \
         rounds; open-file limit {} (hard {}); peak RSS before: {:.0} MB",
        limits.soft_after,
        limits.hard,
        peak_rss_mb()
    );

    // The control: the same revokes with no reads, on the same machine at the same time.
    let mut idle = Vec::new();
    let mut next = 0usize;
    for _ in 0..30 {
        let started = Instant::now();
        let resp = http
            .post(format!("{base}/v1/agents/brake-{next:05}/revoke"))
            .bearer_auth(&admin)
            .json(&json!({"reason": "bench"}))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "revoke refused");
        let body: Value = resp.json().await?;
        idle.push((
            started.elapsed().as_secs_f64() * 1000.0,
            body["elapsed_ms"].as_f64().unwrap_or(0.0),
        ));
        next += 1;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let mut idle_trip: Vec<f64> = idle.iter().map(|i| i.0).collect();
    let mut idle_inside: Vec<f64> = idle.iter().map(|i| i.1).collect();
    idle_trip.sort_by(f64::total_cmp);
    idle_inside.sort_by(f64::total_cmp);
    println!(
        "revokes with no reads (control): {}; round trip p50 {:.1} ms, p99 {:.1} ms; inside the \
         registry p50 {:.1} ms, p99 {:.1} ms",
        idle.len(),
        percentile(&idle_trip, 0.5),
        percentile(&idle_trip, 0.99),
        percentile(&idle_inside, 0.5),
        percentile(&idle_inside, 0.99),
    );

    let mut round_trip = Vec::new();
    let mut in_registry = Vec::new();
    let mut answers: std::collections::BTreeMap<u16, usize> = Default::default();
    let mut rows = 0usize;
    store.reset_writer_report();
    let burst_started = Instant::now();
    for _ in 0..rounds {
        let mut reads = Vec::with_capacity(readers);
        for _ in 0..readers {
            let (http, url, bearer) = (
                http.clone(),
                format!("{base}/v1/agents?limit=1000"),
                admin.clone(),
            );
            reads.push(tokio::spawn(async move {
                match http.get(url).bearer_auth(bearer).send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let body: Value = resp.json().await.unwrap_or(Value::Null);
                        let n = body["agents"].as_array().map_or(0, Vec::len);
                        (status, n)
                    }
                    Err(_) => (0, 0),
                }
            }));
        }
        // Let the burst start, then brake every 20 ms until every read is answered.
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        while reads.iter().any(|r| !r.is_finished()) {
            let started = Instant::now();
            let resp = http
                .post(format!("{base}/v1/agents/brake-{next:05}/revoke"))
                .bearer_auth(&admin)
                .json(&json!({"reason": "bench"}))
                .send()
                .await?;
            let ok = resp.status().is_success();
            let body: Value = resp.json().await?;
            anyhow::ensure!(ok, "revoke refused: {body}");
            round_trip.push(started.elapsed().as_secs_f64() * 1000.0);
            in_registry.push(body["elapsed_ms"].as_f64().unwrap_or(0.0));
            next += 1;
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        for r in reads {
            let (status, n) = r.await?;
            *answers.entry(status).or_default() += 1;
            rows += n;
        }
    }
    let elapsed = burst_started.elapsed();
    round_trip.sort_by(f64::total_cmp);
    in_registry.sort_by(f64::total_cmp);
    println!(
        "reads: {} answered in {:.1} s ({} rows): {}",
        answers.values().sum::<usize>(),
        elapsed.as_secs_f64(),
        rows,
        answers
            .iter()
            .map(|(s, n)| format!(
                "{n}× {}",
                if *s == 0 {
                    "failed".into()
                } else {
                    s.to_string()
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "revokes during the burst: {}; round trip p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         inside the registry p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        round_trip.len(),
        percentile(&round_trip, 0.5),
        percentile(&round_trip, 0.99),
        round_trip.last().copied().unwrap_or(0.0),
        percentile(&in_registry, 0.5),
        percentile(&in_registry, 0.99),
        in_registry.last().copied().unwrap_or(0.0),
    );
    println!("peak RSS (registry and client): {:.0} MB", peak_rss_mb());
    let (readers, point) = store.readers_open();
    println!("reader connections open: {readers} ordinary, {point} point");
    for site in store.writer_report().iter().take(4) {
        println!(
            "  writer {:<48} {:>6}× hold p99 {:.0} / max {:.1} ms; wait p50 {:.0} / p99 {:.0} / max {:.1} ms",
            site.site.rsplit('/').next().unwrap_or(&site.site),
            site.count,
            site.hold_p99_ms,
            site.hold_max_ms,
            site.wait_p50_ms,
            site.wait_p99_ms,
            site.wait_max_ms
        );
    }
    Ok(())
}
