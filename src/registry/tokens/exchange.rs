//! Token exchange (RFC 8693) with the agent as actor, and person access tokens.

use serde_json::{Map, Value, json};

use super::auth::{AuthenticatedAgent, ClientCredentials, FormParams};
use super::idp::{self, IdpRefusal};
use super::jwt;
use super::live::{IssueRefusal, TokenKind, TokenRecord};
use super::{OAuthError, PERSON_TOKEN_MAX_SECONDS, TokenService, new_jti, token_digest};
use crate::model::Person;
use crate::model::text::{check_line, check_scope};
use crate::model::tokens::{
    GRANT_TOKEN_EXCHANGE, MintedAccessToken, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT, TokenResponse,
};

/// The API token a person access token is minted with: the new token never outlives it and
/// dies when it is revoked.
#[derive(Debug, Clone)]
pub struct MintingApiToken {
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Most audiences (`audience` + `resource`) one token may name.
const MAX_AUDIENCES: usize = 5;
/// Most scopes one request may ask for.
const MAX_SCOPES: usize = 100;

/// The person behind a subject token, and what the token allows.
pub(super) struct Subject {
    pub(super) person: String,
    /// The registry's own token this one is, if any (for the delegation tree).
    pub(super) parent_jti: Option<String>,
    /// Actors already in the chain, newest first (a sub-agent hop).
    pub(super) actors: Vec<String>,
    /// Scopes the subject token is bounded to: an exchanged token's scopes (a hop may not
    /// widen them) or a person token's `scope` claim.
    pub(super) scopes: Option<Vec<String>>,
    pub(super) may_act: Option<String>,
    pub(super) expires_at: i64,
    pub(super) source: String,
    /// For a hop: the delegation the first exchange used (inherited, for the record).
    pub(super) delegation_id: Option<String>,
}

/// `act` for a chain of actors, newest first: `{"sub": a1, "act": {"sub": a2}}`.
pub fn act_claim(actors: &[String]) -> Option<Value> {
    actors.iter().rev().fold(None, |inner, actor| {
        let mut obj = Map::new();
        obj.insert("sub".into(), Value::String(actor.clone()));
        if let Some(inner) = inner {
            obj.insert("act".into(), inner);
        }
        Some(Value::Object(obj))
    })
}

/// `aud` as one string or an array (RFC 7519 §4.1.3).
pub fn aud_claim(audience: &[String]) -> Value {
    match audience {
        [one] => Value::String(one.clone()),
        many => json!(many),
    }
}

fn may_act_of(claims: &Map<String, Value>) -> Result<Option<String>, OAuthError> {
    match claims.get("may_act") {
        None => Ok(None),
        Some(Value::Object(m)) => match m.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            _ => Err(OAuthError::invalid_grant(
                "the subject token's may_act has no sub naming who may act",
            )),
        },
        Some(_) => Err(OAuthError::invalid_grant(
            "the subject token's may_act must be an object such as {\"sub\": \"agent id\"}",
        )),
    }
}

pub(crate) fn parse_scopes(text: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for s in text.split(' ').filter(|s| !s.is_empty()) {
        check_scope(s).map_err(|e| OAuthError::invalid_scope(e.0))?;
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope(
            "scope is required: name the scopes this task needs",
        ));
    }
    if scopes.len() > MAX_SCOPES {
        return Err(OAuthError::invalid_scope(format!(
            "at most {MAX_SCOPES} scopes may be asked for at once"
        )));
    }
    Ok(scopes)
}

fn parse_audience(form: &FormParams) -> Result<Vec<String>, OAuthError> {
    let mut audience: Vec<String> = Vec::new();
    for a in form.all("audience") {
        check_line("audience", a, 256).map_err(|e| OAuthError::invalid_target(e.0))?;
        if !audience.iter().any(|x| x == a) {
            audience.push(a.to_string());
        }
    }
    for r in form.all("resource") {
        let url = reqwest::Url::parse(r).map_err(|_| {
            OAuthError::invalid_target(format!("resource {r:?} is not an absolute URI"))
        })?;
        if url.fragment().is_some() || r.len() > 256 {
            return Err(OAuthError::invalid_target(format!(
                "resource {r:?} must be at most 256 characters without a fragment"
            )));
        }
        if !audience.iter().any(|x| x == r) {
            audience.push(r.to_string());
        }
    }
    if audience.is_empty() {
        return Err(OAuthError::invalid_request(
            "audience or resource is required: name the service the token is for",
        ));
    }
    if audience.len() > MAX_AUDIENCES {
        return Err(OAuthError::invalid_target(format!(
            "at most {MAX_AUDIENCES} audiences may be named"
        )));
    }
    Ok(audience)
}

