//! What happens to the console: keys, ticks and the answers of background work ([`Action`]), and
//! what the console asks to be done in the background ([`Effect`]).
//!
//! `update` turns actions into state changes plus effects; the runtime carries effects out on
//! tokio tasks (or the filter thread) and feeds their results back as actions. Nothing in
//! `update` waits for the network.

use std::sync::Arc;

use crossterm::event::KeyEvent;

use super::filter::{FilterJob, FilterOutcome};
use super::inventory::Inventory;
use super::keymap::Command;
use crate::client::ClientResult;
use crate::model::activity::HourlySeries;
use crate::model::api::{ChangeFeed, DecommissionOutcome, DecommissionPlan, RevokeOutcome, WhoAmI};
use crate::model::approvals::{AccessRequest, CreateRequest, RequestList};
use crate::model::catalogue::ResourceList;
use crate::model::flag::Flag;
use crate::model::review::{
    BulkCertifyOutcome, Campaign, CampaignDetail, CloseOutcome, CreateCampaign, DecisionOutcome,
    NoResponse, ReviewQueue, Verdict,
};
use crate::model::tokens::AgentTokens;
use crate::model::{Agent, AgentDetail, AuditEvent};

#[derive(Debug)]
pub enum Action {
    Key(KeyEvent),
    Resize {
        width: u16,
        height: u16,
    },
    /// Once a second: the clock, sync and cache timers.
    Tick {
        now: i64,
    },
    Command(Command),
    Me(ClientResult<WhoAmI>),
    /// One page of the change feed (a sync may deliver several).
    SyncPage(ChangeFeed),
    /// The end of a sync: `Ok` once the feed said there is nothing more.
    SyncDone(ClientResult<()>),
    Filtered(FilterOutcome),
    DetailLoaded {
        id: String,
        detail: ClientResult<AgentDetail>,
        audit: ClientResult<Vec<AuditEvent>>,
        tokens: ClientResult<AgentTokens>,
        /// Hourly activity over 7 days against the baseline band, and the last 24 h's use.
        activity: ClientResult<HourlySeries>,
    },
    /// The registry's answers to `a`: one per flag acknowledged.
    FlagsAcknowledged {
        agent_id: String,
        results: Vec<(String, ClientResult<Flag>)>,
    },
    OwnerSet {
        id: String,
        result: ClientResult<Agent>,
    },
    /// The registry's answers to owner changes (one agent or many; `undo` when they reverse
    /// the last change).
    OwnersAssigned {
        changes: Vec<OwnerChange>,
        results: Vec<ClientResult<Agent>>,
        undo: bool,
    },
    /// Agents handed to me from people who left (the reminder of owner succession).
    HandoversLoaded(ClientResult<crate::model::ownership::HandoverList>),
    /// The registry's ranking of owners for the picker of this agent.
    OwnerCandidatesLoaded {
        agent_id: String,
        result: ClientResult<crate::model::ownership::OwnerCandidates>,
    },
    Revoked {
        id: String,
        round_trip_ms: f64,
        result: ClientResult<RevokeOutcome>,
    },
    BulkRevoked {
        round_trip_ms: f64,
        results: Vec<(String, ClientResult<RevokeOutcome>)>,
    },
    Reinstated {
        id: String,
        result: ClientResult<Agent>,
    },
    PlanLoaded {
        id: String,
        result: ClientResult<DecommissionPlan>,
    },
    Decommissioned {
        id: String,
        result: ClientResult<DecommissionOutcome>,
    },
    NoteAdded {
        seq: i64,
        result: ClientResult<i64>,
    },
    /// The evidence files written (path, bytes), or why not.
    EvidenceExported(Result<Vec<(std::path::PathBuf, u64)>, String>),
    TimelineLoaded {
        generation: u64,
        append: bool,
        result: ClientResult<crate::model::timeline::TimelinePage>,
    },
    /// One action's Shared Signals fan-out (`GET /v1/signals/{seq}`), polled while SETs wait.
    FanOutLoaded {
        seq: i64,
        attempt: u32,
        result: ClientResult<crate::model::signals::FanOut>,
    },
    CacheSaved(Result<(), String>),
    ReviewsLoaded(ClientResult<ReviewQueue>),
    Decided {
        item_id: i64,
        verdict: Verdict,
        /// The justification sent (so that a refusal can reopen the prompt with it).
        justification: Option<String>,
        result: ClientResult<DecisionOutcome>,
    },
    BulkCertified {
        agent_id: String,
        result: ClientResult<BulkCertifyOutcome>,
    },
    /// Open campaigns with their progress, for `purpose`.
    CampaignsLoaded {
        purpose: CampaignPurpose,
        result: ClientResult<Vec<CampaignDetail>>,
    },
    CampaignClosed(ClientResult<Box<CloseOutcome>>),
    AcceptPreviewed {
        campaign_id: String,
        campaign_name: String,
        q: Option<String>,
        /// The marked agents asked about (empty: the filtered queue).
        agent_ids: Vec<String>,
        result: ClientResult<crate::model::review::AcceptOutcome>,
    },
    RecommendationsAccepted(ClientResult<crate::model::review::AcceptOutcome>),
    /// The registry's answer to a reassignment (`a` on the reviews screen).
    Reassigned {
        order: ReassignOrder,
        result: ClientResult<crate::model::review::ReassignOutcome>,
    },
    /// The registry's answer to the campaign form. `draft` is the form as sent, kept for a retry.
    CampaignCreated {
        draft: Box<super::app::CampaignForm>,
        result: ClientResult<Box<Campaign>>,
    },
    /// A theme read from the config folder (or why not).
    ThemeLoaded {
        name: String,
        result: Result<super::theme::Theme, String>,
    },
    /// The themes on offer.
    ThemeNames(Vec<String>),
    /// What waits for me (`GET /v1/approvals`, pending).
    ApprovalsLoaded(ClientResult<RequestList>),
    /// The grants of agents in the approvals queue, for the screen.
    ApprovalAgents(Vec<(String, ClientResult<AgentDetail>)>),
    /// The registry's answer to `y` / `n`.
    ApprovalDecided {
        id: String,
        approve: bool,
        result: ClientResult<AccessRequest>,
    },
    /// The catalogue, for the scope picker of this agent.
    CatalogueLoaded {
        agent_id: String,
        agent_name: String,
        result: ClientResult<ResourceList>,
    },
    /// The registry's answer to a scope request.
    ScopeRequested {
        agent_id: String,
        scope: String,
        result: ClientResult<AccessRequest>,
    },
    /// The Shared Signals streams (`GET /v1/streams`, admins).
    StreamsLoaded(ClientResult<crate::model::signals::StreamList>),
    /// The registry's answer to a pause (`pause: true`) or a resume.
    StreamSet {
        id: String,
        pause: bool,
        result: ClientResult<crate::model::signals::StreamSummary>,
    },
}

