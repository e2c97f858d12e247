//! The core's side of pacing (see [`crate::broker::pacing`] for the policy): applies the
//! [`Pacer`]'s decisions to the connections' outboxes, from the three places that learn about a
//! subscriber's queues: the outbox pushes, the router's session queues, and the connection threads
//! that write.

use std::sync::Arc;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};

use super::log;
use crate::broker::outbox::{Limits, Outbox};
use crate::broker::pacing::{Pacer, SLOW_AFTER};
use crate::broker::router::Router;
use crate::broker::session::ConnId;

/// The registered connections' outboxes.
pub(super) type Conns = FxHashMap<ConnId, Arc<Outbox>>;

/// Pauses and resumes publishers for the subscribers they fill.
#[derive(Debug, Default)]
pub(super) struct Flow {
    pacer: Pacer,
    /// Subscribers whose session queue is past its high mark (the router said so).
    backlogged: FxHashSet<ConnId>,
}

impl Flow {
    /// `subscriber`'s outbox is past its high mark after a delivery from `source`.
    pub(super) fn outbox_congested(
        &mut self,
        conns: &Conns,
        limits: &Limits,
        subscriber: ConnId,
        source: Option<ConnId>,
        now: Instant,
    ) {
        let Some(outbox) = conns.get(&subscriber) else {
            return;
        };
        // Asks the connection thread to say when it has caught up.
        if outbox.watch(limits) {
            self.pace(conns, subscriber, source, now);
        }
    }

    /// The router says `subscriber`'s session queue is past its high mark.
    pub(super) fn queue_backlogged(
        &mut self,
        conns: &Conns,
        subscriber: ConnId,
        source: Option<ConnId>,
        now: Instant,
    ) {
        self.backlogged.insert(subscriber);
        self.pace(conns, subscriber, source, now);
    }

    fn pace(&mut self, conns: &Conns, subscriber: ConnId, source: Option<ConnId>, now: Instant) {
        if self.pacer.congested(subscriber, source, now) {
            if let Some(p) = source.and_then(|p| conns.get(&p)) {
                p.set_paused(true);
            }
        }
    }

    /// The router says `subscriber`'s session queue is below its low mark.
    pub(super) fn queue_relieved(&mut self, conns: &Conns, limits: &Limits, subscriber: ConnId) {
        self.backlogged.remove(&subscriber);
        let outbox_busy = conns.get(&subscriber).is_some_and(|o| o.watch(limits));
        if !outbox_busy {
            self.relieve(conns, subscriber);
        }
    }

    /// `subscriber`'s connection thread wrote its outbox below its low mark. What was pushed since
    /// may have filled it again: it is looked at now, and watched again if so (a stale report must
    /// not let the publishers go while it is full, or each round would add a channel's worth).
    pub(super) fn outbox_drained(&mut self, conns: &Conns, limits: &Limits, subscriber: ConnId) {
        if self.backlogged.contains(&subscriber) {
            return;
        }
        if conns.get(&subscriber).is_some_and(|o| o.watch(limits)) {
            return;
        }
        self.relieve(conns, subscriber);
    }

    fn relieve(&mut self, conns: &Conns, subscriber: ConnId) {
        if self.pacer.is_slow(subscriber) {
            if let Some(o) = conns.get(&subscriber) {
                o.set_slow(false);
            }
        }
        for p in self.pacer.relieved(subscriber) {
            resume(conns, p);
        }
    }

    /// Once a second: subscribers that held their publishers back for [`SLOW_AFTER`] become slow,
    /// and their publishers go on.
    pub(super) fn tick(&mut self, conns: &Conns, limits: &Limits, router: &Router, now: Instant) {
        let tick = self.pacer.tick(now);
        for (s, waiting) in tick.slow {
            let Some(o) = conns.get(&s) else {
                continue;
            };
            o.set_slow(true);
            let w = o.waiting();
            log(&format!(
                "client {:?} is slow: it has not caught up for {} s ({} packets, {} payload bytes wait for its socket); the {waiting} publishers paused for it go on, and until it catches up it gets Mosquitto's limits (max_queued_messages {}, max_queued_bytes {})",
                router.client_id(s).unwrap_or("?"),
                SLOW_AFTER.as_secs(),
                w.packets,
                w.bytes,
                limits.messages,
                limits.bytes,
            ));
            if !o.watch(limits) && !self.backlogged.contains(&s) {
                self.relieve(conns, s);
            }
        }
        for p in tick.resume {
            resume(conns, p);
        }
    }

    /// `conn` is gone.
    pub(super) fn closed(&mut self, conns: &Conns, conn: ConnId) {
        self.backlogged.remove(&conn);
        for p in self.pacer.closed(conn) {
            resume(conns, p);
        }
    }
}

fn resume(conns: &Conns, publisher: ConnId) {
    if let Some(p) = conns.get(&publisher) {
        // Rings its outbox: its connection thread serves it at once.
        p.set_paused(false);
    }
}
