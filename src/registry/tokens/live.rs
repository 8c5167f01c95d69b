//! The in-memory index of every unexpired token the registry issued, with its revocation state.
//!
//! Introspection reads only this index, so it answers without touching the database; the store
//! loads it when it opens and updates it inside the transactions that revoke agents and tokens,
//! so that the index and the database agree and a revoke is visible to introspection before its
//! transaction even commits (fail closed).
//!
//! The race that matters — an exchange in flight while its agent is revoked — is closed here:
//! [`LiveTokens::issue`] checks that no actor is blocked and that the parent token is alive, and
//! inserts the new token, under the same lock that [`LiveTokens::revoke_agent`] takes to block
//! the agent and kill its tokens. Either the exchange comes first (its token is then killed and
//! counted by the revoke) or the revoke does (the exchange is refused).
//!
//! Replicas over one PostgreSQL database each keep an index: every change made inside a store
//! write is recorded as a [`LiveChange`] (see [`recording`]), published with the transaction's
//! commit, and applied by every other replica (`store/replication.rs`). A replica that cannot
//! hear the others is *not synced*: it answers no token as active and issues none until it has
//! reloaded ([`LiveTokens::set_synced`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use hashbrown::HashTable;

use super::removed_grants::RemovedGrants;
pub use super::removed_grants::{REMOVED_GRANT_MEMORY_SECONDS, SLOWEST_EXCHANGE_SECONDS};

/// Seconds of clock difference tolerated when checking `exp`, `nbf` and `iat`.
pub const CLOCK_LEEWAY: i64 = 30;

/// What kind of token a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A person access token (at most one hour), the subject of a first exchange.
    Person,
    /// A token issued by exchange: the person as subject, agents as actors.
    Exchange,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Person => "person",
            TokenKind::Exchange => "exchange",
        }
    }

    pub fn parse(text: &str) -> Option<TokenKind> {
        match text {
            "person" => Some(TokenKind::Person),
            "exchange" => Some(TokenKind::Exchange),
            _ => None,
        }
    }
}

/// Everything recorded about one issued token (never the token itself: only its digest).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub jti: String,
    pub kind: TokenKind,
    /// SHA-256 of the compact JWT: how introspection recognises the exact bytes it signed.
    pub digest: [u8; 32],
    pub kid: String,
    /// The person (email).
    pub subject: String,
    /// The agent the token was issued to; None for person tokens.
    pub client_id: Option<String>,
    /// The delegation chain, newest actor first (empty for person tokens).
    pub actors: Vec<String>,
    /// The token this one was exchanged from, if the registry issued it.
    pub parent_jti: Option<String>,
    /// Granted scopes (empty for person tokens: they carry no scope of their own).
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    /// For person tokens: the only agent allowed to act with it.
    pub may_act: Option<String>,
    /// Where the subject came from: `person-token`, `idp:<issuer>`, `exchange`, `api`.
    pub subject_source: String,
    /// How the agent authenticated: `private_key_jwt` or `client_secret` (flagged debt).
    pub client_auth: Option<String>,
    pub credential_id: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// For person tokens: the API token that minted it (the token dies with it).
    pub api_token_id: Option<String>,
    /// For exchanges: the delegation that allowed the agent to act for the subject (the token
    /// dies when the delegation is revoked). Inherited by sub-agent hops.
    pub delegation_id: Option<String>,
}

/// A single-use agent assertion that was spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedAssertion {
    pub agent_id: String,
    pub jti: String,
    pub expires_at: i64,
}

/// Why [`LiveTokens::issue`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueRefusal {
    AgentBlocked(String),
    ParentInactive(String),
    /// The API token or delegation the token comes from has been revoked.
    OriginRevoked(String),
    /// The subject has left.
    SubjectLeft(String),
    /// A scope was removed from the agent after the exchange read its grants.
    GrantRemoved(String),
    /// This replica cannot hear the others' revocations (see [`LiveTokens::set_synced`]).
    NotSynced,
}

/// One change to the index that every replica must make: what a store write did to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LiveChange {
    /// Tokens were stored (the other replicas read their records from the database).
    Issued {
        jtis: Vec<String>,
    },
    RevokeAgent {
        agent: String,
    },
    UnblockAgent {
        agent: String,
    },
    BlockAgents {
        agents: Vec<String>,
    },
    RevokeTree {
        jti: String,
    },
    RevokeGrant {
        agent: String,
        scope: String,
    },
    RestoreGrant {
        agent: String,
        scope: String,
    },
    RevokeSubject {
        email: String,
    },
    RestoreSubject {
        email: String,
    },
    RevokeOrigins {
        ids: Vec<String>,
    },
}

thread_local! {
    /// The changes made on this thread since [`recording`] began (None: not recording).
    static RECORDED: RefCell<Option<Vec<LiveChange>>> = const { RefCell::new(None) };
}

/// Runs `f`, returning with its result every change it made to any index (the store wraps each
/// write transaction in it, to publish the changes with the commit).
pub fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<LiveChange>) {
    struct Restore(Option<Vec<LiveChange>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            RECORDED.with(|r| *r.borrow_mut() = previous);
        }
    }
    let restore = Restore(RECORDED.with(|r| r.replace(Some(Vec::new()))));
    let out = f();
    let changes = RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (out, changes)
}

/// Records a change when the thread is [`recording`]; nothing otherwise (a replica applying
/// another's change, tests of the index alone).
pub fn note(change: LiveChange) {
    RECORDED.with(|r| {
        if let Some(changes) = r.borrow_mut().as_mut() {
            changes.push(change);
        }
    });
}

/// How long a jti revoked before its record arrived is remembered: longer than any token
/// lives, so that the record, whenever it arrives, arrives revoked.
const DEAD_JTI_MEMORY_SECONDS: i64 = 2 * 86_400;

/// Marks an absent interned value (`None`).
const NONE: u32 = u32::MAX;

