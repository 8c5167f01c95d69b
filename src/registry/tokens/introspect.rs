//! Introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Both read the live index only: a token is recognised by the SHA-256 of its exact bytes, which
//! only the registry's own signature could have produced, and its state (expiry, revocation of
//! itself, of any token it was exchanged from, or of any agent in its chain) is current to the
//! last revoke. Nothing here waits for the database except the recording of a revocation.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::auth::{ClientCredentials, FormParams, Party, assertion_subject, secret_hash};
use super::exchange::{act_claim, aud_claim};
use super::live::{TokenKind, TokenRecord};
use super::{OAuthError, TokenService, token_digest};
use crate::model::tokens::Introspection;
use crate::model::{Actor, CredentialKind, Person, Role};
use crate::registry::store::ResourceAuthFacts;

/// How long a person's API token, once checked, is trusted for introspection.
const CALLER_CACHE: Duration = Duration::from_secs(1);

/// Who called introspection or revocation.
#[derive(Debug, Clone)]
pub enum OAuthCaller {
    Person(Person),
    Agent(String),
    /// A catalogued resource's server, with the audiences of that resource.
    Resource {
        id: String,
        audiences: Vec<String>,
    },
}

impl OAuthCaller {
    pub fn actor(&self) -> Actor {
        match self {
            OAuthCaller::Person(p) => Actor::human(&p.email),
            OAuthCaller::Agent(id) => Actor {
                kind: crate::model::ActorKind::Agent,
                id: id.clone(),
                on_behalf_of: None,
                chain: Vec::new(),
            },
            // A resource server is no person and no agent: the registry records it as a
            // system actor named after the resource.
            OAuthCaller::Resource { id, .. } => Actor {
                kind: crate::model::ActorKind::System,
                id: format!("resource:{id}"),
                on_behalf_of: None,
                chain: Vec::new(),
            },
        }
    }
}

