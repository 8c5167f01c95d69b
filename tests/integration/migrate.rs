//! `steward server migrate --from sqlite:PATH --to postgres://…` (issue 14 item 9): a registry
//! copied from its SQLite file into PostgreSQL serves the same people, agents, grants, tokens and
//! audit chain; a copy into a database that holds a registry, or of a damaged chain, is refused
//! and writes nothing. Needs a PostgreSQL server (`STEWARD_TEST_POSTGRES`, which `.ci/run` sets);
//! without one these tests say so and end.

use serde_json::json;

use crate::support::{self, Launch, Registry, call, http_client, run_steward};

/// `steward server migrate --from FROM --to TO`, run to completion.
fn migrate(from: &str, to: &str) -> std::process::Output {
    run_steward(&["server", "migrate", "--from", from, "--to", to])
}

fn postgres() -> bool {
    let there = support::postgres::admin_url().is_some();
    if !there {
        eprintln!("no STEWARD_TEST_POSTGRES: the migration tests need a PostgreSQL server");
    }
    there
}

/// A small registry on SQLite with a revoked agent, a live one with a grant, a second person
/// and an audit log; stopped. Returns its file, the admin's API token and the two agents' ids.
async fn sqlite_registry() -> (support::Stopped, String, String, String) {
    let reg = Registry::launch(Launch::new().sqlite_only()).await;
    let live = reg
        .register("copied-live", Some(&reg.owner.email), &["crm.orders:read"])
        .await;
    let braked = reg
        .register(
            "copied-braked",
            Some(&reg.owner.email),
            &["crm.orders:read"],
        )
        .await;
    reg.post(
        &format!("/v1/agents/{braked}/revoke"),
        &reg.responder,
        json!({"reason": "INC-7"}),
    )
    .await
    .expect(200);
    let admin = reg.admin.token.clone();
    (reg.stop().await, admin, live, braked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_registry_copied_to_postgres_serves_the_same_state() {
    if !postgres() {
        return;
    }
    let (stopped, admin, live, braked) = sqlite_registry().await;
    let source = stopped.db.to_string_lossy().to_string();
    let url = support::postgres::fresh_database().expect("a test database");
    let out = migrate(&format!("sqlite:{source}"), &url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("audit chain intact on both sides"),
        "{stdout}"
    );

    // The copy serves: the admin's API token, the agents as they were, the same chain.
    let served = Launch {
        database: Some(url.clone()),
        ..Launch::new()
    }
    .serve()
    .await;
    let http = http_client();
    let get = |path: String| {
        let (http, base, admin) = (http.clone(), served.url.clone(), admin.clone());
        async move { call(&http, &base, "GET", &path, Some(&admin), None).await }
    };
    let agent = get(format!("/v1/agents/{live}")).await;
    assert_eq!(agent.expect(200)["status"], "active");
    assert_eq!(agent.body["name"], "copied-live");
    let stopped_agent = get(format!("/v1/agents/{braked}")).await;
    assert_eq!(stopped_agent.expect(200)["status"], "suspended");
    let source_sql = support::Sql::File(support::open_sql(&stopped.db));
    let (seq, hash): (i64, String) = source_sql
        .query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let verified = get("/v1/audit/verify".into()).await;
    let verified = verified.expect(200);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["head_seq"], seq);
    assert_eq!(verified["head_hash"], hash);
    // And it goes on: a new change appends to the copied chain.
    let (status, _) = {
        let r = call(
            &http,
            &served.url,
            "POST",
            &format!("/v1/agents/{live}/revoke"),
            Some(&admin),
            Some(&json!({"reason": "after the move"})),
        )
        .await;
        (r.status, r.body)
    };
    assert_eq!(status, 200);
    let again = get("/v1/audit/verify".into()).await;
    assert_eq!(again.expect(200)["ok"], true);
    assert!(again.body["head_seq"].as_i64().unwrap() > seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_a_database_that_holds_a_registry_is_refused_and_changes_nothing() {
    if !postgres() {
        return;
    }
    let (stopped, _, _, _) = sqlite_registry().await;
    let url = support::postgres::fresh_database().expect("a test database");
    // The target already holds a registry (its own first admin).
    let target = Launch {
        database: Some(url.clone()),
        ..Launch::new()
    }
    .serve()
    .await;
    let before = support::snapshot(&support::store_sql(&target.store));
    let out = migrate(&stopped.db.to_string_lossy(), &url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("already holds a registry"), "{stderr}");
    assert_eq!(
        support::snapshot(&support::store_sql(&target.store)),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_chain_is_not_copied() {
    if !postgres() {
        return;
    }
    let (stopped, _, _, _) = sqlite_registry().await;
    let conn = support::open_sql(&stopped.db);
    conn.execute_batch(
        "DROP TRIGGER audit_no_update;
         UPDATE audit_events SET reason = 'rewritten' WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);
    let url = support::postgres::fresh_database().expect("a test database");
    let out = migrate(&stopped.db.to_string_lossy(), &url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("does not verify"), "{stderr}");
    // Nothing reached the target: it is still an empty, migrated database.
    let target = support::sql_at(std::path::Path::new(&url));
    let rows: i64 = target
        .query_row(
            "SELECT (SELECT count(*) FROM people) + (SELECT count(*) FROM audit_events)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
}
