//! Shared Signals streams, the outbox and the per-stream queues of signed SETs.
//!
//! Concurrency contract:
//! - The outbox row of an action that ends access is written by the store inside the
//!   transaction of the change itself (see `sqlite_streams::outbox_on_audit`, called from the
//!   audit append), so that a committed change always has its row and a rolled-back one never.
//! - [`StreamStore::fan_out`] inserts one action's SETs into the stream queues and marks its
//!   outbox row done in one transaction: a crash before it leaves the row pending (fanned out
//!   again after restart, under fresh `jti`s, nothing delivered yet); after it, every SET is
//!   queued durably.
//! - A queued SET leaves `pending` only by [`StreamStore::mark_delivered`] (push: after a 2xx),
//!   an acknowledgement (poll) or a permanent refusal by the receiver: delivery is at least
//!   once, and per stream in queue order (`seq`).
//! - Replicas over one PostgreSQL database share the outbox and the queues (nothing of the
//!   fan-out or of a queue's progress is kept in memory); only the replica holding the delivery
//!   lock (`pg_signals.rs`) fans out and pushes, and a second fan-out of one row (two holders
//!   for an instant during a handover) queues nothing, because the row is claimed first.

use chrono::{DateTime, Utc};

use crate::model::signals::{FanOut, SetError, StreamState, StreamSummary};
use crate::model::{Actor, CredentialKind};
use crate::registry::store::StoreResult;

/// A stream as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRow {
    pub id: String,
    /// `resource:<id>` or `admin:<email>`.
    pub receiver: String,
    pub method: String,
    pub endpoint_url: Option<String>,
    pub authorization_header: Option<String>,
    pub events_requested: Vec<String>,
    pub description: Option<String>,
    pub status: StreamState,
    pub reason: Option<String>,
    /// Subject keys (`agent:<id>`, `person:<email>`) the receiver removed from the stream.
    pub excluded: Vec<String>,
    pub consecutive_failures: u32,
    pub last_verification_at: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A stream's changeable fields (create, update, replace).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFields {
    pub method: String,
    pub endpoint_url: Option<String>,
    pub authorization_header: Option<String>,
    pub events_requested: Vec<String>,
    pub description: Option<String>,
}

/// What an action that ends access did, as the outbox keeps it until fan-out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutboxEvent {
    /// `session-revoked`, `credential-change` or `token-claims-change`.
    pub kind: String,
    /// The audit action that caused it (`agent.revoke`, `token.revoke`, …).
    pub action: String,
    /// The agents concerned (a subtree revoke names each; a leaver names none).
    #[serde(default)]
    pub agents: Vec<String>,
    /// The person concerned (a leaver, a delegation's person, a revoked token's subject).
    #[serde(default)]
    pub person: Option<String>,
    /// A revoked token (RFC 7009).
    #[serde(default)]
    pub jti: Option<String>,
    /// A removed grant.
    #[serde(default)]
    pub scope: Option<String>,
    /// The agent's scopes after the change (token-claims-change).
    #[serde(default)]
    pub remaining_scopes: Vec<String>,
    /// credential-change: `create`, `revoke`, `update`, `delete`.
    #[serde(default)]
    pub change_type: Option<String>,
    #[serde(default)]
    pub credential_kind: Option<CredentialKind>,
    #[serde(default)]
    pub credential_label: Option<String>,
    /// The catalogued resources whose streams may carry the event (snapshot at the change).
    #[serde(default)]
    pub resources: Vec<String>,
    pub actor: Actor,
    #[serde(default)]
    pub reason: Option<String>,
    /// Unix seconds of the change.
    pub time: i64,
}

/// A pending outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub audit_seq: i64,
    pub event: OutboxEvent,
}

/// One signed SET for one stream.
#[derive(Debug, Clone)]
pub struct QueuedSet {
    pub stream_id: String,
    pub jti: String,
    pub audit_seq: i64,
    pub set: String,
}

/// A queued SET awaiting delivery.
#[derive(Debug, Clone)]
pub struct PendingSet {
    pub seq: i64,
    pub jti: String,
    pub set: String,
}

/// What an acknowledgement did, or which jtis it did not know.
#[derive(Debug, Clone, Default)]
pub struct AckOutcome {
    pub acknowledged: u64,
    pub refused: u64,
}

/// Woken after a transaction that wrote an outbox row commits: the transmitter's fan-out task
/// waits on it (with a short fallback tick).
pub static OUTBOX_WAKE: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

