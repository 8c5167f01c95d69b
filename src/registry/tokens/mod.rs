//! The token service: agents exchange a person's short-lived token for a narrowly scoped token
//! that names the person as subject and the agent as actor (RFC 8693), and resource servers
//! introspect (RFC 7662) and revoke (RFC 7009) them. Tokens are EdDSA JWTs signed with keys kept
//! in the registry's database and published as a JWKS.
//!
//! Pieces: `keys` (signing keys, agents' public keys), `jwt` (strict EdDSA JWS), `idp` (trusted
//! identity providers' tokens), `live` (the in-memory index introspection reads), `exchange`,
//! `introspect` (introspection, revocation, client authentication) and the group-commit writer
//! below, which records every issued token durably in batches.

pub mod auth;
pub mod exchange;
pub mod idp;
pub mod introspect;
pub mod jwt;
pub mod keys;
pub mod live;
pub mod metadata;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::model::Actor;
use crate::model::tokens::Jwks;
use crate::registry::store::{Store, StoreError, StoreResult, StoredSigningKey};
use keys::RegistryKey;
use live::{ConsumedAssertion, LiveTokens, TokenRecord};

/// Token records older than this (past their expiry) are dropped from the database.
pub const RECORD_RETENTION_DAYS: i64 = 90;
/// The longest a person access token may live.
pub const PERSON_TOKEN_MAX_SECONDS: i64 = 3600;
/// How far ahead an agent's assertion may expire when it does not say when it was made.
pub const ASSERTION_MAX_SECONDS: i64 = 300;
/// How long an agent's assertion that carries `iat` or `nbf` may live (Authlib's
/// `private_key_jwt` signs for one hour). Its `jti` stays spent until it expires either way.
pub const ASSERTION_MAX_SECONDS_DATED: i64 = 3600;
/// Most batched records per transaction.
const BATCH_MAX: usize = 4096;
/// Store reads the token service runs at once (the SQLite store pools four readers).
const CONCURRENT_READS: usize = 4;

/// How the token service is configured.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// The registry's public URL, the `iss` of its tokens; by default `http://<bound address>`.
    pub issuer: Option<String>,
    /// Lifetime of exchanged tokens, in seconds (default 600).
    pub default_ttl: i64,
    /// Ceiling of exchanged tokens' lifetime, in seconds (default 900, at most 3600).
    pub max_ttl: i64,
    /// How often keys and trusted issuers are re-read (a key rotated by `steward server
    /// rotate-key` in another process is picked up this fast).
    pub refresh_every: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            issuer: None,
            default_ttl: 600,
            max_ttl: 900,
            refresh_every: Duration::from_secs(5),
        }
    }
}

impl TokenSettings {
    pub fn check(&self) -> Result<(), String> {
        if !(60..=PERSON_TOKEN_MAX_SECONDS).contains(&self.max_ttl) {
            return Err("the token lifetime ceiling must be between 1 minute and 1 hour".into());
        }
        if !(30..=self.max_ttl).contains(&self.default_ttl) {
            return Err(format!(
                "the token lifetime must be between 30 seconds and the ceiling ({} s)",
                self.max_ttl
            ));
        }
        if let Some(issuer) = &self.issuer {
            let url = reqwest::Url::parse(issuer)
                .map_err(|e| format!("the issuer {issuer:?} is not a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(format!(
                    "the issuer {issuer:?} must be an http(s) URL without query or fragment"
                ));
            }
        }
        Ok(())
    }
}

/// An OAuth error answer (RFC 6749 §5.2; RFC 8693 adds `invalid_target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_request", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        OAuthError::new(401, "invalid_client", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_grant", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_scope", d)
    }
    pub fn invalid_target(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_target", d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "unauthorized_client", d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "unsupported_grant_type", d)
    }
    /// The request body could not be read (too large: 413; broken: 400).
    pub fn unreadable_body(status: u16, d: impl Into<String>) -> OAuthError {
        OAuthError::new(status, "invalid_request", d)
    }
    pub fn server_error(d: impl Into<String>) -> OAuthError {
        OAuthError::new(500, "server_error", d)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy(m) => OAuthError::new(503, "temporarily_unavailable", m),
            other => {
                tracing::error!(error = %other, "token service: store error");
                OAuthError::server_error("the registry could not complete the request")
            }
        }
    }
}

