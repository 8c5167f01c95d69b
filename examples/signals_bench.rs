//! Revoke → SET received, measured: `cargo run --release --example signals_bench`.
//!
//! A registry on loopback over a fresh SQLite file per case; 0, 1, 10 and 100 push receivers.
//! Each receiver is what it is in production: its own catalogued resource (`r000`…`r099`, one
//! scope each), authenticated with its own static secret, with one push stream to its own axum
//! server on loopback. Every revoked agent holds one scope of each of the 100 resources (in every
//! case, so that the revoke's own work is the same), so each revoke is one `session-revoked` SET
//! per receiver (a resource's stream carries only its own subjects). For each revoke it records the revoke's own latency (HTTP round trip) and the
//! time until every receiver has its SET. Prints p50/p99 in milliseconds.
//!
//! `--revokes N` (default 200) revokes per case.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use steward::model::Actor;
use steward::registry::store::CatalogueStore;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::{self, Server};

const RESOURCES: usize = 100;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn resource(i: usize) -> String {
    format!("r{i:03}")
}

fn catalogue() -> steward::model::catalogue::ImportCatalogue {
    let resources: Vec<serde_json::Value> = (0..RESOURCES)
        .map(|i| {
            let id = resource(i);
            json!({"id": id, "name": id, "audiences": [format!("https://{id}.example.com")],
                   "scopes": [{"name": format!("{id}:read"), "tier": "low"}]})
        })
        .collect();
    steward::model::catalogue::ImportCatalogue {
        resources: serde_json::from_value(json!(resources)).unwrap(),
    }
}

struct Case {
    revoke: Vec<f64>,
    delivered: Vec<f64>,
    streams: usize,
}

async fn run(receivers: usize, revokes: usize) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let store = registry::open_store(&db, OpenMode::CreateIfMissing).unwrap();
    let (_, admin) =
        registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Admin", "b").unwrap();
    store
        .import_catalogue(&Actor::system("bench"), &catalogue())
        .unwrap();
    let server = Server::bind("127.0.0.1:0", store, "bench").await.unwrap();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth = format!("Bearer {}", admin.token);
    let got = Arc::new(AtomicUsize::new(0));
    for i in 0..receivers {
        // The resource's own credential: the receiver authenticates as itself.
        let id = resource(i);
        let v: serde_json::Value = http
            .post(format!("{base}/v1/resources/{id}/credentials"))
            .header("authorization", &auth)
            .json(&json!({"kind": "static-secret", "label": "ssf"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = v["secret"].as_str().expect("a resource secret");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        );
        let g = got.clone();
        let app = axum::Router::new().route(
            "/e",
            axum::routing::post(move |_b: String| {
                let g = g.clone();
                async move {
                    g.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::ACCEPTED
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/e", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        let r = http
            .post(format!("{base}/ssf/streams"))
            .header("authorization", &basic)
            .json(
                &json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url},
                          "events_requested": [steward::model::signals::SESSION_REVOKED]}),
            )
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, 201, "{}", r.text().await.unwrap_or_default());
    }
    // Every case's agents hold the same 100 scopes: the cases differ only in their streams.
    let scopes: Vec<String> = (0..RESOURCES)
        .map(|i| format!("{}:read", resource(i)))
        .collect();
    let mut ids = Vec::new();
    for i in 0..revokes {
        let r = http
            .post(format!("{base}/v1/agents"))
            .header("authorization", &auth)
            .json(&json!({"name": format!("a{i}"), "owner": "admin@example.com", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let r: serde_json::Value = r.json().await.unwrap();
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    let list: serde_json::Value = http
        .get(format!("{base}/v1/streams"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let streams = list["streams"].as_array().map_or(0, |s| s.len());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut revoke, mut delivered) = (Vec::new(), Vec::new());
    for id in ids {
        let before = got.load(Ordering::SeqCst);
        let t = Instant::now();
        let r = http
            .post(format!("{base}/v1/agents/{id}/revoke"))
            .header("authorization", &auth)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        revoke.push(t.elapsed().as_secs_f64() * 1000.0);
        if receivers > 0 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while got.load(Ordering::SeqCst) < before + receivers {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {receivers} receivers got the SET within 10 s",
                    got.load(Ordering::SeqCst) - before
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            delivered.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    // Every SET arrived exactly once per receiver (no duplicates slipped in late).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.load(Ordering::SeqCst), revoke.len() * receivers);
    Case {
        revoke,
        delivered,
        streams,
    }
}

#[tokio::main]
async fn main() {
    let mut revokes = 200usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--revokes" => revokes = args.next().and_then(|v| v.parse().ok()).unwrap_or(revokes),
            other => panic!("unknown argument {other} (--revokes N)"),
        }
    }
    println!(
        "{revokes} revokes per case, one at a time; each receiver its own catalogued resource and \
         credential; milliseconds (p50 / p99)"
    );
    for n in [0usize, 1, 10, 100] {
        let mut c = run(n, revokes).await;
        let line = format!(
            "{n:>3} receivers ({:>3} streams): revoke round trip {:6.2} / {:6.2}",
            c.streams,
            pct(&mut c.revoke, 0.5),
            pct(&mut c.revoke, 0.99)
        );
        if n == 0 {
            println!("{line}");
        } else {
            println!(
                "{line}   revoke → SET at every receiver {:6.2} / {:6.2}",
                pct(&mut c.delivered, 0.5),
                pct(&mut c.delivered, 0.99)
            );
        }
    }
}
