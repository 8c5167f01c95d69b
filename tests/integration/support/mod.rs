//! Shared harness for the integration tests: a real registry over a real SQLite file.
//!
//! Use it from a test file with `mod support;`. Two ways to get a registry:
//!
//! - [`Launch`] is how every in-process registry of these tests starts: a store over a SQLite
//!   file (new in a tempdir, or one a test prepared), on a clock the test can move
//!   ([`Clock::offset`]: real time, moved ahead with `clock.advance(…)` instead of sleeping for
//!   an expiry), the first admin, the test catalogue, and the server's settings (guards, token
//!   service, signals, behaviour). Test files with their own helpers wrap its [`Served`].
//! - [`Registry::start`] runs the registry in-process (`Server::bind` on 127.0.0.1:0 + `serve` on a
//!   tokio task) over a fresh SQLite file in a tempdir, with five people already made through
//!   the API, each with their own API token: `admin`, `responder`, `auditor`, and two plain
//!   owners without roles, `owner` and `other`.
//! - [`Binary`] runs the real `steward server` executable (for crash and start-up tests).
//!
//! Raw HTTP goes through [`Registry::call`] / [`call`] and returns a [`Reply`] (status + JSON),
//! so that tests see exactly what a client would see, error bodies included. [`Registry::sql`]
//! opens the database file directly, for inspecting or deliberately damaging it.
//!
//! Every wait here is bounded; nothing asserts on time.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use steward::registry::clock::Clock;
use steward::registry::store::prelude::*;
use steward::registry::store::sql;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::store::{SeedAgent, SeedBatch, SeedCredential, SqliteStore};
use tempfile::TempDir;

mod catalogue;
pub mod exchange;
pub mod postgres;
pub mod pty;
pub use catalogue::test_catalogue;

/// How long any one HTTP call may take before the test fails (a bound, not an assertion).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A person known to the registry and their API token.
#[derive(Clone, Debug)]
pub struct Member {
    pub email: String,
    pub token: String,
}

/// An HTTP answer: the status and the body parsed as JSON (`Value::Null` when empty, a JSON
/// string holding the text when the body is not JSON).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The `error` code of a JSON error body, or "" when there is none.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Panics with the whole reply unless the status is `want`; returns the body.
    #[track_caller]
    pub fn expect(&self, want: u16) -> &Value {
        assert_eq!(self.status, want, "unexpected reply: {self:?}");
        &self.body
    }
}

/// A loopback HTTP client that never uses a proxy and never waits forever.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(CALL_TIMEOUT)
        .build()
        .expect("build an HTTP client")
}

/// One raw call: `method` and `path` (already URL-encoded, starting with `/`), an optional bearer
/// token and an optional JSON body (sent with `Content-Type: application/json`).
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(b).expect("serialise a JSON body"));
    let content_type = body.map(|_| "application/json");
    call_raw(http, base, method, path, token, content_type, bytes).await
}

/// Like [`call`] with full control of the body bytes and the Content-Type (none when `None`).
pub async fn call_raw(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = http.request(method.clone(), format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(ct) = content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, ct);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no answer from the registry: {e}"));
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: unreadable body: {e}"));
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply { status, body }
}

/// A registry running in this process over a SQLite file in its own tempdir.
pub struct Registry {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    /// The SQLite file.
    pub db: PathBuf,
    /// The same store the server uses (for seeding records the API cannot create).
    pub store: Arc<SqliteStore>,
    pub admin: Member,
    pub responder: Member,
    pub auditor: Member,
    /// A person with no role who owns agents.
    pub owner: Member,
    /// Another person with no role (owns nothing unless a test gives them agents).
    pub other: Member,
    pub http: reqwest::Client,
    /// The registry's clock (an offset clock: real time, moved ahead with `advance`).
    pub clock: Clock,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry over a new database and makes the five standard people.
    pub async fn start() -> Registry {
        Registry::launch(Launch::new()).await
    }

