//! Shared Signals across replicas over one PostgreSQL database (issue 14 item 8): two real
//! `steward server` processes on one schema, one push receiver. Only the replica holding the
//! delivery lock pushes; a revoke on either arrives exactly once; when the delivering replica
//! is killed with SIGKILL the other takes over and still delivers each event once; a long poll
//! on the replica that does not deliver is answered. Needs `STEWARD_TEST_POSTGRES`; without it
//! the test says so and ends.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use steward::model::Actor;
use steward::model::signals::{POLL, PUSH, SESSION_REVOKED};
use steward::registry;
use steward::registry::store::CatalogueStore;
use steward::registry::store::sqlite::OpenMode;

use super::{WAIT, agent_of, event, receiver};

/// The delivery lock's key before it is mixed with the schema (`store/pg_signals.rs`).
const DELIVERY_LOCK: i64 = 0x7374_6577_6172_6453;
use crate::support;

#[derive(Clone)]
struct Caller {
    http: reqwest::Client,
    auth: String,
}

impl Caller {
    async fn call(&self, base: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header("authorization", &self.auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, base: &str, method: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.call(base, method, path, body).await;
        assert!((200..300).contains(&s), "{method} {base}{path}: {s} {v}");
        v
    }

    async fn delivers(&self, base: &str) -> bool {
        let v = self.ok(base, "GET", "/healthz", Value::Null).await;
        v["delivers_signals"]
            .as_bool()
            .expect("/healthz says whether this replica delivers")
    }

    async fn agent(&self, base: &str, name: &str) -> String {
        let v = self
            .ok(
                base,
                "POST",
                "/v1/agents",
                json!({"name": name, "owner": "admin@example.com", "scopes": ["crm:read"]}),
            )
            .await;
        v["id"].as_str().unwrap().to_string()
    }

    async fn revoke(&self, base: &str, agent: &str) {
        self.ok(
            base,
            "POST",
            &format!("/v1/agents/{agent}/revoke"),
            json!({}),
        )
        .await;
    }
}

/// Waits (bounded) until exactly one of the replicas says it delivers; never both at once.
async fn the_delivering_one(c: &Caller, replicas: &[&str]) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut delivering = Vec::new();
        for (i, base) in replicas.iter().enumerate() {
            if c.delivers(base).await {
                delivering.push(i);
            }
        }
        assert!(delivering.len() <= 1, "two replicas deliver at once");
        if let [one] = delivering[..] {
            return one;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica took the delivery lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// How many `session-revoked` SETs the receiver got per agent (verification SETs aside).
fn per_agent(sets: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for set in sets {
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(set)
            .unwrap()
            .claims;
        if event(&claims).0 == VERIFICATION {
            continue;
        }
        assert_eq!(event(&claims).0, SESSION_REVOKED, "{claims}");
        *out.entry(agent_of(&claims).expect("an agent subject"))
            .or_insert(0) += 1;
    }
    out
}

#[tokio::test]
async fn one_replica_delivers_each_event_once_and_another_takes_over_after_sigkill() {
    let Some(url) = support::postgres::fresh_database() else {
        eprintln!("no STEWARD_TEST_POSTGRES: this test needs a PostgreSQL server");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let admin = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let store = registry::open_store(Path::new(&url), OpenMode::CreateIfMissing).unwrap();
            let (_, admin) =
                registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Admin", "t")
                    .unwrap();
            store
                .import_catalogue(&Actor::system("test"), &support::test_catalogue())
                .unwrap();
            admin.token
        })
        .await
        .unwrap()
    };
    let c = Caller {
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        auth: format!("Bearer {admin}"),
    };
    let rx = receiver().await;
    let mut replicas = vec![
        support::Binary::start_on(OsStr::new(&url), &dir.path().join("a.stderr"), &[]),
        support::Binary::start_on(OsStr::new(&url), &dir.path().join("b.stderr"), &[]),
    ];
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let leader = the_delivering_one(&c, &[&urls[0], &urls[1]]).await;
    let (lead, follow) = (urls[leader].clone(), urls[1 - leader].clone());

