//! Storage for the perimeter's own records: bursts of failed authentication.

use super::StoreResult;
use crate::model::Actor;

/// A burst of failed authentication from one source or against one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailureBurst {
    /// `source` (a client address) or `credential` (an agent id or an API token's digest prefix).
    pub kind: &'static str,
    /// The address, agent id or token digest prefix (never a secret).
    pub key: String,
    /// What failed: `api_token` or `client_assertion` (or `client_secret`).
    pub method: &'static str,
    /// The limit that was exceeded, in failures per minute.
    pub per_minute: u32,
}

/// Records what the perimeter saw.
///
/// Concurrency contract: each call is one write transaction holding the event and its audit
/// link; concurrent calls are serialised by the store's single writer and appear in the audit
/// chain in commit order.
pub trait PerimeterStore: Send + Sync {
    /// Appends an `auth.failure_burst` audit event (actor: the system); returns its sequence.
    fn record_auth_failure_burst(
        &self,
        actor: &Actor,
        burst: &AuthFailureBurst,
    ) -> StoreResult<i64>;
}
