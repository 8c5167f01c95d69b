//! The token service's payloads: OAuth answers (RFC 8414, 8693, 7662, 7009) and the governance
//! calls around them (agent keys, person access tokens, live tokens of an agent).
//!
//! OAuth request bodies are form-encoded per the RFCs and parsed by the registry itself; only the
//! answers and the JSON governance bodies live here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::domain::{Credential, CredentialKind};

/// The token-exchange grant type (RFC 8693).
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token types (RFC 8693 §3).
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// Client assertions (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_JWT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Authorization server metadata (RFC 8414).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Token types accepted as `subject_token_type`/`actor_token_type` and issued (RFC 8693).
    pub token_types_supported: Vec<String>,
    /// Algorithms of the access tokens this registry signs.
    pub access_token_signing_alg_values_supported: Vec<String>,
    /// `["none"]`: there is no authorization endpoint.
    pub response_types_supported: Vec<String>,
    /// The scopes agents can be granted (at most 1,000 are listed).
    pub scopes_supported: Vec<String>,
    pub service_documentation: String,
}

/// A successful token exchange (RFC 8693 §2.2.1).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub issued_token_type: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: u64,
    /// The granted scopes, space-separated: what was asked ∩ what the agent holds.
    pub scope: String,
}

/// An OAuth error (RFC 6749 §5.2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct OAuthErrorBody {
    pub error: String,
    pub error_description: String,
}

/// An introspection answer (RFC 7662 §2.2). Inactive tokens carry only `active: false`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The delegation chain: `{"sub": agent, "act": {...}}`, newest actor outermost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub act: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub may_act: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// One audience as a string, several as an array (as in the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// Ask for a person access token (at most one hour) for the calling person.
#[derive(Deserialize, Serialize, Debug, Clone, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintAccessToken {
    /// Lifetime in seconds, 60 to 3600 (default 600).
    pub ttl_seconds: Option<u32>,
    /// Only this agent may act with the token (`may_act`); any agent when left out.
    pub may_act: Option<String>,
}

/// A freshly minted person access token: the `subject_token` of an exchange.
#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct MintedAccessToken {
    pub access_token: String,
    pub issued_token_type: String,
    pub token_type: String,
    pub expires_in: u64,
    pub jti: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Register a credential for an agent: a public key (preferred) or a static secret (flagged debt).
#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCredential {
    pub kind: CredentialKind,
    /// For `public-key`: an Ed25519 public key as a JWK (JSON text) or PEM (SPKI).
    pub public_key: Option<String>,
    pub label: Option<String>,
}

/// A registered credential. `secret` is present only when a static secret was just created,
/// and only in this answer.
#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct AddedCredential {
    pub credential: Credential,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One live (unexpired, unrevoked) token in which an agent acts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct LiveToken {
    pub jti: String,
    /// The person on whose behalf the token acts.
    pub subject: String,
    /// The agent the token was issued to (the newest actor).
    pub client_id: String,
    /// The delegation chain, newest actor first.
    pub actors: Vec<String>,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    pub issued_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The `jti` of the token it was exchanged from (a person token or an earlier exchange).
    pub exchanged_from: Option<String>,
}

/// An agent's live tokens and how busy its exchanges are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AgentTokens {
    pub agent_id: String,
    pub tokens: Vec<LiveToken>,
    /// Exchanges in the last hour in which this agent was the new actor.
    pub exchanges_last_hour: u64,
}

/// A JSON Web Key Set (RFC 7517) of the registry's signing keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Jwks {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}
