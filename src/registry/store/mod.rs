//! The storage interface of the registry. Routes speak only to [`Store`]; SQLite is the embedded
//! backend, and a PostgreSQL backend can implement the same trait without touching the routes.
//!
//! Every mutating call runs in one transaction together with its audit event(s): either the change
//! and its record are both stored, or neither is.

pub mod api_tokens;
pub mod approvals;
pub mod catalogue;
pub mod delegations;
pub mod flags;
pub mod ownership;
pub mod perimeter;
pub mod resource_credentials;
pub mod scopes;
pub mod sqlite;
pub mod streams;
pub mod timeline;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::api::{
    AgentPage, AgentQuery, AuditPage, AuditQuery, AuditVerification, ChangeFeed, CreatePerson,
    DecommissionOutcome, DecommissionPlan, PeoplePage, PeopleQuery, RegisterAgent, UpdatePerson,
};
use crate::model::review::{
    AcceptOutcome, AcceptRecommendations, BulkCertifyOutcome, Campaign, CampaignDetail,
    CampaignQuery, CloseOutcome, CreateCampaign, DecideItem, DecisionOutcome, ExportRow,
    QueueQuery, ReassignItems, ReassignOutcome, Reminder, ReminderPage, ReminderQuery, ReviewItem,
    ReviewItemPage, ReviewItemQuery, ReviewQueue, ScopeDiff,
};
use crate::model::{
    Actor, Agent, AgentDetail, AgentStatus, Credential, CredentialKind, Grant, Person,
};
use crate::registry::reviews::{
    BatchDecision, ItemGuard, ReassignTarget, ReminderAttempt, ReminderPlan,
};
use crate::registry::tokens::live::{ConsumedAssertion, LiveTokens, TokenRecord};

pub use api_tokens::ApiTokenStore;
pub use approvals::ApprovalStore;
pub use catalogue::CatalogueStore;
pub use delegations::DelegationStore;
pub use flags::{ActivityStore, FlagStore};
pub use ownership::OwnershipStore;
pub use resource_credentials::{ResourceAuthFacts, ResourceCredentialStore};
pub use scopes::ScopeCatalogue;
pub use sqlite::SqliteStore;
pub use streams::StreamStore;

/// What went wrong in the store, in terms the HTTP layer can map to a status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Internal(String),
    /// A refusal with its own status and code (e.g. 403 `self_approval`, 409
    /// `already_decided`, 429 `too_many_pending`).
    #[error("{message}")]
    Refused {
        status: u16,
        code: &'static str,
        message: String,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The facts about an agent that an authorisation decision needs, read inside the transaction
/// that acts on it, so that the check and the change see the same state.
#[derive(Debug, Clone)]
pub struct AgentFacts {
    pub id: String,
    pub owner_email: Option<String>,
    pub status: AgentStatus,
}

/// A check run inside the transaction before a change to an agent; an error aborts it.
pub type Guard<'a> = &'a (dyn Fn(&AgentFacts) -> StoreResult<()> + Sync);

/// What a bearer API token resolves to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub person: Person,
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
    /// An invitation: good only to redeem for an API token.
    pub invitation: bool,
    /// For invitations: already redeemed (and so also revoked).
    pub redeemed: bool,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Who may see what: readers of everything, or one owner's agents.
#[derive(Debug, Clone)]
pub enum Visibility {
    All,
    OwnedBy(String),
}

/// A revocation's effect, before the HTTP layer adds timing.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub previous_status: AgentStatus,
    pub changed: bool,
    pub credentials_disabled: u32,
    pub tokens_revoked: u64,
    pub audit_seq: i64,
    pub agent: Agent,
    /// Every agent of the tree, the target first (breadth-first), with what was done to it.
    pub stopped: Vec<crate::model::brake::StoppedAgent>,
    /// The latest expiry among the killed tokens (offline JWT validators accept them until then).
    pub latest_token_expiry: Option<DateTime<Utc>>,
}

/// A reinstatement's effect: the target as it is now, and every agent made active.
#[derive(Debug, Clone)]
pub struct Reinstated {
    pub agent: Agent,
    pub reinstated: Vec<crate::model::brake::ReinstatedAgent>,
    pub still_suspended: Vec<crate::model::brake::ReinstatedAgent>,
}

/// A new API token to store (only its hash).
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: String,
    pub hash: String,
    pub name: String,
    /// Capped by the store at the parent's expiry.
    pub expires_at: DateTime<Utc>,
    /// An invitation (single use, only to redeem) rather than a working API token.
    pub invitation: bool,
    /// The API token that minted this one: the child never outlives it and dies with it.
    pub parent_id: Option<String>,
}