/// Strings that many tokens share (agents, people, scopes, audiences, kids, credential, API
/// token and delegation ids), each stored once; a token holds 4-byte numbers. Interned names
/// live as long as the process: their number is bounded by the registry's agents, people,
/// scopes and credentials, not by the tokens issued.
#[derive(Default)]
struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn intern_opt(&mut self, name: Option<&str>) -> u32 {
        name.map_or(NONE, |n| self.intern(n))
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    fn opt(&self, id: u32) -> Option<String> {
        (id != NONE).then(|| self.name(id).to_string())
    }
}

/// Lists of interned names (actor chains, scope sets, audiences), each stored once.
#[derive(Default)]
struct Lists {
    ids: HashMap<Box<[u32]>, u32>,
    lists: Vec<Box<[u32]>>,
}

impl Lists {
    fn intern(&mut self, names: &mut Names, items: &[String]) -> u32 {
        let list: Vec<u32> = items.iter().map(|i| names.intern(i)).collect();
        if let Some(&id) = self.ids.get(list.as_slice()) {
            return id;
        }
        let id = self.lists.len() as u32;
        self.lists.push(list.clone().into_boxed_slice());
        self.ids.insert(list.into_boxed_slice(), id);
        id
    }

    fn list(&self, id: u32) -> &[u32] {
        &self.lists[id as usize]
    }
}

/// A token's `jti`: the registry's own (128 random bits in 22 base64url characters) as its 16
/// bytes; any other text (records written by tests or older versions) interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Jti {
    Bytes([u8; 16]),
    Named(u32),
}

impl Jti {
    /// The registry's own form: 22 base64url characters that are exactly 16 bytes.
    fn bytes(text: &str) -> Option<Jti> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        if text.len() != 22 {
            return None;
        }
        let mut bytes = [0u8; 16];
        (URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) == Ok(16)
            && URL_SAFE_NO_PAD.encode(bytes) == text)
            .then_some(Jti::Bytes(bytes))
    }

    /// The compact form of `text`, interned when needed.
    fn intern(text: &str, names: &mut Names) -> Jti {
        Jti::bytes(text).unwrap_or_else(|| Jti::Named(names.intern(text)))
    }

    /// The compact form of a known `text` (a lookup never grows the names: an unknown name is
    /// simply not there).
    fn lookup(text: &str, names: &Names) -> Option<Jti> {
        Jti::bytes(text).or_else(|| names.get(text).map(Jti::Named))
    }

    fn text(self, names: &Names) -> String {
        use base64::Engine;
        match self {
            Jti::Bytes(b) => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
            Jti::Named(id) => names.name(id).to_string(),
        }
    }
}

/// One token in the index, in about 150 bytes: no String or Vec of its own.
struct Slot {
    digest: [u8; 32],
    jti: Jti,
    parent: Option<Jti>,
    issued_at: i64,
    expires_at: i64,
    subject: u32,
    client_id: u32,
    /// Lists (see [`Lists`]).
    actors: u32,
    scopes: u32,
    audience: u32,
    may_act: u32,
    kid: u32,
    subject_source: u32,
    client_auth: u32,
    credential_id: u32,
    api_token_id: u32,
    delegation_id: u32,
    kind: TokenKind,
    revoked: bool,
    /// False for a free slot (its token was pruned; reused by the next insert).
    used: bool,
}

impl Slot {
    fn origins(&self) -> impl Iterator<Item = u32> {
        [self.api_token_id, self.delegation_id]
            .into_iter()
            .filter(|o| *o != NONE)
    }
}

struct Index {
    names: Names,
    lists: Lists,
    /// Tokens by slot number; `free` lists the unused slots.
    slots: Vec<Slot>,
    free: Vec<u32>,
    count: usize,
    /// Slot numbers hashed by digest and by jti (4 bytes a bucket; the keys live in the slot).
    by_digest: HashTable<u32>,
    by_jti: HashTable<u32>,
    jti_hasher: RandomState,
    /// Agent (interned) → slots of tokens in which it is one of the actors.
    by_agent: HashMap<u32, Vec<u32>>,
    /// Slot → slots of tokens exchanged from it.
    children: HashMap<u32, Vec<u32>>,
    /// API token or delegation id (interned) → slots of tokens minted or exchanged under it.
    by_origin: HashMap<u32, Vec<u32>>,
    /// Agents that are not active: no token may name them as actor.
    blocked: HashSet<String>,
    /// Revoked API tokens and delegations: no new token may come from them.
    dead_origins: HashSet<String>,
    /// People who have left (lowercased emails): no new token may name them as subject.
    left_subjects: HashSet<String>,
    /// (agent, scope) grants removed lately: an exchange that read the grant before its
    /// removal must not insert a token carrying it afterwards.
    removed_grants: RemovedGrants,
    /// Tokens revoked by jti before this index knew them (another replica issued them and its
    /// notice had not arrived): jti → when the record may be forgotten.
    dead_jtis: HashMap<String, i64>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            names: Names::default(),
            lists: Lists::default(),
            slots: Vec::new(),
            free: Vec::new(),
            count: 0,
            by_digest: HashTable::new(),
            by_jti: HashTable::new(),
            jti_hasher: RandomState::new(),
            by_agent: HashMap::new(),
            children: HashMap::new(),
            by_origin: HashMap::new(),
            blocked: HashSet::new(),
            dead_origins: HashSet::new(),
            left_subjects: HashSet::new(),
            removed_grants: RemovedGrants::default(),
            dead_jtis: HashMap::new(),
        }
    }
}

/// Digests are SHA-256 outputs of tokens the registry signed: their first bytes hash well.
fn digest_hash(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("eight bytes"))
}

#[derive(Default)]
pub struct LiveTokens {
    index: RwLock<Index>,
    /// (agent, jti) → expiry of spent assertions.
    assertions: Mutex<HashMap<(String, String), i64>>,
    /// False while this replica may have missed another's change (fail closed).
    not_synced: AtomicBool,
}

impl std::fmt::Debug for LiveTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveTokens")
    }
}

