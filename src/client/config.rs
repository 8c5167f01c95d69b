//! Where Steward keeps its files, and the user's `config.toml`.
//!
//! The config dir respects `XDG_CONFIG_HOME` on every platform (people who set it mean it), else
//! the platform's usual place from `directories`. The cache dir likewise respects
//! `XDG_CACHE_HOME`. `config.toml` is shared with the console: this module reads the top-level
//! `server` key and tolerates every other key and table (`theme`, `[keys]`, …), which the console
//! reads itself (it may reuse [`describe_toml_error`] for its own messages).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::parse_server_url;

/// The application name used for every directory and the keyring service.
pub const APP: &str = "steward";

/// Every path Steward uses on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub config_file: PathBuf,
    pub themes_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// API tokens for hosts without a usable OS keyring (mode 0600).
    pub credentials_file: PathBuf,
}

impl Paths {
    /// Resolves the paths from the environment (`XDG_CONFIG_HOME`, `XDG_CACHE_HOME`, `HOME`).
    pub fn resolve() -> anyhow::Result<Paths> {
        let xdg_config = xdg_dir("XDG_CONFIG_HOME")?;
        let xdg_cache = xdg_dir("XDG_CACHE_HOME")?;
        let project = || {
            directories::ProjectDirs::from("", "", APP).context(
                "cannot find your home directory to keep Steward's files in; \
                 set HOME or XDG_CONFIG_HOME and XDG_CACHE_HOME",
            )
        };
        let config_dir = match xdg_config {
            Some(dir) => dir.join(APP),
            None => project()?.config_dir().to_path_buf(),
        };
        let cache_dir = match xdg_cache {
            Some(dir) => dir.join(APP),
            None => project()?.cache_dir().to_path_buf(),
        };
        Ok(Paths::under(config_dir, cache_dir))
    }

    /// The paths for a given config dir and cache dir.
    pub fn under(config_dir: PathBuf, cache_dir: PathBuf) -> Paths {
        Paths {
            config_file: config_dir.join("config.toml"),
            themes_dir: config_dir.join("themes"),
            credentials_file: config_dir.join("credentials.toml"),
            config_dir,
            cache_dir,
        }
    }

    /// Reads `config.toml`; a missing file gives the default settings.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Settings::load(&self.config_file)
    }

    /// The registry to talk to: the `--server` flag (or `STEWARD_SERVER`, which clap folds into
    /// the flag), else `config.toml`'s `server`.
    pub fn resolve_server(&self, flag: Option<&str>) -> anyhow::Result<String> {
        if let Some(flag) = flag.filter(|f| !f.trim().is_empty()) {
            let url = parse_server_url(flag)?;
            return Ok(url.to_string());
        }
        if let Some(server) = self.settings()?.server {
            return Ok(server);
        }
        bail!(
            "no registry is configured: pass --server URL, set STEWARD_SERVER=URL, \
             or put server = \"URL\" in {}",
            self.config_file.display()
        )
    }
}

/// The free-function form of [`Paths::resolve_server`], resolving the paths first.
pub fn resolve_server(flag: Option<&str>) -> anyhow::Result<String> {
    if let Some(flag) = flag.filter(|f| !f.trim().is_empty()) {
        // No need to find (or require) a home directory when the flag says it all.
        return Ok(parse_server_url(flag)?.to_string());
    }
    Paths::resolve()?.resolve_server(None)
}

/// An `XDG_*_HOME` variable, if set. The XDG spec says relative values are invalid and must be
/// ignored; we refuse them instead, since ignoring a setting someone made silently surprises.
fn xdg_dir(var: &str) -> anyhow::Result<Option<PathBuf>> {
    match std::env::var_os(var) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => {
            let path = PathBuf::from(v);
            if path.is_absolute() {
                Ok(Some(path))
            } else {
                bail!(
                    "{var} is set to the relative path {}; it must be an absolute path",
                    path.display()
                )
            }
        }
    }
}

/// What the command line reads from `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The default registry URL, normalised.
    pub server: Option<String>,
}

/// The part of `config.toml` this module owns. Unknown keys belong to the console: tolerated.
#[derive(Deserialize)]
struct RawSettings {
    server: Option<toml::Spanned<String>>,
}

impl Settings {
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Settings::parse(path, &source)
    }

    /// Parses the text of `config.toml` (`path` only names it in messages).
    pub fn parse(path: &Path, source: &str) -> anyhow::Result<Settings> {
        let raw: RawSettings = toml::from_str(source)
            .map_err(|e| anyhow::anyhow!("{}", describe_toml_error(path, source, &e)))?;
        let server = match raw.server {
            None => None,
            Some(spanned) => {
                let url = parse_server_url(spanned.get_ref()).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: {e}",
                        locate(path, source, spanned.span().start, Some("server".into()))
                    )
                })?;
                Some(url.to_string())
            }
        };
        Ok(Settings { server })
    }
}

