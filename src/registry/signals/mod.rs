//! The Shared Signals transmitter: fans the outbox out to stream queues as signed SETs, pushes
//! them (RFC 8935) with one task per push stream, and wakes pollers (RFC 8936).
//!
//! Nothing here runs on the path of a revoke: the change commits its outbox row, the fan-out
//! task is woken after the commit, and each stream's delivery runs on its own task, so a slow
//! or dead receiver delays only its own stream.
//!
//! Over PostgreSQL several replicas share the outbox and the queues; only the replica holding
//! the delivery lock fans out and pushes (see `store/pg_signals.rs`), the others serve polls
//! and pass on wake-ups. On SQLite the one process always delivers.

pub mod network;
pub mod set;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;

use crate::model::signals::{PUSH, SET_MEDIA_TYPE, SET_TYP, StreamState};
use crate::registry::store::pg_signals::{Heard, Link};
use crate::registry::store::streams::{OutboxRow, QueuedSet, StreamRow};
use crate::registry::store::{Store, StoreResult};
use crate::registry::tokens::TokenService;
use network::{GuardedResolver, ReceiverNetworks};

pub use crate::registry::store::streams::OUTBOX_WAKE;

/// How the transmitter delivers.
#[derive(Debug, Clone)]
pub struct SignalSettings {
    /// Consecutive failed pushes after which a stream is paused.
    pub pause_after: u32,
    /// First retry delay; doubles per failure up to `retry_max`, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Per push request.
    pub request_timeout: Duration,
    /// The longest a poll with `returnImmediately: false` waits.
    pub max_poll_wait: Duration,
    /// Seconds between two verification requests of one stream.
    pub min_verification_interval: u32,
    /// How long delivered (and refused) SETs and their outbox rows are kept before they are
    /// pruned: the history behind `/v1/signals/{seq}` and a poll receiver's repeated
    /// acknowledgements. Pending SETs are never pruned.
    pub keep_delivered: Duration,
    pub networks: ReceiverNetworks,
}

impl Default for SignalSettings {
    fn default() -> Self {
        SignalSettings {
            pause_after: 10,
            retry_base: Duration::from_millis(250),
            retry_max: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
            max_poll_wait: Duration::from_secs(25),
            min_verification_interval: 5,
            keep_delivered: Duration::from_secs(24 * 3600),
            networks: ReceiverNetworks::default(),
        }
    }
}

pub struct Signals {
    store: Arc<dyn Store>,
    tokens: Arc<TokenService>,
    pub settings: SignalSettings,
    pub networks: Arc<ReceiverNetworks>,
    http: reqwest::Client,
    /// Per stream: woken when SETs are queued or its state changes.
    wakes: Mutex<HashMap<String, Arc<Notify>>>,
    /// Per push stream: its delivery task.
    workers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    launched: std::sync::atomic::AtomicBool,
    /// Deliveries to record: every push task sends what its receiver accepted here, and one
    /// task writes all that is waiting in one transaction (see [`record_loop`]).
    deliveries: tokio::sync::mpsc::UnboundedSender<Delivered>,
    delivery_queue: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Delivered>>>,
    /// Over PostgreSQL: the delivery lock and the wake-ups between replicas (set by `launch`).
    link: std::sync::OnceLock<Link>,
}

/// One stream's accepted SETs, and who waits for them to be recorded.
struct Delivered {
    stream_id: String,
    jtis: Vec<String>,
    done: tokio::sync::oneshot::Sender<StoreResult<()>>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").finish_non_exhaustive()
    }
}

