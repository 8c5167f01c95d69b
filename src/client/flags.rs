//! Flags and the activity record (registry/http/flags.rs).

use reqwest::Method;

use super::{Client, ClientResult};
use crate::model::activity::{ActivityPage, HourlySeries};
use crate::model::flag::{Flag, FlagDecision, FlagPage, FlagQuery};

impl Client {
    pub async fn flags(&self, query: &FlagQuery) -> ClientResult<FlagPage> {
        self.get_query(&["v1", "flags"], query).await
    }

    pub async fn flag(&self, id: &str) -> ClientResult<Flag> {
        self.get(&["v1", "flags", id]).await
    }

    pub async fn acknowledge_flag(&self, id: &str, reason: &str) -> ClientResult<Flag> {
        let body = FlagDecision {
            reason: reason.to_string(),
        };
        self.with_body(Method::POST, &["v1", "flags", id, "acknowledge"], &body)
            .await
    }

    pub async fn resolve_flag(&self, id: &str, reason: &str) -> ClientResult<Flag> {
        let body = FlagDecision {
            reason: reason.to_string(),
        };
        self.with_body(Method::POST, &["v1", "flags", id, "resolve"], &body)
            .await
    }

    pub async fn agent_activity(&self, id: &str, limit: u32) -> ClientResult<ActivityPage> {
        self.get_query(&["v1", "agents", id, "activity"], &[("limit", limit)])
            .await
    }

    pub async fn agent_activity_hourly(&self, id: &str, days: u32) -> ClientResult<HourlySeries> {
        self.get_query(
            &["v1", "agents", id, "activity", "hourly"],
            &[("days", days)],
        )
        .await
    }
}
