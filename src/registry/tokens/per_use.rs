//! Per-use approval on the exchange side (a human in the loop for the most dangerous scopes).
//!
//! An exchange whose scopes include one catalogued `approval = "per-use"` is refused with
//! `approval_required`, an `approval_id` and `expires_in`; the approval waits in the queue of
//! the subject and of the resource owner (never the agent's owner; see
//! `registry::service::approvals`). The agent repeats the same exchange with the form field
//! `approval_id`: `authorization_pending` while it waits, `access_denied` when denied,
//! `invalid_grant` when it expired, was used, or is bound to another agent, subject, scope set
//! or audience; once approved, the exchange succeeds and spends it. The check runs on every
//! exchange, so a sub-agent hop carrying a per-use scope needs an approval of its own.

use super::{OAuthError, TokenService};
use crate::model::catalogue::ApprovalMode;
use crate::registry::store::StoreError;
use crate::registry::store::approvals::{UseBinding, UseRedemption};

/// The exchange a per-use check is about.
pub struct PerUseExchange<'a> {
    pub agent_id: &'a str,
    pub subject: &'a str,
    /// The new token's actors, newest first (this agent first).
    pub chain: &'a [String],
    pub scopes: &'a [String],
    pub audience: &'a [String],
    /// The form field `approval_id`, when the agent repeats an exchange.
    pub approval_id: Option<&'a str>,
}

fn store_refusal(e: StoreError) -> OAuthError {
    match e {
        StoreError::Refused {
            status: 429,
            code,
            message,
        } => OAuthError::new(429, code, message),
        other => OAuthError::from(other),
    }
}

impl TokenService {
    /// Passes exchanges without per-use scopes at once (an in-memory catalogue lookup); for the
    /// others, files or redeems the approval they need.
    pub(super) async fn check_per_use(&self, x: PerUseExchange<'_>) -> Result<(), OAuthError> {
        let per_use: Vec<String> = self
            .store
            .scope_catalogue(x.scopes)?
            .into_iter()
            .filter(|i| i.approval == ApprovalMode::PerUse)
            .map(|i| i.scope)
            .collect();
        if per_use.is_empty() {
            return Ok(());
        }
        let mut scopes = x.scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let mut audience = x.audience.to_vec();
        audience.sort();
        audience.dedup();
        let binding = UseBinding {
            agent_id: x.agent_id.to_string(),
            subject: x.subject.to_string(),
            scopes,
            audience,
            chain: x.chain.to_vec(),
        };
        let store = self.store.clone();
        let approval_id = x.approval_id.map(str::to_string);
        let now = self.clock().now();
        match approval_id {
            None => {
                let asked =
                    tokio::task::spawn_blocking(move || store.request_use_approval(&binding, now))
                        .await
                        .map_err(|e| OAuthError::server_error(format!("worker failed: {e}")))?
                        .map_err(store_refusal)?;
                let r = asked.request;
                let mut refusal = OAuthError::new(
                    400,
                    "approval_required",
                    format!(
                        "{} needs a person's approval for each use: approval {} waits for {}; \
                         repeat this exchange with approval_id once it is approved",
                        per_use.join(" "),
                        r.id,
                        match &r.subject {
                            Some(s) => format!("{s} or the resource owner"),
                            None => "the resource owner".into(),
                        }
                    ),
                );
                refusal.approval = Some((r.id, (r.expires_at - now).num_seconds().max(0) as u64));
                Err(refusal)
            }
            Some(id) => {
                let verdict = tokio::task::spawn_blocking(move || {
                    store.redeem_use_approval(&id, &binding, now)
                })
                .await
                .map_err(|e| OAuthError::server_error(format!("worker failed: {e}")))?
                .map_err(store_refusal)?;
                match verdict {
                    UseRedemption::Spent => Ok(()),
                    UseRedemption::Pending => Err(OAuthError::new(
                        400,
                        "authorization_pending",
                        "the approval has not been decided yet; repeat the exchange later",
                    )),
                    UseRedemption::Denied => Err(OAuthError::new(
                        400,
                        "access_denied",
                        "the approval was denied",
                    )),
                    UseRedemption::Invalid(m) => Err(OAuthError::invalid_grant(m)),
                }
            }
        }
    }
}
