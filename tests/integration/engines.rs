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

/// The follower alone (no token presented, so no read by digest): a record stored through one
/// store reaches the other's live index by its notice, and a revoke through the other reaches
/// the first; a person token's child dies with it on both.
#[test]
fn a_stored_token_and_its_revocation_reach_the_other_store_by_notice() {
    use steward::registry::tokens::live::{TokenKind, TokenRecord};
    let Some(url) = support::postgres::fresh_database() else {
        eprintln!("no STEWARD_TEST_POSTGRES: this test needs a PostgreSQL server");
        return;
    };
    let first = SqliteStore::connect_postgres(&url, Clock::system()).unwrap();
    let second = SqliteStore::connect_postgres(&url, Clock::system()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let record = |jti: &str, parent: Option<&str>| TokenRecord {
        jti: jti.into(),
        kind: if parent.is_some() {
            TokenKind::Exchange
        } else {
            TokenKind::Person
        },
        digest: sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(jti)).into(),
        kid: "k".into(),
        subject: "p@example.com".into(),
        client_id: parent.map(|_| "ag_x".to_string()),
        actors: parent.map(|_| vec!["ag_x".to_string()]).unwrap_or_default(),
        parent_jti: parent.map(str::to_string),
        scopes: vec![],
        audience: vec![],
        may_act: None,
        subject_source: "test".into(),
        client_auth: None,
        credential_id: None,
        issued_at: now,
        expires_at: now + 600,
        api_token_id: None,
        delegation_id: None,
    };
    let (person, child) = (
        record("tok-person", None),
        record("tok-child", Some("tok-person")),
    );
    first.live_tokens().issue(&person, now).unwrap();
    first.live_tokens().issue(&child, now).unwrap();
    first
        .record_tokens(&[person.clone(), child.clone()], &[])
        .unwrap();
    let state = |store: &SqliteStore, t: &TokenRecord| {
        store.live_tokens().with_digest(&t.digest, |v| v.revoked)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while state(&second, &child).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the notice never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(state(&second, &person), Some(false));
    assert_eq!(state(&second, &child), Some(false));
    // Revoked through the second store, which learnt of the token by notice only.
    assert_eq!(
        second
            .revoke_token(&Actor::system("engine-test"), "tok-person")
            .unwrap(),
        2
    );
    while state(&first, &child) != Some(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoke never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(state(&first, &person), Some(true));
}
