//! The audit heads this machine has witnessed, one file per registry in the user's data dir
//! (`$XDG_DATA_HOME/steward/witness/`, else the platform's data dir from `directories`), mode
//! 0600. Every console start and every `steward audit verify` adds the head it saw; a later
//! verify checks that the chain still holds each of them (see `model::witness`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::Client;
use super::config::APP;
use crate::model::witness::{AuditHead, WitnessedHead};

/// Heads kept per registry: the newest ones, and the oldest (which pins the start).
const KEPT: usize = 512;

/// The directory of witness files.
pub fn witness_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        anyhow::ensure!(
            dir.is_absolute(),
            "XDG_DATA_HOME is set to the relative path {}; it must be an absolute path",
            dir.display()
        );
        return Ok(dir.join(APP).join("witness"));
    }
    let project = directories::ProjectDirs::from("", "", APP)
        .context("cannot find your home directory to keep witnessed audit heads in")?;
    Ok(project.data_dir().join("witness"))
}

/// The witnessed heads of one registry (a URL, or `file:` and a database path).
#[derive(Debug, Clone)]
pub struct WitnessBook {
    pub registry: String,
    pub path: PathBuf,
}

impl WitnessBook {
    pub fn for_registry(registry: &str) -> anyhow::Result<WitnessBook> {
        Ok(WitnessBook::in_dir(&witness_dir()?, registry))
    }

    pub fn in_dir(dir: &Path, registry: &str) -> WitnessBook {
        let digest = hex::encode(&Sha256::digest(registry.as_bytes())[..12]);
        WitnessBook {
            registry: registry.to_string(),
            path: dir.join(format!("{digest}.json")),
        }
    }

    /// The book of a database file, by its canonical path.
    pub fn for_database(db: &Path) -> anyhow::Result<WitnessBook> {
        let canonical = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
        WitnessBook::for_registry(&format!("file:{}", canonical.display()))
    }

    pub fn load(&self) -> anyhow::Result<Vec<WitnessedHead>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let file: BookFile = serde_json::from_slice(&bytes).with_context(|| {
                    format!("the witness file {} is damaged", self.path.display())
                })?;
                Ok(file.heads)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    /// Adds a head (unless the same one is already there) and writes the file atomically.
    pub fn record(&self, head: &AuditHead, by: &str) -> anyhow::Result<()> {
        let mut heads = self.load()?;
        if heads
            .iter()
            .any(|h| h.seq == head.seq && h.hash == head.hash)
        {
            return Ok(());
        }
        heads.push(WitnessedHead {
            seq: head.seq,
            hash: head.hash.clone(),
            seen_at: Utc::now(),
            by: by.to_string(),
        });
        heads.sort_by_key(|h| h.seq);
        if heads.len() > KEPT {
            let first = heads[0].clone();
            let drop = heads.len() - KEPT;
            heads.drain(1..=drop);
            heads[0] = first;
        }
        let dir = self.path.parent().context("a witness file has a folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let body = serde_json::to_vec_pretty(&BookFile {
            registry: self.registry.clone(),
            heads,
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = open_private(&tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

fn open_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct BookFile {
    registry: String,
    heads: Vec<WitnessedHead>,
}

/// The console's one call: fetch the registry's audit head and record it as witnessed. Quiet
/// by design (a person without an audit role, an unreachable registry or an unwritable data
/// dir must not disturb the console); returns the head when it was recorded.
pub async fn witness_head(client: &Client) -> Option<AuditHead> {
    let head: AuditHead = client.get(&["v1", "audit", "head"]).await.ok()?;
    let book = WitnessBook::for_registry(client.base_url().as_str()).ok()?;
    let recorded = head.clone();
    tokio::task::spawn_blocking(move || book.record(&recorded, "console"))
        .await
        .ok()?
        .ok()?;
    Some(head)
}
