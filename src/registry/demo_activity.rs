//! The demo's activity: 120 days of hourly history for a sample of agents (raw events only for
//! the last two days), and a planted story that the real detectors judge. The seeder never
//! writes a flag: [`seed_history`] stores the past (which the behaviour engine learns from when
//! it starts, as it does at every start), and [`plant_story`] feeds today's events through the
//! running engine, whose detectors raise every demo flag from that evidence:
//!
//! - three agents with a burst of exchanges at 03:00 UTC (rate spike + outside learned hours);
//! - one agent named by 60 refused assertions within a minute (refused burst);
//! - one agent addressing a system it never reached, with a granted scope of that system (new
//!   audience, and that scope's first use);
//! - one agent's first use of a granted high or critical scope its history never used (first
//!   scope, as severe as its tier).
//!
//! Every planted exchange is one the registry would accept: an active agent, a granted scope,
//! the audience of the resource that owns it (tokens/audience.rs).

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::AgentStatus;
use crate::model::activity::{ActivityEvent, ActivityKind};
use crate::model::api::AgentQuery;
use crate::model::catalogue::Tier;
use crate::registry::behaviour::Behaviour;
use crate::registry::store::flags::HourDelta;
use crate::registry::store::{Store, Visibility};

/// Agents with history (whatever the enterprise's size: at 1M agents this is the sample).
pub const SAMPLE_AGENTS: usize = 120;
/// Days of hourly history.
pub const HISTORY_DAYS: i64 = 120;
/// Days of raw events (the rest is hourly counts only).
pub const RAW_DAYS: i64 = 2;

/// One agent of the sample and its usual traffic.
#[derive(Debug, Clone)]
pub struct Usual {
    pub agent_id: String,
    pub subject: Option<String>,
    pub scope: String,
    pub audience: String,
    /// Exchanges in a busy hour.
    pub per_hour: u32,
    /// Every scope the agent is granted (its history uses `scope` only).
    pub granted: Vec<String>,
}

/// Who the story is about, and the day it happens.
#[derive(Debug, Clone)]
pub struct StoryPlan {
    /// Start of the day the story happens (history ends there).
    pub day: DateTime<Utc>,
    pub sample: Vec<Usual>,
    pub spikes: Vec<Usual>,
    pub prober: Option<Usual>,
    /// The agent, the granted scope it uses, and that scope's audience (new to it).
    pub new_audience: Option<(Usual, String, String)>,
    /// The agent, the granted high or critical scope it uses first, and its audience.
    pub admin_scope: Option<(Usual, String, String)>,
}

/// The day the story happens: today once 11:00 UTC has passed (so every planted event is in
/// the past), else yesterday.
pub fn story_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    if now - today >= TimeDelta::hours(11) {
        today
    } else {
        today - TimeDelta::days(1)
    }
}

fn event(u: &Usual, at: DateTime<Utc>, accepted: bool) -> ActivityEvent {
    ActivityEvent {
        at,
        agent_id: u.agent_id.clone(),
        kind: ActivityKind::Exchange,
        accepted,
        reason: (!accepted).then(|| "invalid_client".to_string()),
        subject: if accepted { u.subject.clone() } else { None },
        depth: if accepted { 1 } else { 0 },
        scopes: vec![u.scope.clone()],
        audience: vec![u.audience.clone()],
        client_auth: accepted.then(|| "private_key_jwt".to_string()),
    }
}

