//! The SQLite body of `ScopeCatalogue`: the distinct scopes of unexpired grants.

use super::SqliteStore;
use crate::registry::store::{ScopeCatalogue, StoreResult};

impl ScopeCatalogue for SqliteStore {
    fn supported_scopes(&self, limit: u32) -> StoreResult<Vec<String>> {
        let now = super::ts(chrono::Utc::now());
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT DISTINCT scope FROM grants
                 WHERE expires_at IS NULL OR expires_at > ?1
                 ORDER BY scope LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![now, limit], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
    }
}
