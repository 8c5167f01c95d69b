//! The API token for each registry: where it is looked up, stored and deleted.
//!
//! Lookup order: the `STEWARD_TOKEN` environment variable, then the OS keyring (service
//! `steward`, one entry per registry URL as the account), then the fallback file
//! `<config>/credentials.toml` (mode 0600). `steward login` stores into the keyring when one is
//! usable and otherwise into the file, and says which; it never falls back silently.
//!
//! On Linux the keyring is the kernel's (keyutils). A process without a session keyring (a
//! container, a service, a shell that did not go through `pam_keyinit`) cannot read back the
//! keys it adds to the default user-session keyring, so we first join a session keyring of our
//! own; what makes a key outlive the process is the user's *persistent* keyring, which keyring-rs
//! links the key into. Without a persistent keyring the key would die with the process, so the
//! keyring counts as unusable. Every store is read back before it is trusted. Kernel keys do not
//! survive a reboot; the user is told so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::config::{APP, Paths};
use super::{Secret, parse_server_url};

/// The environment variable that overrides every stored token.
pub const TOKEN_ENV: &str = "STEWARD_TOKEN";
/// Set to `1` to keep the OS keyring out of it: tokens go to, and come from, the 0600 file only.
pub const NO_KEYRING_ENV: &str = "STEWARD_NO_KEYRING";

/// Where a token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    Keyring,
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env => write!(f, "the {TOKEN_ENV} environment variable"),
            Source::Keyring => write!(f, "the OS keyring"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub secret: Secret,
    pub source: Source,
}

/// Where `store` put a token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the caller must tell the user where the token went"]
pub enum Stored {
    /// In the OS keyring. `description` says which one and how long it keeps keys;
    /// `removed_from_file` is true when an older copy was removed from the fallback file.
    Keyring {
        description: String,
        removed_from_file: bool,
    },
    /// In the 0600 fallback file, because `keyring_problem` made the keyring unusable.
    File {
        path: PathBuf,
        keyring_problem: String,
    },
}

/// What `delete` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub from_keyring: bool,
    pub from_file: bool,
}

/// The canonical form of a registry URL, used as the key everywhere.
fn account(server: &str) -> anyhow::Result<String> {
    Ok(parse_server_url(server)?.to_string())
}

/// Checks a token given by a person before it is sent or stored.
pub fn check_token(token: &str) -> anyhow::Result<()> {
    if token.is_empty() {
        bail!("the API token is empty");
    }
    if token.len() > 4096 {
        bail!(
            "the API token is {} bytes long; at most 4096 are allowed",
            token.len()
        );
    }
    if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("the API token contains spaces or control characters; paste only the token");
    }
    Ok(())
}

/// The token from `STEWARD_TOKEN`, if it is set and not empty.
pub fn from_env() -> anyhow::Result<Option<Secret>> {
    let Some(value) = std::env::var_os(TOKEN_ENV) else {
        return Ok(None);
    };
    let value = value
        .into_string()
        .map_err(|_| anyhow::anyhow!("{TOKEN_ENV} is not valid UTF-8"))?;
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    check_token(value).with_context(|| format!("{TOKEN_ENV} is not usable"))?;
    Ok(Some(Secret::new(value)))
}

/// Finds the token for `server`: env, keyring, file. `Ok(None)` when there is none.
pub fn load(paths: &Paths, server: &str) -> anyhow::Result<Option<Loaded>> {
    if let Some(secret) = from_env()? {
        return Ok(Some(Loaded {
            secret,
            source: Source::Env,
        }));
    }
    let account = account(server)?;
    let mut keyring_problem = None;
    if !keyring_disabled() {
        match os_keyring::get(&account) {
            Ok(Some(token)) => {
                return Ok(Some(Loaded {
                    secret: Secret::new(token),
                    source: Source::Keyring,
                }));
            }
            Ok(None) => {}
            Err(problem) => keyring_problem = Some(problem),
        }
    }
    match read_file(&paths.credentials_file)?.remove(&account) {
        Some(entry) => {
            check_token(&entry.token).with_context(|| {
                format!(
                    "the token for {account} in {} is not usable",
                    paths.credentials_file.display()
                )
            })?;
            Ok(Some(Loaded {
                secret: Secret::new(entry.token),
                source: Source::File(paths.credentials_file.clone()),
            }))
        }
        None => match keyring_problem {
            Some(problem) => bail!("cannot read the token for {account}: {problem}"),
            None => Ok(None),
        },
    }
}

