//! The console's local view of the registry: a compact table of agent summaries and the people
//! who may own them.
//!
//! Rows are small `Copy` records whose text lives in one shared arena, so that a million agents
//! load from the cache as two memory blocks and a sort or a filter touches no allocator. Row
//! indices are stable for the life of an `Inventory`: an agent that disappears is hidden, not
//! removed, and the hole is dropped when the cache is next written.

use std::collections::HashMap;

/// The console's in-memory indexes (people by email, symbols, ids): a fast, randomly seeded
/// hasher instead of SipHash; at 1M agents they hold a quarter of a million keys each and are
/// built while the cache loads.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use crate::model::api::ChangeFeed;
use crate::model::{Agent, AgentKind, AgentSource, AgentStatus, Person, Role};

/// "No value" for a symbol index.
pub const NONE: u32 = u32::MAX;

/// A slice of the text arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Str {
    pub off: u32,
    pub len: u32,
}

/// All row text, appended only. Changed text is appended anew; the old bytes stay until the cache
/// is rewritten (which keeps only what rows still point at).
#[derive(Clone, Debug, Default)]
pub struct Arena {
    text: String,
}

impl Arena {
    pub fn from_text(text: String) -> Arena {
        Arena { text }
    }

    pub fn push(&mut self, s: &str) -> Str {
        if s.is_empty() {
            return Str::default();
        }
        let off = self.text.len() as u32;
        self.text.push_str(s);
        Str {
            off,
            len: s.len() as u32,
        }
    }

    pub fn get(&self, s: Str) -> &str {
        &self.text[s.off as usize..(s.off + s.len) as usize]
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when `s` lies inside the arena on character boundaries (checked when loading a cache).
    pub fn holds(&self, s: Str) -> bool {
        let (start, end) = (s.off as usize, s.off as usize + s.len as usize);
        end <= self.text.len()
            && self.text.is_char_boundary(start)
            && self.text.is_char_boundary(end)
    }
}

/// Interned short strings that many rows share: owners' emails, teams, environments.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    names: Vec<Box<str>>,
    index: FastMap<Box<str>, u32>,
}

impl Symbols {
    pub fn from_names(names: Vec<String>) -> Symbols {
        let names: Vec<Box<str>> = names.into_iter().map(String::into_boxed_str).collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Symbols { names, index }
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    pub fn find(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }

    /// The text of a symbol; `NONE` is the empty string.
    pub fn get(&self, i: u32) -> &str {
        if i == NONE {
            ""
        } else {
            &self.names[i as usize]
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| n.as_ref())
    }
}

/// One agent as the inventory table needs it. No secret material: credentials are summarised by
/// the `static_secret` flag only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentRow {
    pub id: Str,
    pub name: Str,
    /// Empty when the agent has no parent.
    pub parent: Str,
    /// The parent's row, or `NONE` when there is no parent or it is not in this inventory (yet).
    pub parent_row: u32,
    /// Granted scopes, separated by single spaces.
    pub scopes: Str,
    /// Risk flags, separated by single spaces.
    pub flags: Str,
    /// The owner's email (a symbol), or `NONE`.
    pub owner: u32,
    pub team: u32,
    pub environment: u32,
    pub kind: AgentKind,
    pub status: AgentStatus,
    pub source: AgentSource,
    pub static_secret: bool,
    /// Hidden rows are agents the caller can no longer see; they are dropped on the next save.
    pub hidden: bool,
    pub scope_count: u16,
    /// Unix seconds; `i64::MIN` for never.
    pub last_seen: i64,
    pub created: i64,
    pub change_seq: i64,
}

/// A person as the console needs one (owner names, the owner picker, roles).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonRow {
    pub email: String,
    pub display_name: String,
    pub active: bool,
    pub roles: Vec<Role>,
    pub team: Option<String>,
    /// When they left (unix seconds), for "owner X left on DATE".
    #[serde(default)]
    pub left_at: Option<i64>,
}

impl PersonRow {
    pub fn from_person(p: &Person) -> PersonRow {
        PersonRow {
            email: p.email.clone(),
            display_name: p.display_name.clone(),
            active: p.active,
            roles: p.roles.clone(),
            team: p.team.clone(),
            left_at: p.left_at.map(|t| t.timestamp()),
        }
    }
}

/// Counts shown in the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub unowned: usize,
    pub suspended: usize,
    pub decommissioned: usize,
    pub static_secrets: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// The registry this view belongs to.
    pub server: String,
    /// Whose view it is (visibility differs per person).
    pub persona: Option<String>,
    /// The change-feed cursor the rows are up to date with.
    pub cursor: i64,
    /// When the rows were last known to match the registry (unix seconds).
    pub synced_at: Option<i64>,
    /// Bumped on every change, so that derived data (sort orders, counts) knows when to redo.
    pub version: u64,
    pub(crate) rows: Vec<AgentRow>,
    pub(crate) arena: Arena,
    pub(crate) symbols: Symbols,
    pub(crate) people: Vec<PersonRow>,
    people_index: FastMap<String, usize>,
    id_index: Option<FastMap<Box<str>, u32>>,
    /// Scope lists and flag labels already in the arena: many agents repeat them (one job, one
    /// scope list), so each distinct text is stored once and shared by its rows.
    shared: Option<HashMap<Box<str>, Str>>,
}

