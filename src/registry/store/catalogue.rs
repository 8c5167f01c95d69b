//! The resource catalogue's storage: resources, their audiences, owners and scopes.
//!
//! Concurrency contract: an import is one transaction (every resource of it, or none) with its
//! audit event; a reader sees the catalogue before or after an import, never half of one.
//! [`CatalogueStore::scope_catalogue`] answers from an in-memory copy that is replaced as a
//! whole right after each committed import (and loaded when the store opens), so the token
//! service can ask it on every exchange without touching the database; it may lag a commit by
//! the instant between commit and swap, never by more.

use crate::model::Actor;
use crate::model::catalogue::{ImportCatalogue, ImportOutcome, Resource, ScopeInfo};
use crate::registry::store::StoreResult;

pub trait CatalogueStore {
    /// Creates or updates the listed resources (by id) and their scopes; resources and scopes
    /// the import does not name are left as they are. Importing the same catalogue twice
    /// changes nothing the second time. Refuses the whole import (422) when an owner is not a
    /// known person or a scope already belongs to another resource.
    fn import_catalogue(&self, actor: &Actor, req: &ImportCatalogue) -> StoreResult<ImportOutcome>;
    /// Every resource with its scopes, by id.
    fn list_resources(&self) -> StoreResult<Vec<Resource>>;
    fn resource(&self, id: &str) -> StoreResult<Option<Resource>>;
    /// For each catalogued scope among `scopes`, in the order asked: its resource, audiences,
    /// tier, approval mode, resource owner and overrides. Scopes not in the catalogue are left
    /// out (callers compare lengths or names to find them).
    fn scope_catalogue(&self, scopes: &[String]) -> StoreResult<Vec<ScopeInfo>>;
}
