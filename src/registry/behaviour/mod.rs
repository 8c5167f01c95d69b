//! Behaviour: the activity record, per-agent baselines, detectors and flags.
//!
//! The request paths make one call, [`Behaviour::observe`], that pushes a compact event onto a
//! bounded in-memory queue and returns at once (never waits, never fails the request). One
//! engine thread takes the queue in batches: it runs the detectors on each event as it
//! arrives (constant work per event, see `detect.rs`), writes the batch (raw events + hourly
//! counts) in one transaction, opens a flag for each detection (with its evidence, audited, in
//! the change feed) and, when the server was started with `--auto-suspend SEVERITY`, revokes the
//! agent as the system with the flag as reason, unless the flag came only from refused or
//! unauthenticated requests. On start it rebuilds baselines from the stored hourly history.

pub mod detect;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::model::Actor;
use crate::model::activity::{ActivityEvent, ActivityKind, BaselineBand};
use crate::model::catalogue::Tier;
use crate::model::flag::{Evidence, Flag, Severity};
use crate::registry::store::flags::{HourDelta, NewFlag};
use crate::registry::store::{Store, StoreError};
pub use detect::{Detection, DetectorSettings, Detectors};

/// Events waiting for the engine; beyond this they are counted and dropped (never block).
const QUEUE: usize = 65_536;
/// Most events the engine takes in one batch.
const BATCH: usize = 4096;
/// Events more than this far in the future are clamped to the engine's clock (skew).
const MAX_SKEW_SECONDS: i64 = 300;

/// How behaviour is recorded and judged (server flags `--behaviour-*`, `--auto-suspend`).
#[derive(Debug, Clone)]
pub struct BehaviourSettings {
    /// Off: nothing is recorded or judged (`--no-behaviour`; for the bench's comparison).
    pub enabled: bool,
    pub detectors: DetectorSettings,
    /// Days raw events are kept.
    pub raw_retention_days: u32,
    /// Days hourly counts are kept.
    pub hourly_retention_days: u32,
    /// Revoke the agent when a flag of at least this severity opens (off by default).
    pub auto_suspend: Option<Severity>,
}

impl Default for BehaviourSettings {
    fn default() -> Self {
        BehaviourSettings {
            enabled: true,
            detectors: DetectorSettings::default(),
            raw_retention_days: 7,
            hourly_retention_days: 120,
            auto_suspend: None,
        }
    }
}

impl BehaviourSettings {
    pub fn check(&self) -> Result<(), String> {
        let d = &self.detectors;
        if !(1..=365).contains(&d.window_days) {
            return Err("the baseline window must be between 1 and 365 days".into());
        }
        if d.min_history_days > d.window_days {
            return Err("the history needed before judging cannot exceed the window".into());
        }
        if !(d.spike_factor >= 1.0 && d.spike_factor <= 1000.0) {
            return Err("the spike factor must be between 1 and 1000".into());
        }
        if d.burst_refusals < 2 {
            return Err("a refusal burst needs at least 2 refusals".into());
        }
        if self.raw_retention_days < 1 || self.hourly_retention_days < d.window_days {
            return Err(
                "raw events are kept at least 1 day and hourly counts at least the window".into(),
            );
        }
        Ok(())
    }
}

