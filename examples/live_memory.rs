//! Memory of the live token index (issue 14 item 12): prints bytes per live token, counted by
//! the allocator and from the process's resident set, at `--tokens N` (default 1,000,000).
//! Asserts nothing about size.
//!
//!     cargo run --release --example live_memory -- [--tokens N] [--agents N] [--people N]
//!
//! The tokens look like a busy registry's: each person holds a person token (minted with an
//! API token), and agents exchange it for tokens carrying one or two scopes for one audience,
//! a tenth of them by delegation, a tenth of them sub-agent hops.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use steward::registry::tokens::live::{LiveTokens, TokenKind, TokenRecord};
use steward::registry::tokens::new_jti;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let tokens = arg("--tokens", 1_000_000);
    let agents = arg("--agents", 10_000).max(2);
    let people = arg("--people", 2_000).max(1);
    let now = chrono::Utc::now().timestamp();
    let scopes = ["crm.orders:read", "mail:send", "wiki:read", "payments:read"];
    let audiences = [
        "https://crm.example.com",
        "https://mail.example.com",
        "https://wiki.example.com",
        "https://payments.example.com",
    ];

    // Records are made before measuring (what the index keeps is measured, not the input).
    let mut records = Vec::with_capacity(tokens);
    let mut person_tokens = Vec::with_capacity(people);
    for p in 0..people.min(tokens) {
        let jti = new_jti();
        person_tokens.push(jti.clone());
        records.push(TokenRecord {
            jti: jti.clone(),
            kind: TokenKind::Person,
            digest: Sha256::digest(jti.as_bytes()).into(),
            kid: "kid-2026-11".into(),
            subject: format!("person{p:05}@example.com"),
            client_id: None,
            actors: vec![],
            parent_jti: None,
            scopes: vec![],
            audience: vec!["https://steward.example.com".into()],
            may_act: None,
            subject_source: "api".into(),
            client_auth: None,
            credential_id: None,
            issued_at: now,
            expires_at: now + 3600,
            api_token_id: Some(format!("tok_{p:05}")),
            delegation_id: None,
        });
    }
    let mut last_exchange: Vec<Option<String>> = vec![None; agents];
    for i in records.len()..tokens {
        let p = i % people;
        let a = i % agents;
        let jti = new_jti();
        let s = i % scopes.len();
        let hop = i % 10 == 9 && last_exchange[(a + 1) % agents].is_some();
        let (parent, actors) = if hop {
            (
                last_exchange[(a + 1) % agents].clone().unwrap(),
                vec![format!("ag_{a:06}"), format!("ag_{:06}", (a + 1) % agents)],
            )
        } else {
            (person_tokens[p].clone(), vec![format!("ag_{a:06}")])
        };
        let mut granted = vec![scopes[s].to_string()];
        if i % 3 == 0 {
            granted.push(scopes[(s + 1) % scopes.len()].to_string());
        }
        records.push(TokenRecord {
            jti: jti.clone(),
            kind: TokenKind::Exchange,
            digest: Sha256::digest(jti.as_bytes()).into(),
            kid: "kid-2026-11".into(),
            subject: format!("person{p:05}@example.com"),
            client_id: Some(format!("ag_{a:06}")),
            actors,
            parent_jti: Some(parent),
            scopes: granted,
            audience: vec![audiences[s].to_string()],
            may_act: None,
            subject_source: if hop { "exchange" } else { "person-token" }.into(),
            client_auth: Some("private_key_jwt".into()),
            credential_id: Some(format!("cred_{a:06}")),
            issued_at: now,
            expires_at: now + 600,
            api_token_id: None,
            delegation_id: (i % 10 == 3).then(|| format!("dlg_{p:05}")),
        });
        if !hop {
            last_exchange[a] = Some(jti);
        }
    }

    let live = LiveTokens::new();
    let heap_before = ALLOCATED.load(Ordering::Relaxed);
    let rss_before = rss_bytes();
    let started = Instant::now();
    for r in &records {
        live.issue(r, now).expect("issued");
    }
    let took = started.elapsed();
    let heap = ALLOCATED.load(Ordering::Relaxed) - heap_before;
    let rss = rss_bytes() - rss_before;
    let n = live.len();
    println!(
        "live index: {n} tokens ({people} people, {agents} agents) inserted in {:.2} s \
         ({:.0} inserts/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    println!(
        "bytes per live token: {:.0} counted by the allocator ({:.1} MB), {:.0} by resident set \
         growth ({:.1} MB)",
        heap as f64 / n as f64,
        heap as f64 / 1e6,
        rss as f64 / n as f64,
        rss as f64 / 1e6
    );
    // The index answers as before: a sample of introspection lookups and one agent revoke.
    let started = Instant::now();
    let mut found = 0usize;
    for r in records.iter().step_by(7).take(200_000) {
        found += live.with_digest(&r.digest, |v| !v.revoked).unwrap_or(false) as usize;
    }
    println!(
        "lookups by digest: {found} live, {:.2} µs each",
        started.elapsed().as_secs_f64() * 1e6 / found.max(1) as f64
    );
    let started = Instant::now();
    let killed = live.revoke_agent("ag_000001", now);
    println!(
        "revoke of one agent: {} tokens killed in {:.2} ms",
        killed.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(records);
}
