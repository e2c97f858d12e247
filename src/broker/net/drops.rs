//! The outgoing QoS 0 messages the core drops because a connection's outbox is full: counted and
//! logged (as Mosquitto logs "Outgoing messages are being dropped for client X" at NOTICE).
//! Only connections with drops have an entry here.

use rustc_hash::FxHashMap;

use super::log;
use crate::broker::outbox::{Limits, Outbox};
use crate::broker::router::Router;
use crate::broker::session::ConnId;

/// One connection's drops.
#[derive(Debug)]
struct ConnDrops {
    /// Its client id (for the log).
    client: String,
    /// Since it connected.
    dropped: u64,
    /// Of those, not yet reported in a verbose log line.
    unreported: u64,
}

/// The QoS 0 drops the core counts and logs.
#[derive(Debug, Default)]
pub(super) struct Drops {
    /// Since the broker started.
    pub(super) total: u64,
    conns: FxHashMap<ConnId, ConnDrops>,
    /// Connections with drops not yet reported (verbose: once a second).
    pending: Vec<ConnId>,
}

impl Drops {
    /// Counts one drop for `conn`; the first is logged, the rest once a second with `-v`.
    pub(super) fn note(&mut self, conn: ConnId, outbox: &Outbox, router: &Router, limits: &Limits) {
        self.total += 1;
        let c = self.conns.entry(conn).or_insert_with(|| {
            let client = router.client_id(conn).unwrap_or("?").to_owned();
            let w = outbox.waiting();
            log(&format!(
                "outgoing QoS 0 messages are being dropped for client {client:?}: {} packets ({} payload bytes) wait for its socket (max_queued_messages {}, max_queued_bytes {})",
                w.packets, w.bytes, limits.messages, limits.bytes
            ));
            ConnDrops {
                client,
                dropped: 0,
                unreported: 0,
            }
        });
        c.dropped += 1;
        if c.dropped > 1 {
            c.unreported += 1;
            if c.unreported == 1 {
                self.pending.push(conn);
            }
        }
    }

    /// Verbose: one line per connection with drops since the last report.
    pub(super) fn report(&mut self, verbose: bool) {
        for conn in self.pending.drain(..) {
            if let Some(c) = self.conns.get_mut(&conn) {
                if verbose && c.unreported > 0 {
                    log(&format!(
                        "client {:?}: {} more QoS 0 messages dropped ({} since it connected)",
                        c.client, c.unreported, c.dropped
                    ));
                }
                c.unreported = 0;
            }
        }
    }

    /// The connection is gone from the core: sums up its drops.
    pub(super) fn forget(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            log(&format!(
                "client {:?}: {} outgoing QoS 0 messages were dropped in all because its queue was full",
                c.client, c.dropped
            ));
        }
    }
}
