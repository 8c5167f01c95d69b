//! What the PostgreSQL engine guarantees when two registry processes write to one database
//! (issue 14 items 5 and 6): their writes append to one audit chain that never forks, and a
//! console following the change feed while they write sees every change, without a gap.
//! Needs a PostgreSQL server (`STEWARD_TEST_POSTGRES`, which `.ci/run` sets); without one it
//! says so and ends.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use steward::model::Actor;
use steward::model::api::RegisterAgent;
use steward::registry::clock::Clock;
use steward::registry::store::prelude::*;
use steward::registry::store::{SqliteStore, Visibility};

use crate::support;

const WRITERS_PER_STORE: usize = 2;
const AGENTS_PER_WRITER: usize = 40;

#[test]
fn two_processes_on_one_database_write_one_chain_and_a_feed_without_gaps() {
    let Some(url) = support::postgres::fresh_database() else {
        eprintln!("no STEWARD_TEST_POSTGRES: this test needs a PostgreSQL server");
        return;
    };
    // Two stores on one database, as two replicas would hold (each with its own pool).
    let first = Arc::new(SqliteStore::connect_postgres(&url, Clock::system()).unwrap());
    let second = Arc::new(SqliteStore::connect_postgres(&url, Clock::system()).unwrap());
    let writing = Arc::new(AtomicBool::new(true));

    // A console's follower: small pages, while the writers write.
    let follower = {
        let store = Arc::clone(&second);
        let writing = Arc::clone(&writing);
        std::thread::spawn(move || {
            let mut cursor = 0;
            let mut seen = BTreeSet::new();
            loop {
                let done = !writing.load(Ordering::SeqCst);
                let feed = store.changes(cursor, 7, &Visibility::All).unwrap();
                assert!(feed.cursor >= cursor, "the cursor went back");
                for agent in &feed.agents {
                    seen.insert(agent.id.clone());
                }
                cursor = feed.cursor;
                // Done once the writers had finished before this read and it was the last page.
                if done && !feed.more {
                    return seen;
                }
            }
        })
    };

    let mut writers = Vec::new();
    for (s, store) in [&first, &second].into_iter().enumerate() {
        for w in 0..WRITERS_PER_STORE {
            let store = Arc::clone(store);
            writers.push(std::thread::spawn(move || {
                let actor = Actor::system("engine-test");
                (0..AGENTS_PER_WRITER)
                    .map(|n| {
                        // An audit-only write between two agents: it touches no counter, so
                        // only the write lock keeps two appends from reading the same head.
                        store
                            .record(
                                &actor,
                                "engine.test.note",
                                None,
                                serde_json::json!({"replica": s, "writer": w, "n": n}),
                            )
                            .unwrap();
                        store
                            .register_agent(
                                &actor,
                                &RegisterAgent {
                                    name: format!("replica-{s}-writer-{w}-agent-{n}"),
                                    description: String::new(),
                                    kind: steward::model::AgentKind::Agent,
                                    parent_id: None,
                                    owner: None,
                                    team: Some("platform".into()),
                                    environment: Some("prod".into()),
                                    scopes: vec![],
                                    source: None,
                                },
                            )
                            .unwrap()
                            .id
                    })
                    .collect::<Vec<String>>()
            }));
        }
    }
    let mut written = BTreeSet::new();
    for w in writers {
        written.extend(w.join().unwrap());
    }
    writing.store(false, Ordering::SeqCst);
    let seen = follower.join().unwrap();

    assert_eq!(written.len(), 2 * WRITERS_PER_STORE * AGENTS_PER_WRITER);
    let missed: Vec<_> = written.difference(&seen).collect();
    assert!(missed.is_empty(), "the feed skipped {missed:?}");
    let chain = first.audit_verify().unwrap();
    assert!(chain.ok, "{:?}", chain.first_broken);
    assert!(chain.events_checked as usize >= 2 * written.len());
    // Both processes read the same head.
    assert_eq!(second.audit_head().unwrap().seq, chain.head_seq);
}
