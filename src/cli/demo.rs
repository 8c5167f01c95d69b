//! `steward demo`: an embedded registry on a loopback port, seeded with the demo enterprise,
//! with the console signed in as one of its personas. Quitting the console stops the registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::args::DemoArgs;
use crate::client::Secret;
use crate::console::{self, Options};
use crate::registry::demo::Personas;
use crate::registry::store::sqlite::OpenMode;
use crate::registry::store::{SeedStore, Store};
use crate::registry::{self, Server};

pub const PERSONAS: [&str; 4] = ["admin", "owner", "responder", "auditor"];

/// Beside a kept database: the personas' sign-ins, so that a second run can open it again.
fn personas_file(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".personas.json");
    PathBuf::from(name)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !PERSONAS.contains(&args.persona.as_str()) {
        bail!(
            "--as {}: choose one of {}",
            args.persona,
            PERSONAS.join(", ")
        );
    }
    console::require_terminal()?;
    let scratch = tempfile::Builder::new()
        .prefix("steward-demo-")
        .tempdir()
        .context("cannot create a temporary folder for the demo")?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| scratch.path().join("demo.db"));
    let keep = args.db.is_some();
    let (store, personas, story) = {
        let db = db.clone();
        let (seed, agents) = (args.seed, args.agents);
        tokio::task::spawn_blocking(move || open_and_seed(&db, keep, seed, agents)).await??
    };
    let persona = personas
        .get(&args.persona)
        .with_context(|| format!("the demo data has no {} persona", args.persona))?;

    let store: Arc<dyn Store> = store;
    let server = Server::bind("127.0.0.1:0", store, "steward demo").await?;
    if let Some(plan) = story {
        // Today's story goes through the real detectors (in the background: the flags reach
        // the console through the change feed).
        let behaviour = server.start_behaviour();
        tokio::task::spawn_blocking(move || {
            registry::demo_activity::plant_story(&behaviour, &plan)
        });
    }
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    // The user's themes and keys apply to the demo too.
    let config_dir = crate::client::config::Paths::resolve()
        .map(|p| p.config_dir)
        .unwrap_or_else(|_| scratch.path().join("config"));
    let result = console::run(Options {
        server: url.clone(),
        token: Secret::new(persona.token.clone()),
        config_dir,
        // The registry's port changes every run: its cache is of no use later.
        cache_dir: Some(scratch.path().join("cache")),
        no_color: Options::no_color_from_env(),
    })
    .await;

    let _ = stop.send(());
    let served = serving.await.context("the demo registry's task failed")?;
    result?;
    served?;
    if keep {
        eprintln!(
            "demo registry stopped; its database is {} (run the same command to open it again)",
            db.display()
        );
    } else {
        eprintln!("demo registry stopped");
    }
    Ok(())
}

fn open_and_seed(
    db: &Path,
    keep: bool,
    seed: u64,
    agents: u32,
) -> anyhow::Result<(
    Arc<registry::store::SqliteStore>,
    Personas,
    Option<registry::demo_activity::StoryPlan>,
)> {
    let store = registry::open_store(db, OpenMode::CreateIfMissing)?;
    let sidecar = personas_file(db);
    if !store.is_empty().map_err(|e| anyhow::anyhow!("{e}"))? {
        let text = std::fs::read(&sidecar).with_context(|| {
            format!(
                "{} already holds data but {} (the demo personas' sign-ins) cannot be read; \
                 use a new --db file",
                db.display(),
                sidecar.display()
            )
        })?;
        let personas: Personas = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a demo personas file", sidecar.display()))?;
        return Ok((store, personas, None));
    }
    eprintln!("seeding the demo enterprise ({agents} agents, seed {seed})…");
    let (personas, campaign) = registry::demo::seed_with_campaign(store.as_ref(), seed, agents)?;
    if campaign.is_none() {
        eprintln!(
            "the demo review campaign is left out above {} agents; create one with `steward campaigns create`",
            registry::demo::CAMPAIGN_AGENT_LIMIT
        );
    }
    let story = registry::demo_activity::seed_history(store.as_ref(), seed, chrono::Utc::now())?;
    if keep {
        super::server::write_private(&sidecar, &serde_json::to_vec_pretty(&personas)?)
            .with_context(|| format!("cannot write {}", sidecar.display()))?;
    }
    Ok((store, personas, Some(story)))
}
