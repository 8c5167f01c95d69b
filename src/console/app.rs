//! The console's state. Changed only by `update`; read by the views.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::action::{
    BulkRevokeOrder, CloseCampaignOrder, DecommissionOrder, Pending, ReinstateOrder,
};
use super::filter::{FilterSpec, QuickFilter, Sort};
use super::inventory::{AgentRow, Inventory};
use super::keymap::{Command, Keymap};
use super::theme::Theme;
use crate::model::api::{RevokeOutcome, WhoAmI};
use crate::model::review::{NoResponse, QueueAgent, ReviewItem, ReviewQueue, Verdict};
use crate::model::tokens::AgentTokens;
use crate::model::{AgentDetail, AuditEvent, Role};

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
    pub scroll: u16,
    /// How far the detail can scroll, as last drawn.
    pub max_scroll: std::cell::Cell<u16>,
}

/// "My reviews": the caller's review queue as the registry last answered it.
#[derive(Debug, Default)]
pub struct ReviewsState {
    /// None while the first answer is on its way.
    pub queue: Option<Result<ReviewQueue, String>>,
    /// The cursor: an index into [`ReviewsState::flat`] (agent, item), agents in server order.
    pub selected: usize,
    pub loading: bool,
}

impl ReviewsState {
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

    pub fn cursor(&self) -> Option<(usize, usize)> {
        self.flat().get(self.selected).copied()
    }

    pub fn selected_agent(&self) -> Option<&QueueAgent> {
        let (a, _) = self.cursor()?;
        match &self.queue {
            Some(Ok(q)) => q.agents.get(a),
            _ => None,
        }
    }

    pub fn selected_item(&self) -> Option<&ReviewItem> {
        let (a, i) = self.cursor()?;
        match &self.queue {
            Some(Ok(q)) => q.agents.get(a)?.items.get(i),
            _ => None,
        }
    }

    /// Puts the cursor on an item by id (after a reload); false when it is gone.
    pub fn select_item(&mut self, item_id: i64) -> bool {
        let Some(Ok(q)) = &self.queue else {
            return false;
        };
        let found = self
            .flat()
            .iter()
            .position(|&(a, i)| q.agents[a].items[i].id == item_id);
        if let Some(p) = found {
            self.selected = p;
        }
        found.is_some()
    }
}

#[derive(Debug)]
pub enum Screen {
    Inventory,
    Detail(Box<DetailState>),
    Reviews(Box<ReviewsState>),
}

/// A review decision waiting for its justification.
#[derive(Debug)]
pub struct JustifyState {
    pub item_id: i64,
    pub verdict: Verdict,
    pub agent_name: String,
    pub scope: String,
    /// Why the registry wants one (the recommendation's reason or its refusal).
    pub why: String,
    pub text: String,
}

/// The fields of the campaign form, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignField {
    Name,
    Due,
    Team,
    Fallback,
    NoResponse,
    Quarterly,
}

impl CampaignField {
    pub const ALL: [CampaignField; 6] = [
        CampaignField::Name,
        CampaignField::Due,
        CampaignField::Team,
        CampaignField::Fallback,
        CampaignField::NoResponse,
        CampaignField::Quarterly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CampaignField::Name => "name",
            CampaignField::Due => "due date",
            CampaignField::Team => "team filter",
            CampaignField::Fallback => "fallback reviewer",
            CampaignField::NoResponse => "no-response outcome",
            CampaignField::Quarterly => "quarterly",
        }
    }

    /// True for the fields that take typed text (the others are chosen with left/right/space).
    pub fn is_text(self) -> bool {
        !matches!(self, CampaignField::NoResponse | CampaignField::Quarterly)
    }
}

/// The admin's campaign form. Kept as a draft when cancelled, so Esc never loses typing.
#[derive(Debug, Clone)]
pub struct CampaignForm {
    pub name: String,
    /// YYYY-MM-DD; the campaign is due at the end of that day (UTC).
    pub due: String,
    /// Empty: every active agent.
    pub team: String,
    /// Empty: the creator.
    pub fallback: String,
    pub no_response: NoResponse,
    pub quarterly: bool,
    pub focus: CampaignField,
    /// Why the last Enter was refused locally.
    pub error: Option<String>,
}

