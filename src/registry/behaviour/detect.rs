//! Baselines and detectors: pure, with an explicit clock (each event's time), constant work per
//! event and bounded memory per agent. No I/O: the engine (`mod.rs`) feeds events in and turns
//! detections into flags.
//!
//! Per agent the baseline keeps one small record per day of the window (busiest hour, total,
//! the hours of the day it was active, refusals) plus capped sets of hashed scopes, audiences
//! and subjects and its deepest delegation. From those:
//! - **rate spike**: this hour's count > max(`spike_factor` × high, `spike_floor`), where high =
//!   median + 3 × MAD of the busiest hour per day over the window;
//! - **first scope** / **new audience** / **new subject**: not seen in the window;
//! - **off hours**: an hour of the day (or a weekday) never active in the window;
//! - **deeper delegation**: an `act` chain deeper than ever;
//! - **refused burst**: `burst_refusals` refused requests naming the agent within 60 s, where
//!   no day of its baseline had that many refusals;
//! - **removed scope**: a refused request for a scope the agent used in the window (it held it
//!   and lost it, e.g. in a review).
//!
//! An agent judges nothing until it has `min_history_days` of history; an instance or
//! sub-agent without enough history borrows its parent's baseline.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::model::activity::{ActivityEvent, ActivityKind, BaselineBand};
use crate::model::flag::{FlagKind, Severity};

/// How detection is tuned (server flags `--behaviour-*`).
#[derive(Debug, Clone)]
pub struct DetectorSettings {
    /// Days of history the baseline learns from (sliding).
    pub window_days: u32,
    /// Days of history an agent needs before it is judged.
    pub min_history_days: u32,
    /// A spike is this many times the baseline's high …
    pub spike_factor: f64,
    /// … and at least this many events in the hour.
    pub spike_floor: u32,
    /// Refused requests naming one agent within a minute that make a burst.
    pub burst_refusals: u32,
    /// Most agents with a baseline in memory (the least recently active is dropped beyond it).
    pub max_agents: usize,
    /// Most distinct scopes / audiences / subjects remembered per agent.
    pub max_items: usize,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            window_days: 28,
            min_history_days: 7,
            spike_factor: 10.0,
            spike_floor: 50,
            burst_refusals: 50,
            max_agents: 1_000_000,
            max_items: 32,
        }
    }
}

/// One day of an agent's activity (12 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayStat {
    /// Days since the Unix epoch.
    pub day: u32,
    /// Events in the day's busiest hour.
    pub max_hour: u16,
    /// Bit h set: active in hour h (UTC).
    pub hours: u32,
    pub refused: u16,
}

/// What one detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub agent_id: String,
    pub kind: FlagKind,
    pub severity: Severity,
    /// What makes two detections the same flag (e.g. the scope; the hour of a spike).
    pub key: String,
    pub summary: String,
    pub observed: String,
    pub baseline: String,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub events: Vec<ActivityEvent>,
    /// Raised from refused or unauthenticated events only.
    pub refused_only: bool,
    /// For first-scope: the scope, whose tier the engine looks up.
    pub scope: Option<String>,
}

/// Refusals in the last minute (only for agents being refused; at most `burst_refusals`).
#[derive(Debug, Clone, Default)]
struct RefusalTrack {
    times: VecDeque<i64>,
    last: VecDeque<ActivityEvent>,
}

/// An agent's baseline and current hour.
#[derive(Debug, Clone, Default)]
pub struct AgentState {
    /// First day seen (days since epoch).
    first_day: u32,
    /// Ring of the window's days (index day % window).
    days: Vec<DayStat>,
    cur_hour: i64,
    cur_count: u32,
    scopes: Vec<u32>,
    audiences: Vec<u32>,
    subjects: Vec<u32>,
    max_depth: u8,
    /// Spike threshold computed once per hour (constant work per event).
    cached_threshold: Option<(i64, f64)>,
    /// Hour (since epoch) each kind last fired, so that one burst makes one flag.
    last_fired: [i64; 8],
    refusals: Option<Box<RefusalTrack>>,
    pub last_seen: i64,
    pub parent: Option<String>,
    /// Seen only in refusals so far.
    stranger: bool,
}

