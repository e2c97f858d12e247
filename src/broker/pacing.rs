//! Who waits for whom: a publisher whose messages fill a subscriber's queue faster than the
//! subscriber reads is paused (its connection reads no more PUBLISH packets: TCP backpressure)
//! until that subscriber has caught up, instead of having the subscriber's QoS 0 messages dropped.
//!
//! The policy, for one subscriber S:
//! * S's queue (its outbox, or its session's QoS 1/2 queue) passes its high mark → every publisher
//!   that delivers to S from then on is paused, until S's queues are back below their low mark.
//! * S stays above its low mark for [`SLOW_AFTER`] (it reads nothing, or far slower than it is sent
//!   to) → S is *slow*: its publishers go on, and S gets Mosquitto's rules alone (QoS 0 dropped at
//!   `max_queued_messages`, counted and logged). S is no longer slow once it has caught up.
//!
//! So a subscriber that reads costs nothing, however fast the publisher, and a subscriber that stops
//! reading holds its publishers back for at most [`SLOW_AFTER`] (plus the tick that notices it).
//!
//! This is only the bookkeeping, free of I/O: the core applies what it returns to the outboxes.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::broker::session::ConnId;

/// How long a subscriber may hold its publishers back before it counts as slow.
pub const SLOW_AFTER: Duration = Duration::from_secs(2);

/// Messages for the core that come from neither a connection thread nor the core's own task
/// (password verdicts, reloads) and may wait: the bound of their channel. It also sizes
/// [`IN_TRANSIT`].
pub const CORE_CAPACITY: usize = 4096;

/// What may still arrive for a subscriber after its queue passed its high mark, before the pauses
/// take hold: a publisher is paused when the core reaches one of its messages, and what the other
/// publishers send before the core reaches one of theirs still arrives. Connection threads hand
/// the core their packets directly and stop at a paused publisher's next PUBLISH, so this is at
/// most one read per publisher. The bound dates from when packets crossed a channel of
/// [`CORE_CAPACITY`] to a core thread and a fan-in of 50 publishers under heavy CPU contention was
/// seen to pass four channels' worth (16,384): eight. A queue is dropped from only beyond its mark
/// (or limit) plus this (about 2 MiB of queue entries, plus payloads), and a drop pauses its
/// sender too.
pub const IN_TRANSIT: usize = 8 * CORE_CAPACITY;

/// A subscriber whose queue passed its high mark.
#[derive(Debug)]
struct Congested {
    /// When it passed the mark.
    since: Instant,
    /// The publishers waiting for it (empty once it is slow).
    publishers: Vec<ConnId>,
    /// It held them back for [`SLOW_AFTER`]: they were let go.
    slow: bool,
}

/// What [`Pacer::tick`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Subscribers that became slow, with how many publishers waited for each.
    pub slow: Vec<(ConnId, usize)>,
    /// Publishers that no longer wait for anyone.
    pub resume: Vec<ConnId>,
}

/// The waits between publishers and subscribers.
#[derive(Debug, Default)]
pub struct Pacer {
    subscribers: FxHashMap<ConnId, Congested>,
    /// How many subscribers each paused publisher waits for.
    waits: FxHashMap<ConnId, u32>,
}

impl Pacer {
    /// `subscriber`'s queue is above its high mark, and `publisher` just delivered to it. Returns
    /// `true` when `publisher` must be paused now (it was not waiting for anyone).
    pub fn congested(
        &mut self,
        subscriber: ConnId,
        publisher: Option<ConnId>,
        now: Instant,
    ) -> bool {
        let entry = self.subscribers.entry(subscriber).or_insert(Congested {
            since: now,
            publishers: Vec::new(),
            slow: false,
        });
        let Some(publisher) = publisher else {
            return false;
        };
        // A client reading its own messages is not paused by itself (it would wait for itself).
        if entry.slow || publisher == subscriber || entry.publishers.contains(&publisher) {
            return false;
        }
        entry.publishers.push(publisher);
        let waits = self.waits.entry(publisher).or_insert(0);
        *waits += 1;
        *waits == 1
    }

    /// `true` if `subscriber` is slow (its publishers are not paused for it).
    pub fn is_slow(&self, subscriber: ConnId) -> bool {
        self.subscribers.get(&subscriber).is_some_and(|c| c.slow)
    }

    /// `true` if `subscriber` is above its high mark or slow.
    pub fn is_congested(&self, subscriber: ConnId) -> bool {
        self.subscribers.contains_key(&subscriber)
    }

