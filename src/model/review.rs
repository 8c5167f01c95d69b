//! Access reviews: campaigns, review items, scope diffs and reminders.
//!
//! Modelled on Microsoft Graph access reviews: a campaign is one *instance* of a review
//! *definition* (recurring instances share a `series_id`), and it holds one *decision item* per
//! (agent, grant). Every campaign states explicitly what happens to items nobody decides
//! (`no_response`), who reviews agents whose owner is missing (`fallback_reviewer`), and each item
//! carries a recommendation with its reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Whether a campaign repeats.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Recurrence {
    /// One instance only.
    #[default]
    None,
    /// Closing an instance schedules the next one three months later (same settings).
    Quarterly,
}

impl Recurrence {
    pub fn as_str(self) -> &'static str {
        match self {
            Recurrence::None => "none",
            Recurrence::Quarterly => "quarterly",
        }
    }

    pub fn parse(text: &str) -> Option<Recurrence> {
        [Recurrence::None, Recurrence::Quarterly]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// What closing a campaign does to items nobody decided.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NoResponse {
    /// Leave the grant in place. The item is marked `keep`; the grant is *not* stamped as
    /// certified, because nobody attested to it.
    Keep,
    /// Remove the grant.
    Revoke,
    /// Follow each item's recommendation: remove grants recommended for revocation, keep the
    /// others (again without stamping them as certified).
    Recommendation,
}

impl NoResponse {
    pub fn as_str(self) -> &'static str {
        match self {
            NoResponse::Keep => "keep",
            NoResponse::Revoke => "revoke",
            NoResponse::Recommendation => "recommendation",
        }
    }

    pub fn parse(text: &str) -> Option<NoResponse> {
        [
            NoResponse::Keep,
            NoResponse::Revoke,
            NoResponse::Recommendation,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    /// Created with a start in the future: no items yet; they are snapshotted when it starts.
    Scheduled,
    /// Its items are being snapshotted in short steps (see `Campaign::work`); decisions wait.
    Snapshotting,
    Open,
    /// Its no-response outcome is being applied in short steps; decisions are refused.
    Closing,
    /// Decisions are refused.
    Closed,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Snapshotting => "snapshotting",
            CampaignStatus::Open => "open",
            CampaignStatus::Closing => "closing",
            CampaignStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<CampaignStatus> {
        [
            CampaignStatus::Scheduled,
            CampaignStatus::Snapshotting,
            CampaignStatus::Open,
            CampaignStatus::Closing,
            CampaignStatus::Closed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What a reviewer may decide about one item.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The agent still needs the scope: keep it and stamp it as certified now.
    Certify,
    /// Remove the grant at once.
    Revoke,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Certify => "certify",
            Verdict::Revoke => "revoke",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Certify, Verdict::Revoke]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// The state of an item's decision.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Nobody has decided yet.
    None,
    Certify,
    Revoke,
    /// Set only by the system at close: nobody answered and the grant was left in place
    /// without being stamped as certified.
    Keep,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::None => "none",
            Decision::Certify => "certify",
            Decision::Revoke => "revoke",
            Decision::Keep => "keep",
        }
    }

    pub fn parse(text: &str) -> Option<Decision> {
        [
            Decision::None,
            Decision::Certify,
            Decision::Revoke,
            Decision::Keep,
        ]
        .into_iter()
        .find(|d| d.as_str() == text)
    }
}

impl From<Verdict> for Decision {
    fn from(v: Verdict) -> Decision {
        match v {
            Verdict::Certify => Decision::Certify,
            Verdict::Revoke => Decision::Revoke,
        }
    }
}

/// Whether a scope was used within the lookback window.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Usage {
    /// Used within the lookback window.
    Used,
    /// Not used within the lookback window (or never, and granted before it began).
    Unused,
    /// Granted within the lookback window and not used yet: too recent to judge.
    New,
}

