//! Witnessed heads make the audit tail impossible to cut quietly: `steward audit verify`
//! records the head it saw (in the data dir), and a later verify of a chain that no longer
//! extends it — the last 25 events deleted, the table wiped, an event rewritten and the chain
//! re-linked after it — fails and names the range. The registry's signed head file does the
//! same for a machine that never ran verify. Repeated no-op revocations add no events.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use steward::model::audit::event_hash;
use steward::model::{Actor, AuditEvent};
use support::{Registry, Stopped, open_sql, steward_exe};

/// `steward audit verify --db DB [--witness FILE]` with its own data dir; (ok, stdout, stderr).
fn verify(data: &Path, db: &Path, witness: Option<&Path>) -> (bool, String, String) {
    let mut cmd = Command::new(steward_exe());
    cmd.args(["audit", "verify", "--db"])
        .arg(db)
        .env("XDG_DATA_HOME", data)
        .env_remove("STEWARD_SERVER")
        .env_remove("STEWARD_TOKEN");
    if let Some(w) = witness {
        cmd.arg("--witness").arg(w);
    }
    let out = cmd.output().expect("run steward audit verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Adds `n` events or more (agents registered and revoked).
async fn grow(reg: &Registry, n: usize) {
    for i in 0..n.div_ceil(2) {
        let id = reg
            .register(
                &format!("w-{}", rand_suffix(i)),
                Some(&reg.owner.email),
                &[],
            )
            .await;
        reg.post(
            &format!("/v1/agents/{id}/revoke"),
            &reg.responder,
            json!({}),
        )
        .await
        .expect(200);
    }
}

fn rand_suffix(i: usize) -> String {
    format!(
        "{i}-{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )
}

fn head(db: &Path) -> i64 {
    open_sql(db)
        .query_row("SELECT max(seq) FROM audit_events", [], |r| r.get(0))
        .unwrap()
}

async fn history(events: usize) -> Stopped {
    let reg = Registry::launch(support::Launch::new().sqlite_only()).await;
    grow(&reg, events).await;
    reg.stop().await
}

fn stored_event(conn: &rusqlite::Connection, seq: i64) -> AuditEvent {
    conn.query_row(
        "SELECT seq, time, actor, action, target, outcome, reason, details, prev_hash, hash
         FROM audit_events WHERE seq = ?1",
        [seq],
        |r| {
            Ok(AuditEvent {
                seq: r.get(0)?,
                time: r.get(1)?,
                actor: serde_json::from_str::<Actor>(&r.get::<_, String>(2)?).unwrap(),
                action: r.get(3)?,
                target: r.get(4)?,
                outcome: r.get(5)?,
                reason: r.get(6)?,
                details: serde_json::from_str(&r.get::<_, String>(7)?).unwrap(),
                prev_hash: r.get(8)?,
                hash: r.get(9)?,
            })
        },
    )
    .unwrap()
}

/// Rewrites event `seq`'s reason and re-links every event after it, as a forger who knows the
/// hash function would: the chain itself verifies again.
fn rewrite_and_rechain(db: &Path, seq: i64) {
    let conn = open_sql(db);
    conn.execute_batch("DROP TRIGGER audit_no_update").unwrap();
    let last = head(db);
    let mut prev = stored_event(&conn, seq).prev_hash;
    for s in seq..=last {
        let mut e = stored_event(&conn, s);
        if s == seq {
            e.reason = Some("routine maintenance".into());
        }
        let hash = event_hash(
            e.seq,
            &e.time,
            &e.actor,
            &e.action,
            e.target.as_deref(),
            &e.outcome,
            e.reason.as_deref(),
            &e.details,
            &prev,
        );
        conn.execute(
            "UPDATE audit_events SET reason = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![e.reason, prev, hash, s],
        )
        .unwrap();
        prev = hash;
    }
}

#[tokio::test]
async fn deleting_the_last_25_events_fails_verify_and_names_them() {
    let stopped = history(40).await;
    let data = stopped.dir.path().join("data");
    let n = head(&stopped.db);
    let (ok, _, err) = verify(&data, &stopped.db, None);
    assert!(ok, "{err}");

    let conn = open_sql(&stopped.db);
    conn.execute_batch("DROP TRIGGER audit_no_delete").unwrap();
    conn.execute("DELETE FROM audit_events WHERE seq > ?1", [n - 25])
        .unwrap();
    drop(conn);
    let (ok, out, err) = verify(&data, &stopped.db, None);
    assert!(!ok, "a cut tail passed: {out}");
    assert!(
        err.contains(&format!("events #{}..#{n} are missing", n - 24)),
        "{err}"
    );
}

#[tokio::test]
async fn wiping_the_table_fails_verify() {
    let stopped = history(6).await;
    let data = stopped.dir.path().join("data");
    let n = head(&stopped.db);
    assert!(verify(&data, &stopped.db, None).0);
    let conn = open_sql(&stopped.db);
    conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit_events;")
        .unwrap();
    drop(conn);
    let (ok, _, err) = verify(&data, &stopped.db, None);
    assert!(!ok);
    assert!(
        err.contains(&format!("events #1..#{n} are missing")),
        "{err}"
    );
    assert!(err.contains("empty"), "{err}");
}

#[tokio::test]
async fn rewriting_and_rechaining_an_event_fails_verify_and_names_the_range() {
    // Two heads witnessed: after the first history and after more of it.
    let reg = Registry::launch(support::Launch::new().sqlite_only()).await;
    grow(&reg, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = reg.audit_count();
    assert!(verify(&data, &reg.db, None).0);
    grow(&reg, 6).await;
    let stopped = reg.stop().await;
    let n = head(&stopped.db);
    assert!(verify(&data, &stopped.db, None).0);

    rewrite_and_rechain(&stopped.db, first + 2);
    // The chain alone is consistent again: only the witness can tell.
    let store = steward::registry::open_store(
        &stopped.db,
        steward::registry::store::sqlite::OpenMode::MustExist,
    )
    .unwrap();
    assert!(
        steward::registry::store::AuditStore::audit_verify(store.as_ref())
            .unwrap()
            .ok
    );
    drop(store);
    let (ok, _, err) = verify(&data, &stopped.db, None);
    assert!(!ok, "a re-chained rewrite passed");
    assert!(
        err.contains(&format!("events #{}..#{n} were rewritten", first + 1)),
        "{err}"
    );
}

#[tokio::test]
async fn the_registrys_signed_head_file_catches_a_cut_tail_on_a_fresh_machine() {
    let reg = Registry::launch(support::Launch::new().sqlite_only()).await;
    grow(&reg, 30).await;
    let file = reg.dir().join("witness.jsonl");
    let signed = steward::registry::witness::sign_head(reg.store.as_ref(), &reg.url).unwrap();
    steward::registry::witness::append_head(&file, &signed).unwrap();
    let stopped = reg.stop().await;
    let n = head(&stopped.db);
    assert_eq!(signed.seq, n);
    // A machine that never verified before: only the signed file pins the head.
    let fresh = stopped.dir.path().join("fresh-data");
    let (ok, _, err) = verify(&fresh, &stopped.db, Some(&file));
    assert!(ok, "{err}");

    let conn = open_sql(&stopped.db);
    conn.execute_batch("DROP TRIGGER audit_no_delete").unwrap();
    conn.execute("DELETE FROM audit_events WHERE seq > ?1", [n - 25])
        .unwrap();
    drop(conn);
    let other = stopped.dir.path().join("other-data");
    let (ok, _, err) = verify(&other, &stopped.db, Some(&file));
    assert!(!ok);
    assert!(
        err.contains(&format!("events #{}..#{n} are missing", n - 24)),
        "{err}"
    );

    // A forged line (a head the registry never signed) is refused as such.
    let mut forged = signed.clone();
    forged.seq = n - 25;
    std::fs::write(
        &file,
        format!("{}\n", serde_json::to_string(&forged).unwrap()),
    )
    .unwrap();
    let (ok, _, err) = verify(&other, &stopped.db, Some(&file));
    assert!(!ok);
    assert!(err.contains("signature does not verify"), "{err}");
}

#[tokio::test]
async fn repeated_no_op_revocations_add_no_audit_events() {
    let reg = Registry::launch(support::Launch::new().sqlite_only()).await;
    let id = reg.register("quiet", Some(&reg.owner.email), &[]).await;
    reg.post(
        &format!("/v1/agents/{id}/revoke"),
        &reg.responder,
        json!({}),
    )
    .await
    .expect(200);
    let issued = reg
        .post("/v1/me/tokens", &reg.owner, json!({"name": "spare"}))
        .await;
    let token_id = issued.expect(201)["id"].as_str().unwrap().to_string();
    reg.call(
        "DELETE",
        &format!("/v1/me/tokens/{token_id}"),
        Some(&reg.owner.token),
        None,
    )
    .await
    .expect(204);
    let events = reg.audit_count();
    for _ in 0..3 {
        reg.post(
            &format!("/v1/agents/{id}/revoke"),
            &reg.responder,
            json!({}),
        )
        .await
        .expect(200);
        let again = reg
            .call(
                "DELETE",
                &format!("/v1/me/tokens/{token_id}"),
                Some(&reg.owner.token),
                None,
            )
            .await;
        assert!(again.status < 300, "{again:?}");
    }
    assert_eq!(reg.audit_count(), events);
}

#[tokio::test]
async fn the_server_appends_signed_heads_and_posts_them_to_the_webhook() {
    use std::sync::{Arc, Mutex};
    // A webhook receiver on a loopback port.
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let app = axum::Router::new().route(
        "/heads",
        axum::routing::post({
            let received = received.clone();
            move |axum::Json(v): axum::Json<serde_json::Value>| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push(v);
                    "ok"
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/heads", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steward.db");
    support::create_admin_with_binary(&db, "admin@example.com");
    let file = dir.path().join("heads.jsonl");
    let server = support::Binary::start_with(
        &db,
        &[
            "--audit-witness",
            file.to_str().unwrap(),
            "--audit-witness-url",
            &hook,
        ],
    );
    let deadline = std::time::Instant::now() + support::CALL_TIMEOUT;
    while received.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no head was POSTed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.kill();
    let text = std::fs::read_to_string(&file).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line, received.lock().unwrap()[0]);
    assert_eq!(line["seq"].as_i64(), Some(head(&db)));
    // And the file checks out against the database.
    let (ok, _, err) = verify(&dir.path().join("data"), &db, Some(&file));
    assert!(ok, "{err}");
}