    /// Like [`Registry::start`], with the perimeter's guards set (e.g. a failed-auth budget
    /// large enough for a test that fails to authenticate hundreds of times on purpose).
    pub async fn start_guarded(
        guards: Option<steward::registry::http::guards::GuardSettings>,
    ) -> Registry {
        let mut launch = Launch::new();
        launch.guards = guards;
        Registry::launch(launch).await
    }

    /// Starts a registry as `launch` says and makes the five standard people.
    pub async fn launch(launch: Launch) -> Registry {
        let served = launch.serve().await;
        let mut registry = Registry {
            url: served.url,
            db: served.db,
            store: served.store,
            admin: served.admin,
            responder: placeholder(),
            auditor: placeholder(),
            owner: placeholder(),
            other: placeholder(),
            http: served.http,
            clock: served.clock,
            shutdown: served.shutdown,
            server: served.task,
            dir: served.dir,
        };
        registry.responder = registry
            .add_person("responder@example.com", &["responder"])
            .await;
        registry.auditor = registry
            .add_person("auditor@example.com", &["auditor"])
            .await;
        registry.owner = registry.add_person("owner@example.com", &[]).await;
        registry.other = registry.add_person("other@example.com", &[]).await;
        registry
    }

    /// The tempdir holding the database (and anything else a test wants to put beside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// One raw call; see [`call`].
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        call(&self.http, &self.url, method, path, token, body).await
    }

    /// One raw call with full control of the body; see [`call_raw`].
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        call_raw(
            &self.http,
            &self.url,
            method,
            path,
            token,
            content_type,
            body,
        )
        .await
    }

    /// GET as `who`.
    pub async fn get(&self, path: &str, who: &Member) -> Reply {
        self.call("GET", path, Some(&who.token), None).await
    }

    /// POST a JSON body as `who`.
    pub async fn post(&self, path: &str, who: &Member, body: Value) -> Reply {
        self.call("POST", path, Some(&who.token), Some(&body)).await
    }

    /// Creates a person with these roles (admin, responder, auditor) through the API, as the
    /// admin, and gives them an API token the way a new person gets one: the admin issues an
    /// invitation, and the person redeems it for their own token.
    pub async fn add_person(&self, email: &str, roles: &[&str]) -> Member {
        self.post(
            "/v1/people",
            &self.admin,
            json!({"email": email, "display_name": email.split('@').next(), "roles": roles}),
        )
        .await
        .expect(201);
        let invitation = self.invite(email).await;
        Member {
            email: email.to_string(),
            token: self.redeem(&invitation).await,
        }
    }

    /// Issues an invitation for `email` as the admin; returns the invitation token.
    pub async fn invite(&self, email: &str) -> String {
        let issued = self
            .post(
                &format!("/v1/people/{email}/tokens"),
                &self.admin,
                json!({"name": "test"}),
            )
            .await;
        let body = issued.expect(201);
        assert_eq!(
            body["kind"], "invitation",
            "an admin-issued token is an invitation"
        );
        body["token"]
            .as_str()
            .expect("an issued invitation")
            .to_string()
    }

    /// Redeems an invitation (`POST /v1/me/tokens` with it); returns the new API token.
    pub async fn redeem(&self, invitation: &str) -> String {
        self.call(
            "POST",
            "/v1/me/tokens",
            Some(invitation),
            Some(&json!({"name": "test"})),
        )
        .await
        .expect(201)["token"]
            .as_str()
            .expect("a redeemed token")
            .to_string()
    }

    /// Registers an agent as the admin with the given owner (None: unowned) and scopes;
    /// returns its id.
    pub async fn register(&self, name: &str, owner: Option<&str>, scopes: &[&str]) -> String {
        self.register_with(json!({"name": name, "owner": owner, "scopes": scopes}))
            .await
    }

    /// Registers an agent as the admin from a full request body; returns its id.
    pub async fn register_with(&self, body: Value) -> String {
        let reply = self.post("/v1/agents", &self.admin, body).await;
        reply.expect(201)["id"]
            .as_str()
            .expect("an agent id")
            .to_string()
    }

    /// An agent as the admin sees it (`GET /v1/agents/{id}`), which must exist.
    pub async fn agent(&self, id: &str) -> Value {
        self.get(&format!("/v1/agents/{id}"), &self.admin)
            .await
            .expect(200)
            .clone()
    }

    /// Stores an agent with two enabled credentials (a public key and a static secret), which the
    /// API has no route to create, through the store's bulk loader. Returns its id.
    pub fn seed_agent_with_credentials(
        &self,
        name: &str,
        owner: Option<&str>,
        parent_id: Option<&str>,
    ) -> String {
        let id = format!("ag_seed_{:016x}", rand::random::<u64>());
        let now = Utc::now();
        let agent: steward::model::Agent = serde_json::from_value(json!({
            "id": id, "name": name, "description": "seeded with credentials",
            "kind": if parent_id.is_some() { "sub-agent" } else { "agent" },
            "parent_id": parent_id, "owner": owner, "owner_name": null,
            "team": "seeded", "environment": "production", "status": "active",
            "source": "registered", "created_at": now, "last_seen_at": null,
            "static_secret": false, "flags": [], "change_seq": 0,
            "grants": [{"scope": "crm.orders:read", "granted_by": "system", "granted_at": now,
                        "expires_at": null, "justification": null, "last_used_at": null,
                        "last_certified_at": null}],
        }))
        .expect("a seed agent");
        let credential = |suffix: &str, kind: &str| SeedCredential {
            credential: serde_json::from_value(json!({
                "id": format!("cred_{id}_{suffix}"), "kind": kind, "label": suffix,
                "fingerprint": format!("SHA256:{suffix}"), "created_at": now,
                "disabled_at": null, "last_used_at": null,
            }))
            .expect("a seed credential"),
            material: format!("material-{suffix}"),
        };
        self.store
            .seed(&SeedBatch {
                people: Vec::new(),
                agents: vec![SeedAgent {
                    agent,
                    credentials: vec![
                        credential("key", "public-key"),
                        credential("secret", "static-secret"),
                    ],
                }],
            })
            .expect("seed an agent with credentials");
        id
    }

    /// A new read-write connection to the database file, beside the server's own.
    pub fn sql(&self) -> Sql {
        Sql::of(&self.store, &self.db)
    }

    /// The number of stored audit events.
    pub fn audit_count(&self) -> i64 {
        self.sql()
            .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
            .expect("count audit events")
    }

    /// Every stored row of every table, as text, for checking that a refused call changed nothing.
    pub fn snapshot(&self) -> String {
        snapshot(&self.sql())
    }

    /// The snapshot once the background work of the previous calls has settled (two reads 10 ms
    /// apart agree; at most 2 s): a cell's setup (a revoke, say) has consequences committed
    /// after its reply, and they must not be counted against the call made next.
    pub async fn settled_snapshot(&self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut last = self.snapshot();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let now = self.snapshot();
            if now == last || std::time::Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// Stops the server gracefully and waits for it; the database file stays in the tempdir,
    /// which lives as long as the returned [`Stopped`].
    pub async fn stop(mut self) -> Stopped {
        drop(self.http);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(CALL_TIMEOUT, server)
                .await
                .expect("the server stops within the bound")
                .expect("the server task did not panic")
                .expect("the server stopped without an error");
        }
        drop(self.store);
        Stopped {
            db: self.db,
            dir: self.dir,
        }
    }
}

