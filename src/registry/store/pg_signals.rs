//! PostgreSQL: which replica delivers Shared Signals, and the wake-ups between replicas.
//!
//! Every replica keeps one dedicated connection (outside the pool) that
//!
//! - tries `pg_try_advisory_lock` on the delivery key (mixed with `current_schema()`, like the
//!   write lock, so that registries in two schemas of one database never meet) every second
//!   until it holds it: the holder is the one replica that fans the outbox out and pushes
//!   SETs. The lock is a session lock: it lives exactly as long as this connection, so a
//!   replica killed with SIGKILL (or cut off from the database) frees it when PostgreSQL sees
//!   the connection close, and the next replica to try takes over. The holder checks its
//!   connection every second and stops delivering the moment it fails;
//! - `LISTEN`s on the schema's channel (`steward_sig_` + md5 of the schema name). Two kinds
//!   of payload travel on it: `outbox`, sent by `NOTIFY` inside every write transaction that
//!   adds an outbox row (so it arrives at commit, never before), which wakes the holder's
//!   fan-out; and `stream:<id>`, sent by a replica after it queued SETs on a stream or changed
//!   its state, which wakes that stream's push task (on the holder) and long polls waiting on
//!   it (on any replica). A received notification is never sent on again, so nothing loops.
//!
//! A notification can be lost (no holder was listening at that instant, a connection broke):
//! the holder also passes over the outbox every 500 ms and over each push stream every 5 s,
//! and a new holder starts with a full pass.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// The delivery lock's key ("stewardS"), mixed with the schema's name (see `postgres.rs`).
const DELIVERY_LOCK: i64 = 0x7374_6577_6172_6453;

/// How often a replica that does not deliver tries the lock, and the holder checks its
/// connection.
pub const LOCK_RETRY: Duration = Duration::from_secs(1);

/// The longest a lock attempt, a liveness check or a notification may take before the
/// connection is given up (and, with it, the lock).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQL that sends `outbox` on the schema's channel; run inside the write transaction that
/// added an outbox row.
pub const NOTIFY_OUTBOX: &str =
    "SELECT pg_notify('steward_sig_' || md5(current_schema()), 'outbox')";

/// What a replica heard from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// An outbox row committed (fan out).
    Outbox,
    /// A stream's queue or state changed.
    Stream(String),
}

impl Heard {
    fn parse(payload: &str) -> Option<Heard> {
        if payload == "outbox" {
            return Some(Heard::Outbox);
        }
        payload
            .strip_prefix("stream:")
            .filter(|id| !id.is_empty())
            .map(|id| Heard::Stream(id.to_string()))
    }
}

/// One replica's link to the others; dropping it closes the connection (freeing the lock).
pub struct Link {
    delivering: watch::Receiver<bool>,
    announce: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Connects in the background (on the current tokio runtime) and keeps reconnecting;
    /// `heard` is called for every notification another connection sent.
    pub fn start(config: tokio_postgres::Config, heard: Arc<dyn Fn(Heard) + Send + Sync>) -> Link {
        // Named, so that an operator finds it in pg_stat_activity.
        let mut config = config;
        config.application_name("steward-signals");
        let (delivering_tx, delivering) = watch::channel(false);
        let (announce, announce_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config, delivering_tx, announce_rx, heard));
        Link {
            delivering,
            announce,
            task,
        }
    }

    /// Whether this replica holds the delivery lock now.
    pub fn delivering(&self) -> bool {
        *self.delivering.borrow()
    }

    /// Changes of [`Link::delivering`].
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.delivering.clone()
    }

    /// Tells the other replicas that this stream's queue or state changed (best effort).
    pub fn announce(&self, stream_id: &str) {
        let _ = self.announce.send(stream_id.to_string());
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    config: tokio_postgres::Config,
    delivering: watch::Sender<bool>,
    mut announce: mpsc::UnboundedReceiver<String>,
    heard: Arc<dyn Fn(Heard) + Send + Sync>,
) {
    let mut failing = false;
    loop {
        let ended = session(&config, &delivering, &mut announce, heard.as_ref()).await;
        let was_delivering = delivering.send_replace(false);
        match ended {
            Ok(()) => return,
            Err(e) => {
                if was_delivering {
                    tracing::warn!(
                        "signals: this replica stops delivering (its lock connection failed: {e})"
                    );
                } else if !failing {
                    tracing::warn!("signals: the delivery lock's connection failed: {e}");
                }
                failing = true;
            }
        }
        tokio::time::sleep(LOCK_RETRY).await;
    }
}