impl Signals {
    /// Builds the transmitter; [`Signals::launch`] starts its fan-out task (which also keeps
    /// one delivery task per push stream).
    pub fn start(
        store: Arc<dyn Store>,
        tokens: Arc<TokenService>,
        settings: SignalSettings,
    ) -> anyhow::Result<Arc<Signals>> {
        let networks = Arc::new(settings.networks.clone());
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .dns_resolver(Arc::new(GuardedResolver(networks.clone())))
            .user_agent(concat!("steward-ssf/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let (deliveries, delivery_queue) = tokio::sync::mpsc::unbounded_channel();
        let signals = Arc::new(Signals {
            store,
            tokens,
            settings,
            networks,
            http,
            wakes: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            launched: std::sync::atomic::AtomicBool::new(false),
            deliveries,
            delivery_queue: Mutex::new(Some(delivery_queue)),
            link: std::sync::OnceLock::new(),
        });
        Ok(signals)
    }

    /// Starts the fan-out task (once; the server calls this when it starts serving).
    pub fn launch(self: &Arc<Self>) {
        if !self
            .launched
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            if let Some(config) = self.store.delivery_peers() {
                let me = Arc::downgrade(self);
                let heard = Arc::new(move |h: Heard| {
                    let Some(s) = me.upgrade() else { return };
                    match h {
                        Heard::Outbox => OUTBOX_WAKE.notify_waiters(),
                        Heard::Stream(id) => {
                            s.wake_of(&id).notify_waiters();
                            // A stream made on another replica needs its push task here.
                            if s.delivering() {
                                OUTBOX_WAKE.notify_waiters();
                            }
                        }
                    }
                });
                let _ = self.link.set(Link::start(config, heard));
            }
            tokio::spawn(fan_out_loop(Arc::downgrade(self)));
            if let Some(queue) = self
                .delivery_queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                tokio::spawn(record_loop(self.store.clone(), queue));
            }
        }
    }

    /// Records a stream's accepted SETs (with every other stream's waiting at the time, in one
    /// transaction); returns once they are recorded, so that the stream's next read does not
    /// see them pending again.
    async fn record_delivered(&self, stream_id: &str, jtis: Vec<String>) -> StoreResult<()> {
        let (done, recorded) = tokio::sync::oneshot::channel();
        let sent = self.deliveries.send(Delivered {
            stream_id: stream_id.to_string(),
            jtis,
            done,
        });
        if let Err(tokio::sync::mpsc::error::SendError(d)) = sent {
            // The recorder is gone (never launched, or shutting down): record it here.
            let store = self.store.clone();
            return tokio::task::spawn_blocking(move || {
                store.mark_delivered(&d.stream_id, &d.jtis)
            })
            .await
            .map_err(|e| crate::registry::store::StoreError::Internal(e.to_string()))?;
        }
        recorded.await.map_err(|_| {
            crate::registry::store::StoreError::Internal("the delivery recorder stopped".into())
        })?
    }

    pub fn issuer(&self) -> &str {
        &self.tokens.issuer
    }

    /// The Notify of one stream.
    pub fn wake_of(&self, stream_id: &str) -> Arc<Notify> {
        self.wakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stream_id.to_string())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes a stream's delivery (state changed, SETs queued), here and on the other replicas.
    pub fn poke(&self, stream_id: &str) {
        self.wake_of(stream_id).notify_waiters();
        OUTBOX_WAKE.notify_waiters();
        self.announce(stream_id);
    }

    /// Tells the other replicas (PostgreSQL) that a stream's queue or state changed.
    fn announce(&self, stream_id: &str) {
        if let Some(link) = self.link.get() {
            link.announce(stream_id);
        }
    }

    /// Whether this process fans out and pushes: always on SQLite; over PostgreSQL, while this
    /// replica holds the delivery lock (false until it has taken it).
    pub fn delivering(&self) -> bool {
        self.link.get().is_none_or(Link::delivering)
    }

