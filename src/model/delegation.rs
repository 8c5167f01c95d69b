//! Delegations (a person's consent that an agent may act for them) and API-token lineage
//! (which token minted which, invitations), as the governance API speaks them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/me/delegations`: let an agent act for me with these scopes until then.
#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDelegation {
    pub agent_id: String,
    /// The scopes the agent may use for me (1 to 50); an exchange is further bounded by the
    /// agent's grants and the subject token's own `scope`.
    pub scopes: Vec<String>,
    /// When the consent ends (in the future, at most 365 days ahead).
    pub expires_at: DateTime<Utc>,
}

/// A delegation from a person to an agent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct Delegation {
    pub id: String,
    /// The person who consented (email).
    pub person: String,
    pub agent_id: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Neither revoked nor expired.
    pub active: bool,
}

/// `GET /v1/me/delegations`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct DelegationList {
    pub delegations: Vec<Delegation>,
}

/// What revoking a delegation did.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct RevokedDelegation {
    pub delegation: Delegation,
    /// Live tokens exchanged under it (and derived from them) that were killed.
    pub tokens_revoked: u64,
}

/// One API token as listed (never its secret or hash).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct ApiTokenInfo {
    pub id: String,
    pub label: String,
    /// `api`, or `invitation` (single use, only to redeem for an API token).
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The API token that minted this one; it never outlives it and dies with it.
    pub parent: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// For invitations: when it was redeemed.
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// `GET /v1/me/tokens`, `GET /v1/people/{email}/tokens`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct ApiTokenList {
    pub person: String,
    pub tokens: Vec<ApiTokenInfo>,
}

/// `DELETE /v1/me/tokens`: what revoking all of one's tokens did.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct RevokedApiTokens {
    /// API tokens revoked now (including the one that made the call).
    pub api_tokens_revoked: u64,
    /// Live person and exchanged tokens that came from them and were killed.
    pub tokens_revoked: u64,
}