/// Stores the token for `server`: in the keyring if it is usable, else in the 0600 file.
pub fn store(paths: &Paths, server: &str, secret: &Secret) -> anyhow::Result<Stored> {
    check_token(secret.expose())?;
    let account = account(server)?;
    let keyring_result = if keyring_disabled() {
        Err(format!("{NO_KEYRING_ENV} is set"))
    } else {
        os_keyring::set(&account, secret.expose())
    };
    match keyring_result {
        Ok(description) => {
            let removed_from_file = remove_from_file(&paths.credentials_file, &account)?;
            Ok(Stored::Keyring {
                description,
                removed_from_file,
            })
        }
        Err(keyring_problem) => {
            // A stale keyring entry would win over the file at the next lookup.
            if !keyring_disabled() {
                let _ = os_keyring::delete(&account);
            }
            let mut entries = read_file(&paths.credentials_file)?;
            entries.insert(
                account,
                FileEntry {
                    token: secret.expose().to_string(),
                },
            );
            write_file(&paths.credentials_file, &entries)?;
            Ok(Stored::File {
                path: paths.credentials_file.clone(),
                keyring_problem,
            })
        }
    }
}

/// Removes the token for `server` from the keyring and the file.
pub fn delete(paths: &Paths, server: &str) -> anyhow::Result<Deleted> {
    let account = account(server)?;
    let keyring_result = if keyring_disabled() {
        Ok(false)
    } else {
        os_keyring::delete(&account)
    };
    // The file is cleaned even when the keyring fails, so that one broken store does not keep a
    // token alive in the other.
    let from_file = remove_from_file(&paths.credentials_file, &account)?;
    let from_keyring = keyring_result.map_err(|p| {
        anyhow::anyhow!("cannot remove the token for {account} from the OS keyring: {p}")
    })?;
    Ok(Deleted {
        from_keyring,
        from_file,
    })
}

