//! Which scopes the registry advertises (RFC 8414 `scopes_supported`).

use super::StoreResult;

/// The scopes an agent can be granted here.
///
/// Until the resource catalogue exists this is the set of scopes granted to some agent now; when
/// the catalogue lands, its scopes replace it behind this one method.
///
/// Concurrency: one read over a consistent snapshot; never blocks writers (it runs on a reader
/// connection). The answer is sorted, without duplicates, and at most `limit` long (the first
/// `limit` in sort order). It scans every grant, so callers cache it (see
/// `TokenService::supported_scopes`).
pub trait ScopeCatalogue {
    fn supported_scopes(&self, limit: u32) -> StoreResult<Vec<String>>;
}