impl CampaignForm {
    /// A fresh form: named after the next calendar quarter, due in 30 days.
    pub fn new(now: i64) -> CampaignForm {
        use chrono::Datelike;
        let today = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let quarter = today.month0() / 3 + 1;
        let (year, next) = if quarter == 4 {
            (today.year() + 1, 1)
        } else {
            (today.year(), quarter + 1)
        };
        let due = today + chrono::Duration::days(30);
        CampaignForm {
            name: format!("{year}-Q{next} agent certification"),
            due: due.format("%Y-%m-%d").to_string(),
            team: String::new(),
            fallback: String::new(),
            no_response: NoResponse::Keep,
            quarterly: false,
            focus: CampaignField::Name,
            error: None,
        }
    }

    /// The focused text field, when the focus is on one.
    pub fn text_mut(&mut self) -> Option<&mut String> {
        match self.focus {
            CampaignField::Name => Some(&mut self.name),
            CampaignField::Due => Some(&mut self.due),
            CampaignField::Team => Some(&mut self.team),
            CampaignField::Fallback => Some(&mut self.fallback),
            CampaignField::NoResponse | CampaignField::Quarterly => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PickEntry {
    /// Index into the inventory's people.
    pub person: usize,
    /// False for people who have left: listed, marked, never chosen.
    pub offered: bool,
}

#[derive(Debug)]
pub struct PickerState {
    pub agent_id: String,
    pub agent_name: String,
    pub query: String,
    pub entries: Vec<PickEntry>,
    /// Index into `entries` (always an offered one, when any is).
    pub selected: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NoteState {
    Editing,
    Sending,
    Added(i64),
    Failed(String),
}

#[derive(Debug)]
pub struct RevokeResult {
    pub name: String,
    pub outcome: RevokeOutcome,
    pub round_trip_ms: f64,
    pub note: String,
    pub note_state: NoteState,
}

#[derive(Debug)]
pub enum ConfirmState {
    Reinstate(Pending<ReinstateOrder>),
    Decommission(Pending<DecommissionOrder>),
    BulkRevoke(Pending<BulkRevokeOrder>),
    CloseCampaign(Pending<CloseCampaignOrder>),
}

impl ConfirmState {
    /// True when the confirmation is a typed phrase rather than buttons.
    pub fn is_typed(&self) -> bool {
        let c = match self {
            ConfirmState::Reinstate(p) => &p.confirmation,
            ConfirmState::Decommission(p) => &p.confirmation,
            ConfirmState::BulkRevoke(p) => &p.confirmation,
            ConfirmState::CloseCampaign(p) => &p.confirmation,
        };
        matches!(c, super::action::Confirmation::Typed { .. })
    }
}

#[derive(Debug)]
pub enum Overlay {
    /// Typing a `/` query; the table follows as you type.
    FilterInput,
    CommandLine {
        text: String,
        /// Position in the history while browsing it with Up/Down.
        history_pos: Option<usize>,
    },
    Picker(PickerState),
    Help {
        scroll: u16,
    },
    /// Waiting for the registry before a dialog can open (e.g. the decommission plan).
    Busy(String),
    Confirm(ConfirmState),
    /// A review decision needs a justification: typed, then re-sent with it.
    Justify(JustifyState),
    /// An admin fills in a new campaign.
    CampaignForm(Box<CampaignForm>),
    RevokeResult(Box<RevokeResult>),
    Notice {
        title: String,
        lines: Vec<String>,
        tone: Tone,
    },
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
    /// What the table should show; a newer generation than the view's means "filtering…".
    pub spec: FilterSpec,
    pub generation: u64,
    pub filtering: bool,
    pub last_filter_ms: Option<f64>,
    pub selected: usize,
    pub offset: usize,
    pub marks: BTreeSet<u32>,
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
    /// Header counts, computed once per inventory version.
    pub counts_cache: std::cell::Cell<Option<(u64, super::inventory::Counts)>>,
    /// A campaign form cancelled with Esc (or refused by the registry), reopened by its key.
    pub campaign_draft: Option<Box<CampaignForm>>,
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
        App {
            server_url: server_url.to_string(),
            config_dir,
            me: None,
            me_in_flight: false,
            link: Link::Connecting,
            inventory: Arc::new(inventory),
            view,
            view_spec: None,
            view_version: version,
            spec,
            generation: 0,
            filtering: false,
            last_filter_ms: None,
            selected: 0,
            offset: 0,
            marks: BTreeSet::new(),
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
            sync_requested: false,
            last_sync_attempt: i64::MIN / 2,
            sync_dirty: false,
            synced_at,
            cache_dirty: false,
            saving: false,
            last_save: now,
            quit: false,
            counts_cache: std::cell::Cell::new(None),
            campaign_draft: None,
        }
    }

    /// The row under the cursor on the inventory.
    pub fn selected_row(&self) -> Option<u32> {
        self.view.get(self.selected).copied()
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

    /// Whether the signed-in person may do this (as the registry's policy says). Only used to
    /// hide keys and explain; the registry decides every call anyway.
    pub fn permits(&self, command: Command, row: Option<&AgentRow>) -> Result<(), String> {
        let Some(roles) = self.roles() else {
            return Ok(());
        };
        let has = |r: Role| roles.contains(&r);
        let owns = row.is_some_and(|r| {
            self.my_email()
                .is_some_and(|me| self.inventory.symbol(r.owner).eq_ignore_ascii_case(me))
        });
        let ok = match command {
            Command::AssignOwner => has(Role::Admin),
            Command::Revoke => has(Role::Admin) || has(Role::Responder) || owns,
            Command::Reinstate => has(Role::Admin) || has(Role::Responder),
            Command::Decommission => has(Role::Admin) || owns,
            Command::CampaignProgress => has(Role::Admin) || has(Role::Auditor),
            Command::CloseCampaign | Command::NewCampaign => has(Role::Admin),
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            let why = match command {
                Command::AssignOwner => "assigning owners takes the admin role",
                Command::Revoke => {
                    "revoking takes the admin or responder role, or owning the agent"
                }
                Command::Reinstate => "reinstating takes the admin or responder role",
                Command::CampaignProgress => "campaign progress takes the admin or auditor role",
                Command::CloseCampaign => "closing a campaign takes the admin role",
                Command::NewCampaign => "creating a campaign takes the admin role",
                _ => "decommissioning takes the admin role or owning the agent",
            };
            Err(why.to_string())
        }
    }

    /// True when typed text goes into a field (so that a paste cannot trigger commands).
    pub fn accepts_text(&self) -> bool {
        match &self.overlay {
            Some(
                Overlay::FilterInput
                | Overlay::CommandLine { .. }
                | Overlay::Picker(_)
                | Overlay::Justify(_),
            ) => true,
            Some(Overlay::Confirm(c)) => c.is_typed(),
            Some(Overlay::CampaignForm(f)) => f.focus.is_text(),
            Some(Overlay::RevokeResult(r)) => r.note_state == NoteState::Editing,
            _ => false,
        }
    }

    pub fn on_detail(&self) -> bool {
        matches!(self.screen, Screen::Detail(_))
    }

    pub fn on_reviews(&self) -> bool {
        matches!(self.screen, Screen::Reviews(_))
    }

    /// Which keymap scope the current screen uses.
    pub fn key_scope(&self) -> super::keymap::Scope {
        match self.screen {
            Screen::Inventory => super::keymap::Scope::Inventory,
            Screen::Detail(_) => super::keymap::Scope::Detail,
            Screen::Reviews(_) => super::keymap::Scope::Reviews,
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
