//! The console's state. Changed only by `update`; read by the views.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::filter::{FilterSpec, QuickFilter, Sort};
use super::inventory::{AgentRow, Inventory};
use super::keymap::{Command, Keymap};
use super::list::{ListCursor, Scroll};
use super::theme::Theme;
use crate::model::api::WhoAmI;
use crate::model::permissions::Reach;
use crate::model::review::{QueueAgent, ReviewItem, ReviewQueue};
use crate::model::tokens::AgentTokens;
use crate::model::{AgentDetail, AgentStatus, AuditEvent, Role};

// The overlays live in their own rooms; their state types are named here too, for callers that
// think of them as the app's.
pub use super::overlays::Overlay;
pub use super::overlays::campaign_form::{CampaignField, CampaignForm};
pub use super::overlays::confirm::ConfirmState;
pub use super::overlays::notice::Notice;
pub use super::overlays::picker::{PickEntry, PickerState};
pub use super::overlays::required_text::{Justify, RequiredText};
pub use super::overlays::revoke_result::RevokeResult;

/// The smallest terminal the console lays out; below it says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// How the console last heard from the registry.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Not heard from yet (showing the cache).
    Connecting,
    Online,
    /// Unreachable or refusing: read-only from the cache.
    Offline {
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Ok,
    Error,
}

#[derive(Debug)]
pub struct DetailState {
    pub id: String,
    /// The agent's row in the inventory (row indices are stable), when it has one.
    pub row: Option<u32>,
    pub detail: Option<Result<AgentDetail, String>>,
    pub audit: Option<Result<Vec<AuditEvent>, String>>,
    /// Live tokens in which the agent acts, and its exchange rate.
    pub tokens: Option<Result<AgentTokens, String>>,
    /// Hourly activity over 7 days with the baseline band, and the last 24 h's scopes and
    /// audiences (first uses marked).
    pub activity: Option<Result<crate::model::activity::HourlySeries, String>>,
    pub scroll: Scroll,
    /// Sub-agents and instances below it, as a tree (built when the detail arrives).
    pub tree: Vec<TreeNode>,
}

/// One line of the detail's tree of sub-agents and instances.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeNode {
    /// The branches before the name (`│  ├─ `).
    pub prefix: String,
    pub name: String,
    pub kind: crate::model::AgentKind,
    pub status: crate::model::AgentStatus,
}

/// "My reviews": the caller's review queue as the registry last answered it.
#[derive(Debug, Default)]
pub struct ReviewsState {
    /// None while the first answer is on its way.
    pub queue: Option<Result<ReviewQueue, String>>,
    /// Over every item of every agent ([`ReviewsState::flat`]), agents in server order.
    pub items: ListCursor,
    /// Over the agents list on the left; follows the item cursor.
    pub agents: ListCursor,
    pub loading: bool,
    /// A decision landed while a reload was on its way: that answer is out of date.
    pub stale: bool,
    /// A decision was made since the queue was last seen complete: at the last one, the
    /// screen sums up.
    pub deciding: bool,
    /// `/` on this screen: the registry filters the queue's agents by this text.
    pub filter: String,
    /// `s`: the order the registry sorts the agents in.
    pub sort: crate::model::review::QueueSort,
    /// Every reviewer's items (auditors): read-only unless the registry says otherwise.
    pub all: bool,
    /// Agents asked for: one page to start with, one more each time the cursor nears the end.
    pub limit: u32,
    /// Agents marked for `Y`, as (campaign id, agent id): kept across reloads, filters and
    /// pages; cleared by Esc and once `Y` has decided them.
    pub marks: std::collections::BTreeSet<(String, String)>,
}

impl ReviewsState {
    /// What to ask the registry for: the filter, the order and as many agents as are loaded.
    pub fn query(&self) -> crate::model::review::QueueQuery {
        let filter = self.filter.trim();
        crate::model::review::QueueQuery {
            limit: Some(self.limit.max(super::runtime::REVIEW_PAGE)),
            q: (!filter.is_empty()).then(|| filter.to_string()),
            sort: Some(self.sort),
            all: self.all.then_some(true),
            ..Default::default()
        }
    }