enum Msg {
    Event(Box<ActivityEvent>, Option<String>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Counters (for logs and the bench).
#[derive(Debug, Default)]
pub struct BehaviourStats {
    pub observed: AtomicU64,
    /// Dropped because the queue was full (counted, logged).
    pub dropped: AtomicU64,
    /// Events dated in the future beyond the allowed skew (clamped to now).
    pub skewed: AtomicU64,
    pub flags_opened: AtomicU64,
    /// Detections about agents the registry does not know (counted, not stored).
    pub unknown_agents: AtomicU64,
    pub auto_suspended: AtomicU64,
}

/// The running engine.
pub struct Behaviour {
    tx: Option<SyncSender<Msg>>,
    pub settings: BehaviourSettings,
    pub stats: Arc<BehaviourStats>,
    detectors: Arc<Mutex<Detectors>>,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour")
            .field("enabled", &self.settings.enabled)
            .finish_non_exhaustive()
    }
}

impl Behaviour {
    /// Starts the engine thread over `store` (a disabled engine starts nothing).
    pub fn start(store: Arc<dyn Store>, settings: BehaviourSettings) -> Arc<Behaviour> {
        let detectors = Arc::new(Mutex::new(Detectors::new(settings.detectors.clone())));
        let stats = Arc::new(BehaviourStats::default());
        let tx = if settings.enabled {
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
            let engine = Engine {
                store,
                settings: settings.clone(),
                stats: stats.clone(),
                detectors: detectors.clone(),
            };
            let spawned = std::thread::Builder::new()
                .name("steward-behaviour".into())
                .spawn(move || engine.run(rx));
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::error!(error = %e, "behaviour: cannot start the engine thread");
                    None
                }
            }
        } else {
            None
        };
        Arc::new(Behaviour {
            tx,
            settings,
            stats,
            detectors,
        })
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Records one event (and the agent's parent, for borrowing a baseline). Never blocks.
    pub fn observe(&self, event: ActivityEvent, parent: Option<String>) {
        let Some(tx) = &self.tx else { return };
        self.stats.observed.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(Msg::Event(Box::new(event), parent)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n + 1, "behaviour: the activity queue is full");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits until every event queued before this call is judged and stored (tests, the demo).
    pub fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = std::sync::mpsc::channel();
        if tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(120));
        }
    }

    /// The agent's baseline band at `now`.
    pub fn band(&self, agent: &str, now: i64) -> BaselineBand {
        self.detectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .band(agent, now)
    }

    /// Learns history without judging it (the demo's past; rebuilding).
    pub fn learn(&self, f: impl FnOnce(&mut Detectors)) {
        f(&mut self.detectors.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

struct Engine {
    store: Arc<dyn Store>,
    settings: BehaviourSettings,
    stats: Arc<BehaviourStats>,
    detectors: Arc<Mutex<Detectors>>,
}

impl Engine {
    fn run(self, rx: Receiver<Msg>) {
        self.rebuild();
        let mut last_prune = Instant::now() - Duration::from_secs(3600);
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.housekeeping(&mut last_prune);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut msgs = vec![first];
            while msgs.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
            self.batch(msgs);
            self.housekeeping(&mut last_prune);
        }
    }

    fn housekeeping(&self, last_prune: &mut Instant) {
        if last_prune.elapsed() < Duration::from_secs(60) {
            return;
        }
        *last_prune = Instant::now();
        let now = self.store.clock().unix();
        self.detectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sweep(now);
        let raw_before = now - self.settings.raw_retention_days as i64 * 86_400;
        let hours_before = now - self.settings.hourly_retention_days as i64 * 86_400;
        if let Err(e) = self.store.prune_activity(raw_before, hours_before) {
            tracing::warn!(error = %e, "behaviour: cannot prune old activity");
        }
    }

    /// Rebuilds baselines from the stored hourly history of the window.
    fn rebuild(&self) {
        let from =
            self.store.clock().unix() - (self.settings.detectors.window_days as i64 + 1) * 86_400;
        let mut d = self.detectors.lock().unwrap_or_else(|p| p.into_inner());
        let mut hours = 0u64;
        let mut items: Vec<(String, String, i64)> = Vec::new();
        let result = self.store.history_since(
            from,
            &mut |batch| {
                for h in batch {
                    d.learn_hour(&h.agent_id, h.hour, h.accepted, h.refused);
                    hours += 1;
                }
            },
            &mut |agent, item, at| items.push((agent.to_string(), item.to_string(), at)),
        );
        for (agent, item, at) in items {
            d.learn_item(&agent, &item, at);
        }
        match result {
            Ok(()) => tracing::info!(
                agents = d.agents(),
                hours,
                "behaviour: baselines rebuilt from history"
            ),
            Err(e) => tracing::error!(error = %e, "behaviour: cannot read activity history"),
        }
    }

    fn batch(&self, msgs: Vec<Msg>) {
        let now = self.store.clock().now();
        let mut events = Vec::with_capacity(msgs.len());
        let mut flushes = Vec::new();
        let mut found: Vec<Detection> = Vec::new();
        let mut hours: HashMap<(String, i64), HourDelta> = HashMap::new();
        {
            let mut d = self.detectors.lock().unwrap_or_else(|p| p.into_inner());
            for m in msgs {
                match m {
                    Msg::Flush(done) => flushes.push(done),
                    Msg::Event(mut e, parent) => {
                        if (e.at - now).num_seconds() > MAX_SKEW_SECONDS {
                            // Clock skew: judged and kept as happening now, counted.
                            self.stats.skewed.fetch_add(1, Ordering::Relaxed);
                            e.at = now;
                        }
                        if parent.is_some() {
                            d.set_parent(&e.agent_id, parent.as_deref(), e.at.timestamp());
                        }
                        found.extend(d.observe(&e));
                        if matches!(e.kind, ActivityKind::Introspection | ActivityKind::Revoke) {
                            // Raw events only: the hourly buckets (the baselines' and the
                            // sparkline's rate) count what the agent itself asked for.
                            events.push(*e);
                            continue;
                        }
                        let hour = e.at.timestamp().div_euclid(3600) * 3600;
                        let h =
                            hours
                                .entry((e.agent_id.clone(), hour))
                                .or_insert_with(|| HourDelta {
                                    agent_id: e.agent_id.clone(),
                                    hour,
                                    ..HourDelta::default()
                                });
                        if e.accepted {
                            h.accepted += 1;
                            for s in &e.scopes {
                                add_item(&mut h.items, format!("s:{s}"));
                            }
                            for a in &e.audience {
                                add_item(&mut h.items, format!("a:{a}"));
                            }
                        } else {
                            h.refused += 1;
                        }
                        events.push(*e);
                    }
                }
            }
        }
        let hours: Vec<HourDelta> = hours.into_values().collect();
        if let Err(e) = self.store.record_activity(&events, &hours) {
            tracing::error!(events = events.len(), error = %e, "behaviour: cannot store activity");
        }
        for detection in found {
            self.raise(detection);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }

    /// Opens the flag for a detection and applies the automatic response.
    fn raise(&self, d: Detection) {
        let mut severity = d.severity;
        if let Some(scope) = &d.scope {
            // A first use is as serious as the scope's tier.
            if let Ok(info) = self.store.scope_catalogue(std::slice::from_ref(scope))
                && let Some(info) = info.first()
            {
                severity = match info.tier {
                    Tier::Low => Severity::Low,
                    Tier::Medium => Severity::Medium,
                    Tier::High => Severity::High,
                    Tier::Critical => Severity::Critical,
                    Tier::Unclassified => severity,
                };
            }
        }
        let new = NewFlag {
            agent_id: d.agent_id.clone(),
            kind: d.kind,
            severity,
            key: d.key,
            summary: d.summary,
            evidence: Evidence {
                observed: d.observed,
                baseline: d.baseline,
                window_from: d.window_from,
                window_to: d.window_to,
                events: d.events,
            },
            refused_only: d.refused_only,
            at: d.window_to,
        };
        let flag = match self.store.open_flag(&new) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(StoreError::NotFound(_)) => {
                self.stats.unknown_agents.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, agent = %d.agent_id, "behaviour: cannot open a flag");
                return;
            }
        };
        self.stats.flags_opened.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(flag = %flag.id, agent = %flag.agent_id, kind = flag.kind.as_str(),
            severity = flag.severity.as_str(), "behaviour: flag opened");
        if auto_suspends(&self.settings, &flag) {
            self.suspend(&flag);
        }
    }

    fn suspend(&self, flag: &Flag) {
        let reason = format!(
            "automatic response to flag {} ({}, {}): {}",
            flag.id,
            flag.severity.as_str(),
            flag.kind.as_str(),
            flag.summary
        );
        let actor = Actor::system("steward-behaviour");
        match self
            .store
            .revoke_agent(&actor, &flag.agent_id, Some(&reason), &|_| Ok(()))
        {
            Ok(r) => {
                self.stats.auto_suspended.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = self.store.mark_auto_suspended(&flag.id) {
                    tracing::error!(error = %e, "behaviour: cannot mark the flag");
                }
                if r.changed {
                    // The suspension enters the activity record like any revoke: by the
                    // system, the flag as its reason (judged and stored by this engine's
                    // own batch path; revocations raise no flags, so this ends here).
                    let what = format!("suspended automatically: flag {}", flag.id);
                    let events = brake_events(
                        self.store.clock().now(),
                        &flag.agent_id,
                        &r.stopped,
                        &actor.id,
                        &what,
                    );
                    self.batch(
                        events
                            .into_iter()
                            .map(|e| Msg::Event(Box::new(e), None))
                            .collect(),
                    );
                }
                tracing::warn!(agent = %flag.agent_id, flag = %flag.id,
                    tokens_revoked = r.tokens_revoked, "behaviour: agent suspended automatically");
            }
            Err(e) => {
                tracing::error!(error = %e, agent = %flag.agent_id, "behaviour: automatic suspension failed")
            }
        }
    }
}