/// What is left of a stopped [`Registry`]: its database file.
pub struct Stopped {
    pub db: PathBuf,
    pub dir: TempDir,
}

fn placeholder() -> Member {
    Member {
        email: String::new(),
        token: String::new(),
    }
}

/// How to start an in-process registry (see the module documentation). `Launch::new()` is a
/// new database in a new tempdir, an offset clock, the first admin `admin@example.com`, the test
/// catalogue, failure limits lifted and the server's default settings otherwise.
pub struct Launch {
    /// The clock the registry runs on (default: [`Clock::offset`]).
    pub clock: Clock,
    /// Import [`test_catalogue`] (default true).
    pub catalogue: bool,
    /// The perimeter's failure budgets (default: lifted, see [`serve_guarded`]).
    pub guards: Option<steward::registry::http::guards::GuardSettings>,
    pub tokens: Option<steward::registry::tokens::TokenSettings>,
    pub signals: Option<steward::registry::signals::SignalSettings>,
    /// Behaviour settings; when set, the engine starts before serving and [`Served`] holds it.
    pub behaviour: Option<steward::registry::behaviour::BehaviourSettings>,
    pub limits: Option<steward::registry::perimeter::ConnectionLimits>,
    /// The directory the database lives in (default: a new tempdir), and its file name.
    pub dir: Option<TempDir>,
    /// When set, the database already exists (a test or the demo prepared it): opened with
    /// `MustExist`, and neither an admin nor the catalogue is made.
    pub existing: Option<PathBuf>,
    /// The first admin's email (default `admin@example.com`).
    pub admin: String,
    /// A store the test opened and prepared (see [`Launch::prepared`]).
    pub prepared: Option<Arc<SqliteStore>>,
    /// A PostgreSQL database to serve again (a restart on PostgreSQL; see [`postgres`]).
    pub database: Option<String>,
    /// Stay on a SQLite file even when the suite runs on PostgreSQL (tests of the file itself).
    pub sqlite_only: bool,
}

