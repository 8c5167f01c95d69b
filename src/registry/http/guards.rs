//! Guards of the perimeter that live in the request path: rate limits on failed
//! authentication, and a bound on large reads running at once.
//!
//! Failed authentication is counted twice, with `governor` keyed limiters: per source address,
//! and per credential (the agent an assertion or secret names, or a presented API token's
//! digest). Only failures are counted and only failures are refused: a failure beyond either
//! budget is answered 429 with `Retry-After` instead of 401. A success is never refused, so a
//! flood of bad assertions naming an agent never locks out that agent's validly signed ones, and
//! an attacker sharing an address with a responder (a NAT, the TLS proxy in front of the
//! registry) can never jam the revoke brake. What a failure costs is bounded instead: one hash
//! lookup for an API token, at most twenty signature checks (off the async workers) for an
//! assertion.
//!
//! The first refusal of a burst writes one `auth.failure_burst` audit event; a burst ends after
//! a minute without refusals for that key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::api::ApiErrorBody;

/// The limits the guards enforce.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Failed authentications one source address may make per minute (also the burst).
    pub source_failures_per_minute: u32,
    /// Failed authentications against one credential per minute (also the burst).
    pub credential_failures_per_minute: u32,
    /// A list read asking for more than this many rows is a large read.
    pub large_read_rows: u32,
    /// Large reads that run at once.
    pub large_reads_at_once: usize,
    /// Large reads that may wait for a turn; beyond that they are answered 503.
    pub large_reads_waiting: usize,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            source_failures_per_minute: 30,
            credential_failures_per_minute: 10,
            large_read_rows: 100,
            large_reads_at_once: 2,
            large_reads_waiting: 32,
        }
    }
}

impl GuardSettings {
    /// The budgets of one replica among `replicas` behind one load balancer: each process
    /// counts only the failures it sees, so the failed-authentication budgets are divided by
    /// the number of replicas (rounded up, at least 1), and the whole deployment allows about
    /// what one registry would. The large-read bounds stay per process (they protect its own
    /// connections).
    pub fn per_replica(self, replicas: u32) -> GuardSettings {
        GuardSettings {
            source_failures_per_minute: budget_per_replica(
                self.source_failures_per_minute,
                replicas,
            ),
            credential_failures_per_minute: budget_per_replica(
                self.credential_failures_per_minute,
                replicas,
            ),
            ..self
        }
    }
}

/// `budget` divided among `replicas`, rounded up, at least 1 (0 replicas counts as 1).
pub fn budget_per_replica(budget: u32, replicas: u32) -> u32 {
    budget.div_ceil(replicas.max(1)).max(1)
}

/// A refusal for too many failures: 429 with `Retry-After` (whole seconds, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyFailures {
    pub retry_after: Duration,
}

impl TooManyFailures {
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }

    pub fn message(&self) -> String {
        format!(
            "too many failed authentications; try again in {} s",
            self.retry_after_secs()
        )
    }

    /// Adds `Retry-After` to a response.
    pub fn stamp(&self, response: &mut Response) {
        if let Ok(v) = HeaderValue::from_str(&self.retry_after_secs().to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
}

impl IntoResponse for TooManyFailures {
    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(ApiErrorBody {
                error: "too_many_failures".into(),
                message: self.message(),
            }),
        )
            .into_response();
        self.stamp(&mut response);
        response
    }
}

