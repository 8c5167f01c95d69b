//! Tampering with the stored audit log is evident: after the server stops, someone with the
//! database file drops the append-only triggers and edits, forges or deletes an event; the
//! verification (in the store and over HTTP) names the first broken event.

use crate::support;

use std::path::Path;

use serde_json::{Value, json};
use steward::model::audit::event_hash;
use steward::model::{Actor, AuditEvent};
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use support::{Registry, Stopped, call, http_client, open_sql, serve};

/// A registry with some history; returns the stopped database, the admin's token and the
/// sequence number of a revocation event in the middle of the log.
async fn history() -> (Stopped, String, i64) {
    let reg = Registry::launch(support::Launch::new().sqlite_only()).await;
    let mut middle = 0;
    for i in 0..4 {
        let id = reg
            .register(
                &format!("tampered-{i}"),
                Some(&reg.owner.email),
                &["crm.orders:read"],
            )
            .await;
        let revoked = reg
            .post(
                &format!("/v1/agents/{id}/revoke"),
                &reg.responder,
                json!({"reason": format!("INC-{i}")}),
            )
            .await;
        if i == 1 {
            middle = revoked.expect(200)["audit_seq"].as_i64().unwrap();
        }
    }
    let token = reg.admin.token.clone();
    let total = reg.audit_count();
    assert!(middle > 1 && middle < total, "the event is in the middle");
    (reg.stop().await, token, middle)
}

/// Verifies the chain through the store, as `steward audit verify` on the server does.
fn verify_store(db: &Path) -> steward::model::api::AuditVerification {
    let store = steward::registry::open_store(db, OpenMode::MustExist).expect("open the store");
    store.audit_verify().expect("verification runs")
}

/// Verifies the chain over HTTP on a registry started again over the same file.
async fn verify_http(db: &Path, token: &str) -> Value {
    let store = steward::registry::open_store(db, OpenMode::MustExist).unwrap();
    let (url, shutdown, server) = serve(store).await;
    let reply = call(
        &http_client(),
        &url,
        "GET",
        "/v1/audit/verify",
        Some(token),
        None,
    )
    .await;
    let _ = shutdown.send(());
    server.await.unwrap().unwrap();
    reply.expect(200).clone()
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

#[tokio::test]
async fn the_log_is_append_only_and_intact_before_tampering() {
    let (stopped, token, seq) = history().await;
    let conn = open_sql(&stopped.db);
    for sql in [
        "UPDATE audit_events SET reason = 'x' WHERE seq = ?1",
        "DELETE FROM audit_events WHERE seq = ?1",
    ] {
        let err = conn.execute(sql, [seq]).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    drop(conn);
    let verified = verify_store(&stopped.db);
    assert!(verified.ok, "{verified:?}");
    assert!(verified.first_broken.is_none());
    assert_eq!(verify_http(&stopped.db, &token).await["ok"], json!(true));
}

#[tokio::test]
async fn an_edited_reason_is_named() {
    let (stopped, token, seq) = history().await;
    let conn = open_sql(&stopped.db);
    assert_eq!(stored_event(&conn, seq).reason.as_deref(), Some("INC-1"));
    conn.execute_batch("DROP TRIGGER audit_no_update").unwrap();
    let changed = conn
        .execute(
            "UPDATE audit_events SET reason = 'routine maintenance' WHERE seq = ?1",
            [seq],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let verified = verify_store(&stopped.db);
    assert!(!verified.ok, "{verified:?}");
    let broken = verified.first_broken.expect("a broken link");
    assert_eq!(broken.seq, seq, "{broken:?}");
    assert!(broken.problem.contains("altered"), "{broken:?}");
    assert_eq!(
        verified.events_checked,
        (seq - 1) as u64,
        "every event before it held"
    );

    let over_http = verify_http(&stopped.db, &token).await;
    assert_eq!(over_http["ok"], json!(false));
    assert_eq!(over_http["first_broken"]["seq"], json!(seq));
}

#[tokio::test]
async fn a_forged_event_with_a_recomputed_hash_breaks_the_next_link() {
    let (stopped, _token, seq) = history().await;
    let conn = open_sql(&stopped.db);
    // The forger knows the hash function and makes the edited event consistent with itself;
    // the next event still links to the original hash.
    let mut event = stored_event(&conn, seq);
    event.reason = Some("routine maintenance".into());
    let forged = event_hash(
        event.seq,
        &event.time,
        &event.actor,
        &event.action,
        event.target.as_deref(),
        &event.outcome,
        event.reason.as_deref(),
        &event.details,
        &event.prev_hash,
    );
    conn.execute_batch("DROP TRIGGER audit_no_update").unwrap();
    conn.execute(
        "UPDATE audit_events SET reason = ?1, hash = ?2 WHERE seq = ?3",
        rusqlite::params![event.reason, forged, seq],
    )
    .unwrap();
    drop(conn);

    let verified = verify_store(&stopped.db);
    assert!(!verified.ok);
    let broken = verified.first_broken.expect("a broken link");
    assert_eq!(broken.seq, seq + 1, "{broken:?}");
    assert!(broken.problem.contains("prev_hash"), "{broken:?}");
}

#[tokio::test]
async fn a_deleted_event_in_the_middle_is_named() {
    let (stopped, token, seq) = history().await;
    let conn = open_sql(&stopped.db);
    conn.execute_batch("DROP TRIGGER audit_no_delete").unwrap();
    assert_eq!(
        conn.execute("DELETE FROM audit_events WHERE seq = ?1", [seq])
            .unwrap(),
        1
    );
    drop(conn);

    let verified = verify_store(&stopped.db);
    assert!(!verified.ok, "{verified:?}");
    let broken = verified.first_broken.expect("a broken link");
    assert_eq!(
        broken.seq,
        seq + 1,
        "the event after the gap is named: {broken:?}"
    );
    assert!(
        broken
            .problem
            .contains(&format!("jumps from {} to {}", seq - 1, seq + 1)),
        "{broken:?}"
    );

    let over_http = verify_http(&stopped.db, &token).await;
    assert_eq!(over_http["ok"], json!(false));
    assert_eq!(over_http["first_broken"]["seq"], json!(seq + 1));
}