impl Default for Launch {
    fn default() -> Self {
        Launch::new()
    }
}

impl Launch {
    pub fn new() -> Launch {
        Launch {
            clock: Clock::offset(),
            catalogue: true,
            guards: None,
            tokens: None,
            signals: None,
            behaviour: None,
            limits: None,
            dir: None,
            existing: None,
            admin: "admin@example.com".into(),
            prepared: None,
            database: None,
            sqlite_only: false,
        }
    }

    /// Keeps this registry on a SQLite file when the suite runs on PostgreSQL: for tests of
    /// the file (its SQL, backups, damage), not of the API.
    pub fn sqlite_only(mut self) -> Launch {
        self.sqlite_only = true;
        self
    }

    /// Serves a store the test opened and filled (e.g. the demo seed): no admin or catalogue
    /// is made, and the clock is the store's. Give its tempdir with [`Launch::in_dir`] to keep
    /// it as long as the server.
    pub fn prepared(store: Arc<SqliteStore>) -> Launch {
        Launch {
            clock: store.clock().clone(),
            catalogue: false,
            prepared: Some(store),
            ..Launch::new()
        }
    }

    /// Serves the database file `db`, which must exist (no admin or catalogue is made).
    pub fn existing(db: &Path) -> Launch {
        Launch {
            existing: Some(db.to_path_buf()),
            catalogue: false,
            ..Launch::new()
        }
    }

    pub fn clock(mut self, clock: Clock) -> Launch {
        self.clock = clock;
        self
    }

    pub fn guards(mut self, g: steward::registry::http::guards::GuardSettings) -> Launch {
        self.guards = Some(g);
        self
    }

    pub fn tokens(mut self, t: steward::registry::tokens::TokenSettings) -> Launch {
        self.tokens = Some(t);
        self
    }

    pub fn signals(mut self, s: steward::registry::signals::SignalSettings) -> Launch {
        self.signals = Some(s);
        self
    }

    pub fn behaviour(mut self, b: steward::registry::behaviour::BehaviourSettings) -> Launch {
        self.behaviour = Some(b);
        self
    }

    pub fn limits(mut self, l: steward::registry::perimeter::ConnectionLimits) -> Launch {
        self.limits = Some(l);
        self
    }

    /// The database goes in `dir` (kept by the returned [`Served`]).
    pub fn in_dir(mut self, dir: TempDir) -> Launch {
        self.dir = Some(dir);
        self
    }

    pub fn without_catalogue(mut self) -> Launch {
        self.catalogue = false;
        self
    }