fn ts(t: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    t.map_or(i64::MIN, |t| t.timestamp())
}

impl Inventory {
    pub fn new(server: &str) -> Inventory {
        Inventory {
            server: server.to_string(),
            ..Default::default()
        }
    }

    /// Builds an inventory from loaded parts (the cache reader).
    /// `people_index` is [`Inventory::index_people`] of `people` (built beside the rows' decoding).
    pub(crate) fn from_parts(
        header: (String, Option<String>, i64, Option<i64>),
        rows: Vec<AgentRow>,
        arena: Arena,
        symbols: Symbols,
        people: Vec<PersonRow>,
        people_index: FastMap<String, usize>,
    ) -> Inventory {
        let (server, persona, cursor, synced_at) = header;
        Inventory {
            server,
            persona,
            cursor,
            synced_at,
            version: 1,
            rows,
            arena,
            symbols,
            people,
            people_index,
            id_index: None,
            shared: None,
        }
    }

    /// The people's index by email, as [`Inventory::from_parts`] takes it.
    pub(crate) fn index_people(people: &[PersonRow]) -> FastMap<String, usize> {
        let mut index = FastMap::with_capacity_and_hasher(people.len(), Default::default());
        for (i, p) in people.iter().enumerate() {
            index.insert(p.email.clone(), i);
        }
        index
    }

    /// Every row slot, hidden ones included (indices are what views hold).
    pub fn rows(&self) -> &[AgentRow] {
        &self.rows
    }

    pub fn row(&self, i: u32) -> &AgentRow {
        &self.rows[i as usize]
    }

    pub fn text(&self, s: Str) -> &str {
        self.arena.get(s)
    }

    pub fn symbol(&self, i: u32) -> &str {
        self.symbols.get(i)
    }

    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    pub fn people(&self) -> &[PersonRow] {
        &self.people
    }

    pub fn person(&self, email: &str) -> Option<&PersonRow> {
        self.people_index.get(email).map(|&i| &self.people[i])
    }

    /// The person who owned the agent and left: the agent is orphaned (unowned work).
    pub fn owner_left(&self, row: &AgentRow) -> Option<&PersonRow> {
        if row.owner == NONE {
            return None;
        }
        self.person(self.symbols.get(row.owner))
            .filter(|p| !p.active)
    }

    /// The owner symbols of people who left (what `owner_left` asks, for a whole pass).
    pub fn left_owner_symbols(&self) -> std::collections::HashSet<u32> {
        self.people
            .iter()
            .filter(|p| !p.active)
            .filter_map(|p| self.symbols.find(&p.email))
            .collect()
    }

    /// The owner's display name if known, else their email; empty when unowned.
    pub fn owner_label(&self, row: &AgentRow) -> &str {
        let email = self.symbols.get(row.owner);
        match self.person(email) {
            Some(p) => &p.display_name,
            None => email,
        }
    }

    pub fn visible_len(&self) -> usize {
        self.rows.iter().filter(|r| !r.hidden).count()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        let left = self.left_owner_symbols();
        for r in self.rows.iter().filter(|r| !r.hidden) {
            c.total += 1;
            if (r.owner == NONE || left.contains(&r.owner))
                && r.status != AgentStatus::Decommissioned
            {
                c.unowned += 1;
            }
            match r.status {
                AgentStatus::Suspended => c.suspended += 1,
                AgentStatus::Decommissioned => c.decommissioned += 1,
                AgentStatus::Active => {}
            }
            if r.static_secret {
                c.static_secrets += 1;
            }
        }
        c
    }

    fn index(&mut self) -> &mut FastMap<Box<str>, u32> {
        if self.id_index.is_none() {
            let mut map = FastMap::with_capacity_and_hasher(self.rows.len(), Default::default());
            for (i, r) in self.rows.iter().enumerate() {
                map.insert(Box::from(self.arena.get(r.id)), i as u32);
            }
            self.id_index = Some(map);
        }
        self.id_index.as_mut().expect("just built")
    }

    /// The row of an agent id (hidden rows included).
    pub fn find(&mut self, id: &str) -> Option<u32> {
        self.index().get(id).copied()
    }

