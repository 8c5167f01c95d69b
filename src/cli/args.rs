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
    Server(Box<ServerArgs>),
    /// Check an API token against the registry and store it in the OS keyring.
    Login(LoginArgs),
    /// Forget the stored API token of the registry (keyring and fallback file).
    Logout,
    /// Print every path Steward uses (config, themes, cache, credential fallback).
    Paths,
    /// The agent inventory.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Shared Signals streams to relying parties: state, lag, last error; pause and resume
    /// (admins).
    #[command(subcommand)]
    Streams(super::streams::StreamsCommand),
    /// The smallest correct Shared Signals receiver: registers a push stream as a catalogued
    /// resource, verifies each SET against the registry's JWKS and prints its events.
    Receive(super::receive::ReceiveArgs),
    /// The resource catalogue: the only source of grantable scopes.
    #[command(subcommand)]
    Resources(super::approvals::ResourcesCommand),
    /// Ask for a scope for an agent; low-tier scopes are granted at once, others wait for
    /// their approvers.
    Request {
        agent: String,
        scope: String,
        #[arg(long)]
        justification: String,
        /// How long the grant lasts once approved: `30d` or `12h` (default: the tier's longest).
        #[arg(long = "for")]
        duration: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Access requests and per-use approvals waiting for your decision.
    #[command(subcommand)]
    Approvals(super::approvals::ApprovalsCommand),
    /// Grant a catalogued low or medium scope directly (admins, not to agents they own).
    Grant {
        id: String,
        scope: String,
        #[arg(long)]
        justification: Option<String>,
        /// Print the updated agent as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a scope from an agent.
    Ungrant {
        id: String,
        scope: String,
        /// Print the updated agent as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Agent ownership.
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// The directory of people: list, show, add, leave, set-manager, grant-role.
    #[command(subcommand)]
    People(super::people::PeopleCommand),
    /// Revoke an agent at once: suspend it, disable its credentials, kill its tokens.
    Revoke {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reinstate a suspended agent (its credentials stay disabled). The agent alone unless
    /// `--subtree`.
    Reinstate {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Also reinstate every suspended sub-agent and instance under it.
        #[arg(long)]
        subtree: bool,
        /// Print the updated agent as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decommission an agent and its sub-agents and instances; the records stay for audit.
    /// On a terminal it shows the plan and asks first.
    Decommission {
        /// The agent's id or exact name.
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask (the plan is still printed).
        #[arg(long)]
        yes: bool,
        /// Print the plan and stop: nothing is decommissioned.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan and the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Behaviour flags: list, acknowledge, resolve.
    #[command(subcommand)]
    Flags(super::flags::FlagsCommand),
    /// Person access tokens, introspection and revocation (the token service).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Which agents may act for you: add, list and remove your delegations.
    #[command(subcommand)]
    Delegations(super::delegations::DelegationsCommand),
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
    /// The database: a SQLite file (a path or `sqlite:PATH`, created if missing) or a
    /// PostgreSQL database (`postgres://USER@HOST/DB`, migrated at start).
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
    /// The registry's public URL, the `iss` of its tokens (default: http://<listen address>).
    #[arg(long)]
    pub issuer: Option<String>,
    /// A private or link-local network (CIDR) that Shared Signals push receivers may live in
    /// (refused by default; loopback is always allowed). Repeatable.
    #[arg(long = "allow-receiver-network", value_name = "CIDR")]
    pub allow_receiver_network: Vec<String>,
    /// Consecutive failed pushes after which a Shared Signals stream is paused.
    #[arg(long, default_value_t = 10)]
    pub signals_pause_after: u32,
    /// Lifetime of tokens issued by exchange, e.g. 10m.
    #[arg(long, default_value = "10m")]
    pub token_ttl: String,
    /// Ceiling of that lifetime, e.g. 15m (at most 1h).
    #[arg(long, default_value = "15m")]
    pub token_max_ttl: String,
    /// The longest an API token may live, in days (tokens asked for longer are refused).
    #[arg(long, default_value_t = crate::registry::tokens::API_TOKEN_MAX_DAYS)]
    pub api_token_max_days: u32,
    /// Where access-review reminders are POSTed as JSON (one per reviewer per reminder).
    #[arg(long, value_name = "URL")]
    pub reminder_webhook: Option<String>,
    /// Log format on stderr (the level comes from RUST_LOG, default info).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::registry::logging::LogFormat,
    /// Most connections served at once (also kept under the open-file limit).
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// A request's head must arrive within this; idle keep-alive connections close after it.
    #[arg(long, default_value = "10s")]
    pub header_timeout: String,
    /// The longest wait for the next piece of a request body.
    #[arg(long, default_value = "10s")]
    pub body_timeout: String,
    /// Failed authentications one client address may make per minute before 429.
    #[arg(long, default_value_t = 30)]
    pub auth_failures_per_source: u32,
    /// Failed authentications against one agent or API token per minute before 429.
    #[arg(long, default_value_t = 10)]
    pub auth_failures_per_credential: u32,
    /// How many registry replicas run behind the load balancer (over one PostgreSQL
    /// database). Each replica counts only the failures it sees, so the two budgets above
    /// are divided by this (rounded up, at least 1).
    #[arg(long, value_name = "N", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub replicas: u32,
    /// Append the audit head, signed with the registry's key, to this file (outside the
    /// database) every --audit-witness-every minutes when it moved; check it later with
    /// `steward audit verify --db PATH --witness FILE`.
    #[arg(long, value_name = "FILE")]
    pub audit_witness: Option<PathBuf>,
    /// POST each signed audit head as JSON to this URL too.
    #[arg(long, value_name = "URL")]
    pub audit_witness_url: Option<String>,
    /// Minutes between witnessed heads.
    #[arg(long, value_name = "MINUTES", default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub audit_witness_every: u64,
    /// Revoke an agent automatically when a flag of at least this severity opens (low,
    /// medium, high, critical; off by default). Never for flags raised only by refused or
    /// unauthenticated requests.
    #[arg(long, value_name = "SEVERITY")]
    pub auto_suspend: Option<String>,
    /// Record no activity and run no detectors (for comparing the cost).
    #[arg(long)]
    pub no_behaviour: bool,
    /// Days of history a baseline learns from.
    #[arg(long, default_value_t = 28)]
    pub behaviour_window_days: u32,
    /// Days of history an agent needs before it is judged.
    #[arg(long, default_value_t = 7)]
    pub behaviour_min_days: u32,
    /// A rate spike is this many times the baseline's high …
    #[arg(long, default_value_t = 10.0)]
    pub spike_factor: f64,
    /// … and at least this many exchanges in the hour.
    #[arg(long, default_value_t = 50)]
    pub spike_floor: u32,
    /// Refused requests naming one agent within a minute that make a burst.
    #[arg(long, default_value_t = 50)]
    pub burst_refusals: u32,
    /// Days raw activity events are kept (hourly counts are kept 120 days).
    #[arg(long, default_value_t = 7)]
    pub activity_retention_days: u32,
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
    /// Copy the database while the registry serves (SQLite's online backup API) to a new file.
    Backup {
        #[arg(long, default_value = "steward.db")]
        db: PathBuf,
        /// The backup file to create (never overwritten).
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup back (stop the registry first): records "restored to sequence N" in the
    /// audit log, refuses every token issued before (API tokens included), rotates the signing
    /// key and re-applies the brakes the old log recorded after the copy. The replaced database
    /// is kept beside it.
    Restore {
        #[arg(long, default_value = "steward.db")]
        db: PathBuf,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
    },
    /// Copy a registry from its SQLite file into an empty PostgreSQL database (stop the
    /// registry first). The audit chain is verified on both sides and must end at the same head.
    Migrate {
        /// The SQLite file (a path or `sqlite:PATH`).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (`postgres://USER@HOST/DB`), empty.
        #[arg(long)]
        to: String,
    },
    /// Stage the next token-signing key: published in the JWKS now, signing once every cached
    /// JWKS has seen it (61 minutes); the old key stays published until its tokens expire.
    RotateKey {
        #[arg(long, default_value = "steward.db")]
        db: PathBuf,
        /// Sign with the new key at once (the old key is compromised). Resource servers holding
        /// a cached JWKS refuse the new tokens until they re-fetch it.
        #[arg(long)]
        immediate: bool,
    },
    /// Trust an identity provider's tokens as proof of a person (its issuer and public keys).
    TrustIssuer {
        #[arg(long, default_value = "steward.db")]
        db: PathBuf,
        /// The `iss` its tokens carry, e.g. https://sso.example.com.
        #[arg(long)]
        issuer: String,
        /// A file holding its public keys as a JWKS (RSA, EC P-256/P-384 or Ed25519).
        #[arg(long)]
        jwks: PathBuf,
        /// The `aud` its tokens must carry (usually this registry's issuer URL).
        #[arg(long)]
        audience: String,
    },
    /// Stop trusting an identity provider.
    DistrustIssuer {
        #[arg(long, default_value = "steward.db")]
        db: PathBuf,
        #[arg(long)]
        issuer: String,
    },
    /// List trusted identity providers.
    Issuers {
        #[arg(long, default_value = "steward.db")]
        db: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Read the token from standard input instead of prompting for it.
    #[arg(long)]
    pub token_stdin: bool,
    /// The token is an invitation an admin issued for you: redeem it (once) for your own API
    /// token and store that one.
    #[arg(long)]
    pub invite: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List agents.
    List {
        /// Only agents without an owner, orphaned ones (whose owner left) included.
        #[arg(long, conflicts_with = "owner")]
        unowned: bool,
        /// Only agents owned by this email.
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
        /// Agents asked for per request (1 to 1000; default 1000).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: Option<u32>,
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
    /// Register an agent's Ed25519 public key (a JWK or PEM file).
    AddKey {
        id: String,
        #[arg(long)]
        public_key: PathBuf,
        #[arg(long)]
        label: Option<String>,
    },
    /// Create a static secret for a legacy agent (flagged as debt; shown once).
    AddSecret {
        id: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Disable one of an agent's keys or secrets.
    DisableKey { id: String, credential_id: String },
    /// Re-enable a disabled credential of an active agent (admins and responders; audited).
    EnableKey {
        id: String,
        credential_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Show an agent's live tokens and its exchanges in the last hour.
    Tokens {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Mint a person access token (at most 1h) for yourself and print it: the subject token
    /// an agent exchanges.
    Mint {
        /// Lifetime, e.g. 10m (60s to 1h).
        #[arg(long, default_value = "10m")]
        ttl: String,
        /// Only this agent may act with it (may_act).
        #[arg(long = "for")]
        may_act: Option<String>,
        /// Bound what it may be exchanged for (its `scope` claim); repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Print the whole answer as JSON instead of the bare token.
        #[arg(long)]
        json: bool,
    },
    /// Introspect a token (read from standard input when not given or `-`).
    Introspect { token: Option<String> },
    /// Revoke a token and every token exchanged from it (read from standard input when not
    /// given or `-`).
    Revoke { token: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum OwnerCommand {
    /// Assign or change an agent's owner (admins). The agent by id or exact name, the owner by
    /// email or exact name.
    Set {
        id: String,
        email: String,
        #[arg(long)]
        reason: Option<String>,
        /// Print the updated agent as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The people the registry offers as the agent's owner, best first (admins).
    Candidates {
        id: String,
        /// Narrow by name or email.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Make an agent unowned again (admins; the undo of a first owner).
    Clear {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Agents you inherited from people who left; --ack marks them seen.
    Handovers {
        /// Include the ones already acknowledged.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        ack: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// List audit events, oldest first; with --agent, --include-exchanges, --actor-kind or
    /// --text, the activity timeline instead: newest first, with the delegation chain.
    List {
        /// Only events about this target (e.g. an agent id).
        #[arg(long, conflicts_with = "agent")]
        target: Option<String>,
        /// Only events after this sequence number (not with the timeline).
        #[arg(long, conflicts_with_all = ["agent", "include_exchanges", "actor_kind", "text"])]
        after: Option<i64>,
        /// The timeline of this agent: events about it or by it (and its exchanges).
        #[arg(long)]
        agent: Option<String>,
        /// The timeline with token exchanges (who acted on whose behalf).
        #[arg(long)]
        include_exchanges: bool,
        /// The timeline of one actor kind: human, agent or system.
        #[arg(long, value_parser = ["human", "agent", "system"])]
        actor_kind: Option<String>,
        /// The timeline's entries containing this text (action, actor, chain, scope, reason).
        #[arg(long)]
        text: Option<String>,
        /// Stop after this many events (default: all).
        #[arg(long)]
        limit: Option<u32>,
        /// Events asked for per request (1 to 5000; default 5000).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5000))]
        page_size: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Check the whole hash chain and name the first broken event; check that it still holds
    /// every head witnessed before (on this machine, and in --witness FILE), then record the
    /// head it saw.
    Verify {
        /// Verify a database file directly instead of asking the registry.
        #[arg(long)]
        db: Option<PathBuf>,
        /// A file of heads the registry signed (`steward server --audit-witness FILE`).
        #[arg(long, requires = "db")]
        witness: Option<PathBuf>,
        /// Events fetched per request from the registry (1 to 5000; default 5000).
        #[arg(long, conflicts_with = "db", value_parser = clap::value_parser!(u32).range(1..=5000))]
        page_size: Option<u32>,
    },
}
