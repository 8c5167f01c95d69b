//! `steward server`: run the registry, create the first admin.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::args::{ServerArgs, ServerCommand};
use crate::registry::perimeter::{ConnectionLimits, raise_open_files_limit};
use crate::registry::store::sqlite::OpenMode;
use crate::registry::store::{SeedStore, Store};
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
    crate::registry::logging::init(args.log_format);
    let limits = connection_limits(&args)?;
    let guards = crate::registry::http::guards::GuardSettings {
        source_failures_per_minute: args.auth_failures_per_source.max(1),
        credential_failures_per_minute: args.auth_failures_per_credential.max(1),
        ..Default::default()
    }
    .per_replica(args.replicas);
    if args.replicas > 1 {
        tracing::info!(
            replicas = args.replicas,
            per_source = guards.source_failures_per_minute,
            per_credential = guards.credential_failures_per_minute,
            "failed-authentication budgets are per replica: {} replicas, so this one allows {} \
             failures per minute per source (of {}) and {} per credential (of {})",
            args.replicas,
            guards.source_failures_per_minute,
            args.auth_failures_per_source.max(1),
            guards.credential_failures_per_minute,
            args.auth_failures_per_credential.max(1),
        );
    }
    let store = tokio::task::spawn_blocking({
        let db = args.db.clone();
        move || registry::open_store(&db, OpenMode::CreateIfMissing)
    })
    .await??;
    if args.replicas > 1 && !store.is_postgres() {
        tracing::warn!(
            "--replicas {} over a SQLite file: replicas share a PostgreSQL database; one process \
             serves a SQLite file, and its budgets are divided all the same",
            args.replicas
        );
    }
    let story = if args.demo {
        seed_demo(&store, &args).await?
    } else {
        None
    };
    let store: Arc<dyn Store> = store;
    let token_settings = super::tokens::token_settings(&args)?;
    let reminders = reminder_webhook(args.reminder_webhook.as_deref())?;
    let server = Server::bind_with(&args.listen, store.clone(), &args.name, &token_settings)
        .await?
        .with_limits(limits)
        .with_guards(guards)
        .with_signal_settings(signal_settings(&args)?)?
        .with_behaviour(behaviour_settings(&args)?);
    let addr = server.local_addr();
    if let Some(plan) = story {
        let behaviour = server.start_behaviour();
        tokio::task::spawn_blocking(move || {
            registry::demo_activity::plant_story(&behaviour, &plan)
        });
    }
    // Access reviews: open, close at the due date, remind (every minute).
    let (stop_reviews, stop_rx) = tokio::sync::watch::channel(false);
    let (stop_witness, stop_rx_witness) = tokio::sync::watch::channel(false);
    let store_for_witness = store.clone();
    // Access requests: expire undecided ones, remove grants whose time is up (every minute).
    let sweeper = registry::service::approvals::spawn_sweeper(store.clone(), stop_rx.clone());
    let reviews = registry::reviews::ReviewScheduler::new(store, reminders)?.spawn(stop_rx);
    let witness = audit_witness(&args, &format!("http://{addr}"))?
        .map(|settings| registry::witness::spawn(store_for_witness, settings, stop_rx_witness));
    // The first line on stdout: scripts and tests wait for it.
    println!("listening on http://{addr}");
    std::io::stdout().flush().ok();
    server.serve(registry::shutdown_signal()).await?;
    if let Some(witness) = witness {
        let _ = stop_witness.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), witness).await;
    }
    // Let a reminder run in progress finish, so that a delivery is always recorded.
    let _ = stop_reviews.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), reviews).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), sweeper).await;
    tracing::info!("stopped");
    Ok(())
}