/// What a failure recorded: whether it is over a limit, and which bursts just began.
#[derive(Debug, Default)]
pub struct FailureVerdict {
    pub refused: Option<TooManyFailures>,
    /// (kind, key) of limits whose burst began with this failure: one audit event each.
    pub new_bursts: Vec<(&'static str, String)>,
}

pub struct Guards {
    pub settings: GuardSettings,
    sources: DefaultKeyedRateLimiter<IpAddr>,
    credentials: DefaultKeyedRateLimiter<String>,
    /// The last refusal per (kind, key): a refusal after a quiet minute starts a new burst.
    bursts: Mutex<HashMap<(&'static str, String), Instant>>,
    large_reads: std::sync::Arc<Semaphore>,
    large_reads_waiting: std::sync::atomic::AtomicUsize,
}

/// A refusal-free minute ends a burst.
const BURST_QUIET: Duration = Duration::from_secs(60);
/// Above this many tracked keys, stale ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least one");
    Quota::per_minute(n).allow_burst(n)
}

impl Guards {
    pub fn new(settings: GuardSettings) -> Guards {
        Guards {
            sources: RateLimiter::keyed(per_minute(settings.source_failures_per_minute)),
            credentials: RateLimiter::keyed(per_minute(settings.credential_failures_per_minute)),
            bursts: Mutex::new(HashMap::new()),
            large_reads: std::sync::Arc::new(Semaphore::new(settings.large_reads_at_once.max(1))),
            large_reads_waiting: std::sync::atomic::AtomicUsize::new(0),
            settings,
        }
    }

    /// Counts one failed authentication from `source` against `credential` (either may be
    /// unknown).
    pub fn record_failure(
        &self,
        source: Option<IpAddr>,
        credential: Option<&str>,
    ) -> FailureVerdict {
        let mut verdict = FailureVerdict::default();
        let clock = DefaultClock::default();
        if let Some(ip) = source
            && let Err(not_until) = self.sources.check_key(&ip)
        {
            let wait = not_until.wait_time_from(clock.now());
            self.refuse(&mut verdict, "source", ip.to_string(), wait);
        }
        if let Some(key) = credential
            && let Err(not_until) = self.credentials.check_key(&key.to_string())
        {
            let wait = not_until.wait_time_from(clock.now());
            self.refuse(&mut verdict, "credential", key.to_string(), wait);
        }
        if self.sources.len() > PRUNE_ABOVE * 10 {
            self.sources.retain_recent();
        }
        if self.credentials.len() > PRUNE_ABOVE * 10 {
            self.credentials.retain_recent();
        }
        verdict
    }

    fn refuse(
        &self,
        verdict: &mut FailureVerdict,
        kind: &'static str,
        key: String,
        wait: Duration,
    ) {
        let wait = wait.max(Duration::from_secs(1));
        let longer = verdict.refused.is_none_or(|r| r.retry_after < wait);
        if longer {
            verdict.refused = Some(TooManyFailures { retry_after: wait });
        }
        let now = Instant::now();
        let mut bursts = self.bursts.lock().unwrap_or_else(|p| p.into_inner());
        if bursts.len() > PRUNE_ABOVE {
            bursts.retain(|_, last| now.duration_since(*last) < BURST_QUIET);
        }
        let slot = (kind, key);
        let new_burst = bursts
            .get(&slot)
            .is_none_or(|last| now.duration_since(*last) >= BURST_QUIET);
        if new_burst {
            verdict.new_bursts.push(slot.clone());
        }
        bursts.insert(slot, now);
    }

    /// A turn for a large read, or `None` when too many are already waiting (answer 503).
    pub async fn large_read(&self) -> Option<OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering;
        if let Ok(p) = self.large_reads.clone().try_acquire_owned() {
            return Some(p);
        }
        let waiting = self.large_reads_waiting.fetch_add(1, Ordering::SeqCst);
        if waiting >= self.settings.large_reads_waiting {
            self.large_reads_waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = self.large_reads.clone().acquire_owned().await.ok();
        self.large_reads_waiting.fetch_sub(1, Ordering::SeqCst);
        permit
    }
}

/// The address a request came from (when it came through the perimeter's accept loop).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            crate::registry::perimeter::peer_of(&parts.extensions).map(|a| a.ip()),
        ))
    }
}

