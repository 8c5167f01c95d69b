//! The registry's clock: what time it is for every decision and record (token lifetimes,
//! expiry, due dates, audit times, retention).
//!
//! One registry has one clock. The store owns it (`SqliteStore::open_with_clock`; `open` uses
//! the system clock) and everything that holds the store reads it through `Store::clock`: the
//! token service (JWT `exp`/`iat`/`nbf` included), approvals, reviews, signals, the behaviour
//! engine and the HTTP routes. A manual clock exists for tests and embedders, so that expiry is
//! tested by advancing time instead of sleeping; it is reachable only through this Rust API —
//! never over HTTP, a CLI flag or a setting (a way to forge time in production would be a way
//! to revive expired tokens).
//!
//! Measuring how long something took stays on `std::time::Instant`: durations are not
//! decisions about what time it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

/// Where the registry reads the time. Cheap to clone; clones of a manual clock share its time.
#[derive(Clone, Default)]
pub struct Clock(Source);

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    /// Milliseconds since the Unix epoch, moved only by [`Clock::advance`] and [`Clock::set`].
    Manual(Arc<AtomicI64>),
    /// The system's time plus these milliseconds, moved by [`Clock::advance`].
    Offset(Arc<AtomicI64>),
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::System"),
            Source::Manual(_) => write!(f, "Clock::Manual({})", self.now().to_rfc3339()),
            Source::Offset(ms) => write!(f, "Clock::Offset({} ms)", ms.load(Ordering::SeqCst)),
        }
    }
}

impl Clock {
    /// The operating system's clock (the default).
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// A clock that stands at `start` until it is moved (millisecond resolution).
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock(Source::Manual(Arc::new(AtomicI64::new(
            start.timestamp_millis(),
        ))))
    }

    /// A clock that runs with the system's but can be moved ahead (or back) with
    /// [`Clock::advance`]: for tests that need time to pass for one rule (an expiry) while
    /// everything else keeps real time.
    pub fn offset() -> Clock {
        Clock(Source::Offset(Arc::new(AtomicI64::new(0))))
    }

    /// Whether this clock can be moved (manual or offset).
    pub fn is_manual(&self) -> bool {
        !matches!(self.0, Source::System)
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Source::System => Utc::now(),
            Source::Manual(ms) => Utc
                .timestamp_millis_opt(ms.load(Ordering::SeqCst))
                .single()
                .expect("a manual clock holds a representable time"),
            Source::Offset(ms) => {
                Utc::now() + chrono::Duration::milliseconds(ms.load(Ordering::SeqCst))
            }
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Moves a manual or offset clock forward by `by` (backward when negative).
    ///
    /// # Panics
    /// On the system clock: moving real time is a bug in the caller, never something to
    /// ignore silently.
    pub fn advance(&self, by: chrono::Duration) {
        match &self.0 {
            Source::System => panic!("Clock::advance on the system clock"),
            Source::Manual(ms) | Source::Offset(ms) => {
                ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
            }
        }
    }

    /// Sets a manual clock to `at` (an offset clock to read `at` now, running on from there).
    ///
    /// # Panics
    /// On the system clock (see [`Clock::advance`]).
    pub fn set(&self, at: DateTime<Utc>) {
        match &self.0 {
            Source::System => panic!("Clock::set on the system clock"),
            Source::Manual(ms) => ms.store(at.timestamp_millis(), Ordering::SeqCst),
            Source::Offset(ms) => ms.store(
                at.timestamp_millis() - Utc::now().timestamp_millis(),
                Ordering::SeqCst,
            ),
        }
    }
}

thread_local! {
    /// The clock of the store call running on this thread (see [`Clock::scope`]).
    static CURRENT: std::cell::RefCell<Option<Clock>> = const { std::cell::RefCell::new(None) };
}

impl Clock {
    /// Runs `f` with this clock as the thread's current clock (see [`current_now`]): the store
    /// installs its clock around each transaction, so that helpers that see only the
    /// transaction (the audit append, the outbox) date their records by the same clock.
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Restore(Option<Clock>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let before = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = before);
            }
        }
        let before = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        let _restore = Restore(before);
        f()
    }
}

/// The time by the clock of the store call running on this thread, or the system's outside one.
pub fn current_now() -> DateTime<Utc> {
    CURRENT
        .with(|c| c.borrow().as_ref().map(Clock::now))
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_clones_share_it() {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let clock = Clock::manual(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(
            clock.now(),
            start,
            "a manual clock does not follow real time"
        );
        other.advance(chrono::Duration::milliseconds(2_500));
        assert_eq!(clock.now(), start + chrono::Duration::milliseconds(2_500));
        assert_eq!(clock.unix(), start.timestamp() + 2);
        assert_eq!(clock.unix_millis(), start.timestamp_millis() + 2_500);
        clock.set(start);
        assert_eq!(other.now(), start);
        assert!(clock.is_manual());
    }

    #[test]
    fn a_scope_dates_by_its_clock_and_restores_the_one_before() {
        let start = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let outer = Clock::manual(start);
        let inner = Clock::manual(start + chrono::Duration::days(1));
        outer.scope(|| {
            assert_eq!(current_now(), start);
            inner.scope(|| assert_eq!(current_now(), start + chrono::Duration::days(1)));
            assert_eq!(current_now(), start);
        });
        // Outside any scope: the system's time.
        assert!((current_now() - Utc::now()).num_seconds().abs() < 5);
    }

    #[test]
    fn an_offset_clock_runs_with_real_time_shifted_by_advance() {
        let clock = Clock::offset();
        assert!((clock.now() - Utc::now()).num_milliseconds().abs() < 1_000);
        clock.advance(chrono::Duration::hours(2));
        let ahead = clock.now() - Utc::now();
        assert!(ahead > chrono::Duration::minutes(119) && ahead < chrono::Duration::minutes(121));
        let before = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(clock.now() > before, "an offset clock keeps running");
    }

    #[test]
    fn the_system_clock_follows_real_time_and_refuses_to_be_moved() {
        let clock = Clock::system();
        let before = Utc::now();
        let now = clock.now();
        assert!(now >= before && now <= Utc::now());
        assert!(!clock.is_manual());
        let moved = std::panic::catch_unwind(|| clock.advance(chrono::Duration::seconds(1)));
        assert!(moved.is_err());
    }
}