impl Index {
    fn jti_hash(&self, jti: &Jti) -> u64 {
        self.jti_hasher.hash_one(jti)
    }

    fn slot_of_digest(&self, digest: &[u8; 32]) -> Option<u32> {
        let slots = &self.slots;
        self.by_digest
            .find(digest_hash(digest), |&i| {
                slots[i as usize].digest == *digest
            })
            .copied()
    }

    fn slot_of_jti(&self, jti: &Jti) -> Option<u32> {
        let slots = &self.slots;
        self.by_jti
            .find(self.jti_hash(jti), |&i| slots[i as usize].jti == *jti)
            .copied()
    }

    /// The slot of a jti given as text.
    fn slot_of(&self, jti: &str) -> Option<u32> {
        self.slot_of_jti(&Jti::lookup(jti, &self.names)?)
    }

    fn record(&self, slot: &Slot) -> TokenRecord {
        let names = &self.names;
        let list = |id: u32| -> Vec<String> {
            self.lists
                .list(id)
                .iter()
                .map(|n| names.name(*n).to_string())
                .collect()
        };
        TokenRecord {
            jti: slot.jti.text(names),
            kind: slot.kind,
            digest: slot.digest,
            kid: names.name(slot.kid).to_string(),
            subject: names.name(slot.subject).to_string(),
            client_id: names.opt(slot.client_id),
            actors: list(slot.actors),
            parent_jti: slot.parent.map(|p| p.text(names)),
            scopes: list(slot.scopes),
            audience: list(slot.audience),
            may_act: names.opt(slot.may_act),
            subject_source: names.name(slot.subject_source).to_string(),
            client_auth: names.opt(slot.client_auth),
            credential_id: names.opt(slot.credential_id),
            issued_at: slot.issued_at,
            expires_at: slot.expires_at,
            api_token_id: names.opt(slot.api_token_id),
            delegation_id: names.opt(slot.delegation_id),
        }
    }

