//! API-token lineage: listing a person's tokens, revoking them all, redeeming invitations,
//! noting use, and revoking a token by its secret (RFC 7009). Bodies in sqlite_api_tokens.rs.

use chrono::{DateTime, Utc};

use super::{NewApiToken, StoreResult};
use crate::model::Actor;
use crate::model::delegation::{ApiTokenInfo, RevokedApiTokens};

/// People's API tokens beyond issuing one.
///
/// Concurrency contract: every revoking call runs in one write transaction with its audit
/// event, revokes the token's descendants (tokens it minted, transitively) in the same
/// transaction, and marks them dead in the live-token index before committing, so a person
/// token being minted from one of them at that moment is refused when it enters the index.
/// `redeem_invitation` spends the invitation and stores the new token in one transaction:
/// of two concurrent redemptions exactly one succeeds.
pub trait ApiTokenStore {
    /// The person's API tokens and invitations, newest first.
    fn api_tokens_of(&self, email: &str) -> StoreResult<Vec<ApiTokenInfo>>;
    /// Revokes every unrevoked API token of the person and everything that came from them.
    fn revoke_all_api_tokens(&self, actor: &Actor, email: &str) -> StoreResult<RevokedApiTokens>;
    /// Spends an invitation and stores the person's new API token; returns its expiry.
    /// 401-worthy refusals (spent, expired, revoked) are `Forbidden`.
    fn redeem_invitation(
        &self,
        actor: &Actor,
        email: &str,
        invitation_id: &str,
        token: &NewApiToken,
    ) -> StoreResult<DateTime<Utc>>;
    /// Notes that a token was used (callers do so at most about once a minute per token).
    fn touch_api_token(&self, token_id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Revokes the API token whose hash this is, as RFC 7009 revocation does for whoever
    /// presents it; returns None when no unrevoked token has that hash, else the live tokens
    /// killed.
    fn revoke_presented_api_token(&self, actor: &Actor, hash: &str) -> StoreResult<Option<u64>>;
}