/// Whether a flag triggers the automatic response: a severity at or above the setting, and
/// never a flag raised only from refused or unauthenticated requests (anyone could send those
/// in any agent's name).
pub fn auto_suspends(settings: &BehaviourSettings, flag: &Flag) -> bool {
    settings
        .auto_suspend
        .is_some_and(|min| flag.severity >= min && !flag.refused_only)
}

fn add_item(items: &mut Vec<(String, u32)>, name: String) {
    match items.iter_mut().find(|(n, _)| *n == name) {
        Some((_, c)) => *c += 1,
        None => items.push((name, 1)),
    }
}

/// Builds an activity event (the request paths' one call goes through this).
#[allow(clippy::too_many_arguments)]
pub fn event(
    at: DateTime<Utc>,
    agent_id: &str,
    accepted: bool,
    reason: Option<&str>,
    subject: Option<&str>,
    depth: usize,
    scopes: &[String],
    audience: &[String],
    client_auth: Option<&str>,
) -> ActivityEvent {
    ActivityEvent {
        at,
        agent_id: agent_id.to_string(),
        kind: if depth >= 2 {
            ActivityKind::Hop
        } else {
            ActivityKind::Exchange
        },
        accepted,
        reason: reason.map(str::to_string),
        subject: subject.map(str::to_string),
        depth: depth.min(u8::MAX as usize) as u8,
        scopes: scopes.to_vec(),
        audience: audience.to_vec(),
        client_auth: client_auth.map(str::to_string),
    }
}