pub trait StreamStore {
    fn create_stream(
        &self,
        actor: &Actor,
        id: &str,
        receiver: &str,
        fields: &StreamFields,
    ) -> StoreResult<StreamRow>;
    fn stream(&self, id: &str) -> StoreResult<Option<StreamRow>>;
    /// Every stream (None) or one receiver's.
    fn streams(&self, receiver: Option<&str>) -> StoreResult<Vec<StreamRow>>;
    fn update_stream(
        &self,
        actor: &Actor,
        id: &str,
        fields: &StreamFields,
    ) -> StoreResult<StreamRow>;
    fn set_stream_status(
        &self,
        actor: &Actor,
        id: &str,
        status: StreamState,
        reason: Option<&str>,
    ) -> StoreResult<StreamRow>;
    /// Deletes a stream with its queue and subjects; false when there was none.
    fn delete_stream(&self, actor: &Actor, id: &str) -> StoreResult<bool>;
    /// Includes (true) or excludes (false) a subject key on a stream.
    fn set_stream_subject(&self, id: &str, key: &str, included: bool) -> StoreResult<()>;
    /// Notes a verification request (for `min_verification_interval`).
    fn note_verification(&self, id: &str, at: i64) -> StoreResult<()>;
    /// May a resource's stream see this subject? Agents: holds one of its scopes. People: had a
    /// token addressed to one of its audiences. Unknown subjects: false.
    fn resource_may_see(&self, resource_id: &str, key: &str) -> StoreResult<bool>;
    /// Whether a resource with this id exists in the catalogue.
    fn resource_exists(&self, resource_id: &str) -> StoreResult<bool>;

    /// Pending outbox rows, oldest first.
    fn pending_outbox(&self, limit: u32) -> StoreResult<Vec<OutboxRow>>;
    /// Queues `sets` and marks the outbox row done, in one transaction.
    fn fan_out(&self, outbox_id: i64, sets: &[QueuedSet]) -> StoreResult<()>;
    /// Queues SETs that no outbox row caused (verification events).
    fn queue_sets(&self, sets: &[QueuedSet]) -> StoreResult<()>;
    /// The oldest pending SETs of a stream, in order.
    fn pending_sets(&self, stream_id: &str, limit: u32) -> StoreResult<Vec<PendingSet>>;
    /// Whether more than `after` SETs are pending (poll's `moreAvailable`).
    fn pending_count(&self, stream_id: &str) -> StoreResult<u64>;
    /// Push: these SETs were accepted; resets the failure count.
    fn mark_delivered(&self, stream_id: &str, jtis: &[String]) -> StoreResult<()>;
    /// Push: [`StreamStore::mark_delivered`] for several streams in one transaction (the
    /// transmitter records what every stream delivered meanwhile at once, so that a hundred
    /// receivers' acknowledgements take the writer once, not a hundred times).
    fn mark_delivered_many(&self, batch: &[(String, Vec<String>)]) -> StoreResult<()>;
    /// Push: the receiver refused this SET for good (RFC 8935 §2.3 error).
    fn mark_refused(&self, stream_id: &str, jti: &str, error: &str) -> StoreResult<()>;
    /// Push: a delivery attempt failed (retried); pauses the stream after `pause_after`
    /// consecutive failures. Returns the stream's state afterwards.
    fn record_failure(
        &self,
        stream_id: &str,
        error: &str,
        pause_after: u32,
    ) -> StoreResult<StreamState>;
    /// Poll: acknowledges and refuses SETs. Any jti the stream never queued fails the whole
    /// call (nothing changes) with `invalid_request` naming it; a jti already acknowledged is
    /// acknowledged again (a retried poll).
    fn acknowledge(
        &self,
        stream_id: &str,
        ack: &[String],
        errs: &[(String, SetError)],
    ) -> StoreResult<AckOutcome>;
    /// Every stream with its delivery health.
    fn stream_summaries(&self, receiver: Option<&str>) -> StoreResult<Vec<StreamSummary>>;
    /// What became of one action's SETs, and who acted (the audit event's actor id).
    fn fan_out_status(&self, audit_seq: i64) -> StoreResult<(FanOut, String)>;
    /// The shared database's connection settings when several replicas may run over this
    /// store (PostgreSQL: they agree through it on which one delivers, see `pg_signals.rs`);
    /// `None` when the store belongs to one process (SQLite), which then always delivers.
    fn delivery_peers(&self) -> Option<tokio_postgres::Config> {
        None
    }
    /// Deletes the SETs delivered or refused at or before `done_before` (unix seconds) and the
    /// outbox rows fanned out by then whose SETs are all done: a bounded history. Pending SETs
    /// and unfanned outbox rows are never touched. Returns how many SETs were deleted.
    fn prune_delivered(&self, done_before: i64) -> StoreResult<u64>;
}