    /// Finds a row without building the index (a linear scan; for rare lookups on a shared view).
    pub fn find_scan(&self, id: &str) -> Option<u32> {
        if let Some(index) = &self.id_index {
            return index.get(id).copied();
        }
        self.rows
            .iter()
            .position(|r| self.arena.get(r.id) == id)
            .map(|i| i as u32)
    }

    /// The arena slice of a text that many rows repeat (scope lists, flag labels): stored once.
    fn shared_text(&mut self, text: &str) -> Str {
        if text.is_empty() {
            return Str::default();
        }
        if self.shared.is_none() {
            let mut map: HashMap<Box<str>, Str> = HashMap::new();
            for r in &self.rows {
                for s in [r.scopes, r.flags] {
                    if s.len > 0 {
                        map.entry(Box::from(self.arena.get(s))).or_insert(s);
                    }
                }
            }
            self.shared = Some(map);
        }
        let map = self.shared.as_mut().expect("just built");
        if let Some(&s) = map.get(text) {
            return s;
        }
        let s = self.arena.push(text);
        map.insert(Box::from(text), s);
        s
    }

    /// Keeps a string slice if the text is unchanged, else appends the new text.
    fn restr(&mut self, old: Str, new: &str) -> Str {
        if self.arena.get(old) == new {
            old
        } else {
            self.arena.push(new)
        }
    }

