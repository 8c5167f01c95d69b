//! The token facts' in-memory copy: what an exchange (and introspection, and every agent
//! assertion) reads about an agent (status, owner, ancestors, credentials, grants with their
//! expiry) and about the subject person, kept exactly consistent with the store.
//!
//! Consistency contract (why a write followed at once by an exchange always sees the write):
//! - every entry carries the store's *facts generation* at the moment its read began, and is
//!   used only while that generation is still the current one;
//! - every store write (`SqliteStore::write`, and the bulk `seed`) bumps the generation after
//!   its transaction ends (committed or rolled back) and before it releases the writer, so by
//!   the time a write returns, every entry read before it is dead. A read that began before a
//!   commit and finishes after it carries the older generation and is never used (nor even
//!   kept). Writes that can be shown not to touch a fact (the token records' group commit with
//!   its usage columns, the activity record and prunes) use `write_keeping_facts` instead;
//!   everything else — revoke, suspend, reinstate, grant added or removed, expiry sweep,
//!   review, leaver, owner change, credential change, delegation change, catalogue import —
//!   invalidates by default, including writes added later.
//! - grant expiry is checked at every read against the clock (the copy keeps each grant's
//!   `expires_at`), so a grant that ends is gone at that instant, before any sweep removes it;
//! - a restore is offline (the registry is stopped; see `sqlite_backup.rs`) and a store opens
//!   with an empty copy; the cross-process writers (`steward server rotate-key`,
//!   `trust-issuer`) write signing keys and issuers, which are not facts held here.
//!
//! Bounded: at most [`MAX_AGENTS`] agents and [`MAX_PEOPLE`] people. When full, entries of
//! older generations are dropped first; if it is still full, the new entry is simply not kept
//! (that agent is read from the database each time). Unknown agents and people are never
//! kept (a stream of made-up ids cannot fill it).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::store::sql::{self, OptionalExtension, Tx};
use chrono::{DateTime, Utc};

use super::{CredentialMaterial, parse_opt_ts};
use crate::model::{AgentStatus, CredentialKind, Person};
use crate::registry::store::{AgentTokenFacts, StoreError, StoreResult};

/// Most agents whose facts are kept.
pub const MAX_AGENTS: usize = 50_000;
/// Most people kept (subjects of exchanges).
pub const MAX_PEOPLE: usize = 50_000;

/// An agent's facts as stored: every grant with its end (the clock decides at each read).
#[derive(Debug, Clone)]
pub(in crate::registry::store) struct StoredFacts {
    facts: AgentTokenFacts,
    grants: Vec<(String, Option<DateTime<Utc>>)>,
}

impl StoredFacts {
    /// The facts as of `now`: only grants that have not ended.
    fn at(&self, now: DateTime<Utc>) -> AgentTokenFacts {
        let mut facts = self.facts.clone();
        facts.scopes = self
            .grants
            .iter()
            .filter(|(_, end)| end.is_none_or(|end| end > now))
            .map(|(scope, _)| scope.clone())
            .collect();
        facts
    }

    /// Approximate heap and inline bytes of this entry (strings by capacity).
    fn bytes(&self) -> usize {
        let f = &self.facts;
        let mut n = std::mem::size_of::<Self>() + f.id.capacity();
        n += f.owner_email.as_ref().map_or(0, String::capacity);
        n += f.ancestors.capacity() * std::mem::size_of::<String>();
        n += f.ancestors.iter().map(String::capacity).sum::<usize>();
        n += f.credentials.capacity() * std::mem::size_of::<CredentialMaterial>();
        n += f
            .credentials
            .iter()
            .map(|c| c.id.capacity() + c.fingerprint.capacity() + c.material.capacity())
            .sum::<usize>();
        n += self.grants.capacity() * std::mem::size_of::<(String, Option<DateTime<Utc>>)>();
        n += self.grants.iter().map(|(s, _)| s.capacity()).sum::<usize>();
        n
    }
}

