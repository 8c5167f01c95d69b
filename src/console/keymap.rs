//! The one list of key bindings. The footer's key hints, the `?` help screen and the `[keys]`
//! overrides in `config.toml` are all generated from [`DEFAULTS`], so they cannot disagree.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::filter::{Column, QuickFilter};

/// Everything a key can ask for outside text input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Quit,
    Help,
    Filter,
    CommandLine,
    AssignOwner,
    /// Undo the last owner change (another owner change, audited).
    UndoOwner,
    Revoke,
    Reinstate,
    Decommission,
    Mark,
    /// Mark every row of the view (pressed again with all marked: clear the marks).
    MarkAll,
    NextQuickFilter,
    PrevQuickFilter,
    Quick(QuickFilter),
    Sort(Column),
    Refresh,
    /// Open "my reviews".
    Reviews,
    /// Certify the selected scope (reviews).
    CertifyScope,
    /// Revoke the selected scope (reviews).
    RevokeScope,
    /// Certify every used-and-unchanged scope of the selected agent (reviews).
    CertifyUnchanged,
    /// Campaign progress per reviewer and team (admins).
    CampaignProgress,
    /// Close a campaign, applying its no-response outcome (admins, typed confirmation).
    CloseCampaign,
    /// Create a campaign from a form (admins).
    NewCampaign,
    /// Open "waiting for me": access requests and per-use approvals I may decide.
    Approvals,
    /// Approve the selected request (approvals).
    ApproveRequest,
    /// Deny the selected request, with a reason (approvals).
    DenyRequest,
    /// Request a scope for the agent on screen (detail; catalogue picker).
    RequestScope,
    /// Acknowledge the open flags of the agent on screen, with a reason (detail).
    AcknowledgeFlag,
    /// `:agent NAME`: open an agent by its exact name or id, else filter by the text.
    OpenAgent,
    /// `:theme NAME`: switch theme (alone: list them).
    Theme,
    /// `:theme! NAME`: switch theme and remember it in config.toml.
    SaveTheme,
    /// In a dialog: choose, press the focused button, send.
    Accept,
    /// In a dialog: close it, changing nothing.
    Cancel,
    /// Between a confirmation's two buttons.
    SwitchButton,
    /// The campaign form's fields.
    NextField,
    PrevField,
    /// A form field's choices (no-response outcome, quarterly).
    NextValue,
    PrevValue,
    /// The activity and audit timeline of the selected agent.
    Activity,
    /// `:audit`: the activity and audit timeline of everything (audit readers).
    AuditAll,
    /// In the activity view: the next actor kind to show (all, human, agent, system).
    ActorKind,
    /// In the activity view: token exchanges shown or hidden.
    ToggleExchanges,
    /// Export the evidence of the open campaigns to a file (admins and auditors).
    ExportEvidence,
    /// Decide every undecided scope of the agent on screen as recommended (reviews).
    AcceptAgent,
    /// The review queue's next order: due, risk, team, owner (reviews).
    ReviewSort,
    /// Accept the recommendations of the marked agents, else of every agent of the filtered
    /// queue (reviews; typed confirmation with the registry's counts).
    AcceptFiltered,
    /// Give the selected review item (or, switched in the picker, all the agent's items) to
    /// another reviewer (reviews; admins, as the queue's `may_reassign` says).
    Reassign,
    /// In the reviewer picker: this item or all the agent's items.
    SwitchTarget,
    /// `:streams`: the Shared Signals streams, their lag and last error (admins).
    Streams,
    /// Pause the selected stream (streams; asks first).
    PauseStream,
    /// Resume the selected stream (streams).
    ResumeStream,
}

impl Command {
    /// True for the verbs that act on the selected agent (nothing to act on where no agent
    /// is shown).
    pub fn acts_on_an_agent(self) -> bool {
        matches!(
            self,
            Command::AssignOwner
                | Command::UndoOwner
                | Command::Revoke
                | Command::Reinstate
                | Command::Decommission
                | Command::Activity
        )
    }
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The inventory and the agent detail.
    Everywhere,
    Inventory,
    Detail,
    /// The "my reviews" screen.
    Reviews,
    /// The "waiting for me" approvals screen.
    Approvals,
    /// The Shared Signals streams screen (admins).
    Streams,
    /// Prompts with a text field: the filter, the command line, the owner picker, the
    /// justification, the incident reference, a typed confirmation. Typed characters always go
    /// into the field, so only non-character keys act here.
    Prompt,
    /// A confirmation with Cancel and Confirm buttons.
    Buttons,
    /// The campaign form.
    Form,
    /// Text to read: the help, notices, results.
    Reading,
    /// The activity and audit timeline.
    Activity,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Everywhere => "Everywhere",
            Scope::Inventory => "Inventory",
            Scope::Detail => "Agent detail",
            Scope::Reviews => "My reviews",
            Scope::Approvals => "Waiting for me (approvals)",
            Scope::Streams => "Shared Signals streams",
            Scope::Prompt => "Prompts and pickers",
            Scope::Buttons => "Confirmations",
            Scope::Form => "Campaign form",
            Scope::Reading => "Help and notices",
            Scope::Activity => "Activity and audit",
        }
    }

    /// Every scope, in the order the help lists them.
    pub const ALL: [Scope; 11] = [
        Scope::Everywhere,
        Scope::Inventory,
        Scope::Detail,
        Scope::Reviews,
        Scope::Approvals,
        Scope::Streams,
        Scope::Prompt,
        Scope::Buttons,
        Scope::Form,
        Scope::Reading,
        Scope::Activity,
    ];

    /// True for the screens (where `Everywhere` bindings apply too).
    pub fn is_screen(self) -> bool {
        matches!(
            self,
            Scope::Everywhere
                | Scope::Inventory
                | Scope::Detail
                | Scope::Reviews
                | Scope::Approvals
                | Scope::Streams
        )
    }

    fn overlaps(self, other: Scope) -> bool {
        self == other
            || (self == Scope::Everywhere && other.is_screen())
            || (other == Scope::Everywhere && self.is_screen())
    }
}

