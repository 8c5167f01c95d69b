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

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

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
}

struct Slot {
    record: TokenRecord,
    revoked: bool,
}

#[derive(Default)]
struct Index {
    tokens: HashMap<String, Slot>,
    by_digest: HashMap<[u8; 32], String>,
    /// Agent id → tokens in which it is one of the actors.
    by_agent: HashMap<String, HashSet<String>>,
    /// Token → tokens exchanged from it.
    children: HashMap<String, Vec<String>>,
    /// Agents that are not active: no token may name them as actor.
    blocked: HashSet<String>,
    /// API token or delegation id → tokens minted or exchanged under it.
    by_origin: HashMap<String, HashSet<String>>,
    /// Revoked API tokens and delegations: no new token may come from them.
    dead_origins: HashSet<String>,
    /// People who have left (lowercased emails): no new token may name them as subject.
    left_subjects: HashSet<String>,
    /// (agent, scope) grants removed since the registry started: an exchange that read the
    /// grant before its removal must not insert a token carrying it afterwards.
    removed_grants: HashSet<(String, String)>,
}

#[derive(Default)]
pub struct LiveTokens {
    index: RwLock<Index>,
    /// (agent, jti) → expiry of spent assertions.
    assertions: Mutex<HashMap<(String, String), i64>>,
}

impl std::fmt::Debug for LiveTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveTokens")
    }
}

impl Index {
    fn insert(&mut self, record: TokenRecord, revoked: bool) {
        let jti = record.jti.clone();
        self.by_digest.insert(record.digest, jti.clone());
        for actor in &record.actors {
            self.by_agent
                .entry(actor.clone())
                .or_default()
                .insert(jti.clone());
        }
        if let Some(parent) = &record.parent_jti {
            self.children
                .entry(parent.clone())
                .or_default()
                .push(jti.clone());
        }
        for origin in record.origins() {
            self.by_origin
                .entry(origin.to_string())
                .or_default()
                .insert(jti.clone());
        }
        self.tokens.insert(jti, Slot { record, revoked });
    }

