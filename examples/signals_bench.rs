//! Revoke → SET received, measured: `cargo run --release --example signals_bench`.
//!
//! A registry on loopback over a fresh SQLite file; 1, 10 and 100 push receivers (admin streams
//! to axum servers on loopback). For each revoke it records the revoke's own latency (HTTP
//! round trip) and the time until every receiver has the SET; then the revoke latency with no
//! receiver at all. Prints p50/p99 in milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use steward::model::Actor;
use steward::registry::store::CatalogueStore;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::{self, Server};

const REVOKES: usize = 100;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(receivers: usize) -> (Vec<f64>, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let store = registry::open_store(&db, OpenMode::CreateIfMissing).unwrap();
    let (_, admin) =
        registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Admin", "b").unwrap();
    let catalogue = steward::model::catalogue::ImportCatalogue {
        resources: serde_json::from_value(json!([{"id": "crm", "name": "CRM",
            "audiences": ["https://crm.example.com"],
            "scopes": [{"name": "crm:read", "tier": "low"}]}]))
        .unwrap(),
    };
    store
        .import_catalogue(&Actor::system("bench"), &catalogue)
        .unwrap();
    let server = Server::bind("127.0.0.1:0", store, "bench").await.unwrap();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth = format!("Bearer {}", admin.token);
    let got = Arc::new(AtomicUsize::new(0));
    for _ in 0..receivers {
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
            .header("authorization", &auth)
            .json(&json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let mut ids = Vec::new();
    for i in 0..REVOKES {
        let r: serde_json::Value = http.post(format!("{base}/v1/agents")).header("authorization", &auth)
            .json(&json!({"name": format!("a{i}"), "owner": "admin@example.com", "scopes": ["crm:read"]}))
            .send().await.unwrap().json().await.unwrap();
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
            while got.load(Ordering::SeqCst) < before + receivers && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            delivered.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    (revoke, delivered)
}

#[tokio::main]
async fn main() {
    println!("{REVOKES} revokes each; milliseconds (p50 / p99)");
    let (mut base, _) = run(0).await;
    println!(
        "revoke latency, no receivers:      {:7.2} / {:7.2}",
        pct(&mut base, 0.5),
        pct(&mut base, 0.99)
    );
    for n in [1usize, 10, 100] {
        let (mut revoke, mut delivered) = run(n).await;
        println!(
            "{n:>3} receivers: revoke {:7.2} / {:7.2}   revoke → SET at every receiver {:7.2} / {:7.2}",
            pct(&mut revoke, 0.5),
            pct(&mut revoke, 0.99),
            pct(&mut delivered, 0.5),
            pct(&mut delivered, 0.99)
        );
    }
}