/// One batch of seeded records for bulk loading (demo data, imports).
#[derive(Debug, Default, Clone)]
pub struct SeedBatch {
    pub people: Vec<SeedPerson>,
    pub agents: Vec<SeedAgent>,
}

#[derive(Debug, Clone)]
pub struct SeedPerson {
    pub person: Person,
    pub manager_email: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SeedAgent {
    pub agent: Agent,
    pub credentials: Vec<SeedCredential>,
}

#[derive(Debug, Clone)]
pub struct SeedCredential {
    pub credential: crate::model::Credential,
    /// Public key (JWK JSON or PEM), or the hash of a static secret.
    pub material: String,
}

/// One of the registry's token-signing keys as stored (the private seed included: the database
/// file is readable by its owner only, and this type never prints it).
#[derive(Clone)]
pub struct StoredSigningKey {
    pub kid: String,
    /// base64url Ed25519 seed.
    pub private_key: String,
    /// base64url Ed25519 public key.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
    /// When a newer key took over signing.
    pub retired_at: Option<DateTime<Utc>>,
    /// When a staged key starts signing (it is published from `created_at`); None: at once.
    pub activates_at: Option<DateTime<Utc>>,
    /// The latest expiry of any token this key signed (0 if none): a retired key stays in the
    /// JWKS until then.
    pub last_token_expiry: i64,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// An identity provider whose tokens prove people (how an enterprise's SSO plugs in).
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedIssuer {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// Its public keys as a JWKS (JSON text).
    pub jwks: String,
    /// The `aud` its tokens must carry to be accepted here.
    pub audience: String,
    pub created_at: DateTime<Utc>,
}

/// A credential to add to an agent (material: the canonical public JWK, or a secret's hash).
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub id: String,
    pub kind: CredentialKind,
    pub label: String,
    pub fingerprint: String,
    pub material: String,
}

/// A credential with its material, for authenticating an agent.
#[derive(Debug, Clone)]
pub struct CredentialMaterial {
    pub id: String,
    pub kind: CredentialKind,
    pub fingerprint: String,
    pub material: String,
    pub disabled: bool,
}

/// What the token service needs to know about an agent for one exchange, read in one snapshot.
#[derive(Debug, Clone)]
pub struct AgentTokenFacts {
    pub id: String,
    pub status: AgentStatus,
    pub owner_email: Option<String>,
    /// Parent, grandparent, … (for sub-agent hops).
    pub ancestors: Vec<String>,
    pub credentials: Vec<CredentialMaterial>,
    /// Scopes held now (grants that have not expired).
    pub scopes: Vec<String>,
}

pub trait Store:
    CatalogueStore
    + ApprovalStore
    + DelegationStore
    + OwnershipStore
    + ActivityStore
    + FlagStore
    + ApiTokenStore
    + perimeter::PerimeterStore
    + timeline::TimelineStore
    + ScopeCatalogue
    + ResourceCredentialStore
    + StreamStore
    + Send
    + Sync
    + 'static
{
    fn schema_version(&self) -> StoreResult<i64>;

    /// The clock this registry decides and records by (see registry/clock.rs); everything that
    /// holds the store reads the time here.
    fn clock(&self) -> &crate::registry::clock::Clock;

    // People and their API tokens.
    fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>>;
    fn create_person(&self, actor: &Actor, req: &CreatePerson) -> StoreResult<Person>;
    fn update_person(&self, actor: &Actor, email: &str, req: &UpdatePerson) -> StoreResult<Person>;
    fn person(&self, email: &str) -> StoreResult<Option<Person>>;
    fn list_people(&self, query: &PeopleQuery) -> StoreResult<PeoplePage>;
    /// Stores a new API token (or invitation); returns its expiry (capped at its parent's).
    fn issue_api_token(
        &self,
        actor: &Actor,
        email: &str,
        token: &NewApiToken,
    ) -> StoreResult<DateTime<Utc>>;
    /// Revokes one of `email`'s API tokens, the tokens it minted (transitively) and every
    /// live token that came from them; returns how many live tokens died.
    fn revoke_api_token(&self, actor: &Actor, email: &str, token_id: &str) -> StoreResult<u64>;

    // Agents.
    fn list_agents(&self, query: &AgentQuery, visibility: &Visibility) -> StoreResult<AgentPage>;
    fn agent_detail(&self, id: &str) -> StoreResult<Option<AgentDetail>>;
    fn register_agent(&self, actor: &Actor, req: &RegisterAgent) -> StoreResult<Agent>;
    fn add_grant(
        &self,
        actor: &Actor,
        agent_id: &str,
        grant: &Grant,
        guard: Guard<'_>,
    ) -> StoreResult<Agent>;
    fn remove_grant(
        &self,
        actor: &Actor,
        agent_id: &str,
        scope: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent>;
    fn set_owner(
        &self,
        actor: &Actor,
        agent_id: &str,
        owner_email: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Agent>;
    /// Suspends the agent and every agent under it, disables their credentials and kills their
    /// live tokens, in one transaction; the index is updated first (fail closed). A repeat that
    /// changes nothing records nothing.
    fn revoke_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Revoked>;
    /// Makes a suspended agent active again (with `subtree`, every suspended agent under it
    /// too), in one transaction. Refused while an ancestor is not active. Credentials stay
    /// disabled.
    fn reinstate_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        subtree: bool,
        guard: Guard<'_>,
    ) -> StoreResult<Reinstated>;
    /// The plan of a decommission. `guard` is asked for the target (an error refuses) and for
    /// each agent under it (an error skips that agent and everything under it).
    fn decommission_plan(&self, agent_id: &str, guard: Guard<'_>) -> StoreResult<DecommissionPlan>;
    fn decommission_agent(
        &self,
        actor: &Actor,
        agent_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<DecommissionOutcome>;

    // Audit and the change feed.
    fn audit_page(&self, query: &AuditQuery) -> StoreResult<AuditPage>;
    fn audit_verify(&self) -> StoreResult<AuditVerification>;
    /// The last event's sequence and hash (0 and the genesis hash for an empty log), read in
    /// one snapshot: what a witness records.
    fn audit_head(&self) -> StoreResult<crate::model::witness::AuditHead>;
    fn add_audit_note(&self, actor: &Actor, seq: i64, text: &str) -> StoreResult<i64>;
    fn changes(&self, after: i64, limit: u32, visibility: &Visibility) -> StoreResult<ChangeFeed>;

    // Bulk loading for the demo enterprise.
    fn is_empty(&self) -> StoreResult<bool>;
    fn seed(&self, batch: &SeedBatch) -> StoreResult<()>;
    /// Before the first [`Store::seed`] batch of a bulk load into a store without agents:
    /// derived indexes may wait for [`Store::seed_finish`] (which must follow, also after a
    /// failed batch). Refused on a store that holds agents.
    fn seed_start(&self) -> StoreResult<()> {
        Ok(())
    }
    /// After the last batch of a bulk load: brings derived indexes up to date.
    fn seed_finish(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Records one audit event outside any other change (e.g. "demo data seeded").
    fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        details: serde_json::Value,
    ) -> StoreResult<i64>;

    // The token service. The live-token index is loaded when the store opens and updated by
    // every call that revokes (agents, tokens), so introspection never reads the database.
    fn live_tokens(&self) -> Arc<LiveTokens>;
    /// Every signing key, newest first.
    fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>>;
    /// Adds a signing key. Without `activates_at` it signs from now on and every other key is
    /// retired (kept for checks); with `activates_at` it is staged: published now,
    /// signing from then, and nothing is retired (the token service treats the older key as
    /// superseded once the new one activates). Only one staged key may wait at a time
    /// (Conflict otherwise). Atomic with its audit event.
    fn add_signing_key(&self, actor: &Actor, key: &StoredSigningKey) -> StoreResult<()>;
    fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuer>>;
    /// Adds or replaces a trusted identity provider.
    fn put_trusted_issuer(&self, actor: &Actor, issuer: &TrustedIssuer) -> StoreResult<()>;
    /// Removes a trusted identity provider; false if it was not trusted.
    fn remove_trusted_issuer(&self, actor: &Actor, issuer: &str) -> StoreResult<bool>;
    fn agent_token_facts(&self, agent_id: &str) -> StoreResult<Option<AgentTokenFacts>>;
    /// The agent's token facts when an in-memory copy holds them current (no database read:
    /// safe to call on an async worker); None when it does not (ask `agent_token_facts`).
    fn cached_agent_token_facts(&self, _agent_id: &str) -> Option<AgentTokenFacts> {
        None
    }
    /// A person, likewise (the subject of an exchange).
    fn cached_person(&self, _email: &str) -> Option<Person> {
        None
    }
    fn add_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential: &NewCredential,
        guard: Guard<'_>,
    ) -> StoreResult<Credential>;
    fn disable_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential_id: &str,
        guard: Guard<'_>,
    ) -> StoreResult<Credential>;
    /// Re-enables a disabled credential of an active agent, with its audit event; enabling an
    /// enabled one changes nothing and records nothing.
    fn enable_credential(
        &self,
        actor: &Actor,
        agent_id: &str,
        credential_id: &str,
        reason: Option<&str>,
        guard: Guard<'_>,
    ) -> StoreResult<Credential>;
    /// Durably records a batch of issued tokens and spent assertions in one transaction (group
    /// commit), and marks each scope used and each agent seen.
    fn record_tokens(
        &self,
        tokens: &[TokenRecord],
        assertions: &[ConsumedAssertion],
    ) -> StoreResult<()>;
    /// Revokes a token and every token exchanged from it; returns how many were live.
    fn revoke_token(&self, actor: &Actor, jti: &str) -> StoreResult<u64>;
    /// Exchanges in which `agent_id` was the new actor, issued at or after `since` (Unix time).
    fn exchanges_since(&self, agent_id: &str, since: i64) -> StoreResult<u64>;
    /// Forgets spent assertions and the index's expired tokens; drops token records that
    /// expired before `keep_records_after` (Unix time).
    fn prune_tokens(&self, now: i64, keep_records_after: i64) -> StoreResult<()>;
    // Access reviews (SQLite bodies in sqlite_reviews.rs). `now` is passed in so that
    // schedules, diffs and the background scheduler can be driven by a test clock.
    /// Creates a campaign; when it starts now, snapshots one item per (agent, grant).
    fn create_campaign(
        &self,
        actor: &Actor,
        req: &CreateCampaign,
        now: DateTime<Utc>,
    ) -> StoreResult<Campaign>;
    /// Opens scheduled campaigns whose start has come, snapshotting their items.
    fn start_due_campaigns(&self, actor: &Actor, now: DateTime<Utc>) -> StoreResult<Vec<Campaign>>;
    fn list_campaigns(&self, query: &CampaignQuery) -> StoreResult<Vec<Campaign>>;
    fn campaign_detail(&self, id: &str) -> StoreResult<Option<CampaignDetail>>;
    fn review_items(
        &self,
        campaign_id: &str,
        query: &ReviewItemQuery,
    ) -> StoreResult<ReviewItemPage>;
    fn review_item(&self, id: i64, guard: ItemGuard<'_>) -> StoreResult<ReviewItem>;
    /// One reviewer's queue, or (None) every reviewer's.
    fn review_queue(
        &self,
        reviewer: Option<&str>,
        query: &QueueQuery,
        now: DateTime<Utc>,
    ) -> StoreResult<ReviewQueue>;
    fn decide_item(
        &self,
        actor: &Actor,
        item_id: i64,
        req: &DecideItem,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<DecisionOutcome>;
    /// Applies many decisions in one transaction, all or none; returns how many changed
    /// something. Each decision is checked by `guard` and the same rules as `decide_item`.
    fn decide_items(&self, decisions: &[BatchDecision], guard: ItemGuard<'_>) -> StoreResult<u64>;
    /// Certifies the agent's undecided, used and unchanged items that pass `guard`.
    fn certify_unchanged(
        &self,
        actor: &Actor,
        campaign_id: &str,
        agent_id: &str,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<BulkCertifyOutcome>;
    /// Accepts the recommendation of many undecided items of one campaign; see
    /// [`AcceptRecommendations`]. `mine` limits the selection to that reviewer's items.
    fn accept_recommendations(
        &self,
        actor: &Actor,
        campaign_id: &str,
        req: &AcceptRecommendations,
        mine: Option<&str>,
        now: DateTime<Utc>,
        guard: ItemGuard<'_>,
    ) -> StoreResult<AcceptOutcome>;
    fn reassign_items(
        &self,
        actor: &Actor,
        target: &ReassignTarget,
        req: &ReassignItems,
        now: DateTime<Utc>,
    ) -> StoreResult<ReassignOutcome>;
    /// Closes an open campaign, applying its no-response outcome to undecided items.
    fn close_campaign(
        &self,
        actor: &Actor,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CloseOutcome>;
    /// Open campaigns whose `closes_at` has passed.
    fn campaigns_due_to_close(&self, now: DateTime<Utc>) -> StoreResult<Vec<String>>;
    /// Streams every item of a campaign, in item order, over one consistent snapshot.
    fn export_campaign(
        &self,
        id: &str,
        each: &mut dyn FnMut(ExportRow) -> StoreResult<()>,
    ) -> StoreResult<u64>;
    fn scope_diff(
        &self,
        agent_id: &str,
        lookback_days: u32,
        now: DateTime<Utc>,
        guard: Guard<'_>,
    ) -> StoreResult<ScopeDiff>;
    /// Records the current reminder slot for every reviewer with undecided items and cancels
    /// reminders that are no longer wanted. `deliverable`: a webhook is configured.
    fn plan_reminders(&self, now: DateTime<Utc>, deliverable: bool) -> StoreResult<ReminderPlan>;
    fn due_reminders(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Reminder>>;
    fn record_reminder_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        attempt: &ReminderAttempt,
    ) -> StoreResult<()>;
    /// Reminders, newest first; `reviewer` restricts to one person (non-admins).
    fn list_reminders(
        &self,
        query: &ReminderQuery,
        reviewer: Option<&str>,
    ) -> StoreResult<ReminderPage>;
}