    // Streams made on the replica that does not deliver: they are in the database.
    let v = c
        .ok(
            &follow,
            "POST",
            "/ssf/streams",
            json!({"delivery": {"method": PUSH, "endpoint_url": rx.url,
                                "authorization_header": "Bearer receiver-secret"}}),
        )
        .await;
    assert_eq!(v["delivery"]["method"], PUSH);
    let push = v["stream_id"].as_str().unwrap().to_string();
    // A verification asked of the replica that does not deliver is pushed by the other.
    let asked_at = Instant::now();
    let (s, e) = c
        .call(
            &follow,
            "POST",
            "/ssf/verify",
            json!({"stream_id": push, "state": "via-follower"}),
        )
        .await;
    assert_eq!(s, 204, "{e}");
    let sets = rx.wait_for(1).await;
    println!(
        "verification asked of the replica that does not deliver -> pushed: {} ms",
        asked_at.elapsed().as_millis()
    );
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&sets[0])
        .unwrap()
        .claims;
    assert_eq!(event(&claims).0, VERIFICATION);
    assert_eq!(event(&claims).1["state"], "via-follower");
    rx.got.lock().unwrap().clear();
    let v = c
        .ok(
            &follow,
            "POST",
            "/ssf/streams",
            json!({"delivery": {"method": POLL}}),
        )
        .await;
    let poll = format!("/ssf/poll/{}", v["stream_id"].as_str().unwrap());

    // A long poll waiting on the replica that does not deliver is answered when the one that
    // delivers fans a revoke (made here too) out.
    let first = c.agent(&follow, "first").await;
    let waiting = {
        let (c, follow, poll) = (c.clone(), follow.clone(), poll.clone());
        tokio::spawn(async move {
            c.call(
                &follow,
                "POST",
                &poll,
                json!({"maxEvents": 10, "returnImmediately": false}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let revoked_at = Instant::now();
    c.revoke(&follow, &first).await;
    let sets = rx.wait_for(1).await;
    println!(
        "revoke on the replica that does not deliver -> pushed by the other: {} ms",
        revoked_at.elapsed().as_millis()
    );
    assert_eq!(per_agent(&sets), BTreeMap::from([(first.clone(), 1)]));
    let (s, polled) = waiting.await.unwrap();
    assert_eq!(s, 200, "{polled}");
    let jtis: Vec<String> = polled["sets"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(jtis.len(), 1, "the long poll got the revoke: {polled}");
    // Acknowledged on the other replica: gone for both.
    c.ok(
        &lead,
        "POST",
        &poll,
        json!({"ack": jtis, "returnImmediately": true}),
    )
    .await;
    let v = c
        .ok(&follow, "POST", &poll, json!({"returnImmediately": true}))
        .await;
    assert_eq!(v["sets"], json!({}), "{v}");

    // Revokes on both replicas at once: each reaches the receiver exactly once.
    let mut agents = vec![first.clone()];
    for n in 0..8 {
        let base = if n % 2 == 0 { &lead } else { &follow };
        agents.push(c.agent(base, &format!("agent-{n}")).await);
    }
    let revokes: Vec<_> = agents[1..]
        .iter()
        .enumerate()
        .map(|(n, agent)| {
            let (c, agent) = (c.clone(), agent.clone());
            let base = if n % 2 == 0 {
                lead.clone()
            } else {
                follow.clone()
            };
            tokio::spawn(async move { c.revoke(&base, &agent).await })
        })
        .collect();
    for r in revokes {
        r.await.unwrap();
    }
    rx.wait_for(agents.len()).await;
    // Time for a second delivery, had anything been pushed twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = per_agent(&rx.got.lock().unwrap());
    let want: BTreeMap<String, usize> = agents.iter().map(|a| (a.clone(), 1)).collect();
    assert_eq!(got, want, "each revoke exactly once");

    // The delivering replica loses its lock connection but lives: it stops delivering, and one
    // of the two (it again, reconnected, or the other) takes the lock; still nothing twice.
    let schema = url
        .split("search_path%3D")
        .nth(1)
        .and_then(|rest| rest.split("%2C").next())
        .unwrap()
        .to_string();
    support::postgres::admin(
        &support::postgres::admin_url().unwrap(),
        &format!(
            "SELECT pg_terminate_backend(l.pid)
             FROM pg_locks l, (SELECT hashtextextended('{schema}', {DELIVERY_LOCK}) AS k) key
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.classid::bigint = (key.k >> 32) & 4294967295
               AND l.objid::bigint = key.k & 4294967295"
        ),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while c.delivers(&urls[leader]).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a replica whose lock connection was cut still says it delivers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And it says so in its log.
    let log = dir
        .path()
        .join(if leader == 0 { "a.stderr" } else { "b.stderr" });
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("this replica stops delivering")
    {
        assert!(tokio::time::Instant::now() < deadline, "nothing logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = the_delivering_one(&c, &[&urls[0], &urls[1]]).await;
    let (lead, follow) = (urls[leader].clone(), urls[1 - leader].clone());
    let cut = [
        c.agent(&lead, "cut-0").await,
        c.agent(&follow, "cut-1").await,
    ];
    c.revoke(&follow, &cut[0]).await;
    c.revoke(&lead, &cut[1]).await;
    agents.extend(cut);
    rx.wait_for(agents.len()).await;

    // The delivering replica dies with a SET it fanned out still queued (its receiver was
    // down); a revoke on the other replica comes after. The survivor takes the lock and
    // delivers both, each once.
    let queued = c.agent(&lead, "queued").await;
    let last = c.agent(&follow, "last").await;
    rx.up.store(false, Ordering::SeqCst);
    c.revoke(&lead, &queued).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = c
            .ok(&follow, "GET", &format!("/v1/streams/{push}"), Value::Null)
            .await;
        if v["pending"] == 1 && v["consecutive_failures"].as_u64() > Some(0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivering replica never tried the SET: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replicas.remove(leader).kill();
    let killed_at = Instant::now();
    rx.up.store(true, Ordering::SeqCst);
    c.revoke(&follow, &last).await;
    agents.extend([queued, last]);
    rx.wait_for(agents.len()).await;
    println!(
        "SIGKILL of the delivering replica -> its queued SET and the next revoke pushed by the \
         other: {} ms",
        killed_at.elapsed().as_millis()
    );
    assert!(c.delivers(&follow).await, "the survivor delivers now");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = per_agent(&rx.got.lock().unwrap());
    let want: BTreeMap<String, usize> = agents.iter().map(|a| (a.clone(), 1)).collect();
    assert_eq!(got, want, "each revoke exactly once, across the handover");
    assert!(rx.bad_requests.lock().unwrap().is_empty());
}