    /// Inserts or replaces an agent from the registry's answer. Returns its row.
    pub fn upsert(&mut self, agent: &Agent) -> u32 {
        let scopes = agent
            .grants
            .iter()
            .map(|g| g.scope.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let flags = agent.flags.join(" ");
        let owner = match &agent.owner {
            Some(email) => self.symbols.intern(email),
            None => NONE,
        };
        if let (Some(email), Some(name)) = (&agent.owner, &agent.owner_name)
            && !self.people_index.contains_key(email)
        {
            // The feed may bring an agent before its owner; remember the name meanwhile.
            self.people_index.insert(email.clone(), self.people.len());
            self.people.push(PersonRow {
                email: email.clone(),
                display_name: name.clone(),
                active: agent.owner_left_at.is_none(),
                roles: Vec::new(),
                team: None,
                left_at: agent.owner_left_at.map(|t| t.timestamp()),
            });
        }
        let team = self.symbols.intern(&agent.team);
        let environment = self.symbols.intern(&agent.environment);
        let existing = self.find(&agent.id);
        let parent_row = match &agent.parent_id {
            Some(p) => self
                .find(p)
                .filter(|&p| Some(p) != existing)
                .unwrap_or(NONE),
            None => NONE,
        };
        let base = existing.map(|i| self.rows[i as usize]);
        let id = match base {
            Some(b) => b.id,
            None => self.arena.push(&agent.id),
        };
        let row = AgentRow {
            id,
            name: self.restr(base.map(|b| b.name).unwrap_or_default(), &agent.name),
            parent: self.restr(
                base.map(|b| b.parent).unwrap_or_default(),
                agent.parent_id.as_deref().unwrap_or(""),
            ),
            parent_row,
            scopes: self.shared_text(&scopes),
            flags: self.shared_text(&flags),
            owner,
            team,
            environment,
            kind: agent.kind,
            status: agent.status,
            source: agent.source,
            static_secret: agent.static_secret,
            hidden: false,
            scope_count: agent.grants.len().min(u16::MAX as usize) as u16,
            last_seen: ts(agent.last_seen_at),
            created: agent.created_at.timestamp(),
            change_seq: agent.change_seq,
        };
        self.version += 1;
        match existing {
            Some(i) => {
                self.rows[i as usize] = row;
                i
            }
            None => {
                let i = self.rows.len() as u32;
                self.rows.push(row);
                let key = Box::from(agent.id.as_str());
                self.index().insert(key, i);
                i
            }
        }
    }

    pub fn upsert_person(&mut self, person: &Person) {
        let row = PersonRow::from_person(person);
        match self.people_index.get(&person.email) {
            Some(&i) => self.people[i] = row,
            None => {
                self.people_index
                    .insert(person.email.clone(), self.people.len());
                self.people.push(row);
            }
        }
        self.version += 1;
    }

    /// Hides an agent the caller can no longer see.
    pub fn hide(&mut self, id: &str) {
        if let Some(i) = self.find(id) {
            self.rows[i as usize].hidden = true;
            self.version += 1;
        }
    }

    /// Records a decommission the registry reported (grants gone, credentials disabled) until
    /// the change feed brings the full record.
    pub fn mark_decommissioned(&mut self, id: &str) {
        if let Some(i) = self.find(id) {
            let r = &mut self.rows[i as usize];
            r.status = AgentStatus::Decommissioned;
            r.static_secret = false;
            r.scopes = Str::default();
            r.scope_count = 0;
            self.version += 1;
        }
    }

    /// Applies one page of the change feed.
    pub fn apply(&mut self, feed: &ChangeFeed) {
        for p in &feed.people {
            self.upsert_person(p);
        }
        for a in &feed.agents {
            self.upsert(a);
        }
        for id in &feed.removed {
            self.hide(id);
        }
        if !feed.agents.is_empty() {
            self.resolve_parents();
        }
        self.cursor = feed.cursor;
        self.version += 1;
    }

    /// Links children that arrived before their parent (the feed does not promise parents
    /// first). Rows whose parent is unknown keep `NONE`.
    pub fn resolve_parents(&mut self) {
        let waiting: Vec<u32> = (0..self.rows.len() as u32)
            .filter(|&i| {
                let r = &self.rows[i as usize];
                r.parent_row == NONE && r.parent.len > 0
            })
            .collect();
        for i in waiting {
            let parent = self.arena.get(self.rows[i as usize].parent).to_string();
            if let Some(p) = self.find(&parent)
                && p != i
            {
                self.rows[i as usize].parent_row = p;
                self.version += 1;
            }
        }
    }

    /// The parent's row when the agent has one in this inventory and it is not hidden.
    pub fn parent_of(&self, row: &AgentRow) -> Option<u32> {
        (row.parent_row != NONE && !self.rows[row.parent_row as usize].hidden)
            .then_some(row.parent_row)
    }

    /// Forgets everything (the cache belonged to someone else, or the registry was reset).
    pub fn clear(&mut self) {
        let server = std::mem::take(&mut self.server);
        let version = self.version + 1;
        *self = Inventory::new(&server);
        self.version = version;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;

    pub(crate) fn agent(id: &str, name: &str, owner: Option<&str>) -> Agent {
        Agent {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            kind: AgentKind::Agent,
            parent_id: None,
            owner: owner.map(Into::into),
            owner_name: owner.map(|o| o.to_uppercase()),
            team: "payments".into(),
            environment: "prod".into(),
            status: AgentStatus::Active,
            source: AgentSource::Registered,
            created_at: Utc::now(),
            last_seen_at: None,
            static_secret: false,
            flags: vec![],
            grants: vec![],
            change_seq: 1,
            owner_left_at: None,
        }
    }

    #[test]
    fn upsert_replaces_in_place_and_reuses_unchanged_text() {
        let mut inv = Inventory::new("http://x");
        let a = inv.upsert(&agent("a1", "billing-bot", None));
        let arena_len = inv.arena.len();
        let mut changed = agent("a1", "billing-bot", Some("ada@example.com"));
        changed.status = AgentStatus::Suspended;
        assert_eq!(inv.upsert(&changed), a);
        assert_eq!(
            inv.arena.len(),
            arena_len,
            "unchanged name must not grow the arena"
        );
        let row = inv.row(a);
        assert_eq!(row.status, AgentStatus::Suspended);
        assert_eq!(inv.symbol(row.owner), "ada@example.com");
        assert_eq!(inv.owner_label(row), "ADA@EXAMPLE.COM");
        inv.hide("a1");
        assert_eq!(inv.visible_len(), 0);
    }

    #[test]
    fn repeated_scope_lists_are_stored_once_and_stay_shared_through_the_cache() {
        let grant = |scope: &str| crate::model::Grant {
            scope: scope.into(),
            granted_by: "x".into(),
            granted_at: Utc::now(),
            expires_at: None,
            justification: None,
            last_used_at: None,
            last_certified_at: None,
        };
        let mut inv = Inventory::new("http://x");
        for n in 0..50 {
            let mut a = agent(&format!("a{n}"), &format!("bot-{n}"), None);
            a.grants = vec![grant("crm.orders:read"), grant("erp.ledger:read")];
            inv.upsert(&a);
        }
        let mut odd = agent("z", "odd", None);
        odd.grants = vec![grant("wiki:read")];
        inv.upsert(&odd);
        let first = inv.row(0).scopes;
        assert!(inv.rows()[..50].iter().all(|r| r.scopes == first));
        assert_eq!(inv.text(inv.row(50).scopes), "wiki:read");
        let back = crate::console::cache::decode(crate::console::cache::encode(&inv)).unwrap();
        let lists: std::collections::HashSet<Str> = back.rows().iter().map(|r| r.scopes).collect();
        assert_eq!(lists.len(), 2, "written once each");
        for r in back.rows() {
            let want = if back.text(r.name) == "odd" {
                "wiki:read"
            } else {
                "crm.orders:read erp.ledger:read"
            };
            assert_eq!(back.text(r.scopes), want);
        }
        // After a load, a new agent with a known list shares the loaded text.
        let mut back = back;
        let before = back.arena().len();
        let mut more = agent("b1", "bot-new", None);
        more.grants = vec![grant("crm.orders:read"), grant("erp.ledger:read")];
        back.upsert(&more);
        assert_eq!(back.arena().len(), before + "b1".len() + "bot-new".len());
    }
}
