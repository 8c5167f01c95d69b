//! People and their API tokens: the records the registry authenticates callers by (SQLite
//! bodies in sqlite_people.rs).

use chrono::{DateTime, Utc};

use super::{NewApiToken, StoreResult, TokenOwner};
use crate::model::api::{CreatePerson, PeoplePage, PeopleQuery, UpdatePerson};
use crate::model::{Actor, Person};

/// People and the API tokens they hold.
///
/// Concurrency contract:
/// - `create_person`, `update_person`, `issue_api_token` and `revoke_api_token` are each one
///   write transaction with their audit event; a person's change takes the next change-feed
///   position in the same transaction (see [`super::AuditStore::changes`]).
/// - `update_person` that marks a leave runs the owner succession of the leaver's agents in
///   the same transaction: the leave, every changed owner, their audit events and handovers
///   commit together or not at all.
/// - Refusing to deactivate or demote the last active admin is decided inside the writing
///   transaction (a read of the admins, then the write). Two such changes racing for the last
///   two admins are safe only because SQLite has one writer: the second reads the first's
///   result. **Depends on SQLite's single writer** (a second backend needs a lock on the admin
///   set, e.g. `SELECT … FOR UPDATE` over the admins, or SERIALIZABLE).
/// - `revoke_api_token` marks the token and its descendants dead in the live-token index
///   before its transaction commits (fail closed: a failed commit leaves them refused, never
///   accepted).
/// - Reads (`token_owner`, `person`, `list_people`) see one committed snapshot; `person` may
///   answer from the in-memory facts copy, which every write invalidates before the writer is
///   released.
pub trait PeopleStore {
    fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>>;
    fn create_person(&self, actor: &Actor, req: &CreatePerson) -> StoreResult<Person>;
    fn update_person(&self, actor: &Actor, email: &str, req: &UpdatePerson) -> StoreResult<Person>;
    fn person(&self, email: &str) -> StoreResult<Option<Person>>;
    fn list_people(&self, query: &PeopleQuery) -> StoreResult<PeoplePage>;
    /// Stores a new API token (or invitation); returns its expiry (capped at its parent's).
    fn issue_api_token(
        &self,
        actor: &Actor,
        email: &str,
        token: &NewApiToken,
    ) -> StoreResult<DateTime<Utc>>;
    /// Revokes one of `email`'s API tokens, the tokens it minted (transitively) and every
    /// live token that came from them; returns how many live tokens died.
    fn revoke_api_token(&self, actor: &Actor, email: &str, token_id: &str) -> StoreResult<u64>;
}
