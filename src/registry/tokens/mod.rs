//! The token service: agents exchange a person's short-lived token for a narrowly scoped token
//! that names the person as subject and the agent as actor (RFC 8693), and resource servers
//! introspect (RFC 7662) and revoke (RFC 7009) them. Tokens are EdDSA JWTs signed with keys kept
//! in the registry's database and published as a JWKS.
//!
//! Pieces: `keys` (signing keys, agents' public keys), `jwt` (strict EdDSA JWS), `idp` (trusted
//! identity providers' tokens), `live` (the in-memory index introspection reads), `exchange`,
//! `introspect` (introspection, revocation, client authentication) and the group-commit writer
//! below, which records every issued token durably in batches.

pub mod audience;
pub mod auth;
pub mod consent;
pub mod exchange;
pub mod idp;
pub mod introspect;
pub mod jwt;
pub mod keys;
pub mod live;
pub mod metadata;
pub mod per_use;
mod removed_grants;

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
/// How long resource servers may cache the JWKS (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE_SECONDS: i64 = 60;
/// How far ahead of signing a staged key is published: a resource server that cached the JWKS
/// just before the key appeared sees it before any token it signs (JWKS max-age plus the longest
/// token lifetime, so also a cache refreshed only when its last known token expires).
pub const ROTATION_LEAD_SECONDS: i64 = JWKS_MAX_AGE_SECONDS + PERSON_TOKEN_MAX_SECONDS;
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
    /// The longest an API token may live, in days (`--api-token-max-days`, default 90).
    pub api_token_max_days: u32,
}

/// The default ceiling of API tokens' lifetime, in days.
pub const API_TOKEN_MAX_DAYS: u32 = 90;

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            issuer: None,
            default_ttl: 600,
            max_ttl: 900,
            refresh_every: Duration::from_secs(5),
            api_token_max_days: API_TOKEN_MAX_DAYS,
        }
    }
}

impl TokenSettings {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=3650).contains(&self.api_token_max_days) {
            return Err("the API token lifetime ceiling must be between 1 and 3650 days".into());
        }
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
    /// `approval_required`: the per-use approval to wait for (id, seconds it stays valid).
    pub approval: Option<(String, u64)>,
}

impl OAuthError {
    pub(crate) fn new(
        status: u16,
        error: &'static str,
        description: impl Into<String>,
    ) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
            approval: None,
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
    /// The exchange took longer than `live::SLOWEST_EXCHANGE_SECONDS`, the most the live
    /// index's memory of removed grants covers (see `tokens/removed_grants.rs`).
    pub fn too_slow() -> OAuthError {
        OAuthError::new(
            503,
            "temporarily_unavailable",
            format!(
                "the registry took longer than {} s to answer this exchange, so it issues \
                 nothing on what it read; retry",
                live::SLOWEST_EXCHANGE_SECONDS
            ),
        )
    }

