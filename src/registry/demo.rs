//! The demo enterprise: a deterministic synthetic organisation for `steward server --demo`.
//!
//! The same seed always gives the same enterprise: the same ids, names, people, owners, teams,
//! grants, credentials and statuses. Times are the one exception, on purpose: they are laid out
//! relative to an *anchor*, the start of the current UTC day when [`seed`] runs, so that usage
//! history always looks current ("used 3 days ago", "unused for 45 days") whenever the demo is
//! started. [`seed_at`] takes the anchor explicitly; with the same anchor the data is identical
//! to the byte. The personas' API tokens are real secrets and therefore random.
//!
//! Generation streams: one thread generates batches of records while the caller's thread
//! stores the previous batch (each batch one transaction), so a million agents never sit in
//! memory at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, bail};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::api::IssueToken;
use crate::model::{
    Actor, Agent, AgentKind, AgentSource, AgentStatus, Credential, CredentialKind, Grant, Person,
    Role,
};
use crate::registry::service::api_tokens::issue_token_for;
use crate::registry::store::{
    SeedAgent, SeedBatch, SeedCredential, SeedPerson, Store, StoreResult,
};

/// One persona's sign-in: written to the `--demo-credentials` file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PersonaCredential {
    pub email: String,
    pub token: String,
}

/// `admin`, `owner`, `responder`, `auditor` → credentials.
pub type Personas = BTreeMap<String, PersonaCredential>;

/// Agents per stored batch (one transaction each). Families never straddle two batches.
const AGENTS_PER_BATCH: usize = 20_000;
/// People per stored batch.
const PEOPLE_PER_BATCH: usize = 20_000;
/// The fewest people an enterprise has, however few agents it runs.
const MIN_PEOPLE: u64 = 60;

/// How far back the usage history (grants' `last_used_at`) reaches.
const USAGE_HISTORY_DAYS: i64 = 120;

/// The audit actor of everything the demo seeds.
const DEMO_ACTOR: &str = "steward-demo";

/// How many people an enterprise with `agents` agents has: about 4 people for 15 agents
/// (800 for the default 3,000), never fewer than [`MIN_PEOPLE`].
pub fn people_for(agents: u32) -> u64 {
    (agents as u64 * 4 / 15).max(MIN_PEOPLE)
}

/// Seeds an empty store with the demo enterprise and returns the personas' credentials.
/// Times are relative to the start of the current UTC day (see the module documentation).
pub fn seed(store: &dyn Store, seed: u64, agents: u32) -> anyhow::Result<Personas> {
    let anchor = store
        .clock()
        .now()
        .duration_trunc(TimeDelta::days(1))
        .context("cannot compute the start of today")?;
    seed_at(store, seed, agents, anchor)
}

/// Like [`seed`], with every time laid out relative to `anchor` ("now" in the data).
pub fn seed_at(
    store: &dyn Store,
    seed: u64,
    agents: u32,
    anchor: DateTime<Utc>,
) -> anyhow::Result<Personas> {
    seed_with(store, &|batch| store.seed(batch), seed, agents, anchor)
}

/// Like [`seed_at`], writing each batch through `write_batch` (tests inject storage failures).
pub fn seed_with(
    store: &dyn Store,
    write_batch: &(dyn Fn(&SeedBatch) -> StoreResult<()> + Sync),
    seed: u64,
    agents: u32,
    anchor: DateTime<Utc>,
) -> anyhow::Result<Personas> {
    if !store.is_empty().map_err(store_error)? {
        bail!("the demo enterprise seeds only an empty store, and this one already holds data");
    }
    // The text index is built once after the last batch (store::sqlite_seed).
    store.seed_start().map_err(store_error)?;
    // Generate on a second thread while this one writes (writing is the larger half).
    let stats = std::thread::scope(|scope| -> anyhow::Result<Stats> {
        let (sender, receiver): (SyncSender<SeedBatch>, Receiver<SeedBatch>) = sync_channel(2);
        let generator = scope.spawn(move || {
            let mut generator = Generator::new(seed, agents, anchor);
            generator.run(&mut |batch| sender.send(batch).is_ok());
            generator.stats
        });
        // The receiver moves into this closure and is dropped when it returns, so after a
        // storage error the generator's next send fails and it stops instead of waiting.
        let started = std::time::Instant::now();
        let stored = (move || -> anyhow::Result<std::time::Duration> {
            let mut writing = std::time::Duration::ZERO;
            for batch in receiver {
                let t = std::time::Instant::now();
                write_batch(&batch).map_err(store_error)?;
                writing += t.elapsed();
            }
            Ok(writing)
        })();
        if let Ok(writing) = &stored {
            tracing::info!(
                phase = "people, agents, grants, credentials",
                seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                writing_s = format!("{:.1}", writing.as_secs_f64()),
                "demo seeding"
            );
        }
        let stats = generator
            .join()
            .map_err(|_| anyhow::anyhow!("the demo generator panicked"))?;
        stored?;
        Ok(stats)
    });
    // Finished even after a failed batch, so that search covers what was stored.
    let started = std::time::Instant::now();
    let finished = store.seed_finish().map_err(store_error);
    log_phase("text index", started);
    let stats = stats?;
    finished?;
    let started = std::time::Instant::now();
    let actor = Actor::system(DEMO_ACTOR);
    let mut personas = Personas::new();
    for persona in PERSONAS {
        let issued = issue_token_for(
            store,
            &actor,
            persona.email,
            &IssueToken {
                name: Some("demo".into()),
                ttl_days: Some(30),
            },
        )
        .map_err(store_error)?;
        personas.insert(
            persona.key.to_string(),
            PersonaCredential {
                email: persona.email.to_string(),
                token: issued.token,
            },
        );
    }
    crate::registry::demo_catalogue::seed_catalogue(store, anchor)?;
    store
        .record(&actor, "demo.seed", None, stats.to_json(seed, anchor))
        .map_err(store_error)?;
    log_phase("personas, catalogue", started);
    let started = std::time::Instant::now();
    crate::registry::demo_history::seed_registrations(store)?;
    log_phase("registration events", started);
    Ok(personas)
}

/// Logs how long one phase of seeding took (the 1M-agent demo must seed in under two minutes).
pub(crate) fn log_phase(phase: &str, started: std::time::Instant) {
    tracing::info!(
        phase,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "demo seeding"
    );
}

/// Generates the demo enterprise without storing it: people first, then agents in families,
/// handed to `emit` one batch at a time (it answers false to stop). The same seed and anchor give
/// the same records as [`seed_at`] stores. The console benchmark builds its cache from these, so
/// that its agents have the demo's shapes (names, families, descriptions, grants, owners).
pub fn generate(
    seed: u64,
    agents: u32,
    anchor: DateTime<Utc>,
    emit: &mut dyn FnMut(SeedBatch) -> bool,
) {
    Generator::new(seed, agents, anchor).run(emit);
}

/// Every scope the demo enterprise can grant: each job's, their wildcard widenings
/// (`crm.orders:*`, which legacy and discovered agents sometimes hold) and the extras agents
/// collect. The demo catalogue lists exactly these.
pub(crate) fn grantable_scopes() -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for job in JOBS {
        for (i, s) in job.scopes.iter().enumerate() {
            scopes.push(s.to_string());
            if i == 0
                && let Some((resource, _)) = s.split_once(':')
            {
                scopes.push(format!("{resource}:*"));
            }
        }
    }
    scopes.extend(EXTRA_SCOPES.iter().map(|s| s.to_string()));
    scopes.sort();
    scopes.dedup();
    scopes
}

/// Above this many agents the demo leaves the review campaign out: deciding half of its items
/// takes minutes at a million agents, and the enterprise must seed in under two.
pub const CAMPAIGN_AGENT_LIMIT: u32 = 100_000;

/// The whole demo: the enterprise, then (up to [`CAMPAIGN_AGENT_LIMIT`] agents) an open
/// quarterly review campaign about half decided, with overdue reviewers.
pub fn seed_with_campaign(
    store: &dyn Store,
    seed: u64,
    agents: u32,
) -> anyhow::Result<(
    Personas,
    Option<crate::registry::demo_reviews::DemoCampaign>,
)> {
    let personas = self::seed(store, seed, agents)?;
    let started = std::time::Instant::now();
    crate::registry::demo_history::seed_token_history(store, seed, store.clock().now())?;
    log_phase("token history", started);
    let started = std::time::Instant::now();
    if let Some(admin) = personas.get("admin") {
        crate::registry::demo_signals::seed_streams(store, &admin.email)?;
    }
    let campaign = if agents <= CAMPAIGN_AGENT_LIMIT {
        Some(crate::registry::demo_reviews::seed_demo_campaign(
            store,
            store.clock().now(),
        )?)
    } else {
        None
    };
    log_phase("review campaign", started);
    Ok((personas, campaign))
}

