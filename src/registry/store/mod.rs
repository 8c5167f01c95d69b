//! The storage interface of the registry. Routes speak only to [`Store`]. One implementation
//! (`SqliteStore`, in `sqlite*.rs`) runs on either engine through the SQL adapter (`sql.rs`): a
//! SQLite file, the embedded default, or a PostgreSQL database (`postgres.rs`).
//!
//! Every mutating call runs in one transaction together with its audit event(s): either the change
//! and its record are both stored, or neither is.

pub mod agents;
pub mod api_tokens;
pub mod approvals;
pub mod audit;
pub mod brake;
pub mod catalogue;
pub mod copy;
pub mod delegations;
pub mod flags;
pub mod ownership;
pub mod people;
pub mod perimeter;
pub mod pg_signals;
pub mod postgres;
pub mod resource_credentials;
pub mod reviews;
pub mod scopes;
pub mod seed;
pub mod sql;
pub mod sqlite;
mod sqlite_agents;
mod sqlite_audit;
mod sqlite_people;
mod sqlite_reviews;
mod sqlite_tokens;
pub mod streams;
pub mod timeline;
pub mod tokens;

use chrono::{DateTime, Utc};

use crate::model::{Agent, AgentStatus, CredentialKind, Person};

pub use agents::AgentStore;
pub use api_tokens::ApiTokenStore;
pub use approvals::ApprovalStore;
pub use audit::AuditStore;
pub use brake::BrakeStore;
pub use catalogue::CatalogueStore;
pub use delegations::DelegationStore;
pub use flags::{ActivityStore, FlagStore};
pub use ownership::OwnershipStore;
pub use people::PeopleStore;
pub use resource_credentials::{ResourceAuthFacts, ResourceCredentialStore};
pub use reviews::ReviewStore;
pub use scopes::ScopeCatalogue;
pub use seed::SeedStore;
pub use sqlite::SqliteStore;
pub use streams::StreamStore;
pub use tokens::TokenStore;

/// Every area trait and their union, for code that calls store methods on a concrete backend
/// (`SqliteStore`, tests, examples): `use steward::registry::store::prelude::*;`.
pub mod prelude {
    pub use super::{
        ActivityStore, AgentStore, ApiTokenStore, ApprovalStore, AuditStore, BrakeStore,
        CatalogueStore, DelegationStore, FlagStore, OwnershipStore, PeopleStore,
        ResourceCredentialStore, ReviewStore, ScopeCatalogue, SeedStore, Store, StreamStore,
        TokenStore, perimeter::PerimeterStore, timeline::TimelineStore,
    };
}

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

/// The whole storage interface: every area's trait. Each area trait states its concurrency
/// contract (what commits together, what order a reader may rely on, and which of those
/// guarantees lean on SQLite's single writer today: the list a second backend must honour).
pub trait Store:
    PeopleStore
    + AgentStore
    + BrakeStore
    + AuditStore
    + SeedStore
    + TokenStore
    + ReviewStore
    + CatalogueStore
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
}
