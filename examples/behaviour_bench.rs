//! Detector cost per event and baseline memory per agent: prints figures, asserts nothing.
//!
//!     cargo run --release --example behaviour_bench -- [--agents N]...
//!
//! For each agent count (default 100,000 and 1,000,000): teaches every agent 28 days of hourly
//! history through the engine's learning path, then times `Detectors::observe` over events
//! spread across the agents (accepted and refused, the same work the engine thread does per
//! event, without the store), and reports the baselines' bytes per agent (as counted by the
//! states themselves) and the process's resident memory growth.

use std::time::Instant;

use chrono::DateTime;
use steward::model::activity::{ActivityEvent, ActivityKind};
use steward::registry::behaviour::{DetectorSettings, Detectors};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut counts: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match (
            args[i].as_str(),
            args.get(i + 1).and_then(|v| v.parse().ok()),
        ) {
            ("--agents", Some(n)) => counts.push(n),
            (other, _) => {
                eprintln!("unknown or incomplete option {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    if counts.is_empty() {
        counts = vec![100_000, 1_000_000];
    }
    let now = chrono::Utc::now().timestamp();
    let this_hour = now.div_euclid(3600) * 3600;
    for n in counts {
        let before = rss_bytes();
        let mut d = Detectors::new(DetectorSettings {
            max_agents: n.max(1),
            ..DetectorSettings::default()
        });
        let ids: Vec<String> = (0..n).map(|i| format!("ag_{i:012x}")).collect();
        let started = Instant::now();
        for id in &ids {
            // 28 days, busy 08–18 UTC.
            for day in 1..=28 {
                for h in 8..18 {
                    let hour = this_hour - day * 86_400
                        + (h - this_hour.div_euclid(3600).rem_euclid(24)) * 3600;
                    d.learn_hour(id, hour, 5, 0);
                }
            }
            d.learn_item(id, "s:crm.orders:read", this_hour - 28 * 86_400);
            d.learn_item(id, "a:https://crm.example.com", this_hour - 28 * 86_400);
            d.learn_item(id, "p:ada@example.com", this_hour - 28 * 86_400);
        }
        let learn = started.elapsed();
        let after = rss_bytes();
        let counted = d.heap_bytes();
        // Events: mostly normal exchanges, 5 % refusals, over all agents.
        let events = 2_000_000usize;
        let template = ActivityEvent {
            at: DateTime::from_timestamp(now, 0).unwrap(),
            agent_id: String::new(),
            kind: ActivityKind::Exchange,
            accepted: true,
            reason: None,
            subject: Some("ada@example.com".into()),
            depth: 1,
            scopes: vec!["crm.orders:read".into()],
            audience: vec!["https://crm.example.com".into()],
            client_auth: Some("private_key_jwt".into()),
        };
        let mut batch: Vec<ActivityEvent> = (0..10_000)
            .map(|k| {
                let mut e = template.clone();
                e.agent_id = ids[(k * 7919) % n].clone();
                if k % 20 == 0 {
                    e.accepted = false;
                    e.reason = Some("invalid_client".into());
                }
                e
            })
            .collect();
        let started = Instant::now();
        let mut flags = 0usize;
        for round in 0..events / batch.len() {
            for (k, e) in batch.iter_mut().enumerate() {
                e.agent_id.clone_from(&ids[(round * 10_000 + k * 7919) % n]);
                flags += d.observe(e).len();
            }
        }
        let per_event = started.elapsed().as_nanos() as f64 / events as f64;
        println!(
            "{n:>9} agents: baseline {:.0} bytes/agent counted, {:.0} bytes/agent resident \
             ({:.0} MiB); learning 28 days {:.1} s; detectors {:.0} ns/event over {events} events \
             ({flags} detections)",
            counted as f64 / n as f64,
            after.saturating_sub(before) as f64 / n as f64,
            after.saturating_sub(before) as f64 / 1_048_576.0,
            learn.as_secs_f64(),
            per_event
        );
        drop(d);
    }
}