/// One key, as written in config files and shown on screen: `X`, `ctrl-r`, `enter`, `space`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

const NAMED: [(&str, KeyCode); 14] = [
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("space", KeyCode::Char(' ')),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pgup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("backspace", KeyCode::Backspace),
];

impl KeySpec {
    pub const fn char(c: char) -> KeySpec {
        KeySpec {
            code: KeyCode::Char(c),
            ctrl: false,
            alt: false,
        }
    }

    pub const fn code(code: KeyCode) -> KeySpec {
        KeySpec {
            code,
            ctrl: false,
            alt: false,
        }
    }

    pub const fn ctrl(c: char) -> KeySpec {
        KeySpec {
            code: KeyCode::Char(c),
            ctrl: true,
            alt: false,
        }
    }

    /// Parses `X`, `?`, `ctrl-r`, `alt-x`, `enter`, `f5`, `shift-tab`.
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let original = text;
        let mut rest = text.trim();
        let (mut ctrl, mut alt, mut shift) = (false, false, false);
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 1 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.len() > 1 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else if rest.len() > 1 && lower.starts_with("shift-") {
                shift = true;
                rest = &rest[6..];
            } else {
                break;
            }
        }
        let bad = || {
            format!(
                "{original:?} is not a key; write a character (\"X\", \"?\"), ctrl-/alt- plus a \
                 character, f1-f12, or one of: {}",
                NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        };
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => {
                let c = if shift { c.to_ascii_uppercase() } else { c };
                KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
            }
            _ => {
                let lower = rest.to_ascii_lowercase();
                if let Some((_, code)) = NAMED.iter().find(|(n, _)| *n == lower) {
                    if shift && *code == KeyCode::Tab {
                        KeyCode::BackTab
                    } else if shift {
                        return Err(bad());
                    } else {
                        *code
                    }
                } else if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok())
                    && (1..=12).contains(&n)
                {
                    KeyCode::F(n)
                } else {
                    return Err(bad());
                }
            }
        };
        if code == KeyCode::Esc && (ctrl || alt) {
            return Err(bad());
        }
        Ok(KeySpec { code, ctrl, alt })
    }

    /// The key a terminal event stands for (shift is folded into the character).
    pub fn from_event(ev: &KeyEvent) -> KeySpec {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let alt = ev.modifiers.contains(KeyModifiers::ALT);
        let code = match ev.code {
            KeyCode::Char(c) if ctrl => KeyCode::Char(c.to_ascii_lowercase()),
            KeyCode::Tab if ev.modifiers.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            c => c,
        };
        KeySpec { code, ctrl, alt }
    }

    /// A terminal event for this key (tests and the pseudo-terminal driver).
    pub fn to_event(self) -> KeyEvent {
        let mut m = KeyModifiers::NONE;
        if self.ctrl {
            m |= KeyModifiers::CONTROL;
        }
        if self.alt {
            m |= KeyModifiers::ALT;
        }
        if let KeyCode::Char(c) = self.code
            && c.is_ascii_uppercase()
        {
            m |= KeyModifiers::SHIFT;
        }
        KeyEvent::new(self.code, m)
    }

    pub fn label(self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("f{n}"),
            code => NAMED.iter().find(|(_, c)| *c == code).map_or_else(
                || format!("{code:?}").to_lowercase(),
                |(n, _)| n.to_string(),
            ),
        };
        let mut out = String::new();
        if self.ctrl {
            out.push_str("ctrl-");
        }
        if self.alt {
            out.push_str("alt-");
        }
        out.push_str(&base);
        out
    }
}

/// One line of the keymap.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The name used in `[keys]` (shown in the help, to rebind it).
    pub name: &'static str,
    pub command: Option<Command>,
    pub scope: Scope,
    pub keys: Vec<KeySpec>,
    /// What the help screen says.
    pub help: &'static str,
    /// The footer's short word, for the bindings that earn a place there.
    pub hint: Option<&'static str>,
    /// `:` command words that run it too (`unowned`, `agent`), and the argument they take.
    pub words: &'static [&'static str],
    pub arg: &'static str,
}

