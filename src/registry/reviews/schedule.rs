//! Reminder slots: which reminder of a campaign's schedule is current at a given moment.
//!
//! Slots: `week-K` every 7 days after the start until the countdown begins; `before-Nd` at
//! 00:00 UTC N days before the due date and `due-day` at 00:00 UTC on it; `overdue-Kd` K days
//! after the due date while the campaign stays open. Only the latest slot that has come due is
//! current: after an outage the registry sends one reminder, not the backlog it missed.

use chrono::{DateTime, Duration, NaiveTime, Utc};

use crate::model::review::ReminderSchedule;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: String,
    pub at: DateTime<Utc>,
}

/// 00:00 UTC on the day of `t`.
fn midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

/// The countdown slots (before the due date and on it) that fall after the start.
fn countdown(
    schedule: &ReminderSchedule,
    starts_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> Vec<Slot> {
    let day = midnight(due_at);
    let mut slots: Vec<Slot> = schedule
        .days_before
        .iter()
        .map(|&d| Slot {
            key: if d == 0 {
                "due-day".to_string()
            } else {
                format!("before-{d}d")
            },
            at: day - Duration::days(d as i64),
        })
        .filter(|s| s.at >= starts_at)
        .collect();
    slots.sort_by_key(|s| s.at);
    slots.dedup_by_key(|s| s.at);
    slots
}

/// Whole days from `now` until `due`; negative whole days overdue once past it ("due in 1
/// day" at 36 h before, "overdue by 1 day" at 25 h after, 0 within a day either side).
pub fn days_until(now: DateTime<Utc>, due: DateTime<Utc>) -> i64 {
    crate::model::review::days_until(now, due)
}

/// The latest slot at or before `now`, if any has come due.
pub fn current_slot(
    schedule: &ReminderSchedule,
    starts_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Slot> {
    if now < starts_at {
        return None;
    }
    if schedule.overdue_daily && now >= due_at + Duration::days(1) {
        let k = (now - due_at).num_days();
        return Some(Slot {
            key: format!("overdue-{k}d"),
            at: due_at + Duration::days(k),
        });
    }
    let countdown = countdown(schedule, starts_at, due_at);
    let mut best: Option<Slot> = countdown.iter().rev().find(|s| s.at <= now).cloned();
    if schedule.weekly {
        // Weekly reminders run until the countdown (or the due date) takes over.
        let end = countdown.first().map(|s| s.at).unwrap_or(due_at);
        let week = Duration::days(7);
        let mut k = (now - starts_at).num_days() / 7;
        while k >= 1 && starts_at + week * k as i32 >= end {
            k -= 1;
        }
        if k >= 1 {
            let at = starts_at + week * k as i32;
            if best.as_ref().is_none_or(|b| at > b.at) {
                best = Some(Slot {
                    key: format!("week-{k}"),
                    at,
                });
            }
        }
    }
    best
}

/// Every slot from the start up to `until` (for display and tests), in time order.
pub fn slots_until(
    schedule: &ReminderSchedule,
    starts_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::new();
    let mut t = starts_at;
    // Walk hour by hour: slots are whole days apart, so this finds each exactly once.
    while t <= until {
        if let Some(s) = current_slot(schedule, starts_at, due_at, t)
            && out.last().is_none_or(|l| l.key != s.key)
        {
            out.push(s);
        }
        t += Duration::hours(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_default_schedule_in_order() {
        let start = Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap();
        let due = Utc.with_ymd_and_hms(2026, 10, 31, 23, 59, 59).unwrap();
        let until = due + Duration::days(3) + Duration::hours(1);
        let keys: Vec<String> = slots_until(&ReminderSchedule::default(), start, due, until)
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(
            keys,
            [
                "week-1",
                "week-2",
                "week-3",
                "before-3d",
                "before-1d",
                "due-day",
                "overdue-1d",
                "overdue-2d",
                "overdue-3d"
            ]
        );
    }

    #[test]
    fn nothing_before_the_start_and_countdown_times() {
        let s = ReminderSchedule::default();
        let start = Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap();
        let due = Utc.with_ymd_and_hms(2026, 10, 31, 17, 0, 0).unwrap();
        assert_eq!(
            current_slot(&s, start, due, start - Duration::hours(1)),
            None
        );
        assert_eq!(
            current_slot(&s, start, due, start + Duration::days(2)),
            None
        );
        let before3 = current_slot(
            &s,
            start,
            due,
            Utc.with_ymd_and_hms(2026, 10, 28, 0, 0, 0).unwrap(),
        )
        .unwrap();
        assert_eq!(before3.key, "before-3d");
        let due_day = current_slot(
            &s,
            start,
            due,
            Utc.with_ymd_and_hms(2026, 10, 31, 18, 0, 0).unwrap(),
        )
        .unwrap();
        assert_eq!(due_day.key, "due-day");
    }

    #[test]
    fn days_until_counts_whole_days() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        assert_eq!(days_until(now, now + Duration::hours(36)), 1);
        assert_eq!(days_until(now, now - Duration::hours(1)), 0);
        assert_eq!(days_until(now, now - Duration::hours(25)), -1);
    }

    #[test]
    fn a_schedule_without_weekly_or_overdue() {
        let s = ReminderSchedule {
            weekly: false,
            days_before: vec![1],
            overdue_daily: false,
        };
        let start = Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap();
        let due = Utc.with_ymd_and_hms(2026, 10, 31, 17, 0, 0).unwrap();
        let keys: Vec<String> = slots_until(&s, start, due, due + Duration::days(5))
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(keys, ["before-1d"]);
    }
}