fn store_error(e: crate::registry::store::StoreError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

// ---------------------------------------------------------------------------------------------
// The catalogue: teams, what agents do, the systems they reach, people's names.
// ---------------------------------------------------------------------------------------------

const DEPARTMENTS: &[&str] = &[
    "engineering",
    "product",
    "go-to-market",
    "operations",
    "finance",
    "people",
];

/// Teams: name, index into [`DEPARTMENTS`], relative size.
const TEAMS: &[(&str, usize, u32)] = &[
    ("payments", 0, 4),
    ("checkout", 0, 3),
    ("billing", 0, 3),
    ("identity", 0, 3),
    ("data-platform", 0, 4),
    ("ml-platform", 0, 3),
    ("search", 0, 2),
    ("recommendations", 0, 2),
    ("mobile", 0, 3),
    ("web", 0, 3),
    ("platform", 0, 4),
    ("sre", 0, 3),
    ("security", 0, 2),
    ("devex", 0, 2),
    ("infra", 0, 3),
    ("messaging", 0, 2),
    ("catalog", 0, 2),
    ("growth", 1, 2),
    ("analytics", 1, 3),
    ("onboarding", 1, 1),
    ("docs", 1, 1),
    ("customer-success", 2, 3),
    ("sales-ops", 2, 3),
    ("marketing", 2, 3),
    ("partnerships", 2, 1),
    ("support", 3, 5),
    ("logistics", 3, 2),
    ("fraud", 3, 2),
    ("trust-safety", 3, 2),
    ("legal", 3, 1),
    ("it-ops", 3, 2),
    ("finance", 4, 3),
    ("procurement", 4, 1),
    ("risk", 4, 1),
    ("compliance", 4, 1),
    ("hr", 5, 2),
];

/// The team of the CEO and the department heads.
const LEADERSHIP_TEAM: &str = "leadership";

/// What an agent does: its name, one sentence, the teams that run it (empty: any team) and
/// the scopes its task needs.
struct Job {
    name: &'static str,
    description: &'static str,
    teams: &'static [&'static str],
    scopes: &'static [&'static str],
}

const fn job(
    name: &'static str,
    description: &'static str,
    teams: &'static [&'static str],
    scopes: &'static [&'static str],
) -> Job {
    Job {
        name,
        description,
        teams,
        scopes,
    }
}

