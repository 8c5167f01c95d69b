//! `steward server`: run the registry, create the first admin.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::args::{ServerArgs, ServerCommand};
use crate::registry::store::Store;
use crate::registry::store::sqlite::OpenMode;
use crate::registry::{self, Server};

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    if let Some(ServerCommand::CreateAdmin { db, email, name }) = &args.command {
        let store = registry::open_store(db, OpenMode::CreateIfMissing)?;
        let (person, token) = registry::bootstrap_admin(store.as_ref(), email, name, "bootstrap")?;
        println!("admin: {} <{}>", person.display_name, person.email);
        println!("token: {}", token.token);
        println!("expires: {}", token.expires_at.to_rfc3339());
        eprintln!(
            "This token is shown once. Sign in with: steward login --server URL (and paste it)."
        );
        return Ok(());
    }
    let store = tokio::task::spawn_blocking({
        let db = args.db.clone();
        move || registry::open_store(&db, OpenMode::CreateIfMissing)
    })
    .await??;
    if args.demo {
        seed_demo(&store, &args).await?;
    }
    let store: Arc<dyn Store> = store;
    let token_settings = super::tokens::token_settings(&args)?;
    let reminders = reminder_webhook(args.reminder_webhook.as_deref())?;
    let server =
        Server::bind_with(&args.listen, store.clone(), &args.name, &token_settings).await?;
    let addr = server.local_addr();
    // Access reviews: open, close at the due date, remind (every minute).
    let (stop_reviews, stop_rx) = tokio::sync::watch::channel(false);
    // Access requests: expire undecided ones, remove grants whose time is up (every minute).
    let sweeper = registry::service::approvals::spawn_sweeper(store.clone(), stop_rx.clone());
    let reviews = registry::reviews::ReviewScheduler::new(store, reminders)?.spawn(stop_rx);
    // The first line on stdout: scripts and tests wait for it.
    println!("listening on http://{addr}");
    std::io::stdout().flush().ok();
    server.serve(registry::shutdown_signal()).await?;
    // Let a reminder run in progress finish, so that a delivery is always recorded.
    let _ = stop_reviews.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), reviews).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), sweeper).await;
    eprintln!("stopped");
    Ok(())
}

/// Parses `--reminder-webhook`; says where reminders go without printing the URL's path,
/// which often carries a secret.
fn reminder_webhook(url: Option<&str>) -> anyhow::Result<Option<reqwest::Url>> {
    let Some(url) = url else {
        eprintln!("reviews: no --reminder-webhook; reminders are recorded but not sent");
        return Ok(None);
    };
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("--reminder-webhook is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("--reminder-webhook must be an http:// or https:// URL");
    }
    eprintln!(
        "reviews: reminders are POSTed to {}://{}/…",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    Ok(Some(parsed))
}

async fn seed_demo(
    store: &Arc<registry::store::SqliteStore>,
    args: &ServerArgs,
) -> anyhow::Result<()> {
    let store = store.clone();
    let (seed, agents) = (args.seed, args.agents);
    let credentials_path = args.demo_credentials.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if !store.is_empty().map_err(|e| anyhow::anyhow!("{e}"))? {
            if credentials_path.is_some() {
                bail!(
                    "the store at {} already holds data; --demo seeds only an empty store \
                     (use a new --db file)",
                    store.path().display()
                );
            }
            eprintln!("the store already holds data; not seeding the demo enterprise");
            return Ok(());
        }
        let started = std::time::Instant::now();
        let (personas, campaign) = registry::demo::seed_with_campaign(store.as_ref(), seed, agents)?;
        if campaign.is_none() {
            eprintln!(
                "the demo review campaign is left out above {} agents; create one with `steward campaigns create`",
                registry::demo::CAMPAIGN_AGENT_LIMIT
            );
        }
        eprintln!(
            "seeded the demo enterprise (seed {seed}, {agents} agents) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if let Some(path) = credentials_path {
            write_private(&path, &serde_json::to_vec_pretty(&personas)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("demo credentials written to {}", path.display());
        }
        Ok(())
    })
    .await?
}

/// Writes a file only its owner can read (it holds API tokens).
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