impl Usage {
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Used => "used",
            Usage::Unused => "unused",
            Usage::New => "new",
        }
    }

    pub fn parse(text: &str) -> Option<Usage> {
        [Usage::Used, Usage::Unused, Usage::New]
            .into_iter()
            .find(|u| u.as_str() == text)
    }
}

/// How a held scope relates to the agent's last certification.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Certified before and not granted again since the agent's last certification.
    Unchanged,
    /// Granted after the agent's last certification (drift).
    Added,
    /// Never certified: the agent never was, or this grant predates the last certification but
    /// was not itself certified (for example, kept by a no-response outcome).
    NeverCertified,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Unchanged => "unchanged",
            Change::Added => "added",
            Change::NeverCertified => "never-certified",
        }
    }

    pub fn parse(text: &str) -> Option<Change> {
        [Change::Unchanged, Change::Added, Change::NeverCertified]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// The marks a console draws next to a scope (`✓` used, `!` unused, `+` added, `-` removed).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeMarker {
    Used,
    Unused,
    Added,
    Removed,
    NeverCertified,
}

impl ScopeMarker {
    /// The one symbol for this mark, in the console and the command line alike.
    pub fn symbol(self) -> char {
        match self {
            ScopeMarker::Used => '✓',
            ScopeMarker::Unused => '!',
            ScopeMarker::Added => '+',
            ScopeMarker::Removed => '-',
            ScopeMarker::NeverCertified => '*',
        }
    }

    /// The legend: every mark with its meaning.
    pub const LEGEND: &'static str =
        "✓ used  ! unused  + added since last certification  - removed  * never certified";
}

/// Whole days from `now` until `due`; negative whole days overdue once past it ("due in 1
/// day" at 36 h before, "overdue by 1 day" at 25 h after, 0 within a day either side). The one
/// definition: the registry's queue, the console and the command line all count with it.
pub fn days_until(now: DateTime<Utc>, due: DateTime<Utc>) -> i64 {
    (due - now).num_days()
}

/// "due in 12 days", "due today", "overdue since today", "overdue by 3 days": the words for
/// [`days_until`] wherever a due date is shown.
pub fn due_words(days_until_due: i64, overdue: bool) -> String {
    let days = |n: i64| {
        if n == 1 {
            "1 day".to_string()
        } else {
            format!("{n} days")
        }
    };
    match (overdue, days_until_due) {
        (true, d) if d < 0 => format!("overdue by {}", days(-d)),
        (true, _) => "overdue since today".into(),
        (false, 0) => "due today".into(),
        (false, d) => format!("due in {}", days(d)),
    }
}

/// What a scope lets an agent do, when more than reading: `write`, `admin`, or `any` for a
/// wildcard. Reviewers look twice at these.
pub fn scope_power(scope: &str) -> Option<&'static str> {
    let s = scope.to_ascii_lowercase();
    if s.contains('*') {
        Some("any")
    } else if s.contains("admin") {
        Some("admin")
    } else if [":write", ":delete", ":send", ":manage"]
        .iter()
        .any(|w| s.ends_with(w))
        || s.contains(".write")
    {
        Some("write")
    } else {
        None
    }
}

/// A recommendation with the reason a reviewer reads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Recommendation {
    pub action: Verdict,
    pub reason: String,
}

/// Everything known about one held scope at one moment: usage, drift and the recommendation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ScopeState {
    pub markers: Vec<ScopeMarker>,
    pub usage: Usage,
    /// Whole days since the last use, or since the grant when never used.
    pub idle_days: i64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub change: Change,
    /// Who granted the scope (for drift: who added it) and when.
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
    pub last_certified_at: Option<DateTime<Utc>>,
    pub recommendation: Recommendation,
}

/// A scope the agent held at its last certification (or within the lookback, when it was never
/// certified) and no longer holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct RemovedScope {
    pub scope: String,
    /// The actor id that removed it (an email, or a system process).
    pub removed_by: String,
    pub removed_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// One held scope in a scope diff.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ScopeDiffEntry {
    pub scope: String,
    #[serde(flatten)]
    pub state: ScopeState,
}