#[rustfmt::skip]
const JOBS: &[Job] = &[
    // Any team.
    job("pr-reviewer", "Reviews pull requests and comments on risky changes.",
        &[], &["github.repos:read", "github.pulls:write"]),
    job("release-notes-writer", "Drafts release notes from merged pull requests.",
        &[], &["github.repos:read", "confluence.pages:write"]),
    job("standup-summarizer", "Summarises the team's Slack channels into a daily standup note.",
        &[], &["slack.channels:read", "slack.messages:write"]),
    job("jira-triage-bot", "Labels new Jira issues and routes them to the right component.",
        &[], &["jira.issues:read", "jira.issues:write"]),
    job("docs-answerer", "Answers questions from the team's Confluence space in Slack.",
        &[], &["confluence.pages:read", "slack.messages:write"]),
    job("meeting-notes-bot", "Turns meeting transcripts into notes with action items.",
        &[], &["gdrive.files:read", "confluence.pages:write", "llm.completions:invoke"]),
    job("dependency-updater", "Opens pull requests that bump outdated dependencies.",
        &[], &["github.repos:write", "github.pulls:write"]),
    job("metrics-digest", "Posts a weekly digest of the team's key metrics.",
        &[], &["snowflake.analytics:read", "slack.messages:write"]),
    // Payments, checkout, billing.
    job("invoice-reconciler", "Reconciles supplier invoices against purchase orders and the ledger.",
        &["payments", "billing", "finance"], &["erp.invoices:read", "erp.ledger:read", "s3.finance-reports:read"]),
    job("refund-approver", "Approves low-value refunds that match the refund policy.",
        &["payments", "checkout", "support"], &["payments.refunds:write", "payments.charges:read", "zendesk.tickets:read"]),
    job("chargeback-responder", "Assembles evidence for card disputes and submits the responses.",
        &["payments", "fraud"], &["payments.disputes:write", "crm.orders:read", "s3.customer-exports:read"]),
    job("payout-scheduler", "Schedules merchant payouts and holds unusual amounts for review.",
        &["payments", "finance"], &["payments.payouts:write", "erp.ledger:read"]),
    job("checkout-anomaly-watcher", "Watches checkout conversion and pages on sudden drops.",
        &["checkout", "growth"], &["datadog.metrics:read", "pagerduty.incidents:write"]),
    job("cart-recovery-mailer", "Emails customers who abandoned a cart with a reminder.",
        &["checkout", "marketing", "growth"], &["crm.contacts:read", "email.outbound:send"]),
    job("dunning-agent", "Retries failed subscription payments and notifies the customer.",
        &["billing"], &["payments.charges:write", "email.outbound:send", "crm.accounts:read"]),
    job("usage-metering-auditor", "Checks metered usage against invoices before they are sent.",
        &["billing", "finance"], &["snowflake.finance:read", "erp.invoices:read"]),
    job("tax-calculator", "Computes sales tax for invoices in new jurisdictions.",
        &["billing", "finance"], &["erp.invoices:write", "s3.tax-tables:read"]),
    // Identity and security.
    job("access-request-router", "Routes access requests to the right approver.",
        &["identity", "it-ops", "security"], &["okta.groups:read", "jira.issues:write", "slack.messages:write"]),
    job("offboarding-sweeper", "Removes leavers from groups and apps on their last day.",
        &["identity", "it-ops", "hr"], &["okta.users:write", "okta.groups:write", "hrdb.employees:read"]),
    job("mfa-enrollment-nudger", "Reminds people who have not enrolled a second factor.",
        &["identity", "security"], &["okta.users:read", "slack.messages:write"]),
    job("secret-scanner", "Scans repositories for committed secrets and opens issues.",
        &["security", "devex"], &["github.repos:read", "github.issues:write"]),
    job("vuln-triager", "Deduplicates scanner findings and assigns them to owning teams.",
        &["security", "platform"], &["jira.issues:write", "github.repos:read"]),
    job("phishing-report-analyzer", "Analyses reported phishing emails and quarantines matches.",
        &["security", "it-ops"], &["email.mailboxes:read", "email.quarantine:write"]),
    job("iam-policy-reviewer", "Reviews cloud IAM policy changes for wildcard permissions.",
        &["security", "infra", "platform"], &["aws.iam:read", "github.pulls:write"]),
    // Data and machine learning.
    job("pipeline-babysitter", "Restarts failed data pipelines and reports the ones it cannot fix.",
        &["data-platform", "analytics"], &["airflow.dags:write", "slack.messages:write"]),
    job("schema-drift-detector", "Detects upstream schema changes before they break reports.",
        &["data-platform", "analytics"], &["snowflake.warehouse:read", "jira.issues:write"]),
    job("dataset-labeler", "Labels training examples and writes them to the datasets bucket.",
        &["ml-platform"], &["s3.ml-datasets:write", "llm.completions:invoke"]),
    job("feature-backfiller", "Backfills feature tables after model changes.",
        &["ml-platform", "recommendations"], &["snowflake.warehouse:write", "s3.ml-datasets:read"]),
    job("model-eval-runner", "Runs offline evaluations for new model versions.",
        &["ml-platform", "search", "recommendations"], &["s3.ml-datasets:read", "ci.pipelines:run"]),
    job("query-optimizer", "Suggests rewrites for the warehouse's slowest queries.",
        &["data-platform", "analytics"], &["snowflake.warehouse:read", "snowflake.query-history:read"]),
    job("dashboard-explainer", "Explains movements in dashboards in plain language.",
        &["analytics", "growth", "finance"], &["snowflake.analytics:read", "slack.messages:write"]),
    job("pii-classifier", "Tags columns that hold personal data in the data catalog.",
        &["data-platform", "compliance"], &["snowflake.warehouse:read", "datacatalog.tags:write"]),
    // Search, recommendations, catalog.
    job("relevance-tuner", "Proposes ranking changes from click-through experiments.",
        &["search"], &["search.index:read", "experiments.results:read"]),
    job("index-rebuilder", "Rebuilds search indexes after catalog imports.",
        &["search", "catalog"], &["search.index:write", "catalog.products:read"]),
    job("recs-quality-monitor", "Flags recommendation carousels with low diversity.",
        &["recommendations"], &["snowflake.analytics:read", "slack.messages:write"]),
    job("catalog-enricher", "Writes product descriptions from supplier data.",
        &["catalog"], &["catalog.products:write", "llm.completions:invoke"]),
    job("price-watcher", "Compares our prices with public competitor listings.",
        &["catalog", "growth"], &["catalog.prices:read", "s3.market-data:write"]),
    // Mobile and web.
    job("crash-triager", "Groups new crash reports and links them to recent releases.",
        &["mobile", "web"], &["crashes.reports:read", "jira.issues:write"]),
    job("app-review-responder", "Drafts replies to app store reviews.",
        &["mobile", "support"], &["appstore.reviews:write", "llm.completions:invoke"]),
    job("accessibility-checker", "Checks new pages for accessibility regressions.",
        &["web"], &["github.pulls:write", "ci.pipelines:run"]),
    job("localization-bot", "Translates new interface strings and opens pull requests.",
        &["web", "mobile", "docs"], &["github.repos:write", "llm.completions:invoke"]),
    // Platform, SRE, infrastructure.
    job("incident-summarizer", "Summarises incidents from PagerDuty and Slack into a timeline.",
        &["sre", "platform"], &["pagerduty.incidents:read", "slack.channels:read", "confluence.pages:write"]),
    job("autoscaler-advisor", "Recommends capacity changes from last week's load.",
        &["sre", "infra"], &["datadog.metrics:read", "k8s.deployments:read"]),
    job("deploy-gatekeeper", "Halts rollouts that fail their health checks.",
        &["platform", "sre"], &["k8s.deployments:write", "datadog.monitors:read"]),
    job("cost-anomaly-detector", "Finds cloud spend spikes and names the likely owner.",
        &["infra", "finance"], &["aws.billing:read", "slack.messages:write"]),
    job("runbook-executor", "Runs approved runbook steps during incidents.",
        &["sre"], &["k8s.deployments:write", "pagerduty.incidents:write", "vault.secrets:read"]),
    job("cert-renewer", "Renews TLS certificates before they expire.",
        &["infra", "platform"], &["acm.certificates:write", "dns.records:write"]),
    job("log-retention-janitor", "Moves old logs to the archive bucket.",
        &["infra", "sre"], &["s3.logs-archive:write", "logs.indexes:write"]),
    job("ci-pipeline-doctor", "Diagnoses failed CI pipelines and suggests fixes.",
        &["devex", "platform"], &["ci.pipelines:read", "github.pulls:write"]),
    job("terraform-drift-checker", "Compares live infrastructure with the Terraform state.",
        &["infra"], &["aws.ec2:read", "s3.terraform-state:read"]),
    job("oncall-handoff-writer", "Writes the on-call handoff from last week's incidents.",
        &["sre", "platform", "infra"], &["pagerduty.incidents:read", "confluence.pages:write"]),
    // Messaging, logistics, fraud, trust and safety.
    job("notification-throttler", "Holds back notifications to users who got too many today.",
        &["messaging", "growth"], &["push.notifications:write", "crm.contacts:read"]),
    job("bounce-handler", "Suppresses addresses that hard-bounce and tells the sending team.",
        &["messaging"], &["email.bounces:read", "crm.contacts:write"]),
    job("sms-template-checker", "Checks new SMS templates against carrier rules.",
        &["messaging"], &["messaging.templates:read", "jira.issues:write"]),
    job("shipment-tracker", "Answers where-is-my-order questions from carrier data.",
        &["logistics", "support"], &["shipping.tracking:read", "crm.orders:read"]),
    job("inventory-forecaster", "Forecasts stock levels for each warehouse.",
        &["logistics"], &["snowflake.analytics:read", "erp.inventory:read"]),
    job("carrier-invoice-auditor", "Checks carrier invoices against shipped parcels.",
        &["logistics", "finance"], &["erp.invoices:read", "shipping.tracking:read"]),
    job("fraud-scorer", "Scores new orders for fraud risk.",
        &["fraud", "payments"], &["crm.orders:read", "payments.charges:read", "fraud.rules:read"]),
    job("account-takeover-detector", "Detects suspicious sign-ins and forces password resets.",
        &["fraud", "identity", "trust-safety"], &["okta.users:write", "auth.sessions:read"]),
    job("content-moderator", "Reviews user-generated content against the content policy.",
        &["trust-safety"], &["ugc.posts:write", "llm.completions:invoke"]),
    job("appeal-reviewer", "Prepares moderation appeals for a human decision.",
        &["trust-safety"], &["ugc.posts:read", "zendesk.tickets:write"]),
    // Support, customer success, sales, marketing.
    job("support-triage-bot", "Tags incoming support tickets and routes them to a queue.",
        &["support"], &["zendesk.tickets:write", "zendesk.macros:read"]),
    job("reply-drafter", "Drafts first replies to support tickets for a human to approve.",
        &["support", "customer-success"], &["zendesk.tickets:write", "confluence.pages:read", "llm.completions:invoke"]),
    job("escalation-detector", "Spots frustrated customers and escalates their tickets.",
        &["support", "customer-success"], &["zendesk.tickets:read", "slack.messages:write"]),
    job("churn-risk-scorer", "Scores accounts for churn risk from usage and tickets.",
        &["customer-success", "analytics"], &["snowflake.analytics:read", "salesforce.accounts:read"]),
    job("renewal-reminder", "Reminds account managers of renewals due next quarter.",
        &["customer-success", "sales-ops"], &["salesforce.opportunities:read", "slack.messages:write"]),
    job("lead-enricher", "Enriches inbound leads with company data.",
        &["sales-ops", "marketing"], &["salesforce.leads:write", "crm.accounts:read"]),
    job("crm-deduplicator", "Merges duplicate accounts and contacts in the CRM.",
        &["sales-ops"], &["crm.accounts:write", "crm.contacts:write"]),
    job("quote-generator", "Builds price quotes from the rate card.",
        &["sales-ops", "partnerships"], &["salesforce.opportunities:write", "contracts.templates:read"]),
    job("forecast-rollup", "Rolls up the sales forecast for the weekly call.",
        &["sales-ops", "finance"], &["salesforce.opportunities:read", "snowflake.finance:read"]),
    job("partner-portal-sync", "Syncs deal registrations from the partner portal.",
        &["partnerships"], &["salesforce.opportunities:write", "partners.deals:read"]),
    job("campaign-copywriter", "Writes variants of campaign emails for A/B tests.",
        &["marketing", "growth"], &["marketing.campaigns:write", "llm.completions:invoke"]),
    job("seo-auditor", "Audits landing pages for broken links and slow loads.",
        &["marketing", "web"], &["cms.pages:read", "github.issues:write"]),
    job("social-listener", "Summarises mentions of the brand on social media.",
        &["marketing"], &["social.mentions:read", "slack.messages:write"]),
    // Finance, procurement, legal, compliance, people, IT.
    job("expense-auditor", "Checks expense reports against the travel policy.",
        &["finance"], &["expenses.reports:read", "expenses.reports:write"]),
    job("month-end-closer", "Prepares journal entries for the month-end close.",
        &["finance"], &["erp.ledger:write", "s3.finance-reports:write"]),
    job("vendor-risk-assessor", "Collects security questionnaires from new vendors.",
        &["procurement", "security", "risk"], &["vendors.profiles:write", "email.outbound:send"]),
    job("po-matcher", "Matches purchase orders with goods receipts.",
        &["procurement"], &["erp.purchase-orders:read", "erp.invoices:read"]),
    job("contract-reviewer", "Flags unusual clauses in incoming contracts.",
        &["legal", "procurement"], &["contracts.documents:read", "llm.completions:invoke"]),
    job("nda-generator", "Prepares NDAs from the standard template and sends them for signature.",
        &["legal"], &["contracts.templates:read", "contracts.envelopes:send"]),
    job("evidence-collector", "Collects control evidence for the SOC 2 audit.",
        &["compliance", "security"], &["aws.iam:read", "github.repos:read", "s3.audit-evidence:write"]),
    job("policy-attestation-tracker", "Tracks who has not yet attested to the annual policies.",
        &["compliance", "hr"], &["hrdb.employees:read", "slack.messages:write"]),
    job("risk-register-updater", "Updates the risk register from incident reports.",
        &["risk", "compliance"], &["jira.issues:read", "grc.risks:write"]),
    job("payroll-checker", "Checks payroll runs for anomalies before approval.",
        &["hr", "finance"], &["hrdb.compensation:read", "payroll.runs:read"]),
    job("candidate-screener", "Summarises job applications for recruiters.",
        &["hr"], &["ats.candidates:read", "llm.completions:invoke"]),
    job("onboarding-buddy", "Answers new joiners' questions about tools and policies.",
        &["hr", "onboarding", "it-ops"], &["confluence.pages:read", "slack.messages:write"]),
    job("laptop-provisioner", "Orders and enrolls laptops for new joiners.",
        &["it-ops"], &["mdm.devices:write", "hrdb.employees:read"]),
    job("license-reclaimer", "Reclaims unused software licences.",
        &["it-ops", "procurement"], &["okta.users:read", "saas.licenses:write"]),
    // Docs, onboarding, growth.
    job("docs-link-checker", "Finds broken links in the public documentation.",
        &["docs"], &["cms.pages:read", "github.issues:write"]),
    job("api-reference-writer", "Writes API reference pages from OpenAPI documents.",
        &["docs", "devex"], &["github.repos:read", "cms.pages:write"]),
    job("trial-activation-nudger", "Nudges trial users who have not finished setup.",
        &["onboarding", "growth"], &["crm.contacts:read", "email.outbound:send"]),
    job("experiment-analyst", "Reads out A/B test results with confidence intervals.",
        &["growth", "analytics"], &["experiments.results:read", "snowflake.analytics:read"]),
];

