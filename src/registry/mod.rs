//! The identity registry: `steward server`.

pub mod behaviour;
pub mod clock;
pub mod demo;
pub mod demo_activity;
pub mod demo_catalogue;
pub mod demo_history;
pub mod demo_reviews;
pub mod demo_signals;
pub mod http;
pub mod logging;
pub mod perimeter;
pub mod policy;
pub mod reviews;
pub mod service;
pub mod signals;
pub mod store;
pub mod tokens;
pub mod witness;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::model::Actor;
use crate::model::api::{CreatePerson, IssueToken, IssuedToken};
use crate::model::{Person, Role};
use http::AppState;
use store::sqlite::OpenMode;
use store::{SqliteStore, Store, StoreError};

pub use store::sqlite::SCHEMA_VERSION;

/// Where `--db` points: a SQLite file (a path, or `sqlite:PATH`) or a PostgreSQL database
/// (`postgres://USER@HOST/DB`, shared by every replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Database {
    pub fn parse(db: &Path) -> Database {
        let text = db.to_string_lossy();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.into_owned())
        } else if let Some(path) = text.strip_prefix("sqlite:") {
            Database::Sqlite(path.into())
        } else {
            Database::Sqlite(db.to_path_buf())
        }
    }

    /// The SQLite file, or a clear refusal for what only a file can do (backups, restores).
    pub fn sqlite_file(db: &Path, what: &str) -> anyhow::Result<std::path::PathBuf> {
        match Database::parse(db) {
            Database::Sqlite(path) => Ok(path),
            Database::Postgres(url) => anyhow::bail!(
                "{what} works on a SQLite file; {} is a PostgreSQL database (use pg_dump and \
                 pg_restore there)",
                store::postgres::redact(&url)
            ),
        }
    }
}

/// Opens the store `--db` names (a SQLite file or a PostgreSQL URL), turning store errors
/// into readable ones.
pub fn open_store(db: &Path, mode: OpenMode) -> anyhow::Result<Arc<SqliteStore>> {
    let opened = match Database::parse(db) {
        Database::Sqlite(path) => SqliteStore::open(&path, mode),
        Database::Postgres(url) => SqliteStore::connect_postgres(&url, clock::Clock::system()),
    };
    opened.map(Arc::new).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A bound, not yet serving registry. Binding first lets callers learn the port (`:0`).
pub struct Server {
    listener: TcpListener,
    state: AppState,
    limits: perimeter::ConnectionLimits,
    behaviour: behaviour::BehaviourSettings,
}

impl Server {
    pub async fn bind(addr: &str, store: Arc<dyn Store>, name: &str) -> anyhow::Result<Server> {
        Server::bind_with(addr, store, name, &tokens::TokenSettings::default()).await
    }

    /// Binds with explicit token-service settings (issuer URL, token lifetimes).
    pub async fn bind_with(
        addr: &str,
        store: Arc<dyn Store>,
        name: &str,
        token_settings: &tokens::TokenSettings,
    ) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener
            .local_addr()
            .context("the listener has no address")?;
        if token_settings.issuer.is_none() && bound.ip().is_unspecified() {
            tracing::warn!(
                "listening on {bound} without --issuer: tokens will name http://{bound} as \
                 their issuer; pass --issuer with the registry's public URL"
            );
        }
        let tokens =
            tokens::TokenService::start(store.clone(), token_settings, &format!("http://{bound}"))
                .await?;
        let signals = signals::Signals::start(
            store.clone(),
            tokens.clone(),
            signals::SignalSettings::default(),
        )?;
        Ok(Server {
            listener,
            state: AppState {
                signals,
                store,
                server_name: Arc::from(name),
                tokens,
                guards: Arc::new(http::guards::Guards::new(
                    http::guards::GuardSettings::default(),
                )),
            },
            limits: perimeter::ConnectionLimits::default(),
            behaviour: behaviour::BehaviourSettings::default(),
        })
    }

    /// Replaces the connection limits (timeouts, connection cap).
    pub fn with_limits(mut self, limits: perimeter::ConnectionLimits) -> Server {
        self.limits = limits;
        self
    }

    /// Replaces the limits on failed authentication and large reads.
    pub fn with_guards(mut self, settings: http::guards::GuardSettings) -> Server {
        self.state.guards = Arc::new(http::guards::Guards::new(settings));
        self
    }

    /// Replaces the Shared Signals transmitter's settings (receiver networks, retries).
    pub fn with_signal_settings(
        mut self,
        settings: signals::SignalSettings,
    ) -> anyhow::Result<Server> {
        self.state.signals.stop();
        self.state.signals = signals::Signals::start(
            self.state.store.clone(),
            self.state.tokens.clone(),
            settings,
        )?;
        Ok(self)
    }

    /// The Shared Signals transmitter.
    pub fn signals(&self) -> &std::sync::Arc<signals::Signals> {
        &self.state.signals
    }

    /// Replaces the behaviour settings (detectors, retention, auto-suspend; see
    /// registry/behaviour). Takes effect when the engine starts.
    pub fn with_behaviour(mut self, settings: behaviour::BehaviourSettings) -> Server {
        self.behaviour = settings;
        self
    }

    /// Starts the behaviour engine now (it starts with `serve` otherwise) and returns it, so
    /// that an embedder (the demo) can feed it events before serving.
    pub fn start_behaviour(&self) -> Arc<behaviour::Behaviour> {
        if let Some(b) = self.state.tokens.behaviour() {
            return b.clone();
        }
        let b = behaviour::Behaviour::start(self.state.store.clone(), self.behaviour.clone());
        self.state.tokens.set_behaviour(b.clone());
        b
    }

    /// The token service (for embedding and benchmarks).
    pub fn tokens(&self) -> &Arc<tokens::TokenService> {
        &self.state.tokens
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.state.signals.launch();
        self.start_behaviour();
        let app = http::router(self.state);
        perimeter::serve(self.listener, app, self.limits, shutdown)
            .await
            .context("the server stopped with an error")
    }
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Creates a person with the admin role (or gives an existing person the role) and issues them
/// an API token. This is how the first admin of a new registry is made.
pub fn bootstrap_admin(
    store: &dyn Store,
    email: &str,
    name: &str,
    token_name: &str,
) -> anyhow::Result<(Person, IssuedToken)> {
    crate::model::text::check_email(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::model::text::check_line("name", name, 128).map_err(|e| anyhow::anyhow!("{e}"))?;
    let actor = Actor::system("steward-server-create-admin");
    let person = match store.person(email).map_err(err)? {
        Some(p) if p.has_role(Role::Admin) && p.active => p,
        Some(p) => {
            let mut roles = p.roles.clone();
            roles.push(Role::Admin);
            store
                .update_person(
                    &actor,
                    email,
                    &crate::model::api::UpdatePerson {
                        roles: Some(roles),
                        active: Some(true),
                        ..Default::default()
                    },
                )
                .map_err(err)?
        }
        None => store
            .create_person(
                &actor,
                &CreatePerson {
                    email: email.to_string(),
                    display_name: name.to_string(),
                    roles: vec![Role::Admin],
                    manager: None,
                    team: None,
                },
            )
            .map_err(err)?,
    };
    let token = service::api_tokens::issue_token_for(
        store,
        &actor,
        email,
        &IssueToken {
            name: Some(token_name.to_string()),
            ttl_days: Some(90),
        },
    )
    .map_err(err)?;
    Ok((person, token))
}

fn err(e: StoreError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
