//! The SQLite body of `ScopeCatalogue`: the scopes of the resource catalogue.

use super::SqliteStore;
use crate::registry::store::{ScopeCatalogue, StoreResult};

impl ScopeCatalogue for SqliteStore {
    fn supported_scopes(&self, limit: u32) -> StoreResult<Vec<String>> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT name FROM resource_scopes ORDER BY name LIMIT ?1")?;
            let rows = stmt.query_map(rusqlite::params![limit], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
    }
}
