//! The longest wait of a revoke behind a campaign create and close (issue 10 item 3): seeds
//! `--agents N` agents with grants unused for 60 days, then revokes one agent of another team
//! every 20 ms over HTTP while a campaign over them is created, and again while it is closed
//! (every item revoked), printing the slowest revoke of each phase.
//!
//!     cargo run --release --example brake_wait -- --agents 1000000

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use steward::client::{Client, Secret};
use steward::model::review::{
    CampaignFilter, CreateCampaign, JustificationPolicy, NoResponse, Recurrence, ReminderSchedule,
};
use steward::model::{Agent, AgentKind, AgentSource, AgentStatus, Grant};
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::{OpenMode, SqliteStore};
use steward::registry::store::{SeedAgent, SeedBatch};
use steward::registry::{self, Server};

fn agent(id: String, team: &str, scopes: &[&str]) -> SeedAgent {
    let now = Utc::now();
    SeedAgent {
        agent: Agent {
            id: id.clone(),
            name: id,
            description: String::new(),
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
            grants: scopes
                .iter()
                .map(|s| Grant {
                    scope: (*s).into(),
                    granted_by: "bench@example.com".into(),
                    granted_at: now - Duration::days(300),
                    expires_at: None,
                    justification: None,
                    last_used_at: Some(now - Duration::days(60)),
                    last_certified_at: Some(now - Duration::days(90)),
                })
                .collect(),
            change_seq: 0,
            owner_left_at: None,
        },
        credentials: Vec::new(),
    }
}

/// Revoke latencies of one phase, in milliseconds.
struct Waits(Vec<f64>);

impl std::fmt::Display for Waits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
        };
        write!(
            f,
            "{} revokes meanwhile, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            v.len(),
            at(0.5).unwrap_or(0.0),
            at(0.99).unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0)
        )
    }
}

/// The writer's busiest call sites of a phase: how long each waited for it and held it.
fn print_writer(store: &SqliteStore) {
    for site in store.writer_report().iter().take(6) {
        println!(
            "  writer {:<48} {:>6}× hold p50 {:.0} / p99 {:.0} / max {:.1} ms; wait p99 {:.0} / max {:.1} ms",
            site.site.rsplit('/').next().unwrap_or(&site.site),
            site.count,
            site.hold_p50_ms,
            site.hold_p99_ms,
            site.hold_max_ms,
            site.wait_p99_ms,
            site.wait_max_ms
        );
    }
    store.reset_writer_report();
}

/// Revokes `brake-N` agents one after another every 20 ms until `job` finishes; returns the
/// latency of each revoke.
async fn revoke_during<T>(
    admin: &Client,
    next: &mut usize,
    job: tokio::task::JoinHandle<T>,
) -> (Waits, T) {
    let mut waits = Vec::new();
    while !job.is_finished() {
        let started = Instant::now();
        admin
            .revoke(&format!("brake-{:05}", *next), Some("bench".into()))
            .await
            .expect("revoke");
        waits.push(started.elapsed().as_secs_f64() * 1000.0);
        *next += 1;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    (Waits(waits), job.await.expect("join"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut agents = 100_000usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--agents" => agents = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other}; use --agents N"),
        }
    }
    let dir = tempfile::tempdir()?;
    let store = registry::open_store(&dir.path().join("brake.db"), OpenMode::CreateIfMissing)?;
    let (_, token) = registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Admin", "b")?;
    let scopes = ["crm.orders:read", "mail:send", "wiki:read"];
    let seeding = Instant::now();
    for start in (0..agents).step_by(10_000) {
        let batch = (start..agents.min(start + 10_000))
            .map(|i| agent(format!("ag_{i:07}"), "estate", &scopes[..1 + i % 3]))
            .collect();
        store.seed(&SeedBatch {
            people: vec![],
            agents: batch,
        })?;
    }
    let brakes = (0..20_000)
        .map(|i| agent(format!("brake-{i:05}"), "brake", &[]))
        .collect();
    store.seed(&SeedBatch {
        people: vec![],
        agents: brakes,
    })?;
    println!(
        "seeded {agents} agents (and 20,000 to revoke) in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );
    let store_dyn: Arc<dyn Store> = store.clone();
    let server = Server::bind("127.0.0.1:0", store_dyn, "bench").await?;
    let url = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));
    let admin = Client::new(&url, Some(Secret::new(token.token)))?;
    let mut next = 0;
    store.reset_writer_report();

    let creator = admin.clone();
    let started = Instant::now();
    let create = tokio::spawn(async move {
        creator
            .create_campaign(&CreateCampaign {
                name: "brake bench".into(),
                filter: CampaignFilter {
                    team: Some("estate".into()),
                    ..Default::default()
                },
                starts_at: None,
                due_at: Utc::now() + Duration::days(30),
                grace_days: None,
                recurrence: Recurrence::None,
                fallback_reviewer: Some("admin@example.com".into()),
                reminders: ReminderSchedule::default(),
                no_response: NoResponse::Revoke,
                justification: JustificationPolicy::default(),
                lookback_days: None,
            })
            .await
    });
    let (waits, campaign) = revoke_during(&admin, &mut next, create).await;
    let campaign = campaign?;
    println!(
        "create: {agents} agents, {} items in {:.1} s; {waits}",
        campaign.progress.total,
        started.elapsed().as_secs_f64(),
    );
    print_writer(&store);

    let closer = admin.clone();
    let id = campaign.id.clone();
    let started = Instant::now();
    let close = tokio::spawn(async move { closer.close_campaign(&id).await });
    let (waits, outcome) = revoke_during(&admin, &mut next, close).await;
    let outcome = outcome?;
    println!(
        "close: {} grants revoked in {:.1} s; {waits}",
        outcome.revoked,
        started.elapsed().as_secs_f64(),
    );
    print_writer(&store);
    Ok(())
}
