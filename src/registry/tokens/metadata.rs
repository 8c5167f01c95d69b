//! RFC 8414 authorization server metadata, in the shape stock validators (Authlib's
//! `AuthorizationServerMetadata.validate()`) accept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{OAuthError, TokenService};
use crate::model::tokens::{
    GRANT_TOKEN_EXCHANGE, ServerMetadata, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT,
};

/// How long the advertised scope list is reused (it is read by a full scan of the grants).
const SCOPES_FRESH_FOR: Duration = Duration::from_secs(60);
/// The most scopes advertised (RFC 8414 lets a server leave some out).
pub const SCOPES_ADVERTISED_MAX: u32 = 1000;
/// Signature algorithms accepted on agents' assertions: `EdDSA` and its fully specified name
/// `Ed25519` (RFC 9864) for the same Ed25519 signature.
pub const ASSERTION_ALGS: [&str; 2] = ["EdDSA", "Ed25519"];

/// The cached `scopes_supported`.
pub(super) type ScopeCache = tokio::sync::Mutex<Option<(Instant, Arc<Vec<String>>)>>;

impl TokenService {
    /// The scopes to advertise, read at most once a minute; concurrent callers wait for one read.
    pub async fn supported_scopes(&self) -> Result<Arc<Vec<String>>, OAuthError> {
        let mut cache = self.scopes.lock().await;
        if let Some((at, scopes)) = cache.as_ref()
            && at.elapsed() < SCOPES_FRESH_FOR
        {
            return Ok(scopes.clone());
        }
        let scopes = Arc::new(
            self.read(|s| s.supported_scopes(SCOPES_ADVERTISED_MAX))
                .await?,
        );
        *cache = Some((Instant::now(), scopes.clone()));
        Ok(scopes)
    }

    /// The metadata document. No authorization endpoint exists (agents never redirect a
    /// browser), so `response_types_supported` is `["none"]`, the registered response type that
    /// returns nothing; authorization_code and implicit are not offered. People's API tokens are
    /// also accepted as `Bearer` at introspection and revocation, but RFC 8414 registers no name
    /// for that method, so only the registered ones are listed.
    pub async fn metadata(&self) -> Result<ServerMetadata, OAuthError> {
        let auth_methods: Vec<String> = [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
        ]
        .map(String::from)
        .to_vec();
        let algs: Vec<String> = ASSERTION_ALGS.map(String::from).to_vec();
        Ok(ServerMetadata {
            issuer: self.issuer.clone(),
            token_endpoint: self.token_endpoint.clone(),
            introspection_endpoint: self.introspection_endpoint.clone(),
            revocation_endpoint: self.revocation_endpoint.clone(),
            jwks_uri: self.jwks_uri.clone(),
            grant_types_supported: vec![GRANT_TOKEN_EXCHANGE.into()],
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            token_endpoint_auth_signing_alg_values_supported: algs.clone(),
            introspection_endpoint_auth_methods_supported: auth_methods.clone(),
            introspection_endpoint_auth_signing_alg_values_supported: algs.clone(),
            revocation_endpoint_auth_methods_supported: auth_methods,
            revocation_endpoint_auth_signing_alg_values_supported: algs,
            token_types_supported: vec![TOKEN_TYPE_ACCESS.into(), TOKEN_TYPE_JWT.into()],
            access_token_signing_alg_values_supported: vec!["EdDSA".into()],
            response_types_supported: vec!["none".into()],
            scopes_supported: self.supported_scopes().await?.as_ref().clone(),
            service_documentation: format!("{}/openapi.json", self.issuer),
        })
    }
}
