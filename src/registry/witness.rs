//! The registry's own witness of its audit head: every few minutes (when the head moved) it
//! signs the head with its current token-signing key and appends it as one JSON line to a file
//! outside the database (`--audit-witness FILE`) and POSTs it to a webhook
//! (`--audit-witness-url URL`). `steward audit verify --db PATH --witness FILE` then checks the
//! chain against every signed head. The file's worth is being elsewhere: someone who rewrites
//! the database must also reach the file (or the webhook's receiver) to hide it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::Signer;

use crate::model::audit::audit_time;
use crate::model::witness::{SignedHead, WitnessedHead, signed_head_message};
use crate::registry::store::{Store, StoredSigningKey};
use crate::registry::tokens::keys::RegistryKey;

/// Where and how often the registry witnesses its head.
#[derive(Debug, Clone)]
pub struct WitnessSettings {
    pub file: Option<PathBuf>,
    pub url: Option<reqwest::Url>,
    pub every: Duration,
    /// The registry's issuer URL, named in every signed head.
    pub registry: String,
}

/// Signs the current head with the key that signs tokens now.
pub fn sign_head(store: &dyn Store, registry: &str) -> anyhow::Result<SignedHead> {
    let head = store.audit_head()?;
    let keys = store.signing_keys()?;
    let current = keys
        .iter()
        .find(|k| k.retired_at.is_none())
        .or(keys.first())
        .ok_or_else(|| anyhow::anyhow!("the registry has no signing key yet"))?;
    let key = RegistryKey::from_stored(
        &current.kid,
        &current.private_key,
        current.created_at,
        current.retired_at,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let time = audit_time(store.clock().now());
    let signature = key
        .signing
        .sign(&signed_head_message(registry, head.seq, &head.hash, &time));
    Ok(SignedHead {
        registry: registry.to_string(),
        seq: head.seq,
        hash: head.hash,
        time,
        kid: key.kid.clone(),
        signature: B64.encode(signature.to_bytes()),
    })
}

/// Appends one signed head to the file as a JSON line, durably.
pub fn append_head(file: &Path, head: &SignedHead) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(file)
        .map_err(|e| anyhow::anyhow!("cannot append to {}: {e}", file.display()))?;
    let mut line = serde_json::to_vec(head)?;
    line.push(b'\n');
    f.write_all(&line)?;
    f.sync_all()?;
    Ok(())
}

/// Reads a witness file and checks every line's signature against the registry's keys.
/// Returns the heads, or the lines that fail (a forged or damaged line is itself a finding).
pub fn read_signed_heads(
    text: &str,
    keys: &[StoredSigningKey],
) -> Result<Vec<WitnessedHead>, Vec<String>> {
    let mut heads = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = n + 1;
        let head: SignedHead = match serde_json::from_str(line) {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("line {line_no}: not a signed head ({e})"));
                continue;
            }
        };
        match check_signature(&head, keys) {
            Ok(()) => heads.push(WitnessedHead {
                seq: head.seq,
                hash: head.hash,
                seen_at: chrono::DateTime::parse_from_rfc3339(&head.time)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_default(),
                by: "the registry's signed head file".into(),
            }),
            Err(e) => problems.push(format!("line {line_no} (#{}): {e}", head.seq)),
        }
    }
    if problems.is_empty() {
        Ok(heads)
    } else {
        Err(problems)
    }
}

fn check_signature(head: &SignedHead, keys: &[StoredSigningKey]) -> Result<(), String> {
    let key = keys.iter().find(|k| k.kid == head.kid).ok_or_else(|| {
        format!(
            "signed by key {}, which the registry does not hold",
            head.kid
        )
    })?;
    let public: [u8; 32] = B64
        .decode(&key.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the registry's public key is damaged")?;
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| "bad public key")?;
    let signature: [u8; 64] = B64
        .decode(&head.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the signature is not 64 base64url bytes")?;
    public
        .verify_strict(
            &signed_head_message(&head.registry, head.seq, &head.hash, &head.time),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| "the signature does not verify".to_string())
}

/// Runs the witness until `stop` turns true: at start and then every `every`, when the head
/// moved, sign it, append it to the file and POST it to the webhook (failures are logged and
/// retried at the next tick; the file write never waits for the webhook).
pub fn spawn(
    store: Arc<dyn Store>,
    settings: WitnessSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let mut last: Option<(i64, String)> = None;
        let mut stopping = false;
        loop {
            let signed = {
                let store = store.clone();
                let registry = settings.registry.clone();
                tokio::task::spawn_blocking(move || sign_head(store.as_ref(), &registry)).await
            };
            match signed {
                Ok(Ok(head)) if last.as_ref() != Some(&(head.seq, head.hash.clone())) => {
                    let mut delivered = true;
                    if let Some(file) = &settings.file {
                        let (file, h) = (file.clone(), head.clone());
                        match tokio::task::spawn_blocking(move || append_head(&file, &h)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                delivered = false;
                                tracing::warn!(error = %format!("{e:#}"), "audit witness: the head could not be written");
                            }
                            Err(e) => {
                                delivered = false;
                                tracing::warn!(error = %e, "audit witness: the head could not be written");
                            }
                        }
                    }
                    if let Some(url) = &settings.url {
                        match http.post(url.clone()).json(&head).send().await {
                            Ok(r) if r.status().is_success() => {}
                            Ok(r) => {
                                tracing::warn!(status = %r.status(), "audit witness: the webhook refused the head")
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "audit witness: the webhook failed")
                            }
                        }
                    }
                    if delivered {
                        last = Some((head.seq, head.hash));
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "audit witness: the head could not be read")
                }
                Err(e) => tracing::warn!(error = %e, "audit witness: the head could not be read"),
            }
            if stopping {
                return;
            }
            // On shutdown, one last head is witnessed before the task ends.
            tokio::select! {
                _ = tokio::time::sleep(settings.every) => {}
                _ = stop.changed() => stopping = true,
            }
        }
    })
}
