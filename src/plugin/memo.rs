//! Recently allowed ACL checks, so that a repeated check costs a few compares instead of a decision.
//!
//! Mosquitto asks once per published message (write) and once per delivery (read). Most traffic repeats
//! itself: a sensor publishes to the same topic again and again, a subscriber receives on the same topic.
//! A decision is a pure function of the policy, the username, the client id, the topic and the access, so
//! remembering one is exact, not approximate: an entry matches only when all four are byte-for-byte equal
//! and the policy has not been reloaded since (a reload empties the memo). Only allowed checks are
//! remembered: a denial still goes through the engine, which explains it for the audit record.
//!
//! The memo is a fixed table allocated once: one slot per (client id hash, access kind), overwritten on a
//! miss, keys copied into the slot's own buffer. A check never allocates; a key longer than the buffer is
//! simply not remembered.

#![forbid(unsafe_code)]

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::policy::{Access, ClientRef, Reason};

/// The identity and topic of an ACL check as the broker passed them: bytes, not yet checked as UTF-8
/// (the memo compares bytes, so a hit needs no UTF-8 check at all).
#[derive(Clone, Copy, Debug)]
pub struct RawCheck<'a> {
    /// The username, if the client has one.
    pub username: Option<&'a [u8]>,
    /// The client id.
    pub client_id: &'a [u8],
    /// The topic.
    pub topic: &'a [u8],
    /// What is asked.
    pub access: Access,
}

impl<'a> RawCheck<'a> {
    /// The same check, from checked text.
    pub fn new(client: ClientRef<'a>, topic: &'a str, access: Access) -> RawCheck<'a> {
        RawCheck {
            username: client.username.map(str::as_bytes),
            client_id: client.client_id.as_bytes(),
            topic: topic.as_bytes(),
            access,
        }
    }
}

/// Number of slots (a power of two).
const SLOTS: usize = 512;

/// Bytes a slot can hold: username, client id and topic together.
const KEY_CAPACITY: usize = 240;

/// One remembered allowed check.
#[derive(Clone, Debug)]
struct Slot {
    /// `false` until first written, and after [`DecisionMemo::clear`].
    used: bool,
    access: Access,
    /// Why it was allowed (for the rule-hit counters of a remembered check).
    reason: Reason,
    /// `None` when the client has no username (which differs from an empty one only here: the engine
    /// treats both alike today, but the memo must not depend on that).
    username_len: Option<u16>,
    client_id_len: u16,
    topic_len: u16,
    /// Username, client id and topic, one after the other.
    key: Box<[u8; KEY_CAPACITY]>,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            used: false,
            access: Access::Read,
            reason: Reason::NoRuleMatched,
            username_len: None,
            client_id_len: 0,
            topic_len: 0,
            key: Box::new([0; KEY_CAPACITY]),
        }
    }

    fn holds(&self, c: &RawCheck<'_>) -> bool {
        if !self.used
            || self.access != c.access
            || usize::from(self.client_id_len) != c.client_id.len()
            || usize::from(self.topic_len) != c.topic.len()
        {
            return false;
        }
        let user_len = match (self.username_len, c.username) {
            (None, None) => 0,
            (Some(n), Some(name)) if usize::from(n) == name.len() => name.len(),
            _ => return false,
        };
        let (user, rest) = self.key.split_at(user_len);
        let (id, rest) = rest.split_at(c.client_id.len());
        c.topic == &rest[..c.topic.len()]
            && c.client_id == id
            && c.username.is_none_or(|name| name == user)
    }
}

/// Recently allowed ACL checks (see the module documentation).
#[derive(Debug)]
pub struct DecisionMemo {
    slots: Box<[Slot]>,
}

impl Default for DecisionMemo {
    fn default() -> Self {
        DecisionMemo::new()
    }
}

impl DecisionMemo {
    /// An empty memo, with every slot allocated.
    pub fn new() -> DecisionMemo {
        DecisionMemo {
            slots: vec![Slot::empty(); SLOTS].into_boxed_slice(),
        }
    }

    /// Was this exact check allowed since the last [`DecisionMemo::clear`]? If so, why.
    #[inline]
    pub fn allowed(&self, check: &RawCheck<'_>) -> Option<Reason> {
        let slot = &self.slots[slot_index(check.client_id, check.access)];
        slot.holds(check).then_some(slot.reason)
    }

