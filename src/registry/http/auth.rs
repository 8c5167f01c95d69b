//! Bearer API tokens: how a person is recognised on every call.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};

use super::AppState;
use super::error::ApiError;
use crate::model::{Actor, Person};

/// The authenticated person behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub person: Person,
    pub token_id: String,
    pub token_expires_at: DateTime<Utc>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::human(&self.person.email)
    }
}

pub use crate::registry::service::api_tokens::{hash_api_token, new_api_token};

/// A caller of `POST /v1/me/tokens`, the one route an invitation is good for.
#[derive(Debug, Clone)]
pub struct Redeemer {
    pub caller: Caller,
    /// The presented token is an invitation (to be spent by this call).
    pub invitation: bool,
}

/// How often a token's `last_used_at` is written (a write per call would cost every call).
const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

async fn authenticate(
    parts: &Parts,
    state: &AppState,
    allow_invitation: bool,
) -> Result<Redeemer, ApiError> {
    let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated(
            "unauthenticated",
            "this call needs an API token: send Authorization: Bearer <token>",
        )
    })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthenticated(
                "unauthenticated",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    let peer = crate::registry::perimeter::peer_of(&parts.extensions).map(|a| a.ip());
    let hash = hash_api_token(token);
    let store = state.store.clone();
    let lookup = hash.clone();
    let owner = tokio::task::spawn_blocking(move || store.token_owner(&lookup))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let refusal = match &owner {
        None => Some(ApiError::unauthenticated(
            "invalid_token",
            "the API token is not known",
        )),
        // Checked first: a person who has left is told so, whatever state their token is in.
        Some(o) if !o.person.active => Some(ApiError::unauthenticated(
            "person_inactive",
            format!("{} has left; their tokens no longer work", o.person.email),
        )),
        Some(o) if o.invitation && o.redeemed => Some(ApiError::unauthenticated(
            "invitation_redeemed",
            "this invitation was already redeemed; it is single use",
        )),
        Some(o) if o.revoked => Some(ApiError::unauthenticated(
            "token_revoked",
            "the API token has been revoked",
        )),
        Some(o) if o.expires_at <= state.store.clock().now() => Some(ApiError::unauthenticated(
            "token_expired",
            format!("the API token expired at {}", o.expires_at.to_rfc3339()),
        )),
        Some(o) if o.invitation && !allow_invitation => Some(ApiError::unauthenticated(
            "invitation_only",
            "this token is an invitation: it is good only for redeeming, once, with \
             POST /v1/me/tokens (`steward login --invite`), which gives you your own API token",
        )),
        Some(_) => None,
    };
    if let Some(refusal) = refusal {
        // Counted per source and per presented token (by a digest prefix, never the token).
        let credential = format!("api_token:{}", &hash[..16]);
        if let Some(limited) =
            super::guards::note_failure(state, peer, Some(&credential), "api_token")
        {
            return Err(ApiError::too_many_failures(limited));
        }
        return Err(refusal);
    }
    let owner = owner.expect("a refusal was returned above");
    let now = state.store.clock().now();
    if !owner.invitation
        && owner
            .last_used_at
            .is_none_or(|t| now - t >= LAST_USED_EVERY)
    {
        // Best effort: a busy database must not refuse the call over a usage note.
        let store = state.store.clone();
        let id = owner.token_id.clone();
        let _ = tokio::task::spawn_blocking(move || store.touch_api_token(&id, now)).await;
    }
    Ok(Redeemer {
        invitation: owner.invitation,
        caller: Caller {
            person: owner.person,
            token_id: owner.token_id,
            token_expires_at: owner.expires_at,
        },
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(authenticate(parts, state, false).await?.caller)
    }
}

impl FromRequestParts<AppState> for Redeemer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, true).await
    }
}