    fn insert(&mut self, record: &TokenRecord, revoked: bool) {
        let names = &mut self.names;
        let jti = Jti::intern(&record.jti, names);
        let parent = record.parent_jti.as_deref().map(|p| Jti::intern(p, names));
        let slot = Slot {
            digest: record.digest,
            jti,
            parent,
            issued_at: record.issued_at,
            expires_at: record.expires_at,
            subject: names.intern(&record.subject),
            client_id: names.intern_opt(record.client_id.as_deref()),
            actors: self.lists.intern(names, &record.actors),
            scopes: self.lists.intern(names, &record.scopes),
            audience: self.lists.intern(names, &record.audience),
            may_act: names.intern_opt(record.may_act.as_deref()),
            kid: names.intern(&record.kid),
            subject_source: names.intern(&record.subject_source),
            client_auth: names.intern_opt(record.client_auth.as_deref()),
            credential_id: names.intern_opt(record.credential_id.as_deref()),
            api_token_id: names.intern_opt(record.api_token_id.as_deref()),
            delegation_id: names.intern_opt(record.delegation_id.as_deref()),
            kind: record.kind,
            revoked,
            used: true,
        };
        // The same jti or digest again replaces the earlier entry.
        if let Some(old) = self.slot_of_jti(&jti) {
            self.remove(&[old]);
        }
        if let Some(old) = self.slot_of_digest(&record.digest) {
            self.remove(&[old]);
        }
        let mut actors = self.lists.list(slot.actors).to_vec();
        actors.sort_unstable();
        actors.dedup();
        let origins: Vec<u32> = slot.origins().collect();
        let parent_slot = parent.and_then(|p| self.slot_of_jti(&p));
        let n = match self.free.pop() {
            Some(n) => {
                self.slots[n as usize] = slot;
                n
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.count += 1;
        let slots = &self.slots;
        self.by_digest
            .insert_unique(digest_hash(&record.digest), n, |&i| {
                digest_hash(&slots[i as usize].digest)
            });
        let hasher = &self.jti_hasher;
        self.by_jti.insert_unique(hasher.hash_one(jti), n, |&i| {
            hasher.hash_one(slots[i as usize].jti)
        });
        for actor in actors {
            self.by_agent.entry(actor).or_default().push(n);
        }
        // A parent not in the index (pruned, hence expired) has no children to revoke.
        if let Some(p) = parent_slot {
            self.children.entry(p).or_default().push(n);
        }
        for origin in origins {
            self.by_origin.entry(origin).or_default().push(n);
        }
    }

    /// Frees slots and every reference to them.
    fn remove(&mut self, gone: &[u32]) {
        if gone.is_empty() {
            return;
        }
        for &n in gone {
            let slot = &self.slots[n as usize];
            if !slot.used {
                continue;
            }
            let (digest, jti) = (slot.digest, slot.jti);
            if let Ok(e) = self.by_digest.find_entry(digest_hash(&digest), |&i| i == n) {
                e.remove();
            }
            let hash = self.jti_hasher.hash_one(jti);
            if let Ok(e) = self.by_jti.find_entry(hash, |&i| i == n) {
                e.remove();
            }
            self.slots[n as usize].used = false;
            self.free.push(n);
            self.count -= 1;
            self.children.remove(&n);
        }
        let slots = &self.slots;
        let keep = |list: &mut Vec<u32>| {
            list.retain(|&i| slots[i as usize].used);
            !list.is_empty()
        };
        if gone.len() == 1 {
            // One slot (a replaced entry): only its own lists.
            let s = &self.slots[gone[0] as usize];
            for a in self.lists.list(s.actors) {
                if let Some(list) = self.by_agent.get_mut(a)
                    && !keep(list)
                {
                    self.by_agent.remove(a);
                }
            }
            for o in s.origins() {
                if let Some(list) = self.by_origin.get_mut(&o)
                    && !keep(list)
                {
                    self.by_origin.remove(&o);
                }
            }
            if let Some(p) = s.parent.and_then(|p| self.slot_of_jti(&p))
                && let Some(list) = self.children.get_mut(&p)
                && !keep(list)
            {
                self.children.remove(&p);
            }
        } else {
            self.by_agent.retain(|_, list| keep(list));
            self.by_origin.retain(|_, list| keep(list));
            self.children.retain(|_, list| keep(list));
        }
    }

    /// Marks the slot `n` and every token exchanged from it revoked; adds the jtis that were
    /// live to `out`.
    fn revoke_slot_tree(&mut self, n: u32, now: i64, out: &mut Vec<String>) {
        let mut stack = vec![n];
        while let Some(n) = stack.pop() {
            let slot = &mut self.slots[n as usize];
            if !slot.used {
                continue;
            }
            if !slot.revoked {
                slot.revoked = true;
                if slot.expires_at > now {
                    let jti = slot.jti;
                    out.push(jti.text(&self.names));
                }
            }
            if let Some(kids) = self.children.get(&n) {
                stack.extend(kids.iter().copied());
            }
        }
    }

    /// Marks `jti` and every token exchanged from it revoked; adds the ones that were live.
    fn revoke_tree(&mut self, jti: &str, now: i64, out: &mut Vec<String>) {
        match self.slot_of(jti) {
            Some(n) => self.revoke_slot_tree(n, now, out),
            // Issued by another replica whose notice is still on its way: refused on arrival.
            None => {
                self.dead_jtis
                    .insert(jti.to_string(), now + DEAD_JTI_MEMORY_SECONDS);
            }
        }
    }

    /// Whether a stored token (loaded, or issued by another replica) is dead by what this index
    /// knows beyond its own revocation: an actor blocked, an origin revoked, its subject gone,
    /// a revoked parent, a jti revoked before the record arrived, a grant removed since. A parent this index does
    /// not hold is not held against it (the database's revocations are).
    fn dead_on_arrival(&self, record: &TokenRecord) -> bool {
        let parent_revoked = record
            .parent_jti
            .as_deref()
            .and_then(|p| self.slot_of(p))
            .is_some_and(|n| self.slots[n as usize].revoked);
        parent_revoked
            || self.dead_jtis.contains_key(&record.jti)
            || record.actors.iter().any(|a| self.blocked.contains(a))
            || record.origins().any(|o| self.dead_origins.contains(o))
            || (!self.left_subjects.is_empty()
                && self.left_subjects.contains(&record.subject.to_lowercase()))
            || record.client_id.as_ref().is_some_and(|agent| {
                record
                    .scopes
                    .iter()
                    .any(|s| self.removed_grants.contains(agent, s))
            })
    }

    /// Why a token may not be live here (None: it may).
    fn refusal(&self, record: &TokenRecord, now: i64) -> Option<IssueRefusal> {
        if let Some(blocked) = record.actors.iter().find(|a| self.blocked.contains(*a)) {
            return Some(IssueRefusal::AgentBlocked(blocked.clone()));
        }
        if let Some(parent) = &record.parent_jti {
            match self.slot_of(parent).map(|n| &self.slots[n as usize]) {
                Some(slot) if !slot.revoked && slot.expires_at > now => {}
                _ => return Some(IssueRefusal::ParentInactive(parent.clone())),
            }
        }
        if let Some(dead) = record.origins().find(|o| self.dead_origins.contains(*o)) {
            return Some(IssueRefusal::OriginRevoked(dead.to_string()));
        }
        if !self.left_subjects.is_empty()
            && self.left_subjects.contains(&record.subject.to_lowercase())
        {
            return Some(IssueRefusal::SubjectLeft(record.subject.clone()));
        }
        if let Some(agent) = &record.client_id
            && let Some(scope) = record
                .scopes
                .iter()
                .find(|s| self.removed_grants.contains(agent, s))
        {
            return Some(IssueRefusal::GrantRemoved(scope.clone()));
        }
        None
    }

    fn revoke_slots(&mut self, roots: Vec<u32>, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        for n in roots {
            self.revoke_slot_tree(n, now, &mut out);
        }
        out
    }
}

impl TokenRecord {
    /// The API token and delegation this token comes from (each revocable on its own).
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.api_token_id
            .as_deref()
            .into_iter()
            .chain(self.delegation_id.as_deref())
    }
}

/// What the index refuses from the start, read from the database when it opens.
#[derive(Debug, Default, Clone)]
pub struct Refusals {
    /// Agents that are not active.
    pub blocked_agents: Vec<String>,
    /// Revoked API tokens and delegations that have not expired.
    pub dead_origins: Vec<String>,
    /// Emails of people who have left.
    pub left_subjects: Vec<String>,
}

/// One live token, for answers (a copy rebuilt from the compact index).
#[derive(Debug, Clone)]
pub struct TokenView {
    pub record: TokenRecord,
    pub revoked: bool,
}

impl LiveTokens {
    pub fn new() -> LiveTokens {
        LiveTokens::default()
    }

    /// Whether this index has every change made by every replica (always, on SQLite).
    pub fn is_synced(&self) -> bool {
        !self.not_synced.load(Ordering::SeqCst)
    }

    /// Set false when this replica may have missed a change (its notification connection
    /// dropped): from then on no token reads as live and none is issued. Set true only after a
    /// full [`load`](Self::load) that began after the replica listened again.
    pub fn set_synced(&self, synced: bool) {
        // Under the index's lock: an exchange past its check cannot insert after this returns.
        let _index = self.write();
        self.not_synced.store(!synced, Ordering::SeqCst);
    }

