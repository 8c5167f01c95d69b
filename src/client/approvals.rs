//! The catalogue, access requests and the approvals queue.

use reqwest::Method;

use super::{Client, ClientResult};
use crate::model::approvals::{AccessRequest, CreateRequest, Decide, RequestList, RequestQuery};
use crate::model::catalogue::{ImportCatalogue, ImportOutcome, Resource, ResourceList};

impl Client {
    pub async fn resources(&self) -> ClientResult<ResourceList> {
        self.get(&["v1", "resources"]).await
    }

    pub async fn resource(&self, id: &str) -> ClientResult<Resource> {
        self.get(&["v1", "resources", id]).await
    }

    pub async fn import_catalogue(&self, req: &ImportCatalogue) -> ClientResult<ImportOutcome> {
        self.with_body(Method::PUT, &["v1", "resources"], req).await
    }

    pub async fn request_scope(
        &self,
        agent_id: &str,
        req: &CreateRequest,
    ) -> ClientResult<AccessRequest> {
        self.with_body(Method::POST, &["v1", "agents", agent_id, "requests"], req)
            .await
    }

    pub async fn agent_requests(
        &self,
        agent_id: &str,
        query: &RequestQuery,
    ) -> ClientResult<RequestList> {
        self.get_query(&["v1", "agents", agent_id, "requests"], query)
            .await
    }

    pub async fn approvals(&self, query: &RequestQuery) -> ClientResult<RequestList> {
        self.get_query(&["v1", "approvals"], query).await
    }

    pub async fn approve(&self, id: &str, reason: Option<String>) -> ClientResult<AccessRequest> {
        self.with_body(
            Method::POST,
            &["v1", "approvals", id, "approve"],
            &Decide { reason },
        )
        .await
    }

    pub async fn deny(&self, id: &str, reason: String) -> ClientResult<AccessRequest> {
        self.with_body(
            Method::POST,
            &["v1", "approvals", id, "deny"],
            &Decide {
                reason: Some(reason),
            },
        )
        .await
    }
}