impl Binding {
    /// "X k", or "—" for a command reached only by `:`.
    pub fn keys_label(&self) -> String {
        if self.keys.is_empty() {
            return "—".into();
        }
        self.keys
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// ":unowned", ":agent NAME", ":q :quit".
    pub fn words_label(&self) -> String {
        self.words
            .iter()
            .map(|w| {
                if self.arg.is_empty() {
                    format!(":{w}")
                } else {
                    format!(":{w} {}", self.arg)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

struct Default_ {
    name: &'static str,
    command: Option<Command>,
    scope: Scope,
    keys: &'static [KeySpec],
    help: &'static str,
    hint: Option<&'static str>,
    words: &'static [&'static str],
    arg: &'static str,
}

impl Default_ {
    /// The same binding, also run by these `:` words.
    const fn words(mut self, words: &'static [&'static str], arg: &'static str) -> Default_ {
        self.words = words;
        self.arg = arg;
        self
    }
}

const fn b(
    name: &'static str,
    command: Command,
    scope: Scope,
    keys: &'static [KeySpec],
    help: &'static str,
    hint: Option<&'static str>,
) -> Default_ {
    Default_ {
        name,
        command: Some(command),
        scope,
        keys,
        help,
        hint,
        words: &[],
        arg: "",
    }
}

use Scope::{
    Activity, Approvals, Buttons, Detail, Everywhere, Form, Inventory, Prompt, Reading, Reviews,
    Streams,
};

/// The default bindings, in the order the help screen lists them.
const DEFAULTS: &[Default_] = &[
    b(
        "up",
        Command::Up,
        Everywhere,
        &[KeySpec::code(KeyCode::Up), KeySpec::char('k')],
        "move up",
        None,
    ),
    b(
        "down",
        Command::Down,
        Everywhere,
        &[KeySpec::code(KeyCode::Down), KeySpec::char('j')],
        "move down",
        None,
    ),
    b(
        "page-up",
        Command::PageUp,
        Everywhere,
        &[KeySpec::code(KeyCode::PageUp), KeySpec::ctrl('b')],
        "one page up",
        None,
    ),
    b(
        "page-down",
        Command::PageDown,
        Everywhere,
        &[KeySpec::code(KeyCode::PageDown), KeySpec::ctrl('f')],
        "one page down",
        None,
    ),
    b(
        "top",
        Command::Top,
        Everywhere,
        &[KeySpec::code(KeyCode::Home), KeySpec::char('g')],
        "go to the first row",
        None,
    ),
    b(
        "bottom",
        Command::Bottom,
        Everywhere,
        &[KeySpec::code(KeyCode::End), KeySpec::char('G')],
        "go to the last row",
        None,
    ),
    b(
        "open",
        Command::Open,
        Inventory,
        &[KeySpec::code(KeyCode::Enter)],
        "open the selected agent's detail",
        Some("detail"),
    ),
    b(
        "filter",
        Command::Filter,
        Inventory,
        &[KeySpec::char('/')],
        "fuzzy filter by name",
        Some("filter"),
    ),
    b(
        "assign-owner",
        Command::AssignOwner,
        Everywhere,
        &[KeySpec::char('o')],
        "assign an owner (ranked picker; marked: all of them)",
        Some("owner"),
    ),
    b(
        "undo-owner",
        Command::UndoOwner,
        Everywhere,
        &[KeySpec::char('u')],
        "undo the last owner change",
        Some("undo"),
    ),
    b(
        "revoke",
        Command::Revoke,
        Everywhere,
        &[KeySpec::char('X')],
        "revoke now (marked: typed confirm)",
        Some("revoke"),
    ),
    b(
        "reinstate",
        Command::Reinstate,
        Everywhere,
        &[KeySpec::char('R')],
        "reinstate a suspended agent (asks)",
        Some("reinstate"),
    ),
    b(
        "decommission",
        Command::Decommission,
        Everywhere,
        &[KeySpec::char('D')],
        "decommission (plan, then asks)",
        Some("decom"),
    ),
    b(
        "mark",
        Command::Mark,
        Inventory,
        &[KeySpec::char(' ')],
        "mark/unmark for a bulk revoke or owner",
        Some("mark"),
    ),
    b(
        "mark-all",
        Command::MarkAll,
        Inventory,
        &[KeySpec::ctrl('a')],
        "mark every row in the view (again: none)",
        None,
    ),
    b(
        "next-filter",
        Command::NextQuickFilter,
        Inventory,
        &[KeySpec::code(KeyCode::Tab)],
        "next quick filter",
        Some("view"),
    ),
    b(
        "prev-filter",
        Command::PrevQuickFilter,
        Inventory,
        &[KeySpec::code(KeyCode::BackTab)],
        "previous quick filter",
        None,
    ),
    b(
        "show-all",
        Command::Quick(QuickFilter::All),
        Inventory,
        &[KeySpec::char('1')],
        "quick filter: all agents",
        None,
    )
    .words(&["all"], ""),
    b(
        "show-unowned",
        Command::Quick(QuickFilter::Unowned),
        Inventory,
        &[KeySpec::char('2')],
        "quick filter: unowned",
        None,
    )
    .words(&["unowned"], ""),
    b(
        "show-mine",
        Command::Quick(QuickFilter::Mine),
        Inventory,
        &[KeySpec::char('3')],
        "quick filter: mine",
        None,
    )
    .words(&["mine"], ""),
    b(
        "show-suspended",
        Command::Quick(QuickFilter::Suspended),
        Inventory,
        &[KeySpec::char('4')],
        "quick filter: suspended",
        None,
    )
    .words(&["suspended"], ""),
    b(
        "show-decommissioned",
        Command::Quick(QuickFilter::Decommissioned),
        Inventory,
        &[KeySpec::char('5')],
        "quick filter: decommissioned",
        None,
    )
    .words(&["decommissioned"], ""),
    b(
        "show-static",
        Command::Quick(QuickFilter::StaticSecrets),
        Inventory,
        &[KeySpec::char('6')],
        "quick filter: static secrets",
        None,
    )
    .words(&["static"], ""),
    b(
        "show-stale",
        Command::Quick(QuickFilter::Stale),
        Inventory,
        &[KeySpec::char('7')],
        "quick filter: stale (30+ days unseen)",
        None,
    )
    .words(&["stale"], ""),
    b(
        "show-flagged",
        Command::Quick(QuickFilter::Flagged),
        Inventory,
        &[KeySpec::char('8')],
        "quick filter: flagged (open behaviour flags, severity first)",
        None,
    )
    .words(&["flagged"], ""),
    b(
        "sort-name",
        Command::Sort(Column::Name),
        Inventory,
        &[KeySpec::char('N')],
        "sort by name (again: reverse)",
        None,
    ),
    b(
        "sort-kind",
        Command::Sort(Column::Kind),
        Inventory,
        &[KeySpec::char('K')],
        "sort by kind",
        None,
    ),
    b(
        "sort-owner",
        Command::Sort(Column::Owner),
        Inventory,
        &[KeySpec::char('O')],
        "sort by owner",
        None,
    ),
    b(
        "sort-status",
        Command::Sort(Column::Status),
        Inventory,
        &[KeySpec::char('S')],
        "sort by status",
        None,
    ),
    b(
        "sort-team",
        Command::Sort(Column::Team),
        Inventory,
        &[KeySpec::char('T')],
        "sort by team",
        None,
    ),
    b(
        "sort-environment",
        Command::Sort(Column::Environment),
        Inventory,
        &[KeySpec::char('E')],
        "sort by environment",
        None,
    ),
    b(
        "sort-scopes",
        Command::Sort(Column::Scopes),
        Inventory,
        &[KeySpec::char('C')],
        "sort by number of scopes",
        None,
    ),
    b(
        "sort-last-seen",
        Command::Sort(Column::LastSeen),
        Inventory,
        &[KeySpec::char('L')],
        "sort by last seen",
        None,
    ),
    b(
        "sort-flags",
        Command::Sort(Column::Flags),
        Inventory,
        &[KeySpec::char('F')],
        "sort by flags",
        None,
    ),
    b(
        "reviews",
        Command::Reviews,
        Everywhere,
        &[KeySpec::char('r')],
        "my reviews (access certification)",
        Some("reviews"),
    ),
    b(
        "certify-scope",
        Command::CertifyScope,
        Reviews,
        &[KeySpec::char('c')],
        "certify the selected scope",
        Some("certify"),
    ),
    b(
        "revoke-scope",
        Command::RevokeScope,
        Reviews,
        &[KeySpec::char('x')],
        "revoke the selected scope",
        Some("revoke"),
    ),
    b(
        "certify-unchanged",
        Command::CertifyUnchanged,
        Reviews,
        &[KeySpec::char('C')],
        "certify the agent's used, unchanged scopes",
        Some("certify unchanged"),
    ),
    b(
        "accept-agent",
        Command::AcceptAgent,
        Reviews,
        &[KeySpec::char('y')],
        "decide every undecided scope of the agent on screen as recommended (not those needing a justification)",
        Some("accept agent"),
    ),
    b(
        "reassign",
        Command::Reassign,
        Reviews,
        &[KeySpec::char('a')],
        "reassign the selected item, or all the agent's items (tab in the picker), to another reviewer (admins)",
        Some("reassign"),
    ),
    b(
        "review-mark",
        Command::Mark,
        Reviews,
        &[KeySpec::char(' ')],
        "mark/unmark the agent for Y (then the next agent)",
        Some("mark"),
    ),
    b(
        "accept-filtered",
        Command::AcceptFiltered,
        Reviews,
        &[KeySpec::char('Y')],
        "accept the recommendations of the marked agents, else of every agent the filter shows (typed count confirms)",
        Some("bulk accept"),
    ),
    b(
        "filter-queue",
        Command::Filter,
        Reviews,
        &[KeySpec::char('/')],
        "filter the queue by agent name, team, environment or owner (the registry filters every page)",
        None,
    ),
    b(
        "sort-queue",
        Command::ReviewSort,
        Reviews,
        &[KeySpec::char('s')],
        "sort the queue: due, risk, team, owner (the header says which)",
        Some("sort"),
    ),
    b(
        "campaign-progress",
        Command::CampaignProgress,
        Reviews,
        &[KeySpec::char('P')],
        "campaign progress per reviewer and team (admins, auditors)",
        Some("progress"),
    ),
    b(
        "close-campaign",
        Command::CloseCampaign,
        Reviews,
        &[KeySpec::char('Z')],
        "close the campaign: applies its no-response outcome (admins; typed confirm)",
        None,
    ),
    b(
        "new-campaign",
        Command::NewCampaign,
        Reviews,
        &[KeySpec::char('N')],
        "create a campaign from a form (admins; esc keeps the draft)",
        Some("new campaign"),
    ),
    b(
        "approvals",
        Command::Approvals,
        Everywhere,
        &[KeySpec::char('A')],
        "waiting for me: requests and per-use approvals to decide",
        Some("approvals"),
    ),
    b(
        "approve",
        Command::ApproveRequest,
        Approvals,
        &[KeySpec::char('y')],
        "approve the selected request (at once)",
        Some("approve"),
    ),
    b(
        "deny",
        Command::DenyRequest,
        Approvals,
        &[KeySpec::char('n')],
        "deny the selected request (asks for a reason)",
        Some("deny"),
    ),
    b(
        "streams",
        Command::Streams,
        Everywhere,
        &[],
        "Shared Signals streams: state, lag, last error (admins)",
        None,
    )
    .words(&["streams"], ""),
    b(
        "pause-stream",
        Command::PauseStream,
        Streams,
        &[KeySpec::char('p')],
        "pause the selected stream: its events wait (asks)",
        Some("pause"),
    ),
    b(
        "resume-stream",
        Command::ResumeStream,
        Streams,
        &[KeySpec::char('e')],
        "resume the selected stream: waiting events are delivered in order",
        Some("resume"),
    ),
    b(
        "request-scope",
        Command::RequestScope,
        Detail,
        &[KeySpec::char('+')],
        "request a scope for this agent (catalogue picker)",
        Some("request scope"),
    ),
    b(
        "acknowledge-flag",
        Command::AcknowledgeFlag,
        Detail,
        &[KeySpec::char('a')],
        "acknowledge the agent's open flags (asks for a reason)",
        Some("ack flags"),
    ),
    b(
        "refresh",
        Command::Refresh,
        Everywhere,
        &[KeySpec::ctrl('r')],
        "sync with the registry now",
        None,
    ),
    b(
        "command",
        Command::CommandLine,
        Everywhere,
        &[KeySpec::char(':')],
        "command line (commands below)",
        Some("cmd"),
    ),
    b(
        "help",
        Command::Help,
        Everywhere,
        &[KeySpec::char('?')],
        "this help",
        Some("help"),
    )
    .words(&["help"], ""),
    b(
        "back",
        Command::Back,
        Everywhere,
        &[KeySpec::code(KeyCode::Esc)],
        "back; clears marks, then the filter",
        None,
    ),
    b(
        "quit",
        Command::Quit,
        Everywhere,
        &[KeySpec::char('q')],
        "quit",
        Some("quit"),
    )
    .words(&["q", "quit"], ""),
    b(
        "open-agent",
        Command::OpenAgent,
        Everywhere,
        &[],
        "open an agent by exact name or id; else filter by the text",
        None,
    )
    .words(&["agent"], "NAME"),
    b(
        "theme",
        Command::Theme,
        Everywhere,
        &[],
        "switch theme; alone, lists them",
        None,
    )
    .words(&["theme"], "NAME"),
    b(
        "theme-save",
        Command::SaveTheme,
        Everywhere,
        &[],
        "switch theme and remember it in config.toml",
        None,
    )
    .words(&["theme!"], "NAME"),
    b(
        "export-evidence",
        Command::ExportEvidence,
        Reviews,
        &[KeySpec::char('E')],
        "export the open campaigns' evidence (CSV; default in the current folder)",
        None,
    )
    .words(&["export"], "[PATH]"),
    b(
        "activity",
        Command::Activity,
        Everywhere,
        &[KeySpec::char('t')],
        "the selected agent's activity and audit timeline",
        None,
    ),
    b(
        "audit",
        Command::AuditAll,
        Everywhere,
        &[],
        "the activity and audit timeline of everything",
        None,
    )
    .words(&["audit"], ""),
    b(
        "activity-up",
        Command::Up,
        Activity,
        &[KeySpec::code(KeyCode::Up), KeySpec::char('k')],
        "newer entry",
        None,
    ),
    b(
        "activity-down",
        Command::Down,
        Activity,
        &[KeySpec::code(KeyCode::Down), KeySpec::char('j')],
        "older entry (at the end, the next page from the registry)",
        None,
    ),
    b(
        "activity-page-up",
        Command::PageUp,
        Activity,
        &[KeySpec::code(KeyCode::PageUp), KeySpec::ctrl('b')],
        "one page newer",
        None,
    ),
    b(
        "activity-page-down",
        Command::PageDown,
        Activity,
        &[KeySpec::code(KeyCode::PageDown), KeySpec::ctrl('f')],
        "one page older",
        None,
    ),
    b(
        "activity-top",
        Command::Top,
        Activity,
        &[KeySpec::code(KeyCode::Home), KeySpec::char('g')],
        "the newest entry",
        None,
    ),
    b(
        "activity-bottom",
        Command::Bottom,
        Activity,
        &[KeySpec::code(KeyCode::End), KeySpec::char('G')],
        "the oldest entry loaded",
        None,
    ),
    b(
        "activity-filter",
        Command::Filter,
        Activity,
        &[KeySpec::char('/')],
        "filter by text (who, on whose behalf, action, scope, reason)",
        Some("text"),
    ),
    b(
        "activity-actor-kind",
        Command::ActorKind,
        Activity,
        &[KeySpec::char('a')],
        "show all actors, then humans, agents, the system",
        Some("actor kind"),
    ),
    b(
        "activity-exchanges",
        Command::ToggleExchanges,
        Activity,
        &[KeySpec::char('e')],
        "show or hide token exchanges",
        Some("exchanges"),
    ),
    b(
        "activity-close",
        Command::Back,
        Activity,
        &[KeySpec::code(KeyCode::Esc), KeySpec::char('q')],
        "close the timeline",
        Some("close"),
    ),
    b(
        "prompt-accept",
        Command::Accept,
        Prompt,
        &[KeySpec::code(KeyCode::Enter)],
        "choose, send, run",
        None,
    ),
    b(
        "prompt-cancel",
        Command::Cancel,
        Prompt,
        &[KeySpec::code(KeyCode::Esc)],
        "cancel and go back (changes nothing)",
        None,
    ),
    b(
        "prompt-switch",
        Command::SwitchTarget,
        Prompt,
        &[KeySpec::code(KeyCode::Tab)],
        "reviewer picker: the selected item or all the agent's items",
        None,
    ),
    b(
        "prompt-up",
        Command::Up,
        Prompt,
        &[KeySpec::code(KeyCode::Up)],
        "previous entry; older command",
        None,
    ),
    b(
        "prompt-down",
        Command::Down,
        Prompt,
        &[KeySpec::code(KeyCode::Down)],
        "next entry; newer command",
        None,
    ),
    b(
        "confirm-press",
        Command::Accept,
        Buttons,
        &[KeySpec::code(KeyCode::Enter)],
        "press the focused button (Cancel first)",
        None,
    ),
    b(
        "confirm-cancel",
        Command::Cancel,
        Buttons,
        &[KeySpec::code(KeyCode::Esc)],
        "cancel (changes nothing)",
        None,
    ),
    b(
        "confirm-switch",
        Command::SwitchButton,
        Buttons,
        &[
            KeySpec::code(KeyCode::Left),
            KeySpec::code(KeyCode::Right),
            KeySpec::code(KeyCode::Tab),
            KeySpec::code(KeyCode::BackTab),
        ],
        "switch between the buttons",
        None,
    ),
    b(
        "form-create",
        Command::Accept,
        Form,
        &[KeySpec::code(KeyCode::Enter)],
        "create the campaign",
        None,
    ),
    b(
        "form-cancel",
        Command::Cancel,
        Form,
        &[KeySpec::code(KeyCode::Esc)],
        "cancel; the draft reopens with its key",
        None,
    ),
    b(
        "form-next-field",
        Command::NextField,
        Form,
        &[KeySpec::code(KeyCode::Tab), KeySpec::code(KeyCode::Down)],
        "next field",
        None,
    ),
    b(
        "form-prev-field",
        Command::PrevField,
        Form,
        &[KeySpec::code(KeyCode::BackTab), KeySpec::code(KeyCode::Up)],
        "previous field",
        None,
    ),
    b(
        "form-next-value",
        Command::NextValue,
        Form,
        &[KeySpec::code(KeyCode::Right), KeySpec::char(' ')],
        "next choice (outcome, quarterly)",
        None,
    ),
    b(
        "form-prev-value",
        Command::PrevValue,
        Form,
        &[KeySpec::code(KeyCode::Left)],
        "previous choice",
        None,
    ),
    b(
        "read-up",
        Command::Up,
        Reading,
        &[KeySpec::code(KeyCode::Up), KeySpec::char('k')],
        "scroll up",
        None,
    ),
    b(
        "read-down",
        Command::Down,
        Reading,
        &[KeySpec::code(KeyCode::Down), KeySpec::char('j')],
        "scroll down",
        None,
    ),
    b(
        "read-page-up",
        Command::PageUp,
        Reading,
        &[KeySpec::code(KeyCode::PageUp)],
        "one page up",
        None,
    ),
    b(
        "read-page-down",
        Command::PageDown,
        Reading,
        &[KeySpec::code(KeyCode::PageDown), KeySpec::char(' ')],
        "one page down",
        None,
    ),
    b(
        "read-close",
        Command::Cancel,
        Reading,
        &[
            KeySpec::code(KeyCode::Esc),
            KeySpec::code(KeyCode::Enter),
            KeySpec::char('q'),
            KeySpec::char('?'),
        ],
        "close",
        None,
    ),
];

pub fn command_by_name(name: &str) -> Option<Command> {
    DEFAULTS
        .iter()
        .find(|d| d.name == name)
        .and_then(|d| d.command)
}

pub fn command_names() -> Vec<&'static str> {
    DEFAULTS.iter().map(|d| d.name).collect()
}

#[derive(Clone, Debug)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap {
            bindings: DEFAULTS
                .iter()
                .map(|d| Binding {
                    name: d.name,
                    command: d.command,
                    scope: d.scope,
                    keys: d.keys.to_vec(),
                    help: d.help,
                    hint: d.hint,
                    words: d.words,
                    arg: d.arg,
                })
                .collect(),
        }
    }
}

