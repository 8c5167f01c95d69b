//! Shared by the console tests: a real registry on a loopback port over a SQLite file in a
//! temporary folder, a small enterprise created through the API, and helpers to press keys.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use steward::client::{Client, Secret};
use steward::console::keymap::KeySpec;
use steward::console::{Action, Console, Options};
use steward::model::api::{CreatePerson, IssueToken, RegisterAgent, UpdatePerson};
use steward::model::{AgentKind, Role};
use steward::registry::store::prelude::*;
use steward::registry::store::sqlite::OpenMode;
use steward::registry::{self, Server};
use tempfile::TempDir;

use crate::support as test_scopes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Registry {
    pub dir: TempDir,
    pub db: PathBuf,
    pub url: String,
    pub admin_token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Registry {
    pub async fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("registry.db");
        let store = registry::open_store(&db, OpenMode::CreateIfMissing).unwrap();
        let (_, token) =
            registry::bootstrap_admin(store.as_ref(), "root@example.com", "Root Admin", "tests")
                .unwrap();
        steward::registry::store::CatalogueStore::import_catalogue(
            store.as_ref(),
            &steward::model::Actor::system("test"),
            &test_scopes::test_catalogue(),
        )
        .unwrap();
        let mut r = Registry {
            dir,
            db,
            url: String::new(),
            admin_token: token.token,
            stop: None,
            task: None,
        };
        r.serve(store).await;
        r
    }

    async fn serve(&mut self, store: Arc<dyn Store>) {
        let server = Server::bind("127.0.0.1:0", store, "test registry")
            .await
            .unwrap();
        self.url = format!("http://{}", server.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(server.serve(async {
            let _ = stopped.await;
        })));
    }

    /// Stops the registry; its port refuses connections afterwards.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Starts it again over the same database (on a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let store = registry::open_store(&self.db, OpenMode::MustExist).unwrap();
        self.serve(store).await;
    }

    pub fn admin(&self) -> Client {
        Client::new(&self.url, Some(Secret::new(self.admin_token.clone()))).unwrap()
    }

    pub async fn token_for(&self, email: &str) -> String {
        // An admin-issued token is an invitation; the person redeems it for their own.
        let invitation = self
            .admin()
            .issue_token_for(email, &IssueToken::default())
            .await
            .unwrap()
            .token;
        Client::new(&self.url, Some(Secret::new(invitation)))
            .unwrap()
            .issue_my_token(&IssueToken::default())
            .await
            .unwrap()
            .token
    }
}

/// The small enterprise the tests act on.
pub async fn populate(r: &Registry) {
    let c = r.admin();
    for (email, name, roles, team) in [
        ("grace@example.com", "Grace Hopper", vec![], "payments"),
        ("alan@example.com", "Alan Turing", vec![], "research"),
        ("ada@example.com", "Ada Lovelace", vec![], "payments"),
        (
            "rita@example.com",
            "Rita Responder",
            vec![Role::Responder],
            "security",
        ),
        (
            "otto@example.com",
            "Otto Auditor",
            vec![Role::Auditor],
            "audit",
        ),
    ] {
        c.create_person(&CreatePerson {
            email: email.into(),
            display_name: name.into(),
            roles,
            manager: None,
            team: Some(team.into()),
        })
        .await
        .unwrap();
    }
    // Ada has left the company.
    c.update_person(
        "ada@example.com",
        &UpdatePerson {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reg = |name: &str, owner: Option<&str>, scopes: &[&str]| RegisterAgent {
        name: name.into(),
        description: format!("{name} does its job"),
        kind: AgentKind::Agent,
        parent_id: None,
        owner: owner.map(Into::into),
        team: Some("payments".into()),
        environment: Some("prod".into()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        source: None,
    };
    for (name, owner, scopes) in [
        (
            "billing-bot",
            Some("alan@example.com"),
            &["crm.orders:read", "payments:write"][..],
        ),
        ("crawler", None, &["web:read"][..]),
        ("invoice-reader", None, &["erp.invoices:read"][..]),
        ("night-runner", None, &[][..]),
        (
            "legacy-sync",
            Some("alan@example.com"),
            &["erp.ledger:write"][..],
        ),
    ] {
        c.register_agent(&reg(name, owner, scopes)).await.unwrap();
    }
    let parent = c
        .register_agent(&reg(
            "orchestrator",
            Some("grace@example.com"),
            &["tasks:run"],
        ))
        .await
        .unwrap();
    let mut child = reg(
        "orchestrator-worker",
        Some("grace@example.com"),
        &["tasks:read"],
    );
    child.kind = AgentKind::SubAgent;
    child.parent_id = Some(parent.id.clone());
    c.register_agent(&child).await.unwrap();
}

pub fn options(r: &Registry, token: &str, home: &TempDir) -> Options {
    Options {
        server: r.url.clone(),
        token: Secret::new(token),
        config_dir: home.path().join("config"),
        cache_dir: Some(home.path().join("cache")),
        no_color: false,
    }
}

/// A console signed in and synced.
pub async fn console(r: &Registry, token: &str, home: &TempDir) -> Console {
    let mut c = Console::open(options(r, token, home)).unwrap();
    c.dispatch(Action::Resize {
        width: 120,
        height: 40,
    });
    c.start();
    c.settle().await.unwrap();
    // Me → sync → refilter: settle again until the view shows the synced rows.
    c.settle().await.unwrap();
    c
}

pub fn key(c: &mut Console, spec: &str) {
    let k = KeySpec::parse(spec).unwrap_or_else(|e| panic!("{e}"));
    c.dispatch(Action::Key(k.to_event()));
}

pub fn type_text(c: &mut Console, text: &str) {
    for ch in text.chars() {
        c.dispatch(Action::Key(KeySpec::char(ch).to_event()));
    }
}

/// Names in the table, in order.
pub fn names(c: &Console) -> Vec<String> {
    let inv = &c.app.inventory;
    c.app
        .view
        .iter()
        .map(|&i| inv.text(inv.row(i).name).to_string())
        .collect()
}

pub fn selected_name(c: &Console) -> Option<String> {
    let inv = &c.app.inventory;
    c.app
        .selected_row()
        .map(|i| inv.text(inv.row(i).name).to_string())
}

pub fn id_of(c: &Console, name: &str) -> String {
    let inv = &c.app.inventory;
    let i = inv
        .rows()
        .iter()
        .position(|r| inv.text(r.name) == name)
        .unwrap_or_else(|| panic!("no agent {name} in the console"));
    inv.text(inv.rows()[i].id).to_string()
}

/// Filters to one agent by typing its name after `/`, keeps the filter, and checks it is selected.
pub async fn select(c: &mut Console, name: &str) {
    key(c, "/");
    type_text(c, name);
    key(c, "enter");
    c.settle().await.unwrap();
    assert_eq!(selected_name(c).as_deref(), Some(name), "{:?}", names(c));
}