/// An agent's scopes against usage and its last certification.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ScopeDiff {
    pub agent_id: String,
    pub agent_name: String,
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
    /// The agent's last certification (the latest certification of any of its scopes); null
    /// when it was never certified.
    pub last_certified_at: Option<DateTime<Utc>>,
    pub scopes: Vec<ScopeDiffEntry>,
    pub removed: Vec<RemovedScope>,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScopeDiffQuery {
    /// Days without use after which a scope counts as unused (1 to 365, default 30).
    pub lookback_days: Option<u32>,
}

/// Which agents a campaign reviews: all active agents, narrowed by any filter given.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignFilter {
    pub team: Option<String>,
    pub environment: Option<String>,
    /// Only agents owned by this email.
    pub owner: Option<String>,
}

/// When reviewers with undecided items are reminded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderSchedule {
    /// Every 7 days after the start, until the countdown below begins.
    #[serde(default = "yes")]
    pub weekly: bool,
    /// Days before the due date (0 = on the due date), each at 00:00 UTC of that day.
    #[serde(default = "default_days_before")]
    pub days_before: Vec<u32>,
    /// Every day after the due date while the campaign stays open.
    #[serde(default = "yes")]
    pub overdue_daily: bool,
}

fn default_days_before() -> Vec<u32> {
    vec![3, 1, 0]
}

impl Default for ReminderSchedule {
    /// Weekly, then 3 days before, 1 day before, on the due date, then daily while overdue.
    fn default() -> Self {
        ReminderSchedule {
            weekly: true,
            days_before: default_days_before(),
            overdue_daily: true,
        }
    }
}

/// When a decision must carry a justification.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JustificationPolicy {
    /// Certifying a scope unused beyond the lookback needs a justification.
    #[serde(default = "yes")]
    pub certify_unused: bool,
    /// Revoking a scope recommended for certification needs a justification.
    #[serde(default = "yes")]
    pub revoke_against_recommendation: bool,
}

impl Default for JustificationPolicy {
    fn default() -> Self {
        JustificationPolicy {
            certify_unused: true,
            revoke_against_recommendation: true,
        }
    }
}

/// Counts of a set of items by decision.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, ToSchema)]
pub struct Progress {
    pub total: u64,
    /// Certified, revoked or kept.
    pub decided: u64,
    pub certified: u64,
    pub revoked: u64,
    pub kept: u64,
    pub pending: u64,
}

impl Progress {
    pub fn from_counts(total: u64, certified: u64, revoked: u64, kept: u64) -> Progress {
        let decided = certified + revoked + kept;
        Progress {
            total,
            decided,
            certified,
            revoked,
            kept,
            pending: total.saturating_sub(decided),
        }
    }
}

/// One review campaign (one instance of a possibly recurring definition).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    /// The id of the first instance of a recurring definition; instances share it.
    pub series_id: String,
    /// 1 for the first instance, 2 for the next, …
    pub instance: u32,
    pub previous_id: Option<String>,
    /// The instance created when this one closed (quarterly campaigns).
    pub next_id: Option<String>,
    pub filter: CampaignFilter,
    pub starts_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Days after the due date at which the campaign closes itself.
    pub grace_days: u32,
    /// When the campaign closes itself: `due_at` + `grace_days`.
    pub closes_at: DateTime<Utc>,
    pub recurrence: Recurrence,
    pub fallback_reviewer: String,
    pub reminders: ReminderSchedule,
    pub no_response: NoResponse,
    pub justification: JustificationPolicy,
    pub lookback_days: u32,
    pub status: CampaignStatus,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub progress: Progress,
    /// While `snapshotting` or `closing`: how far the work has got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<CampaignWork>,
}