    /// `subscriber` caught up (or is gone): the publishers that waited for nobody else, to resume.
    pub fn relieved(&mut self, subscriber: ConnId) -> Vec<ConnId> {
        let Some(c) = self.subscribers.remove(&subscriber) else {
            return Vec::new();
        };
        self.release(c.publishers)
    }

    fn release(&mut self, publishers: Vec<ConnId>) -> Vec<ConnId> {
        let mut resume = Vec::new();
        for p in publishers {
            if let Some(w) = self.waits.get_mut(&p) {
                *w -= 1;
                if *w == 0 {
                    self.waits.remove(&p);
                    resume.push(p);
                }
            }
        }
        resume
    }

    /// Subscribers above their mark for [`SLOW_AFTER`] become slow; their publishers go on.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut released = Vec::new();
        let mut slow = Vec::new();
        for (&s, c) in &mut self.subscribers {
            if !c.slow && now.saturating_duration_since(c.since) >= SLOW_AFTER {
                c.slow = true;
                slow.push((s, c.publishers.len()));
                released.append(&mut c.publishers);
            }
        }
        Tick {
            slow,
            resume: self.release(released),
        }
    }

    /// `conn` is gone: as a subscriber it holds nobody back, as a publisher it waits no more.
    /// Returns the publishers to resume.
    pub fn closed(&mut self, conn: ConnId) -> Vec<ConnId> {
        let resume = self.relieved(conn);
        if self.waits.remove(&conn).is_some() {
            for c in self.subscribers.values_mut() {
                c.publishers.retain(|&p| p != conn);
            }
        }
        resume
    }

    /// Whether `publisher` waits for a subscriber.
    pub fn is_paused(&self, publisher: ConnId) -> bool {
        self.waits.contains_key(&publisher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u64) -> ConnId {
        n
    }

    #[test]
    fn a_publisher_waits_until_every_subscriber_it_fills_has_caught_up() {
        let mut p = Pacer::default();
        let t = Instant::now();
        assert!(p.congested(c(1), Some(c(9)), t), "paused at once");
        assert!(!p.congested(c(1), Some(c(9)), t), "once");
        assert!(!p.congested(c(2), Some(c(9)), t), "already paused");
        assert!(p.is_paused(c(9)));
        assert_eq!(p.relieved(c(1)), Vec::<ConnId>::new());
        assert!(p.is_paused(c(9)), "2 has not caught up");
        assert_eq!(p.relieved(c(2)), [c(9)]);
        assert!(!p.is_paused(c(9)));
        assert_eq!(p.relieved(c(2)), Vec::<ConnId>::new(), "nothing twice");
    }

    #[test]
    fn a_subscriber_that_does_not_catch_up_becomes_slow_and_lets_its_publishers_go() {
        let mut p = Pacer::default();
        let t = Instant::now();
        assert!(p.congested(c(1), Some(c(8)), t));
        assert!(p.congested(c(1), Some(c(9)), t));
        assert!(
            !p.congested(c(2), Some(c(9)), t + SLOW_AFTER / 2),
            "9 waits already"
        );
        assert_eq!(p.tick(t + SLOW_AFTER / 2), Tick::default());
        let tick = p.tick(t + SLOW_AFTER);
        assert_eq!(tick.slow, [(c(1), 2)]);
        assert_eq!(tick.resume, [c(8)], "9 still waits for 2");
        assert!(p.is_slow(c(1)));
        // A slow subscriber pauses nobody.
        assert!(!p.congested(c(1), Some(c(7)), t + SLOW_AFTER));
        let tick = p.tick(t + SLOW_AFTER * 2);
        assert_eq!((tick.slow, tick.resume), (vec![(c(2), 1)], vec![c(9)]));
        // Caught up: no longer slow, and it may pause publishers again.
        assert_eq!(p.relieved(c(1)), Vec::<ConnId>::new());
        assert!(!p.is_slow(c(1)));
        assert!(p.congested(c(1), Some(c(7)), t + SLOW_AFTER * 3));
    }

    #[test]
    fn nobody_waits_for_itself_or_for_a_closed_connection() {
        let mut p = Pacer::default();
        let t = Instant::now();
        assert!(!p.congested(c(1), Some(c(1)), t));
        assert!(!p.congested(c(1), None, t));
        assert!(p.is_congested(c(1)));
        assert!(p.congested(c(1), Some(c(2)), t));
        assert_eq!(p.closed(c(1)), [c(2)]);
        assert!(p.congested(c(3), Some(c(2)), t));
        assert_eq!(
            p.closed(c(2)),
            Vec::<ConnId>::new(),
            "a closed publisher is not resumed"
        );
        assert_eq!(p.relieved(c(3)), Vec::<ConnId>::new());
        assert!(!p.is_paused(c(2)));
    }
}
