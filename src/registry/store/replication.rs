//! Replicas over one PostgreSQL database hear each other's changes.
//!
//! Each replica keeps in memory what it must answer without the database: the live-token index
//! (introspection, revocation), the token facts' copy and the catalogue's scope index. A write
//! changes them on the replica that makes it; this module carries the change to the others:
//!
//! - **Publishing**: every write transaction on PostgreSQL ends with one `pg_notify` on the
//!   schema's channel, carrying what it did to the index ([`LiveChange`]s recorded while it
//!   ran), whether it touched token facts, and whether it changed the catalogue. PostgreSQL
//!   delivers a notification only if the transaction commits, and to every listener in commit
//!   order. A notice too large for one notification (8000 bytes) is split; a single change
//!   too large for one becomes a "reload" notice.
//! - **Following**: each replica holds one extra connection that `LISTEN`s, and one thread that
//!   applies notices in the order they arrive: revocations to the index, stored tokens read back
//!   by jti (an issued notice carries only jtis), facts invalidated, catalogue re-read.
//! - **Failing closed**: when the listening connection drops, or does not answer a ping within
//!   [`PING_EVERY`], the replica is *not synced*: no token reads as live and none is issued
//!   ([`LiveTokens::set_synced`]), the facts copy is bypassed, and `/healthz` answers 503.
//!   Once it listens again it reloads the whole index from a snapshot taken after `LISTEN`, so
//!   that nothing committed meanwhile is missed, and only then reads as synced.
//!
//! On SQLite there is one process and nothing to carry: none of this runs.

use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::catalogue::ScopeIndex;
use super::facts::FactsCache;
use crate::registry::clock::Clock;
use crate::registry::store::postgres::{self, PgDatabase};
use crate::registry::store::sql::{self, Tx};
use crate::registry::store::{StoreError, StoreResult};
use crate::registry::tokens::live::{LiveChange, LiveTokens};

/// How often the listening connection is pinged; a ping unanswered for as long marks the
/// replica not synced (a silent network partition is found within twice this).
const PING_EVERY: Duration = Duration::from_secs(2);

/// Waits between attempts to listen again.
const RECONNECT_WAIT: Duration = Duration::from_millis(250);

/// PostgreSQL's limit on a notification's payload is 8000 bytes; room is kept for the envelope.
const MAX_PAYLOAD: usize = 7000;

/// What one committed write transaction changed, as published.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Notice {
    /// The replica that wrote (it has applied the changes already).
    pub from: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub facts: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub catalogue: bool,
    /// Too much changed to say: re-read everything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reload: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<LiveChange>,
}