    /// Signs a SET.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.tokens.sign_with_active_key(claims, SET_TYP)
    }

    /// The `aud` of a stream's SETs: the resource id, or the admin's `admin:<email>`.
    pub fn audience(stream: &StreamRow) -> String {
        stream
            .receiver
            .strip_prefix("resource:")
            .unwrap_or(&stream.receiver)
            .to_string()
    }

    /// Queues one verification SET on a stream.
    pub async fn queue_verification(
        &self,
        stream: &StreamRow,
        state: Option<&str>,
    ) -> StoreResult<()> {
        let jti = crate::registry::tokens::new_jti();
        let claims = set::verification_claims(
            self.store.clock().unix(),
            self.issuer(),
            &Self::audience(stream),
            &jti,
            &stream.id,
            state,
        );
        let queued = QueuedSet {
            stream_id: stream.id.clone(),
            jti,
            audit_seq: 0,
            set: self.sign(&claims),
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.queue_sets(&[queued]))
            .await
            .map_err(|e| crate::registry::store::StoreError::Internal(e.to_string()))??;
        self.poke(&stream.id);
        Ok(())
    }

    /// The SETs of one outbox row, for every stream that may carry them.
    fn sets_for(&self, row: &OutboxRow, streams: &[StreamRow]) -> Vec<QueuedSet> {
        let event = &row.event;
        let event_type = set::event_type(&event.kind);
        let body = set::event_body(event);
        let mut out = Vec::new();
        for stream in streams {
            if stream.status == StreamState::Disabled
                || !stream.events_requested.iter().any(|e| e == event_type)
            {
                continue;
            }
            let resource = stream.receiver.strip_prefix("resource:");
            if let Some(r) = resource
                && !event.resources.iter().any(|x| x == r)
            {
                continue;
            }
            let excluded = |key: String| stream.excluded.contains(&key);
            let person_excluded = event
                .person
                .as_ref()
                .is_some_and(|p| excluded(format!("person:{}", p.to_lowercase())));
            let aud = Self::audience(stream);
            let mut push = |agent: Option<&str>| {
                let jti = crate::registry::tokens::new_jti();
                let sub_id = set::subject(
                    self.issuer(),
                    agent,
                    event.person.as_deref(),
                    event.jti.as_deref(),
                );
                let claims = set::claims(
                    self.store.clock().unix(),
                    self.issuer(),
                    &aud,
                    &jti,
                    row.audit_seq,
                    sub_id,
                    event_type,
                    body.clone(),
                );
                out.push(QueuedSet {
                    stream_id: stream.id.clone(),
                    jti,
                    audit_seq: row.audit_seq,
                    set: self.sign(&claims),
                });
            };
            if event.agents.is_empty() {
                if !person_excluded {
                    push(None);
                }
            } else {
                for agent in &event.agents {
                    if excluded(format!("agent:{agent}")) || person_excluded {
                        continue;
                    }
                    push(Some(agent));
                }
            }
        }
        out
    }

    /// One pass: fans out pending outbox rows, and makes sure every enabled push stream has
    /// its delivery task. Returns whether rows were fanned out.
    async fn fan_out_once(self: &Arc<Self>) -> StoreResult<bool> {
        let store = self.store.clone();
        let (rows, streams) = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::registry::store::StoreError>((
                store.pending_outbox(200)?,
                store.streams(None)?,
            ))
        })
        .await
        .map_err(|e| crate::registry::store::StoreError::Internal(e.to_string()))??;
        self.ensure_workers(&streams);
        let any = !rows.is_empty();
        for row in rows {
            let sets = self.sets_for(&row, &streams);
            let store = self.store.clone();
            let ids: Vec<String> = sets.iter().map(|s| s.stream_id.clone()).collect();
            let id = row.id;
            tokio::task::spawn_blocking(move || store.fan_out(id, &sets))
                .await
                .map_err(|e| crate::registry::store::StoreError::Internal(e.to_string()))??;
            let mut seen = std::collections::HashSet::new();
            for s in ids {
                if seen.insert(s.clone()) {
                    self.wake_of(&s).notify_waiters();
                    // Long polls on the other replicas wait for it too.
                    self.announce(&s);
                }
            }
        }
        Ok(any)
    }

    fn ensure_workers(self: &Arc<Self>, streams: &[StreamRow]) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|id, handle| {
            !handle.is_finished() && streams.iter().any(|s| &s.id == id && s.method == PUSH)
        });
        for s in streams {
            if s.method == PUSH && !workers.contains_key(&s.id) {
                let handle = tokio::spawn(push_loop(Arc::downgrade(self), s.id.clone()));
                workers.insert(s.id.clone(), handle);
            }
        }
    }

    /// Stops every delivery task (the server is shutting down).
    pub fn stop(&self) {
        for (_, h) in self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            h.abort();
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes what the push tasks delivered: whatever waits when a write starts goes into that one
/// transaction. A revoke then waits for the writer behind at most one such write, however many
/// receivers just acknowledged.
async fn record_loop(
    store: Arc<dyn Store>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Delivered>,
) {
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = queue.try_recv() {
            waiting.push(more);
        }
        let batch: Vec<(String, Vec<String>)> = waiting
            .iter_mut()
            .map(|d| (d.stream_id.clone(), std::mem::take(&mut d.jtis)))
            .collect();
        let store = store.clone();
        let result = tokio::task::spawn_blocking(move || store.mark_delivered_many(&batch))
            .await
            .unwrap_or_else(|e| Err(crate::registry::store::StoreError::Internal(e.to_string())));
        for d in waiting {
            let _ = d.done.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(crate::registry::store::StoreError::Internal(e.to_string())),
            });
        }
    }
}