/// Powerful scopes that agents collect beyond their task: most go unused.
const EXTRA_SCOPES: &[&str] = &[
    "s3.finance-reports:read",
    "s3.customer-exports:read",
    "s3.backups:write",
    "hrdb.employees:read",
    "hrdb.compensation:read",
    "payments.refunds:write",
    "payments.payouts:write",
    "github.repos:write",
    "crm.orders:write",
    "crm.accounts:write",
    "salesforce.opportunities:write",
    "snowflake.finance:read",
    "aws.iam:write",
    "vault.secrets:read",
    "okta.groups:write",
    "slack.users:read",
    "jira.projects:admin",
    "zendesk.tickets:write",
    "pagerduty.incidents:write",
    "gdrive.files:read",
    "email.outbound:send",
    "k8s.deployments:write",
];

/// Sub-agent roles: name, what it does for its parent.
const SUB_ROLES: &[(&str, &str)] = &[
    ("planner", "breaks each task into steps"),
    ("retriever", "fetches the records each task needs"),
    ("summarizer", "condenses results into a short report"),
    ("executor", "carries out the approved steps"),
    ("critic", "checks drafts before they are sent"),
    (
        "tool-runner",
        "calls external tools and collects their answers",
    ),
    ("router", "hands each request to the right sub-agent"),
    ("verifier", "double-checks numbers before they are written"),
];

const JUSTIFICATIONS: &[&str] = &[
    "Core to the agent's task.",
    "Requested by the owner for the quarterly close.",
    "Temporary access for a data migration.",
    "Needed to answer customer questions.",
    "Copied from the service account it replaced.",
    "Approved in the architecture review.",
];

#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "aaliyah", "abdul", "adrian", "agnes", "aiko", "alba", "aleksander", "alice", "amara", "amir",
    "ana", "anders", "andre", "anika", "arjun", "astrid", "beatriz", "ben", "bilal", "bruno",
    "camila", "carlos", "carmen", "chen", "chiara", "chloe", "dae", "dalia", "daniel", "dario",
    "devi", "diego", "dmitri", "elena", "elif", "emeka", "emma", "enzo", "erik", "esther", "fatima",
    "felix", "fiona", "francesca", "gabriel", "grace", "hamza", "hana", "hannah", "hugo", "ibrahim",
    "ines", "ingrid", "isaac", "ivan", "jae", "jamal", "james", "javier", "jin", "joao", "jonas",
    "julia", "kai", "kamala", "karim", "kateryna", "kenji", "kofi", "lars", "laura", "layla",
    "lena", "leo", "liam", "lina", "lucas", "lucia", "mai", "malik", "marco", "maria", "marta",
    "mateo", "maya", "mehmet", "mei", "miguel", "mila", "min", "mohammed", "nadia", "naveen", "nia",
    "nikolai", "noah", "nora", "olga", "oliver", "olivia", "oscar", "pablo", "paula", "pedro",
    "priya", "rafael", "rahul", "ravi", "rina", "rohan", "ruth", "sakura", "salma", "samuel",
    "sara", "sebastian", "sofia", "soren", "sunil", "tariq", "thandiwe", "theo", "tomas", "uma",
    "valentina", "vera", "victor", "wei", "xin", "yara", "yusuf", "zainab", "zoe",
];

#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "abe", "adeyemi", "ahmed", "alvarez", "andersen", "bakker", "banerjee", "becker", "bianchi",
    "brown", "campbell", "chen", "costa", "cruz", "dahl", "das", "dubois", "eriksson", "fischer",
    "fernandes", "garcia", "gomez", "gupta", "haddad", "hansen", "hoffmann", "hughes", "ibrahim",
    "ito", "ivanova", "jansen", "jensen", "johnson", "kaur", "kim", "kowalski", "kumar", "lambert",
    "larsen", "lee", "lopez", "maier", "martin", "mendes", "meyer", "moreau", "muller", "murphy",
    "nakamura", "nguyen", "nielsen", "novak", "nowak", "okafor", "oliveira", "olsen", "owusu",
    "park", "patel", "pereira", "petrov", "popescu", "rossi", "russo", "sato", "schmidt", "shah",
    "silva", "singh", "smith", "sousa", "suzuki", "tanaka", "taylor", "thomas", "torres", "tran",
    "vargas", "wagner", "walker", "wang", "weber", "williams", "wilson", "wong", "yamamoto",
    "yilmaz", "zhang", "zhou", "zimmermann",
];

/// A persona of the demo: who signs in as what.
struct Persona {
    key: &'static str,
    email: &'static str,
    display_name: &'static str,
    role: Option<Role>,
    team: &'static str,
}

const PERSONAS: [Persona; 4] = [
    Persona {
        key: "admin",
        email: "ada.admin@example.com",
        display_name: "Ada Admin",
        role: Some(Role::Admin),
        team: "security",
    },
    Persona {
        key: "owner",
        email: "omar.owner@example.com",
        display_name: "Omar Owner",
        role: None,
        team: "payments",
    },
    Persona {
        key: "responder",
        email: "rosa.responder@example.com",
        display_name: "Rosa Responder",
        role: Some(Role::Responder),
        team: "sre",
    },
    Persona {
        key: "auditor",
        email: "aubrey.auditor@example.com",
        display_name: "Aubrey Auditor",
        role: Some(Role::Auditor),
        team: "compliance",
    },
];

/// Index of the owner persona in [`PERSONAS`].
const OWNER_PERSONA: usize = 1;

/// How many more people (besides the personas) hold each role.
const EXTRA_ROLE_HOLDERS: &[(Role, usize, &[&str])] = &[
    (Role::Admin, 2, &["security", "it-ops", "identity"]),
    (
        Role::Responder,
        5,
        &["sre", "security", "platform", "infra"],
    ),
    (Role::Auditor, 2, &["compliance", "risk", "finance"]),
];

// ---------------------------------------------------------------------------------------------
// Counts, recorded in the `demo.seed` audit event.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct Stats {
    people: u64,
    people_inactive: u64,
    teams: u64,
    agents: u64,
    sub_agents: u64,
    instances: u64,
    unowned: u64,
    owned_by_inactive: u64,
    discovered: u64,
    suspended: u64,
    decommissioned: u64,
    static_secret_agents: u64,
    grants: u64,
    grants_unused_30d: u64,
    credentials: u64,
    owner_persona_agents: u64,
}

