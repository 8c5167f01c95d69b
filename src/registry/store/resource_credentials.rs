//! Credentials of catalogued resources: the public keys and static secrets with which a
//! resource's servers authenticate to the registry (to introspect tokens addressed to it).
//!
//! Concurrency contract: adding or disabling a credential is one transaction with its audit
//! event. [`ResourceCredentialStore::resource_auth_facts`] reads the resource's audiences and
//! credentials in one snapshot, so a credential disabled by a committed write is refused by
//! every authentication that starts after the commit.

use crate::model::{Actor, Credential};
use crate::registry::store::{CredentialMaterial, NewCredential, StoreResult};

/// What authenticating as a resource needs, read in one snapshot.
#[derive(Debug, Clone)]
pub struct ResourceAuthFacts {
    pub id: String,
    /// The `aud` values tokens for this resource carry.
    pub audiences: Vec<String>,
    /// Oldest first, disabled ones included (so that a disabled key is named as such).
    pub credentials: Vec<CredentialMaterial>,
}

pub trait ResourceCredentialStore {
    /// Adds a credential to a catalogued resource (404 for an unknown resource, 409 for a key
    /// already registered here or on an agent, or too many enabled credentials).
    fn add_resource_credential(
        &self,
        actor: &Actor,
        resource_id: &str,
        credential: &NewCredential,
    ) -> StoreResult<Credential>;
    /// Disables one credential of a resource; disabling a disabled one changes nothing.
    fn disable_resource_credential(
        &self,
        actor: &Actor,
        resource_id: &str,
        credential_id: &str,
    ) -> StoreResult<Credential>;
    /// The resource's audiences and credentials; `None` when no such resource exists.
    fn resource_auth_facts(&self, resource_id: &str) -> StoreResult<Option<ResourceAuthFacts>>;
}
