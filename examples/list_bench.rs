//! Listing agents at scale (issue 14 item 11): an owner's agents and a text search that
//! matches nothing, through the store's `list_agents`, over the demo enterprise with
//! `--agents N` (default 1,000,000). Prints the median and slowest of five runs of each query;
//! asserts nothing.
//!
//!     cargo run --release --example list_bench -- [--agents N] [--db FILE]
//!
//! With `--db FILE` the seeded registry is kept and reused by the next run.

use std::time::Instant;

use steward::model::api::AgentQuery;
use steward::registry::store::Visibility;
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::{self, demo};

fn time(label: &str, f: impl Fn() -> usize) {
    let mut runs = Vec::new();
    let mut rows = 0;
    for _ in 0..5 {
        let started = Instant::now();
        rows = f();
        runs.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "{label}: {rows} agents, median {:.2} ms, slowest {:.2} ms",
        runs[2], runs[4]
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let agents: u32 = value("--agents").map_or(Ok(1_000_000), |v| v.parse())?;
    let dir = tempfile::tempdir()?;
    let path = value("--db").map_or_else(|| dir.path().join("list.db"), Into::into);
    let fresh = !path.exists();
    let store = registry::open_store(&path, OpenMode::CreateIfMissing)?;
    if fresh {
        let started = Instant::now();
        demo::seed(store.as_ref(), 7, agents)?;
        println!(
            "seeded the demo enterprise with {agents} agents in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    // The owner with the most agents, and one with a single agent.
    let conn = rusqlite::Connection::open(&path)?;
    let total: i64 = conn.query_row("SELECT count(*) FROM agents", [], |r| r.get(0))?;
    let busiest: (String, i64) = conn.query_row(
        "SELECT p.email, count(*) FROM agents a JOIN people p ON p.id = a.owner_id
         GROUP BY a.owner_id ORDER BY 2 DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    println!(
        "{total} agents; the busiest owner {} owns {}",
        busiest.0, busiest.1
    );
    let list = |query: AgentQuery, visibility: Visibility| {
        store
            .list_agents(&query, &visibility)
            .map(|p| p.agents.len())
            .unwrap_or_else(|e| panic!("list failed: {e}"))
    };
    let owner = busiest.0.clone();
    time(
        "an owner's own listing (GET /v1/agents as a non-admin)",
        || {
            list(
                AgentQuery::default(),
                Visibility::OwnedBy(owner.to_uppercase()),
            )
        },
    );
    time("an admin's listing filtered by owner (?owner=)", || {
        list(
            AgentQuery {
                owner: Some(owner.clone()),
                ..Default::default()
            },
            Visibility::All,
        )
    });
    time("a text search that matches nothing (?q=zqxjv)", || {
        list(
            AgentQuery {
                q: Some("zqxjv".into()),
                ..Default::default()
            },
            Visibility::All,
        )
    });
    time(
        "a text search that matches a few (?q=<the owner's first agent id>)",
        || {
            let first = list(
                AgentQuery {
                    owner: Some(owner.clone()),
                    limit: Some(1),
                    ..Default::default()
                },
                Visibility::All,
            );
            assert_eq!(first, 1);
            let id = store
                .list_agents(
                    &AgentQuery {
                        owner: Some(owner.clone()),
                        limit: Some(1),
                        ..Default::default()
                    },
                    &Visibility::All,
                )
                .expect("list")
                .agents[0]
                .id
                .clone();
            list(
                AgentQuery {
                    q: Some(id),
                    ..Default::default()
                },
                Visibility::All,
            )
        },
    );
    time("a first page of 200 (no filter)", || {
        list(AgentQuery::default(), Visibility::All)
    });
    Ok(())
}