impl Stats {
    fn to_json(&self, seed: u64, anchor: DateTime<Utc>) -> serde_json::Value {
        serde_json::json!({
            "seed": seed,
            "anchor": anchor.to_rfc3339(),
            "people": self.people,
            "people_inactive": self.people_inactive,
            "teams": self.teams,
            "agents": self.agents,
            "sub_agents": self.sub_agents,
            "instances": self.instances,
            "unowned": self.unowned,
            "owned_by_inactive": self.owned_by_inactive,
            "discovered": self.discovered,
            "suspended": self.suspended,
            "decommissioned": self.decommissioned,
            "static_secret_agents": self.static_secret_agents,
            "grants": self.grants,
            "grants_unused_30d": self.grants_unused_30d,
            "credentials": self.credentials,
            "owner_persona_agents": self.owner_persona_agents,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.
// ---------------------------------------------------------------------------------------------

/// Someone in the directory, as far as agent ownership needs to know.
struct Member {
    email: String,
    active: bool,
}

/// Overrides for one top-level agent (the owner persona's agents are made to order).
#[derive(Default, Clone, Copy)]
struct Order {
    /// Force this owner (index into the directory) and make the agent registered and owned.
    owner: Option<u32>,
    team: Option<usize>,
    status: Option<AgentStatus>,
    /// Add one over-privileged scope that has not been used for 30+ days.
    unused_extra: bool,
    static_secret: bool,
    no_children: bool,
}

/// How a scope came to be granted, which decides how it is used.
#[derive(Clone, Copy, PartialEq)]
enum ScopeUse {
    /// Needed by the task: used regularly unless the agent went quiet.
    Core,
    /// Collected beyond the task: mostly unused.
    Extra,
    /// Forced to be unused for 30+ days.
    Unused,
}

struct Generator {
    rng: ChaCha8Rng,
    anchor: DateTime<Utc>,
    agents_total: u64,
    people_total: u64,
    directory: Vec<Member>,
    /// Directory indices of the people who may own each team's agents.
    team_owners: Vec<Vec<u32>>,
    /// Emails of admins, who grant scopes on agents they do not own.
    admins: Vec<u32>,
    owner_persona: u32,
    /// Cumulative team weights, for weighted picks.
    team_weights: Vec<u32>,
    /// For each team, the jobs typical of it.
    team_jobs: Vec<Vec<u16>>,
    /// Jobs that any team runs.
    generic_jobs: Vec<u16>,
    /// How many agents already carry each (team, job) name: the next gets a numeric suffix.
    name_counts: HashMap<(u16, u16), u32>,
    email_counts: HashMap<(u16, u16), u32>,
    /// The id slot of the agent being built, shared by its credentials.
    credential_slot: Slot,
    credentials_in_slot: u64,
    stats: Stats,
}

fn days(d: f64) -> TimeDelta {
    TimeDelta::seconds((d * 86_400.0) as i64)
}

fn team_index(name: &str) -> usize {
    TEAMS
        .iter()
        .position(|t| t.0 == name)
        .expect("persona and role teams are in TEAMS")
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Base64url without padding (RFC 4648 §5), as JWKs use.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
        let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
        let n = (chunk[0] as u32) << 16 | b1 << 8 | b2;
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

impl Generator {
    fn new(seed: u64, agents: u32, anchor: DateTime<Utc>) -> Generator {
        let mut total = 0;
        let team_weights = TEAMS
            .iter()
            .map(|t| {
                total += t.2;
                total
            })
            .collect();
        let team_jobs = TEAMS
            .iter()
            .map(|(team, _, _)| {
                JOBS.iter()
                    .enumerate()
                    .filter(|(_, j)| j.teams.contains(team))
                    .map(|(i, _)| i as u16)
                    .collect()
            })
            .collect();
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            anchor,
            agents_total: agents as u64,
            people_total: people_for(agents),
            directory: Vec::new(),
            team_owners: vec![Vec::new(); TEAMS.len()],
            admins: Vec::new(),
            owner_persona: 0,
            team_weights,
            team_jobs,
            generic_jobs: JOBS
                .iter()
                .enumerate()
                .filter(|(_, j)| j.teams.is_empty())
                .map(|(i, _)| i as u16)
                .collect(),
            name_counts: HashMap::new(),
            email_counts: HashMap::new(),
            credential_slot: Slot::of(0, 1),
            credentials_in_slot: 0,
            stats: Stats::default(),
        }
    }

    /// Generates the enterprise, handing each batch to `emit`; stops early when `emit` says no.
    fn run(&mut self, emit: &mut dyn FnMut(SeedBatch) -> bool) {
        if self.people(emit) {
            self.agents(emit);
        }
    }

    // --- randomness helpers ---

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// A random id inside `slot`. Slots follow generation order, so the ids look random yet
    /// increase as records are generated: the seed then appends to the B-tree indexes instead
    /// of inserting all over them, which is what keeps a million-agent seed fast.
    fn id(&mut self, prefix: &str, slot: Slot) -> String {
        let id = slot.start + self.rng.random_range(0..slot.width);
        format!("{prefix}_{id:016x}")
    }

    /// The id of the next credential of the agent being built.
    fn credential_id(&mut self) -> String {
        let slot = self
            .credential_slot
            .part(self.credentials_in_slot, CREDENTIALS_PER_AGENT);
        self.credentials_in_slot += 1;
        self.id("cr", slot)
    }

    /// A time `lo`..`hi` days before the anchor.
    fn days_ago(&mut self, lo: f64, hi: f64) -> DateTime<Utc> {
        let d = self.rng.random_range(lo..hi);
        self.anchor - days(d)
    }

    /// A time between `from` and `to` (or `from` when the span is empty).
    fn between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
        let span = (to - from).num_seconds();
        if span <= 0 {
            return from;
        }
        from + TimeDelta::seconds(self.rng.random_range(0..=span))
    }

    fn pick_team(&mut self) -> usize {
        let total = *self.team_weights.last().expect("TEAMS is not empty");
        let r = self.rng.random_range(0..total);
        self.team_weights.partition_point(|&w| w <= r)
    }

    // --- people ---

    /// A fresh `first.last@example.com` (with a number when the name is taken) and display name.
    fn new_name(&mut self) -> (String, String) {
        let f = self.rng.random_range(0..FIRST_NAMES.len());
        let l = self.rng.random_range(0..LAST_NAMES.len());
        let count = self.email_counts.entry((f as u16, l as u16)).or_insert(0);
        *count += 1;
        let (first, last) = (FIRST_NAMES[f], LAST_NAMES[l]);
        let email = if *count == 1 {
            format!("{first}.{last}@example.com")
        } else {
            format!("{first}.{last}{count}@example.com")
        };
        (email, format!("{} {}", capitalise(first), capitalise(last)))
    }

    fn person(
        &mut self,
        email: String,
        display_name: String,
        roles: Vec<Role>,
        active: bool,
        manager: Option<&str>,
        team: &str,
    ) -> SeedPerson {
        let id = self.id("pe", Slot::of(self.stats.people, self.people_total));
        let created_at = self.days_ago(30.0, 2_000.0);
        self.stats.people += 1;
        if !active {
            self.stats.people_inactive += 1;
        }
        let manager = manager.map(str::to_string);
        // A leaver left between 7 and 186 days ago (never before they joined), spread by their
        // number so that no random draw shifts the rest of the seed.
        let left_at = (!active).then(|| {
            let back = days(7.0 + (self.stats.people % 180) as f64);
            (self.anchor - back).max(created_at)
        });
        SeedPerson {
            person: Person {
                id,
                email,
                display_name,
                roles,
                active,
                manager: manager.clone(),
                team: Some(team.to_string()),
                created_at,
                change_seq: 0,
                left_at,
            },
            manager_email: manager,
        }
    }

    /// Adds a person to the directory; owners of agents are drawn from it.
    fn enlist(&mut self, p: &SeedPerson, team: Option<usize>, may_own: bool) -> u32 {
        let index = self.directory.len() as u32;
        self.directory.push(Member {
            email: p.person.email.clone(),
            active: p.person.active,
        });
        if let (Some(team), true) = (team, may_own) {
            self.team_owners[team].push(index);
        }
        if p.person.has_role(Role::Admin) {
            self.admins.push(index);
        }
        index
    }

    /// The people: CEO, department heads, team leads, personas, then everyone else. Managers
    /// always come before the people they manage, so each batch can link them.
    fn people(&mut self, emit: &mut dyn FnMut(SeedBatch) -> bool) -> bool {
        let mut batch = Vec::new();
        let (ceo_email, ceo_name) = self.new_name();
        let ceo = self.person(ceo_email, ceo_name, vec![], true, None, LEADERSHIP_TEAM);
        self.enlist(&ceo, None, false);
        let ceo_email = ceo.person.email.clone();
        batch.push(ceo);

        let mut heads = Vec::new();
        for _ in DEPARTMENTS {
            let (email, name) = self.new_name();
            let head = self.person(email, name, vec![], true, Some(&ceo_email), LEADERSHIP_TEAM);
            self.enlist(&head, None, false);
            heads.push(head.person.email.clone());
            batch.push(head);
        }

        let mut leads = Vec::new();
        for (t, (team, department, _)) in TEAMS.iter().enumerate() {
            let (email, name) = self.new_name();
            let lead = self.person(email, name, vec![], true, Some(&heads[*department]), team);
            self.enlist(&lead, Some(t), true);
            leads.push(lead.person.email.clone());
            batch.push(lead);
        }
        self.stats.teams = TEAMS.len() as u64;

        for (i, persona) in PERSONAS.iter().enumerate() {
            let t = team_index(persona.team);
            let p = self.person(
                persona.email.to_string(),
                persona.display_name.to_string(),
                persona.role.into_iter().collect(),
                true,
                Some(&leads[t]),
                persona.team,
            );
            // The owner persona's agents are made to order; random picks leave them alone.
            let index = self.enlist(&p, Some(t), i != OWNER_PERSONA);
            if i == OWNER_PERSONA {
                self.owner_persona = index;
            }
            batch.push(p);
        }

        let mut roles_left: Vec<(Role, usize, &[&str])> = EXTRA_ROLE_HOLDERS.to_vec();
        let members = self
            .people_total
            .saturating_sub(self.directory.len() as u64);
        for _ in 0..members {
            let t = self.pick_team();
            let team = TEAMS[t].0;
            // About 7% have left the company but still appear as owners.
            let active = !self.chance(0.07);
            let mut roles = Vec::new();
            if active
                && let Some(slot) = roles_left
                    .iter_mut()
                    .find(|(_, left, teams)| *left > 0 && teams.contains(&team))
            {
                slot.1 -= 1;
                roles.push(slot.0);
            }
            let (email, name) = self.new_name();
            let p = self.person(email, name, roles, active, Some(&leads[t]), team);
            self.enlist(&p, Some(t), true);
            batch.push(p);
            if batch.len() >= PEOPLE_PER_BATCH
                && !emit(SeedBatch {
                    people: std::mem::take(&mut batch),
                    agents: Vec::new(),
                })
            {
                return false;
            }
        }
        batch.is_empty()
            || emit(SeedBatch {
                people: batch,
                agents: Vec::new(),
            })
    }

    // --- agents ---

    fn agents(&mut self, emit: &mut dyn FnMut(SeedBatch) -> bool) {
        let mut batch: Vec<SeedAgent> = Vec::with_capacity(AGENTS_PER_BATCH + 16);
        // The owner persona's agents: 9 to 13, one suspended, several with unused scopes, one
        // on a legacy static secret, spread among the first agents (ids follow generation
        // order, so listings would otherwise show them all first).
        let payments = team_index(PERSONAS[OWNER_PERSONA].team);
        let mine = self.rng.random_range(9..=13u64).min(self.agents_total);
        let window = (self.agents_total / 2).clamp(mine, 2_000);
        let mut placed = 0;
        while self.stats.agents < self.agents_total {
            let made = self.stats.agents;
            let left = mine - placed;
            let place = left > 0
                && (made + left >= window
                    || self.agents_total - made <= left
                    || self.rng.random_range(0..window - made) < left);
            let order = if place {
                placed += 1;
                let i = placed - 1;
                Order {
                    owner: Some(self.owner_persona),
                    team: Some(payments),
                    status: Some(if i == 1 {
                        AgentStatus::Suspended
                    } else {
                        AgentStatus::Active
                    }),
                    unused_extra: matches!(i, 0 | 2 | 4 | 7),
                    static_secret: i == 5,
                    no_children: true,
                }
            } else {
                Order::default()
            };
            self.family(order, &mut batch);
            if batch.len() >= AGENTS_PER_BATCH
                && !emit(SeedBatch {
                    people: Vec::new(),
                    agents: std::mem::take(&mut batch),
                })
            {
                return;
            }
        }
        if !batch.is_empty() {
            emit(SeedBatch {
                people: Vec::new(),
                agents: batch,
            });
        }
    }

    /// Mostly a job typical of the team, sometimes one that any team runs.
    fn pick_job(&mut self, team: usize) -> u16 {
        let jobs = if self.team_jobs[team].is_empty() || self.chance(0.25) {
            &self.generic_jobs
        } else {
            &self.team_jobs[team]
        };
        jobs[self.rng.random_range(0..jobs.len())]
    }

    fn pick_owner(&mut self, team: usize) -> Option<u32> {
        let pool = if !self.team_owners[team].is_empty() && !self.chance(0.15) {
            &self.team_owners[team]
        } else {
            // Someone from another team (agents outlive reorganisations).
            let t = self.pick_team();
            &self.team_owners[t]
        };
        if pool.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..pool.len());
        Some(pool[i])
    }

    /// One top-level agent with its sub-agents and instances.
    fn family(&mut self, order: Order, out: &mut Vec<SeedAgent>) {
        let team = order.team.unwrap_or_else(|| self.pick_team());
        let job_index = self.pick_job(team);
        let job = &JOBS[job_index as usize];

        let (owner, source) = match order.owner {
            Some(owner) => (Some(owner), AgentSource::Registered),
            None if self.chance(0.24) => {
                let source = if self.chance(0.6) {
                    AgentSource::Discovered
                } else {
                    AgentSource::Registered
                };
                (None, source)
            }
            None => {
                // A few shadow agents were claimed by someone after discovery.
                let source = if self.chance(0.03) {
                    AgentSource::Discovered
                } else {
                    AgentSource::Registered
                };
                (self.pick_owner(team), source)
            }
        };
        let discovered = source == AgentSource::Discovered;

        let name = if discovered {
            format!("svc-{}-{:04x}", job.name, self.rng.random::<u16>())
        } else {
            let count = self
                .name_counts
                .entry((team as u16, job_index))
                .or_insert(0);
            *count += 1;
            let team_name = TEAMS[team].0;
            // `checkout-anomaly-watcher` of team checkout, not `checkout-checkout-…`.
            let base = match job.name.strip_prefix(team_name) {
                Some(rest) if rest.starts_with('-') => job.name.to_string(),
                _ => format!("{team_name}-{}", job.name),
            };
            if *count == 1 {
                base
            } else {
                format!("{base}-{count}")
            }
        };
        let description = if discovered {
            let system = job.scopes[0].split('.').next().unwrap_or("internal");
            format!(
                "Found by a credential scan: a service account calling {system} that nobody registered."
            )
        } else {
            job.description.to_string()
        };
        let environment = match self.rng.random_range(0..100) {
            0..50 => "production",
            50..78 => "staging",
            _ => "dev",
        };
        let created_at = if discovered {
            self.days_ago(1.0, 180.0)
        } else {
            self.days_ago(10.0, 900.0)
        };
        let legacy = !discovered && (self.anchor - created_at) > TimeDelta::days(400);
        let static_secret = order.static_secret
            || if discovered {
                self.chance(0.25)
            } else {
                legacy && order.owner.is_none() && self.chance(0.05)
            };

        let status = order.status.unwrap_or_else(|| {
            let (decommissioned, suspended) = if discovered {
                (0.03, 0.08)
            } else {
                (0.06, 0.04)
            };
            let r: f64 = self.rng.random();
            if r < decommissioned {
                AgentStatus::Decommissioned
            } else if r < decommissioned + suspended {
                AgentStatus::Suspended
            } else {
                AgentStatus::Active
            }
        });

        // Scopes: the job's, plus some collected beyond it, sometimes widened to a wildcard.
        let mut scopes: Vec<(String, ScopeUse)> = job
            .scopes
            .iter()
            .map(|s| (s.to_string(), ScopeUse::Core))
            .collect();
        if (legacy || discovered) && self.chance(0.1) {
            let first = &mut scopes[0].0;
            if let Some((resource, _)) = first.split_once(':') {
                *first = format!("{resource}:*");
            }
        }
        let extras = match self.rng.random_range(0..100) {
            0..55 => 0,
            55..85 => 1,
            _ => 2,
        } + usize::from(discovered && self.chance(0.5));
        for _ in 0..extras {
            let s = EXTRA_SCOPES[self.rng.random_range(0..EXTRA_SCOPES.len())];
            if !scopes.iter().any(|(have, _)| have == s) {
                scopes.push((s.to_string(), ScopeUse::Extra));
            }
        }
        if order.unused_extra {
            let start = self.rng.random_range(0..EXTRA_SCOPES.len());
            if let Some(s) = (0..EXTRA_SCOPES.len())
                .map(|k| EXTRA_SCOPES[(start + k) % EXTRA_SCOPES.len()])
                .find(|s| !scopes.iter().any(|(have, _)| have == s))
            {
                scopes.push((s.to_string(), ScopeUse::Unused));
            }
        }

        let stale = order.status.is_none() && self.chance(0.08);
        let parent = self.agent(AgentSpec {
            kind: AgentKind::Agent,
            parent: None,
            name,
            description,
            owner,
            team,
            environment,
            status,
            status_at: None,
            source,
            created_at,
            scopes,
            static_secret,
            public_key: !discovered || !static_secret,
            stale,
        });
        let parent_end = parent.status_at.unwrap_or(self.anchor);
        let parent_agent = parent.seeded.agent.clone();
        let parent_scopes: Vec<String> = parent_agent
            .grants
            .iter()
            .map(|g| g.scope.clone())
            .collect();
        let parent_status_at = parent.status_at;
        out.push(parent.seeded);

        if discovered || order.no_children {
            return;
        }
        let remaining = self.agents_total - self.stats.agents;
        let mut children = Vec::new();
        if self.chance(0.12) {
            let n = self.rng.random_range(1..=3usize);
            let start = self.rng.random_range(0..SUB_ROLES.len());
            for k in 0..n {
                children.push((AgentKind::SubAgent, (start + k) % SUB_ROLES.len()));
            }
        }
        let instance_chance = if environment == "production" {
            0.15
        } else {
            0.05
        };
        if self.chance(instance_chance) {
            let n = self.rng.random_range(1..=4usize);
            children.extend((1..=n).map(|k| (AgentKind::Instance, k)));
        }
        children.truncate(remaining as usize);
        for (kind, k) in children {
            let (name, description) = match kind {
                AgentKind::SubAgent => {
                    let (role, what) = SUB_ROLES[k];
                    (
                        format!("{}.{role}", parent_agent.name),
                        format!(
                            "{} sub-agent of {}: {what}.",
                            capitalise(role),
                            parent_agent.name
                        ),
                    )
                }
                _ => (
                    format!("{}.i{k}", parent_agent.name),
                    format!(
                        "Ephemeral {environment} instance of {} started for one run.",
                        parent_agent.name
                    ),
                ),
            };
            let created_at = if kind == AgentKind::Instance {
                let from = (parent_end - TimeDelta::days(14)).max(parent_agent.created_at);
                self.between(from, parent_end)
            } else {
                self.between(parent_agent.created_at, parent_end)
            };
            let (status, status_at) = match parent_agent.status {
                AgentStatus::Decommissioned => (AgentStatus::Decommissioned, parent_status_at),
                AgentStatus::Suspended if self.chance(0.5) => {
                    (AgentStatus::Suspended, parent_status_at)
                }
                _ => {
                    let retired = if kind == AgentKind::Instance {
                        0.15
                    } else {
                        0.03
                    };
                    let r: f64 = self.rng.random();
                    if r < retired {
                        (AgentStatus::Decommissioned, None)
                    } else if r < retired + 0.02 {
                        (AgentStatus::Suspended, None)
                    } else {
                        (AgentStatus::Active, None)
                    }
                }
            };
            // A child holds a subset of its parent's scopes (delegation narrows).
            let mut scopes = Vec::new();
            if !parent_scopes.is_empty() {
                let max = if kind == AgentKind::Instance {
                    2
                } else {
                    parent_scopes.len()
                };
                let n = self.rng.random_range(1..=max.min(parent_scopes.len()));
                let start = self.rng.random_range(0..parent_scopes.len());
                for j in 0..n {
                    let scope = &parent_scopes[(start + j) % parent_scopes.len()];
                    scopes.push((scope.clone(), ScopeUse::Core));
                }
            }
            let child = self.agent(AgentSpec {
                kind,
                parent: Some(parent_agent.id.clone()),
                name,
                description,
                owner,
                team,
                environment,
                status,
                status_at,
                source,
                created_at,
                scopes,
                static_secret: false,
                // Instances run on their parent's key and tokens.
                public_key: kind == AgentKind::SubAgent,
                stale: false,
            });
            out.push(child.seeded);
        }
    }

    /// Builds one agent with its grants, usage and credentials, and counts it.
    fn agent(&mut self, spec: AgentSpec) -> Built {
        let index = self.stats.agents;
        let id = self.id("ag", Slot::of(index, self.agents_total));
        self.credential_slot = Slot::of(index, self.agents_total);
        self.credentials_in_slot = 0;
        let owner_email = spec.owner.map(|o| self.directory[o as usize].email.clone());
        // When the agent stopped (suspended or decommissioned), at most 90 days ago.
        let status_at = match (spec.status, spec.status_at) {
            (AgentStatus::Active, _) => None,
            (_, Some(at)) => Some(at.max(spec.created_at)),
            _ => {
                let earliest = (self.anchor - TimeDelta::days(90)).max(spec.created_at);
                Some(self.between(earliest, self.anchor))
            }
        };
        let active_until = status_at.unwrap_or(self.anchor);

        let granted_by_default = match (&owner_email, spec.source) {
            (_, AgentSource::Discovered) => None,
            (Some(owner), _) => Some(owner.clone()),
            (None, _) => None,
        };
        let certifiable = owner_email.is_some() && spec.source == AgentSource::Registered;
        let mut grants = Vec::new();
        // Decommissioning removes every grant; the record of them lives in the audit log.
        if spec.status != AgentStatus::Decommissioned {
            for (scope, use_) in spec.scopes {
                grants.push(self.grant(
                    scope,
                    use_,
                    spec.created_at,
                    active_until,
                    spec.stale,
                    certifiable,
                    granted_by_default.as_deref(),
                ));
            }
        }
        let last_seen_at = match spec.status {
            AgentStatus::Decommissioned => {
                if spec.kind == AgentKind::Instance || self.chance(0.9) {
                    let from = (active_until - TimeDelta::days(20)).max(spec.created_at);
                    Some(self.between(from, active_until))
                } else {
                    None
                }
            }
            _ => grants.iter().filter_map(|g| g.last_used_at).max(),
        };

        let mut credentials = Vec::new();
        if spec.public_key {
            // About 8% rotated their key once: the old one stays, disabled.
            if spec.kind == AgentKind::Agent && self.chance(0.08) {
                let rotated_at = self.between(spec.created_at, active_until);
                let old = self.public_key(spec.created_at, Some(rotated_at), None);
                credentials.push(old);
                let new = self.public_key(rotated_at, status_at, last_seen_at);
                credentials.push(new);
            } else if spec.kind != AgentKind::Agent || self.chance(0.97) {
                let key = self.public_key(spec.created_at, status_at, last_seen_at);
                credentials.push(key);
            }
        }
        if spec.static_secret {
            let label = if spec.source == AgentSource::Discovered {
                "discovered API key"
            } else {
                "legacy API key"
            };
            let secret = self.static_secret(label, spec.created_at, status_at, last_seen_at);
            credentials.push(secret);
        }

        // Flags are never drawn: the behaviour engine raises them from the demo's activity
        // (registry/demo_activity.rs).
        let flags = Vec::new();

        // Counting.
        let stats = &mut self.stats;
        stats.agents += 1;
        match spec.kind {
            AgentKind::SubAgent => stats.sub_agents += 1,
            AgentKind::Instance => stats.instances += 1,
            AgentKind::Agent => {}
        }
        match spec.owner {
            None => stats.unowned += 1,
            Some(o) => {
                if !self.directory[o as usize].active {
                    stats.owned_by_inactive += 1;
                }
                if o == self.owner_persona {
                    stats.owner_persona_agents += 1;
                }
            }
        }
        if spec.source == AgentSource::Discovered {
            stats.discovered += 1;
        }
        match spec.status {
            AgentStatus::Suspended => stats.suspended += 1,
            AgentStatus::Decommissioned => stats.decommissioned += 1,
            AgentStatus::Active => {}
        }
        if credentials.iter().any(|c| {
            c.credential.kind == CredentialKind::StaticSecret && c.credential.disabled_at.is_none()
        }) {
            stats.static_secret_agents += 1;
        }
        stats.grants += grants.len() as u64;
        let month_ago = self.anchor - TimeDelta::days(30);
        stats.grants_unused_30d += grants
            .iter()
            .filter(|g| g.last_used_at.is_none_or(|t| t < month_ago))
            .count() as u64;
        stats.credentials += credentials.len() as u64;

        Built {
            status_at,
            seeded: SeedAgent {
                agent: Agent {
                    id,
                    name: spec.name,
                    description: spec.description,
                    kind: spec.kind,
                    parent_id: spec.parent,
                    owner: owner_email,
                    owner_name: None,
                    team: TEAMS[spec.team].0.to_string(),
                    environment: spec.environment.to_string(),
                    status: spec.status,
                    source: spec.source,
                    created_at: spec.created_at,
                    last_seen_at,
                    static_secret: spec.static_secret && status_at.is_none(),
                    flags,
                    grants,
                    change_seq: 0,
                    owner_left_at: None,
                },
                credentials,
            },
        }
    }

    /// One grant with its usage over the last 120 days and its certification.
    #[allow(clippy::too_many_arguments)]
    fn grant(
        &mut self,
        scope: String,
        use_: ScopeUse,
        created_at: DateTime<Utc>,
        active_until: DateTime<Utc>,
        stale: bool,
        certifiable: bool,
        granted_by: Option<&str>,
    ) -> Grant {
        let granted_at = if use_ == ScopeUse::Core && self.chance(0.7) {
            (created_at + TimeDelta::seconds(self.rng.random_range(0..3_600))).min(active_until)
        } else {
            self.between(created_at, active_until)
        };
        // Days before `active_until` of the last use, or never.
        let quiet_days: Option<f64> = match use_ {
            ScopeUse::Unused => {
                if self.chance(0.5) {
                    None
                } else {
                    Some(self.rng.random_range(40.0..120.0))
                }
            }
            _ if stale => {
                if self.chance(0.3) {
                    None
                } else {
                    Some(self.rng.random_range(31.0..120.0))
                }
            }
            ScopeUse::Core => match self.rng.random_range(0..100) {
                0..75 => Some(self.rng.random_range(0.0..7.0)),
                75..87 => Some(self.rng.random_range(7.0..30.0)),
                87..95 => Some(self.rng.random_range(30.0..120.0)),
                _ => None,
            },
            ScopeUse::Extra => match self.rng.random_range(0..100) {
                0..15 => Some(self.rng.random_range(0.0..30.0)),
                15..50 => Some(self.rng.random_range(30.0..120.0)),
                _ => None,
            },
        };
        // The usage history covers the last 120 days; an agent stopped earlier squeezes its
        // history into the part of the window before it stopped.
        let history_start = self.anchor - TimeDelta::days(USAGE_HISTORY_DAYS);
        let span = (active_until - history_start).num_seconds().max(0) as f64 / 86_400.0;
        let last_used_at = quiet_days.and_then(|d| {
            let at = active_until - days(d * span / USAGE_HISTORY_DAYS as f64);
            if at >= granted_at {
                Some(at)
            } else if use_ == ScopeUse::Core && !stale {
                // Granted more recently than that: used since it was granted.
                Some(self.between(granted_at, active_until))
            } else {
                None
            }
        });
        // Quarterly certification: the last campaign closed about a month ago, the one before
        // about four months ago. Grants added since are not certified yet (drift).
        let last_certified_at = if certifiable && self.chance(0.5) {
            let recent = self.days_ago(25.0, 40.0);
            let older = self.days_ago(115.0, 130.0);
            if granted_at <= older && self.chance(0.2) {
                Some(older)
            } else if granted_at <= recent {
                Some(recent)
            } else {
                None
            }
        } else {
            None
        };
        let granted_by = match granted_by {
            Some(owner) if self.chance(0.7) || self.admins.is_empty() => owner.to_string(),
            Some(_) => {
                let admin = self.admins[self.rng.random_range(0..self.admins.len())];
                self.directory[admin as usize].email.clone()
            }
            None => "system".to_string(),
        };
        let expires_at = self
            .chance(0.04)
            .then(|| self.anchor + days(self.rng.random_range(3.0..60.0)));
        let justification = match self.rng.random_range(0..100) {
            0..30 => {
                Some(JUSTIFICATIONS[self.rng.random_range(0..JUSTIFICATIONS.len())].to_string())
            }
            30..35 => Some(format!(
                "Approved in change CHG-{}",
                self.rng.random_range(10_000..99_999)
            )),
            _ => None,
        };
        Grant {
            scope,
            granted_by,
            granted_at,
            expires_at,
            justification,
            last_used_at,
            last_certified_at,
        }
    }

    /// A well-formed Ed25519 public JWK (random key bytes) and its RFC 7638 thumbprint.
    fn public_key(
        &mut self,
        created_at: DateTime<Utc>,
        disabled_at: Option<DateTime<Utc>>,
        last_used_at: Option<DateTime<Utc>>,
    ) -> SeedCredential {
        let mut x = [0u8; 32];
        self.rng.fill_bytes(&mut x);
        let x = base64url(&x);
        // The thumbprint input is the required members in lexicographic order (RFC 7638 §3.2).
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let thumbprint = base64url(&Sha256::digest(canonical.as_bytes()));
        let material = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"{thumbprint}"}}"#);
        let id = self.credential_id();
        SeedCredential {
            credential: Credential {
                id,
                kind: CredentialKind::PublicKey,
                label: format!("ed25519 key {}", created_at.format("%Y-%m")),
                fingerprint: thumbprint,
                created_at,
                disabled_at,
                last_used_at: last_used_at.filter(|t| *t >= created_at),
            },
            material,
        }
    }

