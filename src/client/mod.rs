//! The typed HTTP client of the registry API. The console and the scripting commands reach the
//! registry only through this.

pub mod config;
pub mod credentials;
pub mod witness;

mod approvals;
mod flags;

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::api::{
    ActionReason, AddGrant, AddNote, AgentPage, AgentQuery, ApiErrorBody, AuditPage, AuditQuery,
    AuditVerification, ChangeFeed, ChangesQuery, CreatePerson, DecommissionOutcome,
    DecommissionPlan, Health, IssueToken, IssuedToken, PeoplePage, PeopleQuery, RegisterAgent,
    RevokeOutcome, SetOwner, UpdatePerson, WhoAmI,
};
use crate::model::tokens::{
    AddCredential, AddedCredential, AgentTokens, Introspection, Jwks, MintAccessToken,
    MintedAccessToken, OAuthErrorBody, ServerMetadata, TokenResponse,
};
use crate::model::{Agent, AgentDetail, Credential, Person};

/// An API token. Its `Debug` never shows the value, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    BadUrl(String),
    #[error("cannot reach the registry at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the registry sent an unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// True when the registry could not be reached at all (as opposed to refusing the call).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }

    /// The HTTP status of a refusal, if the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<Secret>,
}

/// Normalises a registry URL given by a person (`localhost:8420`, `https://x/`).
pub fn parse_server_url(text: &str) -> ClientResult<Url> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| ClientError::BadUrl(format!("{text:?} is not a registry URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::BadUrl(format!(
            "{text:?}: the registry URL must start with http:// or https://"
        )));
    }
    if url.host_str().is_none() {
        return Err(ClientError::BadUrl(format!("{text:?} has no host")));
    }
    Ok(url)
}