thread_local! {
    static CATALOGUE_CHANGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Said by a write that changed the catalogue's scopes (the other replicas re-read them).
pub(super) fn note_catalogue() {
    CATALOGUE_CHANGED.with(|c| c.set(true));
}

/// Clears what [`note_catalogue`] said (at the start of each write).
pub(super) fn take_catalogue() -> bool {
    CATALOGUE_CHANGED.with(|c| c.replace(false))
}

/// The notices to send for one transaction (none when it changed nothing others hold).
pub(super) fn notices(
    from: &str,
    facts: bool,
    catalogue: bool,
    changes: Vec<LiveChange>,
) -> Vec<String> {
    if !facts && !catalogue && changes.is_empty() {
        return Vec::new();
    }
    let envelope = |changes: Vec<LiveChange>, reload: bool| {
        serde_json::to_string(&Notice {
            from: from.to_string(),
            facts,
            catalogue,
            reload,
            changes,
        })
        .expect("a notice serialises")
    };
    let mut out = Vec::new();
    let mut batch: Vec<LiveChange> = Vec::new();
    let mut size = 0;
    for change in changes {
        let len = serde_json::to_string(&change).map_or(MAX_PAYLOAD, |s| s.len() + 1);
        if len > MAX_PAYLOAD - 200 {
            // One change too large to say (thousands of ids): everyone re-reads.
            return vec![envelope(Vec::new(), true)];
        }
        if size + len > MAX_PAYLOAD - 200 && !batch.is_empty() {
            out.push(envelope(std::mem::take(&mut batch), false));
            size = 0;
        }
        size += len;
        batch.push(change);
    }
    if !batch.is_empty() || out.is_empty() {
        out.push(envelope(batch, false));
    }
    out
}

/// Sends the notices inside the transaction (delivered at its commit, dropped at rollback).
pub(super) fn publish(tx: &Tx<'_>, channel: &str, notices: &[String]) -> StoreResult<()> {
    for payload in notices {
        tx.query_row(
            "SELECT pg_notify(?1, ?2)",
            [channel, payload.as_str()],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// The channel of the schema the URL names (registries in two schemas of one database never
/// hear each other).
pub(super) fn channel_of(tx: &Tx<'_>) -> StoreResult<String> {
    Ok(tx.query_row(
        "SELECT 'steward_' || to_hex(hashtextextended(current_schema(), 0))",
        [],
        |r| r.get(0),
    )?)
}

/// What the follower's thread hears from the listening connection.
enum Heard {
    /// LISTEN is in place: everything committed from now on will be heard.
    Listening,
    Notice(String),
    /// The connection ended or stopped answering.
    Lost(String),
    Stop,
}

/// What the follower keeps current.
pub(super) struct Followed {
    pub replica: String,
    pub live: Arc<LiveTokens>,
    pub facts: Arc<FactsCache>,
    pub catalogue: Arc<RwLock<Arc<ScopeIndex>>>,
    pub clock: Clock,
}

/// A running follower; dropping it stops its thread and closes its connection.
pub(super) struct Follower {
    heard: mpsc::Sender<Heard>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.listener.abort();
        let _ = self.heard.send(Heard::Stop);
    }
}

/// Starts following: returns once this replica has listened and loaded its index (or with
/// the reason it could not within `first_sync`).
pub(super) fn follow(
    db: &PgDatabase,
    channel: String,
    followed: Followed,
    first_sync: Duration,
) -> StoreResult<Follower> {
    let (heard, hearing) = mpsc::channel();
    let (synced_tx, synced_rx) = mpsc::sync_channel::<Result<(), String>>(1);
    let mut config = db.config().clone();
    let name = format!(
        "{}-follower",
        config.get_application_name().unwrap_or("steward")
    );
    config.application_name(&name);
    let listener = postgres::runtime().spawn(listen_loop(config, channel, heard.clone()));
    let reader = db.clone();
    std::thread::Builder::new()
        .name("steward-follower".into())
        .spawn(move || follow_loop(reader, followed, hearing, synced_tx))
        .map_err(|e| StoreError::Internal(format!("cannot start the replica follower: {e}")))?;
    match synced_rx.recv_timeout(first_sync) {
        Ok(Ok(())) => Ok(Follower { heard, listener }),
        Ok(Err(e)) => Err(StoreError::Busy(e)),
        Err(_) => {
            listener.abort();
            let _ = heard.send(Heard::Stop);
            Err(StoreError::Busy(format!(
                "could not listen for the other replicas' changes within {} s",
                first_sync.as_secs()
            )))
        }
    }
}

/// Holds one listening connection at a time, reconnecting whenever it is lost.
async fn listen_loop(config: tokio_postgres::Config, channel: String, heard: mpsc::Sender<Heard>) {
    loop {
        let reason = match listen_once(&config, &channel, &heard).await {
            Ok(reason) => reason,
            Err(e) => e.to_string(),
        };
        if heard.send(Heard::Lost(reason)).is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT_WAIT).await;
    }
}

/// One listening connection, until it fails (returns why).
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    heard: &mpsc::Sender<Heard>,
) -> Result<String, sql::Error> {
    let mut link = postgres::Listening::connect(config).await?;
    link.client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    if heard.send(Heard::Listening).is_err() {
        return Ok("stopped".into());
    }
    let mut tick = tokio::time::interval(PING_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            note = link.notifications.recv() => {
                let Some(note) = note else {
                    return Ok("the connection closed".into());
                };
                if heard.send(Heard::Notice(note.payload().to_string())).is_err() {
                    return Ok("stopped".into());
                }
            }
            _ = tick.tick() => {
                match tokio::time::timeout(PING_EVERY, link.client.simple_query("")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => {
                        return Ok(format!(
                            "the database did not answer a ping within {} s",
                            PING_EVERY.as_secs()
                        ));
                    }
                }
            }
        }
    }
}

