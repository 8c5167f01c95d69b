//! The SQLite bodies of [`CatalogueStore`]: resources and their scopes. A child module of
//! `sqlite`, sharing its transaction and audit helpers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use rusqlite::params;

use super::{SqliteStore, append_audit, bad_value, invalid, person_by_email, ts};
use crate::model::Actor;
use crate::model::catalogue::{
    ApprovalMode, CatalogueScope, ImportCatalogue, ImportOutcome, Resource, ScopeInfo, Tier,
    parse_duration,
};
use crate::registry::store::{CatalogueStore, StoreError, StoreResult};

/// Scope name → what the registry knows about it.
pub type ScopeIndex = HashMap<String, ScopeInfo>;

const SCOPE_INFO_SQL: &str = "SELECT s.name, s.resource_id, r.audiences, s.tier, s.approval,
        o.email, r.approvers, r.max_duration
    FROM resource_scopes s JOIN resources r ON r.id = s.resource_id
    LEFT JOIN people o ON o.id = r.owner_id";

fn scope_info_from_row(r: &Row<'_>) -> sql::Result<ScopeInfo> {
    let audiences: String = r.get(2)?;
    let tier: String = r.get(3)?;
    let approval: String = r.get(4)?;
    let max_duration: Option<String> = r.get(7)?;
    Ok(ScopeInfo {
        scope: r.get(0)?,
        resource_id: r.get(1)?,
        audiences: super::parse_json_list(&audiences)?,
        tier: Tier::parse(&tier).ok_or_else(|| bad_value("tier", &tier))?,
        approval: ApprovalMode::parse(&approval).ok_or_else(|| bad_value("approval", &approval))?,
        resource_owner: r.get(5)?,
        approvers: r.get(6)?,
        max_duration_secs: max_duration.as_deref().and_then(|d| parse_duration(d).ok()),
    })
}

/// Reads every catalogued scope (the catalogue is small: hundreds of scopes, not millions).
pub(super) fn load_scope_index(conn: &Tx<'_>) -> sql::Result<ScopeIndex> {
    let mut stmt = conn.prepare(SCOPE_INFO_SQL)?;
    let rows = stmt.query_map([], scope_info_from_row)?;
    let mut index = ScopeIndex::new();
    for info in rows {
        let info = info?;
        index.insert(info.scope.clone(), info);
    }
    Ok(index)
}

/// One scope's facts read inside a transaction (for decisions that must see the same state
/// they change).
pub(super) fn scope_info_in(tx: &Tx<'_>, scope: &str) -> StoreResult<Option<ScopeInfo>> {
    Ok(tx
        .prepare_cached(&format!("{SCOPE_INFO_SQL} WHERE s.name = ?1"))?
        .query_row([scope], scope_info_from_row)
        .optional()?)
}

/// The 422 for a scope that is not in the catalogue.
pub(super) fn unknown_scope(scope: &str) -> StoreError {
    invalid(
        "unknown_scope",
        format!(
            "{scope} is not in the resource catalogue; only catalogued scopes can be granted \
             (see GET /v1/resources)"
        ),
    )
}