    /// Binds 127.0.0.1:0 and serves on a task until [`Served::stop`] (or the drop of `Served`).
    pub async fn serve(self) -> Served {
        let Launch {
            clock,
            catalogue,
            guards,
            tokens,
            signals,
            behaviour,
            limits,
            dir,
            existing,
            admin,
            prepared,
            database,
            sqlite_only,
        } = self;
        // The registry's errors go to the test's output (shown when it fails).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("STEWARD_TEST_LOG").unwrap_or_else(|_| "error".to_string()),
            )
            .with_test_writer()
            .try_init();
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().expect("create a tempdir"));
        // On PostgreSQL (STEWARD_TEST_POSTGRES), a new store is a new database; a restart serves
        // the same one again.
        let (database, fresh) = match (&prepared, &existing, database) {
            (None, None, Some(url)) => (Some(url), false),
            (None, None, None) if !sqlite_only => match postgres::fresh_database() {
                Some(url) => (Some(url), true),
                None => (None, false),
            },
            _ => (None, false),
        };
        let (db, mode) = match (&prepared, existing) {
            (Some(store), _) => (
                store
                    .sqlite_path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.path().join("on-postgres")),
                OpenMode::MustExist,
            ),
            (None, Some(db)) => (db, OpenMode::MustExist),
            // On PostgreSQL `db` is the database's URL: `open_store(&db)` and `open_sql(&db)` reach
            // the same database as the server, as a second connection to a SQLite file would.
            (None, None) if database.is_some() && !fresh => (
                PathBuf::from(database.clone().unwrap_or_default()),
                OpenMode::MustExist,
            ),
            (None, None) => match &database {
                Some(url) => (PathBuf::from(url), OpenMode::CreateIfMissing),
                None => (dir.path().join("steward.db"), OpenMode::CreateIfMissing),
            },
        };
        let store = match (prepared, &database) {
            (Some(store), _) => store,
            (None, Some(url)) => Arc::new(
                SqliteStore::connect_postgres(url, clock.clone())
                    .expect("open the store on PostgreSQL"),
            ),
            (None, None) => Arc::new(
                SqliteStore::open_with_clock(&db, mode, clock.clone()).expect("open the store"),
            ),
        };
        let admin = if mode == OpenMode::CreateIfMissing {
            let (_, issued) =
                steward::registry::bootstrap_admin(store.as_ref(), &admin, "Ada Admin", "test")
                    .expect("bootstrap the first admin");
            Member {
                email: admin,
                token: issued.token,
            }
        } else {
            placeholder()
        };
        if catalogue {
            store
                .import_catalogue(
                    &steward::model::Actor::system("test-harness"),
                    &test_catalogue(),
                )
                .expect("import the test catalogue");
        }
        let dyn_store: Arc<dyn Store> = store.clone();
        // Unless a test names its own budgets, the failure limits are lifted: the authorisation
        // matrix sends hundreds of bad tokens from one address on purpose.
        // tests/integration/perimeter.rs tests the limits themselves.
        let guards = guards.unwrap_or(steward::registry::http::guards::GuardSettings {
            source_failures_per_minute: 1_000_000,
            credential_failures_per_minute: 1_000_000,
            ..Default::default()
        });
        let mut server = steward::registry::Server::bind_with(
            "127.0.0.1:0",
            dyn_store,
            "test registry",
            &tokens.unwrap_or_default(),
        )
        .await
        .expect("bind a loopback port")
        .with_guards(guards);
        if let Some(s) = signals {
            server = server
                .with_signal_settings(s)
                .expect("start the signals transmitter");
        }
        if let Some(l) = limits {
            server = server.with_limits(l);
        }
        let behaviour = match behaviour {
            Some(b) => {
                server = server.with_behaviour(b);
                Some(server.start_behaviour())
            }
            None => None,
        };
        let url = format!("http://{}", server.local_addr());
        let tokens = server.tokens().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        Served {
            url,
            db,
            database,
            store,
            clock,
            admin,
            http: http_client(),
            behaviour,
            tokens,
            shutdown: Some(tx),
            task: Some(task),
            dir,
        }
    }
}