    /// Marks `jti` and every token exchanged from it revoked; returns the ones that were live.
    fn revoke_tree(&mut self, jti: &str, now: i64, out: &mut Vec<String>) {
        let mut stack = vec![jti.to_string()];
        while let Some(id) = stack.pop() {
            if let Some(slot) = self.tokens.get_mut(&id)
                && !slot.revoked
            {
                slot.revoked = true;
                if slot.record.expires_at > now {
                    out.push(id.clone());
                }
            }
            if let Some(kids) = self.children.get(&id) {
                stack.extend(kids.iter().cloned());
            }
        }
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

/// A read-only view of one live token, for answers.
#[derive(Debug, Clone)]
pub struct TokenView<'a> {
    pub record: &'a TokenRecord,
    pub revoked: bool,
}

impl LiveTokens {
    pub fn new() -> LiveTokens {
        LiveTokens::default()
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
            index.insert(record, revoked);
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
    pub fn issue(&self, record: TokenRecord, now: i64) -> Result<(), IssueRefusal> {
        let mut index = self.write();
        if let Some(blocked) = record.actors.iter().find(|a| index.blocked.contains(*a)) {
            return Err(IssueRefusal::AgentBlocked(blocked.clone()));
        }
        if let Some(parent) = &record.parent_jti {
            match index.tokens.get(parent) {
                Some(slot) if !slot.revoked && slot.record.expires_at > now => {}
                _ => return Err(IssueRefusal::ParentInactive(parent.clone())),
            }
        }
        if let Some(dead) = record.origins().find(|o| index.dead_origins.contains(*o)) {
            return Err(IssueRefusal::OriginRevoked(dead.to_string()));
        }
        if !index.left_subjects.is_empty()
            && index.left_subjects.contains(&record.subject.to_lowercase())
        {
            return Err(IssueRefusal::SubjectLeft(record.subject.clone()));
        }
        if let Some(agent) = &record.client_id
            && !index.removed_grants.is_empty()
            && let Some(scope) = record.scopes.iter().find(|s| {
                index
                    .removed_grants
                    .contains(&(agent.clone(), (*s).clone()))
            })
        {
            return Err(IssueRefusal::GrantRemoved(scope.clone()));
        }
        index.insert(record, false);
        Ok(())
    }

    /// Revokes API tokens or delegations: no new token may come from them, and every live token
    /// minted or exchanged under them dies with everything derived from it. Returns the jtis
    /// that were live.
    pub fn revoke_origins(&self, origins: &[String], now: i64) -> Vec<String> {
        let mut index = self.write();
        let mut out = Vec::new();
        for origin in origins {
            index.dead_origins.insert(origin.clone());
            let roots: Vec<String> = index
                .by_origin
                .get(origin)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for jti in roots {
                index.revoke_tree(&jti, now, &mut out);
            }
        }
        out
    }

    /// A person has left: no new token may name them, and every live token in which they are
    /// the subject dies with everything derived from it. Returns the jtis that were live.
    pub fn revoke_subject(&self, email: &str, now: i64) -> Vec<String> {
        let mut index = self.write();
        let email = email.to_lowercase();
        index.left_subjects.insert(email.clone());
        // A leaver is rare; one pass over the index is cheaper than a per-subject map that
        // every exchange would have to maintain.
        let roots: Vec<String> = index
            .tokens
            .iter()
            .filter(|(_, s)| !s.revoked && s.record.subject.to_lowercase() == email)
            .map(|(j, _)| j.clone())
            .collect();
        let mut out = Vec::new();
        for jti in roots {
            index.revoke_tree(&jti, now, &mut out);
        }
        out
    }

    /// A person who left came back: new tokens may name them again (old ones stay dead).
    pub fn restore_subject(&self, email: &str) {
        self.write().left_subjects.remove(&email.to_lowercase());
    }

    /// A grant was removed: every live token issued to the agent carrying the scope dies with
    /// everything derived from it, and no exchange in flight may still issue one. Returns the
    /// jtis that were live.
    pub fn revoke_grant(&self, agent_id: &str, scope: &str, now: i64) -> Vec<String> {
        let mut index = self.write();
        index
            .removed_grants
            .insert((agent_id.to_string(), scope.to_string()));
        let roots: Vec<String> = index
            .by_agent
            .get(agent_id)
            .into_iter()
            .flatten()
            .filter_map(|jti| index.tokens.get(jti))
            .filter(|s| {
                !s.revoked
                    && s.record.client_id.as_deref() == Some(agent_id)
                    && s.record.scopes.iter().any(|x| x == scope)
            })
            .map(|s| s.record.jti.clone())
            .collect();
        let mut out = Vec::new();
        for jti in roots {
            index.revoke_tree(&jti, now, &mut out);
        }
        out
    }

    /// The scope was granted to the agent again: exchanges may carry it.
    pub fn restore_grant(&self, agent_id: &str, scope: &str) {
        self.write()
            .removed_grants
            .remove(&(agent_id.to_string(), scope.to_string()));
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
    pub fn with_digest<T>(
        &self,
        digest: &[u8; 32],
        f: impl FnOnce(TokenView<'_>) -> T,
    ) -> Option<T> {
        let index = self.read();
        let jti = index.by_digest.get(digest)?;
        let slot = index.tokens.get(jti)?;
        Some(f(TokenView {
            record: &slot.record,
            revoked: slot.revoked,
        }))
    }

    /// True if the token is known and revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.read().tokens.get(jti).is_some_and(|s| s.revoked)
    }

    /// Revokes a token and everything exchanged from it; returns the jtis that were live.
    pub fn revoke_tree(&self, jti: &str, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        self.write().revoke_tree(jti, now, &mut out);
        out
    }

    /// Blocks an agent (no new token may name it) and revokes every token in which it acts,
    /// with everything derived from them. Returns the jtis that were live.
    pub fn revoke_agent(&self, agent_id: &str, now: i64) -> Vec<String> {
        let mut index = self.write();
        index.blocked.insert(agent_id.to_string());
        let roots: Vec<String> = index
            .by_agent
            .get(agent_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for jti in roots {
            index.revoke_tree(&jti, now, &mut out);
        }
        out
    }

    /// The latest expiry among these tokens (unix seconds), from the index.
    pub fn latest_expiry(&self, jtis: &[String]) -> Option<i64> {
        let index = self.read();
        jtis.iter()
            .filter_map(|j| index.tokens.get(j))
            .map(|s| s.record.expires_at)
            .max()
    }

    /// Lets an agent be named in new tokens again (reinstatement). Killed tokens stay dead.
    pub fn unblock_agent(&self, agent_id: &str) {
        self.write().blocked.remove(agent_id);
    }

    /// Blocks agents without touching tokens (seeding agents that are not active).
    pub fn block_agents<'a>(&self, agent_ids: impl IntoIterator<Item = &'a str>) {
        let mut index = self.write();
        for id in agent_ids {
            index.blocked.insert(id.to_string());
        }
    }

    /// Marks tokens revoked without cascading (tokens whose record could not be stored).
    pub fn fail(&self, jtis: &[String]) {
        let mut index = self.write();
        for jti in jtis {
            if let Some(slot) = index.tokens.get_mut(jti) {
                slot.revoked = true;
            }
        }
    }

    /// Live (unexpired, unrevoked) tokens issued to an agent, soonest expiry first.
    pub fn issued_to(&self, agent_id: &str, now: i64) -> Vec<TokenRecord> {
        let index = self.read();
        let mut out: Vec<TokenRecord> = index
            .by_agent
            .get(agent_id)
            .into_iter()
            .flatten()
            .filter_map(|jti| index.tokens.get(jti))
            .filter(|s| {
                !s.revoked
                    && s.record.expires_at > now
                    && s.record.client_id.as_deref() == Some(agent_id)
            })
            .map(|s| s.record.clone())
            .collect();
        out.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then(a.jti.cmp(&b.jti)));
        out
    }

    /// How many tokens are in the index (live, revoked, or expired since the last sweep).
    pub fn len(&self) -> usize {
        self.read().tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired tokens and spent assertions that have expired.
    pub fn prune(&self, now: i64) {
        {
            let mut index = self.write();
            let expired: Vec<String> = index
                .tokens
                .iter()
                .filter(|(_, s)| s.record.expires_at <= now)
                .map(|(j, _)| j.clone())
                .collect();
            for jti in expired {
                if let Some(slot) = index.tokens.remove(&jti) {
                    index.by_digest.remove(&slot.record.digest);
                    for actor in &slot.record.actors {
                        if let Some(set) = index.by_agent.get_mut(actor) {
                            set.remove(&jti);
                            if set.is_empty() {
                                index.by_agent.remove(actor);
                            }
                        }
                    }
                    index.children.remove(&jti);
                    for origin in slot.record.origins() {
                        if let Some(set) = index.by_origin.get_mut(origin) {
                            set.remove(&jti);
                            if set.is_empty() {
                                index.by_origin.remove(origin);
                            }
                        }
                    }
                }
            }
            // Children lists of live parents may name pruned tokens; drop those names.
            let Index {
                tokens, children, ..
            } = &mut *index;
            for kids in children.values_mut() {
                kids.retain(|k| tokens.contains_key(k));
            }
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
    fn prune_drops_expired_tokens() {
        let live = LiveTokens::new();
        live.issue(record("p1", &[], None, 100), 0).unwrap();
        live.issue(record("t1", &["a"], Some("p1"), 50), 0).unwrap();
        live.prune(60);
        assert_eq!(live.len(), 1);
        assert!(live.issued_to("a", 60).is_empty());
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
}