/// The signing keys in use.
struct KeyRing {
    /// Signs new tokens.
    active: RegistryKey,
    /// Every key still published in the JWKS (the active one first), by kid.
    published: Vec<RegistryKey>,
    jwks: Arc<Jwks>,
}

enum WriteJob {
    Token(Box<TokenRecord>, oneshot::Sender<StoreResult<()>>),
    Assertion(ConsumedAssertion),
}

pub struct TokenService {
    store: Arc<dyn Store>,
    live: Arc<LiveTokens>,
    pub issuer: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    default_ttl: i64,
    keys: RwLock<KeyRing>,
    issuers: RwLock<HashMap<String, idp::IdentityProvider>>,
    /// Parsed agent public keys by their stored JWK text (parsing costs a point decompression).
    agent_keys: RwLock<HashMap<String, auth::AgentKey>>,
    /// Bounds concurrent store reads to the store's pooled reader connections, so that a burst
    /// of requests queues here instead of opening connections.
    reads: tokio::sync::Semaphore,
    /// Introspection callers recognised by API token in the last second (see `introspect.rs`).
    callers: std::sync::Mutex<HashMap<[u8; 32], (introspect::OAuthCaller, std::time::Instant)>>,
    writer: mpsc::Sender<WriteJob>,
    /// `scopes_supported` of the metadata, re-read at most once a minute.
    scopes: metadata::ScopeCache,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a token's bytes: how the registry recognises tokens it issued.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A random identifier for `jti` (128 bits, base64url).
pub fn new_jti() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Makes sure the store has a signing key; creates the first one. Returns the active kid.
pub fn ensure_signing_key(store: &dyn Store) -> StoreResult<String> {
    if let Some(key) = store
        .signing_keys()?
        .into_iter()
        .find(|k| k.retired_at.is_none())
    {
        return Ok(key.kid);
    }
    let key = RegistryKey::generate();
    store.add_signing_key(&Actor::system("steward-token-service"), &stored(&key))?;
    Ok(key.kid)
}

/// Adds a new signing key; the previous one stays published until its tokens expire.
pub fn rotate_signing_key(store: &dyn Store, actor: &Actor) -> StoreResult<String> {
    let key = RegistryKey::generate();
    store.add_signing_key(actor, &stored(&key))?;
    Ok(key.kid)
}

fn stored(key: &RegistryKey) -> StoredSigningKey {
    StoredSigningKey {
        kid: key.kid.clone(),
        private_key: key.private_text(),
        public_key: key.public_text(),
        created_at: key.created_at,
        retired_at: None,
        last_token_expiry: 0,
    }
}

fn load_key_ring(store: &dyn Store) -> StoreResult<KeyRing> {
    key_ring_from(&store.signing_keys()?, unix_now())
}

/// Chooses the signing key (the newest unretired one) and the keys to publish.
fn key_ring_from(stored: &[StoredSigningKey], now: i64) -> StoreResult<KeyRing> {
    let mut active = None;
    let mut published = Vec::new();
    for k in stored {
        let key = RegistryKey::from_stored(&k.kid, &k.private_key, k.created_at, k.retired_at)
            .map_err(StoreError::Internal)?;
        match k.retired_at {
            None if active.is_none() => {
                active = Some(key.clone());
                published.insert(0, key);
            }
            // A retired key stays published while any token it signed is unexpired, and for two
            // minutes after its retirement (tokens signed meanwhile by a server that had not yet
            // re-read its keys).
            _ => {
                let recently = k.retired_at.is_none_or(|r| r.timestamp() + 120 > now);
                if k.last_token_expiry > now || recently {
                    published.push(key);
                }
            }
        }
    }
    let active = active
        .ok_or_else(|| StoreError::Internal("the registry has no active signing key".into()))?;
    let jwks = Arc::new(Jwks {
        keys: published.iter().map(RegistryKey::jwk).collect(),
    });
    Ok(KeyRing {
        active,
        published,
        jwks,
    })
}

fn load_issuers(store: &dyn Store) -> StoreResult<HashMap<String, idp::IdentityProvider>> {
    let mut out = HashMap::new();
    for t in store.trusted_issuers()? {
        match idp::IdentityProvider::new(&t.issuer, &t.jwks, &t.audience) {
            Ok(p) => {
                out.insert(t.issuer.clone(), p);
            }
            Err(e) => {
                tracing::warn!(issuer = %t.issuer, error = %e, "token service: ignoring a trusted issuer")
            }
        }
    }
    Ok(out)
}

impl TokenService {
    /// Starts the service over `store`: creates the first signing key if needed, loads trusted
    /// issuers, and starts the group-commit writer and the refresh task. `default_issuer` is
    /// used when the settings name none.
    pub async fn start(
        store: Arc<dyn Store>,
        settings: &TokenSettings,
        default_issuer: &str,
    ) -> anyhow::Result<Arc<TokenService>> {
        settings.check().map_err(|e| anyhow::anyhow!(e))?;
        let issuer = settings
            .issuer
            .clone()
            .unwrap_or_else(|| default_issuer.to_string())
            .trim_end_matches('/')
            .to_string();
        let (ring, issuers) = tokio::task::spawn_blocking({
            let store = store.clone();
            move || -> StoreResult<_> {
                ensure_signing_key(store.as_ref())?;
                Ok((
                    load_key_ring(store.as_ref())?,
                    load_issuers(store.as_ref())?,
                ))
            }
        })
        .await?
        .map_err(|e| anyhow::anyhow!("cannot start the token service: {e}"))?;
        let (tx, rx) = mpsc::channel(BATCH_MAX * 4);
        let writer_store = store.clone();
        std::thread::Builder::new()
            .name("steward-token-writer".into())
            .spawn(move || writer_loop(writer_store, rx))?;
        let service = Arc::new(TokenService {
            live: store.live_tokens(),
            store,
            token_endpoint: format!("{issuer}/oauth/token"),
            introspection_endpoint: format!("{issuer}/oauth/introspect"),
            revocation_endpoint: format!("{issuer}/oauth/revoke"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            default_ttl: settings.default_ttl,
            keys: RwLock::new(ring),
            issuers: RwLock::new(issuers),
            agent_keys: RwLock::new(HashMap::new()),
            reads: tokio::sync::Semaphore::new(CONCURRENT_READS),
            callers: std::sync::Mutex::new(HashMap::new()),
            writer: tx,
            scopes: tokio::sync::Mutex::new(None),
        });
        tokio::spawn(refresh_loop(
            Arc::downgrade(&service),
            settings.refresh_every,
        ));
        Ok(service)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn live(&self) -> &LiveTokens {
        &self.live
    }

    pub fn jwks(&self) -> Arc<Jwks> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .jwks
            .clone()
    }

    /// The key that signs now (its kid and a copy of it).
    fn signing_key(&self) -> RegistryKey {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .active
            .clone()
    }

    /// A published key by kid (for reading back the registry's own tokens).
    fn published_key(&self, kid: &str) -> Option<ed25519_dalek::VerifyingKey> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .published
            .iter()
            .find(|k| k.kid == kid)
            .map(|k| k.signing.verifying_key())
    }