/// Progress of a campaign's long work, done in short transactions so that it never holds the
/// writer for long: agents snapshotted while `snapshotting`, items settled while `closing`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
pub struct CampaignWork {
    pub done: u64,
    pub total: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ReviewerProgress {
    /// The reviewer: the agents' owner, or the fallback reviewer.
    pub reviewer: String,
    #[serde(flatten)]
    pub progress: Progress,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct TeamProgress {
    pub team: String,
    #[serde(flatten)]
    pub progress: Progress,
}

/// A campaign with its progress per reviewer (owner or fallback) and per team.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct CampaignDetail {
    #[serde(flatten)]
    pub campaign: Campaign,
    /// Sorted by most pending first. Only for admins, auditors and responders; other people
    /// see their own line only.
    pub by_reviewer: Vec<ReviewerProgress>,
    pub by_team: Vec<TeamProgress>,
    /// Undecided items recommended for revocation: what `no_response: recommendation` would
    /// remove at close.
    pub pending_recommended_revoke: u64,
}

/// One entry of an item's history: decisions (including changed minds) and reassignments.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ItemEvent {
    /// `certify`, `revoke`, `keep` or `reassign`.
    pub action: String,
    /// A person's email, or `system`.
    pub by: String,
    pub at: DateTime<Utc>,
    pub justification: Option<String>,
    /// For a reassignment: the previous and new reviewer.
    pub from_reviewer: Option<String>,
    pub to_reviewer: Option<String>,
    /// The audit event that records it.
    pub audit_seq: Option<i64>,
}

/// Which decisions on an item need a justification under its campaign's policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, ToSchema)]
pub struct JustificationRequired {
    pub certify: bool,
    pub revoke: bool,
}