impl Keymap {
    /// The defaults with `[keys]` overrides applied. An error names the command and says why.
    pub fn with_overrides(
        overrides: &BTreeMap<String, Vec<KeySpec>>,
    ) -> Result<Keymap, (String, String)> {
        let mut map = Keymap::default();
        for (name, keys) in overrides {
            let Some(b) = map.bindings.iter_mut().find(|b| b.name == name) else {
                return Err((name.clone(), "no such command".into()));
            };
            b.keys = keys.clone();
        }
        // A key may do one thing per screen; report the overridden command's clash.
        for (i, a) in map.bindings.iter().enumerate() {
            for other in &map.bindings[i + 1..] {
                if a.command.is_none() || other.command.is_none() || !a.scope.overlaps(other.scope)
                {
                    continue;
                }
                if let Some(k) = a.keys.iter().find(|k| other.keys.contains(k)) {
                    let culprit = if overrides.contains_key(other.name) {
                        other.name
                    } else {
                        a.name
                    };
                    let partner = if culprit == a.name {
                        other.name
                    } else {
                        a.name
                    };
                    return Err((
                        culprit.to_string(),
                        format!(
                            "key {} is already bound to {partner}; give one of them another key",
                            k.label()
                        ),
                    ));
                }
            }
        }
        Ok(map)
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The command a key means on the inventory (false) or the detail (true).
    pub fn lookup(&self, key: KeySpec, on_detail: bool) -> Option<Command> {
        self.lookup_in(
            key,
            if on_detail {
                Scope::Detail
            } else {
                Scope::Inventory
            },
        )
    }

    /// The command a key means in a scope (on a screen, `Everywhere` bindings count too).
    pub fn lookup_in(&self, key: KeySpec, here: Scope) -> Option<Command> {
        self.bindings
            .iter()
            .filter(|b| b.scope == here || (here.is_screen() && b.scope == Scope::Everywhere))
            .find(|b| b.keys.contains(&key))
            .and_then(|b| b.command)
    }

    /// The command a `:` word runs (`unowned`, `agent`, `q`).
    pub fn command_for_word(&self, word: &str) -> Option<Command> {
        self.bindings
            .iter()
            .find(|b| b.words.contains(&word))
            .and_then(|b| b.command)
    }

    /// The first key of a command on the screens (for messages such as "press ? for help").
    pub fn key_for(&self, command: Command) -> Option<KeySpec> {
        self.bindings
            .iter()
            .filter(|b| b.scope.is_screen())
            .find(|b| b.command == Some(command))
            .and_then(|b| b.keys.first().copied())
    }

    /// The first key of a command in one scope.
    pub fn key_for_in(&self, command: Command, here: Scope) -> Option<KeySpec> {
        self.bindings
            .iter()
            .filter(|b| b.scope == here || (here.is_screen() && b.scope == Scope::Everywhere))
            .find(|b| b.command == Some(command))
            .and_then(|b| b.keys.first().copied())
    }

    /// Every key of a command in one scope, as the footer shows them ("←→", "esc").
    pub fn keys_label_in(&self, command: Command, here: Scope) -> Option<String> {
        let b = self
            .bindings
            .iter()
            .filter(|b| b.scope == here || (here.is_screen() && b.scope == Scope::Everywhere))
            .find(|b| b.command == Some(command) && !b.keys.is_empty())?;
        Some(b.keys.first()?.label())
    }

    /// Footer hints for the inventory (false) or the detail (true).
    pub fn hints(&self, on_detail: bool) -> Vec<(String, &'static str, Command)> {
        self.hints_in(if on_detail {
            Scope::Detail
        } else {
            Scope::Inventory
        })
    }

    /// Footer hints for a screen: (key label, word), in keymap order.
    /// On the reviews screen its own keys come first: they are what the screen is for.
    pub fn hints_in(&self, here: Scope) -> Vec<(String, &'static str, Command)> {
        let mut bindings: Vec<&Binding> = self
            .bindings
            .iter()
            .filter(|b| b.scope == here || (here.is_screen() && b.scope == Scope::Everywhere))
            .collect();
        if matches!(here, Scope::Reviews | Scope::Approvals | Scope::Streams) {
            bindings.sort_by_key(|b| b.scope != here);
        }
        bindings
            .into_iter()
            .filter_map(|b| {
                let hint = b.hint?;
                let key = b.keys.first()?;
                Some((key.label(), hint, b.command?))
            })
            .collect()
    }

    /// The help's sections: scope title, then the bindings `allowed` keeps, in keymap order.
    pub fn help_sections(&self, allowed: impl Fn(Command) -> bool) -> Vec<(Scope, Vec<&Binding>)> {
        let mut out = Vec::new();
        for scope in Scope::ALL {
            let lines: Vec<&Binding> = self
                .bindings
                .iter()
                .filter(|b| b.scope == scope && b.command.is_none_or(&allowed))
                .collect();
            if !lines.is_empty() {
                out.push((scope, lines));
            }
        }
        out
    }

    /// The help screen's sections: scope title, then (keys, help) lines (every binding).
    pub fn help(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        self.help_sections(|_| true)
            .into_iter()
            .map(|(scope, bindings)| {
                (
                    scope.title(),
                    bindings.iter().map(|b| (b.keys_label(), b.help)).collect(),
                )
            })
            .collect()
    }

    /// The key table of README.md, generated from the bindings: one table per scope, each row
    /// with its keys, its `:` words, its name in `[keys]` and what it does.
    pub fn markdown_table(&self) -> String {
        let mut out = String::new();
        for (scope, bindings) in self.help_sections(|_| true) {
            out.push_str(&format!("**{}**\n\n", scope.title()));
            out.push_str("| keys | `:` command | `[keys]` name | does |\n|---|---|---|---|\n");
            for b in bindings {
                let keys = if b.keys.is_empty() {
                    String::new()
                } else {
                    b.keys
                        .iter()
                        .map(|k| format!("`{}`", k.label()))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let words = if b.words.is_empty() {
                    String::new()
                } else {
                    format!("`{}`", b.words_label())
                };
                out.push_str(&format!(
                    "| {keys} | {words} | `{}` | {} |\n",
                    b.name,
                    b.help.replace('|', "\\|")
                ));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_labels_keys() {
        assert_eq!(KeySpec::parse("X").unwrap(), KeySpec::char('X'));
        assert_eq!(KeySpec::parse("shift-x").unwrap(), KeySpec::char('X'));
        assert_eq!(KeySpec::parse("ctrl-R").unwrap(), KeySpec::ctrl('r'));
        assert_eq!(KeySpec::parse("space").unwrap(), KeySpec::char(' '));
        assert_eq!(KeySpec::parse("f5").unwrap().code, KeyCode::F(5));
        assert!(KeySpec::parse("hyper-x").is_err());
        assert!(KeySpec::parse("").is_err());
        assert!(KeySpec::parse("f13").is_err());
        for text in ["X", "ctrl-r", "enter", "space", "?", "pgdn", "alt-x"] {
            assert_eq!(KeySpec::parse(text).unwrap().label(), text);
        }
    }

    #[test]
    fn defaults_have_no_clashes_and_overrides_are_checked() {
        let map = Keymap::with_overrides(&BTreeMap::new()).unwrap();
        assert_eq!(map.lookup(KeySpec::char('X'), false), Some(Command::Revoke));
        assert_eq!(map.lookup(KeySpec::char('/'), true), None);
        let mut o = BTreeMap::new();
        o.insert("revoke".to_string(), vec![KeySpec::char('K')]);
        let (name, why) = Keymap::with_overrides(&o).unwrap_err();
        assert_eq!(name, "revoke");
        assert!(why.contains("sort-kind"), "{why}");
        o.insert("revoke".to_string(), vec![KeySpec::ctrl('x')]);
        let map = Keymap::with_overrides(&o).unwrap();
        assert_eq!(map.lookup(KeySpec::ctrl('x'), false), Some(Command::Revoke));
        assert_eq!(map.lookup(KeySpec::char('X'), false), None);
        // The footer and the help follow the override: they come from the same list.
        assert!(
            map.hints(false)
                .iter()
                .any(|(k, w, _)| k == "ctrl-x" && *w == "revoke")
        );
        let help = map.help();
        let (_, everywhere) = help.iter().find(|(t, _)| *t == "Everywhere").unwrap();
        assert!(
            everywhere
                .iter()
                .any(|(k, h)| k == "ctrl-x" && h.starts_with("revoke"))
        );
        assert!(!everywhere.iter().any(|(k, _)| k == "X"));
    }
}

#[cfg(test)]
mod dialog_tests {
    use super::*;

    #[test]
    fn dialog_keys_and_commands_are_bindings_by_scope() {
        let map = Keymap::default();
        let enter = KeySpec::code(KeyCode::Enter);
        assert_eq!(map.lookup_in(enter, Scope::Prompt), Some(Command::Accept));
        assert_eq!(map.lookup_in(enter, Scope::Buttons), Some(Command::Accept));
        assert_eq!(map.lookup_in(enter, Scope::Inventory), Some(Command::Open));
        let tab = KeySpec::code(KeyCode::Tab);
        assert_eq!(
            map.lookup_in(tab, Scope::Buttons),
            Some(Command::SwitchButton)
        );
        assert_eq!(map.lookup_in(tab, Scope::Form), Some(Command::NextField));
        // Screen bindings do not leak into dialogs: `X` in a prompt is just a letter.
        assert_eq!(map.lookup_in(KeySpec::char('X'), Scope::Prompt), None);
        assert_eq!(
            map.lookup_in(KeySpec::char('q'), Scope::Reading),
            Some(Command::Cancel)
        );
        // `:` words.
        assert_eq!(
            map.command_for_word("unowned"),
            Some(Command::Quick(QuickFilter::Unowned))
        );
        assert_eq!(map.command_for_word("agent"), Some(Command::OpenAgent));
        assert_eq!(map.command_for_word("theme!"), Some(Command::SaveTheme));
        assert_eq!(map.command_for_word("q"), Some(Command::Quit));
        assert_eq!(map.command_for_word("nope"), None);
        // A dialog key is rebound like any other, and clashes within its scope are refused.
        let mut o = BTreeMap::new();
        o.insert("confirm-switch".to_string(), vec![KeySpec::char('h')]);
        let map = Keymap::with_overrides(&o).unwrap();
        assert_eq!(
            map.lookup_in(KeySpec::char('h'), Scope::Buttons),
            Some(Command::SwitchButton)
        );
        assert_eq!(map.lookup_in(tab, Scope::Buttons), None);
        o.insert(
            "confirm-switch".to_string(),
            vec![KeySpec::code(KeyCode::Enter)],
        );
        let (name, why) = Keymap::with_overrides(&o).unwrap_err();
        assert_eq!(name, "confirm-switch");
        assert!(why.contains("confirm-press"), "{why}");
    }

    #[test]
    fn the_markdown_table_has_every_binding_and_its_words() {
        let table = Keymap::default().markdown_table();
        assert!(table.contains("| `X` |  | `revoke` |"), "{table}");
        assert!(
            table.contains("| `2` | `:unowned` | `show-unowned` |"),
            "{table}"
        );
        assert!(
            table.contains("|  | `:agent NAME` | `open-agent` |"),
            "{table}"
        );
        assert!(table.contains("**Confirmations**"), "{table}");
    }
}