/// Why the open campaigns were loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignPurpose {
    Progress,
    Close,
}

/// Work for the runtime.
pub enum Effect {
    LoadMe,
    Sync {
        after: i64,
    },
    Filter(FilterJob),
    LoadDetail {
        id: String,
    },
    SetOwner {
        id: String,
        owner: String,
    },
    /// Owner changes on one agent (from the picker) or their undo (`u`).
    AssignOwners {
        changes: Vec<OwnerChange>,
        undo: bool,
    },
    /// One owner for every marked agent, confirmed first.
    BulkAssignOwner(Confirmed<BulkOwnerOrder>),
    /// Agents handed to me from people who left, for a reminder.
    LoadHandovers,
    /// The registry's owner ranking for the picker.
    LoadOwnerCandidates {
        agent_id: String,
    },
    /// One agent, at once: the one governance action that needs no confirmation.
    Revoke {
        id: String,
    },
    BulkRevoke(Confirmed<BulkRevokeOrder>),
    /// A revoke that asked first (`X` on the reviews screen); answered like [`Effect::Revoke`].
    Suspend(Confirmed<SuspendOrder>),
    Reinstate(Confirmed<ReinstateOrder>),
    LoadPlan {
        id: String,
    },
    Decommission(Confirmed<DecommissionOrder>),
    AddNote {
        seq: i64,
        text: String,
    },
    /// Download the open campaigns' evidence to `path` (None: one file per campaign in the
    /// current folder).
    ExportEvidence {
        path: Option<std::path::PathBuf>,
    },
    /// A page of the activity and audit timeline.
    LoadTimeline {
        generation: u64,
        query: crate::model::timeline::TimelineQuery,
        append: bool,
    },
    /// Read one action's fan-out after `delay_ms` (the revoke result's line, kept live).
    LoadFanOut {
        seq: i64,
        attempt: u32,
        delay_ms: u64,
    },
    SaveCache(Arc<Inventory>),
    LoadReviews(crate::model::review::QueueQuery),
    /// Count what accepting the recommendations of the marked agents (or, with none, of the
    /// filtered queue) would decide.
    PreviewAccept {
        campaign_id: String,
        campaign_name: String,
        q: Option<String>,
        agent_ids: Vec<String>,
    },
    /// Give a review item, or all of an agent's items in a campaign, to another reviewer.
    Reassign(ReassignOrder),
    AcceptRecommendations(Confirmed<AcceptOrder>),
    Decide {
        item_id: i64,
        verdict: Verdict,
        justification: Option<String>,
    },
    CertifyUnchanged {
        campaign_id: String,
        agent_id: String,
    },
    LoadCampaigns(CampaignPurpose),
    CloseCampaign(Confirmed<CloseCampaignOrder>),
    CreateCampaign {
        request: Box<CreateCampaign>,
        draft: Box<super::app::CampaignForm>,
    },
    /// Read a theme; `remember` also writes `theme = NAME` to config.toml once it loads.
    LoadTheme {
        name: String,
        remember: bool,
    },
    ListThemes,
    /// Ask what waits for me.
    LoadApprovals,
    /// The agents of the approvals queue (their grants and their use).
    LoadApprovalAgents(Vec<String>),
    /// `y` (approve) or `n` with its reason (deny); one key per decision.
    DecideApproval {
        id: String,
        approve: bool,
        reason: Option<String>,
    },
    LoadCatalogue {
        agent_id: String,
        agent_name: String,
    },
    RequestScope {
        agent_id: String,
        request: CreateRequest,
    },
    /// `a` on the detail: acknowledge these flags of the agent with one reason.
    AcknowledgeFlags {
        agent_id: String,
        ids: Vec<String>,
        reason: String,
    },
    /// The Shared Signals streams, for their screen.
    LoadStreams,
    /// `p` on the streams screen, confirmed first.
    PauseStream(Confirmed<PauseStreamOrder>),
    /// `e` on the streams screen.
    ResumeStream {
        id: String,
    },
}

impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::LoadMe => f.write_str("LoadMe"),
            Effect::Sync { after } => write!(f, "Sync({after})"),
            Effect::Filter(job) => write!(f, "Filter(gen {})", job.generation),
            Effect::LoadDetail { id } => write!(f, "LoadDetail({id})"),
            Effect::SetOwner { id, owner } => write!(f, "SetOwner({id}, {owner})"),
            Effect::AssignOwners { changes, undo } => {
                write!(f, "AssignOwners({} agents, undo {undo})", changes.len())
            }
            Effect::BulkAssignOwner(o) => {
                write!(f, "BulkAssignOwner({} agents)", o.order().changes.len())
            }
            Effect::LoadHandovers => f.write_str("LoadHandovers"),
            Effect::LoadOwnerCandidates { agent_id } => {
                write!(f, "LoadOwnerCandidates({agent_id})")
            }
            Effect::Revoke { id } => write!(f, "Revoke({id})"),
            Effect::BulkRevoke(o) => write!(f, "BulkRevoke({} agents)", o.order().agents.len()),
            Effect::Suspend(o) => write!(f, "Suspend({})", o.order().id),
            Effect::LoadTheme { name, remember } => write!(f, "LoadTheme({name}, {remember})"),
            Effect::ListThemes => f.write_str("ListThemes"),
            Effect::Reinstate(o) => write!(f, "Reinstate({})", o.order().id),
            Effect::LoadPlan { id } => write!(f, "LoadPlan({id})"),
            Effect::Decommission(o) => write!(f, "Decommission({})", o.order().id),
            Effect::AddNote { seq, .. } => write!(f, "AddNote({seq})"),
            Effect::ExportEvidence { path } => write!(f, "ExportEvidence({path:?})"),
            Effect::LoadTimeline {
                generation, append, ..
            } => write!(f, "LoadTimeline(gen {generation}, append {append})"),
            Effect::LoadFanOut { seq, attempt, .. } => write!(f, "LoadFanOut({seq}, {attempt})"),
            Effect::SaveCache(_) => f.write_str("SaveCache"),
            Effect::LoadReviews(_) => f.write_str("LoadReviews"),
            Effect::PreviewAccept { campaign_id, .. } => {
                write!(f, "PreviewAccept({campaign_id})")
            }
            Effect::AcceptRecommendations(o) => {
                write!(f, "AcceptRecommendations({})", o.order().campaign_id)
            }
            Effect::Reassign(o) if o.whole_agent => {
                write!(f, "Reassign(agent {} to {})", o.agent_id, o.reviewer)
            }
            Effect::Reassign(o) => write!(f, "Reassign(item {} to {})", o.item_id, o.reviewer),
            Effect::Decide {
                item_id, verdict, ..
            } => write!(f, "Decide({item_id}, {})", verdict.as_str()),
            Effect::CertifyUnchanged {
                campaign_id,
                agent_id,
            } => write!(f, "CertifyUnchanged({campaign_id}, {agent_id})"),
            Effect::LoadCampaigns(p) => write!(f, "LoadCampaigns({p:?})"),
            Effect::CloseCampaign(o) => write!(f, "CloseCampaign({})", o.order().id),
            Effect::CreateCampaign { request, .. } => {
                write!(f, "CreateCampaign({})", request.name)
            }
            Effect::LoadApprovals => f.write_str("LoadApprovals"),
            Effect::LoadApprovalAgents(ids) => write!(f, "LoadApprovalAgents({})", ids.len()),
            Effect::DecideApproval { id, approve, .. } => {
                write!(
                    f,
                    "DecideApproval({id}, {})",
                    if *approve { "approve" } else { "deny" }
                )
            }
            Effect::LoadCatalogue { agent_id, .. } => write!(f, "LoadCatalogue({agent_id})"),
            Effect::RequestScope { agent_id, request } => {
                write!(f, "RequestScope({agent_id}, {})", request.scope)
            }
            Effect::AcknowledgeFlags { agent_id, ids, .. } => {
                write!(f, "AcknowledgeFlags({agent_id}, {} flags)", ids.len())
            }
            Effect::LoadStreams => f.write_str("LoadStreams"),
            Effect::PauseStream(o) => write!(f, "PauseStream({})", o.order().id),
            Effect::ResumeStream { id } => write!(f, "ResumeStream({id})"),
        }
    }
}