/// Applies what is heard, in order, on a thread of its own (it reads the database).
fn follow_loop(
    db: PgDatabase,
    followed: Followed,
    hearing: mpsc::Receiver<Heard>,
    first_synced: mpsc::SyncSender<Result<(), String>>,
) {
    let mut first_synced = Some(first_synced);
    while let Ok(heard) = hearing.recv() {
        match heard {
            Heard::Stop => return,
            Heard::Lost(reason) => {
                if followed.live.is_synced() {
                    tracing::error!(
                        reason = %reason,
                        "replica: lost the database's change feed; issuing and introspection \
                         stop until it is back"
                    );
                }
                unsync(&followed);
            }
            Heard::Listening => match resync(&db, &followed) {
                Ok(()) => {
                    tracing::info!("replica: following the other replicas' changes");
                    if let Some(tx) = first_synced.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Err(e) => {
                    // Stays not synced; the listener pings, fails and listens again.
                    tracing::error!(error = %e, "replica: could not reload the token index");
                    if let Some(tx) = first_synced.take() {
                        let _ = tx.send(Err(format!("could not load the token index: {e}")));
                    }
                }
            },
            Heard::Notice(payload) => {
                if let Err(e) = apply(&db, &followed, &payload) {
                    // A notice not applied is a change missed: fail closed and re-read.
                    tracing::error!(error = %e, "replica: could not apply a change; reloading");
                    unsync(&followed);
                    if let Err(e) = resync(&db, &followed) {
                        tracing::error!(error = %e, "replica: could not reload the token index");
                    }
                }
            }
        }
    }
}

/// Fails closed: no token reads as live, token facts are read from the database.
fn unsync(followed: &Followed) {
    followed.live.set_synced(false);
    followed.facts.set_bypass(true);
}

/// Re-reads everything, then answers again.
fn resync(db: &PgDatabase, followed: &Followed) -> StoreResult<()> {
    reload(db, followed)?;
    followed.facts.set_bypass(false);
    followed.live.set_synced(true);
    Ok(())
}

/// Re-reads everything the replica holds from one snapshot.
fn reload(db: &PgDatabase, followed: &Followed) -> StoreResult<()> {
    let scopes = db.read(|tx| {
        followed
            .clock
            .scope(|| super::load_live_tokens(tx, &followed.live))?;
        Ok(super::catalogue::load_scope_index(tx)?)
    })?;
    *followed
        .catalogue
        .write()
        .unwrap_or_else(|p| p.into_inner()) = Arc::new(scopes);
    followed.facts.invalidate();
    Ok(())
}

/// Applies one notice from another replica.
fn apply(db: &PgDatabase, followed: &Followed, payload: &str) -> StoreResult<()> {
    let notice: Notice = serde_json::from_str(payload)
        .map_err(|e| StoreError::Internal(format!("an unreadable change notice: {e}")))?;
    if notice.from == followed.replica {
        return Ok(());
    }
    if notice.reload {
        return reload(db, followed);
    }
    let now = followed.clock.unix();
    for change in &notice.changes {
        match change {
            LiveChange::Issued { jtis } => {
                let stored = db.read(|tx| {
                    Ok(tx
                        .prepare_cached(&format!(
                            "SELECT {} FROM issued_tokens t
                             WHERE jti IN (SELECT value FROM json_each(?1)) ORDER BY issued_at",
                            super::STORED_TOKEN_COLUMNS
                        ))?
                        .query_map(
                            [serde_json::to_string(jtis).unwrap_or_default()],
                            super::stored_token,
                        )?
                        .collect::<sql::Result<Vec<_>>>()?)
                })?;
                for (record, revoked) in &stored {
                    followed.live.insert_stored(record, *revoked);
                }
            }
            other => followed.live.apply(other, now),
        }
    }
    if notice.facts {
        followed.facts.invalidate();
    }
    if notice.catalogue {
        let scopes = db.read(|tx| Ok(super::catalogue::load_scope_index(tx)?))?;
        *followed
            .catalogue
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(scopes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_say_sends_nothing() {
        assert!(notices("r", false, false, Vec::new()).is_empty());
        let one = notices("r", true, false, Vec::new());
        assert_eq!(one.len(), 1);
        let n: Notice = serde_json::from_str(&one[0]).unwrap();
        assert!(n.facts && !n.reload && n.changes.is_empty());
    }

    #[test]
    fn many_changes_split_and_a_huge_one_reloads() {
        let changes: Vec<LiveChange> = (0..500)
            .map(|i| LiveChange::RevokeAgent {
                agent: format!("ag_{i:020}"),
            })
            .collect();
        let sent = notices("r", true, false, changes.clone());
        assert!(sent.len() > 1);
        let mut back = Vec::new();
        for payload in &sent {
            assert!(payload.len() <= MAX_PAYLOAD, "{}", payload.len());
            let n: Notice = serde_json::from_str(payload).unwrap();
            assert!(n.facts && !n.reload);
            back.extend(n.changes);
        }
        assert_eq!(back, changes, "every change, in order");

        let huge = LiveChange::BlockAgents {
            agents: (0..1000).map(|i| format!("ag_{i:020}")).collect(),
        };
        let sent = notices("r", false, false, vec![huge]);
        assert_eq!(sent.len(), 1);
        let n: Notice = serde_json::from_str(&sent[0]).unwrap();
        assert!(n.reload && n.changes.is_empty());
    }
}