async fn fan_out_loop(signals: Weak<Signals>) {
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        let notified = OUTBOX_WAKE.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(s) = signals.upgrade() else { return };
        if !s.delivering() {
            // Another replica delivers: no fan-out, no push task here, until this one takes
            // the delivery lock (then the next pass fans out all that waits).
            s.stop();
            let watch = s.link.get().map(Link::watch);
            drop(s);
            match watch {
                Some(mut w) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), w.changed()).await;
                }
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            }
            continue;
        }
        let more = match s.fan_out_once().await {
            Ok(more) => more,
            Err(e) => {
                tracing::warn!("signals: fan-out failed: {e}");
                false
            }
        };
        // The delivered history is pruned at most once a minute (sooner when it is kept for
        // less), between fan-out passes.
        let keep = s.settings.keep_delivered;
        let every = keep.min(Duration::from_secs(60));
        if !more && last_prune.is_none_or(|t| t.elapsed() >= every) {
            last_prune = Some(tokio::time::Instant::now());
            let store = s.store.clone();
            let before = s.store.clock().unix() - keep.as_secs() as i64;
            match tokio::task::spawn_blocking(move || store.prune_delivered(before)).await {
                Ok(Ok(n)) if n > 0 => tracing::debug!(pruned = n, "signals: delivered SETs pruned"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("signals: pruning delivered SETs failed: {e}"),
                Err(e) => tracing::warn!("signals: pruning delivered SETs failed: {e}"),
            }
        }
        drop(s);
        if more {
            continue;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
    }
}