struct Entry<T> {
    generation: u64,
    value: T,
}

/// The in-memory copy (see the module notes).
pub(in crate::registry::store) struct FactsCache {
    generation: AtomicU64,
    /// Set while this replica may have missed another's write: every read goes to the database.
    bypass: std::sync::atomic::AtomicBool,
    agents: RwLock<HashMap<String, Entry<StoredFacts>>>,
    people: RwLock<HashMap<String, Entry<Person>>>,
}

/// What [`FactsCache::usage`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactsCacheUsage {
    pub agents: usize,
    pub people: usize,
    /// Approximate bytes held for the agents (keys, entries and their strings; the hash
    /// table's own slack not included).
    pub agent_bytes: usize,
    pub people_bytes: usize,
}

/// Invalidates the copy when dropped (declared between the writer's guard and its
/// transaction, it runs after the transaction ends and before the writer is released).
pub(super) struct InvalidateOnDrop<'a>(pub(super) Option<&'a FactsCache>);

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.0 {
            cache.invalidate();
        }
    }
}

fn insert_bounded<T>(
    map: &RwLock<HashMap<String, Entry<T>>>,
    current: &AtomicU64,
    max: usize,
    key: &str,
    generation: u64,
    value: T,
) {
    let mut map = map.write().unwrap_or_else(|p| p.into_inner());
    // Checked under the map's lock: a write that committed after this read began has bumped
    // the generation, and the read (possibly from before that commit) is dropped.
    let now = current.load(Ordering::SeqCst);
    if now != generation {
        return;
    }
    if map.len() >= max && !map.contains_key(key) {
        map.retain(|_, e| e.generation == now);
        if map.len() >= max {
            return;
        }
    }
    map.insert(key.to_string(), Entry { generation, value });
}

impl FactsCache {
    pub(super) fn new() -> FactsCache {
        FactsCache {
            generation: AtomicU64::new(0),
            bypass: std::sync::atomic::AtomicBool::new(false),
            agents: RwLock::new(HashMap::new()),
            people: RwLock::new(HashMap::new()),
        }
    }

    /// Called by every store write once its transaction has ended, under the writer.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Set while this replica may have missed another's write (see store/replication.rs).
    pub(super) fn set_bypass(&self, bypass: bool) {
        self.bypass.store(bypass, Ordering::SeqCst);
        self.invalidate();
    }

    /// The generation entries must carry to be used; while bypassed, one no entry carries
    /// (`u64::MAX` is never reached by counting).
    fn current(&self) -> u64 {
        if self.bypass.load(Ordering::SeqCst) {
            return u64::MAX;
        }
        self.generation.load(Ordering::SeqCst)
    }

    /// An agent's facts as of `now`, if the copy holds a current entry.
    pub(in crate::registry::store) fn agent(
        &self,
        agent_id: &str,
        now: DateTime<Utc>,
    ) -> Option<AgentTokenFacts> {
        let map = self.agents.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(agent_id)?;
        (entry.generation == self.current()).then(|| entry.value.at(now))
    }

    pub(in crate::registry::store) fn person(&self, email: &str) -> Option<Person> {
        let map = self.people.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(email)?;
        (entry.generation == self.current()).then(|| entry.value.clone())
    }

    /// Agent facts: from the copy, else read by `read` (a snapshot that begins after this
    /// call took the generation) and kept when no write intervened.
    pub(in crate::registry::store) fn agent_or_read(
        &self,
        agent_id: &str,
        now: DateTime<Utc>,
        read: impl FnOnce() -> StoreResult<Option<StoredFacts>>,
    ) -> StoreResult<Option<AgentTokenFacts>> {
        if let Some(facts) = self.agent(agent_id, now) {
            return Ok(Some(facts));
        }
        let generation = self.current();
        let Some(stored) = read()? else {
            return Ok(None);
        };
        let facts = stored.at(now);
        insert_bounded(
            &self.agents,
            &self.generation,
            MAX_AGENTS,
            agent_id,
            generation,
            stored,
        );
        Ok(Some(facts))
    }