impl TokenService {
    /// Checks that the person exists and has not left (`read`: the person as already read
    /// with the agent's facts, if it was).
    async fn active_person(
        &self,
        email: &str,
        read: Option<Option<Person>>,
    ) -> Result<Person, OAuthError> {
        let found = match read {
            Some(found) => found,
            None => {
                let wanted = email.to_string();
                self.read(move |s| s.person(&wanted)).await?
            }
        };
        let person = found.ok_or_else(|| {
            OAuthError::invalid_grant(format!("the subject {email} is not a person known here"))
        })?;
        if !person.active {
            return Err(OAuthError::invalid_grant(format!(
                "the subject {email} has left; their tokens cannot be exchanged"
            )));
        }
        Ok(person)
    }

    /// Reads a subject token: the registry's own (person token or earlier exchange), or a
    /// trusted identity provider's.
    async fn subject(&self, token: &str) -> Result<Subject, OAuthError> {
        let bad =
            |m: String| OAuthError::invalid_grant(format!("the subject token is refused: {m}"));
        let parsed = jwt::parse(token).map_err(|e| bad(e.0))?;
        let iss = parsed.claim_str("iss").unwrap_or_default().to_string();
        if iss == self.issuer {
            return self.own_subject_parsed(&parsed, token);
        }
        self.foreign_subject(token, &iss)
    }

    /// A subject token the registry issued and still indexes, read from the live index alone
    /// (no signature check, no store read); None when the token is not in the index.
    fn own_subject(&self, token: &str) -> Option<Result<Subject, OAuthError>> {
        let parsed = jwt::parse(token).ok()?;
        if parsed.claim_str("iss") != Some(self.issuer.as_str()) {
            return None;
        }
        self.indexed_subject(token)
    }

    fn own_subject_parsed(
        &self,
        parsed: &jwt::Unverified<'_>,
        token: &str,
    ) -> Result<Subject, OAuthError> {
        self.indexed_subject(token).unwrap_or_else(|| {
            // Not in the index: say precisely why when the signature is ours.
            let now = self.clock().unix();
            let bad =
                |m: &str| OAuthError::invalid_grant(format!("the subject token is refused: {m}"));
            let key = parsed.kid().and_then(|k| self.published_key(k));
            let ours = key.is_some_and(|k| parsed.verify(&k).is_ok());
            let exp = jwt::numeric_date(&parsed.claims, "exp").ok().flatten();
            if ours && exp.is_some_and(|e| e <= now) {
                Err(bad("it has expired"))
            } else {
                Err(bad("it is not a live token issued by this registry"))
            }
        })
    }

    /// The subject of a token in the live index, or None when it is not there.
    fn indexed_subject(&self, token: &str) -> Option<Result<Subject, OAuthError>> {
        let bad =
            |m: String| OAuthError::invalid_grant(format!("the subject token is refused: {m}"));
        let now = self.clock().unix();
        {
            let found = self.live.with_digest(&token_digest(token), |view| {
                let r = view.record;
                (
                    view.revoked,
                    Subject {
                        person: r.subject.clone(),
                        parent_jti: Some(r.jti.clone()),
                        actors: r.actors.clone(),
                        // A person token without a `scope` claim has no scopes of its own.
                        scopes: (r.kind == TokenKind::Exchange || !r.scopes.is_empty())
                            .then(|| r.scopes.clone()),
                        may_act: r.may_act.clone(),
                        expires_at: r.expires_at,
                        delegation_id: r.delegation_id.clone(),
                        source: match r.kind {
                            TokenKind::Person => "person-token".into(),
                            TokenKind::Exchange => "exchange".into(),
                        },
                    },
                )
            });
            found.map(|found| match found {
                (true, _) => Err(bad("it has been revoked".into())),
                (false, s) if s.expires_at <= now => Err(bad("it has expired".into())),
                (false, s) => Ok(s),
            })
        }
    }