/// One connection's life: returns Ok when the link was dropped, Err when the connection failed.
async fn session(
    config: &tokio_postgres::Config,
    delivering: &watch::Sender<bool>,
    announce: &mut mpsc::UnboundedReceiver<String>,
    heard: &(dyn Fn(Heard) + Send + Sync),
) -> Result<(), String> {
    let failed =
        |e: tokio_postgres::Error| crate::registry::store::sql::Error::Postgres(e).to_string();
    // Its socket is driven until this returns (the lock is freed with the connection).
    let mut link = tokio::time::timeout(CALL_TIMEOUT, super::postgres::Listening::connect(config))
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(failed)?;
    let (client, notes) = (&link.client, &mut link.notifications);
    let timed = |what: &'static str| move |_| format!("{what} timed out");
    let row = tokio::time::timeout(
        CALL_TIMEOUT,
        client.query_one(
            "SELECT 'steward_sig_' || md5(current_schema()), pg_backend_pid()",
            &[],
        ),
    )
    .await
    .map_err(timed("reading the schema"))?
    .map_err(failed)?;
    let channel: String = row.get(0);
    let own_pid: i32 = row.get(1);
    tokio::time::timeout(
        CALL_TIMEOUT,
        client.batch_execute(&format!("LISTEN \"{channel}\"")),
    )
    .await
    .map_err(timed("LISTEN"))?
    .map_err(failed)?;
    let try_lock = format!(
        "SELECT pg_try_advisory_lock({})",
        super::postgres::lock_key(DELIVERY_LOCK)
    );
    let mut tick = tokio::time::interval(LOCK_RETRY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut holder = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if holder {
                    tokio::time::timeout(CALL_TIMEOUT, client.simple_query("SELECT 1"))
                        .await
                        .map_err(timed("the liveness check"))?
                        .map_err(failed)?;
                } else {
                    let got: bool = tokio::time::timeout(CALL_TIMEOUT, client.query_one(&try_lock, &[]))
                        .await
                        .map_err(timed("the lock attempt"))?
                        .map_err(failed)?
                        .get(0);
                    if got {
                        holder = true;
                        delivering.send_replace(true);
                        tracing::info!("signals: this replica delivers Shared Signals now");
                    }
                }
            }
            note = notes.recv() => {
                let Some(note) = note else {
                    return Err("the connection closed".into());
                };
                if note.process_id() != own_pid
                    && let Some(h) = Heard::parse(note.payload())
                {
                    heard(h);
                }
            }
            stream = announce.recv() => {
                let Some(stream) = stream else { return Ok(()) };
                tokio::time::timeout(
                    CALL_TIMEOUT,
                    client.execute("SELECT pg_notify($1, $2)", &[&channel, &format!("stream:{stream}")]),
                )
                .await
                .map_err(timed("a notification"))?
                .map_err(failed)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Heard;

    #[test]
    fn payloads_parse_and_strangers_are_ignored() {
        assert_eq!(Heard::parse("outbox"), Some(Heard::Outbox));
        assert_eq!(
            Heard::parse("stream:abc"),
            Some(Heard::Stream("abc".into()))
        );
        assert_eq!(Heard::parse("stream:"), None);
        assert_eq!(Heard::parse("revoked:x"), None);
        assert_eq!(Heard::parse(""), None);
    }
}
