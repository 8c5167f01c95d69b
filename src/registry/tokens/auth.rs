//! Form parameters and client authentication at the OAuth endpoints.
//!
//! An agent proves itself with a signed assertion (RFC 7523 style: `iss` = `sub` = the agent id,
//! `aud` = the token endpoint, `exp` at most five minutes ahead, or one hour after its `iat`/`nbf`,
//! a `jti` single-use until it expires), sent as the
//! exchange's `actor_token` or as `client_assertion`. Legacy agents may still send a static
//! `client_secret`; every token issued that way records it, and the agent stays flagged.

use base64::Engine;
use sha2::{Digest, Sha256};

use super::jwt;
use super::live::{CLOCK_LEEWAY, ConsumedAssertion};
use super::{ASSERTION_MAX_SECONDS, ASSERTION_MAX_SECONDS_DATED, OAuthError, TokenService};
use crate::model::tokens::CLIENT_ASSERTION_JWT;
use crate::model::{AgentStatus, CredentialKind, Person};
use crate::registry::store::AgentTokenFacts;
use crate::registry::store::sqlite::MAX_ENABLED_CREDENTIALS;

/// Form-encoded parameters (`application/x-www-form-urlencoded`), with RFC 6749's rule that a
/// parameter may appear once (`audience` and `resource` may repeat, per RFC 8693).
#[derive(Debug, Default)]
pub struct FormParams(Vec<(String, String)>);

impl FormParams {
    pub fn parse(body: &[u8]) -> FormParams {
        FormParams(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The one value of `name`; empty values count as absent (RFC 6749 §3.1).
    pub fn one(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "the parameter {name} appears more than once"
            )));
        }
        Ok(first)
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("the parameter {name} is missing")))
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// How a caller of an OAuth endpoint presented itself.
#[derive(Debug)]
pub enum ClientCredentials {
    /// An agent's signed assertion.
    Assertion(String),
    /// A legacy agent's static secret.
    Secret {
        client_id: String,
        secret: String,
    },
    /// A person's API token (introspection and revocation only).
    PersonApiToken(String),
    None,
}

/// Reads client credentials from the Authorization header and the form.
pub fn client_credentials(
    authorization: Option<&str>,
    form: &FormParams,
) -> Result<ClientCredentials, OAuthError> {
    let assertion_type = form.one("client_assertion_type")?;
    let assertion = form.one("client_assertion")?;
    let form_secret = match (form.one("client_id")?, form.one("client_secret")?) {
        (Some(id), Some(secret)) => Some((id.to_string(), secret.to_string())),
        _ => None,
    };
    let header = match authorization {
        None => None,
        Some(h) => {
            let (scheme, value) = h.trim().split_once(' ').ok_or_else(|| {
                OAuthError::invalid_client(
                    "the Authorization header must be `Basic …` or `Bearer …`",
                )
            })?;
            let value = value.trim();
            if scheme.eq_ignore_ascii_case("basic") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        OAuthError::invalid_client("the Basic credentials are not base64")
                    })?;
                let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                    OAuthError::invalid_client(
                        "the Basic credentials must be client_id:client_secret",
                    )
                })?;
                // RFC 6749 §2.3.1: both halves are form-encoded before base64.
                let unescape = |s: &str| {
                    form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                Some(ClientCredentials::Secret {
                    client_id: unescape(id),
                    secret: unescape(secret),
                })
            } else if scheme.eq_ignore_ascii_case("bearer") {
                Some(ClientCredentials::PersonApiToken(value.to_string()))
            } else {
                return Err(OAuthError::invalid_client(format!(
                    "the Authorization scheme {scheme} is not supported; use Basic or Bearer"
                )));
            }
        }
    };
    let mut found = Vec::new();
    if let Some(h) = header {
        found.push(h);
    }
    match (assertion_type, assertion) {
        (Some(t), Some(a)) if t == CLIENT_ASSERTION_JWT => {
            found.push(ClientCredentials::Assertion(a.to_string()))
        }
        (Some(t), Some(_)) => {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type must be {CLIENT_ASSERTION_JWT}, not {t}"
            )));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_assertion needs client_assertion_type",
            ));
        }
        _ => {}
    }
    if let Some((client_id, secret)) = form_secret {
        found.push(ClientCredentials::Secret { client_id, secret });
    }
    match found.len() {
        0 => Ok(ClientCredentials::None),
        1 => Ok(found.pop().expect("one element")),
        _ => Err(OAuthError::invalid_request(
            "use one client authentication method per request",
        )),
    }
}