    /// Applies another replica's change (an [`LiveChange::Issued`] is applied with
    /// [`insert_stored`](Self::insert_stored) once its records are read).
    pub fn apply(&self, change: &LiveChange, now: i64) {
        match change {
            LiveChange::Issued { .. } => {}
            LiveChange::RevokeAgent { agent } => {
                self.revoke_agent(agent, now);
            }
            LiveChange::UnblockAgent { agent } => self.unblock_agent(agent),
            LiveChange::BlockAgents { agents } => {
                self.block_agents(agents.iter().map(String::as_str));
            }
            LiveChange::RevokeTree { jti } => {
                self.revoke_tree(jti, now);
            }
            LiveChange::RevokeGrant { agent, scope } => {
                self.revoke_grant(agent, scope, now);
            }
            LiveChange::RestoreGrant { agent, scope } => self.restore_grant(agent, scope),
            LiveChange::RevokeSubject { email } => {
                self.revoke_subject(email, now);
            }
            LiveChange::RestoreSubject { email } => self.restore_subject(email),
            LiveChange::RevokeOrigins { ids } => {
                self.revoke_origins(ids, now);
            }
        }
    }

    /// Adds a token another replica issued, as stored (with its revocation), unless it is
    /// already here. Its parent and actors are not checked: the database is the authority, and
    /// a revocation that follows it arrives after it.
    pub fn insert_stored(&self, record: &TokenRecord, revoked: bool) {
        let mut index = self.write();
        if index.slot_of(&record.jti).is_none() {
            let revoked = revoked || index.dead_on_arrival(record);
            index.insert(record, revoked);
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        // A panic while holding the lock leaves the index as it was between two whole updates.
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads state from the database at start.
    pub fn load(
        &self,
        tokens: Vec<(TokenRecord, bool)>,
        refusals: Refusals,
        assertions: Vec<ConsumedAssertion>,
    ) {
        let mut index = self.write();
        *index = Index::default();
        index.blocked = refusals.blocked_agents.into_iter().collect();
        index.dead_origins = refusals.dead_origins.into_iter().collect();
        index.left_subjects = refusals
            .left_subjects
            .into_iter()
            .map(|e| e.to_lowercase())
            .collect();
        for (record, revoked) in tokens {
            // Parents first (the records come in issue order), so a revoked parent's children
            // are found dead too.
            let revoked = revoked || index.dead_on_arrival(&record);
            index.insert(&record, revoked);
        }
        drop(index);
        let mut spent = self.assertions.lock().unwrap_or_else(|p| p.into_inner());
        spent.clear();
        for a in assertions {
            spent.insert((a.agent_id, a.jti), a.expires_at);
        }
    }

    /// Adds a freshly signed token, unless one of its actors is blocked or its parent is no
    /// longer live. This is the linearisation point of an exchange against a revoke.
    pub fn issue(
        &self,
        record: impl std::borrow::Borrow<TokenRecord>,
        now: i64,
    ) -> Result<(), IssueRefusal> {
        let record = record.borrow();
        let mut index = self.write();
        if !self.is_synced() {
            return Err(IssueRefusal::NotSynced);
        }
        if let Some(refusal) = index.refusal(record, now) {
            return Err(refusal);
        }
        index.insert(record, false);
        Ok(())
    }

    /// Revokes API tokens or delegations: no new token may come from them, and every live token
    /// minted or exchanged under them dies with everything derived from it. Returns the jtis
    /// that were live.
    pub fn revoke_origins(&self, origins: &[String], now: i64) -> Vec<String> {
        note(LiveChange::RevokeOrigins {
            ids: origins.to_vec(),
        });
        let mut index = self.write();
        let mut out = Vec::new();
        for origin in origins {
            index.dead_origins.insert(origin.clone());
            let roots: Vec<u32> = index
                .names
                .get(origin)
                .and_then(|o| index.by_origin.get(&o))
                .cloned()
                .unwrap_or_default();
            out.extend(index.revoke_slots(roots, now));
        }
        out
    }

    /// A person has left: no new token may name them, and every live token in which they are
    /// the subject dies with everything derived from it. Returns the jtis that were live.
    pub fn revoke_subject(&self, email: &str, now: i64) -> Vec<String> {
        note(LiveChange::RevokeSubject {
            email: email.to_string(),
        });
        let mut index = self.write();
        let email = email.to_lowercase();
        index.left_subjects.insert(email.clone());
        // A leaver is rare; one pass over the index is cheaper than a per-subject map that
        // every exchange would have to maintain. The names spelling the email in any case:
        let subjects: HashSet<u32> = index
            .names
            .names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.to_lowercase() == email)
            .map(|(i, _)| i as u32)
            .collect();
        let roots: Vec<u32> = index
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.used && !s.revoked && subjects.contains(&s.subject))
            .map(|(n, _)| n as u32)
            .collect();
        index.revoke_slots(roots, now)
    }

    /// A person who left came back: new tokens may name them again (old ones stay dead).
    pub fn restore_subject(&self, email: &str) {
        note(LiveChange::RestoreSubject {
            email: email.to_string(),
        });
        self.write().left_subjects.remove(&email.to_lowercase());
    }

    /// A grant was removed: every live token issued to the agent carrying the scope dies with
    /// everything derived from it, and no exchange in flight may still issue one. Returns the
    /// jtis that were live.
    pub fn revoke_grant(&self, agent_id: &str, scope: &str, now: i64) -> Vec<String> {
        note(LiveChange::RevokeGrant {
            agent: agent_id.to_string(),
            scope: scope.to_string(),
        });
        let mut index = self.write();
        index.removed_grants.insert(agent_id, scope, now);
        let (Some(agent), Some(scope)) = (index.names.get(agent_id), index.names.get(scope)) else {
            return Vec::new();
        };
        let roots: Vec<u32> = index
            .by_agent
            .get(&agent)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&n| {
                let s = &index.slots[n as usize];
                s.used
                    && !s.revoked
                    && s.client_id == agent
                    && index.lists.list(s.scopes).contains(&scope)
            })
            .collect();
        index.revoke_slots(roots, now)
    }

    /// The scope was granted to the agent again: exchanges may carry it.
    pub fn restore_grant(&self, agent_id: &str, scope: &str) {
        note(LiveChange::RestoreGrant {
            agent: agent_id.to_string(),
            scope: scope.to_string(),
        });
        self.write().removed_grants.remove(agent_id, scope);
    }