/// An introspection of one of `agent_id`'s tokens by a resource server: `active` is the answer
/// it got (false for a revoked or expired token: someone still presenting it).
pub fn introspection_event(
    at: DateTime<Utc>,
    agent_id: &str,
    active: bool,
    subject: &str,
    depth: usize,
    scopes: &[String],
    resource_audiences: &[String],
) -> ActivityEvent {
    ActivityEvent {
        kind: ActivityKind::Introspection,
        ..event(
            at,
            agent_id,
            active,
            (!active).then_some("inactive"),
            Some(subject),
            depth,
            scopes,
            resource_audiences,
            Some("resource"),
        )
    }
}

/// The agent was revoked (suspended) or decommissioned by `actor`, as the registry recorded it.
pub fn revoke_event(at: DateTime<Utc>, agent_id: &str, actor: &str, what: &str) -> ActivityEvent {
    ActivityEvent {
        kind: ActivityKind::Revoke,
        ..event(
            at,
            agent_id,
            true,
            Some(what),
            Some(actor),
            0,
            &[],
            &[],
            None,
        )
    }
}

/// The revoke events of one brake (a revoke stops the agent's whole tree): the target, and
/// every agent under it that the revoke acted on (suspended, a credential disabled or a token
/// killed: the agents the audit log names), each saying what was done and why.
pub fn brake_events(
    at: DateTime<Utc>,
    root: &str,
    stopped: &[crate::model::brake::StoppedAgent],
    actor: &str,
    what: &str,
) -> Vec<ActivityEvent> {
    stopped
        .iter()
        .filter(|s| {
            s.agent_id == root
                || s.previous_status != s.status
                || s.credentials_disabled > 0
                || s.tokens_killed > 0
        })
        .map(|s| {
            let what = if s.agent_id == root {
                what.to_string()
            } else {
                format!("{what}, with {root}")
            };
            revoke_event(at, &s.agent_id, actor, &what)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flag::{FlagKind, FlagState};

    fn flag(severity: Severity, refused_only: bool) -> Flag {
        Flag {
            id: "flg_1".into(),
            agent_id: "agt".into(),
            kind: FlagKind::RateSpike,
            severity,
            state: FlagState::Open,
            summary: String::new(),
            evidence: Evidence {
                observed: String::new(),
                baseline: String::new(),
                window_from: Utc::now(),
                window_to: Utc::now(),
                events: vec![],
            },
            refused_only,
            auto_suspended: false,
            opened_at: Utc::now(),
            acknowledged_by: None,
            acknowledged_at: None,
            acknowledge_reason: None,
            resolved_by: None,
            resolved_at: None,
            resolve_reason: None,
        }
    }

    #[test]
    fn auto_suspend_is_off_by_default_and_never_from_refusals() {
        let off = BehaviourSettings::default();
        assert!(!auto_suspends(&off, &flag(Severity::Critical, false)));
        let on = BehaviourSettings {
            auto_suspend: Some(Severity::High),
            ..BehaviourSettings::default()
        };
        assert!(auto_suspends(&on, &flag(Severity::Critical, false)));
        assert!(auto_suspends(&on, &flag(Severity::High, false)));
        assert!(!auto_suspends(&on, &flag(Severity::Medium, false)));
        assert!(!auto_suspends(&on, &flag(Severity::Critical, true)));
    }

    #[test]
    fn settings_are_checked() {
        assert!(BehaviourSettings::default().check().is_ok());
        let mut s = BehaviourSettings::default();
        s.detectors.min_history_days = 40;
        assert!(s.check().is_err());
    }
}