    /// A static secret: only the SHA-256 of a random secret is stored, never the secret.
    fn static_secret(
        &mut self,
        label: &str,
        created_at: DateTime<Utc>,
        disabled_at: Option<DateTime<Utc>>,
        last_used_at: Option<DateTime<Utc>>,
    ) -> SeedCredential {
        let mut secret = [0u8; 24];
        self.rng.fill_bytes(&mut secret);
        let secret = format!("sk_{}", hex::encode(secret));
        let material = hex::encode(Sha256::digest(secret.as_bytes()));
        let id = self.credential_id();
        SeedCredential {
            credential: Credential {
                id,
                kind: CredentialKind::StaticSecret,
                label: label.to_string(),
                fingerprint: format!("sha256:{}", &material[..16]),
                created_at,
                disabled_at,
                last_used_at: last_used_at.filter(|t| *t >= created_at),
            },
            material,
        }
    }
}

/// The most credentials one agent gets (a rotated key, its successor, a static secret).
const CREDENTIALS_PER_AGENT: u64 = 4;

/// A share of the 64-bit id space: the `index`-th of `count` equal slots.
#[derive(Clone, Copy, Debug)]
struct Slot {
    start: u64,
    width: u64,
}

impl Slot {
    fn of(index: u64, count: u64) -> Slot {
        let width = u64::MAX / (count + 1);
        Slot {
            start: index * width,
            width,
        }
    }

