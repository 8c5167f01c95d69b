//! Access requests and per-use approvals: one table, one queue.
//!
//! Concurrency contract: every call that changes a request runs in one write transaction that
//! reads the request, the agent, the resource and the approvals so far, applies the policy of
//! `registry::service::approvals`, and writes the decision, the resulting grant (if any) and
//! the audit events together. Two approvers deciding at once are serialised by the writer
//! lock: the second sees the first's vote (so `already_decided` and two-person rules hold).
//! Redeeming a per-use approval marks it used in the same transaction that checks it, so it is
//! spent at most once. Lists are snapshots, newest first.

use chrono::{DateTime, Utc};

use crate::model::Actor;
use crate::model::approvals::{AccessRequest, RequestKind, RequestStatus};
use crate::registry::service::approvals::Voter;
use crate::registry::store::{Guard, StoreResult};

/// An access request to file.
#[derive(Debug, Clone)]
pub struct NewGrantRequest {
    pub agent_id: String,
    pub scope: String,
    pub justification: Option<String>,
    /// Asked length in seconds; None: the tier's longest.
    pub duration_secs: Option<i64>,
}

/// What a per-use approval is bound to: the exchange it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseBinding {
    pub agent_id: String,
    pub subject: String,
    /// Sorted, without duplicates.
    pub scopes: Vec<String>,
    /// Sorted, without duplicates.
    pub audience: Vec<String>,
    /// The delegation chain, newest actor first (this agent first).
    pub chain: Vec<String>,
}

/// What asking for a per-use approval did.
#[derive(Debug, Clone)]
pub struct UseApprovalAsked {
    pub request: AccessRequest,
    /// An identical pending approval existed; it was returned instead of a new one.
    pub merged: bool,
}

/// What redeeming a per-use approval found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseRedemption {
    /// Approved, bound to this exchange, now spent.
    Spent,
    Pending,
    Denied,
    /// Unknown, expired, already used, or bound to another exchange (the message says which).
    Invalid(String),
}

#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub agent_id: Option<String>,
    pub status: Option<RequestStatus>,
    pub kind: Option<RequestKind>,
}

pub trait ApprovalStore {
    /// Files an access request for a catalogued scope (422 `unknown_scope`,
    /// `duration_too_long`; 409 when the same request is already pending). A low-tier scope
    /// is approved at once by policy and granted in the same transaction.
    fn request_grant(
        &self,
        actor: &Actor,
        req: &NewGrantRequest,
        now: DateTime<Utc>,
        guard: Guard<'_>,
    ) -> StoreResult<AccessRequest>;
    fn request(&self, id: &str) -> StoreResult<Option<AccessRequest>>;
    /// Requests matching the filter, newest first (at most 500).
    fn list_requests(&self, filter: &RequestFilter) -> StoreResult<Vec<AccessRequest>>;
    /// Pending, unexpired requests that `voter` may decide, newest first.
    fn approval_queue(
        &self,
        voter: &Voter,
        kind: Option<RequestKind>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AccessRequest>>;
    /// Records a yes; the last one needed approves the request (and, for a grant, writes the
    /// time-bound grant).
    fn approve_request(
        &self,
        actor: &Actor,
        id: &str,
        voter: &Voter,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<AccessRequest>;
    fn deny_request(
        &self,
        actor: &Actor,
        id: &str,
        voter: &Voter,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<AccessRequest>;
    /// Marks pending requests whose time has passed expired (audited); returns how many.
    fn expire_requests(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Grants whose expiry has passed, as (agent id, scope), at most `limit`.
    fn expired_grants(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<(String, String)>>;
    /// Files (or merges into an identical pending one) a per-use approval for an exchange;
    /// 429 `too_many_pending` beyond the per-agent cap.
    fn request_use_approval(
        &self,
        binding: &UseBinding,
        now: DateTime<Utc>,
    ) -> StoreResult<UseApprovalAsked>;
    /// Checks a per-use approval against the exchange it must be bound to, spending it when
    /// it is approved and matches.
    fn redeem_use_approval(
        &self,
        id: &str,
        binding: &UseBinding,
        now: DateTime<Utc>,
    ) -> StoreResult<UseRedemption>;
}
