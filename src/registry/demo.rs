//! The demo enterprise: a deterministic synthetic organisation for `steward server --demo`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::registry::store::Store;

/// One persona's sign-in: written to the `--demo-credentials` file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PersonaCredential {
    pub email: String,
    pub token: String,
}

/// `admin`, `owner`, `responder`, `auditor` → credentials.
pub type Personas = BTreeMap<String, PersonaCredential>;

/// Seeds an empty store with the demo enterprise and returns the personas' credentials.
pub fn seed(_store: &dyn Store, _seed: u64, _agents: u32) -> anyhow::Result<Personas> {
    anyhow::bail!("the demo enterprise is not built yet")
}