fn keyring_disabled() -> bool {
    std::env::var_os(NO_KEYRING_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

// ---------------------------------------------------------------------------------------------
// The fallback file.

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    token: String,
}

const FILE_HEADER: &str = "# Steward API tokens, one table per registry, for hosts without a usable OS keyring.\n\
# Written by `steward login`; removed by `steward logout`. Keep this file private (mode 0600).\n\n";

fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, FileEntry>> {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    check_private(path)?;
    toml::from_str(&source)
        .map_err(|e| anyhow::anyhow!("{}", super::config::describe_toml_error(path, &source, &e)))
}

/// Refuses a credentials file that others may read, the way ssh refuses such a private key.
#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} holds API tokens but others may read it (mode {:03o}); \
             run `chmod 600 {}` (and consider the tokens in it exposed)",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Writes the file whole through a private temporary file and a rename, so that a crash never
/// leaves a half-written file and the tokens are never readable by others, even briefly.
fn write_file(path: &Path, entries: &BTreeMap<String, FileEntry>) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let body = toml::to_string(entries).context("cannot encode the credentials file")?;
    let tmp = dir.join(format!(".credentials.toml.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(FILE_HEADER.as_bytes())?;
        file.write_all(body.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Removes one registry's token from the file; deletes the file when it becomes empty.
fn remove_from_file(path: &Path, account: &str) -> anyhow::Result<bool> {
    let mut entries = read_file(path)?;
    if entries.remove(account).is_none() {
        return Ok(false);
    }
    if entries.is_empty() {
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    } else {
        write_file(path, &entries)?;
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// The OS keyring. Errors are plain sentences for the user (never containing the token).

mod os_keyring {
    use super::APP;
    use keyring::credential::CredentialPersistence;
    use keyring::{Entry, Error};

    fn describe(e: &Error) -> String {
        match e {
            Error::NoEntry => "the keyring did not keep the entry (no usable keyring for this \
                               session)"
                .to_string(),
            other => other.to_string(),
        }
    }

    /// Whether this build has a real keyring on this platform (not keyring-rs's in-memory mock).
    fn persistence() -> Result<CredentialPersistence, String> {
        match keyring::default::default_credential_builder().persistence() {
            p @ (CredentialPersistence::UntilReboot | CredentialPersistence::UntilDelete) => Ok(p),
            _ => Err(format!(
                "this build of steward has no OS keyring support on {}",
                std::env::consts::OS
            )),
        }
    }

    fn entry(account: &str) -> Result<Entry, String> {
        persistence()?;
        platform::prepare()?;
        let entry = Entry::new(APP, account).map_err(|e| describe(&e))?;
        platform::check_entry(&entry)?;
        Ok(entry)
    }

    pub fn get(account: &str) -> Result<Option<String>, String> {
        let entry = match entry(account) {
            Ok(e) => e,
            // No usable keyring: nothing can be stored there either; the file decides.
            Err(_) => return Ok(None),
        };
        match entry.get_password() {
            Ok(token) => Ok(Some(token)),
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(format!("the OS keyring failed: {}", describe(&e))),
        }
    }

    /// Stores and reads back; returns a description of where the token now lives.
    pub fn set(account: &str, token: &str) -> Result<String, String> {
        let entry = entry(account)?;
        entry
            .set_password(token)
            .map_err(|e| format!("the OS keyring refused the token: {}", describe(&e)))?;
        let again = Entry::new(APP, account).map_err(|e| describe(&e))?;
        match again.get_password() {
            Ok(read) if read == token => {}
            Ok(_) => {
                let _ = entry.delete_credential();
                return Err("the OS keyring gave back a different value".into());
            }
            Err(e) => {
                let _ = entry.delete_credential();
                return Err(format!(
                    "the OS keyring did not give the token back: {}",
                    describe(&e)
                ));
            }
        }
        Ok(platform::describe_store(account))
    }

    /// Returns whether there was an entry to delete.
    pub fn delete(account: &str) -> Result<bool, String> {
        let entry = match entry(account) {
            Ok(e) => e,
            Err(_) => return Ok(false),
        };
        match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(Error::NoEntry) => Ok(false),
            Err(e) => Err(format!("the OS keyring failed: {}", describe(&e))),
        }
    }

    #[cfg(target_os = "linux")]
    mod platform {
        use super::{APP, Entry};
        use keyring::keyutils::KeyutilsCredential;
        use linux_keyutils::{KeyRing, KeyRingIdentifier};

        /// Gives the process a session keyring of its own if it has none, so that it can read
        /// back what it stores (see the module comment). A process inside a login session keeps
        /// its session keyring: `create` only acts when there is none.
        pub fn prepare() -> Result<(), String> {
            static JOINED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
            JOINED
                .get_or_init(|| {
                    KeyRing::from_special_id(KeyRingIdentifier::Session, true)
                        .map(|_| ())
                        .map_err(|e| format!("the kernel keyring is not available ({e:?})"))
                })
                .clone()
        }

        /// The kernel keyring keeps a key beyond this process only through the persistent
        /// keyring; refuse to count on it without one.
        pub fn check_entry(entry: &Entry) -> Result<(), String> {
            match entry.get_credential().downcast_ref::<KeyutilsCredential>() {
                Some(c) if c.persistent.is_none() => Err(
                    "the kernel has no persistent keyring for this user, so a stored token \
                     would vanish when this process ends"
                        .into(),
                ),
                _ => Ok(()),
            }
        }

        pub fn describe_store(account: &str) -> String {
            let expiry = std::fs::read_to_string("/proc/sys/kernel/keys/persistent_keyring_expiry")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            let lifetime = match expiry {
                Some(secs) if secs >= 86_400 => format!(
                    "it is cleared at reboot and after {} days without use",
                    secs / 86_400
                ),
                Some(secs) => format!("it is cleared at reboot and after {secs} s without use"),
                None => "it is cleared at reboot".to_string(),
            };
            format!(
                "the Linux kernel keyring (service `{APP}`, account `{account}`); {lifetime}, \
                 then run `steward login` again"
            )
        }
    }

    #[cfg(not(target_os = "linux"))]
    mod platform {
        use super::{APP, Entry};

        pub fn prepare() -> Result<(), String> {
            Ok(())
        }

        pub fn check_entry(_entry: &Entry) -> Result<(), String> {
            Ok(())
        }

        pub fn describe_store(account: &str) -> String {
            format!("the OS keyring (service `{APP}`, account `{account}`)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_checks() {
        assert!(check_token("stw_abc").is_ok());
        assert!(check_token("").is_err());
        assert!(check_token("stw abc").is_err());
        assert!(check_token("stw\u{1b}[2J").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn file_round_trip_is_private_and_removable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join("credentials.toml");
        let mut entries = BTreeMap::new();
        entries.insert(
            "http://a:1/".to_string(),
            FileEntry {
                token: "stw_1".into(),
            },
        );
        entries.insert(
            "http://b:2/".to_string(),
            FileEntry {
                token: "stw_2".into(),
            },
        );
        write_file(&path, &entries).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_file(&path).unwrap();
        assert_eq!(back["http://b:2/"].token, "stw_2");
        assert!(remove_from_file(&path, "http://a:1/").unwrap());
        assert!(!remove_from_file(&path, "http://a:1/").unwrap());
        assert!(remove_from_file(&path, "http://b:2/").unwrap());
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn readable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "[\"http://a:1/\"]\ntoken = \"stw_1\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
