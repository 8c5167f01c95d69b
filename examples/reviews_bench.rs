//! Access reviews at scale: create, list, show, queue, page and export a campaign over a large
//! store through the real HTTP API, printing time and peak memory (VmHWM) per step.
//!
//!     cargo run --release --example reviews_bench -- --agents 1000000 --db /tmp/reviews-1m.db
//!
//! `--close` also closes the campaign (recommendation outcome); `--demo` also times
//! `seed_demo_campaign` (another campaign over the same store, about half decided).
//!
//! The store is generated with `Store::seed` when the file does not exist yet (and reused
//! afterwards). The peak is reset before each step (Linux `clear_refs`), so each line shows the
//! most memory the whole process (registry and client) held during that step.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use steward::client::{Client, Secret};
use steward::model::review::{
    CampaignFilter, CampaignQuery, CreateCampaign, ExportFormat, JustificationPolicy, NoResponse,
    QueueQuery, Recurrence, ReminderSchedule, ReviewItemQuery,
};
use steward::model::{Actor, Agent, AgentKind, AgentSource, AgentStatus, Grant, Person, Role};
use steward::registry::reviews::ReviewScheduler;
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::store::{SeedAgent, SeedBatch, SeedPerson};
use steward::registry::{self, Server};

const ADMIN: &str = "bench-admin@example.com";
const FALLBACK: &str = "security@example.com";

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn reset_peak() {
    // "5" resets VmHWM to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Step {
    started: Instant,
}

fn step() -> Step {
    reset_peak();
    Step {
        started: Instant::now(),
    }
}

impl Step {
    fn done(self, name: &str, detail: String) {
        println!(
            "{name:<34} {:>9.2} s   peak {:>7.1} MiB   {detail}",
            self.started.elapsed().as_secs_f64(),
            status_kib("VmHWM:") as f64 / 1024.0
        );
        std::io::stdout().flush().ok();
    }
}

/// A small deterministic generator (no dependency on a seeded RNG's output format).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const SCOPES: [&str; 12] = [
    "crm.orders:read",
    "crm.orders:write",
    "mail:send",
    "s3.reports:read",
    "s3.reports:write",
    "wiki:read",
    "tickets:write",
    "payments:refund",
    "hr.people:read",
    "search.index:write",
    "calendar:read",
    "slack.chat:write",
];