    /// Remembers that this check was allowed for `reason` (replacing whatever its slot held). Keys too
    /// long for a slot are not remembered.
    pub fn remember(&mut self, check: &RawCheck<'_>, reason: Reason) {
        let username = check.username.unwrap_or(b"");
        let total = username.len() + check.client_id.len() + check.topic.len();
        let slot = &mut self.slots[slot_index(check.client_id, check.access)];
        if total > KEY_CAPACITY {
            // Leave the slot as it was: still correct for its own key.
            return;
        }
        let mut at = 0;
        for part in [username, check.client_id, check.topic] {
            slot.key[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        // Every length is at most KEY_CAPACITY, which fits in u16.
        let len = |s: &[u8]| s.len() as u16;
        slot.username_len = check.username.map(len);
        slot.client_id_len = len(check.client_id);
        slot.topic_len = len(check.topic);
        slot.access = check.access;
        slot.reason = reason;
        slot.used = true;
    }

    /// Forgets everything (the policy changed).
    pub fn clear(&mut self) {
        for slot in self.slots.iter_mut() {
            slot.used = false;
        }
    }
}

/// The slot for a client id and access: reads and writes of one client never evict each other.
#[inline]
fn slot_index(client_id: &[u8], access: Access) -> usize {
    let mut hasher = FxHasher::default();
    hasher.write(client_id);
    let kind = usize::from(access == Access::Write);
    // Truncating the hash is intended: only its low bits pick the slot.
    ((hasher.finish() as usize).wrapping_mul(2) | kind) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client<'a>(username: Option<&'a str>, client_id: &'a str) -> ClientRef<'a> {
        ClientRef {
            username,
            client_id,
        }
    }

    fn allows(memo: &DecisionMemo, check: &RawCheck<'_>) -> bool {
        memo.allowed(check).is_some()
    }

    fn check<'a>(client: ClientRef<'a>, topic: &'a str, access: Access) -> RawCheck<'a> {
        RawCheck::new(client, topic, access)
    }

    #[test]
    fn remembers_only_the_exact_check() {
        let mut memo = DecisionMemo::new();
        let c = client(Some("user1"), "c1");
        assert!(!allows(&memo, &check(c, "a/b/c/user1", Access::Write)));
        memo.remember(
            &check(c, "a/b/c/user1", Access::Write),
            Reason::NoRuleMatched,
        );
        assert!(allows(&memo, &check(c, "a/b/c/user1", Access::Write)));
        // Any difference misses: access, topic, username (including absent vs empty), client id.
        assert!(!allows(&memo, &check(c, "a/b/c/user1", Access::Read)));
        assert!(!allows(&memo, &check(c, "a/b/c/user2", Access::Write)));
        assert!(!allows(&memo, &check(c, "a/b/c/user", Access::Write)));
        assert!(!allows(
            &memo,
            &check(client(Some("user2"), "c1"), "a/b/c/user1", Access::Write)
        ));
        assert!(!allows(
            &memo,
            &check(client(None, "c1"), "a/b/c/user1", Access::Write)
        ));
        assert!(!allows(
            &memo,
            &check(client(Some(""), "c1"), "a/b/c/user1", Access::Write)
        ));
        assert!(!allows(
            &memo,
            &check(client(Some("user1"), "c2"), "a/b/c/user1", Access::Write)
        ));
        // Moving bytes between the parts of the key is a different key.
        memo.remember(
            &check(client(Some("ab"), "c"), "t", Access::Read),
            Reason::NoRuleMatched,
        );
        assert!(allows(
            &memo,
            &check(client(Some("ab"), "c"), "t", Access::Read)
        ));
        assert!(!allows(
            &memo,
            &check(client(Some("a"), "bc"), "t", Access::Read)
        ));
        memo.clear();
        assert!(!allows(&memo, &check(c, "a/b/c/user1", Access::Write)));
    }

    #[test]
    fn absent_and_empty_usernames_are_different_keys() {
        let mut memo = DecisionMemo::new();
        memo.remember(
            &check(client(None, "c1"), "t", Access::Read),
            Reason::NoRuleMatched,
        );
        assert!(allows(&memo, &check(client(None, "c1"), "t", Access::Read)));
        assert!(!allows(
            &memo,
            &check(client(Some(""), "c1"), "t", Access::Read)
        ));
    }

    #[test]
    fn keys_longer_than_a_slot_are_not_remembered() {
        let mut memo = DecisionMemo::new();
        let long = "x".repeat(KEY_CAPACITY);
        memo.remember(
            &check(client(Some("u"), "c1"), &long, Access::Write),
            Reason::NoRuleMatched,
        );
        assert!(!allows(
            &memo,
            &check(client(Some("u"), "c1"), &long, Access::Write)
        ));
    }
}