/// An agent's registered public key with the `kid` it answers to.
#[derive(Debug, Clone)]
pub struct AgentKey {
    pub key: ed25519_dalek::VerifyingKey,
    pub kid: String,
}

/// An authenticated agent.
#[derive(Debug, Clone)]
pub struct AuthenticatedAgent {
    pub facts: AgentTokenFacts,
    pub credential_id: String,
    /// `private_key_jwt` or `client_secret`.
    pub method: &'static str,
}

/// An unknown agent is refused like a wrong key; store failures stay what they are.
fn hide_unknown(e: OAuthError, refusal: impl Fn() -> OAuthError) -> OAuthError {
    if e.error == "invalid_client" {
        refusal()
    } else {
        e
    }
}

/// Who signs an assertion or holds a secret: an agent, or a catalogued resource's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Agent,
    Resource,
}

impl Party {
    pub fn noun(self) -> &'static str {
        match self {
            Party::Agent => "agent",
            Party::Resource => "resource",
        }
    }

    /// Who the party is, and whether it is allowed, is said only to a caller whose signature
    /// verifies with one of its keys (enabled or not); anyone else learns only that the
    /// assertion was refused, not whether the party exists.
    fn unproven(self, sub: &str) -> OAuthError {
        let noun = self.noun();
        OAuthError::invalid_client(format!(
            "the {noun} assertion is refused: no registered key of {noun} {sub} verifies its \
             signature"
        ))
    }

    fn replay_key(self, sub: &str) -> String {
        match self {
            Party::Agent => sub.to_string(),
            Party::Resource => format!("resource:{sub}"),
        }
    }
}

/// The `iss` = `sub` of a well-formed assertion: the id of the party that signed it.
pub fn assertion_subject(assertion: &str, party: Party) -> Result<String, OAuthError> {
    let noun = party.noun();
    let bad =
        |m: String| OAuthError::invalid_client(format!("the {noun} assertion is refused: {m}"));
    let parsed = jwt::parse(assertion).map_err(|e| bad(e.0))?;
    subject_of(&parsed, party).map(str::to_string)
}

/// The `iss` = `sub` of a parsed assertion whose header is acceptable.
fn subject_of<'a>(parsed: &'a jwt::Unverified<'_>, party: Party) -> Result<&'a str, OAuthError> {
    let noun = party.noun();
    let bad =
        |m: String| OAuthError::invalid_client(format!("the {noun} assertion is refused: {m}"));
    parsed.check_header().map_err(|e| bad(e.0))?;
    let iss = parsed.claim_str("iss").unwrap_or_default();
    let sub = parsed.claim_str("sub").unwrap_or_default();
    if iss.is_empty() || iss != sub || sub.len() > 128 {
        return Err(bad(format!("iss and sub must both be the {noun}'s id")));
    }
    Ok(sub)
}

/// Hash under which static secrets are stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Parsed agent public keys by their stored JWK text (parsing costs a point decompression),
/// shared with the blocking pool.
pub(super) type KeyCache =
    std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, AgentKey>>>;

/// An agent's stored public key, parsed once and then kept (keyed by its exact material).
fn cached_key(cache: &KeyCache, material: &str) -> Result<AgentKey, OAuthError> {
    if let Some(key) = cache
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(material)
    {
        return Ok(key.clone());
    }
    let parsed = super::keys::parse_agent_public_key(material).map_err(|e| {
        tracing::error!(error = %e, "a stored agent key is damaged");
        OAuthError::server_error("a stored agent key is damaged")
    })?;
    let key = AgentKey {
        key: parsed.key,
        kid: parsed.kid,
    };
    let mut cache = cache.write().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= 100_000 {
        cache.clear();
    }
    cache.insert(material.to_string(), key.clone());
    Ok(key)
}