    /// Spends a single-use assertion id; false if it was spent before (a replay).
    pub fn consume_assertion(&self, agent_id: &str, jti: &str, expires_at: i64) -> bool {
        let mut spent = self.assertions.lock().unwrap_or_else(|p| p.into_inner());
        let key = (agent_id.to_string(), jti.to_string());
        if spent.contains_key(&key) {
            return false;
        }
        spent.insert(key, expires_at);
        true
    }

    /// Runs `f` on the token whose digest is `digest`, if the registry issued it and it is still
    /// in the index (expired tokens leave it at the next sweep).
    pub fn with_digest<T>(&self, digest: &[u8; 32], f: impl FnOnce(TokenView) -> T) -> Option<T> {
        if !self.is_synced() {
            return None;
        }
        let view = {
            let index = self.read();
            let slot = &index.slots[index.slot_of_digest(digest)? as usize];
            TokenView {
                record: index.record(slot),
                revoked: slot.revoked,
            }
        };
        Some(f(view))
    }

    /// True if the token is known and revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        let index = self.read();
        index
            .slot_of(jti)
            .is_some_and(|n| index.slots[n as usize].revoked)
    }

    /// Revokes a token and everything exchanged from it; returns the jtis that were live.
    pub fn revoke_tree(&self, jti: &str, now: i64) -> Vec<String> {
        note(LiveChange::RevokeTree {
            jti: jti.to_string(),
        });
        let mut out = Vec::new();
        self.write().revoke_tree(jti, now, &mut out);
        out
    }

    /// Blocks an agent (no new token may name it) and revokes every token in which it acts,
    /// with everything derived from them. Returns the jtis that were live.
    pub fn revoke_agent(&self, agent_id: &str, now: i64) -> Vec<String> {
        note(LiveChange::RevokeAgent {
            agent: agent_id.to_string(),
        });
        let mut index = self.write();
        index.blocked.insert(agent_id.to_string());
        let roots: Vec<u32> = index
            .names
            .get(agent_id)
            .and_then(|a| index.by_agent.get(&a))
            .cloned()
            .unwrap_or_default();
        index.revoke_slots(roots, now)
    }

    /// The latest expiry among these tokens (unix seconds), from the index.
    pub fn latest_expiry(&self, jtis: &[String]) -> Option<i64> {
        let index = self.read();
        jtis.iter()
            .filter_map(|j| index.slot_of(j))
            .map(|n| index.slots[n as usize].expires_at)
            .max()
    }

    /// Lets an agent be named in new tokens again (reinstatement). Killed tokens stay dead.
    pub fn unblock_agent(&self, agent_id: &str) {
        note(LiveChange::UnblockAgent {
            agent: agent_id.to_string(),
        });
        self.write().blocked.remove(agent_id);
    }

    /// Blocks agents without touching tokens (seeding agents that are not active).
    pub fn block_agents<'a>(&self, agent_ids: impl IntoIterator<Item = &'a str>) {
        let mut index = self.write();
        let mut blocked = Vec::new();
        for id in agent_ids {
            index.blocked.insert(id.to_string());
            blocked.push(id.to_string());
        }
        note(LiveChange::BlockAgents { agents: blocked });
    }

    /// Marks tokens revoked without cascading (tokens whose record could not be stored).
    pub fn fail(&self, jtis: &[String]) {
        let mut index = self.write();
        for jti in jtis {
            if let Some(n) = index.slot_of(jti) {
                index.slots[n as usize].revoked = true;
            }
        }
    }

    /// Live (unexpired, unrevoked) tokens issued to an agent, soonest expiry first.
    pub fn issued_to(&self, agent_id: &str, now: i64) -> Vec<TokenRecord> {
        let index = self.read();
        let Some(agent) = index.names.get(agent_id) else {
            return Vec::new();
        };
        let mut out: Vec<TokenRecord> = index
            .by_agent
            .get(&agent)
            .into_iter()
            .flatten()
            .map(|&n| &index.slots[n as usize])
            .filter(|s| s.used && !s.revoked && s.expires_at > now && s.client_id == agent)
            .map(|s| index.record(s))
            .collect();
        out.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then(a.jti.cmp(&b.jti)));
        out
    }

    /// How many tokens are in the index (live, revoked, or expired since the last sweep).
    pub fn len(&self) -> usize {
        self.read().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired tokens and spent assertions that have expired.
    pub fn prune(&self, now: i64) {
        {
            let mut index = self.write();
            let expired: Vec<u32> = index
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.used && s.expires_at <= now)
                .map(|(n, _)| n as u32)
                .collect();
            index.remove(&expired);
            index.dead_jtis.retain(|_, forget_at| *forget_at > now);
            index.removed_grants.forget_old(now);
        }
        // Spent assertions are kept past their expiry by twice the clock leeway, so that an
        // assertion still accepted as "just expired" can never be replayed.
        let mut spent = self.assertions.lock().unwrap_or_else(|p| p.into_inner());
        spent.retain(|_, exp| *exp + 2 * CLOCK_LEEWAY > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(jti: &str, actors: &[&str], parent: Option<&str>, exp: i64) -> TokenRecord {
        TokenRecord {
            jti: jti.into(),
            kind: if actors.is_empty() {
                TokenKind::Person
            } else {
                TokenKind::Exchange
            },
            digest: sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(jti))
                .into(),
            kid: "k".into(),
            subject: "p@example.com".into(),
            client_id: actors.first().map(|a| a.to_string()),
            actors: actors.iter().map(|a| a.to_string()).collect(),
            parent_jti: parent.map(str::to_string),
            scopes: vec![],
            audience: vec![],
            may_act: None,
            subject_source: "test".into(),
            client_auth: None,
            credential_id: None,
            issued_at: 0,
            expires_at: exp,
            api_token_id: None,
            delegation_id: None,
        }
    }

    #[test]
    fn revoking_an_agent_kills_its_tokens_and_their_descendants() {
        let live = LiveTokens::new();
        live.issue(record("p1", &[], None, 100), 0).unwrap();
        live.issue(record("t1", &["a"], Some("p1"), 100), 0)
            .unwrap();
        live.issue(record("t2", &["b", "a"], Some("t1"), 100), 0)
            .unwrap();
        live.issue(record("t3", &["c"], Some("p1"), 100), 0)
            .unwrap();
        let mut killed = live.revoke_agent("a", 1);
        killed.sort();
        assert_eq!(killed, vec!["t1".to_string(), "t2".to_string()]);
        assert!(!live.is_revoked("t3"));
        assert!(!live.is_revoked("p1"));
        // Blocked: no new token names the agent, directly or in the chain.
        assert_eq!(
            live.issue(record("t4", &["b", "a"], None, 100), 1),
            Err(IssueRefusal::AgentBlocked("a".into()))
        );
        // Nothing can be exchanged from a revoked token.
        assert_eq!(
            live.issue(record("t5", &["c"], Some("t1"), 100), 1),
            Err(IssueRefusal::ParentInactive("t1".into()))
        );
        live.unblock_agent("a");
        live.issue(record("t6", &["a"], Some("p1"), 100), 1)
            .unwrap();
        assert!(live.is_revoked("t1"));
    }

    #[test]
    fn revoking_a_person_token_kills_the_tree() {
        let live = LiveTokens::new();
        live.issue(record("p1", &[], None, 100), 0).unwrap();
        live.issue(record("t1", &["a"], Some("p1"), 100), 0)
            .unwrap();
        live.issue(record("t2", &["b", "a"], Some("t1"), 100), 0)
            .unwrap();
        assert_eq!(live.revoke_tree("p1", 1).len(), 3);
        assert!(live.revoke_tree("p1", 1).is_empty());
    }

    #[test]
    fn assertions_are_single_use_until_pruned() {
        let live = LiveTokens::new();
        assert!(live.consume_assertion("a", "j", 10));
        assert!(!live.consume_assertion("a", "j", 10));
        assert!(live.consume_assertion("b", "j", 10));
        live.prune(10 + CLOCK_LEEWAY);
        assert!(!live.consume_assertion("a", "j", 10));
        live.prune(11 + 2 * CLOCK_LEEWAY);
        assert!(live.consume_assertion("a", "j", 10));
    }

    #[test]
    fn records_come_back_whole_from_the_compact_index() {
        let live = LiveTokens::new();
        // The registry's own jtis (16 bytes in base64url) are kept as bytes, others interned.
        let own = crate::registry::tokens::new_jti();
        let mut person = record(&own, &[], None, 100);
        person.api_token_id = Some("tok_1".into());
        person.scopes = vec!["x:read".into(), "y:write".into()];
        person.may_act = Some("a".into());
        live.issue(&person, 0).unwrap();
        let mut hop = record("t-1", &["b", "a", "b"], Some(&own), 90);
        hop.audience = vec!["https://x".into(), "https://y".into()];
        hop.delegation_id = Some("dlg_1".into());
        hop.credential_id = Some("cred_1".into());
        hop.client_auth = Some("private_key_jwt".into());
        live.issue(&hop, 0).unwrap();
        for r in [&person, &hop] {
            let back = live.with_digest(&r.digest, |v| v.record).unwrap();
            assert_eq!(&back, r);
        }
        // An agent twice in a chain lists the token once.
        assert_eq!(live.issued_to("b", 0), vec![hop.clone()]);
        assert_eq!(live.revoke_agent("b", 0), vec!["t-1".to_string()]);
        // A jti that only looks like the registry's (not canonical base64url) stays text.
        let odd = record("AAAAAAAAAAAAAAAAAAAAAB", &["c"], None, 100);
        live.issue(&odd, 0).unwrap();
        assert_eq!(
            live.with_digest(&odd.digest, |v| v.record.jti).unwrap(),
            odd.jti
        );
    }

    #[test]
    fn pruned_slots_are_reused_without_mixing_tokens_up() {
        let live = LiveTokens::new();
        live.issue(record("p1", &[], None, 50), 0).unwrap();
        live.issue(record("t1", &["a"], Some("p1"), 50), 0).unwrap();
        live.issue(record("t2", &["b"], None, 100), 0).unwrap();
        live.prune(60);
        assert_eq!(live.len(), 1);
        // New tokens take the freed slots; the old ones' links do not reach them.
        live.issue(record("p2", &[], None, 200), 60).unwrap();
        live.issue(record("t3", &["c"], Some("p2"), 200), 60)
            .unwrap();
        assert!(live.revoke_agent("a", 61).is_empty());
        assert!(live.revoke_tree("p1", 61).is_empty());
        assert!(live.issued_to("a", 61).is_empty());
        assert_eq!(live.issued_to("c", 61).len(), 1);
        let mut killed = live.revoke_tree("p2", 61);
        killed.sort();
        assert_eq!(killed, vec!["p2".to_string(), "t3".to_string()]);
        assert!(!live.is_revoked("t2"));
        assert_eq!(live.len(), 3);
    }

    #[test]
    fn prune_drops_expired_tokens() {
        let live = LiveTokens::new();
        live.issue(record("p1", &[], None, 100), 0).unwrap();
        live.issue(record("t1", &["a"], Some("p1"), 50), 0).unwrap();
        live.prune(60);
        assert_eq!(live.len(), 1);
        assert!(live.issued_to("a", 60).is_empty());
    }

    #[test]
    fn a_removed_grant_is_refused_for_its_memory_then_forgotten() {
        let live = LiveTokens::new();
        let long = 10 * REMOVED_GRANT_MEMORY_SECONDS;
        let with = |jti: &str, scope: &str| {
            let mut r = record(jti, &["c"], None, long);
            r.scopes = vec![scope.into()];
            r
        };
        live.revoke_grant("c", "y:read", 10);
        live.prune(10 + REMOVED_GRANT_MEMORY_SECONDS - 1);
        assert_eq!(
            live.issue(with("a", "y:read"), 20),
            Err(IssueRefusal::GrantRemoved("y:read".into()))
        );
        // Removals are forgotten together with the newest one made beside them, never sooner.
        live.revoke_grant("c", "z:read", 30);
        live.prune(10 + REMOVED_GRANT_MEMORY_SECONDS);
        assert_eq!(
            live.issue(with("b", "z:read"), 20),
            Err(IssueRefusal::GrantRemoved("z:read".into())),
        );
        live.prune(30 + REMOVED_GRANT_MEMORY_SECONDS);
        live.issue(with("a", "y:read"), 20).unwrap();
        live.issue(with("b", "z:read"), 20).unwrap();
    }

    #[test]
    fn origins_subjects_and_grants_kill_and_refuse() {
        let live = LiveTokens::new();
        let mut person = record("p1", &[], None, 100);
        person.api_token_id = Some("tok_1".into());
        live.issue(person, 0).unwrap();
        let mut delegated = record("t1", &["a"], Some("p1"), 100);
        delegated.delegation_id = Some("dlg_1".into());
        delegated.scopes = vec!["x:read".into()];
        live.issue(delegated, 0).unwrap();
        live.issue(record("t2", &["b", "a"], Some("t1"), 100), 0)
            .unwrap();

        // A revoked delegation kills what was exchanged under it; no new token may use it.
        let mut killed = live.revoke_origins(&["dlg_1".into()], 1);
        killed.sort();
        assert_eq!(killed, vec!["t1".to_string(), "t2".to_string()]);
        assert!(!live.is_revoked("p1"));
        let mut again = record("t3", &["a"], Some("p1"), 100);
        again.delegation_id = Some("dlg_1".into());
        assert_eq!(
            live.issue(again, 1),
            Err(IssueRefusal::OriginRevoked("dlg_1".into()))
        );

        // A removed grant kills only that agent's tokens carrying the scope.
        let mut with_scope = record("t4", &["c"], Some("p1"), 100);
        with_scope.scopes = vec!["y:read".into()];
        live.issue(with_scope.clone(), 1).unwrap();
        let mut other_agent = record("t5", &["d"], Some("p1"), 100);
        other_agent.scopes = vec!["y:read".into()];
        live.issue(other_agent, 1).unwrap();
        assert_eq!(live.revoke_grant("c", "y:read", 2), vec!["t4".to_string()]);
        with_scope.jti = "t6".into();
        with_scope.digest = [6; 32];
        assert_eq!(
            live.issue(with_scope.clone(), 2),
            Err(IssueRefusal::GrantRemoved("y:read".into()))
        );
        live.restore_grant("c", "y:read");
        live.issue(with_scope, 2).unwrap();

        // A leaver: every token of theirs dies, and none may be issued until they return.
        let killed = live.revoke_subject("P@example.com", 3);
        assert_eq!(killed.len(), 3, "p1, t5 and t6: {killed:?}");
        assert_eq!(
            live.issue(record("p2", &[], None, 100), 3),
            Err(IssueRefusal::SubjectLeft("p@example.com".into()))
        );
        live.restore_subject("p@example.com");
        live.issue(record("p2", &[], None, 100), 3).unwrap();

        // The API token that minted a person token: it and its exchanges die with it.
        let mut minted = record("p3", &[], None, 100);
        minted.api_token_id = Some("tok_2".into());
        live.issue(minted, 3).unwrap();
        live.issue(record("t7", &["a"], Some("p3"), 100), 3)
            .unwrap();
        assert_eq!(live.revoke_origins(&["tok_2".into()], 4).len(), 2);
        live.prune(200);
        assert!(live.is_empty());
    }

    /// What one replica does is recorded while a write runs; another replica applying the
    /// changes reaches the same state, and tokens that reach it after their revocation arrive
    /// dead.
    #[test]
    fn changes_recorded_on_one_index_replay_on_another() {
        let (first, second) = (LiveTokens::new(), LiveTokens::new());
        for live in [&first, &second] {
            live.insert_stored(&record("p1", &[], None, 100), false);
            live.insert_stored(&record("t1", &["a"], Some("p1"), 100), false);
        }
        let ((), changes) = recording(|| {
            first.revoke_agent("a", 1);
            first.revoke_tree("t-unknown", 1);
        });
        assert_eq!(changes.len(), 2);
        assert!(
            second.with_digest(&record("t1", &["a"], None, 0).digest, |v| v.revoked) == Some(false)
        );
        for change in &changes {
            second.apply(change, 1);
        }
        assert_eq!(
            second.with_digest(&record("t1", &["a"], None, 0).digest, |v| v.revoked),
            Some(true)
        );
        // Tokens issued elsewhere before the revoke, whose records arrive after it: dead.
        second.insert_stored(&record("t2", &["b", "a"], Some("p1"), 100), false);
        second.insert_stored(&record("t-unknown", &["c"], Some("p1"), 100), false);
        for jti in ["t2", "t-unknown"] {
            assert!(second.is_revoked(jti), "{jti}");
        }
        // Outside a recording nothing is noted (a replica applying others' changes).
        let ((), none) = recording(|| ());
        assert!(none.is_empty());
        assert!(second.issue(record("t3", &["a"], None, 100), 1).is_err());
    }

    /// A replica that may have missed a change answers no token and issues none.
    #[test]
    fn a_replica_not_synced_fails_closed() {
        let live = LiveTokens::new();
        let p1 = record("p1", &[], None, 100);
        live.issue(&p1, 0).unwrap();
        live.set_synced(false);
        assert!(live.with_digest(&p1.digest, |_| ()).is_none());
        assert_eq!(
            live.issue(record("p2", &[], None, 100), 0),
            Err(IssueRefusal::NotSynced)
        );
        live.set_synced(true);
        assert!(live.with_digest(&p1.digest, |_| ()).is_some());
        live.issue(record("p2", &[], None, 100), 0).unwrap();
    }
}
