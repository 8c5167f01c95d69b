//! Token service benchmark: prints figures, asserts nothing about speed.
//!
//!     cargo run --release --example token_bench -- [--exchanges N] [--introspections N]
//!         [--concurrency N] [--revoke-tokens N] [--bad-assertions N] [--no-behaviour]
//!         [--db postgres://USER@HOST/EMPTY_DB [--replicas N] [--revoke-samples N]]
//!
//! `--db` runs the registry on that (empty) PostgreSQL database instead of a SQLite file; the
//! CPU figures then add the PostgreSQL server's processes (every process named `postgres` on
//! this machine) to this one's.
//!
//! `--replicas N` (with `--db`) serves N registry replicas over that one database, each with
//! its own store (pool, live-token index, follower connection) and HTTP port, sharing one issuer
//! as behind a load balancer; the exchanges go to the replicas in turn. It then measures, over
//! `--revoke-samples` agents, the time from a revoke answered by replica 1 to introspection on
//! replica 2 reading the agent's token inactive (p50/p99), and skips the single-registry parts.
//!
//! `--no-behaviour` runs the registry without the activity record and detectors (registry/
//! behaviour), for comparing exchanges/s with detection on (the default) and off.
//!
//! A real registry on 127.0.0.1:0 over a SQLite file in a temporary folder (WAL, synchronous
//! FULL), driven over HTTP by a client in the same process, so client and server share the
//! machine's cores. Measures:
//! - token exchanges per second, each durably recorded (group commit) before it is answered;
//! - introspections per second over HTTP (a person's API token authenticates each call), and
//!   in process (the live index alone);
//! - the time from an agent revoke to every one of its N live tokens reading inactive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::{self, Server};

struct Options {
    exchanges: usize,
    introspections: usize,
    concurrency: usize,
    revoke_tokens: usize,
    bad_assertions: usize,
    no_behaviour: bool,
    db: Option<String>,
    replicas: usize,
    revoke_samples: usize,
}

fn options() -> Options {
    let mut o = Options {
        exchanges: 20_000,
        introspections: 100_000,
        concurrency: 64,
        revoke_tokens: 10_000,
        bad_assertions: 2_000,
        no_behaviour: false,
        db: None,
        replicas: 1,
        revoke_samples: 200,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--no-behaviour" {
            o.no_behaviour = true;
            i += 1;
            continue;
        }
        if args[i] == "--db" {
            o.db = args.get(i + 1).cloned();
            i += 2;
            continue;
        }
        let value = args.get(i + 1).and_then(|v| v.parse().ok());
        match (args[i].as_str(), value) {
            ("--exchanges", Some(v)) => o.exchanges = v,
            ("--introspections", Some(v)) => o.introspections = v,
            ("--concurrency", Some(v)) => o.concurrency = v,
            ("--revoke-tokens", Some(v)) => o.revoke_tokens = v,
            ("--bad-assertions", Some(v)) => o.bad_assertions = v,
            ("--replicas", Some(v)) if v >= 1 => o.replicas = v,
            ("--revoke-samples", Some(v)) => o.revoke_samples = v,
            (other, _) => {
                eprintln!("unknown or incomplete option {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    if o.replicas > 1 && o.db.is_none() {
        eprintln!("--replicas needs --db postgres://…: replicas share a PostgreSQL database");
        std::process::exit(2);
    }
    o
}

/// CPU seconds used (user + system) by this process and, when the registry runs on PostgreSQL,
/// by every `postgres` process of the machine, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let mut total = process_cpu("/proc/self/stat");
    if POSTGRES.get().copied().unwrap_or(false) {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let stat = entry.path().join("stat");
            let text = std::fs::read_to_string(&stat).unwrap_or_default();
            if text.contains("(postgres)") {
                total += process_cpu(&stat.to_string_lossy());
            }
        }
    }
    total
}

static POSTGRES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn process_cpu(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// An agent's signed assertion, built with ed25519-dalek directly.
fn assertion(key: &SigningKey, agent: &str, aud: &str, n: usize) -> String {
    let now = chrono::Utc::now().timestamp();
    let header = B64.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let claims = B64.encode(
        json!({"iss": agent, "sub": agent, "aud": aud, "iat": now, "exp": now + 290,
               "jti": format!("bench-{agent}-{n}")})
        .to_string(),
    );
    let input = format!("{header}.{claims}");
    let sig = B64.encode(key.sign(input.as_bytes()).to_bytes());
    format!("{input}.{sig}")
}

/// Runs `jobs` through `concurrency` workers; returns the results and the elapsed time.
async fn run_all<T, F, Fut>(jobs: Vec<T>, concurrency: usize, f: F) -> (Vec<Value>, Duration)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Value> + Send,
{
    let queue = Arc::new(std::sync::Mutex::new(jobs));
    let f = Arc::new(f);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (queue, f) = (queue.clone(), f.clone());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let job = queue.lock().unwrap().pop();
                match job {
                    Some(job) => out.push(f(job).await),
                    None => return out,
                }
            }
        }));
    }
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.unwrap());
    }
    (results, started.elapsed())
}