/// The credentials (their positions in `credentials`) an assertion is checked against, with
/// their keys. Bounded work: a kid picks its key (by the JWK's own kid, the credential id or
/// the thumbprint; at most two match); without one, the enabled keys (at most ten, see
/// MAX_ENABLED_CREDENTIALS) and then the ten newest disabled ones (so that a disabled key is
/// named as such) are tried.
fn candidate_keys(
    cache: &KeyCache,
    credentials: &[crate::registry::store::CredentialMaterial],
    kid: Option<&str>,
) -> Result<(Vec<usize>, Vec<ed25519_dalek::VerifyingKey>), OAuthError> {
    let public_keys = || {
        credentials
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == CredentialKind::PublicKey)
    };
    let mut candidates = Vec::new();
    let mut keys = Vec::new();
    match kid {
        Some(kid) => {
            for (i, c) in public_keys() {
                let key = cached_key(cache, &c.material)?;
                if kid == key.kid || kid == c.id || kid == c.fingerprint {
                    candidates.push(i);
                    keys.push(key.key);
                    if candidates.len() == 2 {
                        break;
                    }
                }
            }
        }
        None => {
            // Credentials come oldest first: the newest disabled ones are at the end.
            let disabled: Vec<_> = public_keys().filter(|(_, c)| c.disabled).rev().collect();
            for (i, c) in public_keys()
                .filter(|(_, c)| !c.disabled)
                .take(MAX_ENABLED_CREDENTIALS as usize)
                .chain(disabled.into_iter().take(MAX_ENABLED_CREDENTIALS as usize))
            {
                keys.push(cached_key(cache, &c.material)?.key);
                candidates.push(i);
            }
        }
    }
    Ok((candidates, keys))
}

/// The first key that verifies the signature, if any.
fn first_verifying(
    signed: &jwt::SignedParts,
    keys: &[ed25519_dalek::VerifyingKey],
) -> Option<usize> {
    keys.iter()
        .position(|k| jwt::verify_parts(signed, k).is_ok())
}

impl TokenService {
    async fn facts(&self, agent_id: &str) -> Result<AgentTokenFacts, OAuthError> {
        let id = agent_id.to_string();
        self.read(move |s| s.agent_token_facts(&id))
            .await?
            .ok_or_else(|| OAuthError::invalid_client(format!("no agent with id {agent_id}")))
    }

    fn check_active(facts: &AgentTokenFacts) -> Result<(), OAuthError> {
        match facts.status {
            AgentStatus::Active => Ok(()),
            other => Err(OAuthError::invalid_client(format!(
                "agent {} is {}; it cannot obtain or use tokens",
                facts.id,
                other.as_str()
            ))),
        }
    }

    /// Verifies an agent's assertion and spends its `jti`. `audiences` are the URLs the
    /// assertion may be addressed to (the endpoint called, the token endpoint, the issuer).
    pub async fn authenticate_assertion(
        &self,
        assertion: &str,
        audiences: &[&str],
    ) -> Result<AuthenticatedAgent, OAuthError> {
        Ok(self
            .authenticate_assertion_with(assertion, audiences, None)
            .await?
            .0)
    }

    /// [`authenticate_assertion`](Self::authenticate_assertion), reading also the person
    /// `person` (an exchange's subject) in the same trip to the blocking pool: the agent's
    /// facts, the person and the signature check (bounded, off the async workers) take one
    /// store read instead of three hops. Returns the person as read, when asked for.
    pub(super) async fn authenticate_assertion_with(
        &self,
        assertion: &str,
        audiences: &[&str],
        person: Option<String>,
    ) -> Result<(AuthenticatedAgent, Option<Option<Person>>), OAuthError> {
        let party = Party::Agent;
        let bad =
            |m: String| OAuthError::invalid_client(format!("the agent assertion is refused: {m}"));
        let parsed = jwt::parse(assertion).map_err(|e| bad(e.0))?;
        let sub = subject_of(&parsed, party)?.to_string();
        let unproven = || party.unproven(&sub);
        let signed = parsed.signed_parts();
        let kid = parsed.kid().map(str::to_string);
        let asked_person = person.is_some();
        // The facts (and the person) from the store's in-memory copy when it holds them: then
        // a signature check against at most two candidate keys (a kid picks at most two; an
        // agent with one or two keys has no more) runs here, without a trip to the blocking
        // pool; anything else (a miss, more keys to try) takes the trip as before.
        let fast = self.store.cached_agent_token_facts(&sub).and_then(|facts| {
            let person = match &person {
                Some(email) => Some(self.store.cached_person(email)?),
                None => None,
            };
            Some((facts, person))
        });
        let fast = match fast {
            Some((facts, person)) => {
                match candidate_keys(&self.agent_keys, &facts.credentials, kid.as_deref()) {
                    Ok((candidates, keys)) if keys.len() <= 2 => {
                        let verified = Ok(first_verifying(&signed, &keys).map(|i| candidates[i]));
                        Some(Some((facts, person, verified)))
                    }
                    _ => None,
                }
            }
            None => None,
        };
        let cache = self.agent_keys.clone();
        let id = sub.clone();
        let found = match fast {
            Some(found) => found,
            None => self
                .read(move |s| {
                    let Some(facts) = s.agent_token_facts(&id)? else {
                        return Ok(None);
                    };
                    let person = match &person {
                        Some(email) => s.person(email)?,
                        None => None,
                    };
                    let verified = candidate_keys(&cache, &facts.credentials, kid.as_deref()).map(
                        |(candidates, keys)| first_verifying(&signed, &keys).map(|i| candidates[i]),
                    );
                    Ok(Some((facts, person, verified)))
                })
                .await
                .map_err(|e| hide_unknown(e, unproven))?,
        };
        let Some((facts, person, verified)) = found else {
            return Err(unproven());
        };
        let credential = &facts.credentials[verified?.ok_or_else(unproven)?];
        let credential_id = self
            .check_assertion(
                &parsed,
                party,
                &sub,
                credential,
                Self::check_active(&facts),
                audiences,
            )
            .await?;
        Ok((
            AuthenticatedAgent {
                facts,
                credential_id,
                method: "private_key_jwt",
            },
            asked_person.then_some(person),
        ))
    }