/// A registry [`Launch`] started: stopped when [`Served::stop`] is called or when dropped.
pub struct Served {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub db: PathBuf,
    /// The PostgreSQL database's URL when the suite runs there.
    pub database: Option<String>,
    pub store: Arc<SqliteStore>,
    pub clock: Clock,
    /// The first admin (empty for an existing database).
    pub admin: Member,
    pub http: reqwest::Client,
    /// The behaviour engine, when the launch gave behaviour settings.
    pub behaviour: Option<Arc<steward::registry::behaviour::Behaviour>>,
    pub tokens: Arc<steward::registry::tokens::TokenService>,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub dir: TempDir,
}

impl Served {
    /// The tempdir holding the database.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server gracefully and waits (bounded) for it to finish; returns the tempdir.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(CALL_TIMEOUT, task)
                .await
                .expect("the server stops within the bound")
                .expect("the server task did not panic")
                .expect("the server stopped without an error");
        }
        self.dir
    }

    /// Stops this server and serves the same database file again on a new port, as `launch`
    /// says (its clock, dir and database are replaced by this one's; no admin or catalogue is
    /// made): a restart.
    pub async fn restart_with(self, launch: Launch) -> Served {
        let clock = self.clock.clone();
        let db = self.db.clone();
        let database = self.database.clone();
        let store = Arc::downgrade(&self.store);
        let dir = self.stop().await;
        // The old server's background parts (the token writer's thread among them) let go of
        // their store once they have finished their last writes: wait (bounded) for that
        // instead of a fixed sleep, so that the new server reads everything they wrote.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.strong_count() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Launch {
            clock,
            dir: Some(dir),
            existing: database.is_none().then_some(db),
            catalogue: false,
            prepared: None,
            database,
            ..launch
        }
        .serve()
        .await
    }
}

/// Serves an existing database (one a program under test wrote, e.g. the demo's) and makes
/// `checker@example.com` an admin of it: how a test asks the registry, through its API, whether
/// the program's writes landed. Returns the server (stopped on drop) and the checker's client.
pub async fn checker(db: &Path) -> (Served, steward::client::Client) {
    let served = Launch::existing(db).serve().await;
    let (_, token) = steward::registry::bootstrap_admin(
        served.store.as_ref(),
        "checker@example.com",
        "Checker",
        "e2e",
    )
    .expect("make the checker an admin");
    let client =
        steward::client::Client::new(&served.url, Some(steward::client::Secret::new(token.token)))
            .expect("a client for the checker");
    (served, client)
}

/// Binds 127.0.0.1:0 and serves `store` on a task until the returned sender fires (or drops).
pub async fn serve(
    store: Arc<SqliteStore>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    serve_guarded(store, None).await
}

/// [`serve`] with the perimeter's guards set (lifted when `None`; see [`Launch::serve`]).
pub async fn serve_guarded(
    store: Arc<SqliteStore>,
    guards: Option<steward::registry::http::guards::GuardSettings>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut launch = Launch::prepared(store);
    launch.guards = guards;
    let mut served = launch.serve().await;
    (
        served.url.clone(),
        served.shutdown.take().expect("a running server"),
        served.task.take().expect("a running server"),
    )
}

/// A read-write connection to a database file with a busy timeout.
/// SQL to `store`'s database, whichever engine it runs on.
pub fn store_sql(store: &Arc<SqliteStore>) -> Sql {
    match store.sqlite_path() {
        Some(path) => Sql::File(open_sql(path)),
        None => Sql::Store(store.clone()),
    }
}

/// Whether a test's `db` is a PostgreSQL database's URL (the suite on PostgreSQL).
pub fn is_postgres_url(db: &Path) -> bool {
    db.to_string_lossy().starts_with("postgres")
}

/// SQL to the database at `db`: a SQLite file, or (its URL) a PostgreSQL database.
pub fn sql_at(db: &Path) -> Sql {
    if is_postgres_url(db) {
        Sql::Store(Arc::new(
            SqliteStore::connect_postgres(&db.to_string_lossy(), Clock::system())
                .expect("connect to the test database"),
        ))
    } else {
        Sql::File(open_sql(db))
    }
}

pub fn open_sql(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open the database file");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("set a busy timeout");
    conn
}