async fn post_json(http: &reqwest::Client, url: String, bearer: &str, body: Value) -> Value {
    let resp = http
        .post(url)
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

async fn register_agent(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
) -> (String, SigningKey) {
    let agent = post_json(
        http,
        format!("{base}/v1/agents"),
        admin,
        json!({"name": name, "owner": "admin@example.com", "scopes": ["crm.orders:read", "mail:send"]}),
    )
    .await;
    let id = agent["id"].as_str().unwrap().to_string();
    let key = SigningKey::from_bytes(&rand_seed());
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
    post_json(
        http,
        format!("{base}/v1/agents/{id}/credentials"),
        admin,
        json!({"kind": "public-key", "public_key": jwk.to_string()}),
    )
    .await;
    (id, key)
}

fn rand_seed() -> [u8; 32] {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    seed
}

/// Exchanges the subject token once per prepared assertion, at the token endpoints in turn;
/// returns the tokens and the time.
async fn exchanges(
    http: &reqwest::Client,
    endpoints: &[String],
    subject: &str,
    assertions: Vec<String>,
    concurrency: usize,
) -> (Vec<String>, Duration, usize) {
    let (http, endpoints, subject) = (http.clone(), endpoints.to_vec(), subject.to_string());
    let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (results, elapsed) = run_all(assertions, concurrency, move |a| {
        let n = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (http, endpoint, subject) = (
            http.clone(),
            endpoints[n % endpoints.len()].clone(),
            subject.clone(),
        );
        async move {
            let resp = http
                .post(&endpoint)
                .form(&[
                    ("grant_type", GRANT_TOKEN_EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", TOKEN_TYPE_ACCESS),
                    ("actor_token", &a),
                    ("actor_token_type", TOKEN_TYPE_JWT),
                    ("scope", "crm.orders:read"),
                    ("audience", "https://crm.example.com"),
                ])
                .send()
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        }
    })
    .await;
    let failures = results
        .iter()
        .filter(|v| v["access_token"].is_null())
        .count();
    if let Some(first) = results.iter().find(|v| v["access_token"].is_null()) {
        eprintln!("first refused exchange: {first}");
    }
    let tokens = results
        .into_iter()
        .filter_map(|v| v["access_token"].as_str().map(str::to_string))
        .collect();
    (tokens, elapsed, failures)
}

/// Replicas: the time from a revoke answered by the first replica to introspection on the
/// second reading the agent's token inactive, over `--revoke-samples` agents.
async fn revoke_across_replicas(
    o: &Options,
    http: &reqwest::Client,
    bases: &[String],
    services: &[Arc<steward::registry::tokens::TokenService>],
    admin: &str,
    subject: &str,
    aud: &str,
) {
    let mut after_answer = Vec::new();
    let mut after_sent = Vec::new();
    let mut before_answer = 0;
    for n in 0..o.revoke_samples {
        let (victim, key) = register_agent(http, &bases[0], admin, &format!("victim-{n}")).await;
        let first = [format!("{}/oauth/token", bases[0])];
        let a = assertion(&key, &victim, aud, 9_000_000 + n);
        let (tokens, _, _) = exchanges(http, &first, subject, vec![a], 1).await;
        let token = tokens.into_iter().next().expect("the victim's token");
        // The second replica knows the token first (its notice travels like the revoke's).
        let known = Instant::now();
        while !services[1].introspect(&token).active {
            assert!(known.elapsed() < Duration::from_secs(10), "never known");
            tokio::task::yield_now().await;
        }
        let observer = {
            let (service, token) = (services[1].clone(), token.clone());
            std::thread::spawn(move || {
                while service.introspect(&token).active {
                    std::thread::yield_now();
                }
                Instant::now()
            })
        };
        let sent = Instant::now();
        post_json(
            http,
            format!("{}/v1/agents/{victim}/revoke", bases[0]),
            admin,
            json!({"reason": "benchmark"}),
        )
        .await;
        let answered = Instant::now();
        let inactive = observer.join().unwrap();
        if inactive < answered {
            before_answer += 1;
        }
        after_answer.push(inactive.saturating_duration_since(answered));
        after_sent.push(inactive.duration_since(sent));
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    };
    println!(
        "revoke on replica 1 -> inactive at introspection on replica 2, {} agents: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms after the revoke's answer \
         ({before_answer} seen inactive before the answer arrived); from the request sent: \
         p50 {:.2} ms, p99 {:.2} ms",
        after_answer.len(),
        pct(&mut after_answer, 0.50),
        pct(&mut after_answer, 0.99),
        pct(&mut after_answer, 1.0),
        pct(&mut after_sent, 0.50),
        pct(&mut after_sent, 0.99),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options();
    let dir = tempfile::tempdir()?;
    let db = match &o.db {
        Some(url) => std::path::PathBuf::from(url),
        None => dir.path().join("bench.db"),
    };
    POSTGRES.get_or_init(|| o.db.is_some());
    println!(
        "store: {}",
        if o.db.is_some() {
            "PostgreSQL"
        } else {
            "SQLite (WAL, synchronous FULL)"
        }
    );
    let store = registry::open_store(&db, OpenMode::CreateIfMissing)?;
    let (_, admin) = registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Admin", "b")?;
    let admin = admin.token;
    // Only catalogued scopes are granted: the CRM and mail, low tier (granted at once).
    let catalogue: steward::model::catalogue::ImportCatalogue = serde_json::from_value(json!({
        "resources": [
            {"id": "crm", "name": "CRM", "owner": null, "audiences": ["https://crm.example.com"],
             "scopes": [{"name": "crm.orders:read", "tier": "low"}]},
            {"id": "mail", "name": "Mail", "owner": null, "audiences": ["https://mail.example.com"],
             "scopes": [{"name": "mail:send", "tier": "low"}]}
        ]
    }))?;
    steward::registry::store::CatalogueStore::import_catalogue(
        store.as_ref(),
        &steward::model::Actor::system("token-bench"),
        &catalogue,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    // One registry, or `--replicas` over one database sharing an issuer (a load balancer's URL).
    let settings = steward::registry::tokens::TokenSettings {
        issuer: (o.replicas > 1).then(|| "http://replicas.bench.invalid".to_string()),
        ..Default::default()
    };
    let mut bases = Vec::new();
    let mut services = Vec::new();
    for replica in 0..o.replicas {
        let replica_store = if replica == 0 {
            store.clone()
        } else {
            registry::open_store(&db, OpenMode::MustExist)?
        };
        let server = Server::bind_with("127.0.0.1:0", replica_store, "bench", &settings)
            .await?
            .with_behaviour(steward::registry::behaviour::BehaviourSettings {
                enabled: !o.no_behaviour,
                ..Default::default()
            });
        bases.push(format!("http://{}", server.local_addr()));
        services.push(server.tokens().clone());
        tokio::spawn(server.serve(std::future::pending()));
    }
    println!(
        "behaviour (activity record + detectors): {}; replicas: {}",
        if o.no_behaviour { "off" } else { "on" },
        o.replicas
    );
    let base = bases[0].clone();
    let tokens_service = services[0].clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    // What assertions name as their audience, and where exchanges are sent (in turn).
    let endpoint = format!(
        "{}/oauth/token",
        settings.issuer.clone().unwrap_or_else(|| base.clone())
    );
    let endpoints: Vec<String> = bases.iter().map(|b| format!("{b}/oauth/token")).collect();

    println!(
        "machine: {} cores, load average {} at the start; {}; client and server in one process",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        if o.db.is_some() {
            "PostgreSQL on this machine (fsync on, synchronous_commit on)"
        } else {
            "SQLite WAL, synchronous=FULL"
        }
    );

    let (agent, key) = register_agent(&http, &base, &admin, "bench-agent").await;
    let subject = post_json(
        &http,
        format!("{base}/v1/me/access-token"),
        &admin,
        json!({"ttl_seconds": 3600}),
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Warm up connections and caches.
    let warm: Vec<String> = (0..200)
        .map(|n| assertion(&key, &agent, &endpoint, n))
        .collect();
    exchanges(&http, &endpoints, &subject, warm, o.concurrency).await;

    // 1. Exchanges, each durably recorded before its answer.
    let prepared: Vec<String> = (0..o.exchanges)
        .map(|n| assertion(&key, &agent, &endpoint, 1_000_000 + n))
        .collect();
    let recorded_before = store.exchanges_since(&agent, 0)?;
    let cpu_before = cpu_seconds();
    let (issued, elapsed, failures) =
        exchanges(&http, &endpoints, &subject, prepared, o.concurrency).await;
    let cpu = cpu_seconds() - cpu_before;
    let recorded = store.exchanges_since(&agent, 0)? - recorded_before;
    let exchange_rate = issued.len() as f64 / elapsed.as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    println!(
        "exchanges: {} in {:.2} s = {:.0}/s ({} refused; {} recorded durably; concurrency {}); \
         {:.0} µs of CPU each, client included: {:.0}/s if this process had the {cores} cores to itself",
        issued.len(),
        elapsed.as_secs_f64(),
        exchange_rate,
        failures,
        recorded,
        o.concurrency,
        cpu / issued.len().max(1) as f64 * 1e6,
        issued.len() as f64 * cores / cpu.max(1e-9),
    );

    let usage = store.facts_cache_usage();
    println!(
        "token facts' in-memory copy: {} agent(s), {} B each; {} person(s), {} B each \
         (approximate: entries, keys and their strings)",
        usage.agents,
        usage.agent_bytes / usage.agents.max(1),
        usage.people,
        usage.people_bytes / usage.people.max(1),
    );

    if o.replicas > 1 {
        revoke_across_replicas(&o, &http, &bases, &services, &admin, &subject, &endpoint).await;
        println!("load average at the end: {}", load_average());
        return Ok(());
    }

    // 2. Introspection over HTTP, authenticated by the admin's API token.
    let sample: Vec<String> = (0..o.introspections)
        .map(|i| issued[i % issued.len()].clone())
        .collect();
    let (http2, url, bearer) = (
        http.clone(),
        format!("{base}/oauth/introspect"),
        admin.clone(),
    );
    let cpu_before = cpu_seconds();
    let (answers, elapsed) = run_all(sample, o.concurrency, move |t| {
        let (http, url, bearer) = (http2.clone(), url.clone(), bearer.clone());
        async move {
            http.post(&url)
                .bearer_auth(&bearer)
                .form(&[("token", t.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    })
    .await;
    let cpu = cpu_seconds() - cpu_before;
    let active = answers.iter().filter(|a| a["active"] == true).count();
    println!(
        "introspections over HTTP: {} in {:.2} s = {:.0}/s ({} active); {:.0} µs of CPU each, \
         client included: {:.0}/s if this process had the {cores} cores to itself",
        answers.len(),
        elapsed.as_secs_f64(),
        answers.len() as f64 / elapsed.as_secs_f64(),
        active,
        cpu / answers.len().max(1) as f64 * 1e6,
        answers.len() as f64 * cores / cpu.max(1e-9),
    );
    let started = Instant::now();
    let mut active = 0;
    let rounds = (o.introspections * 10).max(10_000);
    for i in 0..rounds {
        active += tokens_service.introspect(&issued[i % issued.len()]).active as usize;
    }
    let elapsed = started.elapsed();
    println!(
        "introspections in process (live index, one core): {:.0}/s ({active} of {rounds} active)",
        rounds as f64 / elapsed.as_secs_f64()
    );

    // 3. Revoke an agent with N live tokens; time until every one reads inactive.
    let (victim, victim_key) = register_agent(&http, &base, &admin, "victim").await;
    let prepared: Vec<String> = (0..o.revoke_tokens)
        .map(|n| assertion(&victim_key, &victim, &endpoint, n))
        .collect();
    let (victim_tokens, _, _) =
        exchanges(&http, &endpoints, &subject, prepared, o.concurrency).await;
    let live_before = tokens_service
        .live()
        .issued_to(&victim, chrono::Utc::now().timestamp())
        .len();
    // An observer thread introspects the most recently issued token in a loop and notes when it
    // turns inactive (an agent's tokens are revoked together, under one lock).
    let watched = victim_tokens.last().cloned().unwrap_or_default();
    let started = Instant::now();
    let observer = {
        let service = tokens_service.clone();
        std::thread::spawn(move || {
            while service.introspect(&watched).active {
                std::thread::yield_now();
            }
            Instant::now()
        })
    };
    let outcome = post_json(
        &http,
        format!("{base}/v1/agents/{victim}/revoke"),
        &admin,
        json!({"reason": "benchmark"}),
    )
    .await;
    let round_trip = started.elapsed();
    let inactive_after = observer.join().unwrap().duration_since(started);
    let still_active = victim_tokens
        .iter()
        .filter(|t| tokens_service.introspect(t).active)
        .count();
    println!(
        "revoke: {} live tokens -> {} revoked; inactive {:.1} ms after the call was sent; the call \
         returned after {:.1} ms ({:.1} ms in the registry, including the durable commit of all \
         {} records); {} still active afterwards",
        live_before,
        outcome["tokens_revoked"],
        inactive_after.as_secs_f64() * 1000.0,
        round_trip.as_secs_f64() * 1000.0,
        outcome["elapsed_ms"].as_f64().unwrap_or(0.0),
        outcome["tokens_revoked"],
        still_active,
    );

    // The same inside the registry, without HTTP: from the store's revoke call to inactive.
    let (victim, victim_key) = register_agent(&http, &base, &admin, "victim-2").await;
    let prepared: Vec<String> = (0..o.revoke_tokens)
        .map(|n| assertion(&victim_key, &victim, &endpoint, n))
        .collect();
    let (victim_tokens, _, _) =
        exchanges(&http, &endpoints, &subject, prepared, o.concurrency).await;
    let watched = victim_tokens.last().cloned().unwrap_or_default();
    let started = Instant::now();
    let observer = {
        let service = tokens_service.clone();
        std::thread::spawn(move || {
            while service.introspect(&watched).active {
                std::thread::yield_now();
            }
            Instant::now()
        })
    };
    let revoked = {
        let store = store.clone();
        let victim = victim.clone();
        tokio::task::spawn_blocking(move || {
            store.revoke_agent(
                &steward::model::Actor::system("bench"),
                &victim,
                None,
                &|_| Ok(()),
            )
        })
        .await??
    };
    let committed = started.elapsed();
    let inactive_after = observer.join().unwrap().duration_since(started);
    println!(
        "revoke in process: {} tokens revoked; inactive {:.1} ms after the store call began; \
         committed after {:.1} ms",
        revoked.tokens_revoked,
        inactive_after.as_secs_f64() * 1000.0,
        committed.as_secs_f64() * 1000.0
    );
    // 4. What a bad assertion costs: an agent with ten enabled keys, an assertion without a
    //    kid signed by none of them (every key is tried), checked in process (over HTTP the
    //    failed-authentication limiter answers 429 after a few).
    let (ring, ring_key) = register_agent(&http, &base, &admin, "keyring").await;
    let mut last_key = ring_key;
    for _ in 1..10 {
        let key = SigningKey::from_bytes(&rand_seed());
        let jwk = json!({"kty": "OKP", "crv": "Ed25519",
                         "x": B64.encode(key.verifying_key().as_bytes())});
        post_json(
            &http,
            format!("{base}/v1/agents/{ring}/credentials"),
            &admin,
            json!({"kind": "public-key", "public_key": jwk.to_string()}),
        )
        .await;
        last_key = key;
    }
    let stranger = SigningKey::from_bytes(&rand_seed());
    let rounds = o.bad_assertions.max(1);
    let bad: Vec<String> = (0..rounds)
        .map(|n| assertion(&stranger, &ring, &endpoint, 5_000_000 + n))
        .collect();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut refused = 0;
    for a in &bad {
        refused += tokens_service
            .authenticate_assertion(a, &[endpoint.as_str()])
            .await
            .is_err() as usize;
    }
    let bad_wall = started.elapsed().as_secs_f64() / rounds as f64;
    let bad_cpu = (cpu_seconds() - cpu_before) / rounds as f64;
    // The newest key signs: without a kid it is tried last of the ten.
    let good: Vec<String> = (0..rounds)
        .map(|n| assertion(&last_key, &ring, &endpoint, 6_000_000 + n))
        .collect();
    let started = Instant::now();
    let mut accepted = 0;
    for a in &good {
        accepted += tokens_service
            .authenticate_assertion(a, &[endpoint.as_str()])
            .await
            .is_ok() as usize;
    }
    let good_wall = started.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "assertion without kid, agent with 10 enabled keys: a bad one costs {:.0} µs \
         ({:.0} µs of CPU; {refused} of {rounds} refused); a good one signed by the last key \
         {:.0} µs ({accepted} accepted); in process, one at a time",
        bad_wall * 1e6,
        bad_cpu * 1e6,
        good_wall * 1e6,
    );
    println!("load average at the end: {}", load_average());

    println!(
        "comparison: Keycloak's sizing guide budgets about 120 client-credential grants/s per vCPU \
         ({:.0}/s on {cores} vCPUs); Steward did {exchange_rate:.0} exchanges/s here, {:.1}x, with \
         the client sharing the same cores",
        120.0 * cores,
        exchange_rate / (120.0 * cores)
    );
    Ok(())
}
