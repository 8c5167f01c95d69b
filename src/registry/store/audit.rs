//! The audit log (a hash chain) and the change feed consoles follow. SQLite bodies in
//! sqlite_audit.rs.

use super::{StoreResult, Visibility};
use crate::model::Actor;
use crate::model::api::{AuditPage, AuditQuery, AuditVerification, ChangeFeed};

/// The audit log and the change feed.
///
/// Concurrency contract:
/// - Every audit event is appended inside the transaction of the change it records (by every
///   area's store, through the backend's one append helper): no change without its event, no
///   event without its change.
/// - **Audit sequence = commit order.** An append reads the chain's head (sequence and hash)
///   and writes head + 1 linked to it. On SQLite this is safe because there is one writer: no
///   two transactions can read the same head. **Depends on SQLite's single writer** (a second
///   backend must serialise appends, e.g. a head row locked `FOR UPDATE` in the same
///   transaction, or an advisory lock, or the chain forks).
/// - **The change-feed cursor is monotonic without gaps**: every change takes the next value of
///   one counter in its own transaction, and because transactions commit one at a time in
///   counter order, a reader that has seen position N has seen every position below N. A
///   console that resumes `after` N can never skip a change. **Depends on SQLite's single
///   writer** (with concurrent writers commit order can differ from counter order: a second
///   backend needs a cursor assigned at commit under the same serialisation, or snapshot
///   visibility, or a commit log).
/// - `audit_page`, `audit_verify`, `audit_head` and `changes` each read one snapshot: a
///   verification never sees half a transaction, and `audit_head` answers a (sequence, hash)
///   pair that belong together.
/// - `add_audit_note` and `record` are each one write transaction of one event.
pub trait AuditStore {
    fn audit_page(&self, query: &AuditQuery) -> StoreResult<AuditPage>;
    fn audit_verify(&self) -> StoreResult<AuditVerification>;
    /// The last event's sequence and hash (0 and the genesis hash for an empty log), read in
    /// one snapshot: what a witness records.
    fn audit_head(&self) -> StoreResult<crate::model::witness::AuditHead>;
    fn add_audit_note(&self, actor: &Actor, seq: i64, text: &str) -> StoreResult<i64>;
    fn changes(&self, after: i64, limit: u32, visibility: &Visibility) -> StoreResult<ChangeFeed>;
    /// Records one audit event outside any other change (e.g. "demo data seeded").
    fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        details: serde_json::Value,
    ) -> StoreResult<i64>;
}