/// A destructive order that a person has confirmed. Only [`Pending::accept`] makes one, so an
/// effect that needs confirmation cannot be built without it.
#[derive(Debug)]
pub struct Confirmed<T>(T);

impl<T> Confirmed<T> {
    pub fn order(&self) -> &T {
        &self.0
    }

    pub fn into_order(self) -> T {
        self.0
    }
}

/// How a pending order is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Two buttons; `confirm_focused` starts false (the default is Cancel).
    Buttons { confirm_focused: bool },
    /// The person types `expected` exactly.
    Typed { expected: String, typed: String },
}

/// An order waiting for a person's yes.
#[derive(Debug)]
pub struct Pending<T> {
    order: T,
    pub confirmation: Confirmation,
}

impl<T> Pending<T> {
    /// Asks with buttons, Cancel focused.
    pub fn buttons(order: T) -> Pending<T> {
        Pending {
            order,
            confirmation: Confirmation::Buttons {
                confirm_focused: false,
            },
        }
    }

    /// Asks for a typed phrase.
    pub fn typed(order: T, expected: String) -> Pending<T> {
        Pending {
            order,
            confirmation: Confirmation::Typed {
                expected,
                typed: String::new(),
            },
        }
    }

    pub fn order(&self) -> &T {
        &self.order
    }

    /// True when Enter would release the order.
    pub fn ready(&self) -> bool {
        match &self.confirmation {
            Confirmation::Buttons { confirm_focused } => *confirm_focused,
            Confirmation::Typed { expected, typed } => typed.trim() == expected,
        }
    }

    /// Releases the order if the person confirmed it; otherwise hands it back unchanged.
    pub fn accept(self) -> Result<Confirmed<T>, Pending<T>> {
        if self.ready() {
            Ok(Confirmed(self.order))
        } else {
            Err(self)
        }
    }
}

