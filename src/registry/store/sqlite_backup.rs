//! Backup and restore of the SQLite store.
//!
//! A backup is SQLite's online backup API copying every page in one step, over a read
//! transaction: a consistent snapshot taken while the registry keeps serving (WAL readers never
//! block the writer). A restore puts such a copy back, made safe for the world that moved on
//! since the copy: it appends an `audit.restore` event ("restored to sequence N", so that a
//! verify names the gap as a restore), refuses every token issued before it (OAuth tokens and
//! people's API tokens), rotates the signing key, and re-applies the brakes the old log
//! recorded after the copy (agent revocations and decommissions, disabled credentials, removed
//! grants), so that nothing revoked after the copy comes back to life.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

use super::{
    OpenMode, SqliteStore, append_audit, disable_credentials, next_change, store_now, ts, unix_now,
};
use crate::model::Actor;
use crate::model::witness::RESTORE_ACTION;
use crate::registry::store::{AuditStore, StoreError, StoreResult};

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub file: PathBuf,
    pub head_seq: i64,
    pub bytes: u64,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The sequence the copy ended at.
    pub restored_to: i64,
    /// The `audit.restore` event.
    pub audit_seq: i64,
    pub tokens_refused: u64,
    pub api_tokens_revoked: u64,
    /// Brakes from the old log after the copy, applied again: (action, target).
    pub brakes_reapplied: Vec<(String, String)>,
    /// Where the database that was replaced was moved to.
    pub previous: Option<PathBuf>,
    pub new_kid: String,
}

fn copy_pages(src: &Connection, dst: &mut Connection) -> rusqlite::Result<()> {
    use rusqlite::backup::StepResult;
    let backup = rusqlite::backup::Backup::new(src, dst)?;
    // All pages in one step (-1): one read transaction, so the copy is one consistent snapshot
    // and is never restarted by the writes of a busy registry.
    for _ in 0..1000 {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the database stayed busy for 10 s".into()),
    ))
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn internal(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("{what}: {e}"))
}

/// Copies the live database at `db` to `to` (which must not exist) while it serves.
pub fn backup(db: &Path, to: &Path) -> StoreResult<BackupReport> {
    if !db.exists() {
        return Err(StoreError::NotFound(format!(
            "no database at {}",
            db.display()
        )));
    }
    if to.exists() {
        return Err(StoreError::Conflict(format!(
            "{} already exists; a backup never overwrites a file",
            to.display()
        )));
    }
    let src = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| internal(&format!("cannot open {}", db.display()), e))?;
    src.busy_timeout(Duration::from_secs(10))?;
    let partial = sidecar(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    {
        let mut dst = Connection::open(&partial)
            .map_err(|e| internal(&format!("cannot create {}", partial.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600));
        }
        copy_pages(&src, &mut dst).map_err(|e| internal("the backup failed", e))?;
        // A single self-contained file: no write-ahead log beside it.
        dst.pragma_update(None, "journal_mode", "DELETE")?;
    }
    let head_seq = check_copy(&partial)?;
    std::fs::rename(&partial, to).map_err(|e| internal("cannot finish the backup", e))?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        file: to.to_path_buf(),
        head_seq,
        bytes,
    })
}

/// Checks that a copy is a sound Steward store with an intact audit chain; returns its head.
fn check_copy(file: &Path) -> StoreResult<i64> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(StoreError::Invalid {
            code: "damaged_backup",
            message: format!(
                "{} fails SQLite's integrity check: {integrity}",
                file.display()
            ),
        });
    }
    drop(conn);
    let store = SqliteStore::open(file, OpenMode::MustExist)?;
    let verified = store.audit_verify()?;
    if let Some(broken) = verified.first_broken {
        return Err(StoreError::Invalid {
            code: "damaged_backup",
            message: format!(
                "the audit chain of {} is broken at event #{}: {}",
                file.display(),
                broken.seq,
                broken.problem
            ),
        });
    }
    Ok(verified.head_seq)
}

