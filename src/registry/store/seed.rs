//! Bulk loading (the demo enterprise, imports). SQLite bodies in sqlite_seed.rs.

use super::{SeedBatch, StoreResult};

/// Bulk loading.
///
/// Concurrency contract: each `seed` batch is one write transaction (all its people, agents
/// and credentials, or none). Between `seed_start` and `seed_finish` derived indexes (the
/// agents' text index) may lag the rows; a load is meant to run alone, before the registry
/// serves (the demo seeds before it listens). Seeded agents that are not active are marked in
/// the live-token index before the batch commits.
pub trait SeedStore {
    fn is_empty(&self) -> StoreResult<bool>;
    fn seed(&self, batch: &SeedBatch) -> StoreResult<()>;
    /// Before the first [`SeedStore::seed`] batch of a bulk load into a store without agents:
    /// derived indexes may wait for [`SeedStore::seed_finish`] (which must follow, also after a
    /// failed batch). Refused on a store that holds agents.
    fn seed_start(&self) -> StoreResult<()> {
        Ok(())
    }
    /// After the last batch of a bulk load: brings derived indexes up to date.
    fn seed_finish(&self) -> StoreResult<()> {
        Ok(())
    }
}