/// One grant of one agent inside a campaign.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ReviewItem {
    pub id: i64,
    pub campaign_id: String,
    pub agent_id: String,
    pub agent_name: String,
    /// The agent's owner when the campaign started (null: unowned).
    pub owner: Option<String>,
    pub team: String,
    pub environment: String,
    pub scope: String,
    pub reviewer: String,
    /// The scope diff as it stood when the campaign started (stable during the review).
    pub diff: ScopeState,
    pub decision: Decision,
    /// A person's email, or `system` for no-response outcomes.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub justification: Option<String>,
    /// True once the decision took effect on the grant (removed, stamped, or left in place).
    pub applied: bool,
    pub applied_at: Option<DateTime<Utc>>,
    pub justification_required: JustificationRequired,
    /// Undecided, used and unchanged: certified by the one-call bulk certification.
    pub bulk_certifiable: bool,
    pub history: Vec<ItemEvent>,
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: String,
    /// Which agents: all active ones unless filtered.
    #[serde(default)]
    pub filter: CampaignFilter,
    /// Default: now. A future start schedules the campaign; its items are snapshotted then.
    pub starts_at: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    /// Days after the due date at which it closes itself (0 to 90, default 0).
    pub grace_days: Option<u32>,
    #[serde(default)]
    pub recurrence: Recurrence,
    /// Reviews unowned agents and agents whose owner has left. Default: the creator.
    pub fallback_reviewer: Option<String>,
    #[serde(default)]
    pub reminders: ReminderSchedule,
    /// Required: what closing does to undecided items. There is deliberately no default.
    pub no_response: NoResponse,
    #[serde(default)]
    pub justification: JustificationPolicy,
    /// 1 to 365, default 30.
    pub lookback_days: Option<u32>,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignQuery {
    pub status: Option<CampaignStatus>,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewItemQuery {
    /// Items with an id above this one (from the previous page's `next`).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 200).
    pub limit: Option<u32>,
    pub reviewer: Option<String>,
    pub decision: Option<Decision>,
    pub agent_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct ReviewItemPage {
    pub items: Vec<ReviewItem>,
    pub next: Option<i64>,
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideItem {
    pub decision: Verdict,
    pub justification: Option<String>,
}

/// What a decision did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct DecisionOutcome {
    /// False when the same decision was already recorded: nothing changed.
    pub changed: bool,
    /// The decision before this call (a changed mind shows here and in the history).
    pub previous: Decision,
    pub grant_removed: bool,
    /// A revoke taken back by a certify before close puts the grant back.
    pub grant_restored: bool,
    pub item: ReviewItem,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct SkippedItem {
    pub item_id: i64,
    pub scope: String,
    pub reason: String,
}

/// What a bulk certification of one agent's used-and-unchanged scopes did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct BulkCertifyOutcome {
    pub campaign_id: String,
    pub agent_id: String,
    pub certified: Vec<i64>,
    pub skipped: Vec<SkippedItem>,
    /// The agent's items still undecided afterwards (unused, added or never-certified scopes).
    pub remaining: u64,
}

#[derive(Deserialize, Serialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignItems {
    /// The new reviewer's email (an active person).
    pub reviewer: String,
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ReassignOutcome {
    pub reviewer: String,
    /// Items whose reviewer changed.
    pub reassigned: Vec<i64>,
}

/// What closing did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct CloseOutcome {
    pub campaign: Campaign,
    pub no_response: NoResponse,
    /// Undecided items the no-response outcome was applied to.
    pub touched: u64,
    /// Of those, grants removed.
    pub revoked: u64,
    /// Of those, grants left in place (not stamped as certified).
    pub kept: u64,
    /// Of those, grants that were already gone (nothing to remove or keep).
    pub already_gone: u64,
    /// The next instance of a quarterly campaign.
    pub next: Option<Campaign>,
}

/// One row of the evidence export.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ExportRow {
    pub item_id: i64,
    pub campaign_id: String,
    pub campaign_name: String,
    pub agent_id: String,
    pub agent_name: String,
    pub owner: Option<String>,
    pub team: String,
    pub environment: String,
    pub scope: String,
    pub reviewer: String,
    pub usage: Usage,
    pub idle_days: i64,
    pub change: Change,
    pub recommendation: Verdict,
    pub recommendation_reason: String,
    pub decision: Decision,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub justification: Option<String>,
    pub applied: bool,
    pub applied_at: Option<DateTime<Utc>>,
    /// How many times the decision changed before close (0: decided once or not at all).
    pub changed_minds: u32,
}

impl ExportRow {
    /// The CSV header, in the order of [`ExportRow::csv_fields`].
    pub const CSV_HEADER: [&'static str; 22] = [
        "item_id",
        "campaign_id",
        "campaign_name",
        "agent_id",
        "agent_name",
        "owner",
        "team",
        "environment",
        "scope",
        "reviewer",
        "usage",
        "idle_days",
        "change",
        "recommendation",
        "recommendation_reason",
        "decision",
        "decided_by",
        "decided_at",
        "justification",
        "applied",
        "applied_at",
        "changed_minds",
    ];

    pub fn csv_fields(&self) -> [String; 22] {
        let time = |t: &Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        [
            self.item_id.to_string(),
            self.campaign_id.clone(),
            self.campaign_name.clone(),
            self.agent_id.clone(),
            self.agent_name.clone(),
            self.owner.clone().unwrap_or_default(),
            self.team.clone(),
            self.environment.clone(),
            self.scope.clone(),
            self.reviewer.clone(),
            self.usage.as_str().to_string(),
            self.idle_days.to_string(),
            self.change.as_str().to_string(),
            self.recommendation.as_str().to_string(),
            self.recommendation_reason.clone(),
            self.decision.as_str().to_string(),
            self.decided_by.clone().unwrap_or_default(),
            time(&self.decided_at),
            self.justification.clone().unwrap_or_default(),
            self.applied.to_string(),
            time(&self.applied_at),
            self.changed_minds.to_string(),
        ]
    }
}

