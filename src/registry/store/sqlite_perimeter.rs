//! The SQLite body of [`PerimeterStore`](super::super::perimeter::PerimeterStore): a child
//! module of `sqlite`, sharing its transaction and audit helpers.

use super::{SqliteStore, append_audit};
use crate::model::Actor;
use crate::registry::store::StoreResult;
use crate::registry::store::perimeter::{AuthFailureBurst, PerimeterStore};

impl PerimeterStore for SqliteStore {
    fn record_auth_failure_burst(
        &self,
        actor: &Actor,
        burst: &AuthFailureBurst,
    ) -> StoreResult<i64> {
        self.write(|tx| {
            append_audit(
                tx,
                actor,
                "auth.failure_burst",
                None,
                "refused",
                Some("failed authentication exceeded its rate limit"),
                &serde_json::json!({
                    "kind": burst.kind,
                    "key": burst.key,
                    "method": burst.method,
                    "per_minute": burst.per_minute,
                }),
            )
        })
    }
}