fn load_resources(tx: &Tx<'_>, id: Option<&str>) -> StoreResult<Vec<Resource>> {
    let mut stmt = tx.prepare_cached(
        "SELECT r.id, r.name, r.description, o.email, r.audiences, r.approvers, r.max_duration
         FROM resources r LEFT JOIN people o ON o.id = r.owner_id
         WHERE ?1 IS NULL OR r.id = ?1 ORDER BY r.id",
    )?;
    let mut resources = stmt
        .query_map([id], |r| {
            let audiences: String = r.get(4)?;
            Ok(Resource {
                id: r.get(0)?,
                name: r.get(1)?,
                description: r.get(2)?,
                owner: r.get(3)?,
                audiences: super::parse_json_list(&audiences)?,
                approvers: r.get(5)?,
                max_duration: r.get(6)?,
                scopes: Vec::new(),
            })
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    let mut scopes = tx.prepare_cached(
        "SELECT name, tier, approval, description FROM resource_scopes
         WHERE resource_id = ?1 ORDER BY name",
    )?;
    for resource in &mut resources {
        resource.scopes = scopes
            .query_map([&resource.id], |r| {
                let tier: String = r.get(1)?;
                let approval: String = r.get(2)?;
                Ok(CatalogueScope {
                    name: r.get(0)?,
                    tier: Tier::parse(&tier).ok_or_else(|| bad_value("tier", &tier))?,
                    approval: ApprovalMode::parse(&approval)
                        .ok_or_else(|| bad_value("approval", &approval))?,
                    description: r.get(3)?,
                })
            })?
            .collect::<sql::Result<Vec<_>>>()?;
    }
    Ok(resources)
}

/// Checks what a body cannot say by its shape alone; the whole import is refused on the first
/// problem, named by resource and field.
pub fn check_import(req: &ImportCatalogue) -> StoreResult<()> {
    use crate::model::catalogue::check_resource_id;
    use crate::model::text::{check_email, check_free_text, check_line, check_scope};
    let field = |r: &Resource, f: &str, e: String| {
        invalid(
            "invalid_catalogue",
            format!("resource {:?}, {f}: {e}", r.id),
        )
    };
    if req.resources.len() > 1000 {
        return Err(invalid(
            "invalid_catalogue",
            "a catalogue import holds at most 1000 resources",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    let mut names = HashMap::new();
    for r in &req.resources {
        check_resource_id(&r.id).map_err(|e| field(r, "id", e))?;
        if !ids.insert(r.id.as_str()) {
            return Err(field(r, "id", "listed twice".into()));
        }
        check_line("name", &r.name, 128).map_err(|e| field(r, "name", e.0))?;
        check_free_text("description", &r.description, 2000)
            .map_err(|e| field(r, "description", e.0))?;
        if let Some(owner) = &r.owner {
            check_email(owner).map_err(|e| field(r, "owner", e.0))?;
        }
        if r.audiences.len() > 20 {
            return Err(field(r, "audiences", "at most 20".into()));
        }
        for a in &r.audiences {
            check_line("audience", a, 256).map_err(|e| field(r, "audiences", e.0))?;
        }
        if let Some(n) = r.approvers
            && !(1..=3).contains(&n)
        {
            return Err(field(r, "approvers", format!("{n} is not between 1 and 3")));
        }
        if let Some(d) = &r.max_duration {
            parse_duration(d).map_err(|e| field(r, "max_duration", e))?;
        }
        if r.scopes.len() > 500 {
            return Err(field(r, "scope", "at most 500 scopes per resource".into()));
        }
        for s in &r.scopes {
            check_scope(&s.name).map_err(|e| field(r, "scope.name", e.0))?;
            check_free_text("description", &s.description, 1000)
                .map_err(|e| field(r, "scope.description", e.0))?;
            if let Some(other) = names.insert(s.name.as_str(), r.id.as_str()) {
                return Err(field(
                    r,
                    "scope.name",
                    format!("{} is also listed under resource {other:?}", s.name),
                ));
            }
        }
    }
    Ok(())
}

impl SqliteStore {
    fn refresh_catalogue(&self) -> StoreResult<()> {
        let index = self.read(|tx| {
            let mut stmt = tx.prepare(SCOPE_INFO_SQL)?;
            let rows = stmt.query_map([], scope_info_from_row)?;
            let mut index = ScopeIndex::new();
            for info in rows {
                let info = info?;
                index.insert(info.scope.clone(), info);
            }
            Ok(index)
        })?;
        *self.catalogue.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
        Ok(())
    }
}

impl CatalogueStore for SqliteStore {
    fn import_catalogue(&self, actor: &Actor, req: &ImportCatalogue) -> StoreResult<ImportOutcome> {
        check_import(req)?;
        let outcome = self.write(|tx| {
            let mut outcome = ImportOutcome::default();
            let now = ts(self.clock.now());
            for r in &req.resources {
                let owner = match &r.owner {
                    Some(email) => Some(person_by_email(tx, email)?.ok_or_else(|| {
                        invalid(
                            "unknown_owner",
                            format!("resource {:?}, owner: no person with email {email}", r.id),
                        )
                    })?),
                    None => None,
                };
                for s in &r.scopes {
                    let holder: Option<String> = tx
                        .query_row(
                            "SELECT resource_id FROM resource_scopes WHERE name = ?1",
                            [&s.name],
                            |row| row.get(0),
                        )
                        .optional()?;
                    if let Some(other) = holder
                        && other != r.id
                    {
                        return Err(invalid(
                            "scope_taken",
                            format!(
                                "resource {:?}, scope {}: it already belongs to resource {other:?} \
                                 (a scope name is globally unique)",
                                r.id, s.name
                            ),
                        ));
                    }
                }
                let before = load_resources(tx, Some(&r.id))?.pop();
                let mut wanted = r.clone();
                wanted.owner = owner.as_ref().map(|p| p.email.clone());
                let same_fields = before.as_ref().is_some_and(|b| {
                    b.name == wanted.name
                        && b.description == wanted.description
                        && b.owner == wanted.owner
                        && b.audiences == wanted.audiences
                        && b.approvers == wanted.approvers
                        && b.max_duration == wanted.max_duration
                });
                let same_scopes = before
                    .as_ref()
                    .is_some_and(|b| wanted.scopes.iter().all(|s| b.scopes.contains(s)));
                if same_fields && same_scopes {
                    outcome.unchanged.push(r.id.clone());
                    continue;
                }
                tx.execute(
                    "INSERT INTO resources (id, name, description, owner_id, audiences, approvers,
                        max_duration, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                        description = excluded.description, owner_id = excluded.owner_id,
                        audiences = excluded.audiences, approvers = excluded.approvers,
                        max_duration = excluded.max_duration, updated_at = excluded.updated_at",
                    params![
                        r.id,
                        r.name,
                        r.description,
                        owner.as_ref().map(|p| p.id.clone()),
                        super::json_list(&r.audiences),
                        r.approvers,
                        r.max_duration,
                        now
                    ],
                )?;
                for s in &r.scopes {
                    tx.execute(
                        "INSERT INTO resource_scopes (name, resource_id, tier, approval, description)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (name) DO UPDATE SET tier = excluded.tier,
                            approval = excluded.approval, description = excluded.description",
                        params![
                            s.name,
                            r.id,
                            s.tier.as_str(),
                            s.approval.as_str(),
                            s.description
                        ],
                    )?;
                }
                if before.is_some() {
                    outcome.updated.push(r.id.clone());
                } else {
                    outcome.created.push(r.id.clone());
                }
            }
            if !outcome.created.is_empty() || !outcome.updated.is_empty() {
                let changed: Vec<&Resource> = req
                    .resources
                    .iter()
                    .filter(|r| outcome.created.contains(&r.id) || outcome.updated.contains(&r.id))
                    .collect();
                outcome.audit_seq = Some(append_audit(
                    tx,
                    actor,
                    "catalogue.import",
                    None,
                    "success",
                    None,
                    &serde_json::json!({
                        "created": outcome.created,
                        "updated": outcome.updated,
                        "resources": changed,
                    }),
                )?);
            }
            super::replication::note_catalogue();
            Ok(outcome)
        })?;
        self.refresh_catalogue()?;
        Ok(outcome)
    }

    fn list_resources(&self) -> StoreResult<Vec<Resource>> {
        self.read(|tx| load_resources(tx, None))
    }

    fn resource(&self, id: &str) -> StoreResult<Option<Resource>> {
        self.read(|tx| Ok(load_resources(tx, Some(id))?.pop()))
    }

    fn scope_catalogue(&self, scopes: &[String]) -> StoreResult<Vec<ScopeInfo>> {
        let index = self
            .catalogue
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(scopes
            .iter()
            .filter_map(|s| index.get(s).cloned())
            .collect())
    }
}