    /// A subject token from a trusted identity provider.
    fn foreign_subject(&self, token: &str, iss: &str) -> Result<Subject, OAuthError> {
        let bad =
            |m: String| OAuthError::invalid_grant(format!("the subject token is refused: {m}"));
        let now = self.clock().unix();
        let verified = {
            let issuers = self.issuers.read().unwrap_or_else(|p| p.into_inner());
            let provider = issuers.get(iss).ok_or_else(|| {
                bad(format!(
                    "its issuer {iss:?} is not a trusted identity provider of this registry"
                ))
            })?;
            provider.verify(token, self.clock().unix())
        };
        let claims = verified.map_err(|e| match e {
            IdpRefusal::Expired => bad("it has expired".into()),
            IdpRefusal::Invalid(m) => bad(m),
        })?;
        // The person is named by a verified `email`, or by `sub` when that is an email address.
        let email = idp::person_of(&claims).map_err(bad)?;
        let expires_at = jwt::numeric_date(&claims, "exp")
            .map_err(|e| bad(e.0))?
            .unwrap_or(now);
        Ok(Subject {
            person: email,
            parent_jti: None,
            actors: Vec::new(),
            scopes: None,
            may_act: may_act_of(&claims)?,
            expires_at,
            source: format!("idp:{iss}"),
            delegation_id: None,
        })
    }

