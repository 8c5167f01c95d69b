//! The SQLite bodies of [`ResourceCredentialStore`]. A child module of `sqlite`, sharing its
//! transaction and audit helpers.

use crate::registry::store::sql::{self, OptionalExtension, Tx};
use rusqlite::params;

use super::{
    MAX_ENABLED_CREDENTIALS, SqliteStore, append_audit, bad_value, parse_opt_ts, parse_ts, ts,
};
use crate::model::{Actor, Credential, CredentialKind};
use crate::registry::store::resource_credentials::{ResourceAuthFacts, ResourceCredentialStore};
use crate::registry::store::{CredentialMaterial, NewCredential, StoreError, StoreResult};

fn resource_audiences(tx: &Tx<'_>, resource_id: &str) -> StoreResult<Option<Vec<String>>> {
    let audiences: Option<String> = tx
        .query_row(
            "SELECT audiences FROM resources WHERE id = ?1",
            [resource_id],
            |r| r.get(0),
        )
        .optional()?;
    match audiences {
        None => Ok(None),
        Some(text) => Ok(Some(super::parse_json_list(&text)?)),
    }
}

fn require_resource(tx: &Tx<'_>, resource_id: &str) -> StoreResult<()> {
    match resource_audiences(tx, resource_id)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!(
            "no resource with id {resource_id}"
        ))),
    }
}

fn credential(tx: &Tx<'_>, resource_id: &str, id: &str) -> StoreResult<Credential> {
    tx.query_row(
        "SELECT id, kind, label, fingerprint, created_at, disabled_at
         FROM resource_credentials WHERE resource_id = ?1 AND id = ?2",
        params![resource_id, id],
        |r| {
            let kind: String = r.get(1)?;
            Ok(Credential {
                id: r.get(0)?,
                kind: CredentialKind::parse(&kind)
                    .ok_or_else(|| bad_value("credential kind", &kind))?,
                label: r.get(2)?,
                fingerprint: r.get(3)?,
                created_at: parse_ts(&r.get::<_, String>(4)?)?,
                disabled_at: parse_opt_ts(r.get(5)?)?,
                last_used_at: None,
            })
        },
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("resource {resource_id} has no credential {id}")))
}

impl ResourceCredentialStore for SqliteStore {
    fn add_resource_credential(
        &self,
        actor: &Actor,
        resource_id: &str,
        new: &NewCredential,
    ) -> StoreResult<Credential> {
        self.write(|tx| {
            require_resource(tx, resource_id)?;
            // Credential ids derive from the key: a key registered anywhere before (on a
            // resource or an agent) is refused by name; one key never names two parties.
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM resource_credentials WHERE id = ?1)
                     OR EXISTS (SELECT 1 FROM credentials WHERE id = ?1)",
                params![new.id],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "this key is already registered (credential {}); generate a new key pair \
                     for each resource and each rotation",
                    new.id
                )));
            }
            // Bounded work: an assertion without a kid is tried against every enabled key.
            let enabled: i64 = tx.query_row(
                "SELECT COUNT(*) FROM resource_credentials
                 WHERE resource_id = ?1 AND disabled_at IS NULL",
                params![resource_id],
                |r| r.get(0),
            )?;
            if enabled >= MAX_ENABLED_CREDENTIALS {
                return Err(StoreError::Conflict(format!(
                    "resource {resource_id} already has {enabled} enabled credentials, the most \
                     allowed ({MAX_ENABLED_CREDENTIALS}); disable one first"
                )));
            }
            tx.execute(
                "INSERT INTO resource_credentials
                    (id, resource_id, kind, label, fingerprint, material, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    new.id,
                    resource_id,
                    new.kind.as_str(),
                    new.label,
                    new.fingerprint,
                    new.material,
                    ts(self.clock.now())
                ],
            )?;
            append_audit(
                tx,
                actor,
                "resource.credential.add",
                Some(resource_id),
                "success",
                None,
                &serde_json::json!({
                    "credential_id": new.id,
                    "kind": new.kind.as_str(),
                    "label": new.label,
                    "fingerprint": new.fingerprint,
                }),
            )?;
            credential(tx, resource_id, &new.id)
        })
    }

    fn disable_resource_credential(
        &self,
        actor: &Actor,
        resource_id: &str,
        credential_id: &str,
    ) -> StoreResult<Credential> {
        self.write(|tx| {
            require_resource(tx, resource_id)?;
            let changed = tx.execute(
                "UPDATE resource_credentials SET disabled_at = ?1
                 WHERE id = ?2 AND resource_id = ?3 AND disabled_at IS NULL",
                params![ts(self.clock.now()), credential_id, resource_id],
            )?;
            // Existence is checked first: a second disable is a no-op, not an event.
            let found = credential(tx, resource_id, credential_id)?;
            if changed > 0 {
                append_audit(
                    tx,
                    actor,
                    "resource.credential.disable",
                    Some(resource_id),
                    "success",
                    None,
                    &serde_json::json!({"credential_id": credential_id}),
                )?;
            }
            Ok(found)
        })
    }

    fn resource_auth_facts(&self, resource_id: &str) -> StoreResult<Option<ResourceAuthFacts>> {
        self.read(|tx| {
            let Some(audiences) = resource_audiences(tx, resource_id)? else {
                return Ok(None);
            };
            let mut stmt = tx.prepare_cached(
                "SELECT id, kind, fingerprint, material, disabled_at IS NOT NULL
                 FROM resource_credentials WHERE resource_id = ?1 ORDER BY created_at, id",
            )?;
            let credentials = stmt
                .query_map([resource_id], |r| {
                    let kind: String = r.get(1)?;
                    Ok(CredentialMaterial {
                        id: r.get(0)?,
                        kind: CredentialKind::parse(&kind)
                            .ok_or_else(|| bad_value("credential kind", &kind))?,
                        fingerprint: r.get(2)?,
                        material: r.get(3)?,
                        disabled: r.get(4)?,
                    })
                })?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(Some(ResourceAuthFacts {
                id: resource_id.to_string(),
                audiences,
                credentials,
            }))
        })
    }
}