fn generate(store: &dyn Store, agents: u32, owners: u32) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut rng = Lcg(42);
    let mut people = vec![SeedPerson {
        person: person(FALLBACK, true, vec![], now),
        manager_email: None,
    }];
    for i in 0..owners {
        // About 4 % of owners have left: their agents go to the fallback reviewer.
        let active = !rng.next().is_multiple_of(25);
        people.push(SeedPerson {
            person: person(&format!("owner{i:05}@example.com"), active, vec![], now),
            manager_email: None,
        });
    }
    store
        .seed(&SeedBatch {
            people,
            agents: Vec::new(),
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let batch_size = 10_000u32;
    let mut done = 0u32;
    while done < agents {
        let n = batch_size.min(agents - done);
        let mut batch = Vec::with_capacity(n as usize);
        for k in 0..n {
            let i = done + k;
            let owner = (!rng.next().is_multiple_of(12))
                .then(|| format!("owner{:05}@example.com", rng.next() % owners as u64));
            let grants = (0..(rng.next() % 6))
                .map(|g| {
                    let scope = SCOPES[((i as u64 + g * 5) % SCOPES.len() as u64) as usize];
                    let added = rng.next().is_multiple_of(10);
                    let used = match rng.next() % 20 {
                        0..=11 => Some(now - Duration::days((rng.next() % 30) as i64)),
                        12..=16 => Some(now - Duration::days(31 + (rng.next() % 200) as i64)),
                        _ => None,
                    };
                    Grant {
                        scope: scope.into(),
                        granted_by: "provisioning@example.com".into(),
                        granted_at: now - Duration::days(if added { 20 } else { 300 }),
                        expires_at: None,
                        justification: None,
                        last_used_at: used,
                        last_certified_at: (!added && rng.next() % 10 < 7)
                            .then(|| now - Duration::days(95)),
                    }
                })
                .collect::<Vec<_>>();
            let mut grants = grants;
            grants.sort_by(|a, b| a.scope.cmp(&b.scope));
            grants.dedup_by(|a, b| a.scope == b.scope);
            batch.push(SeedAgent {
                agent: Agent {
                    id: format!("ag_{i:08}"),
                    name: format!("agent-{i}"),
                    description: String::new(),
                    kind: AgentKind::Agent,
                    parent_id: None,
                    owner,
                    owner_name: None,
                    team: format!("team-{:02}", rng.next() % 40),
                    environment: ["production", "staging", "dev"][(rng.next() % 3) as usize].into(),
                    status: if rng.next().is_multiple_of(50) {
                        AgentStatus::Suspended
                    } else {
                        AgentStatus::Active
                    },
                    source: AgentSource::Registered,
                    created_at: now - Duration::days(400),
                    last_seen_at: None,
                    static_secret: false,
                    flags: if rng.next().is_multiple_of(40) {
                        vec!["rate-spike".into()]
                    } else {
                        vec![]
                    },
                    grants,
                    change_seq: 0,
                    owner_left_at: None,
                },
                credentials: Vec::new(),
            });
        }
        store
            .seed(&SeedBatch {
                people: Vec::new(),
                agents: batch,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        done += n;
        if done.is_multiple_of(100_000) || done == agents {
            eprint!("\rseeded {done} agents");
        }
    }
    eprintln!();
    Ok(())
}

fn person(email: &str, active: bool, roles: Vec<Role>, now: chrono::DateTime<Utc>) -> Person {
    Person {
        id: format!("p_{}", email.replace(['@', '.'], "_")),
        email: email.into(),
        display_name: email.into(),
        roles,
        active,
        manager: None,
        team: None,
        created_at: now,
        change_seq: 0,
        left_at: (!active).then_some(now),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut agents = 1_000_000u32;
    let mut db = PathBuf::from("/tmp/steward-reviews-bench.db");
    let mut close = false;
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--agents" => agents = args.next().unwrap_or_default().parse()?,
            "--db" => db = args.next().unwrap_or_default().into(),
            "--close" => close = true,
            "--demo" => demo = true,
            other => anyhow::bail!(
                "unknown argument {other}; use --agents N --db PATH [--close] [--demo]"
            ),
        }
    }
    let fresh = !db.exists();
    let store = registry::open_store(&db, OpenMode::CreateIfMissing)?;
    if fresh {
        let s = step();
        generate(store.as_ref(), agents, (agents / 50).max(20))?;
        s.done("generate store (Store::seed)", format!("{agents} agents"));
    } else {
        println!("reusing {}", db.display());
    }
    let (_, token) = registry::bootstrap_admin(store.as_ref(), ADMIN, "Bench admin", "bench")?;
    let store_dyn: Arc<dyn Store> = store.clone();
    let server = Server::bind("127.0.0.1:0", store_dyn.clone(), "bench").await?;
    let url = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));
    let admin = Client::new(&url, Some(Secret::new(token.token)))?;
    println!(
        "baseline RSS {:.1} MiB",
        status_kib("VmRSS:") as f64 / 1024.0
    );

    let s = step();
    let campaign = admin
        .create_campaign(&CreateCampaign {
            name: format!("bench {}", Utc::now().format("%H:%M:%S")),
            filter: CampaignFilter::default(),
            starts_at: None,
            due_at: Utc::now() + Duration::days(30),
            grace_days: None,
            recurrence: Recurrence::Quarterly,
            fallback_reviewer: Some(FALLBACK.into()),
            reminders: ReminderSchedule::default(),
            no_response: NoResponse::Recommendation,
            justification: JustificationPolicy::default(),
            lookback_days: None,
        })
        .await?;
    s.done(
        "create campaign (HTTP)",
        format!("{} items", campaign.progress.total),
    );
    let id = campaign.id.clone();

    let s = step();
    let list = admin.campaigns(&CampaignQuery::default()).await?;
    s.done("list campaigns", format!("{} campaigns", list.len()));

    let s = step();
    let detail = admin.campaign(&id).await?;
    s.done(
        "show campaign (per reviewer/team)",
        format!(
            "{} reviewers, {} teams",
            detail.by_reviewer.len(),
            detail.by_team.len()
        ),
    );

    let s = step();
    let page = admin
        .campaign_items(
            &id,
            &ReviewItemQuery {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await?;
    s.done(
        "items, first page of 1000",
        format!("{} items", page.items.len()),
    );
    let s = step();
    let deep = admin
        .campaign_items(
            &id,
            &ReviewItemQuery {
                limit: Some(1000),
                after: Some(page.items[0].id + campaign.progress.total as i64 / 2),
                ..Default::default()
            },
        )
        .await?;
    s.done(
        "items, a page halfway",
        format!("{} items", deep.items.len()),
    );
    let s = step();
    let filtered = admin
        .campaign_items(
            &id,
            &ReviewItemQuery {
                limit: Some(100),
                reviewer: Some("owner00007@example.com".into()),
                ..Default::default()
            },
        )
        .await?;
    s.done(
        "items of one reviewer (filter)",
        format!("{} items", filtered.items.len()),
    );

    // Queues: the fallback reviewer holds every unowned agent; an owner holds ~50.
    for (who, label) in [
        (FALLBACK, "queue, fallback reviewer"),
        ("owner00007@example.com", "queue, one owner"),
    ] {
        let t = registry::service::api_tokens::issue_token_for(
            store.as_ref(),
            &Actor::system("bench"),
            who,
            &Default::default(),
        )?;
        let client = Client::new(&url, Some(Secret::new(t.token)))?;
        let s = step();
        let q = client.my_reviews(&QueueQuery::default()).await?;
        s.done(
            label,
            format!(
                "{} agents in queue, {} on the page",
                q.total_agents,
                q.agents.len()
            ),
        );
    }

    for (format, ext) in [(ExportFormat::Csv, "csv"), (ExportFormat::Json, "json")] {
        let path = db.with_extension(format!("export.{ext}"));
        let s = step();
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut download = admin.export_campaign(&id, format).await?;
        let mut bytes = 0u64;
        while let Some(chunk) = download.chunk().await? {
            file.write_all(&chunk)?;
            bytes += chunk.len() as u64;
        }
        file.flush()?;
        s.done(
            &format!("export {ext} (streamed to a file)"),
            format!("{:.1} MiB", bytes as f64 / 1048576.0),
        );
        std::fs::remove_file(&path).ok();
    }

    let s = step();
    let scheduler = ReviewScheduler::new(store_dyn.clone(), None)?;
    let run = scheduler
        .run_reminders_once(Utc::now() + Duration::days(7) + Duration::minutes(1))
        .await?;
    s.done(
        "plan reminders (week-1 slot)",
        format!("{} reminders recorded", run.planned),
    );

    if demo {
        let s = step();
        let d = tokio::task::spawn_blocking({
            let store = store_dyn.clone();
            move || registry::demo_reviews::seed_demo_campaign(store.as_ref(), Utc::now())
        })
        .await??;
        s.done(
            "seed_demo_campaign",
            format!(
                "{} items, {} decided, {} reviewers ({} overdue)",
                d.items, d.decided, d.reviewers, d.overdue_reviewers
            ),
        );
    }

    if close {
        let s = step();
        let out = admin.close_campaign(&id).await?;
        s.done(
            "close (recommendation outcome)",
            format!(
                "{} touched: {} revoked, {} kept",
                out.touched, out.revoked, out.kept
            ),
        );
    }
    Ok(())
}