    /// The token endpoint: RFC 8693 token exchange, the agent as actor.
    pub async fn exchange(
        &self,
        form: &FormParams,
        client: ClientCredentials,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = form.required("grant_type")?;
        if grant_type != GRANT_TOKEN_EXCHANGE {
            return Err(OAuthError::unsupported_grant_type(format!(
                "this registry issues tokens only by token exchange ({GRANT_TOKEN_EXCHANGE})"
            )));
        }
        let subject_token = form.required("subject_token")?;
        let subject_type = form.required("subject_token_type")?;
        if subject_type != TOKEN_TYPE_ACCESS && subject_type != TOKEN_TYPE_JWT {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {TOKEN_TYPE_ACCESS} or {TOKEN_TYPE_JWT}"
            )));
        }
        let issued_type = match form.one("requested_token_type")? {
            None | Some(TOKEN_TYPE_ACCESS) => TOKEN_TYPE_ACCESS,
            Some(TOKEN_TYPE_JWT) => TOKEN_TYPE_JWT,
            Some(other) => {
                return Err(OAuthError::invalid_request(format!(
                    "requested_token_type {other} is not issued here; ask for {TOKEN_TYPE_ACCESS}"
                )));
            }
        };
        let scopes = parse_scopes(form.one("scope")?.unwrap_or_default())?;
        let audience = parse_audience(form)?;
        // The actor: the agent's assertion as actor_token, or its client authentication.
        let credentials = match (form.one("actor_token")?, form.one("actor_token_type")?) {
            (Some(actor), Some(TOKEN_TYPE_JWT)) => {
                if !matches!(client, ClientCredentials::None) {
                    return Err(OAuthError::invalid_request(
                        "send the agent's assertion once: as actor_token or as client authentication",
                    ));
                }
                ClientCredentials::Assertion(actor.to_string())
            }
            (Some(_), Some(other)) => {
                return Err(OAuthError::invalid_request(format!(
                    "actor_token_type must be {TOKEN_TYPE_JWT}, not {other}"
                )));
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "actor_token needs actor_token_type",
                ));
            }
            (None, _) => client,
        };
        let audiences = [self.token_endpoint.as_str(), self.issuer.as_str()];
        // A subject token of the registry's own is read from memory first, so that its person
        // is read with the agent's facts in one store trip; its errors still come after the
        // agent's (an unauthenticated caller learns nothing about the subject token).
        self.catch_up(subject_token).await;
        let own = self.own_subject(subject_token);
        let person = match &own {
            Some(Ok(s)) => Some(s.person.clone()),
            _ => None,
        };
        let (agent, person) = self
            .authenticate_exchanging_agent(credentials, &audiences, person)
            .await?;
        let subject = match own {
            Some(subject) => subject?,
            None => self.subject(subject_token).await?,
        };
        let approval_id = form.one("approval_id")?;
        self.issue_exchanged(
            agent,
            subject,
            person,
            scopes,
            audience,
            issued_type,
            approval_id,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn issue_exchanged(
        &self,
        agent: AuthenticatedAgent,
        subject: Subject,
        person: Option<Option<Person>>,
        scopes: Vec<String>,
        audience: Vec<String>,
        issued_type: &str,
        approval_id: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let agent_id = agent.facts.id.clone();
        self.active_person(&subject.person, person).await?;
        // Who may use this token at all, and within what (tokens/consent.rs).
        let consent = self.consent(&agent, &subject).await?;
        consent.check_scopes(&agent, &subject, &scopes)?;
        // Only to the systems that own the scopes (tokens/audience.rs).
        self.check_audience(&scopes, &audience)?;
        let now = self.clock().unix();
        // Never outlive the token it was exchanged from, nor the delegation that allowed it.
        let expires_at = (now + self.default_ttl)
            .min(subject.expires_at)
            .min(consent.expires_at().unwrap_or(i64::MAX));
        if expires_at <= now {
            return Err(OAuthError::invalid_grant("the subject token has expired"));
        }
        let delegation_id = consent.delegation_id().or(subject.delegation_id.clone());
        let mut actors = Vec::with_capacity(subject.actors.len() + 1);
        actors.push(agent_id.clone());
        actors.extend(subject.actors.iter().cloned());
        self.check_per_use(super::per_use::PerUseExchange {
            agent_id: &agent_id,
            subject: &subject.person,
            chain: &actors,
            scopes: &scopes,
            audience: &audience,
            approval_id,
        })
        .await?;
        let jti = new_jti();
        let key = self.signing_key();
        let scope_text = scopes.join(" ");
        let claims = json!({
            "iss": self.issuer,
            "sub": subject.person,
            "aud": aud_claim(&audience),
            "scope": scope_text,
            "client_id": agent_id,
            "act": act_claim(&actors),
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": jti,
        });
        let token = jwt::sign(&claims, &key.signing, &key.kid, "at+jwt");
        let record = TokenRecord {
            jti,
            kind: TokenKind::Exchange,
            digest: token_digest(&token),
            kid: key.kid.clone(),
            subject: subject.person,
            client_id: Some(agent_id.clone()),
            actors,
            parent_jti: subject.parent_jti,
            scopes,
            audience,
            may_act: None,
            subject_source: subject.source,
            client_auth: Some(agent.method.to_string()),
            credential_id: Some(agent.credential_id),
            issued_at: now,
            expires_at,
            api_token_id: None,
            delegation_id,
        };
        // Removed grants are remembered for minutes, not forever (tokens/removed_grants.rs):
        // an exchange that stalled longer than that could carry a grant removed meanwhile.
        if self.clock().unix() - now > super::live::SLOWEST_EXCHANGE_SECONDS {
            return Err(OAuthError::too_slow());
        }
        self.live
            .issue(record.clone(), now)
            .map_err(|refusal| match refusal {
                IssueRefusal::AgentBlocked(a) => OAuthError::invalid_client(format!(
                    "agent {a} has been revoked; it cannot obtain tokens"
                )),
                IssueRefusal::ParentInactive(_) => {
                    OAuthError::invalid_grant("the subject token has been revoked")
                }
                IssueRefusal::OriginRevoked(id) => OAuthError::invalid_grant(format!(
                    "the delegation {id} that allowed this exchange has been revoked"
                )),
                IssueRefusal::SubjectLeft(who) => OAuthError::invalid_grant(format!(
                    "the subject {who} has left; their tokens cannot be exchanged"
                )),
                IssueRefusal::GrantRemoved(scope) => OAuthError::invalid_scope(format!(
                    "agent {agent_id} is no longer granted {scope}"
                )),
                IssueRefusal::NotSynced => OAuthError::not_synced(),
            })?;
        // Activity (registry/behaviour): built here, pushed (never waited for) once durable.
        let activity = self.behaviour().map(|b| {
            let e = crate::registry::behaviour::event(
                chrono::DateTime::from_timestamp(now, 0).unwrap_or_default(),
                &agent_id,
                true,
                None,
                Some(&record.subject),
                record.actors.len(),
                &record.scopes,
                &record.audience,
                record.client_auth.as_deref(),
            );
            (b.clone(), e, agent.facts.ancestors.first().cloned())
        });
        self.record(record).await?;
        if let Some((b, e, parent)) = activity {
            b.observe(e, parent);
        }
        Ok(TokenResponse {
            access_token: token,
            issued_token_type: issued_type.to_string(),
            token_type: "Bearer".into(),
            expires_in: (expires_at - now) as u64,
            scope: scope_text,
        })
    }

    /// Mints a person access token (at most one hour): the subject of a first exchange, for
    /// registries without an identity provider.
    pub async fn mint_person_token(
        &self,
        person: &Person,
        ttl_seconds: i64,
        may_act: Option<String>,
        scopes: Vec<String>,
        api_token: &MintingApiToken,
    ) -> Result<MintedAccessToken, OAuthError> {
        if !(60..=PERSON_TOKEN_MAX_SECONDS).contains(&ttl_seconds) {
            return Err(OAuthError::invalid_request(format!(
                "a person access token lives between 60 and {PERSON_TOKEN_MAX_SECONDS} seconds"
            )));
        }
        let now = self.clock().unix();
        // Never outlive the API token that minted it.
        let expires_at = (now + ttl_seconds).min(api_token.expires_at);
        if expires_at <= now {
            return Err(OAuthError::invalid_request("the API token has expired"));
        }
        let jti = new_jti();
        let key = self.signing_key();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": person.email,
            "aud": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": jti,
        });
        if let Some(agent) = &may_act {
            claims["may_act"] = json!({"sub": agent});
        }
        if !scopes.is_empty() {
            claims["scope"] = json!(scopes.join(" "));
        }
        let token = jwt::sign(&claims, &key.signing, &key.kid, "JWT");
        let record = TokenRecord {
            jti: jti.clone(),
            kind: TokenKind::Person,
            digest: token_digest(&token),
            kid: key.kid.clone(),
            subject: person.email.clone(),
            client_id: None,
            actors: Vec::new(),
            parent_jti: None,
            scopes,
            audience: vec![self.issuer.clone()],
            may_act,
            subject_source: "api".into(),
            client_auth: None,
            credential_id: None,
            issued_at: now,
            expires_at,
            api_token_id: Some(api_token.id.clone()),
            delegation_id: None,
        };
        self.live
            .issue(record.clone(), now)
            .map_err(|refusal| match refusal {
                IssueRefusal::OriginRevoked(_) => {
                    OAuthError::invalid_grant("the API token has been revoked")
                }
                IssueRefusal::SubjectLeft(who) => {
                    OAuthError::invalid_grant(format!("{who} has left"))
                }
                IssueRefusal::NotSynced => OAuthError::not_synced(),
                _ => OAuthError::server_error("the token could not be indexed"),
            })?;
        self.record(record).await?;
        Ok(MintedAccessToken {
            access_token: token,
            issued_token_type: TOKEN_TYPE_ACCESS.into(),
            token_type: "Bearer".into(),
            expires_in: (expires_at - now) as u64,
            jti,
            expires_at: chrono::DateTime::from_timestamp(expires_at, 0).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_nests_newest_outermost() {
        let act = act_claim(&["b".into(), "a".into()]).unwrap();
        assert_eq!(act, json!({"sub": "b", "act": {"sub": "a"}}));
        assert_eq!(act_claim(&[]), None);
    }

    #[test]
    fn scopes_are_checked_and_deduplicated() {
        assert_eq!(
            parse_scopes("a:read  a:read b:write").unwrap(),
            vec!["a:read", "b:write"]
        );
        assert_eq!(parse_scopes("").unwrap_err().error, "invalid_scope");
        assert_eq!(parse_scopes("bad\u{7}").unwrap_err().error, "invalid_scope");
    }
}
