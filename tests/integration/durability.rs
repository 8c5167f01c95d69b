//! Crash safety: SIGKILL the real `steward server` in the middle of a stream of writes, start it
//! again on the same database, and find every acknowledged write present and the audit chain
//! intact.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{Binary, call, create_admin_with_binary, http_client};

/// Writes each client may attempt before giving up (it should be stopped by the kill long before).
const MAX_WRITES_PER_CLIENT: usize = 5_000;
/// Acknowledged writes to wait for before pulling the plug.
const KILL_AFTER_ACKS: usize = 60;
const CLIENTS: usize = 3;
/// Scopes `crm.orders-N:read` in the catalogue the test imports (grants come only from it).
const CATALOGUED_SCOPES: usize = 5;

#[derive(Debug, Clone)]
enum Ack {
    Registered { id: String, name: String },
    Granted { id: String, scope: String },
}

/// How one client's stream ended.
#[derive(Debug)]
enum End {
    /// The server stopped answering (what the kill does).
    ServerGone,
    /// The client ran out of writes before the kill: the test did not kill mid-stream.
    Exhausted,
    /// Told to stop (only after the kill).
    Stopped,
}

/// Registers agents and grants them a scope, one after another, recording every write the
/// server acknowledged. Stops at the first call that gets no answer.
async fn write_stream(
    url: String,
    token: String,
    client: usize,
    acks: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
) -> End {
    let http = http_client();
    for i in 0..MAX_WRITES_PER_CLIENT {
        if stop.load(Ordering::Relaxed) {
            return End::Stopped;
        }
        let name = format!("durable-{client}-{i}");
        let reply = match try_call(
            &http,
            &url,
            "POST",
            "/v1/agents",
            &token,
            json!({"name": name}),
        )
        .await
        {
            Some(r) => r,
            None => return End::ServerGone,
        };
        assert_eq!(reply.0, 201, "register: {}", reply.1);
        let id = reply.1["id"].as_str().unwrap().to_string();
        acks.lock().unwrap().push(Ack::Registered {
            id: id.clone(),
            name,
        });
        let scope = format!("crm.orders-{}:read", (client + i) % CATALOGUED_SCOPES);
        match try_call(
            &http,
            &url,
            "POST",
            &format!("/v1/agents/{id}/grants"),
            &token,
            json!({"scope": scope}),
        )
        .await
        {
            Some((201, _)) => acks.lock().unwrap().push(Ack::Granted { id, scope }),
            Some(other) => panic!("grant: {other:?}"),
            None => return End::ServerGone,
        }
    }
    End::Exhausted
}

/// A call that may find the server gone: `None` when there was no complete answer.
async fn try_call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> Option<(u16, serde_json::Value)> {
    let response = http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{url}{path}"),
        )
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.ok()?;
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steward.db");
    let admin = create_admin_with_binary(&db, "admin@example.com");
    let server = Binary::start(&db);
    let scopes: Vec<_> = (0..CATALOGUED_SCOPES)
        .map(|n| json!({"name": format!("crm.orders-{n}:read"), "tier": "low"}))
        .collect();
    let imported = call(
        &http_client(),
        &server.url,
        "PUT",
        "/v1/resources",
        Some(&admin.token),
        Some(
            &json!({"resources": [{"id": "crm", "name": "CRM", "owner": null, "scopes": scopes}]}),
        ),
    )
    .await;
    assert_eq!(imported.status, 200, "import the catalogue: {imported:?}");

    let acks = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            tokio::spawn(write_stream(
                server.url.clone(),
                admin.token.clone(),
                client,
                acks.clone(),
                stop.clone(),
            ))
        })
        .collect();

    // Wait (bounded) until enough writes are acknowledged, then kill while they keep coming.
    for _ in 0..6_000 {
        if acks.lock().unwrap().len() >= KILL_AFTER_ACKS {
            break;
        }
        assert!(
            writers.iter().all(|w| !w.is_finished()),
            "a writer stopped before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        acks.lock().unwrap().len() >= KILL_AFTER_ACKS,
        "the writers never got going"
    );
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let mut ends = Vec::new();
    for w in writers {
        ends.push(
            tokio::time::timeout(support::CALL_TIMEOUT * 2, w)
                .await
                .expect("the writers end after the kill")
                .expect("a writer panicked"),
        );
    }
    assert!(
        ends.iter().all(|e| !matches!(e, End::Exhausted)),
        "the kill came after a writer had finished: {ends:?}"
    );
    assert!(
        ends.iter().any(|e| matches!(e, End::ServerGone)),
        "no write was in flight when the server died: {ends:?}"
    );
    let acks = acks.lock().unwrap().clone();

    // Restart on the same file and look for every acknowledged write.
    let server = Binary::start(&db);
    let http = http_client();
    let token = Some(admin.token.as_str());
    let mut missing = Vec::new();
    for ack in &acks {
        match ack {
            Ack::Registered { id, name } => {
                let reply = call(
                    &http,
                    &server.url,
                    "GET",
                    &format!("/v1/agents/{id}"),
                    token,
                    None,
                )
                .await;
                if reply.status != 200 || reply.body["name"] != json!(name) {
                    missing.push(format!("agent {id} ({name}): {reply:?}"));
                }
            }
            Ack::Granted { id, scope } => {
                let reply = call(
                    &http,
                    &server.url,
                    "GET",
                    &format!("/v1/agents/{id}"),
                    token,
                    None,
                )
                .await;
                let held = reply.body["grants"]
                    .as_array()
                    .is_some_and(|g| g.iter().any(|g| g["scope"] == json!(scope)));
                if !held {
                    missing.push(format!("grant {scope} on {id}: {reply:?}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes are missing after the crash:\n{}",
        missing.len(),
        acks.len(),
        missing.join("\n")
    );

    let verified = call(&http, &server.url, "GET", "/v1/audit/verify", token, None).await;
    let verified = verified.expect(200);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    // Each acknowledged write has its audit event (register and grant events, plus the two
    // written by create-admin).
    let events = verified["events_checked"].as_u64().unwrap();
    assert!(
        events >= acks.len() as u64 + 2,
        "{events} audit events for {} acknowledged writes",
        acks.len()
    );
    let registered = acks
        .iter()
        .filter(|a| matches!(a, Ack::Registered { .. }))
        .count();
    let audit = call(
        &http,
        &server.url,
        "GET",
        "/v1/audit?action=agent.register&limit=5000",
        token,
        None,
    )
    .await;
    let logged = audit.expect(200)["events"].as_array().unwrap().len();
    assert!(
        logged >= registered,
        "{logged} register events for {registered} acknowledged registrations"
    );

    // The restarted registry takes writes again.
    let reply = call(
        &http,
        &server.url,
        "POST",
        "/v1/agents",
        token,
        Some(&json!({"name": "after the crash"})),
    )
    .await;
    reply.expect(201);
    server.kill();
}