    /// Verifies an assertion signed by `party` (whose id is its `iss` = `sub`) against that
    /// party's `credentials`, and spends its `jti`; returns the credential that verified it.
    /// `allowed` is whether the party may act at all, said only once the signature verifies.
    pub(super) async fn verify_assertion(
        &self,
        assertion: &str,
        party: Party,
        credentials: &[crate::registry::store::CredentialMaterial],
        allowed: Result<(), OAuthError>,
        audiences: &[&str],
    ) -> Result<String, OAuthError> {
        let noun = party.noun();
        let bad =
            |m: String| OAuthError::invalid_client(format!("the {noun} assertion is refused: {m}"));
        // Parsed once: the blocking check below needs only the signed bytes and the signature.
        let parsed = jwt::parse(assertion).map_err(|e| bad(e.0))?;
        let sub = subject_of(&parsed, party)?;
        let (candidates, keys) = candidate_keys(&self.agent_keys, credentials, parsed.kid())?;
        let signed = parsed.signed_parts();
        let verified = tokio::task::spawn_blocking(move || first_verifying(&signed, &keys))
            .await
            .map_err(|e| OAuthError::server_error(format!("a signature check failed: {e}")))?;
        let credential = &credentials[verified
            .map(|i| candidates[i])
            .ok_or_else(|| party.unproven(sub))?];
        self.check_assertion(&parsed, party, sub, credential, allowed, audiences)
            .await
    }