fn hash(text: &str) -> u32 {
    // FNV-1a: stable across runs (baselines are rebuilt from the store).
    let mut h: u32 = 0x811c_9dc5;
    for b in text.as_bytes() {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn day_of(t: i64) -> u32 {
    t.div_euclid(86_400).max(0) as u32
}

fn kind_index(k: FlagKind) -> usize {
    FlagKind::ALL.iter().position(|x| *x == k).unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl AgentState {
    fn new(window: u32, first_day: u32) -> AgentState {
        AgentState {
            first_day,
            days: vec![DayStat::default(); window.max(1) as usize],
            cur_hour: i64::MIN,
            last_fired: [i64::MIN; 8],
            ..AgentState::default()
        }
    }

    /// Bytes this state holds (for the memory figure).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<AgentState>()
            + self.days.capacity() * std::mem::size_of::<DayStat>()
            + (self.scopes.capacity() + self.audiences.capacity() + self.subjects.capacity()) * 4
            + self.refusals.as_ref().map_or(0, |r| {
                std::mem::size_of::<RefusalTrack>()
                    + r.times.capacity() * 8
                    + r.last.capacity() * std::mem::size_of::<ActivityEvent>()
            })
    }

    fn day_mut(&mut self, day: u32) -> &mut DayStat {
        let n = self.days.len();
        let slot = &mut self.days[day as usize % n];
        if slot.day != day {
            *slot = DayStat {
                day,
                ..DayStat::default()
            };
        }
        slot
    }

    /// Days of the window before `today` that are in the ring (zeros for silent days).
    fn window_days(&self, today: u32) -> impl Iterator<Item = DayStat> + '_ {
        let n = self.days.len() as u32;
        (1..=n).filter_map(move |back| {
            let d = today.checked_sub(back)?;
            if d < self.first_day {
                return None;
            }
            let s = self.days[d as usize % n as usize];
            Some(if s.day == d {
                s
            } else {
                DayStat {
                    day: d,
                    ..DayStat::default()
                }
            })
        })
    }

    fn history_days(&self, today: u32) -> u32 {
        today.saturating_sub(self.first_day)
    }

    /// Median and high (median + 3 MAD) of the busiest hour per day.
    fn band(&self, today: u32) -> (f64, f64, u32) {
        let mut maxes: Vec<f64> = self.window_days(today).map(|d| d.max_hour as f64).collect();
        let days = maxes.len() as u32;
        let med = median(&mut maxes);
        let mut dev: Vec<f64> = maxes.iter().map(|m| (m - med).abs()).collect();
        let mad = median(&mut dev);
        (med, med + 3.0 * mad.max(0.5), days)
    }

    fn learned_hours(&self, today: u32) -> (u32, u8) {
        let mut hours = 0u32;
        let mut weekdays = 0u8;
        for d in self.window_days(today) {
            hours |= d.hours;
            if d.hours != 0 {
                weekdays |= 1 << weekday(d.day);
            }
        }
        (hours, weekdays)
    }

    fn most_refused_day(&self, today: u32) -> u16 {
        self.window_days(today)
            .map(|d| d.refused)
            .max()
            .unwrap_or(0)
    }
}

fn weekday(day: u32) -> u32 {
    // 1970-01-01 was a Thursday; Monday = 0.
    (day + 3) % 7
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Every agent's baseline, and the counting of what cannot be kept.
#[derive(Debug, Default)]
pub struct Detectors {
    pub settings: DetectorSettings,
    agents: HashMap<String, AgentState>,
    /// Baselines dropped because `max_agents` was reached.
    pub evicted: u64,
    /// Agents known only from refusals (never an accepted exchange): capped apart, so that a
    /// flood of bad requests naming made-up agents cannot grow memory.
    strangers: usize,
    /// Refusals not tracked because the stranger cap was full (counted, not stored).
    pub untracked_refusals: u64,
}

/// Most agents known only from refusals that keep a state.
pub const MAX_STRANGERS: usize = 10_000;

impl Detectors {
    pub fn new(settings: DetectorSettings) -> Detectors {
        Detectors {
            settings,
            agents: HashMap::new(),
            evicted: 0,
            strangers: 0,
            untracked_refusals: 0,
        }
    }

    pub fn agents(&self) -> usize {
        self.agents.len()
    }

    pub fn state(&self, agent: &str) -> Option<&AgentState> {
        self.agents.get(agent)
    }

    /// Sum of every baseline's bytes (for the memory figure).
    pub fn heap_bytes(&self) -> usize {
        self.agents
            .iter()
            .map(|(k, v)| k.capacity() + v.heap_bytes() + 16)
            .sum()
    }

    fn state_mut(&mut self, agent: &str, day: u32, at: i64) -> &mut AgentState {
        if !self.agents.contains_key(agent) {
            if self.agents.len() >= self.settings.max_agents {
                // Drop the least recently active among a few (constant work).
                let victim = self
                    .agents
                    .iter()
                    .take(8)
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| k.clone());
                if let Some(v) = victim {
                    if self.agents.remove(&v).is_some_and(|s| s.stranger) {
                        self.strangers = self.strangers.saturating_sub(1);
                    }
                    self.evicted += 1;
                }
            }
            self.agents.insert(
                agent.to_string(),
                AgentState::new(self.settings.window_days, day),
            );
        }
        let s = self.agents.get_mut(agent).expect("inserted above");
        s.last_seen = s.last_seen.max(at);
        s
    }

    /// Learns an hour of history without judging it (rebuilding baselines from the store, or
    /// seeding a demo's past).
    pub fn learn_hour(&mut self, agent: &str, hour_start: i64, accepted: u32, refused: u32) {
        let day = day_of(hour_start);
        let s = self.state_mut(agent, day, hour_start);
        if day < s.first_day {
            s.first_day = day;
        }
        let h = hour_start.div_euclid(3600).rem_euclid(24) as u32;
        let d = s.day_mut(day);
        d.max_hour = d.max_hour.max(accepted.min(u16::MAX as u32) as u16);
        if accepted > 0 {
            d.hours |= 1 << h;
        }
        d.refused = d
            .refused
            .saturating_add(refused.min(u16::MAX as u32) as u16);
    }

    /// Learns that the agent used a scope / audience / subject, or a delegation depth.
    pub fn learn_item(&mut self, agent: &str, item: &str, at: i64) {
        let max = self.settings.max_items;
        let s = self.state_mut(agent, day_of(at), at);
        let (set, name) = match item.split_once(':') {
            Some(("s", n)) => (&mut s.scopes, n),
            Some(("a", n)) => (&mut s.audiences, n),
            Some(("p", n)) => (&mut s.subjects, n),
            Some(("d", n)) => {
                s.max_depth = s.max_depth.max(n.parse().unwrap_or(0));
                return;
            }
            _ => return,
        };
        let h = hash(name);
        if !set.contains(&h) && set.len() < max {
            set.push(h);
        }
    }

    /// Sets an agent's parent (an instance without history borrows its parent's baseline).
    pub fn set_parent(&mut self, agent: &str, parent: Option<&str>, at: i64) {
        let s = self.state_mut(agent, day_of(at), at);
        s.parent = parent.map(str::to_string);
    }

    /// The band the console draws, for `agent` at `now`.
    pub fn band(&self, agent: &str, now: i64) -> BaselineBand {
        let today = day_of(now);
        let s = self.judge_state(agent, today);
        match s {
            Some(s) => {
                let (median, high, days) = s.band(today);
                BaselineBand {
                    median,
                    high,
                    spike_threshold: (self.settings.spike_factor * high)
                        .max(self.settings.spike_floor as f64),
                    days,
                    judging: true,
                }
            }
            None => {
                let days = self
                    .agents
                    .get(agent)
                    .map(|s| s.history_days(today))
                    .unwrap_or(0);
                BaselineBand {
                    median: 0.0,
                    high: 0.0,
                    spike_threshold: self.settings.spike_floor as f64,
                    days,
                    judging: false,
                }
            }
        }
    }

    /// The baseline that judges `agent`: its own once it has enough history, else its
    /// parent's (an instance borrows), else none.
    fn judge_state(&self, agent: &str, today: u32) -> Option<&AgentState> {
        let min = self.settings.min_history_days;
        let own = self.agents.get(agent)?;
        if own.history_days(today) >= min {
            return Some(own);
        }
        let parent = self.agents.get(own.parent.as_deref()?)?;
        (parent.history_days(today) >= min).then_some(parent)
    }

    /// Takes one event: judges it against the baseline, then learns from it. Constant work
    /// per event (the spike threshold is computed once per agent per hour).
    pub fn observe(&mut self, e: &ActivityEvent) -> Vec<Detection> {
        let at = e.at.timestamp();
        let today = day_of(at);
        let hour = at.div_euclid(3600);
        let settings = self.settings.clone();
        // Ensure the state exists before judging (first sight starts its history today).
        match self.agents.get_mut(&e.agent_id) {
            Some(s) if e.accepted && s.stranger => {
                s.stranger = false;
                self.strangers = self.strangers.saturating_sub(1);
            }
            Some(_) => {}
            None if !e.accepted && self.strangers >= MAX_STRANGERS => {
                self.untracked_refusals += 1;
                return Vec::new();
            }
            None => {
                self.state_mut(&e.agent_id, today, at).stranger = !e.accepted;
                if !e.accepted {
                    self.strangers += 1;
                }
            }
        }
        self.agents
            .get_mut(&e.agent_id)
            .expect("created above")
            .last_seen = at;
        let mut found = Vec::new();
        if matches!(e.kind, ActivityKind::Revoke | ActivityKind::Introspection) {
            // Counted for the record; not judged (revocations are the registry's own acts).
            return found;
        }
        // Judge.
        let window_from =
            |hours: i64| DateTime::from_timestamp(at - hours * 3600, 0).unwrap_or_default();
        let judge = self.judge_state(&e.agent_id, today).cloned();
        let me = self.agents.get_mut(&e.agent_id).expect("created above");
        let fire = |me: &mut AgentState, kind: FlagKind, once_per_hours: i64| -> bool {
            let i = kind_index(kind);
            if me.last_fired[i] != i64::MIN && hour - me.last_fired[i] < once_per_hours {
                return false;
            }
            me.last_fired[i] = hour;
            true
        };
        let base = |observed: String,
                    baseline: String,
                    kind: FlagKind,
                    severity: Severity,
                    key: String,
                    summary: String,
                    from: DateTime<Utc>,
                    events: Vec<ActivityEvent>,
                    refused_only: bool| Detection {
            agent_id: e.agent_id.clone(),
            kind,
            severity,
            key,
            summary,
            observed,
            baseline,
            window_from: from,
            window_to: e.at,
            events,
            refused_only,
            scope: None,
        };
        if e.accepted {
            // The hour's count.
            if me.cur_hour != hour {
                me.cur_hour = hour;
                me.cur_count = 0;
            }
            me.cur_count += 1;
            if let Some(j) = &judge {
                let threshold = match me.cached_threshold {
                    Some((h, t)) if h == hour => t,
                    _ => {
                        let (_, high, _) = j.band(today);
                        let t = (settings.spike_factor * high).max(settings.spike_floor as f64);
                        me.cached_threshold = Some((hour, t));
                        t
                    }
                };
                if me.cur_count as f64 > threshold && fire(me, FlagKind::RateSpike, 24) {
                    let (med, high, days) = j.band(today);
                    let severity = if me.cur_count as f64 > 10.0 * threshold {
                        Severity::Critical
                    } else {
                        Severity::High
                    };
                    let h = DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default();
                    found.push(base(
                        format!("{} exchanges in the hour from {}", me.cur_count, h.format("%Y-%m-%d %H:00 UTC")),
                        format!(
                            "busiest hour per day over {days} days: median {med:.0}, high {high:.1}; spike threshold {threshold:.0} (×{} high, floor {})",
                            settings.spike_factor, settings.spike_floor
                        ),
                        FlagKind::RateSpike,
                        severity,
                        format!("{hour}"),
                        format!("rate spike: {} exchanges in one hour (threshold {threshold:.0})", me.cur_count),
                        h,
                        vec![e.clone()],
                        false,
                    ));
                }
                // Hours and weekdays.
                let (hours, weekdays) = j.learned_hours(today);
                let hod = (hour.rem_euclid(24)) as u32;
                let wd = weekday(today);
                let off_hour = hours != 0 && hours & (1 << hod) == 0;
                let off_day = weekdays != 0 && weekdays & (1 << wd) == 0;
                if (off_hour || off_day) && fire(me, FlagKind::OffHours, 24) {
                    let active: Vec<String> = (0..24)
                        .filter(|h| hours & (1 << h) != 0)
                        .map(|h| format!("{h:02}"))
                        .collect();
                    let what = if off_hour {
                        format!("active at {hod:02}:00 UTC")
                    } else {
                        format!("active on a {}", WEEKDAYS[wd as usize])
                    };
                    found.push(base(
                        what.clone(),
                        format!(
                            "active hours (UTC) over the window: {}; weekdays: {}",
                            active.join(" "),
                            (0..7)
                                .filter(|d| weekdays & (1 << d) != 0)
                                .map(|d| &WEEKDAYS[d as usize][..3])
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                        FlagKind::OffHours,
                        Severity::Low,
                        format!("{today}"),
                        format!("outside learned hours: {what}"),
                        window_from(1),
                        vec![e.clone()],
                        false,
                    ));
                }
                // Scopes, audiences, subject, depth.
                for scope in &e.scopes {
                    let h = hash(scope);
                    if !j.scopes.contains(&h)
                        && !me.scopes.contains(&h)
                        && j.scopes.len() < settings.max_items
                    {
                        let mut d = base(
                            format!("first use of {scope}"),
                            format!("{} scopes used in the window", j.scopes.len()),
                            FlagKind::FirstScope,
                            Severity::Medium,
                            scope.clone(),
                            format!("first use of scope {scope}"),
                            e.at,
                            vec![e.clone()],
                            false,
                        );
                        d.scope = Some(scope.clone());
                        found.push(d);
                    }
                }
                for aud in &e.audience {
                    let h = hash(aud);
                    if !j.audiences.contains(&h)
                        && !me.audiences.contains(&h)
                        && j.audiences.len() < settings.max_items
                    {
                        found.push(base(
                            format!("token for audience {aud}"),
                            format!("{} audiences used in the window", j.audiences.len()),
                            FlagKind::NewAudience,
                            Severity::Medium,
                            aud.clone(),
                            format!("new audience {aud}"),
                            e.at,
                            vec![e.clone()],
                            false,
                        ));
                    }
                }
                if let Some(subject) = &e.subject {
                    let h = hash(subject);
                    if !j.subjects.is_empty()
                        && !j.subjects.contains(&h)
                        && !me.subjects.contains(&h)
                        && j.subjects.len() < settings.max_items
                    {
                        found.push(base(
                            format!("acting for {subject}"),
                            format!("{} subjects in the window", j.subjects.len()),
                            FlagKind::NewSubject,
                            Severity::Low,
                            subject.clone(),
                            format!("new subject {subject}"),
                            e.at,
                            vec![e.clone()],
                            false,
                        ));
                    }
                }
                if j.max_depth > 0 && e.depth > j.max_depth.max(me.max_depth) {
                    found.push(base(
                        format!("delegation depth {}", e.depth),
                        format!("deepest before: {}", j.max_depth.max(me.max_depth)),
                        FlagKind::DeeperDelegation,
                        Severity::Medium,
                        format!("{}", e.depth),
                        format!("delegation deeper than ever: {}", e.depth),
                        e.at,
                        vec![e.clone()],
                        false,
                    ));
                }
            }
            // Learn.
            let count = me.cur_count.min(u16::MAX as u32) as u16;
            let hod = hour.rem_euclid(24) as u32;
            let max_items = settings.max_items;
            let d = me.day_mut(today);
            d.max_hour = d.max_hour.max(count);
            d.hours |= 1 << hod;
            for (set, names) in [
                (&mut me.scopes, &e.scopes),
                (&mut me.audiences, &e.audience),
            ] {
                for n in names {
                    let h = hash(n);
                    if !set.contains(&h) && set.len() < max_items {
                        set.push(h);
                    }
                }
            }
            if let Some(subject) = &e.subject {
                let h = hash(subject);
                if !me.subjects.contains(&h) && me.subjects.len() < max_items {
                    me.subjects.push(h);
                }
            }
            me.max_depth = me.max_depth.max(e.depth);
        } else {
            // A refusal.
            let limit = settings.burst_refusals.max(1) as usize;
            let most_refused = me.most_refused_day(today);
            {
                let d = me.day_mut(today);
                d.refused = d.refused.saturating_add(1);
            }
            let track = me.refusals.get_or_insert_with(Box::default);
            track.times.push_back(at);
            while track.times.len() > limit {
                track.times.pop_front();
            }
            track.last.push_back(e.clone());
            while track.last.len() > 3 {
                track.last.pop_front();
            }
            let first = *track.times.front().unwrap_or(&at);
            let burst = track.times.len() >= limit && at - first < 60;
            let events: Vec<ActivityEvent> = track.last.iter().cloned().collect();
            if burst && (most_refused as usize) < limit && fire(me, FlagKind::RefusedBurst, 1) {
                let reasons: Vec<String> = {
                    let mut r: Vec<String> =
                        events.iter().filter_map(|e| e.reason.clone()).collect();
                    r.dedup();
                    r
                };
                found.push(base(
                    format!(
                        "{limit} refused requests naming the agent within {} s ({})",
                        at - first,
                        reasons.join(", ")
                    ),
                    format!("most refusals in one day of the window: {most_refused}"),
                    FlagKind::RefusedBurst,
                    Severity::High,
                    format!("{hour}"),
                    format!("burst of {limit} refused requests in under a minute"),
                    DateTime::from_timestamp(first, 0).unwrap_or_default(),
                    events,
                    true,
                ));
            }
            // A refused scope it used before: held once, lost since (e.g. removed in a review).
            if e.reason.as_deref() == Some("invalid_scope")
                && let Some(j) = &judge
            {
                for scope in &e.scopes {
                    let h = hash(scope);
                    if j.scopes.contains(&h) || me.scopes.contains(&h) {
                        found.push(base(
                            format!("refused exchange for {scope}, a scope it no longer holds"),
                            format!("{scope} was used in the window"),
                            FlagKind::RemovedScope,
                            Severity::High,
                            scope.clone(),
                            format!("attempted use of removed scope {scope}"),
                            e.at,
                            vec![e.clone()],
                            true,
                        ));
                    }
                }
            }
        }
        found
    }

    /// Drops the refusal tracks that have gone quiet (called now and then).
    pub fn sweep(&mut self, now: i64) {
        for s in self.agents.values_mut() {
            if s.refusals
                .as_ref()
                .is_some_and(|r| r.times.back().is_none_or(|t| now - t > 120))
            {
                s.refusals = None;
            }
        }
    }
}

/// Hour of day of a time (for tests and the seeder).
pub fn hour_of(t: DateTime<Utc>) -> u32 {
    t.hour()
}

/// Weekday of a time, Monday = 0.
pub fn weekday_of(t: DateTime<Utc>) -> u32 {
    t.weekday().num_days_from_monday()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    // 2026-11-02 00:00 UTC, a Monday.
    const T0: i64 = 1_793_577_600;

    fn ev(agent: &str, at: i64, accepted: bool) -> ActivityEvent {
        ActivityEvent {
            at: DateTime::from_timestamp(at, 0).unwrap(),
            agent_id: agent.into(),
            kind: ActivityKind::Exchange,
            accepted,
            reason: (!accepted).then(|| "invalid_client".into()),
            subject: Some("ada@example.com".into()),
            depth: 1,
            scopes: vec!["crm.orders:read".into()],
            audience: vec!["crm".into()],
            client_auth: accepted.then(|| "private_key_jwt".into()),
        }
    }

    /// 28 days of 5 exchanges an hour during 09–17 on weekdays.
    fn trained() -> Detectors {
        let mut d = Detectors::new(DetectorSettings::default());
        for day in 0..28 {
            let start = T0 + day * DAY;
            if weekday(day_of(start)) >= 5 {
                continue;
            }
            for h in 9..17 {
                for i in 0..5 {
                    assert!(
                        d.observe(&ev("a", start + h * 3600 + i * 60, true))
                            .is_empty()
                    );
                }
            }
        }
        d
    }

    fn kinds(found: &[Detection]) -> Vec<FlagKind> {
        found.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn normal_traffic_stays_quiet() {
        let mut d = trained();
        let monday = T0 + 28 * DAY;
        assert_eq!(weekday(day_of(monday)), 0);
        for h in 9..17 {
            for i in 0..6 {
                let f = d.observe(&ev("a", monday + h * 3600 + i * 60, true));
                assert!(f.is_empty(), "{f:?}");
            }
        }
    }

    #[test]
    fn a_spike_at_3am_is_flagged_once_with_evidence() {
        let mut d = trained();
        let at = T0 + 28 * DAY + 3 * 3600;
        let mut all = Vec::new();
        for i in 0..300 {
            all.extend(d.observe(&ev("a", at + i, true)));
        }
        let k = kinds(&all);
        assert_eq!(k.iter().filter(|k| **k == FlagKind::RateSpike).count(), 1);
        assert_eq!(k.iter().filter(|k| **k == FlagKind::OffHours).count(), 1);
        let spike = all.iter().find(|f| f.kind == FlagKind::RateSpike).unwrap();
        // high = median 5 + 3 × max(MAD 0, 0.5) = 6.5; threshold max(10 × 6.5, 50) = 65.
        assert!(
            spike.observed.contains("66 exchanges"),
            "{}",
            spike.observed
        );
        assert!(spike.baseline.contains("median 5"), "{}", spike.baseline);
        assert_eq!(spike.severity, Severity::High);
        assert!(!spike.refused_only);
    }

    #[test]
    fn nothing_is_judged_without_enough_history_but_an_instance_borrows_its_parent() {
        let mut d = trained();
        let at = T0 + 28 * DAY + 10 * 3600;
        // A brand-new agent: no flags at all, whatever it does.
        let mut fresh = ev("new", at, true);
        fresh.scopes = vec!["payments:admin".into()];
        assert!(d.observe(&fresh).is_empty());
        // An instance of "a": judged by a's baseline.
        d.set_parent("a.1", Some("a"), at);
        let mut inst = ev("a.1", at, true);
        inst.scopes = vec!["payments:admin".into()];
        assert_eq!(kinds(&d.observe(&inst)), vec![FlagKind::FirstScope]);
    }

    #[test]
    fn first_scope_new_audience_subject_and_depth_fire() {
        let mut d = trained();
        let at = T0 + 28 * DAY + 10 * 3600;
        let mut e = ev("a", at, true);
        e.scopes = vec!["crm.orders:read".into(), "crm.admin:write".into()];
        e.audience = vec!["payments".into()];
        e.subject = Some("mallory@example.com".into());
        e.depth = 3;
        let mut k = kinds(&d.observe(&e));
        k.sort_by_key(|k| k.as_str());
        assert_eq!(
            k,
            vec![
                FlagKind::DeeperDelegation,
                FlagKind::FirstScope,
                FlagKind::NewAudience,
                FlagKind::NewSubject
            ]
        );
        // Learnt: the same again is quiet.
        assert!(d.observe(&e).is_empty());
    }

    #[test]
    fn fifty_refusals_in_a_minute_is_a_burst_and_memory_stays_bounded() {
        let mut d = trained();
        let at = T0 + 28 * DAY + 10 * 3600;
        let mut all = Vec::new();
        for i in 0..500 {
            all.extend(d.observe(&ev("a", at + i / 10, false)));
        }
        assert_eq!(kinds(&all), vec![FlagKind::RefusedBurst]);
        assert!(all[0].refused_only);
        assert!(all[0].events.len() <= 3);
        let s = d.state("a").unwrap();
        assert!(s.refusals.as_ref().unwrap().times.len() <= 50);
        // 49 refusals spread over minutes: no burst.
        let mut d = trained();
        for i in 0..49 {
            assert!(d.observe(&ev("a", at + i * 30, false)).is_empty());
        }
    }

    #[test]
    fn a_refused_scope_it_used_before_is_a_removed_scope_attempt() {
        let mut d = trained();
        let mut e = ev("a", T0 + 28 * DAY + 10 * 3600, false);
        e.reason = Some("invalid_scope".into());
        let found = d.observe(&e);
        assert_eq!(kinds(&found), vec![FlagKind::RemovedScope]);
        assert!(found[0].refused_only);
    }

    #[test]
    fn the_agent_cap_evicts_instead_of_growing() {
        let mut d = Detectors::new(DetectorSettings {
            max_agents: 100,
            ..DetectorSettings::default()
        });
        for i in 0..1000 {
            d.observe(&ev(&format!("ghost-{i}"), T0 + i, false));
        }
        assert_eq!(d.agents(), 100);
        assert_eq!(d.evicted, 900);
    }

    #[test]
    fn refusals_naming_made_up_agents_are_counted_not_stored() {
        let mut d = trained();
        for i in 0..(MAX_STRANGERS as i64 + 500) {
            d.observe(&ev(&format!("nobody-{i}"), T0 + 28 * DAY + i, false));
        }
        assert_eq!(d.agents(), MAX_STRANGERS + 1);
        assert_eq!(d.untracked_refusals, 500);
        // A real agent still gets its state.
        d.observe(&ev("b", T0 + 28 * DAY, true));
        assert!(d.state("b").is_some());
    }
}
