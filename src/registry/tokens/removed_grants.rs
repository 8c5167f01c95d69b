//! Grants removed lately, for the live-token index: an exchange that read an agent's grants
//! just before a grant was removed must not insert a token carrying it just after (see
//! [`super::live::LiveTokens::revoke_grant`]).
//!
//! Two things shape it (issue 10 item 3). A campaign closing over a million agents removes
//! two million grants in a few minutes, inside the writer's turn, so an insert must never
//! rehash a big table (one such rehash held the writer 1.3 s), and the memory must end: it
//! is needed only while an exchange that read the grant can still be in flight, so a removal
//! is forgotten after [`REMOVED_GRANT_MEMORY_SECONDS`]. Each removal is kept as a 64-bit keyed
//! hash of (agent, scope) in fixed-capacity slices, oldest first; a collision could only
//! refuse an exchange, never allow one.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

/// How long a removed grant is remembered. Exchanges slower than
/// [`SLOWEST_EXCHANGE_SECONDS`] are refused, so this leaves minutes for the grant read before it.
pub const REMOVED_GRANT_MEMORY_SECONDS: i64 = 15 * 60;

/// The longest an exchange may take from its clock reading to its insertion in the index.
pub const SLOWEST_EXCHANGE_SECONDS: i64 = 60;

const _: () = assert!(SLOWEST_EXCHANGE_SECONDS * 10 <= REMOVED_GRANT_MEMORY_SECONDS);

/// Removals per slice: allocated whole when the slice starts, so inserting never rehashes.
const SLICE_CAPACITY: usize = 1 << 16;

struct Slice {
    /// When the slice's newest removal was made: it is forgotten with it.
    last_at: i64,
    removed: HashSet<u64>,
}

pub(super) struct RemovedGrants {
    keys: RandomState,
    /// Oldest first.
    slices: VecDeque<Slice>,
}

impl Default for RemovedGrants {
    fn default() -> RemovedGrants {
        RemovedGrants {
            keys: RandomState::new(),
            slices: VecDeque::new(),
        }
    }
}

impl RemovedGrants {
    fn key(&self, agent: &str, scope: &str) -> u64 {
        self.keys.hash_one((agent, scope))
    }

    pub(super) fn insert(&mut self, agent: &str, scope: &str, now: i64) {
        let key = self.key(agent, scope);
        if self
            .slices
            .back()
            .is_none_or(|s| s.removed.len() >= SLICE_CAPACITY)
        {
            self.slices.push_back(Slice {
                last_at: now,
                removed: HashSet::with_capacity(SLICE_CAPACITY),
            });
        }
        let slice = self.slices.back_mut().expect("a slice was just ensured");
        slice.removed.insert(key);
        slice.last_at = slice.last_at.max(now);
    }

    /// The grant was given again.
    pub(super) fn remove(&mut self, agent: &str, scope: &str) {
        let key = self.key(agent, scope);
        for slice in &mut self.slices {
            slice.removed.remove(&key);
        }
    }

    pub(super) fn contains(&self, agent: &str, scope: &str) -> bool {
        if self.slices.is_empty() {
            return false;
        }
        let key = self.key(agent, scope);
        self.slices.iter().rev().any(|s| s.removed.contains(&key))
    }

    /// Forgets the slices whose newest removal is older than the memory.
    pub(super) fn forget_old(&mut self, now: i64) {
        while self
            .slices
            .front()
            .is_some_and(|s| s.last_at + REMOVED_GRANT_MEMORY_SECONDS <= now)
        {
            self.slices.pop_front();
        }
    }

    /// How many removals are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slices.iter().map(|s| s.removed.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_are_remembered_until_the_memory_ends_and_forgotten_on_a_new_grant() {
        let mut r = RemovedGrants::default();
        assert!(!r.contains("a", "x:read"));
        r.insert("a", "x:read", 100);
        r.insert("b", "x:read", 100);
        assert!(r.contains("a", "x:read"));
        assert!(!r.contains("a", "y:read"), "another scope");
        assert!(!r.contains("c", "x:read"), "another agent");
        // (agent, scope) is hashed as a pair: "a"+"bx" is not "ab"+"x".
        r.insert("ab", "x", 100);
        assert!(!r.contains("a", "bx"));
        r.remove("a", "x:read");
        assert!(!r.contains("a", "x:read"));
        assert!(r.contains("b", "x:read"));
        r.forget_old(100 + REMOVED_GRANT_MEMORY_SECONDS - 1);
        assert!(r.contains("b", "x:read"), "still within the memory");
        r.forget_old(100 + REMOVED_GRANT_MEMORY_SECONDS);
        assert!(!r.contains("b", "x:read"));
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_full_slice_starts_another_and_old_slices_go_first() {
        let mut r = RemovedGrants::default();
        for i in 0..SLICE_CAPACITY + 10 {
            r.insert(&format!("agent-{i}"), "x:read", i as i64 / 1000);
        }
        assert_eq!(r.slices.len(), 2);
        assert_eq!(r.len(), SLICE_CAPACITY + 10);
        let capacity = r.slices[0].removed.capacity();
        assert!(capacity >= SLICE_CAPACITY, "allocated whole: {capacity}");
        // The first slice's newest removal was at 65; the second's at 65 too, but a removal
        // made later keeps the second alive.
        r.insert("late", "x:read", 500);
        r.forget_old(65 + REMOVED_GRANT_MEMORY_SECONDS);
        assert_eq!(r.slices.len(), 1);
        assert!(r.contains("late", "x:read"));
        assert!(r.contains(&format!("agent-{}", SLICE_CAPACITY + 5), "x:read"));
        assert!(!r.contains("agent-0", "x:read"));
    }
}
