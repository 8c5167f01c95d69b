//! `steward` and `steward tui`: the console against the configured registry.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::client::Secret;
use crate::console::{self, Options};

/// Where the console keeps its files.
pub struct ConsolePaths {
    pub config_dir: PathBuf,
    pub cache_dir: PathBuf,
}

/// `XDG_CONFIG_HOME`/`XDG_CACHE_HOME` when set (absolute), else the platform's usual places.
pub fn paths() -> anyhow::Result<ConsolePaths> {
    let xdg = |var: &str| -> anyhow::Result<Option<PathBuf>> {
        match std::env::var_os(var).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => {
                let p = PathBuf::from(v);
                if !p.is_absolute() {
                    bail!("{var} must be an absolute path, not {}", p.display());
                }
                Ok(Some(p.join("steward")))
            }
        }
    };
    let project = || {
        directories::ProjectDirs::from("", "", "steward")
            .context("cannot find a home directory; set XDG_CONFIG_HOME and XDG_CACHE_HOME")
    };
    let config_dir = match xdg("XDG_CONFIG_HOME")? {
        Some(p) => p,
        None => project()?.config_dir().to_path_buf(),
    };
    let cache_dir = match xdg("XDG_CACHE_HOME")? {
        Some(p) => p,
        None => project()?.cache_dir().to_path_buf(),
    };
    Ok(ConsolePaths {
        config_dir,
        cache_dir,
    })
}

pub async fn run(server_flag: Option<String>) -> anyhow::Result<()> {
    let paths = paths()?;
    let Some(server) = server_flag.filter(|s| !s.trim().is_empty()) else {
        bail!(
            "no registry given: pass --server URL or set STEWARD_SERVER \
             (to try Steward without one, run `steward demo`)"
        );
    };
    let token = match std::env::var("STEWARD_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Secret::new(t.trim()),
        _ => bail!("no API token: set STEWARD_TOKEN (or sign in with `steward login`)"),
    };
    console::run(Options {
        server,
        token,
        config_dir: paths.config_dir,
        cache_dir: Some(paths.cache_dir),
        no_color: Options::no_color_from_env(),
    })
    .await
}