    /// A person by email (as asked): from the copy, else read by `read` and kept likewise.
    pub(in crate::registry::store) fn person_or_read(
        &self,
        email: &str,
        read: impl FnOnce() -> StoreResult<Option<Person>>,
    ) -> StoreResult<Option<Person>> {
        if let Some(person) = self.person(email) {
            return Ok(Some(person));
        }
        let generation = self.current();
        let Some(person) = read()? else {
            return Ok(None);
        };
        insert_bounded(
            &self.people,
            &self.generation,
            MAX_PEOPLE,
            email,
            generation,
            person.clone(),
        );
        Ok(Some(person))
    }

    pub(super) fn usage(&self) -> FactsCacheUsage {
        let current = self.current();
        let agents = self.agents.read().unwrap_or_else(|p| p.into_inner());
        let people = self.people.read().unwrap_or_else(|p| p.into_inner());
        let entry_overhead = |key: &String| key.capacity() + std::mem::size_of::<String>() + 8;
        let agent_bytes = agents
            .iter()
            .filter(|(_, e)| e.generation == current)
            .map(|(k, e)| entry_overhead(k) + e.value.bytes())
            .sum();
        let people_bytes = people
            .iter()
            .filter(|(_, e)| e.generation == current)
            .map(|(k, e)| {
                let p = &e.value;
                entry_overhead(k)
                    + std::mem::size_of::<Person>()
                    + p.id.capacity()
                    + p.email.capacity()
                    + p.display_name.capacity()
                    + p.manager.as_ref().map_or(0, String::capacity)
                    + p.team.as_ref().map_or(0, String::capacity)
            })
            .sum();
        FactsCacheUsage {
            agents: agents.values().filter(|e| e.generation == current).count(),
            people: people.values().filter(|e| e.generation == current).count(),
            agent_bytes,
            people_bytes,
        }
    }
}