/// Brakes the old log recorded after `after`: (action, target, detail).
fn lost_brakes(old: &Path, after: i64) -> Vec<(String, String, Option<String>)> {
    let Ok(conn) = Connection::open_with_flags(old, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let rows = conn
        .prepare(
            "SELECT action, target, details FROM audit_events
             WHERE seq > ?1 AND target IS NOT NULL AND action IN
               ('agent.revoke', 'agent.decommission', 'credential.disable', 'grant.remove',
                'resource.credential.disable')
             ORDER BY seq",
        )
        .and_then(|mut stmt| {
            stmt.query_map([after], |r| {
                let action: String = r.get(0)?;
                let details: String = r.get(2)?;
                let details: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
                let detail = match action.as_str() {
                    "credential.disable" | "resource.credential.disable" => {
                        details["credential_id"].as_str().map(str::to_string)
                    }
                    "grant.remove" => details["scope"].as_str().map(str::to_string),
                    _ => None,
                };
                Ok((action, r.get(1)?, detail))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
    rows.unwrap_or_default()
}

/// Puts the backup `from` back at `db` (the registry must be stopped). See the module notes.
pub fn restore(db: &Path, from: &Path, actor: &Actor) -> StoreResult<RestoreReport> {
    if !from.exists() {
        return Err(StoreError::NotFound(format!(
            "no backup at {}",
            from.display()
        )));
    }
    let work = sidecar(db, ".restoring");
    for f in [work.clone(), sidecar(&work, "-wal"), sidecar(&work, "-shm")] {
        let _ = std::fs::remove_file(f);
    }
    {
        let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut dst = Connection::open(&work)?;
        copy_pages(&src, &mut dst).map_err(|e| internal("cannot copy the backup", e))?;
    }
    let restored_to = check_copy(&work)?;
    let lost = if db.exists() {
        lost_brakes(db, restored_to)
    } else {
        Vec::new()
    };
    let store = SqliteStore::open(&work, OpenMode::MustExist)?;
    let now = unix_now();
    let (audit_seq, tokens_refused, api_tokens_revoked, brakes_reapplied) = store.write(|tx| {
        // Every token the copy knows is refused: agents simply exchange again.
        let tokens_refused = tx.execute(
            "INSERT OR IGNORE INTO token_revocations (jti, revoked_at)
             SELECT jti, ?1 FROM issued_tokens WHERE expires_at > ?1",
            [now],
        )? as u64;
        // People's API tokens too: one revoked after the copy must not come back.
        let api_tokens_revoked = tx.execute(
            "UPDATE api_tokens SET revoked_at = ?1 WHERE revoked_at IS NULL",
            [ts(store_now())],
        )? as u64;
        let mut reapplied = Vec::new();
        let stamp = ts(store_now());
        for (action, target, detail) in &lost {
            // A resource's disabled credential stays disabled (its target is a resource).
            if let ("resource.credential.disable", Some(id)) = (action.as_str(), detail) {
                let changed = tx.execute(
                    "UPDATE resource_credentials SET disabled_at = coalesce(disabled_at, ?1)
                     WHERE id = ?2 AND resource_id = ?3",
                    params![stamp, id, target],
                )?;
                if changed > 0 {
                    reapplied.push((action.clone(), target.clone()));
                }
                continue;
            }
            let exists: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM agents WHERE id = ?1)")?
                .query_row([target], |r| r.get(0))?;
            if !exists {
                continue;
            }
            match (action.as_str(), detail) {
                ("agent.revoke" | "agent.decommission", _) => {
                    let seq = next_change(tx)?;
                    tx.execute(
                        "UPDATE agents SET status = 'suspended', change_seq = ?1
                         WHERE id = ?2 AND status = 'active'",
                        params![seq, target],
                    )?;
                    disable_credentials(tx, target, &stamp)?;
                }
                ("credential.disable", Some(id)) => {
                    tx.execute(
                        "UPDATE credentials SET disabled_at = coalesce(disabled_at, ?1)
                         WHERE id = ?2 AND agent_id = ?3",
                        params![stamp, id, target],
                    )?;
                }
                ("grant.remove", Some(scope)) => {
                    tx.execute(
                        "DELETE FROM grants WHERE agent_id = ?1 AND scope = ?2",
                        params![target, scope],
                    )?;
                }
                _ => continue,
            }
            reapplied.push((action.clone(), target.clone()));
        }
        let seq = append_audit(
            tx,
            actor,
            RESTORE_ACTION,
            None,
            "success",
            Some(&format!("restored to sequence {restored_to}")),
            &serde_json::json!({
                "restored_to": restored_to,
                "backup": from.file_name().map(|n| n.to_string_lossy().into_owned()),
                "tokens_refused": tokens_refused,
                "api_tokens_revoked": api_tokens_revoked,
                "brakes_reapplied": reapplied.iter()
                    .map(|(a, t)| serde_json::json!({"action": a, "target": t}))
                    .collect::<Vec<_>>(),
            }),
        )?;
        Ok((seq, tokens_refused, api_tokens_revoked, reapplied))
    })?;
    // Tokens signed by the old key may exist that the copy never recorded: a new key signs
    // from now on, and the old one leaves the JWKS as no unrevoked token it signed is left.
    let new_kid = crate::registry::tokens::rotate_signing_key(&store, actor)?;
    drop(store);
    {
        // One self-contained file before it takes the database's place.
        let conn = Connection::open(&work)?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
    }
    let previous = if db.exists() {
        let kept = sidecar(
            db,
            &format!(".before-restore-{}", store_now().format("%Y%m%dT%H%M%SZ")),
        );
        std::fs::rename(db, &kept).map_err(|e| internal("cannot move the old database", e))?;
        for suffix in ["-wal", "-shm"] {
            let side = sidecar(db, suffix);
            if side.exists() {
                let _ = std::fs::rename(&side, sidecar(&kept, suffix));
            }
        }
        Some(kept)
    } else {
        None
    };
    std::fs::rename(&work, db)
        .map_err(|e| internal("cannot put the restored database in place", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o600));
    }
    Ok(RestoreReport {
        restored_to,
        audit_seq,
        tokens_refused,
        api_tokens_revoked,
        brakes_reapplied,
        previous,
        new_kid,
    })
}