/// Sets the top-level `server` in `config.toml` when the file does not name one yet, keeping
/// everything else byte for byte. Returns false (and changes nothing) when a server is set.
pub fn remember_server(path: &Path, server: &str) -> anyhow::Result<bool> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if Settings::parse(path, &existing)?.server.is_some() {
        return Ok(false);
    }
    let server = parse_server_url(server)?.to_string();
    // A top-level key must come before the first table header: put it first.
    let line = format!(
        "# The registry the console and the command line use by default.\nserver = {}\n",
        toml_string(&server)
    );
    let text = if existing.is_empty() {
        line
    } else {
        format!("{line}\n{existing}")
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Through a temporary file and a rename: a crash must never leave the user's config half
    // written. The file keeps its permissions.
    let tmp = dir.join(format!(".config.toml.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        std::fs::write(&tmp, &text)?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// A TOML basic string for `value` (URLs have no control characters; quotes and backslashes
/// are escaped all the same).
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A one-paragraph description of a TOML error: file, line, column, key and what is wrong,
/// e.g. `/home/a/.config/steward/config.toml:3:10: key `server`: invalid type: integer `3`,
/// expected a string`.
pub fn describe_toml_error(path: &Path, source: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim();
    match err.span() {
        Some(span) => {
            let key = key_at(source, span.start);
            format!("{}: {message}", locate(path, source, span.start, key))
        }
        None => format!("{}: {message}", path.display()),
    }
}

/// `file:line:column: key `k`` for a byte offset in `source`.
fn locate(path: &Path, source: &str, offset: usize, key: Option<String>) -> String {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    match key {
        Some(key) => format!("{}:{line}:{column}: key `{key}`", path.display()),
        None => format!("{}:{line}:{column}", path.display()),
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The dotted key on the line holding `offset`, qualified by the nearest table header above it
/// (`keys.revoke`), or the table header itself when the error is in one.
fn key_at(source: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let line_start = source[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = source[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(source.len());
    let line = source[line_start..line_end].trim();
    if let Some(header) = table_header(line) {
        return Some(header);
    }
    let (key, _) = line.split_once('=')?;
    let key = clean_key(key);
    if key.is_empty() {
        return None;
    }
    let table = source[..line_start]
        .lines()
        .rev()
        .find_map(|l| table_header(l.trim()));
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key,
    })
}

fn table_header(line: &str) -> Option<String> {
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.split_once("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.split_once(']')))?
        .0;
    let inner = clean_key(inner);
    (!inner.is_empty()).then_some(inner)
}

fn clean_key(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Settings> {
        Settings::parse(Path::new("/cfg/config.toml"), text)
    }

    #[test]
    fn reads_server_and_tolerates_console_tables() {
        let s = parse(
            "server = \"localhost:8420\"\ntheme = \"light\"\n[keys]\nrevoke = \"X\"\n[colors]\na = 1\n",
        )
        .unwrap();
        assert_eq!(s.server.as_deref(), Some("http://localhost:8420/"));
        assert_eq!(parse("").unwrap(), Settings::default());
        assert_eq!(parse("[keys]\nq = \"quit\"\n").unwrap().server, None);
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let err = parse("theme = \"x\"\nserver = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/cfg/config.toml:2:"), "{err}");
        assert!(err.contains("key `server`"), "{err}");
        assert!(err.contains("string"), "{err}");
    }

    #[test]
    fn syntax_error_names_line_and_qualified_key() {
        let err = parse("server = \"http://a\"\n[keys]\nrevoke = \"X\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/cfg/config.toml:3:"), "{err}");
        assert!(err.contains("key `keys.revoke`"), "{err}");
    }

    #[test]
    fn bad_url_names_the_key() {
        let err = parse("\n\nserver = \"ftp://x\"\n").unwrap_err().to_string();
        assert!(
            err.starts_with("/cfg/config.toml:3:10: key `server`"),
            "{err}"
        );
        assert!(err.contains("http://"), "{err}");
    }

    #[test]
    fn remember_server_prepends_only_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        assert!(remember_server(&path, "127.0.0.1:9").unwrap());
        assert_eq!(
            Settings::load(&path).unwrap().server.as_deref(),
            Some("http://127.0.0.1:9/")
        );
        assert!(!remember_server(&path, "http://other:1").unwrap());

        let path2 = dir.path().join("c2.toml");
        std::fs::write(&path2, "[keys]\nq = \"quit\"\n").unwrap();
        assert!(remember_server(&path2, "http://h:1").unwrap());
        let text = std::fs::read_to_string(&path2).unwrap();
        assert!(text.ends_with("[keys]\nq = \"quit\"\n"), "{text}");
        assert_eq!(
            Settings::load(&path2).unwrap().server.as_deref(),
            Some("http://h:1/")
        );
    }

    #[test]
    fn paths_layout() {
        let p = Paths::under("/c/steward".into(), "/k/steward".into());
        assert_eq!(p.config_file, Path::new("/c/steward/config.toml"));
        assert_eq!(p.themes_dir, Path::new("/c/steward/themes"));
        assert_eq!(p.credentials_file, Path::new("/c/steward/credentials.toml"));
        assert_eq!(p.cache_dir, Path::new("/k/steward"));
    }
}