    /// This replica cannot hear the others' revocations yet (see `live::LiveTokens::set_synced`).
    pub fn not_synced() -> OAuthError {
        OAuthError::new(
            503,
            "temporarily_unavailable",
            "this registry replica has lost the database's revocation feed and issues no token \
             until it has caught up; retry (another replica may answer)",
        )
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

/// An assertion id to spend in a database shared by replicas, and who waits for the verdict.
type SpendJob = (ConsumedAssertion, oneshot::Sender<StoreResult<bool>>);

pub struct TokenService {
    store: Arc<dyn Store>,
    live: Arc<LiveTokens>,
    pub issuer: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    /// The longest an API token may live, in days.
    pub api_token_max_days: u32,
    default_ttl: i64,
    keys: RwLock<KeyRing>,
    issuers: RwLock<HashMap<String, idp::IdentityProvider>>,
    /// Parsed agent public keys by their stored JWK text (parsing costs a point decompression).
    agent_keys: auth::KeyCache,
    /// Bounds concurrent store reads to the store's pooled reader connections, so that a burst
    /// of requests queues here instead of opening connections.
    reads: tokio::sync::Semaphore,
    /// Introspection callers recognised by API token in the last second (see `introspect.rs`).
    callers: std::sync::Mutex<HashMap<[u8; 32], (introspect::OAuthCaller, std::time::Instant)>>,
    writer: mpsc::Sender<WriteJob>,
    /// On a database shared by replicas: spends assertion ids there, in batches (see
    /// `spender_loop`), so that a replay on another replica is refused too.
    spender: Option<mpsc::Sender<SpendJob>>,
    /// `scopes_supported` of the metadata, re-read at most once a minute.
    scopes: metadata::ScopeCache,
    /// The activity record and detectors (registry/behaviour), once the server starts them.
    behaviour: std::sync::OnceLock<Arc<crate::registry::behaviour::Behaviour>>,
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

/// Makes sure the store has a signing key; creates the first one. Returns the active kid.
pub fn ensure_signing_key(store: &dyn Store) -> StoreResult<String> {
    if let Some(key) = store
        .signing_keys()?
        .into_iter()
        .find(|k| k.retired_at.is_none())
    {
        return Ok(key.kid);
    }
    let mut key = RegistryKey::generate();
    key.created_at = store.clock().now();
    store.add_signing_key(&Actor::system("steward-token-service"), &stored(&key))?;
    Ok(key.kid)
}

/// Adds a new signing key that signs at once (for a compromised key: resource servers with a
/// cached JWKS refuse its tokens until they re-fetch); the previous one stays published until
/// its tokens expire.
pub fn rotate_signing_key(store: &dyn Store, actor: &Actor) -> StoreResult<String> {
    let mut key = RegistryKey::generate();
    key.created_at = store.clock().now();
    store.add_signing_key(actor, &stored(&key))?;
    Ok(key.kid)
}

/// Stages the next signing key: published in the JWKS from `now`, signing from
/// `now + ROTATION_LEAD_SECONDS` (running registries switch at their next refresh after that).
/// Returns its kid and when it takes over.
pub fn stage_signing_key(
    store: &dyn Store,
    actor: &Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<(String, chrono::DateTime<chrono::Utc>)> {
    let mut key = RegistryKey::generate();
    key.created_at = now;
    let activates_at = now + chrono::Duration::seconds(ROTATION_LEAD_SECONDS);
    store.add_signing_key(
        actor,
        &StoredSigningKey {
            activates_at: Some(activates_at),
            ..stored(&key)
        },
    )?;
    Ok((key.kid, activates_at))
}

fn stored(key: &RegistryKey) -> StoredSigningKey {
    StoredSigningKey {
        kid: key.kid.clone(),
        private_key: key.private_text(),
        public_key: key.public_text(),
        created_at: key.created_at,
        retired_at: None,
        last_token_expiry: 0,
        activates_at: None,
    }
}

fn load_key_ring(store: &dyn Store) -> StoreResult<KeyRing> {
    key_ring_from(&store.signing_keys()?, store.clock().unix())
}

/// Chooses the signing key and the keys to publish at `now`:
/// - the signing key is the unretired key that activated last (at `activates_at`, or at
///   `created_at` when it signed at once);
/// - staged keys (activating later) are published ahead of signing;
/// - a key that a newer one superseded (retired, or outrun by a staged key's activation) stays
///   published while any token it signed is unexpired, and two minutes after it stopped signing
///   (tokens signed meanwhile by a server that had not yet re-read its keys).
fn key_ring_from(stored: &[StoredSigningKey], now: i64) -> StoreResult<KeyRing> {
    let start = |k: &StoredSigningKey| k.activates_at.unwrap_or(k.created_at);
    // Only a staged key waits for its time; a key added to sign at once signs even when this
    // server's clock is behind the clock of the process that added it.
    let staged = |k: &StoredSigningKey| {
        k.retired_at.is_none() && k.activates_at.is_some_and(|a| a.timestamp() > now)
    };
    let active_stored = stored
        .iter()
        .filter(|k| k.retired_at.is_none() && !staged(k))
        .max_by_key(|k| (start(k), k.created_at))
        .ok_or_else(|| StoreError::Internal("the registry has no active signing key".into()))?;
    let active_since = start(active_stored).timestamp();
    let load = |k: &StoredSigningKey| {
        RegistryKey::from_stored(&k.kid, &k.private_key, k.created_at, k.retired_at)
            .map_err(StoreError::Internal)
    };
    let active = load(active_stored)?;
    let mut published = vec![active.clone()];
    for k in stored.iter().filter(|k| k.kid != active_stored.kid) {
        let stopped_at = k.retired_at.map(|r| r.timestamp()).unwrap_or(active_since);
        let still_needed = k.last_token_expiry > now || stopped_at + 120 > now;
        if staged(k) || still_needed {
            published.push(load(k)?);
        }
    }
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
    /// The registry's clock (the store's; see registry/clock.rs): every lifetime, `exp`, `iat`
    /// and `nbf` this service writes or checks is read here.
    pub fn clock(&self) -> &crate::registry::clock::Clock {
        self.store.clock()
    }

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
        let spender = if store.shares_database() {
            let (tx, rx) = mpsc::channel(BATCH_MAX * 4);
            let spender_store = store.clone();
            std::thread::Builder::new()
                .name("steward-assertion-spender".into())
                .spawn(move || spender_loop(spender_store, rx))?;
            Some(tx)
        } else {
            None
        };
        let service = Arc::new(TokenService {
            live: store.live_tokens(),
            store,
            token_endpoint: format!("{issuer}/oauth/token"),
            introspection_endpoint: format!("{issuer}/oauth/introspect"),
            revocation_endpoint: format!("{issuer}/oauth/revoke"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            api_token_max_days: settings.api_token_max_days,
            default_ttl: settings.default_ttl,
            keys: RwLock::new(ring),
            issuers: RwLock::new(issuers),
            agent_keys: Arc::new(RwLock::new(HashMap::new())),
            reads: tokio::sync::Semaphore::new(CONCURRENT_READS),
            callers: std::sync::Mutex::new(HashMap::new()),
            writer: tx,
            spender,
            scopes: tokio::sync::Mutex::new(None),
            behaviour: std::sync::OnceLock::new(),
        });
        tokio::spawn(refresh_loop(
            Arc::downgrade(&service),
            settings.refresh_every,
        ));
        Ok(service)
    }

    /// Attaches the behaviour engine (once; later calls are ignored).
    pub fn set_behaviour(&self, behaviour: Arc<crate::registry::behaviour::Behaviour>) {
        let _ = self.behaviour.set(behaviour);
    }

    /// The behaviour engine, when the server started one.
    pub fn behaviour(&self) -> Option<&Arc<crate::registry::behaviour::Behaviour>> {
        self.behaviour.get()
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

    /// Signs `claims` with the key that signs now, under the given `typ` (the Shared Signals
    /// transmitter signs its Security Event Tokens this way, as `secevent+jwt`).
    pub fn sign_with_active_key(&self, claims: &impl serde::Serialize, typ: &str) -> String {
        let key = self.signing_key();
        jwt::sign(claims, &key.signing, &key.kid, typ)
    }

    /// A published key by kid (for reading back the registry's own tokens).
    /// On replicas sharing a database: a token this replica has not heard of yet (another
    /// replica minted it a moment ago, and its notice is on the way) is read from the database
    /// by its digest and indexed, so that introspection, revocation and exchange agree across
    /// replicas at once. Only a token signed by one of the registry's keys is looked up: made-up
    /// tokens cost a parse, never a database read. A revocation that reaches this replica
    /// while the record is read is not lost (see `LiveTokens::insert_stored`).
    pub(crate) async fn catch_up(&self, token: &str) {
        if !self.store.shares_database() || !self.live.is_synced() {
            return;
        }
        let digest = token_digest(token);
        if self.live.with_digest(&digest, |_| ()).is_some() {
            return;
        }
        let ours = jwt::parse(token).ok().is_some_and(|parsed| {
            parsed.claim_str("iss") == Some(self.issuer.as_str())
                && parsed
                    .kid()
                    .and_then(|k| self.published_key(k))
                    .is_some_and(|key| parsed.verify(&key).is_ok())
        });
        if !ours {
            return;
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.stored_token(&digest)).await {
            Ok(Ok(Some((record, revoked)))) => self.live.insert_stored(&record, revoked),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "token service: cannot read a token record"),
            Err(e) => tracing::warn!(error = %e, "token service: a token read failed"),
        }
    }

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

    /// Spends an assertion id: in the database when replicas share it (waited for: false is a
    /// replay on another replica), else queued with the next batch of token records (the live
    /// index, which has just spent it, refuses replays meanwhile).
    async fn spend_assertion(&self, spent: ConsumedAssertion) -> Result<bool, OAuthError> {
        let Some(spender) = &self.spender else {
            self.record_assertion(spent);
            return Ok(true);
        };
        let (ack, done) = oneshot::channel();
        spender
            .send((spent, ack))
            .await
            .map_err(|_| OAuthError::server_error("the assertion spender has stopped"))?;
        done.await
            .map_err(|_| OAuthError::server_error("the assertion spender has stopped"))?
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

/// `first` and whatever else is queued already, up to [`BATCH_MAX`]: one group commit's work.
fn next_batch<T>(first: T, rx: &mut mpsc::Receiver<T>) -> Vec<T> {
    let mut jobs = vec![first];
    while jobs.len() < BATCH_MAX {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    jobs
}

/// The group-commit writer: takes every queued record, stores them in one transaction, then
/// acknowledges each. While one batch is being made durable the next one gathers, so the number
/// of fsyncs per second stays small however many exchanges arrive.
fn writer_loop(store: Arc<dyn Store>, mut rx: mpsc::Receiver<WriteJob>) {
    let live = store.live_tokens();
    while let Some(first) = rx.blocking_recv() {
        let jobs = next_batch(first, &mut rx);
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

/// Spends assertion ids in the shared database, a batch per transaction: every waiting spend
/// goes in the next batch, so the commits per second stay few however many arrive.
fn spender_loop(store: Arc<dyn Store>, mut rx: mpsc::Receiver<SpendJob>) {
    while let Some(first) = rx.blocking_recv() {
        let jobs = next_batch(first, &mut rx);
        let (spent, acks): (Vec<ConsumedAssertion>, Vec<_>) = jobs.into_iter().unzip();
        match store.spend_assertions(&spent) {
            Ok(fresh) => {
                for (ack, fresh) in acks.into_iter().zip(fresh) {
                    let _ = ack.send(Ok(fresh));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "token service: could not spend assertion ids");
                for ack in acks {
                    let _ = ack.send(Err(match &e {
                        StoreError::Busy(m) => StoreError::Busy(m.clone()),
                        other => StoreError::Internal(other.to_string()),
                    }));
                }
            }
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
            let now = service.clock().unix();
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
            created_at: Utc.timestamp_opt(0, 0).unwrap(),
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

    #[test]
    fn a_staged_key_is_published_before_it_signs_and_takes_over_on_time() {
        let staged_at = 1_000_000;
        let current = RegistryKey::generate();
        let next = RegistryKey::generate();
        let next_stored = StoredSigningKey {
            created_at: Utc.timestamp_opt(staged_at, 0).unwrap(),
            activates_at: Some(
                Utc.timestamp_opt(staged_at + ROTATION_LEAD_SECONDS, 0)
                    .unwrap(),
            ),
            ..stored(&next)
        };
        // The current key's last token expires ten minutes after the takeover.
        let last_expiry = staged_at + ROTATION_LEAD_SECONDS + 600;
        let keys = [next_stored, stored_at(&current, None, last_expiry)];
        let kids = |ring: &KeyRing| -> Vec<String> {
            ring.published.iter().map(|k| k.kid.clone()).collect()
        };
        // From the moment it is staged until the lead has passed: published, not signing.
        for now in [staged_at, staged_at + ROTATION_LEAD_SECONDS - 1] {
            let ring = key_ring_from(&keys, now).unwrap();
            assert_eq!(ring.active.kid, current.kid, "at {now}");
            assert_eq!(kids(&ring), [current.kid.clone(), next.kid.clone()]);
            assert_eq!(ring.jwks.keys.len(), 2);
        }
        // The lead is at least the JWKS max-age plus the longest token lifetime.
        const { assert!(ROTATION_LEAD_SECONDS >= JWKS_MAX_AGE_SECONDS + PERSON_TOKEN_MAX_SECONDS) };
        // Then it signs; the old key stays published while its tokens live ...
        let ring = key_ring_from(&keys, staged_at + ROTATION_LEAD_SECONDS).unwrap();
        assert_eq!(ring.active.kid, next.kid);
        assert_eq!(kids(&ring), [next.kid.clone(), current.kid.clone()]);
        // ... and leaves once they have expired.
        let ring = key_ring_from(&keys, last_expiry + 1).unwrap();
        assert_eq!(kids(&ring), vec![next.kid.clone()]);
    }
}