/// Every row of every table, ordered, as text.
/// The tables whose rows differ between two [`snapshot`]s, for a failure message.
pub fn changed_tables(before: &str, after: &str) -> Vec<String> {
    fn tables(s: &str) -> std::collections::BTreeMap<&str, Vec<&str>> {
        let mut out = std::collections::BTreeMap::new();
        let mut current = "";
        for line in s.lines() {
            match line.strip_prefix("== ") {
                Some(name) => current = name,
                None => out.entry(current).or_insert_with(Vec::new).push(line),
            }
        }
        out
    }
    let (b, a) = (tables(before), tables(after));
    let mut names: Vec<String> = b
        .keys()
        .chain(a.keys())
        .filter(|t| b.get(*t) != a.get(*t))
        .map(|t| t.to_string())
        .collect();
    names.dedup();
    names
}

/// SQL straight to a registry's database, on either engine: its SQLite file, or (on
/// PostgreSQL) through the store's own connections. For inspecting or deliberately damaging
/// stored rows; the same `query_row`/`execute` shapes as rusqlite.
pub enum Sql {
    File(rusqlite::Connection),
    Store(Arc<SqliteStore>),
}

impl Sql {
    /// The registry's database: `store`'s PostgreSQL database, or the SQLite file `db`.
    pub fn of(store: &Arc<SqliteStore>, db: &Path) -> Sql {
        if store.is_postgres() || is_postgres_url(db) {
            Sql::Store(store.clone())
        } else {
            Sql::File(open_sql(db))
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&sql::Tx<'_>) -> sql::Result<T>) -> sql::Result<T> {
        match self {
            Sql::File(conn) => f(&sql::Tx::sqlite(conn)),
            Sql::Store(store) => store.raw_sql(f),
        }
    }

    pub fn query_row<T>(
        &self,
        query: &str,
        params: impl sql::Params,
        f: impl FnOnce(&sql::Row<'_>) -> sql::Result<T>,
    ) -> sql::Result<T> {
        self.with(|tx| tx.query_row(query, params, f))
    }

    pub fn execute(&self, query: &str, params: impl sql::Params) -> sql::Result<usize> {
        self.with(|tx| tx.execute(query, params))
    }

    pub fn execute_batch(&self, query: &str) -> sql::Result<()> {
        self.with(|tx| tx.execute_batch(query))
    }

    /// The first column of every row, as text.
    pub fn strings(&self, query: &str, params: impl sql::Params) -> Vec<String> {
        self.with(|tx| {
            tx.prepare(query)?
                .query_map(params, |r| r.get(0))?
                .collect::<sql::Result<Vec<String>>>()
        })
        .expect("read strings")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Sql::Store(_))
    }
}

pub fn snapshot(conn: &Sql) -> String {
    conn.with(|tx| Ok(snapshot_in(tx)))
        .expect("take a snapshot")
}

fn snapshot_in(conn: &sql::Tx<'_>) -> String {
    let list = if conn.is_postgres() {
        "SELECT table_name FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
           AND table_name NOT IN ('ssf_outbox', 'ssf_queue', 'schema_migrations')
         ORDER BY table_name"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT IN ('ssf_outbox', 'ssf_queue')
         ORDER BY name"
    };
    let tables: Vec<String> = conn
        // The Shared Signals transmitter's delivery tables (`ssf_outbox`, `ssf_queue`) are left
        // out: its background task fans out and delivers after a change commits, so they change
        // between calls by design. Their outbox rows are written only with an audit event,
        // which is counted. Stream configurations and subjects (`ssf_streams`, `ssf_subjects`)
        // are compared like any table, less the delivery-health columns the background task
        // keeps (see below).
        .prepare(list)
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<sql::Result<Vec<String>>>()
        })
        .expect("list tables");
    let mut out = String::new();
    for table in tables {
        // The activity record logs every attempt, refused ones included, and is written
        // asynchronously by the behaviour engine: a log of what was tried, not state a call
        // changes (tests/integration/behaviour.rs checks it).
        if table.starts_with("activity_") {
            continue;
        }
        out.push_str(&format!("== {table}\n"));
        // When an API token was last used is a usage note, not a change a call makes.
        let columns = if table == "api_tokens" {
            "id, person_id, token_hash, name, created_at, expires_at, revoked_at, kind, \
             parent_id, redeemed_at"
        } else if table == "ssf_streams" {
            // Delivery health (failures, counts, last error, last delivery, last verification)
            // is kept by the delivery task; a pause after N failures also changes `status`,
            // and writes an audit event.
            "id, receiver, method, endpoint_url, authorization_header, events_requested, \
             description, status, reason, created_at, updated_at"
        } else {
            "*"
        };
        let mut stmt = conn
            .prepare(&format!("SELECT {columns} FROM \"{table}\" ORDER BY 1, 2"))
            .expect("select a table");
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("query a table");
        while let Some(row) = rows.next().expect("read a row") {
            for i in 0..columns {
                let value: rusqlite::types::Value = row.get(i).expect("read a value");
                out.push_str(&format!("{value:?}|"));
            }
            out.push('\n');
        }
    }
    out
}