impl TokenService {
    /// Authenticates the caller of introspection or revocation: a person's API token, or an
    /// agent's assertion or secret.
    pub async fn authenticate_caller(
        &self,
        credentials: ClientCredentials,
        endpoint: &str,
    ) -> Result<OAuthCaller, OAuthError> {
        match credentials {
            ClientCredentials::PersonApiToken(token) => {
                let hash = crate::registry::http::auth::hash_api_token(&token);
                // Resource servers introspect many tokens a second with one API token: its
                // check is reused for at most a second, so that introspection stays in memory.
                // Revoking the API token or deactivating its person reaches introspection within
                // that second; revocation and every other call check the token each time.
                let cacheable = endpoint == self.introspection_endpoint;
                let key: [u8; 32] = Sha256::digest(hash.as_bytes()).into();
                if cacheable
                    && let Some((caller, until)) = self
                        .callers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&key)
                    && *until > Instant::now()
                {
                    return Ok(caller.clone());
                }
                let owner = self
                    .read(move |s| s.token_owner(&hash))
                    .await?
                    .ok_or_else(|| OAuthError::invalid_client("the API token is not known"))?;
                if owner.revoked {
                    return Err(OAuthError::invalid_client("the API token has been revoked"));
                }
                if owner.invitation {
                    return Err(OAuthError::invalid_client(
                        "this token is an invitation: it is good only for redeeming with \
                         POST /v1/me/tokens, which gives you your own API token",
                    ));
                }
                if owner.expires_at <= self.clock().now() {
                    return Err(OAuthError::invalid_client("the API token has expired"));
                }
                if !owner.person.active {
                    return Err(OAuthError::invalid_client(format!(
                        "{} has left; their tokens no longer work",
                        owner.person.email
                    )));
                }
                let caller = OAuthCaller::Person(owner.person);
                if cacheable {
                    let mut cache = self.callers.lock().unwrap_or_else(|p| p.into_inner());
                    if cache.len() >= 10_000 {
                        cache.clear();
                    }
                    cache.insert(key, (caller.clone(), Instant::now() + CALLER_CACHE));
                }
                Ok(caller)
            }
            other => {
                let audiences = [endpoint, self.token_endpoint.as_str(), self.issuer.as_str()];
                // Only introspection serves resource servers; revocation is for agents.
                if endpoint == self.introspection_endpoint
                    && let Some(resource) = self.claimed_resource(&other).await?
                {
                    return self
                        .authenticate_resource(other, resource, &audiences)
                        .await;
                }
                let agent = self.authenticate_agent(other, &audiences).await?;
                Ok(OAuthCaller::Agent(agent.facts.id))
            }
        }
    }

    /// Authenticates a Shared Signals receiver: a person's API token (the caller checks the
    /// admin role), or a catalogued resource's secret or signed assertion. Never an agent.
    pub async fn authenticate_receiver(
        &self,
        credentials: ClientCredentials,
        endpoint: &str,
    ) -> Result<OAuthCaller, OAuthError> {
        if let ClientCredentials::PersonApiToken(_) = &credentials {
            return self.authenticate_caller(credentials, endpoint).await;
        }
        let audiences = [endpoint, self.issuer.as_str()];
        match self.claimed_resource(&credentials).await? {
            Some(resource) => {
                self.authenticate_resource(credentials, resource, &audiences)
                    .await
            }
            None => Err(OAuthError::invalid_client(
                "a Shared Signals receiver authenticates as a catalogued resource (HTTP Basic \
                 resource-id:secret, or Bearer with an assertion the resource signed) or with \
                 an admin's API token",
            )),
        }
    }

    /// The catalogued resource the credentials claim to be, when it holds any credential:
    /// such an id authenticates as the resource, never as an agent of the same id.
    async fn claimed_resource(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Option<ResourceAuthFacts>, OAuthError> {
        let id = match credentials {
            ClientCredentials::Secret { client_id, .. } => client_id.clone(),
            ClientCredentials::Assertion(a) => match assertion_subject(a, Party::Resource) {
                Ok(sub) => sub,
                // A malformed assertion is refused by the agent path with its own words.
                Err(_) => return Ok(None),
            },
            _ => return Ok(None),
        };
        let facts = self.read(move |s| s.resource_auth_facts(&id)).await?;
        Ok(facts.filter(|f| !f.credentials.is_empty()))
    }

    /// A resource server proves itself with one of its resource's enabled credentials: its
    /// static secret (HTTP Basic `resource-id:secret`) or an assertion it signed.
    async fn authenticate_resource(
        &self,
        credentials: ClientCredentials,
        resource: ResourceAuthFacts,
        audiences: &[&str],
    ) -> Result<OAuthCaller, OAuthError> {
        match credentials {
            ClientCredentials::Secret { secret, .. } => {
                let hash = secret_hash(&secret);
                let known = resource.credentials.iter().any(|c| {
                    c.kind == CredentialKind::StaticSecret && !c.disabled && c.material == hash
                });
                if !known {
                    return Err(OAuthError::invalid_client(format!(
                        "the client secret of resource {} is wrong or disabled",
                        resource.id
                    )));
                }
            }
            ClientCredentials::Assertion(a) => {
                self.verify_assertion(
                    &a,
                    Party::Resource,
                    &resource.credentials,
                    Ok(()),
                    audiences,
                )
                .await?;
            }
            _ => {
                return Err(OAuthError::invalid_client(
                    "a resource authenticates with its secret or a signed assertion",
                ));
            }
        }
        Ok(OAuthCaller::Resource {
            id: resource.id,
            audiences: resource.audiences,
        })
    }

    /// The answer for `token` as the registry knows it: active with its claims, or only
    /// `active: false`. Callers over HTTP go through [`TokenService::introspect_for`].
    pub fn introspect(&self, token: &str) -> Introspection {
        self.introspect_where(token, |_| true)
    }

    /// RFC 7662 for one caller: the claims go only to admins, responders, the token's subject,
    /// an agent in its chain, and a catalogued resource the token is for; everyone else gets
    /// `{"active": false}`, the same answer as for a token that does not exist.
    pub fn introspect_for(&self, caller: &OAuthCaller, token: &str) -> Introspection {
        let answer = self.introspect_where(token, |r| self.may_see_claims(caller, r));
        if let OAuthCaller::Resource { audiences, .. } = caller {
            self.record_introspection(audiences, token, answer.active);
        }
        answer
    }

    /// A resource server's introspection enters the acting agent's activity record: a token
    /// addressed to it (active or not: a revoked token still presented is worth knowing).
    /// Tokens it may not see are not recorded (it learns nothing, and nothing is said).
    fn record_introspection(&self, audiences: &[String], token: &str, active: bool) {
        let Some(b) = self.behaviour() else { return };
        let event = self.live.with_digest(&token_digest(token), |view| {
            let r = view.record;
            let agent = r.client_id.clone().or_else(|| r.actors.first().cloned())?;
            if !audiences.iter().any(|aud| r.audience.contains(aud)) {
                return None;
            }
            Some(crate::registry::behaviour::introspection_event(
                self.clock().now(),
                &agent,
                active,
                &r.subject,
                r.actors.len(),
                &r.scopes,
                audiences,
            ))
        });
        if let Some(Some(e)) = event {
            b.observe(e, None);
        }
    }

    fn may_see_claims(&self, caller: &OAuthCaller, r: &TokenRecord) -> bool {
        match caller {
            OAuthCaller::Person(p) => {
                p.has_role(Role::Admin)
                    || p.has_role(Role::Responder)
                    || p.email.eq_ignore_ascii_case(&r.subject)
            }
            OAuthCaller::Agent(id) => r.actors.iter().any(|a| a == id),
            // A resource server sees exactly the tokens addressed to its resource.
            OAuthCaller::Resource { audiences, .. } => {
                audiences.iter().any(|aud| r.audience.contains(aud))
            }
        }
    }

    fn introspect_where(
        &self,
        token: &str,
        allowed: impl Fn(&TokenRecord) -> bool,
    ) -> Introspection {
        let now = self.clock().unix();
        self.live
            .with_digest(&token_digest(token), |view| {
                let r = view.record;
                if view.revoked || r.expires_at <= now || !allowed(&r) {
                    return Introspection::default();
                }
                Introspection {
                    active: true,
                    sub: Some(r.subject.clone()),
                    act: act_claim(&r.actors),
                    may_act: r.may_act.as_ref().map(|a| serde_json::json!({"sub": a})),
                    scope: (r.kind == TokenKind::Exchange || !r.scopes.is_empty())
                        .then(|| r.scopes.join(" ")),
                    client_id: r.client_id.clone(),
                    aud: Some(aud_claim(&r.audience)),
                    iss: Some(self.issuer.clone()),
                    exp: Some(r.expires_at),
                    iat: Some(r.issued_at),
                    jti: Some(r.jti.clone()),
                    token_type: Some("Bearer".into()),
                }
            })
            .unwrap_or_default()
    }

    /// RFC 7009: revokes `token` and everything exchanged from it. Unknown, expired and already
    /// revoked tokens succeed with nothing to do. Returns how many live tokens were revoked.
    pub async fn revoke(&self, caller: &OAuthCaller, form: &FormParams) -> Result<u64, OAuthError> {
        let token = form.required("token")?;
        // token_type_hint is only a hint (RFC 7009 §2.1): every token here is an access token.
        form.one("token_type_hint")?;
        self.catch_up(token).await;
        let found = self.live.with_digest(&token_digest(token), |view| {
            (
                view.record.jti.clone(),
                view.record.subject.clone(),
                view.record.actors.clone(),
                view.record.client_id.clone(),
            )
        });
        let Some((jti, subject, actors, client_id)) = found else {
            // Not a token the registry signed: it may be an API token, which whoever presents
            // it may revoke (holding it is the proof; RFC 7009 lets a leaked credential be
            // killed by whoever finds it). Everything it minted dies with it.
            if token.starts_with("stw_") {
                let hash = crate::registry::http::auth::hash_api_token(token);
                let store = self.store.clone();
                let actor = caller.actor();
                let killed = tokio::task::spawn_blocking(move || {
                    store.revoke_presented_api_token(&actor, &hash)
                })
                .await
                .map_err(|e| OAuthError::server_error(format!("worker failed: {e}")))?
                .map_err(OAuthError::from)?;
                return Ok(killed.unwrap_or(0));
            }
            return Ok(0);
        };
        let allowed = match caller {
            OAuthCaller::Agent(id) => actors.iter().any(|a| a == id),
            OAuthCaller::Resource { .. } => false,
            OAuthCaller::Person(p) => {
                p.email.eq_ignore_ascii_case(&subject)
                    || p.has_role(Role::Admin)
                    || p.has_role(Role::Responder)
                    || match &client_id {
                        Some(agent) => self.owns(p, agent).await?,
                        None => false,
                    }
            }
        };
        if !allowed {
            // The same answer as for a token that does not exist (RFC 7009 §2.2): a caller who
            // may not revoke a token learns nothing about it, not even that it is live.
            return Ok(0);
        }
        let store = self.store.clone();
        let actor = caller.actor();
        tokio::task::spawn_blocking(move || store.revoke_token(&actor, &jti))
            .await
            .map_err(|e| OAuthError::server_error(format!("worker failed: {e}")))?
            .map_err(OAuthError::from)
    }

    async fn owns(&self, person: &Person, agent_id: &str) -> Result<bool, OAuthError> {
        let id = agent_id.to_string();
        let facts = self.read(move |s| s.agent_token_facts(&id)).await?;
        Ok(facts
            .and_then(|f| f.owner_email)
            .is_some_and(|o| o.eq_ignore_ascii_case(&person.email)))
    }
}