    /// Re-reads signing keys and trusted issuers from the store.
    pub async fn refresh(&self) -> StoreResult<()> {
        let store = self.store.clone();
        let (ring, issuers) = tokio::task::spawn_blocking(move || -> StoreResult<_> {
            Ok((
                load_key_ring(store.as_ref())?,
                load_issuers(store.as_ref())?,
            ))
        })
        .await
        .map_err(|e| StoreError::Internal(format!("the refresh worker failed: {e}")))??;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = ring;
        *self.issuers.write().unwrap_or_else(|p| p.into_inner()) = issuers;
        Ok(())
    }

    /// Runs a store read on the blocking pool, a bounded number at a time.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Result<T, OAuthError> {
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|_| OAuthError::server_error("the token service is stopping"))?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| OAuthError::server_error(format!("worker failed: {e}")))?
            .map_err(OAuthError::from)
    }

    /// Queues a token record for the next group commit and waits until it is durable.
    async fn record(&self, record: TokenRecord) -> Result<(), OAuthError> {
        let (ack, done) = oneshot::channel();
        self.writer
            .send(WriteJob::Token(Box::new(record), ack))
            .await
            .map_err(|_| OAuthError::server_error("the token writer has stopped"))?;
        done.await
            .map_err(|_| OAuthError::server_error("the token writer has stopped"))?
            .map_err(OAuthError::from)
    }

    /// Queues a spent assertion (recorded with the next batch; not waited for).
    fn record_assertion(&self, spent: ConsumedAssertion) {
        if self.writer.try_send(WriteJob::Assertion(spent)).is_err() {
            // The queue is full or closed: the in-memory replay cache still refuses replays
            // until the registry restarts.
            tracing::warn!("token service: a spent assertion could not be queued for storage");
        }
    }
}