/// The real `steward` executable built for these tests.
pub fn steward_exe() -> &'static str {
    env!("CARGO_BIN_EXE_steward")
}

/// Runs `steward ARGS…` to completion (bounded by [`CALL_TIMEOUT`]) and returns its output.
pub fn run_steward(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(steward_exe())
        .args(args)
        .env_remove("STEWARD_SERVER")
        .env_remove("STEWARD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start steward");
    let deadline = std::time::Instant::now() + CALL_TIMEOUT;
    loop {
        if child.try_wait().expect("poll steward").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect steward's output");
            panic!(
                "steward {args:?} did not finish within {CALL_TIMEOUT:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect steward's output")
}

/// Creates the first admin in `db` with `steward server create-admin`; returns their token.
pub fn create_admin_with_binary(db: &Path, email: &str) -> Member {
    let out = run_steward(&[
        "server",
        "create-admin",
        "--db",
        db.to_str().expect("a UTF-8 path"),
        "--email",
        email,
        "--name",
        "Ada Admin",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "create-admin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("create-admin prints the token")
        .trim()
        .to_string();
    Member {
        email: email.to_string(),
        token,
    }
}

/// A running `steward server` process over a database file.
pub struct Binary {
    pub url: String,
    pub child: Child,
}

impl Binary {
    /// Starts `steward server --listen 127.0.0.1:0 --db DB` and waits (bounded) for its
    /// `listening on http://…` line. Its stderr is appended to `DB.stderr` beside the database.
    pub fn start(db: &Path) -> Binary {
        Binary::start_with(db, &[])
    }

    /// [`Binary::start`] with more arguments for `steward server`.
    pub fn start_with(db: &Path, args: &[&str]) -> Binary {
        let mut log = db.as_os_str().to_owned();
        log.push(".stderr");
        Binary::start_logged(db.as_os_str(), Path::new(&log), args)
    }

    /// [`Binary::start_with`] over any `--db` (a PostgreSQL URL too), its stderr appended to
    /// `log`.
    pub fn start_logged(db: &std::ffi::OsStr, log: &Path, args: &[&str]) -> Binary {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the server's stderr log");
        let mut child = Command::new(steward_exe())
            .args(["server", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(args)
            .env_remove("STEWARD_SERVER")
            .env_remove("STEWARD_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start steward server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line.clone());
            // Keep draining so that the server never writes into a closed pipe.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
            }
        });
        let line = match rx.recv_timeout(CALL_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("steward server printed nothing within {CALL_TIMEOUT:?}");
            }
        };
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line from steward server: {line:?}");
        };
        Binary {
            url: url.to_string(),
            child,
        }
    }

    /// Stops the registry the way an operator would (SIGTERM) and waits for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("the registry exits");
        assert!(exit.success(), "the registry stopped with {exit}");
    }

    /// Kills the process with SIGKILL (what `Child::kill` sends on unix) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL steward server");
        self.child.wait().expect("reap steward server");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        // A test that panics must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
