//! The scope-diff rules: usage against a lookback window, drift against the agent's last
//! certification, and the recommendation with its reason.
//!
//! Campaign creation applies the same rules in SQL (`INSERT … SELECT` over every grant, see
//! `store/sqlite_reviews.rs`); the tests check that both give the same answer.

use chrono::{DateTime, Duration, Utc};

use crate::model::review::{Change, Recommendation, ScopeMarker, ScopeState, Usage, Verdict};

/// The default lookback window in days.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 30;

/// The facts about one grant that the rules need.
#[derive(Debug, Clone)]
pub struct GrantFacts {
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_certified_at: Option<DateTime<Utc>>,
}

/// The start of the lookback window.
pub fn cutoff(now: DateTime<Utc>, lookback_days: u32) -> DateTime<Utc> {
    now - Duration::days(lookback_days as i64)
}

/// Whole days from `then` to `now`, never negative (as SQL computes it: whole seconds / 86400).
pub fn whole_days(then: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    ((now.timestamp() - then.timestamp()) / 86_400).max(0)
}

/// Used within the window, unused beyond it, or too new to judge; and the idle days.
pub fn usage(
    last_used_at: Option<DateTime<Utc>>,
    granted_at: DateTime<Utc>,
    now: DateTime<Utc>,
    lookback_days: u32,
) -> (Usage, i64) {
    let cutoff = cutoff(now, lookback_days);
    let reference = last_used_at.unwrap_or(granted_at);
    let usage = match last_used_at {
        Some(t) if t >= cutoff => Usage::Used,
        _ if reference < cutoff => Usage::Unused,
        _ => Usage::New,
    };
    (usage, whole_days(reference, now))
}

/// Drift against the agent's last certification (`baseline`).
pub fn change(
    granted_at: DateTime<Utc>,
    last_certified_at: Option<DateTime<Utc>>,
    baseline: Option<DateTime<Utc>>,
) -> Change {
    match baseline {
        None => Change::NeverCertified,
        Some(b) if granted_at > b => Change::Added,
        Some(_) if last_certified_at.is_none() => Change::NeverCertified,
        Some(_) => Change::Unchanged,
    }
}

/// Revoke what is unused beyond the lookback; certify the rest.
pub fn recommended(usage: Usage) -> Verdict {
    match usage {
        Usage::Unused => Verdict::Revoke,
        Usage::Used | Usage::New => Verdict::Certify,
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// The sentence a reviewer reads next to the recommendation.
pub fn reason(
    usage: Usage,
    idle_days: i64,
    last_used_at: Option<DateTime<Utc>>,
    lookback_days: u32,
) -> String {
    match (usage, last_used_at) {
        (Usage::Used, Some(t)) => format!(
            "used {} (last use {}), within the {lookback_days}-day lookback",
            if idle_days == 0 {
                "today".to_string()
            } else {
                format!("{} ago", days(idle_days))
            },
            t.format("%Y-%m-%d")
        ),
        (Usage::Unused, Some(t)) => format!(
            "unused for {} (last use {}), beyond the {lookback_days}-day lookback",
            days(idle_days),
            t.format("%Y-%m-%d")
        ),
        (Usage::Unused, None) => format!(
            "never used in the {} since it was granted, beyond the {lookback_days}-day lookback",
            days(idle_days)
        ),
        // `Used` always has a last use; `New` is never used yet.
        (_, _) => format!(
            "granted {} and not used yet: too recent to judge within the \
             {lookback_days}-day lookback",
            if idle_days == 0 {
                "today".to_string()
            } else {
                format!("{} ago", days(idle_days))
            }
        ),
    }
}

pub fn markers(usage: Usage, change: Change) -> Vec<ScopeMarker> {
    let mut out = Vec::with_capacity(2);
    match usage {
        Usage::Used => out.push(ScopeMarker::Used),
        Usage::Unused => out.push(ScopeMarker::Unused),
        Usage::New => {}
    }
    match change {
        Change::Added => out.push(ScopeMarker::Added),
        Change::NeverCertified => out.push(ScopeMarker::NeverCertified),
        Change::Unchanged => {}
    }
    out
}

/// Assembles a scope's state from already classified facts (as stored on a review item).
pub fn state_from_parts(
    facts: &GrantFacts,
    usage: Usage,
    idle_days: i64,
    change: Change,
    recommendation: Verdict,
    lookback_days: u32,
) -> ScopeState {
    ScopeState {
        markers: markers(usage, change),
        usage,
        idle_days,
        last_used_at: facts.last_used_at,
        change,
        granted_by: facts.granted_by.clone(),
        granted_at: facts.granted_at,
        last_certified_at: facts.last_certified_at,
        recommendation: Recommendation {
            action: recommendation,
            reason: reason(usage, idle_days, facts.last_used_at, lookback_days),
        },
    }
}

/// Classifies one held scope as of `now`.
pub fn scope_state(
    facts: &GrantFacts,
    baseline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    lookback_days: u32,
) -> ScopeState {
    let (usage, idle_days) = usage(facts.last_used_at, facts.granted_at, now, lookback_days);
    let change = change(facts.granted_at, facts.last_certified_at, baseline);
    state_from_parts(
        facts,
        usage,
        idle_days,
        change,
        recommended(usage),
        lookback_days,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, 12, 0, 0).unwrap()
    }

    #[test]
    fn usage_against_the_window() {
        let now = t(30);
        // Used 5 days ago: used.
        assert_eq!(usage(Some(t(25)), t(1), now, 3), (Usage::Unused, 5));
        assert_eq!(usage(Some(t(25)), t(1), now, 10), (Usage::Used, 5));
        // Exactly at the cutoff counts as used.
        assert_eq!(usage(Some(t(20)), t(1), now, 10).0, Usage::Used);
        // Never used, granted long ago: unused since the grant.
        assert_eq!(usage(None, t(1), now, 10), (Usage::Unused, 29));
        // Never used, granted recently: too new to judge.
        assert_eq!(usage(None, t(28), now, 10), (Usage::New, 2));
    }

    #[test]
    fn drift_against_the_baseline() {
        assert_eq!(change(t(5), Some(t(6)), None), Change::NeverCertified);
        assert_eq!(change(t(5), None, Some(t(4))), Change::Added);
        assert_eq!(change(t(5), None, Some(t(6))), Change::NeverCertified);
        assert_eq!(change(t(5), Some(t(6)), Some(t(6))), Change::Unchanged);
    }

    #[test]
    fn reasons_say_how_long() {
        let r = reason(Usage::Unused, 45, Some(t(1)), 30);
        assert!(r.contains("unused for 45 days"), "{r}");
        assert!(r.contains("30-day lookback"), "{r}");
        let r = reason(Usage::Unused, 1, None, 30);
        assert!(r.contains("never used in the 1 day"), "{r}");
        assert_eq!(recommended(Usage::Unused), Verdict::Revoke);
        assert_eq!(recommended(Usage::Used), Verdict::Certify);
        assert_eq!(recommended(Usage::New), Verdict::Certify);
    }
}