/// Timeouts and the connection cap, after raising the open-file limit (both logged).
fn connection_limits(args: &ServerArgs) -> anyhow::Result<ConnectionLimits> {
    let seconds = |flag: &str, text: &str| -> anyhow::Result<std::time::Duration> {
        let s = super::tokens::parse_duration(text).with_context(|| format!("--{flag}"))?;
        if !(1..=3600).contains(&s) {
            bail!("--{flag} must be between 1 second and 1 hour");
        }
        Ok(std::time::Duration::from_secs(s as u64))
    };
    if args.max_connections == 0 {
        bail!("--max-connections must be at least 1");
    }
    let mut limits = ConnectionLimits {
        max_connections: args.max_connections,
        header_read_timeout: seconds("header-timeout", &args.header_timeout)?,
        body_read_timeout: seconds("body-timeout", &args.body_timeout)?,
        ..ConnectionLimits::default()
    };
    match raise_open_files_limit() {
        Ok(files) => {
            tracing::info!(
                soft_before = files.soft_before,
                soft_now = files.soft_after,
                hard = files.hard,
                "open-file limit"
            );
            limits = limits.fitted_to_file_limit(files.soft_after);
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    tracing::info!(
        max_connections = limits.max_connections,
        header_timeout_s = limits.header_read_timeout.as_secs(),
        body_timeout_s = limits.body_read_timeout.as_secs(),
        "connection limits"
    );
    Ok(limits)
}

/// The registry's own audit witness, from `--audit-witness` and `--audit-witness-url`.
fn audit_witness(
    args: &ServerArgs,
    default_issuer: &str,
) -> anyhow::Result<Option<registry::witness::WitnessSettings>> {
    if args.audit_witness.is_none() && args.audit_witness_url.is_none() {
        return Ok(None);
    }
    let url = match args.audit_witness_url.as_deref() {
        None => None,
        Some(url) => {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("--audit-witness-url is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                bail!("--audit-witness-url must be an http:// or https:// URL");
            }
            Some(parsed)
        }
    };
    if let Some(file) = &args.audit_witness {
        tracing::info!(
            file = %file.display(),
            every_min = args.audit_witness_every,
            "audit witness: signed heads go to the file"
        );
    }
    Ok(Some(registry::witness::WitnessSettings {
        file: args.audit_witness.clone(),
        url,
        every: std::time::Duration::from_secs(args.audit_witness_every * 60),
        registry: args
            .issuer
            .clone()
            .unwrap_or_else(|| default_issuer.to_string()),
    }))
}

/// Parses `--reminder-webhook`; says where reminders go without printing the URL's path,
/// which often carries a secret.
fn reminder_webhook(url: Option<&str>) -> anyhow::Result<Option<reqwest::Url>> {
    let Some(url) = url else {
        tracing::info!("reviews: no --reminder-webhook; reminders are recorded but not sent");
        return Ok(None);
    };
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("--reminder-webhook is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("--reminder-webhook must be an http:// or https:// URL");
    }
    tracing::info!(
        "reviews: reminders are POSTed to {}://{}/…",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    Ok(Some(parsed))
}

async fn seed_demo(
    store: &Arc<registry::store::SqliteStore>,
    args: &ServerArgs,
) -> anyhow::Result<Option<registry::demo_activity::StoryPlan>> {
    let store = store.clone();
    let (seed, agents) = (args.seed, args.agents);
    let credentials_path = args.demo_credentials.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<_>> {
        if !store.is_empty().map_err(|e| anyhow::anyhow!("{e}"))? {
            if credentials_path.is_some() {
                bail!(
                    "the store at {} already holds data; --demo seeds only an empty store \
                     (use a new --db file)",
                    store.location()
                );
            }
            tracing::info!("the store already holds data; not seeding the demo enterprise");
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let (personas, campaign) = registry::demo::seed_with_campaign(store.as_ref(), seed, agents)?;
        if campaign.is_none() {
            tracing::info!(
                "the demo review campaign is left out above {} agents; create one with `steward campaigns create`",
                registry::demo::CAMPAIGN_AGENT_LIMIT
            );
        }
        tracing::info!(
            "seeded the demo enterprise (seed {seed}, {agents} agents) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if let Some(path) = credentials_path {
            write_private(&path, &serde_json::to_vec_pretty(&personas)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!("demo credentials written to {}", path.display());
        }
        let started = std::time::Instant::now();
        let story =
            registry::demo_activity::seed_history(store.as_ref(), seed, chrono::Utc::now())?;
        tracing::info!(
            "seeded {} days of activity for {} agents in {:.1} s",
            registry::demo_activity::HISTORY_DAYS,
            story.sample.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(Some(story))
    })
    .await?
}

/// Writes a file only its owner can read (it holds API tokens): a new file created with mode
/// 0600 beside the target (never following a symlink, never reusing an existing file's
/// permissions), then renamed over it. A symlink at `path` is replaced, not followed.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    // tempfile creates with O_CREAT | O_EXCL (no symlink is followed) and mode 0600.
    let mut file = tempfile::Builder::new()
        .prefix(".steward-private-")
        .tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::write_private;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_fresh_0600_and_never_follow_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        // A file elsewhere that a planted symlink points at, readable by everyone.
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"do not touch").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = dir.path().join("creds.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_private(&path, b"{\"token\": \"stw_x\"}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"do not touch");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.file_type().is_file(),
            "the symlink was replaced by a file"
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // An existing, world-readable file is replaced by a fresh 0600 one.
        let loose = dir.path().join("loose.json");
        std::fs::write(&loose, b"old").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&loose, b"new").unwrap();
        let meta = std::fs::metadata(&loose).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&loose).unwrap(), b"new");
    }
}

/// The Shared Signals transmitter's settings from the command line.
fn signal_settings(args: &ServerArgs) -> anyhow::Result<registry::signals::SignalSettings> {
    let mut allowed = Vec::new();
    for text in &args.allow_receiver_network {
        allowed.push(
            text.parse::<registry::signals::network::Cidr>()
                .map_err(|e| anyhow::anyhow!("--allow-receiver-network: {e}"))?,
        );
    }
    if args.signals_pause_after == 0 {
        anyhow::bail!("--signals-pause-after must be at least 1");
    }
    Ok(registry::signals::SignalSettings {
        pause_after: args.signals_pause_after,
        networks: registry::signals::network::ReceiverNetworks { allowed },
        ..Default::default()
    })
}

/// The behaviour engine's settings from the `--behaviour-*`, `--spike-*`, `--auto-suspend`
/// flags.
pub fn behaviour_settings(
    args: &ServerArgs,
) -> anyhow::Result<crate::registry::behaviour::BehaviourSettings> {
    use crate::registry::behaviour::{BehaviourSettings, DetectorSettings};
    let auto_suspend = match args.auto_suspend.as_deref() {
        None => None,
        Some(s) => Some(crate::model::flag::Severity::parse(s).ok_or_else(|| {
            anyhow::anyhow!("--auto-suspend must be low, medium, high or critical, not {s:?}")
        })?),
    };
    let settings = BehaviourSettings {
        enabled: !args.no_behaviour,
        detectors: DetectorSettings {
            window_days: args.behaviour_window_days,
            min_history_days: args.behaviour_min_days,
            spike_factor: args.spike_factor,
            spike_floor: args.spike_floor,
            burst_refusals: args.burst_refusals,
            ..DetectorSettings::default()
        },
        raw_retention_days: args.activity_retention_days,
        auto_suspend,
        ..BehaviourSettings::default()
    };
    settings.check().map_err(|e| anyhow::anyhow!(e))?;
    Ok(settings)
}
