//! Which stored message a delivery refers to: one row per message however many durable sessions it
//! goes to, removed with the last delivery that refers to it.

use std::sync::{Arc, Weak};

use rustc_hash::FxHashMap;

use crate::broker::session::Message;

/// Message ids by message, and how many stored deliveries refer to each.
///
/// A message is known by its `Arc`'s address. The `Weak` kept beside it holds the allocation, so the
/// address cannot be reused by another message while the entry exists. (Addresses are ours, not a
/// client's: a fast hash is safe here.)
#[derive(Debug, Default)]
pub(super) struct MessageIds {
    by_address: FxHashMap<usize, (Weak<Message>, u64)>,
    refs: FxHashMap<u64, (usize, u32)>,
    last: u64,
}

impl MessageIds {
    /// The id of `m` for one more delivery, and `true` if it is new (its row must be written).
    pub(super) fn acquire(&mut self, m: &Arc<Message>) -> (u64, bool) {
        let address = super::message_key(m);
        if let Some((_, id)) = self.by_address.get(&address) {
            if let Some(r) = self.refs.get_mut(id) {
                r.1 += 1;
                return (*id, false);
            }
        }
        self.last += 1;
        let id = self.last;
        self.by_address.insert(address, (Arc::downgrade(m), id));
        self.refs.insert(id, (address, 1));
        (id, true)
    }

    /// One delivery less for `id`: `true` if it was the last (its row must be removed).
    pub(super) fn release(&mut self, id: u64) -> bool {
        let Some(r) = self.refs.get_mut(&id) else {
            return false;
        };
        r.1 -= 1;
        if r.1 > 0 {
            return false;
        }
        let address = r.0;
        self.refs.remove(&id);
        self.by_address.remove(&address);
        true
    }

    /// A message read at start, with `refs` deliveries referring to it.
    pub(super) fn register(&mut self, id: u64, m: &Arc<Message>, refs: u32) {
        let address = super::message_key(m);
        self.by_address.insert(address, (Arc::downgrade(m), id));
        self.refs.insert(id, (address, refs));
        self.last = self.last.max(id);
    }

    /// How many messages are referred to.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.refs.len()
    }
}
