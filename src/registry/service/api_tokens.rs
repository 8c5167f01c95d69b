//! Issuing API tokens and invitations: how long they live, how they relate to the token that
//! minted them, and that only their hash is stored. Called by the routes (`POST /v1/me/tokens`,
//! `POST /v1/people/{email}/tokens`), `steward server create-admin` and the demo; who may ask is
//! the route's check (an admin for invitations to others, the person for their own).

use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::model::Actor;
use crate::model::api::{IssueToken, IssuedToken};
use crate::registry::store::{NewApiToken, Store, StoreResult};

/// API tokens are stored only as this hash.
pub fn hash_api_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random API token: `stw_` and 64 hex digits (256 bits).
pub fn new_api_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("stw_{}", hex::encode(bytes))
}

/// How a new API token relates to others.
#[derive(Debug, Clone, Default)]
pub struct TokenPlan {
    /// An invitation (single use, 24 hours, only to redeem) instead of a working token.
    pub invitation: bool,
    /// The API token minting this one (the child never outlives it and dies with it).
    pub parent_id: Option<String>,
    /// An invitation being redeemed by this issue (spent in the same transaction).
    pub redeeming: Option<String>,
    /// The longest the token may live, in days.
    pub max_days: u32,
}

/// How long an invitation is good for.
pub const INVITATION_HOURS: i64 = 24;

/// Issues a working API token directly (no parent, no invitation); used by `steward server
/// create-admin`, the demo and tests. Stores only its hash.
pub fn issue_token_for(
    store: &dyn Store,
    actor: &Actor,
    email: &str,
    req: &IssueToken,
) -> StoreResult<IssuedToken> {
    issue_token_with(
        store,
        actor,
        email,
        req,
        &TokenPlan {
            max_days: 365,
            ..TokenPlan::default()
        },
    )
}

/// Issues an API token or invitation as `plan` says; stores only its hash.
pub fn issue_token_with(
    store: &dyn Store,
    actor: &Actor,
    email: &str,
    req: &IssueToken,
    plan: &TokenPlan,
) -> StoreResult<IssuedToken> {
    let token = new_api_token();
    let expires_at = if plan.invitation {
        store.clock().now() + Duration::hours(INVITATION_HOURS)
    } else {
        let ttl_days = req.ttl_days.unwrap_or(90).clamp(1, plan.max_days.max(1));
        store.clock().now() + Duration::days(ttl_days as i64)
    };
    let id = format!("tok_{}", &hash_api_token(&token)[..16]);
    let default_name = if plan.invitation { "invitation" } else { "api" };
    let new = NewApiToken {
        id: id.clone(),
        hash: hash_api_token(&token),
        name: req.name.clone().unwrap_or_else(|| default_name.into()),
        expires_at,
        invitation: plan.invitation,
        parent_id: plan.parent_id.clone(),
    };
    let expires_at = match &plan.redeeming {
        Some(invitation) => store.redeem_invitation(actor, email, invitation, &new)?,
        None => store.issue_api_token(actor, email, &new)?,
    };
    Ok(IssuedToken {
        id,
        person: email.to_string(),
        token,
        expires_at,
        kind: default_name.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use crate::model::api::CreatePerson;
    use crate::registry::store::sqlite::OpenMode;
    use crate::registry::store::{PeopleStore, SqliteStore};

    fn store_with_alice(dir: &std::path::Path) -> SqliteStore {
        let store = SqliteStore::open(&dir.join("s.db"), OpenMode::CreateIfMissing).unwrap();
        store
            .create_person(
                &Actor::system("test"),
                &CreatePerson {
                    email: "alice@example.com".into(),
                    display_name: "Alice".into(),
                    roles: vec![Role::Admin],
                    manager: None,
                    team: None,
                },
            )
            .unwrap();
        store
    }

    #[test]
    fn a_token_is_stored_as_its_hash_and_lives_no_longer_than_the_plan_allows() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_alice(dir.path());
        let actor = Actor::system("test");
        let ask = IssueToken {
            name: None,
            ttl_days: Some(400),
        };
        let plan = TokenPlan {
            max_days: 30,
            ..TokenPlan::default()
        };
        let issued = issue_token_with(&store, &actor, "alice@example.com", &ask, &plan).unwrap();
        assert!(issued.token.starts_with("stw_"));
        assert!(issued.expires_at <= chrono::Utc::now() + Duration::days(30));
        // The token works by its hash; the token itself is not what the store keys on.
        let owner = store.token_owner(&hash_api_token(&issued.token)).unwrap();
        let owner = owner.expect("the token resolves by its hash");
        assert_eq!(owner.person.email, "alice@example.com");
        assert!(!owner.invitation);
        assert!(store.token_owner(&issued.token).unwrap().is_none());

        // An invitation lasts a day whatever is asked, and is marked as one.
        let plan = TokenPlan {
            invitation: true,
            max_days: 1,
            ..TokenPlan::default()
        };
        let ask = IssueToken {
            name: None,
            ttl_days: None,
        };
        let inv = issue_token_with(&store, &actor, "alice@example.com", &ask, &plan).unwrap();
        assert_eq!(inv.kind, "invitation");
        assert!(inv.expires_at <= chrono::Utc::now() + Duration::hours(INVITATION_HOURS));
        let owner = store
            .token_owner(&hash_api_token(&inv.token))
            .unwrap()
            .unwrap();
        assert!(owner.invitation);

        // Nobody gets a token for a person the registry does not know.
        let plan = TokenPlan {
            max_days: 30,
            ..TokenPlan::default()
        };
        assert!(issue_token_with(&store, &actor, "ghost@example.com", &ask, &plan).is_err());
    }
}