    /// The checks after the signature verified with `credential`: whether the party may act,
    /// the key is enabled, and the claims (audience, times, single-use jti). Spends the jti;
    /// returns the credential's id.
    async fn check_assertion(
        &self,
        parsed: &jwt::Unverified<'_>,
        party: Party,
        sub: &str,
        credential: &crate::registry::store::CredentialMaterial,
        allowed: Result<(), OAuthError>,
        audiences: &[&str],
    ) -> Result<String, OAuthError> {
        let noun = party.noun();
        let bad =
            |m: String| OAuthError::invalid_client(format!("the {noun} assertion is refused: {m}"));
        allowed?;
        if credential.disabled {
            return Err(bad(format!(
                "key {} of {noun} {sub} is disabled",
                credential.id
            )));
        }
        let credential_id = credential.id.clone();
        if !jwt::audience_contains(&parsed.claims, audiences) {
            return Err(bad(format!("aud must name {}", self.token_endpoint)));
        }
        let now = self.clock().unix();
        let exp = jwt::numeric_date(&parsed.claims, "exp")
            .map_err(|e| bad(e.0))?
            .ok_or_else(|| bad("exp is missing".into()))?;
        if exp + CLOCK_LEEWAY <= now {
            return Err(bad("it has expired".into()));
        }
        let nbf = jwt::numeric_date(&parsed.claims, "nbf").map_err(|e| bad(e.0))?;
        if let Some(nbf) = nbf
            && nbf > now + CLOCK_LEEWAY
        {
            return Err(bad("it is not valid yet (nbf)".into()));
        }
        let iat = jwt::numeric_date(&parsed.claims, "iat").map_err(|e| bad(e.0))?;
        if let Some(iat) = iat
            && iat > now + CLOCK_LEEWAY
        {
            return Err(bad("it was issued in the future (iat)".into()));
        }
        // An assertion that says when it starts may live an hour from then (the jti is spent
        // until exp, so it cannot be replayed meanwhile); one that does not, five minutes from now.
        match iat.into_iter().chain(nbf).max() {
            Some(start) => {
                if exp - start > ASSERTION_MAX_SECONDS_DATED {
                    return Err(bad(format!(
                        "it lives more than {ASSERTION_MAX_SECONDS_DATED} seconds (exp - iat/nbf)"
                    )));
                }
            }
            None => {
                if exp > now + ASSERTION_MAX_SECONDS + CLOCK_LEEWAY {
                    return Err(bad(format!(
                        "exp is more than {ASSERTION_MAX_SECONDS} seconds ahead \
                         (up to {ASSERTION_MAX_SECONDS_DATED} with iat or nbf)"
                    )));
                }
            }
        }
        let jti = parsed
            .claim_str("jti")
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| bad("jti (1 to 256 characters) is missing".into()))?;
        // Agents and resources spend their jtis in separate spaces: ids may coincide.
        let spender = party.replay_key(sub);
        if !self.live.consume_assertion(&spender, jti, exp) {
            return Err(bad(format!("its jti {jti} was already used (replay)")));
        }
        let fresh = self
            .spend_assertion(ConsumedAssertion {
                agent_id: spender,
                jti: jti.to_string(),
                expires_at: exp,
            })
            .await?;
        if !fresh {
            return Err(bad(format!(
                "its jti {jti} was already used (replay, at another replica)"
            )));
        }
        Ok(credential_id)
    }

    /// Checks a legacy agent's static secret.
    pub async fn authenticate_secret(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<AuthenticatedAgent, OAuthError> {
        // As with assertions: only a caller holding the secret learns about the agent.
        let unproven = || {
            OAuthError::invalid_client(format!(
                "the client secret of agent {client_id} is wrong or disabled"
            ))
        };
        let facts = self
            .facts(client_id)
            .await
            .map_err(|e| hide_unknown(e, unproven))?;
        let hash = secret_hash(secret);
        let credential = facts
            .credentials
            .iter()
            .find(|c| c.kind == CredentialKind::StaticSecret && !c.disabled && c.material == hash)
            .ok_or_else(unproven)?;
        Self::check_active(&facts)?;
        Ok(AuthenticatedAgent {
            credential_id: credential.id.clone(),
            facts,
            method: "client_secret",
        })
    }

    /// Authenticates the agent of an exchange, reading the subject person `person` with its
    /// facts when it signed an assertion (see [`authenticate_assertion_with`]). The person is
    /// returned when it was read.
    ///
    /// [`authenticate_assertion_with`]: Self::authenticate_assertion_with
    pub(super) async fn authenticate_exchanging_agent(
        &self,
        credentials: ClientCredentials,
        audiences: &[&str],
        person: Option<String>,
    ) -> Result<(AuthenticatedAgent, Option<Option<Person>>), OAuthError> {
        match credentials {
            ClientCredentials::Assertion(a) => {
                self.authenticate_assertion_with(&a, audiences, person)
                    .await
            }
            other => Ok((self.authenticate_agent(other, audiences).await?, None)),
        }
    }

    /// Authenticates an agent by whichever method it used.
    pub async fn authenticate_agent(
        &self,
        credentials: ClientCredentials,
        audiences: &[&str],
    ) -> Result<AuthenticatedAgent, OAuthError> {
        match credentials {
            ClientCredentials::Assertion(a) => self.authenticate_assertion(&a, audiences).await,
            ClientCredentials::Secret { client_id, secret } => {
                self.authenticate_secret(&client_id, &secret).await
            }
            ClientCredentials::PersonApiToken(_) => Err(OAuthError::invalid_client(
                "an agent authenticates with an assertion or a client secret, not a bearer token",
            )),
            ClientCredentials::None => Err(OAuthError::invalid_client(
                "the agent did not authenticate: send its signed assertion",
            )),
        }
    }
}