    /// False when the registry says the items shown are only to be read (an auditor's).
    pub fn may_decide(&self) -> bool {
        match &self.queue {
            Some(Ok(q)) => q.may_decide,
            // Before the answer, every reviewer's items are read-only: no key is offered that
            // the answer could take back.
            _ => !self.all,
        }
    }
    /// Every item of every agent, in the server's order: (agent index, item index).
    pub fn flat(&self) -> Vec<(usize, usize)> {
        match &self.queue {
            Some(Ok(q)) => q
                .agents
                .iter()
                .enumerate()
                .flat_map(|(a, agent)| (0..agent.items.len()).map(move |i| (a, i)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The cursor as (agent index, item index).
    pub fn at(&self) -> Option<(usize, usize)> {
        self.flat().get(self.items.selected).copied()
    }

    pub fn selected_agent(&self) -> Option<&QueueAgent> {
        let (a, _) = self.at()?;
        match &self.queue {
            Some(Ok(q)) => q.agents.get(a),
            _ => None,
        }
    }

    pub fn selected_item(&self) -> Option<&ReviewItem> {
        let (a, i) = self.at()?;
        match &self.queue {
            Some(Ok(q)) => q.agents.get(a)?.items.get(i),
            _ => None,
        }
    }

    fn agent_count(&self) -> usize {
        match &self.queue {
            Some(Ok(q)) => q.agents.len(),
            _ => 0,
        }
    }

    /// Puts the cursor on an entry of [`ReviewsState::flat`]; the agents list follows.
    pub fn select(&mut self, index: usize, agent_page: usize) {
        let len = self.flat().len();
        self.items.select(index, len, 1);
        let agent = self.at().map_or(0, |(a, _)| a);
        let n = self.agent_count();
        self.agents.select(agent, n, agent_page);
    }

    pub fn move_by(&mut self, delta: isize, agent_page: usize) {
        let len = self.flat().len();
        self.items.move_by(delta, len, 1);
        self.select(self.items.selected, agent_page);
    }

    /// Puts the cursor on an item by id (after a reload); false when it is gone.
    pub fn select_item(&mut self, item_id: i64, agent_page: usize) -> bool {
        let Some(Ok(q)) = &self.queue else {
            return false;
        };
        let found = self
            .flat()
            .iter()
            .position(|&(a, i)| q.agents[a].items[i].id == item_id);
        if let Some(p) = found {
            self.select(p, agent_page);
        }
        found.is_some()
    }

    /// Whether this agent of the queue is marked for `Y`.
    pub fn is_marked(&self, agent: &QueueAgent) -> bool {
        self.marks
            .contains(&(agent.campaign_id.clone(), agent.agent_id.clone()))
    }

    /// False when the registry says the caller may not reassign items (only admins may).
    pub fn may_reassign(&self) -> bool {
        matches!(&self.queue, Some(Ok(q)) if q.may_reassign)
    }

    /// Undecided items of the agent under the cursor.
    pub fn undecided_here(&self) -> usize {
        self.selected_agent().map_or(0, |a| {
            a.items
                .iter()
                .filter(|i| i.decision == crate::model::review::Decision::None)
                .count()
        })
    }
}

#[derive(Debug)]
pub enum Screen {
    Inventory,
    Detail(Box<DetailState>),
    Reviews(Box<ReviewsState>),
    /// What waits for me to approve or deny (`A`).
    Approvals(Box<super::approvals::ApprovalsState>),
    /// The Shared Signals streams (`:streams`, admins).
    Streams(Box<super::streams::StreamsState>),
}

pub struct App {
    pub server_url: String,
    pub config_dir: PathBuf,
    pub me: Option<WhoAmI>,
    pub me_in_flight: bool,
    pub link: Link,
    pub inventory: Arc<Inventory>,
    /// What the table shows now (row indices, in order) and what it was computed for.
    pub view: Arc<[u32]>,
    pub view_spec: Option<FilterSpec>,
    pub view_version: u64,
    /// Rows of the quick filter's view before the `/` query (the count's denominator).
    pub scope_len: usize,
    /// What the table should show; a newer generation than the view's means "filtering…".
    pub spec: FilterSpec,
    pub generation: u64,
    pub filtering: bool,
    pub last_filter_ms: Option<f64>,
    /// The inventory's cursor over `view`.
    pub cursor: ListCursor,
    pub marks: BTreeSet<u32>,
    /// The last owner change the registry accepted, which `u` undoes (another owner change).
    pub last_owner_change: Option<Vec<crate::console::action::OwnerChange>>,
    pub screen: Screen,
    pub overlay: Option<Overlay>,
    pub history: Vec<String>,
    pub message: Option<(Tone, String)>,
    pub theme: Theme,
    pub no_color: bool,
    pub keymap: Keymap,
    /// Unix seconds, from the last tick.
    pub now: i64,
    pub width: u16,
    pub height: u16,
    pub sync_in_flight: bool,
    /// During a first sync: (agents received so far, agents the registry will send).
    pub sync_progress: Option<(u64, u64)>,
    /// A person asked for this sync (ctrl-r): report how it went.
    pub sync_requested: bool,
    pub last_sync_attempt: i64,
    /// Set by a page of the feed; the table is refiltered when the sync ends.
    pub sync_dirty: bool,
    /// When the view last matched the registry (unix seconds); written to the cache on save.
    pub synced_at: Option<i64>,
    pub cache_dirty: bool,
    pub saving: bool,
    pub last_save: i64,
    pub quit: bool,
    /// Header counts and the inventory version they were computed for (by `update`, once per
    /// version, never while drawing).
    pub counts: (u64, super::inventory::Counts),
    /// A campaign form cancelled with Esc (or refused by the registry), reopened by its key.
    pub campaign_draft: Option<Box<CampaignForm>>,
    /// What waits for me to decide, polled with every sync (the header counts it everywhere).
    pub waiting: super::approvals::Waiting,
}

impl App {
    pub fn new(
        server_url: &str,
        config_dir: PathBuf,
        inventory: Inventory,
        theme: Theme,
        keymap: Keymap,
        no_color: bool,
        now: i64,
    ) -> App {
        let spec = FilterSpec {
            quick: QuickFilter::All,
            query: String::new(),
            sort: Sort::default(),
            me: inventory.persona.clone(),
            now: round_now(now),
        };
        // The cache is written in name order: the first frame shows it without waiting for a sort.
        let view: Arc<[u32]> = (0..inventory.rows().len() as u32)
            .filter(|&i| !inventory.row(i).hidden)
            .collect();
        let version = inventory.version;
        let synced_at = inventory.synced_at;
        let counts = (version, inventory.counts());
        let scope_len = view.len();
        App {
            server_url: server_url.to_string(),
            config_dir,
            me: None,
            me_in_flight: false,
            link: Link::Connecting,
            inventory: Arc::new(inventory),
            view,
            view_spec: None,
            scope_len,
            view_version: version,
            spec,
            generation: 0,
            filtering: false,
            last_filter_ms: None,
            cursor: ListCursor::default(),
            marks: BTreeSet::new(),
            last_owner_change: None,
            screen: Screen::Inventory,
            overlay: None,
            history: Vec::new(),
            message: None,
            theme,
            no_color,
            keymap,
            now,
            width: 120,
            height: 40,
            sync_in_flight: false,
            sync_progress: None,
            sync_requested: false,
            last_sync_attempt: i64::MIN / 2,
            sync_dirty: false,
            synced_at,
            cache_dirty: false,
            saving: false,
            last_save: now,
            quit: false,
            counts,
            campaign_draft: None,
            waiting: Default::default(),
        }
    }

    /// The row under the cursor on the inventory.
    pub fn selected_row(&self) -> Option<u32> {
        self.view.get(self.cursor.selected).copied()
    }

    /// The agent the verbs act on: the detail's agent, else the selected row.
    pub fn target(&self) -> Option<(String, String, Option<AgentRow>)> {
        match &self.screen {
            Screen::Detail(d) => {
                let row = d
                    .row
                    .and_then(|i| self.inventory.rows().get(i as usize).copied());
                let name = match (&d.detail, &row) {
                    (Some(Ok(detail)), _) => detail.agent.name.clone(),
                    (_, Some(r)) => self.inventory.text(r.name).to_string(),
                    _ => d.id.clone(),
                };
                Some((d.id.clone(), name, row))
            }
            Screen::Reviews(r) => {
                let agent = r.selected_agent()?;
                let row = self
                    .inventory
                    .find_scan(&agent.agent_id)
                    .map(|i| *self.inventory.row(i));
                Some((agent.agent_id.clone(), agent.agent_name.clone(), row))
            }
            Screen::Approvals(a) => {
                let id = a.selected_id.as_ref()?;
                let request = self.waiting.get(self.waiting.position(id)?)?;
                let row = self
                    .inventory
                    .find_scan(&request.agent_id)
                    .map(|i| *self.inventory.row(i));
                Some((request.agent_id.clone(), request.agent_name.clone(), row))
            }
            // A stream is no agent: the agent verbs have nothing to act on there.
            Screen::Streams(_) => None,
            Screen::Inventory => {
                let i = self.selected_row()?;
                let row = *self.inventory.row(i);
                Some((
                    self.inventory.text(row.id).to_string(),
                    self.inventory.text(row.name).to_string(),
                    Some(row),
                ))
            }
        }
    }

    pub fn roles(&self) -> Option<&[Role]> {
        self.me.as_ref().map(|m| m.person.roles.as_slice())
    }

    pub fn my_email(&self) -> Option<&str> {
        self.me
            .as_ref()
            .map(|m| m.person.email.as_str())
            .or(self.inventory.persona.as_deref())
    }

    /// What `/v1/me` says this person may do: the registry's policy, never the console's.
    fn reach(&self, command: Command) -> Option<Reach> {
        let may = self.me.as_ref()?.may.as_ref()?;
        let yes = |b: bool| if b { Reach::All } else { Reach::None };
        Some(match command {
            Command::AssignOwner => may.set_owner,
            Command::Revoke => may.revoke,
            Command::Reinstate => may.reinstate,
            Command::Decommission => may.decommission,
            Command::AcknowledgeFlag => may.acknowledge_flags,
            Command::CampaignProgress => yes(may.read_all_reviews),
            Command::CloseCampaign | Command::NewCampaign | Command::Reassign => {
                yes(may.administer_campaigns)
            }
            Command::AuditAll => yes(may.read_audit),
            Command::ExportEvidence => yes(may.read_all_reviews),
            Command::Streams | Command::PauseStream | Command::ResumeStream => {
                yes(may.manage_streams)
            }
            _ => Reach::All,
        })
    }

    /// Whether the signed-in person may do this to this agent (as `/v1/me` says). Only used to
    /// hide keys and explain; the registry decides every call anyway. Before `/v1/me` answers
    /// (or from a registry that does not say), everything is offered.
    pub fn permits(&self, command: Command, row: Option<&AgentRow>) -> Result<(), String> {
        // The review queue says whether its items may be decided (an auditor's may not).
        if let Screen::Reviews(r) = &self.screen
            && !r.may_decide()
            && matches!(
                command,
                Command::CertifyScope
                    | Command::RevokeScope
                    | Command::CertifyUnchanged
                    | Command::AcceptAgent
                    | Command::AcceptFiltered
                    | Command::Mark
            )
        {
            return Err(super::update::reviews::READ_ONLY.to_string());
        }
        // The queue says whether its items may be given to another reviewer (admins').
        if let Screen::Reviews(r) = &self.screen
            && command == Command::Reassign
            && !r.may_reassign()
        {
            return Err(super::update::reviews::NO_REASSIGN.to_string());
        }
        let Some(reach) = self.reach(command) else {
            return Ok(());
        };
        let owns = row.is_some_and(|r| {
            self.my_email()
                .is_some_and(|me| self.inventory.symbol(r.owner).eq_ignore_ascii_case(me))
        });
        if reach.covers(owns) {
            return Ok(());
        }
        let mut why = match command {
            Command::AssignOwner => "you may not assign owners".to_string(),
            Command::Revoke => "you may not revoke this agent".to_string(),
            Command::Reinstate => "you may not reinstate agents".to_string(),
            Command::Decommission => "you may not decommission this agent".to_string(),
            Command::AcknowledgeFlag => "you may not acknowledge this agent's flags".to_string(),
            Command::CampaignProgress => "you may not read every campaign's progress".to_string(),
            Command::CloseCampaign => "you may not close campaigns".to_string(),
            Command::NewCampaign => "you may not create campaigns".to_string(),
            Command::Reassign => "you may not reassign review items (admins do)".to_string(),
            Command::ExportEvidence => "you may not export review evidence".to_string(),
            Command::Streams | Command::PauseStream | Command::ResumeStream => {
                "you may not see the Shared Signals streams (admins do)".to_string()
            }
            Command::AuditAll => {
                "you may not read the whole audit log (t shows your agents' own)".to_string()
            }
            _ => "you may not do this".to_string(),
        };
        if reach == Reach::Owned {
            why.push_str(" (only agents you own)");
        }
        why.push_str(", says the registry");
        Err(why)
    }

    /// Whether the agent's state allows this now. On the detail, the registry says (its
    /// `may`); elsewhere the status the registry last sent for the row decides.
    pub fn agent_allows(&self, command: Command, row: Option<&AgentRow>) -> bool {
        if let Screen::Detail(d) = &self.screen
            && let Some(Ok(detail)) = &d.detail
            && let Some(may) = &detail.may
        {
            return match command {
                Command::Revoke => may.revoke,
                Command::Reinstate => may.reinstate,
                Command::Decommission => may.decommission,
                Command::AssignOwner => may.set_owner,
                _ => true,
            };
        }
        let status = row.map(|r| r.status);
        match command {
            Command::Reinstate => status.is_none_or(|s| s == AgentStatus::Suspended),
            Command::Decommission | Command::AssignOwner => {
                status.is_none_or(|s| s != AgentStatus::Decommissioned)
            }
            _ => true,
        }
    }

    /// Whether the person may do this to some agent (the help lists only such keys).
    pub fn may_at_all(&self, command: Command) -> bool {
        self.reach(command).is_none_or(|r| r != Reach::None)
    }

    /// True when typed text goes into a field (so that a paste cannot trigger commands).
    pub fn accepts_text(&self) -> bool {
        self.overlay.as_ref().is_some_and(Overlay::takes_text)
    }

    pub fn on_detail(&self) -> bool {
        matches!(self.screen, Screen::Detail(_))
    }

    pub fn on_reviews(&self) -> bool {
        matches!(self.screen, Screen::Reviews(_))
    }

    /// Which keymap scope the current screen uses.
    pub fn key_scope(&self) -> super::keymap::Scope {
        if let Some(o) = &self.overlay {
            return o.scope();
        }
        match self.screen {
            Screen::Inventory => super::keymap::Scope::Inventory,
            Screen::Detail(_) => super::keymap::Scope::Detail,
            Screen::Reviews(_) => super::keymap::Scope::Reviews,
            Screen::Approvals(_) => super::keymap::Scope::Approvals,
            Screen::Streams(_) => super::keymap::Scope::Streams,
        }
    }

    pub fn too_small(&self) -> bool {
        self.width < MIN_WIDTH || self.height < MIN_HEIGHT
    }

    pub fn read_only(&self) -> bool {
        matches!(self.link, Link::Offline { .. })
    }
}

/// "Now" as filters see it: whole hours, so that the clock does not invalidate every result.
pub fn round_now(now: i64) -> i64 {
    now - now.rem_euclid(3600)
}