impl Client {
    pub fn new(server: &str, token: Option<Secret>) -> ClientResult<Client> {
        let base = parse_server_url(server)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            // Below the registry's idle keep-alive timeout (10 s by default), so that a request
            // is never sent on a connection the registry is closing.
            .pool_idle_timeout(Duration::from_secs(5))
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::BadUrl(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, token })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` under the base, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("http URLs always have a path");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// Sends a request with the bearer token and reads the whole answer.
    async fn exchange(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> ClientResult<(StatusCode, bytes::Bytes)> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: self.base.to_string(),
            detail: describe_reqwest(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        Ok((status, bytes))
    }

    /// A refusal: the registry's own code and message when it sent them, else the status.
    fn refusal(
        &self,
        status: StatusCode,
        url: &Url,
        body: Option<(String, String)>,
    ) -> ClientError {
        let (code, message) = body.unwrap_or_else(|| {
            (
                "http_error".into(),
                format!("{} answered {status} to {}", self.base, url.path()),
            )
        });
        ClientError::Api {
            status: status.as_u16(),
            code,
            message,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&(dyn erased::Query + Sync)>,
        body: Option<&(dyn erased::Body + Sync)>,
    ) -> ClientResult<T> {
        let url = self.url(segments);
        let mut request = self.http.request(method, url.clone());
        if let Some(q) = query {
            request = q.apply(request);
        }
        if let Some(b) = body {
            request = b.apply(request);
        }
        let (status, bytes) = self.exchange(request).await?;
        if !status.is_success() {
            let body = serde_json::from_slice::<ApiErrorBody>(&bytes).ok();
            return Err(self.refusal(status, &url, body.map(|b| (b.error, b.message))));
        }
        let bytes = if status == StatusCode::NO_CONTENT {
            bytes::Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("{} {}: {e}", url.path(), status)))
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> ClientResult<T> {
        self.send(Method::GET, segments, None, None).await
    }

    async fn get_query<T: DeserializeOwned, Q: Serialize + Sync>(
        &self,
        segments: &[&str],
        query: &Q,
    ) -> ClientResult<T> {
        self.send(Method::GET, segments, Some(&erased::QueryOf(query)), None)
            .await
    }

    async fn with_body<T: DeserializeOwned, B: Serialize + Sync>(
        &self,
        method: Method,
        segments: &[&str],
        body: &B,
    ) -> ClientResult<T> {
        self.send(method, segments, None, Some(&erased::BodyOf(body)))
            .await
    }

    pub async fn health(&self) -> ClientResult<Health> {
        self.get(&["healthz"]).await
    }

    pub async fn me(&self) -> ClientResult<WhoAmI> {
        self.get(&["v1", "me"]).await
    }

    pub async fn issue_my_token(&self, req: &IssueToken) -> ClientResult<IssuedToken> {
        self.with_body(Method::POST, &["v1", "me", "tokens"], req)
            .await
    }

    pub async fn revoke_my_token(&self, token_id: &str) -> ClientResult<()> {
        self.send(
            Method::DELETE,
            &["v1", "me", "tokens", token_id],
            None,
            None,
        )
        .await
    }

    /// My API tokens and invitations (never their secrets).
    pub async fn my_tokens(&self) -> ClientResult<crate::model::delegation::ApiTokenList> {
        self.get(&["v1", "me", "tokens"]).await
    }

    /// Revokes all of my API tokens (this client's included) and what came from them.
    pub async fn revoke_all_my_tokens(
        &self,
    ) -> ClientResult<crate::model::delegation::RevokedApiTokens> {
        self.send(Method::DELETE, &["v1", "me", "tokens"], None, None)
            .await
    }

    /// Lets an agent act for me (a delegation).
    pub async fn create_delegation(
        &self,
        req: &crate::model::delegation::CreateDelegation,
    ) -> ClientResult<crate::model::delegation::Delegation> {
        self.with_body(Method::POST, &["v1", "me", "delegations"], req)
            .await
    }

    pub async fn delegations(&self) -> ClientResult<crate::model::delegation::DelegationList> {
        self.get(&["v1", "me", "delegations"]).await
    }

    pub async fn revoke_delegation(
        &self,
        id: &str,
    ) -> ClientResult<crate::model::delegation::RevokedDelegation> {
        self.send(Method::DELETE, &["v1", "me", "delegations", id], None, None)
            .await
    }

    pub async fn list_people(&self, query: &PeopleQuery) -> ClientResult<PeoplePage> {
        self.get_query(&["v1", "people"], query).await
    }

    pub async fn person(&self, email: &str) -> ClientResult<Person> {
        self.get(&["v1", "people", email]).await
    }

    pub async fn create_person(&self, req: &CreatePerson) -> ClientResult<Person> {
        self.with_body(Method::POST, &["v1", "people"], req).await
    }

    pub async fn update_person(&self, email: &str, req: &UpdatePerson) -> ClientResult<Person> {
        self.with_body(Method::PATCH, &["v1", "people", email], req)
            .await
    }

    /// Marks a person as having left; their agents pass to their manager or are orphaned.
    pub async fn leave(&self, email: &str) -> ClientResult<crate::model::ownership::LeaveOutcome> {
        self.send(Method::POST, &["v1", "people", email, "leave"], None, None)
            .await
    }

    /// The ranked owner candidates of an agent (`q` narrows by name or email).
    pub async fn owner_candidates(
        &self,
        id: &str,
        q: Option<&str>,
        limit: Option<u32>,
    ) -> ClientResult<crate::model::ownership::OwnerCandidates> {
        #[derive(serde::Serialize)]
        struct Q<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            q: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
        }
        self.get_query(&["v1", "agents", id, "owner-candidates"], &Q { q, limit })
            .await
    }

    /// Makes an agent unowned (the undo of a first owner).
    pub async fn clear_owner(&self, id: &str, reason: Option<String>) -> ClientResult<Agent> {
        self.with_body(
            Method::DELETE,
            &["v1", "agents", id, "owner"],
            &ActionReason { reason },
        )
        .await
    }

    /// The agents you inherited from people who left (open reminders unless `all`).
    pub async fn handovers(
        &self,
        all: bool,
    ) -> ClientResult<crate::model::ownership::HandoverList> {
        #[derive(serde::Serialize)]
        struct Q {
            all: bool,
        }
        self.get_query(&["v1", "me", "handovers"], &Q { all }).await
    }

    pub async fn acknowledge_handovers(
        &self,
    ) -> ClientResult<crate::model::ownership::Acknowledged> {
        self.send(
            Method::POST,
            &["v1", "me", "handovers", "acknowledge"],
            None,
            None,
        )
        .await
    }

    pub async fn issue_token_for(
        &self,
        email: &str,
        req: &IssueToken,
    ) -> ClientResult<IssuedToken> {
        self.with_body(Method::POST, &["v1", "people", email, "tokens"], req)
            .await
    }

    pub async fn list_agents(&self, query: &AgentQuery) -> ClientResult<AgentPage> {
        self.get_query(&["v1", "agents"], query).await
    }

    pub async fn agent(&self, id: &str) -> ClientResult<AgentDetail> {
        self.get(&["v1", "agents", id]).await
    }

    pub async fn agent_audit(&self, id: &str, query: &AuditQuery) -> ClientResult<AuditPage> {
        self.get_query(&["v1", "agents", id, "audit"], query).await
    }

    pub async fn register_agent(&self, req: &RegisterAgent) -> ClientResult<Agent> {
        self.with_body(Method::POST, &["v1", "agents"], req).await
    }

    pub async fn add_grant(&self, id: &str, req: &AddGrant) -> ClientResult<Agent> {
        self.with_body(Method::POST, &["v1", "agents", id, "grants"], req)
            .await
    }

    pub async fn remove_grant(&self, id: &str, scope: &str) -> ClientResult<Agent> {
        self.send(
            Method::DELETE,
            &["v1", "agents", id, "grants", scope],
            None,
            None,
        )
        .await
    }

    pub async fn set_owner(&self, id: &str, req: &SetOwner) -> ClientResult<Agent> {
        self.with_body(Method::PUT, &["v1", "agents", id, "owner"], req)
            .await
    }

    pub async fn revoke(&self, id: &str, reason: Option<String>) -> ClientResult<RevokeOutcome> {
        self.with_body(
            Method::POST,
            &["v1", "agents", id, "revoke"],
            &ActionReason { reason },
        )
        .await
    }

    pub async fn reinstate(&self, id: &str, reason: Option<String>) -> ClientResult<Agent> {
        self.with_body(
            Method::POST,
            &["v1", "agents", id, "reinstate"],
            &ActionReason { reason },
        )
        .await
    }

    /// Reinstates an agent; with `subtree`, every suspended agent under it too.
    pub async fn reinstate_tree(
        &self,
        id: &str,
        reason: Option<String>,
        subtree: bool,
    ) -> ClientResult<crate::model::brake::ReinstateOutcome> {
        self.with_body(
            Method::POST,
            &["v1", "agents", id, "reinstate"],
            &crate::model::brake::ReinstateRequest { reason, subtree },
        )
        .await
    }

    pub async fn decommission_plan(&self, id: &str) -> ClientResult<DecommissionPlan> {
        self.get(&["v1", "agents", id, "decommission"]).await
    }

    pub async fn decommission(
        &self,
        id: &str,
        reason: Option<String>,
    ) -> ClientResult<DecommissionOutcome> {
        self.with_body(
            Method::POST,
            &["v1", "agents", id, "decommission"],
            &ActionReason { reason },
        )
        .await
    }

    pub async fn audit(&self, query: &AuditQuery) -> ClientResult<AuditPage> {
        self.get_query(&["v1", "audit"], query).await
    }

    /// The activity and audit timeline, newest first (`GET /v1/audit/timeline`).
    pub async fn timeline(
        &self,
        query: &crate::model::timeline::TimelineQuery,
    ) -> ClientResult<crate::model::timeline::TimelinePage> {
        self.get_query(&["v1", "audit", "timeline"], query).await
    }

    /// The audit head (last sequence and hash) the registry reports.
    pub async fn audit_head(&self) -> ClientResult<crate::model::witness::AuditHead> {
        self.get(&["v1", "audit", "head"]).await
    }

    pub async fn audit_verify_on_server(&self) -> ClientResult<AuditVerification> {
        self.get(&["v1", "audit", "verify"]).await
    }

    pub async fn add_note(&self, seq: i64, text: &str) -> ClientResult<i64> {
        let seq = seq.to_string();
        self.with_body(
            Method::POST,
            &["v1", "audit", &seq, "notes"],
            &AddNote {
                text: text.to_string(),
            },
        )
        .await
    }

    pub async fn changes(&self, after: i64, limit: u32) -> ClientResult<ChangeFeed> {
        self.get_query(
            &["v1", "changes"],
            &ChangesQuery {
                after: Some(after),
                limit: Some(limit),
            },
        )
        .await
    }
}

/// The token service: OAuth endpoints (form-encoded, RFC 6749 errors) and the governance calls
/// around tokens.
impl Client {
    pub async fn oauth_metadata(&self) -> ClientResult<ServerMetadata> {
        self.get(&[".well-known", "oauth-authorization-server"])
            .await
    }

    pub async fn jwks(&self) -> ClientResult<Jwks> {
        self.get(&[".well-known", "jwks.json"]).await
    }

    /// Mints a person access token (at most one hour) for the signed-in person.
    pub async fn mint_access_token(
        &self,
        req: &MintAccessToken,
    ) -> ClientResult<MintedAccessToken> {
        self.with_body(Method::POST, &["v1", "me", "access-token"], req)
            .await
    }

    pub async fn add_credential(
        &self,
        agent_id: &str,
        req: &AddCredential,
    ) -> ClientResult<AddedCredential> {
        self.with_body(
            Method::POST,
            &["v1", "agents", agent_id, "credentials"],
            req,
        )
        .await
    }

    /// Every Shared Signals stream with its state, lag and last error (admins).
    pub async fn streams(&self) -> ClientResult<crate::model::signals::StreamList> {
        self.get(&["v1", "streams"]).await
    }

    /// One Shared Signals stream (admins).
    pub async fn stream(&self, id: &str) -> ClientResult<crate::model::signals::StreamSummary> {
        self.get(&["v1", "streams", id]).await
    }

    /// Pauses (`pause`) or resumes (`resume`) a stream (admins).
    pub async fn set_stream(
        &self,
        id: &str,
        verb: &str,
        reason: Option<String>,
    ) -> ClientResult<crate::model::signals::StreamSummary> {
        self.with_body(
            Method::POST,
            &["v1", "streams", id, verb],
            &serde_json::json!({"reason": reason}),
        )
        .await
    }

    /// What became of one action's security events (the revoke result's fan-out line).
    pub async fn fan_out(&self, audit_seq: i64) -> ClientResult<crate::model::signals::FanOut> {
        self.get(&["v1", "signals", &audit_seq.to_string()]).await
    }

    /// Registers a credential for a catalogued resource (admins).
    pub async fn add_resource_credential(
        &self,
        resource_id: &str,
        req: &AddCredential,
    ) -> ClientResult<AddedCredential> {
        self.with_body(
            Method::POST,
            &["v1", "resources", resource_id, "credentials"],
            req,
        )
        .await
    }

    /// Disables one of a resource's credentials (admins).
    pub async fn disable_resource_credential(
        &self,
        resource_id: &str,
        credential_id: &str,
    ) -> ClientResult<Credential> {
        self.send(
            Method::POST,
            &[
                "v1",
                "resources",
                resource_id,
                "credentials",
                credential_id,
                "disable",
            ],
            None,
            None,
        )
        .await
    }

    pub async fn disable_credential(
        &self,
        agent_id: &str,
        credential_id: &str,
    ) -> ClientResult<Credential> {
        self.send(
            Method::POST,
            &[
                "v1",
                "agents",
                agent_id,
                "credentials",
                credential_id,
                "disable",
            ],
            None,
            None,
        )
        .await
    }

    /// Re-enables a disabled credential (admins and responders).
    pub async fn enable_credential(
        &self,
        agent_id: &str,
        credential_id: &str,
        reason: Option<String>,
    ) -> ClientResult<Credential> {
        self.with_body(
            Method::POST,
            &[
                "v1",
                "agents",
                agent_id,
                "credentials",
                credential_id,
                "enable",
            ],
            &crate::model::brake::EnableCredential { reason },
        )
        .await
    }

    /// An agent's live tokens and its exchanges in the last hour.
    pub async fn agent_tokens(&self, agent_id: &str) -> ClientResult<AgentTokens> {
        self.get(&["v1", "agents", agent_id, "tokens"]).await
    }

    /// Introspects a token, authenticated by this client's API token (RFC 7662).
    pub async fn introspect(&self, token: &Secret) -> ClientResult<Introspection> {
        self.send_form(&["oauth", "introspect"], &[("token", token.expose())])
            .await
    }

    /// Revokes a token and everything exchanged from it (RFC 7009).
    pub async fn revoke_token(&self, token: &Secret) -> ClientResult<()> {
        let _: serde::de::IgnoredAny = self
            .send_form(&["oauth", "revoke"], &[("token", token.expose())])
            .await?;
        Ok(())
    }

    /// Posts form parameters to the token endpoint (RFC 8693), as an agent would. The agent
    /// authenticates inside `params` (`actor_token` or `client_assertion`).
    pub async fn token_exchange(&self, params: &[(&str, &str)]) -> ClientResult<TokenResponse> {
        self.send_form(&["oauth", "token"], params).await
    }

    /// A form POST whose refusals are RFC 6749 errors (`error`, `error_description`).
    async fn send_form<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        params: &[(&str, &str)],
    ) -> ClientResult<T> {
        let url = self.url(segments);
        let request = self.http.post(url.clone()).form(params);
        let (status, bytes) = self.exchange(request).await?;
        if !status.is_success() {
            let body = serde_json::from_slice::<OAuthErrorBody>(&bytes).ok();
            return Err(self.refusal(status, &url, body.map(|b| (b.error, b.error_description))));
        }
        let bytes = if bytes.is_empty() {
            bytes::Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("{} {}: {e}", url.path(), status)))
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "the request timed out".into();
    }
    if e.is_connect() {
        return "connection refused or no route (is the registry running?)".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Object-safe wrappers so that `send` stays one non-generic function over any query or body.
mod erased {
    use serde::Serialize;

    pub trait Query {
        fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
    }
    pub trait Body {
        fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
    }

    pub struct QueryOf<'a, Q>(pub &'a Q);
    pub struct BodyOf<'a, B>(pub &'a B);

    impl<Q: Serialize> Query for QueryOf<'_, Q> {
        fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
            r.query(self.0)
        }
    }

    impl<B: Serialize> Body for BodyOf<'_, B> {
        fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
            r.json(self.0)
        }
    }
}

/// A campaign export being downloaded: read it chunk by chunk so that a large campaign never
/// sits in memory whole.
#[derive(Debug)]
pub struct ExportDownload {
    response: reqwest::Response,
    base: String,
}

impl ExportDownload {
    /// The next chunk, or `None` at the end. An export the registry could not finish ends
    /// with an error, never with a silently short file.
    pub async fn chunk(&mut self) -> ClientResult<Option<bytes::Bytes>> {
        self.response
            .chunk()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                detail: format!("the export broke off: {}", describe_reqwest(&e)),
            })
    }
}

/// Creating or closing a campaign over a very large estate takes longer than an ordinary call
/// (about a minute per million agents): these calls wait up to this long.
const LONG_CALL: Duration = Duration::from_secs(30 * 60);

/// A request body (or none) sent with the longer timeout of [`LONG_CALL`].
struct LongCall<'a, B>(Option<&'a B>);

impl<B: Serialize> erased::Body for LongCall<'_, B> {
    fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let r = r.timeout(LONG_CALL);
        match self.0 {
            Some(body) => r.json(body),
            None => r,
        }
    }
}

/// Access reviews.
impl Client {
    pub async fn create_campaign(
        &self,
        req: &crate::model::review::CreateCampaign,
    ) -> ClientResult<crate::model::review::Campaign> {
        self.send(
            Method::POST,
            &["v1", "campaigns"],
            None,
            Some(&LongCall(Some(req))),
        )
        .await
    }

    pub async fn campaigns(
        &self,
        query: &crate::model::review::CampaignQuery,
    ) -> ClientResult<Vec<crate::model::review::Campaign>> {
        self.get_query(&["v1", "campaigns"], query).await
    }

    pub async fn campaign(&self, id: &str) -> ClientResult<crate::model::review::CampaignDetail> {
        self.get(&["v1", "campaigns", id]).await
    }

    pub async fn campaign_items(
        &self,
        id: &str,
        query: &crate::model::review::ReviewItemQuery,
    ) -> ClientResult<crate::model::review::ReviewItemPage> {
        self.get_query(&["v1", "campaigns", id, "items"], query)
            .await
    }

    pub async fn close_campaign(
        &self,
        id: &str,
    ) -> ClientResult<crate::model::review::CloseOutcome> {
        self.send(
            Method::POST,
            &["v1", "campaigns", id, "close"],
            None,
            Some(&LongCall::<()>(None)),
        )
        .await
    }

    pub async fn certify_unchanged(
        &self,
        campaign_id: &str,
        agent_id: &str,
    ) -> ClientResult<crate::model::review::BulkCertifyOutcome> {
        self.send(
            Method::POST,
            &[
                "v1",
                "campaigns",
                campaign_id,
                "agents",
                agent_id,
                "certify-unchanged",
            ],
            None,
            None,
        )
        .await
    }

    pub async fn reassign_agent(
        &self,
        campaign_id: &str,
        agent_id: &str,
        req: &crate::model::review::ReassignItems,
    ) -> ClientResult<crate::model::review::ReassignOutcome> {
        self.with_body(
            Method::POST,
            &[
                "v1",
                "campaigns",
                campaign_id,
                "agents",
                agent_id,
                "reassign",
            ],
            req,
        )
        .await
    }

    /// Accepts the recommendation of many undecided items of a campaign (or, with `dry_run`,
    /// counts what that would decide).
    pub async fn accept_recommendations(
        &self,
        campaign_id: &str,
        req: &crate::model::review::AcceptRecommendations,
    ) -> ClientResult<crate::model::review::AcceptOutcome> {
        self.with_body(
            Method::POST,
            &[
                "v1",
                "campaigns",
                campaign_id,
                "items",
                "accept-recommendations",
            ],
            req,
        )
        .await
    }

    pub async fn my_reviews(
        &self,
        query: &crate::model::review::QueueQuery,
    ) -> ClientResult<crate::model::review::ReviewQueue> {
        self.get_query(&["v1", "reviews", "mine"], query).await
    }

    pub async fn reminders(
        &self,
        query: &crate::model::review::ReminderQuery,
    ) -> ClientResult<crate::model::review::ReminderPage> {
        self.get_query(&["v1", "reviews", "reminders"], query).await
    }

    pub async fn review_item(&self, id: i64) -> ClientResult<crate::model::review::ReviewItem> {
        self.get(&["v1", "review-items", &id.to_string()]).await
    }

    pub async fn decide(
        &self,
        id: i64,
        req: &crate::model::review::DecideItem,
    ) -> ClientResult<crate::model::review::DecisionOutcome> {
        self.with_body(
            Method::POST,
            &["v1", "review-items", &id.to_string(), "decision"],
            req,
        )
        .await
    }

    pub async fn reassign_item(
        &self,
        id: i64,
        req: &crate::model::review::ReassignItems,
    ) -> ClientResult<crate::model::review::ReassignOutcome> {
        self.with_body(
            Method::POST,
            &["v1", "review-items", &id.to_string(), "reassign"],
            req,
        )
        .await
    }

    pub async fn scope_diff(
        &self,
        agent_id: &str,
        lookback_days: Option<u32>,
    ) -> ClientResult<crate::model::review::ScopeDiff> {
        self.get_query(
            &["v1", "agents", agent_id, "scope-diff"],
            &crate::model::review::ScopeDiffQuery { lookback_days },
        )
        .await
    }

    /// Starts downloading a campaign's evidence; read it with [`ExportDownload::chunk`].
    pub async fn export_campaign(
        &self,
        id: &str,
        format: crate::model::review::ExportFormat,
    ) -> ClientResult<ExportDownload> {
        let url = self.url(&["v1", "campaigns", id, "export"]);
        let mut request = self
            .http
            .get(url.clone())
            .query(&crate::model::review::ExportQuery { format })
            // A large export takes longer than one ordinary call.
            .timeout(Duration::from_secs(3600));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: self.base.to_string(),
            detail: describe_reqwest(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.map_err(unreachable)?;
            let body = serde_json::from_slice::<ApiErrorBody>(&bytes).ok();
            return Err(self.refusal(status, &url, body.map(|b| (b.error, b.message))));
        }
        Ok(ExportDownload {
            response,
            base: self.base.to_string(),
        })
    }
}
