//! `steward` and `steward tui`: the console against the configured registry.
//!
//! The registry comes from `--server`, `STEWARD_SERVER` or `config.toml`; the token from
//! `STEWARD_TOKEN`, the OS keyring or the 0600 fallback file (see `client::credentials`).

use anyhow::anyhow;

use crate::client::config::Paths;
use crate::client::credentials::{self, TOKEN_ENV};
use crate::client::parse_server_url;
use crate::console::{self, Options};

pub async fn run(server_flag: Option<&str>) -> anyhow::Result<()> {
    let paths = Paths::resolve()?;
    let server = match server_flag.filter(|s| !s.trim().is_empty()) {
        Some(flag) => parse_server_url(flag)?.to_string(),
        None => paths.resolve_server(None).map_err(|e| {
            anyhow!("{e:#}\n(to try Steward without a registry, run `steward demo`)")
        })?,
    };
    let token =
        match credentials::from_env()? {
            Some(secret) => secret,
            None => credentials::load(&paths, &server)?
                .ok_or_else(|| {
                    anyhow!(
                        "no API token for {server}: run `steward login --server {server}` to store \
                     one, or set {TOKEN_ENV}"
                    )
                })?
                .secret,
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
