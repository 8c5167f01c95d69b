//! `steward paths`: every path Steward uses, and where the registry URL comes from.

use std::path::Path;

use super::output::Out;
use crate::client::config::{APP, Paths, Settings};
use crate::client::credentials::{NO_KEYRING_ENV, TOKEN_ENV};
use crate::client::parse_server_url;

pub fn run(server_flag: Option<&str>) -> anyhow::Result<()> {
    let paths = Paths::resolve()?;
    let mut out = Out::new();
    let rows: [(&str, &Path); 5] = [
        ("config dir", &paths.config_dir),
        ("config file", &paths.config_file),
        ("themes dir", &paths.themes_dir),
        ("cache dir", &paths.cache_dir),
        ("credentials file", &paths.credentials_file),
    ];
    for (label, path) in rows {
        let note = if path.exists() {
            ""
        } else {
            "  (not there yet)"
        };
        out.line(format_args!("{label:<18}{}{note}", path.display()))?;
    }
    let keyring = if std::env::var_os(NO_KEYRING_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        format!("not used ({NO_KEYRING_ENV} is set)")
    } else {
        format!("service `{APP}`, one entry per registry URL")
    };
    out.line(format_args!("{:<18}{keyring}", "keyring"))?;
    // `paths` must work even when config.toml is broken: it is how one finds the file.
    let server = match server_flag.filter(|s| !s.trim().is_empty()) {
        Some(flag) => match parse_server_url(flag) {
            Ok(url) => format!("{url}  (from --server or STEWARD_SERVER)"),
            Err(e) => format!("unusable: {e}"),
        },
        None => match Settings::load(&paths.config_file).map(|s| s.server) {
            Ok(Some(server)) => format!("{server}  (from config file)"),
            Ok(None) => "not configured (use --server, STEWARD_SERVER or the config file)".into(),
            Err(e) => format!("unreadable: {e:#}"),
        },
    };
    out.line(format_args!("{:<18}{server}", "server"))?;
    if std::env::var_os(TOKEN_ENV).is_some_and(|v| !v.is_empty()) {
        out.line(format_args!(
            "{:<18}from {TOKEN_ENV} (overrides stored tokens)",
            "token"
        ))?;
    }
    out.flush()?;
    Ok(())
}