/// The group-commit writer: takes every queued record, stores them in one transaction, then
/// acknowledges each. While one batch is being made durable the next one gathers, so the number
/// of fsyncs per second stays small however many exchanges arrive.
fn writer_loop(store: Arc<dyn Store>, mut rx: mpsc::Receiver<WriteJob>) {
    let live = store.live_tokens();
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut tokens = Vec::new();
        let mut acks = Vec::new();
        let mut assertions = Vec::new();
        for job in jobs {
            match job {
                WriteJob::Token(record, ack) => {
                    tokens.push(*record);
                    acks.push(ack);
                }
                WriteJob::Assertion(a) => assertions.push(a),
            }
        }
        let result = store.record_tokens(&tokens, &assertions);
        if let Err(e) = &result {
            tracing::error!(
                records = tokens.len(),
                error = %e,
                "token service: could not store token records"
            );
            // Fail closed: tokens that are not on disk must not be usable.
            let jtis: Vec<String> = tokens.iter().map(|t| t.jti.clone()).collect();
            live.fail(&jtis);
        }
        for ack in acks {
            let _ = ack.send(match &result {
                Ok(()) => Ok(()),
                Err(StoreError::Busy(m)) => Err(StoreError::Busy(m.clone())),
                Err(e) => Err(StoreError::Internal(e.to_string())),
            });
        }
    }
}

async fn refresh_loop(service: Weak<TokenService>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = std::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(service) = service.upgrade() else {
            return;
        };
        if let Err(e) = service.refresh().await {
            tracing::warn!(error = %e, "token service: cannot re-read keys and issuers");
        }
        if last_prune.elapsed() >= Duration::from_secs(60) {
            last_prune = std::time::Instant::now();
            let store = service.store.clone();
            let now = unix_now();
            let keep_after = now - RECORD_RETENTION_DAYS * 86_400;
            let pruned =
                tokio::task::spawn_blocking(move || store.prune_tokens(now, keep_after)).await;
            if let Ok(Err(e)) = pruned {
                tracing::warn!(error = %e, "token service: cannot prune expired token state");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn stored_at(key: &RegistryKey, retired: Option<i64>, last_expiry: i64) -> StoredSigningKey {
        StoredSigningKey {
            retired_at: retired.map(|t| Utc.timestamp_opt(t, 0).unwrap()),
            last_token_expiry: last_expiry,
            ..stored(key)
        }
    }

    #[test]
    fn a_retired_key_is_published_until_its_tokens_expire() {
        let now = 1_000_000;
        let new = RegistryKey::generate();
        let old = RegistryKey::generate();
        // Retired ten minutes ago, its last token expires in five minutes: still published.
        let ring = key_ring_from(
            &[
                stored_at(&new, None, 0),
                stored_at(&old, Some(now - 600), now + 300),
            ],
            now,
        )
        .unwrap();
        assert_eq!(ring.active.kid, new.kid);
        assert_eq!(ring.jwks.keys.len(), 2);
        assert_eq!(ring.jwks.keys[0]["kid"], new.kid.as_str());
        // Its last token has expired: gone from the JWKS.
        let ring = key_ring_from(
            &[
                stored_at(&new, None, 0),
                stored_at(&old, Some(now - 600), now - 1),
            ],
            now,
        )
        .unwrap();
        assert_eq!(ring.jwks.keys.len(), 1);
        assert!(ring.published.iter().all(|k| k.kid != old.kid));
        // No unretired key at all is an error, not a silent unsigned registry.
        assert!(key_ring_from(&[stored_at(&old, Some(now), 0)], now).is_err());
    }
}
