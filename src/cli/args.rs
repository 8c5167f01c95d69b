//! The command line: every face of the one `steward` binary. These names are a public interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "steward",
    version,
    about = "Govern AI agents as non-human identities: inventory, owners, reviews, revocation.",
    long_about = "Without a command, opens the console against the configured registry."
)]
pub struct Cli {
    /// The registry's URL, e.g. https://steward.example.com (else config.toml's `server`).
    #[arg(long, global = true, env = "STEWARD_SERVER")]
    pub server: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the console (the default).
    Tui,
    /// Start an embedded registry seeded with a synthetic enterprise and open the console on it.
    Demo(DemoArgs),
    /// Run the identity registry.
    Server(ServerArgs),
    /// Check an API token against the registry and store it in the OS keyring.
    Login(LoginArgs),
    /// Print every path Steward uses (config, themes, cache, credential fallback).
    Paths,
    /// The agent inventory.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Grant a scope to an agent.
    Grant {
        id: String,
        scope: String,
        #[arg(long)]
        justification: Option<String>,
    },
    /// Remove a scope from an agent.
    Ungrant { id: String, scope: String },
    /// Agent ownership.
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// Revoke an agent at once: suspend it, disable its credentials, kill its tokens.
    Revoke {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reinstate a suspended agent (its credentials stay disabled).
    Reinstate {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Decommission an agent and its sub-agents and instances; the records stay for audit.
    Decommission {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Access reviews: your queue, decisions, the evidence export.
    #[command(subcommand)]
    Reviews(super::reviews::ReviewsCommand),
    /// Access-review campaigns: create, list, show, close.
    #[command(subcommand)]
    Campaigns(super::reviews::CampaignsCommand),
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How many agents the demo enterprise has.
    #[arg(long, default_value_t = 3000)]
    pub agents: u32,
    /// Seed of the synthetic enterprise (the same seed gives the same enterprise).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Which persona the console signs in as: admin, owner, responder or auditor.
    #[arg(long = "as", default_value = "admin")]
    pub persona: String,
    /// Keep the registry's database here instead of a temporary file.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8420")]
    pub listen: String,
    /// The SQLite database file (created if missing).
    #[arg(long, default_value = "steward.db")]
    pub db: PathBuf,
    /// The registry's display name, shown in consoles.
    #[arg(long, default_value = "steward")]
    pub name: String,
    /// Seed an empty store with the synthetic demo enterprise.
    #[arg(long)]
    pub demo: bool,
    /// Where --demo writes the personas' emails and API tokens (JSON, mode 0600).
    #[arg(long, requires = "demo")]
    pub demo_credentials: Option<PathBuf>,
    /// Seed of the demo enterprise.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// How many agents the demo enterprise has.
    #[arg(long, default_value_t = 3000)]
    pub agents: u32,
    /// Where access-review reminders are POSTed as JSON (one per reviewer per reminder).
    #[arg(long, value_name = "URL")]
    pub reminder_webhook: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Create the first admin (or make a person admin) and print their API token once.
    CreateAdmin {
        #[arg(long, default_value = "steward.db")]
        db: PathBuf,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Read the token from standard input instead of prompting for it.
    #[arg(long)]
    pub token_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List agents.
    List {
        #[arg(long)]
        unowned: bool,
        #[arg(long)]
        owner: Option<String>,
        /// active, suspended or decommissioned.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// Text to search for in names, descriptions and ids.
        #[arg(long)]
        search: Option<String>,
        /// Stop after this many agents (default: all).
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Show one agent with its grants and credentials.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Register a new agent.
    Register {
        name: String,
        #[arg(long)]
        owner: String,
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        /// agent, sub-agent or instance.
        #[arg(long, default_value = "agent")]
        kind: String,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OwnerCommand {
    /// Assign or change an agent's owner (admins).
    Set {
        id: String,
        email: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// List audit events, oldest first.
    List {
        /// Only events about this target (e.g. an agent id).
        #[arg(long)]
        target: Option<String>,
        /// Only events after this sequence number.
        #[arg(long)]
        after: Option<i64>,
        /// Stop after this many events (default: all).
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Check the whole hash chain and name the first broken event.
    Verify {
        /// Verify a database file directly instead of asking the registry.
        #[arg(long)]
        db: Option<PathBuf>,
    },
}