/// Reads an agent's facts from the database (four statements in one snapshot).
pub(in crate::registry::store) fn read_agent_facts(
    tx: &Tx<'_>,
    agent_id: &str,
) -> StoreResult<Option<StoredFacts>> {
    let row: Option<(String, Option<String>)> = tx
        .prepare_cached(
            "SELECT a.status, o.email FROM agents a LEFT JOIN people o ON o.id = a.owner_id
             WHERE a.id = ?1",
        )?
        .query_row([agent_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((status, owner_email)) = row else {
        return Ok(None);
    };
    let status = AgentStatus::parse(&status)
        .ok_or_else(|| StoreError::Internal(format!("unknown agent status {status}")))?;
    let ancestors = tx
        .prepare_cached(
            "WITH RECURSIVE up(id, depth) AS (
                 SELECT parent_id, 1 FROM agents WHERE id = ?1
                 UNION ALL
                 SELECT a.parent_id, up.depth + 1 FROM agents a JOIN up ON a.id = up.id
                 WHERE up.depth < 64
             )
             SELECT id FROM up WHERE id IS NOT NULL ORDER BY depth",
        )?
        .query_map([agent_id], |r| r.get(0))?
        .collect::<sql::Result<Vec<String>>>()?;
    let credentials = tx
        .prepare_cached(
            "SELECT id, kind, fingerprint, material, disabled_at IS NOT NULL
             FROM credentials WHERE agent_id = ?1 ORDER BY created_at, id",
        )?
        .query_map([agent_id], |r| {
            let kind: String = r.get(1)?;
            Ok(CredentialMaterial {
                id: r.get(0)?,
                kind: CredentialKind::parse(&kind)
                    .ok_or_else(|| super::bad_value("credential kind", &kind))?,
                fingerprint: r.get(2)?,
                material: r.get(3)?,
                disabled: r.get(4)?,
            })
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    // Every grant with its end; the clock filters them at each read.
    let grants = tx
        .prepare_cached("SELECT scope, expires_at FROM grants WHERE agent_id = ?1 ORDER BY scope")?
        .query_map([agent_id], |r| Ok((r.get(0)?, parse_opt_ts(r.get(1)?)?)))?
        .collect::<sql::Result<Vec<(String, Option<DateTime<Utc>>)>>>()?;
    Ok(Some(StoredFacts {
        facts: AgentTokenFacts {
            id: agent_id.to_string(),
            status,
            owner_email,
            ancestors,
            credentials,
            scopes: Vec::new(),
        },
        grants,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(scopes: &[(&str, Option<DateTime<Utc>>)]) -> StoredFacts {
        StoredFacts {
            facts: AgentTokenFacts {
                id: "a1".into(),
                status: AgentStatus::Active,
                owner_email: Some("o@example.com".into()),
                ancestors: Vec::new(),
                credentials: Vec::new(),
                scopes: Vec::new(),
            },
            grants: scopes.iter().map(|(s, e)| (s.to_string(), *e)).collect(),
        }
    }

    #[test]
    fn a_grant_ends_at_its_expiry_without_any_write() {
        let cache = FactsCache::new();
        let start = Utc::now();
        let soon = start + chrono::Duration::milliseconds(300);
        let read = || Ok(Some(stored(&[("a:read", None), ("b:write", Some(soon))])));
        let facts = cache.agent_or_read("a1", start, read).unwrap().unwrap();
        assert_eq!(facts.scopes, vec!["a:read", "b:write"]);
        assert_eq!(cache.usage().agents, 1);
        // 400 ms later (no sleep: the time is an argument): served from the copy (a read now
        // would fail the test) and without the ended grant.
        let facts = cache
            .agent_or_read("a1", start + chrono::Duration::milliseconds(400), || {
                panic!("the copy was current")
            })
            .unwrap()
            .unwrap();
        assert_eq!(facts.scopes, vec!["a:read"]);
    }

    #[test]
    fn a_write_kills_every_entry_and_a_read_overlapping_a_write_is_not_kept() {
        let cache = FactsCache::new();
        cache
            .agent_or_read("a1", Utc::now(), || Ok(Some(stored(&[("a:read", None)]))))
            .unwrap();
        cache.invalidate();
        let mut read_again = false;
        let facts = cache
            .agent_or_read("a1", Utc::now(), || {
                read_again = true;
                // A write commits while this read is in flight.
                cache.invalidate();
                Ok(Some(stored(&[])))
            })
            .unwrap()
            .unwrap();
        assert!(read_again, "an entry from before a write was used");
        assert!(facts.scopes.is_empty());
        // The overlapping read was answered but not kept: the next one reads again.
        let mut read_third = false;
        cache
            .agent_or_read("a1", Utc::now(), || {
                read_third = true;
                Ok(Some(stored(&[])))
            })
            .unwrap();
        assert!(read_third, "a read that overlapped a write was kept");
        assert_eq!(cache.usage().agents, 1);
    }

    #[test]
    fn unknown_agents_are_not_kept_and_the_copy_is_bounded() {
        let cache = FactsCache::new();
        assert!(
            cache
                .agent_or_read("ghost", Utc::now(), || Ok(None))
                .unwrap()
                .is_none()
        );
        assert_eq!(cache.usage().agents, 0);
        for i in 0..MAX_AGENTS + 10 {
            cache
                .agent_or_read(&format!("a{i}"), Utc::now(), || Ok(Some(stored(&[]))))
                .unwrap();
        }
        assert_eq!(cache.usage().agents, MAX_AGENTS);
        // After a write, stale entries make room for current ones.
        cache.invalidate();
        cache
            .agent_or_read("new", Utc::now(), || Ok(Some(stored(&[]))))
            .unwrap();
        assert_eq!(cache.usage().agents, 1);
        assert!(cache.usage().agent_bytes > 0);
    }
}
