//! The core behind a lock, run by whichever thread has something for it: a connection thread
//! hands it the packets it has just read (in that thread, no hand-over to another one), the
//! runtime's task its ticks, signals, password verdicts and the store's commits.
//!
//! A packet used to cross to a core thread and its answers back: two thread wake-ups per batch
//! of packets on top of the one to the receiving connection's thread, and on a virtual machine
//! each wake-up of an idle CPU costs more than routing the packets. Now only a connection thread
//! that has something to write is woken, once per batch ([`CoreLock::end_batch`]), and the
//! thread that routed a packet writes its own connections' packets without waking anyone.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::conn::Gone;
use super::core::{Clock, Core};
use super::{log, CoreMsg};

/// The core and whether the broker is stopping.
pub(super) struct CoreLock {
    core: Mutex<Core>,
    stopped: AtomicBool,
}

impl CoreLock {
    /// The core, shared.
    pub(super) fn new(core: Core) -> CoreLock {
        CoreLock {
            core: Mutex::new(core),
            stopped: AtomicBool::new(false),
        }
    }

    /// The core, for one message or a few. A panic while it was held leaves the router's state
    /// undefined: the broker stops at once (its service manager restarts it) rather than serve
    /// with a state it cannot trust.
    pub(super) fn lock(&self) -> MutexGuard<'_, Core> {
        match self.core.lock() {
            Ok(core) => core,
            Err(_) => {
                log("internal error: a thread panicked while routing; stopping");
                std::process::abort();
            }
        }
    }

    /// Hands the core a message that must not be lost (a registration, a connection's end, an
    /// outbox that drained), setting `touched`: the caller's turn touched the core, so its batch
    /// goes on and the caller calls [`CoreLock::end_batch`] after.
    pub(super) fn submit(&self, touched: &Cell<bool>, msg: CoreMsg) -> Result<(), Gone> {
        touched.set(true);
        if self.is_stopped() {
            return Err(Gone);
        }
        self.lock().handle(msg, true, Clock::read());
        Ok(())
    }

    /// The core for the packets of one read: held until the [`Held`] is dropped, so that the
    /// packets of a read take the lock once.
    pub(super) fn hold(&self) -> Result<Held<'_>, Gone> {
        if self.is_stopped() {
            return Err(Gone);
        }
        Ok(Held {
            core: self.lock(),
            clock: Clock::read(),
        })
    }

    /// The end of a caller's batch: the store's next commit may start, and the connection
    /// threads with something new to write are woken, except `shard` (the caller's own, which
    /// looks at its outboxes itself).
    pub(super) fn end_batch(&self, shard: Option<usize>) {
        self.lock().end_batch(shard);
    }

    /// The broker stops: connection threads end at their next message for the core.
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// The core, held by a connection thread for the packets it has just decoded.
pub(super) struct Held<'a> {
    core: MutexGuard<'a, Core>,
    /// Read once for all the packets of a read.
    clock: Clock,
}

impl Held<'_> {
    /// Offers the core a packet's event: `false` (nothing taken) while the store is behind (see
    /// [`Core::saturated`]); the connection keeps the packet and offers it again.
    pub(super) fn offer(&mut self, msg: CoreMsg) -> bool {
        if self.core.saturated() {
            return false;
        }
        self.core.handle(msg, true, self.clock);
        true
    }
}
