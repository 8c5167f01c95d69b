//! Delegation consent: whether an agent may use a person's token at all, and within which
//! scopes.
//!
//! At the first hop (a person token or an identity provider's token) an agent may act for the
//! person only when
//! 1. the person owns the agent, or
//! 2. the token names the agent in `may_act` (a token naming another agent is refused), or
//! 3. the person holds an active delegation to the agent (`POST /v1/me/delegations`).
//!
//! A sub-agent hop (a token the registry issued by an earlier exchange) carries the consent of
//! its first hop: only the current actor or one of its sub-agents may act next, and it can only
//! narrow. The exchanged scope is what was requested, each scope within the agent's grants, the
//! subject token's scopes (its `scope` claim, or an earlier exchange's scopes) and the
//! delegation's scopes when the delegation is what allowed the exchange; a requested scope
//! outside any of these refuses the request (`invalid_scope`).

use super::auth::AuthenticatedAgent;
use super::exchange::Subject;
use super::{OAuthError, TokenService};
use crate::model::delegation::Delegation;

/// Why the agent may use the subject token.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentRule {
    /// The subject owns the agent.
    Owner,
    /// The subject token names the agent in `may_act`.
    MayAct,
    /// The subject delegated to the agent.
    Delegation(Delegation),
    /// A sub-agent hop on a token whose first hop was consented.
    Hop,
}

/// The consent an exchange rests on.
#[derive(Debug, Clone)]
pub struct Consent {
    pub rule: ConsentRule,
}

impl Consent {
    fn delegation(&self) -> Option<&Delegation> {
        match &self.rule {
            ConsentRule::Delegation(d) => Some(d),
            _ => None,
        }
    }

    /// The delegation that allowed the exchange, if that is what did.
    pub fn delegation_id(&self) -> Option<String> {
        self.delegation().map(|d| d.id.clone())
    }

    /// When the consent ends (Unix seconds), if it ends before the tokens involved.
    pub fn expires_at(&self) -> Option<i64> {
        self.delegation().map(|d| d.expires_at.timestamp())
    }

    /// Each requested scope must lie within the agent's grants, the subject token's scopes
    /// and the delegation's scopes.
    pub(super) fn check_scopes(
        &self,
        agent: &AuthenticatedAgent,
        subject: &Subject,
        scopes: &[String],
    ) -> Result<(), OAuthError> {
        let agent_id = &agent.facts.id;
        for scope in scopes {
            if !agent.facts.scopes.iter().any(|g| g == scope) {
                return Err(OAuthError::invalid_scope(format!(
                    "agent {agent_id} is not granted {scope}"
                )));
            }
            if let Some(held) = &subject.scopes
                && !held.iter().any(|h| h == scope)
            {
                return Err(OAuthError::invalid_scope(format!(
                    "{scope} is not in the subject token's scopes; an exchange cannot widen them"
                )));
            }
            if let Some(d) = self.delegation()
                && !d.scopes.iter().any(|s| s == scope)
            {
                return Err(OAuthError::invalid_scope(format!(
                    "{scope} is not in {}'s delegation {} to agent {agent_id}",
                    d.person, d.id
                )));
            }
        }
        Ok(())
    }
}

impl TokenService {
    /// Decides whether `agent` may use `subject`'s token (see the module's rules).
    pub(super) async fn consent(
        &self,
        agent: &AuthenticatedAgent,
        subject: &Subject,
    ) -> Result<Consent, OAuthError> {
        let agent_id = &agent.facts.id;
        if let Some(allowed) = &subject.may_act
            && allowed != agent_id
        {
            return Err(OAuthError::invalid_grant(format!(
                "the subject token's may_act names {allowed}, not agent {agent_id}"
            )));
        }
        // A hop: consent was checked at the first hop; only the current actor itself or one
        // of its sub-agents may act next.
        if let Some(current) = subject.actors.first() {
            if current != agent_id && !agent.facts.ancestors.iter().any(|a| a == current) {
                return Err(OAuthError::invalid_grant(format!(
                    "agent {agent_id} may not act on a token held by {current}: only {current} \
                     itself or its sub-agents may"
                )));
            }
            return Ok(Consent {
                rule: ConsentRule::Hop,
            });
        }
        if subject.may_act.is_some() {
            return Ok(Consent {
                rule: ConsentRule::MayAct,
            });
        }
        if agent
            .facts
            .owner_email
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(&subject.person))
        {
            return Ok(Consent {
                rule: ConsentRule::Owner,
            });
        }
        let person = subject.person.clone();
        let id = agent_id.clone();
        let delegation = self
            .read(move |s| s.active_delegation(&person, &id, s.clock().now()))
            .await?;
        match delegation {
            Some(d) => Ok(Consent {
                rule: ConsentRule::Delegation(d),
            }),
            None => Err(OAuthError::invalid_grant(format!(
                "agent {agent_id} may not act for {}: an agent may use a person's token only \
                 when the person owns the agent, the token names the agent in may_act, or the \
                 person has delegated to the agent (POST /v1/me/delegations)",
                subject.person
            ))),
        }
    }
}
