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
    Revoke,
    Reinstate,
    Decommission,
    Mark,
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
    /// Inside pickers, prompts and confirmations (fixed keys, listed for the help screen).
    Dialog,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Everywhere => "Everywhere",
            Scope::Inventory => "Inventory",
            Scope::Detail => "Agent detail",
            Scope::Reviews => "My reviews",
            Scope::Dialog => "Pickers, prompts and confirmations",
        }
    }

    fn overlaps(self, other: Scope) -> bool {
        self == other
            || (self == Scope::Everywhere
                && matches!(other, Scope::Inventory | Scope::Detail | Scope::Reviews))
            || (other == Scope::Everywhere
                && matches!(self, Scope::Inventory | Scope::Detail | Scope::Reviews))
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
    /// The name used in `[keys]`; empty for fixed dialog keys.
    pub name: &'static str,
    pub command: Option<Command>,
    pub scope: Scope,
    pub keys: Vec<KeySpec>,
    /// What the help screen says.
    pub help: &'static str,
    /// The footer's short word, for the bindings that earn a place there.
    pub hint: Option<&'static str>,
}

struct Default_ {
    name: &'static str,
    command: Option<Command>,
    scope: Scope,
    keys: &'static [KeySpec],
    help: &'static str,
    hint: Option<&'static str>,
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
    }
}

const fn fixed(keys: &'static [KeySpec], help: &'static str) -> Default_ {
    Default_ {
        name: "",
        command: None,
        scope: Scope::Dialog,
        keys,
        help,
        hint: None,
    }
}

use Scope::{Everywhere, Inventory, Reviews};

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
        "assign an owner (fuzzy picker)",
        Some("owner"),
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
        None,
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
        "mark/unmark for a bulk revoke",
        Some("mark"),
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
    ),
    b(
        "show-unowned",
        Command::Quick(QuickFilter::Unowned),
        Inventory,
        &[KeySpec::char('2')],
        "quick filter: unowned",
        None,
    ),
    b(
        "show-mine",
        Command::Quick(QuickFilter::Mine),
        Inventory,
        &[KeySpec::char('3')],
        "quick filter: mine",
        None,
    ),
    b(
        "show-suspended",
        Command::Quick(QuickFilter::Suspended),
        Inventory,
        &[KeySpec::char('4')],
        "quick filter: suspended",
        None,
    ),
    b(
        "show-decommissioned",
        Command::Quick(QuickFilter::Decommissioned),
        Inventory,
        &[KeySpec::char('5')],
        "quick filter: decommissioned",
        None,
    ),
    b(
        "show-static",
        Command::Quick(QuickFilter::StaticSecrets),
        Inventory,
        &[KeySpec::char('6')],
        "quick filter: static secrets",
        None,
    ),
    b(
        "show-stale",
        Command::Quick(QuickFilter::Stale),
        Inventory,
        &[KeySpec::char('7')],
        "quick filter: stale (30+ days unseen)",
        None,
    ),
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
        Some("revoke scope"),
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
    ),
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
    ),
    fixed(
        &[KeySpec::code(KeyCode::Enter)],
        "choose, press the focused button, send",
    ),
    fixed(
        &[KeySpec::code(KeyCode::Esc)],
        "cancel and go back (changes nothing)",
    ),
    fixed(
        &[KeySpec::code(KeyCode::Up), KeySpec::code(KeyCode::Down)],
        "move in a list; command history",
    ),
    fixed(
        &[
            KeySpec::code(KeyCode::Left),
            KeySpec::code(KeyCode::Right),
            KeySpec::code(KeyCode::Tab),
        ],
        "switch between the buttons",
    ),
    fixed(&[KeySpec::ctrl('c')], "quit from anywhere"),
];

pub fn command_by_name(name: &str) -> Option<Command> {
    DEFAULTS
        .iter()
        .find(|d| !d.name.is_empty() && d.name == name)
        .and_then(|d| d.command)
}

pub fn command_names() -> Vec<&'static str> {
    DEFAULTS
        .iter()
        .filter(|d| !d.name.is_empty())
        .map(|d| d.name)
        .collect()
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
            let Some(b) = map
                .bindings
                .iter_mut()
                .find(|b| !b.name.is_empty() && b.name == name)
            else {
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

    /// The command a key means on a screen.
    pub fn lookup_in(&self, key: KeySpec, here: Scope) -> Option<Command> {
        self.bindings
            .iter()
            .filter(|b| b.scope == here || b.scope == Scope::Everywhere)
            .find(|b| b.keys.contains(&key))
            .and_then(|b| b.command)
    }

    /// The first key of a command (for messages such as "press ? for help").
    pub fn key_for(&self, command: Command) -> Option<KeySpec> {
        self.bindings
            .iter()
            .find(|b| b.command == Some(command))
            .and_then(|b| b.keys.first().copied())
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
            .filter(|b| b.scope == here || b.scope == Scope::Everywhere)
            .collect();
        if here == Scope::Reviews {
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

    /// The help screen's sections: scope title, then (keys, help) lines.
    pub fn help(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        let mut out: Vec<(&'static str, Vec<(String, &'static str)>)> = Vec::new();
        for scope in [
            Scope::Everywhere,
            Scope::Inventory,
            Scope::Detail,
            Scope::Reviews,
            Scope::Dialog,
        ] {
            let lines: Vec<(String, &'static str)> = self
                .bindings
                .iter()
                .filter(|b| b.scope == scope)
                .map(|b| {
                    let keys = b
                        .keys
                        .iter()
                        .map(|k| k.label())
                        .collect::<Vec<_>>()
                        .join(" ");
                    (keys, b.help)
                })
                .collect();
            if !lines.is_empty() {
                out.push((scope.title(), lines));
            }
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