/// Formats one CSV line (RFC 4180 quoting). Cells that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) get a leading `'`, as OWASP
/// recommends for exports opened in spreadsheets.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let field = field.as_ref();
        let defused;
        let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            defused = format!("'{field}");
            defused.as_str()
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    line
}

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Deserialize, Serialize, Debug, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` or `json` (a JSON array).
    pub format: ExportFormat,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Agents per page, 1 to 500 (default 100).
    pub limit: Option<u32>,
    /// Skip this many agents (the queue is ordered by due date, then risk).
    pub offset: Option<u64>,
    /// Only agents with undecided items.
    pub pending_only: Option<bool>,
    /// Only agents whose name, team, environment or owner contains this text (any case).
    pub q: Option<String>,
    /// The order of the agents: `due` (the default: due date, then risk), `risk`, `team` or
    /// `owner`.
    pub sort: Option<QueueSort>,
    /// Every reviewer's items instead of the caller's own (admins and auditors): the
    /// campaigns' whole queue.
    pub all: Option<bool>,
}

/// The orders of a review queue.
#[derive(Deserialize, Serialize, Debug, Default, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueSort {
    #[default]
    Due,
    Risk,
    Team,
    Owner,
}

impl QueueSort {
    pub const ALL: [QueueSort; 4] = [Self::Due, Self::Risk, Self::Team, Self::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Risk => "risk",
            Self::Team => "team",
            Self::Owner => "owner",
        }
    }

    /// The next order in the cycle due → risk → team → owner → due.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|s| *s == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// Accept the registry's recommendation (certify or revoke) for many undecided items at once.
/// The items are the caller's own undecided items of the campaign (`mine`, the default) or, for
/// admins, every reviewer's, narrowed by `agent_ids`, `item_ids` and `q` (the queue's filter).
/// With `dry_run`, nothing changes and the answer says what would be decided. `expect` (the
/// number of items a confirmation showed) makes the call refuse with 409 when the set changed.
#[derive(Deserialize, Serialize, Debug, Default, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRecommendations {
    #[serde(default)]
    pub agent_ids: Vec<String>,
    #[serde(default)]
    pub item_ids: Vec<i64>,
    /// The queue's filter text (name, team, environment or owner contains it, any case).
    pub q: Option<String>,
    /// Only the caller's own items (default true). False (admins) takes every reviewer's.
    pub mine: Option<bool>,
    /// Used for the items whose decision needs one (they are skipped without it).
    pub justification: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// The number of items the caller confirmed; a different number now is a 409.
    pub expect: Option<u64>,
}

/// What happened to one item of a bulk acceptance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AcceptedItem {
    pub item_id: i64,
    pub agent_id: String,
    pub scope: String,
    /// The recommendation that was (or, in a dry run, would be) applied.
    pub decision: Verdict,
}

/// The outcome of accepting recommendations: per item, what was decided, skipped or refused.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct AcceptOutcome {
    pub campaign_id: String,
    pub dry_run: bool,
    /// Items certified (or that would be).
    pub certify: u64,
    /// Items revoked (or that would be).
    pub revoke: u64,
    /// Distinct agents among the decided items.
    pub agents: u64,
    pub decided: Vec<AcceptedItem>,
    /// Items in the selection that were not decided, each with why (a justification is
    /// needed, the agent was decommissioned, the scope was removed meanwhile).
    pub skipped: Vec<SkippedItem>,
    /// Items named in the request that the caller may not decide, or that are decided already.
    pub refused: Vec<SkippedItem>,
}

/// The caller's progress in one open campaign.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct QueueCampaign {
    pub id: String,
    pub name: String,
    pub due_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    /// Whole days until the due date; negative whole days once overdue (0 within a day).
    pub days_until_due: i64,
    pub overdue: bool,
    pub no_response: NoResponse,
    pub justification: JustificationPolicy,
    pub lookback_days: u32,
    /// The caller's items only.
    pub progress: Progress,
}

/// One agent in the caller's queue: its items with their diffs, and scopes removed since its
/// last certification.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct QueueAgent {
    pub campaign_id: String,
    pub agent_id: String,
    pub agent_name: String,
    pub owner: Option<String>,
    pub team: String,
    pub environment: String,
    pub due_at: DateTime<Utc>,
    /// 3 per risk flag, 2 for an enabled static secret, 1 per scope recommended for revocation
    /// and 1 per scope added since the last certification. Higher is reviewed first.
    pub risk: u32,
    pub flags: Vec<String>,
    pub static_secret: bool,
    pub last_certified_at: Option<DateTime<Utc>>,
    pub progress: Progress,
    pub items: Vec<ReviewItem>,
    pub removed: Vec<RemovedScope>,
}

/// "My reviews": everything the console's review screen draws, in one call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ReviewQueue {
    pub reviewer: String,
    pub as_of: DateTime<Utc>,
    pub campaigns: Vec<QueueCampaign>,
    /// Agents in the queue in total (all pages).
    pub total_agents: u64,
    pub offset: u64,
    /// Pass as `offset` for the next page; null on the last page.
    pub next_offset: Option<u64>,
    pub agents: Vec<QueueAgent>,
    /// Whether the caller may decide the items shown (false for an auditor's read of every
    /// reviewer's items).
    #[serde(default = "yes")]
    pub may_decide: bool,
    /// Whether the caller may reassign items to another reviewer (admins).
    #[serde(default)]
    pub may_reassign: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReminderStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    Delivered,
    /// Gave up after the last retry.
    Failed,
    /// Not sent: the reviewer finished, a later reminder replaced it, or the campaign closed.
    Cancelled,
    /// Recorded only: the registry has no reminder webhook configured.
    Unsent,
}

impl ReminderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderStatus::Pending => "pending",
            ReminderStatus::Delivered => "delivered",
            ReminderStatus::Failed => "failed",
            ReminderStatus::Cancelled => "cancelled",
            ReminderStatus::Unsent => "unsent",
        }
    }

    pub fn parse(text: &str) -> Option<ReminderStatus> {
        [
            ReminderStatus::Pending,
            ReminderStatus::Delivered,
            ReminderStatus::Failed,
            ReminderStatus::Cancelled,
            ReminderStatus::Unsent,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One reminder to one reviewer for one slot of a campaign's schedule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct Reminder {
    pub id: i64,
    pub campaign_id: String,
    pub campaign_name: String,
    pub reviewer: String,
    /// The schedule slot, e.g. `week-2`, `before-3d`, `due-day`, `overdue-4d`.
    pub slot: String,
    /// When the slot came due.
    pub slot_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// The reviewer's undecided items when the reminder was computed.
    pub pending_items: u64,
    pub status: ReminderStatus,
    pub attempts: u32,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, Serialize, Debug, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReminderQuery {
    /// Admins only: one reviewer's reminders (default: everyone's for admins).
    pub reviewer: Option<String>,
    pub campaign_id: Option<String>,
    /// Newest first; reminders with an id below this one.
    pub before: Option<i64>,
    /// 1 to 1000 (default 200).
    pub limit: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, ToSchema)]
pub struct ReminderPage {
    pub reminders: Vec<Reminder>,
    pub next: Option<i64>,
}

/// The JSON body POSTed to the reminder webhook, once per reviewer per slot.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, ToSchema)]
pub struct ReminderMessage {
    /// Stable for one (campaign, reviewer, slot): also sent as the `Idempotency-Key` header,
    /// so that a receiver can drop a repeat after a lost acknowledgement.
    pub id: String,
    /// Always `access-review.reminder`.
    pub kind: String,
    pub campaign_id: String,
    pub campaign_name: String,
    pub reviewer: String,
    pub slot: String,
    pub due_at: DateTime<Utc>,
    pub days_until_due: i64,
    pub overdue: bool,
    pub pending_items: u64,
    pub sent_at: DateTime<Utc>,
}