/// Stores the sample's history (hours 08–18 UTC on weekdays, a little at weekends) and
/// returns the story's plan. Deterministic for a seed and a day.
pub fn seed_history(store: &dyn Store, seed: u64, now: DateTime<Utc>) -> anyhow::Result<StoryPlan> {
    let day = story_day(now);
    let page = store
        .list_agents(
            &AgentQuery {
                unowned: None,
                owner: None,
                status: Some(AgentStatus::Active),
                team: None,
                environment: None,
                kind: None,
                q: None,
                limit: Some(1000),
                after: None,
            },
            &Visibility::All,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut sample = Vec::new();
    for a in page.agents {
        if sample.len() >= SAMPLE_AGENTS {
            break;
        }
        let Some(grant) = a.grants.first() else {
            continue;
        };
        let info = store
            .scope_catalogue(std::slice::from_ref(&grant.scope))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(audience) = info.first().and_then(|i| i.audiences.first()).cloned() else {
            continue;
        };
        let per_hour = 2 + (sample.len() as u32 % 5) * 2;
        sample.push(Usual {
            agent_id: a.id,
            subject: a.owner,
            scope: grant.scope.clone(),
            audience,
            per_hour,
            granted: a.grants.iter().map(|g| g.scope.clone()).collect(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0b5e_55ed);
    let start = day - TimeDelta::days(HISTORY_DAYS);
    let raw_from = day - TimeDelta::days(RAW_DAYS);
    let mut hours: Vec<HourDelta> = Vec::new();
    let mut events: Vec<ActivityEvent> = Vec::new();
    for u in &sample {
        let mut t = start;
        while t < day {
            let weekday = t.format("%u").to_string() != "6" && t.format("%u").to_string() != "7";
            let h = t.format("%H").to_string().parse::<u32>().unwrap_or(0);
            let busy = (8..18).contains(&h);
            let n = if busy && weekday {
                rng.random_range(u.per_hour / 2..=u.per_hour)
            } else if busy {
                rng.random_range(0..=1)
            } else {
                0
            };
            if n > 0 {
                hours.push(HourDelta {
                    agent_id: u.agent_id.clone(),
                    hour: t.timestamp(),
                    accepted: n,
                    refused: 0,
                    items: vec![
                        (format!("s:{}", u.scope), n),
                        (format!("a:{}", u.audience), n),
                    ],
                });
                if t >= raw_from {
                    for i in 0..n {
                        events.push(event(
                            u,
                            t + TimeDelta::seconds(i as i64 * 3600 / n as i64),
                            true,
                        ));
                    }
                }
            }
            if hours.len() >= 20_000 {
                store
                    .record_activity(&events, &hours)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                hours.clear();
                events.clear();
            }
            t += TimeDelta::hours(1);
        }
    }
    store
        .record_activity(&events, &hours)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The cast. Every planted exchange is one the registry would accept: a scope the agent is
    // granted, addressed to the audience of the resource that owns it.
    let catalogue = |scope: &str| -> anyhow::Result<Option<(Tier, String)>> {
        let info = store
            .scope_catalogue(&[scope.to_string()])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(info
            .into_iter()
            .next()
            .and_then(|i| Some((i.tier, i.audiences.first()?.clone()))))
    };
    let mut rest = sample.clone().into_iter();
    let spikes: Vec<Usual> = rest.by_ref().take(3).collect();
    let prober = rest.next();
    let rest: Vec<Usual> = rest.collect();
    // One agent's first use of a granted high or critical scope its history never used
    // (critical first; its own resource's scope first, so that only the scope is new).
    let mut admin_scope: Option<(usize, u8, bool, String, String)> = None;
    for (i, u) in rest.iter().enumerate() {
        for g in &u.granted {
            // A per-use scope's exchange waits for a person's yes: not an accepted one.
            if *g == u.scope || g == crate::registry::demo_catalogue::PER_USE_SCOPE {
                continue;
            }
            let Some((tier, audience)) = catalogue(g)? else {
                continue;
            };
            let rank = match tier {
                Tier::Critical => 2,
                Tier::High => 1,
                _ => continue,
            };
            let same = audience == u.audience;
            if admin_scope
                .as_ref()
                .is_none_or(|(_, r, s, _, _)| (rank, same) > (*r, *s))
            {
                admin_scope = Some((i, rank, same, g.clone(), audience));
            }
        }
    }
    let admin_index = admin_scope.as_ref().map(|(i, ..)| *i);
    // One agent addressing a system it never reached: a granted scope of another resource,
    // with that resource's audience (the scope is a first use too, and says so).
    let mut new_audience: Option<(Usual, String, String)> = None;
    'find: for (i, u) in rest.iter().enumerate() {
        if Some(i) == admin_index {
            continue;
        }
        for g in &u.granted {
            if let Some((tier, audience)) = catalogue(g)?
                && audience != u.audience
                && matches!(tier, Tier::Low | Tier::Medium)
            {
                new_audience = Some((u.clone(), g.clone(), audience));
                break 'find;
            }
        }
    }
    let admin_scope =
        admin_scope.map(|(i, _, _, scope, audience)| (rest[i].clone(), scope, audience));
    Ok(StoryPlan {
        day,
        sample,
        spikes,
        prober,
        new_audience,
        admin_scope,
    })
}

/// Feeds the story's events through the running engine (whose detectors raise the flags) and
/// waits until they are judged and stored.
pub fn plant_story(behaviour: &Behaviour, plan: &StoryPlan) {
    let at = |h: i64, s: i64| plan.day + TimeDelta::hours(h) + TimeDelta::seconds(s);
    // An ordinary morning for everyone in the sample.
    for u in &plan.sample {
        for i in 0..u.per_hour.min(3) {
            behaviour.observe(event(u, at(9, i as i64 * 600), true), None);
        }
    }
    for (n, u) in plan.spikes.iter().enumerate() {
        // 03:00 UTC: 400 exchanges in the hour (its busiest hours are ~10).
        for i in 0..(400 + n as i64 * 150) {
            behaviour.observe(event(u, at(3, i * 8), true), None);
        }
    }
    if let Some(u) = &plan.prober {
        // 60 refused assertions in 30 seconds: someone probing with a wrong key.
        for i in 0..60 {
            behaviour.observe(event(u, at(10, i / 2), false), None);
        }
    }
    if let Some((u, scope, audience)) = &plan.new_audience {
        let mut e = event(u, at(10, 300), true);
        e.scopes = vec![scope.clone()];
        e.audience = vec![audience.clone()];
        behaviour.observe(e, None);
    }
    if let Some((u, scope, audience)) = &plan.admin_scope {
        let mut e = event(u, at(10, 600), true);
        e.scopes = vec![scope.clone()];
        e.audience = vec![audience.clone()];
        behaviour.observe(e, None);
    }
    behaviour.flush();
}