    fn part(self, k: u64, parts: u64) -> Slot {
        let width = self.width / parts;
        Slot {
            start: self.start + k.min(parts - 1) * width,
            width,
        }
    }
}

/// What [`Generator::agent`] needs to know.
struct AgentSpec {
    kind: AgentKind,
    parent: Option<String>,
    name: String,
    description: String,
    owner: Option<u32>,
    team: usize,
    environment: &'static str,
    status: AgentStatus,
    /// When a child stopped together with its parent.
    status_at: Option<DateTime<Utc>>,
    source: AgentSource,
    created_at: DateTime<Utc>,
    scopes: Vec<(String, ScopeUse)>,
    static_secret: bool,
    public_key: bool,
    /// Active but quiet for 30+ days.
    stale: bool,
}

struct Built {
    seeded: SeedAgent,
    status_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }

    #[test]
    fn people_scale_with_agents() {
        assert_eq!(people_for(3_000), 800);
        assert_eq!(people_for(10), MIN_PEOPLE);
        assert_eq!(people_for(1_000_000), 266_666);
    }

    #[test]
    fn every_team_has_jobs_and_the_catalogue_is_valid() {
        let generator = Generator::new(1, 10, Utc::now());
        for (t, jobs) in generator.team_jobs.iter().enumerate() {
            assert!(
                jobs.len() >= 2,
                "team {} has only {} jobs",
                TEAMS[t].0,
                jobs.len()
            );
        }
        for job in JOBS {
            for team in job.teams {
                assert!(TEAMS.iter().any(|t| t.0 == *team), "unknown team {team}");
            }
            for scope in job.scopes {
                crate::model::text::check_scope(scope).unwrap();
            }
            crate::model::text::check_line("name", job.name, 128).unwrap();
        }
        for scope in EXTRA_SCOPES {
            crate::model::text::check_scope(scope).unwrap();
        }
        assert!(TEAMS.len() >= 30);
    }
}