/// One push stream's delivery: its queue in order, one SET per POST, retried with backoff and
/// jitter, paused after too many consecutive failures.
async fn push_loop(signals: Weak<Signals>, stream_id: String) {
    let mut failures: u32 = 0;
    loop {
        let Some(s) = signals.upgrade() else { return };
        if !s.delivering() {
            // Handed over (this replica lost the delivery lock): the holder delivers.
            return;
        }
        let wake = s.wake_of(&stream_id);
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let store = s.store.clone();
        let id = stream_id.clone();
        let read = tokio::task::spawn_blocking(move || {
            let stream = store.stream(&id)?;
            let pending = match &stream {
                Some(st) if st.status == StreamState::Enabled => store.pending_sets(&id, 50)?,
                _ => Vec::new(),
            };
            Ok::<_, crate::registry::store::StoreError>((stream, pending))
        })
        .await;
        let (stream, pending) = match read {
            Ok(Ok(v)) => v,
            _ => {
                drop(s);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(stream) = stream else { return };
        if stream.method != PUSH {
            return;
        }
        if pending.is_empty() {
            drop(s);
            let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
            continue;
        }
        let Some(url) = stream.endpoint_url.clone() else {
            return;
        };
        let mut delivered = Vec::new();
        let mut failed: Option<String> = None;
        for p in &pending {
            if !s.delivering() {
                break;
            }
            match push_one(&s, &url, stream.authorization_header.as_deref(), &p.set).await {
                Outcome::Accepted => delivered.push(p.jti.clone()),
                Outcome::Refused(why) => {
                    // Delivered in order so far; this one the receiver will never take.
                    let store = s.store.clone();
                    let (sid, jti, d) = (stream_id.clone(), p.jti.clone(), delivered.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        store.mark_delivered(&sid, &d)?;
                        store.mark_refused(&sid, &jti, &why)
                    })
                    .await;
                    delivered.clear();
                }
                Outcome::Failed(why) => {
                    failed = Some(why);
                    break;
                }
            }
        }
        if !delivered.is_empty() {
            if let Err(e) = s.record_delivered(&stream_id, delivered).await {
                // Not recorded: they stay pending and are pushed again (at least once).
                tracing::warn!("signals: recording deliveries of {stream_id} failed: {e}");
            }
            failures = 0;
        }
        if let Some(why) = failed {
            failures += 1;
            let store = s.store.clone();
            let sid = stream_id.clone();
            let pause_after = s.settings.pause_after;
            let _ =
                tokio::task::spawn_blocking(move || store.record_failure(&sid, &why, pause_after))
                    .await;
            let exp = s
                .settings
                .retry_base
                .saturating_mul(1u32 << failures.min(16))
                .min(s.settings.retry_max);
            let jitter = rand::rng().random_range(0.5..=1.0);
            let delay = exp.mul_f64(jitter);
            drop(s);
            // A resume (or new SETs) does not cut the backoff short: the receiver is failing.
            tokio::time::sleep(delay).await;
        } else {
            failures = 0;
        }
    }
}

enum Outcome {
    Accepted,
    /// RFC 8935 §2.3: the receiver answered 400 with an error for this SET; it will never
    /// accept it, so retrying would block the stream forever.
    Refused(String),
    Failed(String),
}

async fn push_one(s: &Signals, url: &str, authorization: Option<&str>, set: &str) -> Outcome {
    if let Ok(parsed) = reqwest::Url::parse(url)
        && let Some(host) = parsed.host_str()
        && let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
        && let Some(why) = s.networks.refusal(ip)
    {
        return Outcome::Failed(why);
    }
    let mut request = s
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, SET_MEDIA_TYPE)
        .header(reqwest::header::ACCEPT, "application/json")
        .body(set.to_string());
    if let Some(a) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, a);
    }
    match request.send().await {
        Ok(r)
            if r.status().as_u16() == 202
                || r.status().as_u16() == 200
                || r.status().as_u16() == 204 =>
        {
            Outcome::Accepted
        }
        Ok(r) if r.status().as_u16() == 400 => {
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            match body.get("err").and_then(|e| e.as_str()) {
                Some(err) => Outcome::Refused(format!(
                    "receiver refused the SET: {err}: {}",
                    body.get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or("")
                )),
                None => Outcome::Failed(format!("receiver answered {status}")),
            }
        }
        Ok(r) if r.status().is_redirection() => Outcome::Failed(format!(
            "receiver answered {} (redirects are not followed)",
            r.status()
        )),
        Ok(r) => Outcome::Failed(format!("receiver answered {}", r.status())),
        Err(e) if e.is_timeout() => Outcome::Failed("receiver timed out".into()),
        Err(e) => Outcome::Failed(format!("receiver unreachable: {}", error_chain(&e))),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