/// One stream to pause, confirmed first: its receiver hears nothing until it is resumed.
#[derive(Debug, Clone)]
pub struct PauseStreamOrder {
    pub id: String,
    /// `resource:<id>` or `admin:<email>`.
    pub receiver: String,
    /// Events waiting now (they keep waiting; new ones join them).
    pub pending: u64,
}

#[derive(Debug, Clone)]
pub struct ReinstateOrder {
    pub id: String,
    pub name: String,
}

/// One agent to revoke, confirmed first.
#[derive(Debug, Clone)]
pub struct SuspendOrder {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct DecommissionOrder {
    pub id: String,
    pub name: String,
    pub plan: DecommissionPlan,
    /// Names of the agents in the plan, for the dialog (ids when unknown locally).
    pub names: Vec<String>,
}

/// `Y` on the reviews screen: accept the recommendations of the filtered queue, confirmed by
/// typing the count the registry's dry run gave.
#[derive(Debug, Clone)]
pub struct AcceptOrder {
    pub campaign_id: String,
    pub campaign_name: String,
    pub q: Option<String>,
    /// The marked agents (empty: every agent the filter `q` shows).
    pub agent_ids: Vec<String>,
    /// Items the dry run would decide (sent back as `expect`).
    pub items: u64,
    pub certify: u64,
    pub revoke: u64,
    pub agents: u64,
    /// Items the dry run would skip (they need a decision by hand).
    pub skipped: u64,
}

/// `a` on the reviews screen: one item, or every item of one agent in one campaign, to another
/// reviewer (`reviewer` is filled in when the picker chooses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignOrder {
    pub campaign_id: String,
    pub agent_id: String,
    pub agent_name: String,
    /// The selected item and its scope.
    pub item_id: i64,
    pub scope: String,
    /// The selected item's reviewer now (not offered in the picker).
    pub current: String,
    /// The agent's items in the caller's queue (what "all" moves at least).
    pub agent_items: usize,
    /// True: every item of the agent in the campaign (every reviewer's); false: the item.
    pub whole_agent: bool,
    /// The chosen reviewer's email.
    pub reviewer: String,
}

#[derive(Debug, Clone)]
pub struct CloseCampaignOrder {
    pub id: String,
    pub name: String,
    pub no_response: NoResponse,
    /// Undecided items the no-response outcome will be applied to.
    pub pending: u64,
    /// Of those, how many the registry recommends revoking (for the recommendation outcome).
    pub pending_recommended_revoke: u64,
}

/// One agent's owner change: `before` is what the undo restores (None: unowned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerChange {
    pub id: String,
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl OwnerChange {
    /// The change that undoes this one.
    pub fn reversed(&self) -> OwnerChange {
        OwnerChange {
            id: self.id.clone(),
            name: self.name.clone(),
            before: self.after.clone(),
            after: self.before.clone(),
        }
    }
}

/// One owner for several marked agents.
#[derive(Debug, Clone)]
pub struct BulkOwnerOrder {
    pub owner: String,
    pub owner_name: String,
    pub changes: Vec<OwnerChange>,
}

#[derive(Debug, Clone)]
pub struct BulkRevokeOrder {
    /// (id, name) of every marked agent.
    pub agents: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_confirmation_releases_an_order() {
        let p = Pending::buttons(ReinstateOrder {
            id: "a".into(),
            name: "n".into(),
        });
        let mut p = p.accept().expect_err("Cancel is the default");
        p.confirmation = Confirmation::Buttons {
            confirm_focused: true,
        };
        assert_eq!(p.accept().unwrap().order().id, "a");

        let t = Pending::typed(BulkRevokeOrder { agents: vec![] }, "revoke 2".into());
        let mut t = t.accept().expect_err("nothing typed");
        t.confirmation = Confirmation::Typed {
            expected: "revoke 2".into(),
            typed: "revoke 3".into(),
        };
        let mut t = t.accept().expect_err("wrong phrase");
        t.confirmation = Confirmation::Typed {
            expected: "revoke 2".into(),
            typed: "revoke 2".into(),
        };
        assert!(t.accept().is_ok());
    }
}
