//! The shared first step of every command that talks to a registry: find which registry and
//! which API token, and build the client; then turn the registry's refusals into messages that
//! say what to do.

use anyhow::anyhow;

use crate::client::config::Paths;
use crate::client::credentials::{self, Loaded, Source, TOKEN_ENV};
use crate::client::{Client, ClientError, ClientResult, parse_server_url};

/// A client for one registry, with where its token came from (for messages).
pub struct Registry {
    pub client: Client,
    /// The registry URL, normalised.
    pub server: String,
    pub source: Source,
}

impl Registry {
    /// Resolves the registry (`--server`, `STEWARD_SERVER`, `config.toml`) and its token
    /// (`STEWARD_TOKEN`, the keyring, the fallback file).
    pub fn connect(server_flag: Option<&str>) -> anyhow::Result<Registry> {
        // Paths need a home directory; a script that passes both the server and the token in
        // the environment should not, so they are resolved only when needed.
        let paths = Paths::resolve();
        let server = match server_flag.filter(|s| !s.trim().is_empty()) {
            Some(flag) => parse_server_url(flag)?.to_string(),
            None => paths_or_err(&paths)?.resolve_server(None)?,
        };
        let loaded = match credentials::from_env()? {
            Some(secret) => Loaded {
                secret,
                source: Source::Env,
            },
            None => credentials::load(paths_or_err(&paths)?, &server)?.ok_or_else(|| {
                anyhow!(
                    "no API token for {server}: run `steward login --server {server}` \
                     to store one, or set {TOKEN_ENV}"
                )
            })?,
        };
        let client = Client::new(&server, Some(loaded.secret))?;
        Ok(Registry {
            client,
            server,
            source: loaded.source,
        })
    }

    /// The answer of a call, or an error that says what to do about it.
    pub fn check<T>(&self, result: ClientResult<T>) -> anyhow::Result<T> {
        result.map_err(|e| self.explain(e))
    }

    fn explain(&self, e: ClientError) -> anyhow::Error {
        match &e {
            ClientError::Api {
                status: 401,
                message,
                ..
            } => anyhow!(
                "{message} (HTTP 401): the registry refused the API token from {}; \
                 run `steward login --server {}` to store a new one",
                self.source,
                self.server
            ),
            _ => anyhow::Error::from(e),
        }
    }
}

fn paths_or_err(paths: &anyhow::Result<Paths>) -> anyhow::Result<&Paths> {
    paths.as_ref().map_err(|e| anyhow!("{e:#}"))
}