/// Counts a failed authentication; writes one audit event per new burst (in the background:
/// the answer never waits for it); returns the refusal when a limit is exceeded.
pub fn note_failure(
    state: &super::AppState,
    peer: Option<IpAddr>,
    credential: Option<&str>,
    method: &'static str,
) -> Option<TooManyFailures> {
    let verdict = state.guards.record_failure(peer, credential);
    for (kind, key) in verdict.new_bursts {
        let per_minute = match kind {
            "source" => state.guards.settings.source_failures_per_minute,
            _ => state.guards.settings.credential_failures_per_minute,
        };
        tracing::warn!(kind, key = %key, method, per_minute, "a burst of failed authentication");
        let burst = crate::registry::store::perimeter::AuthFailureBurst {
            kind,
            key,
            method,
            per_minute,
        };
        let store = state.store.clone();
        tokio::task::spawn_blocking(move || {
            let actor = crate::model::Actor::system("steward-perimeter");
            if let Err(e) = store.record_auth_failure_burst(&actor, &burst) {
                tracing::error!(error = %e, "cannot record a burst of failed authentication");
            }
        });
    }
    verdict.refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_divided_among_replicas_rounded_up_and_never_zero() {
        assert_eq!(budget_per_replica(30, 1), 30);
        assert_eq!(budget_per_replica(30, 3), 10);
        assert_eq!(budget_per_replica(10, 3), 4, "rounded up");
        assert_eq!(budget_per_replica(10, 4), 3);
        assert_eq!(budget_per_replica(1, 5), 1);
        assert_eq!(budget_per_replica(3, 100), 1, "at least one");
        assert_eq!(budget_per_replica(0, 2), 1, "at least one");
        assert_eq!(budget_per_replica(7, 0), 7, "no replicas counts as one");
        assert_eq!(budget_per_replica(u32::MAX, 2), u32::MAX / 2 + 1);
        let divided = GuardSettings {
            source_failures_per_minute: 30,
            credential_failures_per_minute: 10,
            large_read_rows: 100,
            large_reads_at_once: 2,
            large_reads_waiting: 32,
        }
        .per_replica(3);
        assert_eq!(divided.source_failures_per_minute, 10);
        assert_eq!(divided.credential_failures_per_minute, 4);
        assert_eq!(
            (divided.large_read_rows, divided.large_reads_at_once),
            (100, 2),
            "per process"
        );
    }

    #[test]
    fn a_divided_credential_budget_refuses_sooner() {
        let guards = Guards::new(
            GuardSettings {
                credential_failures_per_minute: 10,
                ..GuardSettings::default()
            }
            .per_replica(3),
        );
        for _ in 0..4 {
            assert!(guards.record_failure(None, Some("ag_x")).refused.is_none());
        }
        assert!(guards.record_failure(None, Some("ag_x")).refused.is_some());
    }

    #[test]
    fn a_source_is_refused_after_its_budget_and_one_burst_is_reported() {
        let guards = Guards::new(GuardSettings {
            source_failures_per_minute: 3,
            ..GuardSettings::default()
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            let v = guards.record_failure(Some(ip), None);
            assert!(v.refused.is_none());
        }
        let v = guards.record_failure(Some(ip), None);
        assert!(v.refused.is_some());
        assert_eq!(v.new_bursts, vec![("source", ip.to_string())]);
        let again = guards.record_failure(Some(ip), None);
        assert!(again.refused.is_some());
        assert!(again.new_bursts.is_empty(), "one event per burst");
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(guards.record_failure(Some(other), None).refused.is_none());
    }

    #[test]
    fn credential_failures_are_counted_per_credential() {
        let guards = Guards::new(GuardSettings {
            credential_failures_per_minute: 2,
            ..GuardSettings::default()
        });
        assert!(guards.record_failure(None, Some("agt_a")).refused.is_none());
        assert!(guards.record_failure(None, Some("agt_a")).refused.is_none());
        assert!(guards.record_failure(None, Some("agt_a")).refused.is_some());
        assert!(guards.record_failure(None, Some("agt_b")).refused.is_none());
    }
}
