//! Connection threads ("shards"): each owns a mio poll, a slab of connections and their deadlines,
//! and serves them in turn. A connection costs its slab entry and its outbox, plus buffers only while
//! bytes are on their way: no task, no per-socket reactor state, no per-connection waker.
//!
//! New connections and outbox wake-ups arrive through the shard's [`Inbox`], with one poll wake-up
//! per batch.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio_rustls::rustls;

use super::conn::{Conn, Ctx, Gone, Turn};
use super::core_lock::CoreLock;
use super::transport::Transport;
use super::ws::{Ws, WsListener};
use super::{log, CoreMsg, READ_MAX};
use crate::broker::identity::CertUsername;
use crate::broker::outbox::{Doorbell, Limits, Outbox};
use crate::broker::router::Event;
use crate::broker::session::ConnId;

/// The poll token of the shard's waker (connections use their slab index).
const WAKER: Token = Token(usize::MAX);
/// How often connections waiting for the core to take packets (the store behind) try again.
const STALL_RETRY: Duration = Duration::from_millis(1);

/// A socket accepted for a shard.
pub(super) struct Accepted {
    /// The socket (non-blocking).
    pub(super) stream: TcpStream,
    /// The peer's address.
    pub(super) peer: IpAddr,
    /// Its identity for the core.
    pub(super) conn: ConnId,
    /// The listener's TLS configuration, if it is a TLS listener.
    pub(super) tls: Option<Arc<rustls::ServerConfig>>,
    /// Where the username comes from when it is the client certificate's (TLS listeners only).
    pub(super) cert_username: Option<CertUsername>,
    /// The listener's count of open connections (counted already).
    pub(super) open: Arc<AtomicUsize>,
    /// The listener's WebSocket settings, if it is a `protocol websockets` listener.
    pub(super) ws: Option<Arc<WsListener>>,
}

#[derive(Default)]
struct Inbox {
    accepted: Vec<Accepted>,
    /// Connections whose outbox rang.
    rung: Vec<usize>,
}

/// The side of a shard other threads see: they hand it sockets and ring its connections' outboxes.
pub(super) struct ShardHandle {
    waker: Waker,
    inbox: Mutex<Inbox>,
    /// Outboxes rang since the shard was last woken: [`ShardHandle::wake_if_rung`] wakes it.
    rung: AtomicBool,
}

impl ShardHandle {
    /// Adds to the inbox; `true` if it was empty (the shard has not been told about anything since
    /// it last took its inbox).
    fn add(&self, f: impl FnOnce(&mut Inbox)) -> bool {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = inbox.accepted.is_empty() && inbox.rung.is_empty();
        f(&mut inbox);
        was_empty
    }

    fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log(&format!("cannot wake a connection thread: {e}"));
        }
    }

    /// Gives the shard a new connection (woken at once).
    pub(super) fn hand_over(&self, a: Accepted) {
        if self.add(|inbox| inbox.accepted.push(a)) {
            self.wake();
        }
    }

    /// Wakes the shard if an outbox of its connections rang since the last call. The core calls
    /// it once it has handled what waits for it (or a batch of it), so that a shard wakes once for
    /// all the packets of a batch rather than for the first of them: fewer wake-ups, and writes
    /// that carry more packets each.
    pub(super) fn wake_if_rung(&self) {
        if self.rung.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }
}

impl Doorbell for ShardHandle {
    /// Queues the ring; the wake-up waits for [`ShardHandle::wake_if_rung`].
    fn ring(&self, token: usize) {
        if self.add(|inbox| inbox.rung.push(token)) {
            self.rung.store(true, Ordering::Release);
        }
    }
}

/// Readiness to serve in a connection's next turn.
#[derive(Clone, Copy)]
struct Want {
    read: bool,
    write: bool,
}

/// A connection thread.
pub(super) struct Shard {
    poll: Poll,
    handle: Arc<ShardHandle>,
    /// Connections by poll token; `free` lists the empty slots.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// `(deadline, slot)`; an entry is current while the slot's `armed` equals its deadline.
    timers: BinaryHeap<Reverse<(u64, usize)>>,
    /// Connections whose turn ended with more to do.
    again: Vec<(usize, Want)>,
    /// Connections waiting for the core to take their packets.
    stalled: Vec<usize>,
    epoch: Instant,
    /// Its place among the shards (the core wakes the others, not the one calling it).
    index: usize,
    core: Arc<CoreLock>,
    /// This turn handed the core something: its batch ends with the turn.
    touched: Cell<bool>,
    max_packet_size: usize,
    limits: Limits,
    scratch: Box<[u8]>,
}

impl Shard {
    /// A shard and the handle other threads use to reach it.
    pub(super) fn new(
        index: usize,
        core: Arc<CoreLock>,
        max_packet_size: usize,
        limits: Limits,
    ) -> io::Result<(Shard, Arc<ShardHandle>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let handle = Arc::new(ShardHandle {
            waker,
            inbox: Mutex::default(),
            rung: AtomicBool::new(false),
        });
        let shard = Shard {
            poll,
            handle: Arc::clone(&handle),
            conns: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            again: Vec::new(),
            stalled: Vec::new(),
            epoch: Instant::now(),
            index,
            core,
            touched: Cell::new(false),
            max_packet_size,
            limits,
            scratch: vec![0; READ_MAX].into_boxed_slice(),
        };
        Ok((shard, handle))
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Serves its connections until the core is gone.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut again = Vec::new();
        let mut stalled = Vec::new();
        loop {
            // An outbox of ours rung by the core in this thread: served without a wake-up.
            let timeout = if self.again.is_empty() && !self.handle.rung.load(Ordering::Acquire) {
                let timer = self
                    .timers
                    .peek()
                    .map(|Reverse((t, _))| Duration::from_millis(t.saturating_sub(self.now())));
                if self.stalled.is_empty() {
                    timer
                } else {
                    Some(timer.map_or(STALL_RETRY, |t| t.min(STALL_RETRY)))
                }
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log(&format!("a connection thread failed: {e}"));
                    return;
                }
            }
            let mut woken = false;
            for ev in &events {
                if ev.token() == WAKER {
                    woken = true;
                    continue;
                }
                let want = Want {
                    read: ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    write: ev.is_writable() || ev.is_write_closed(),
                };
                if self.serve(ev.token().0, want, false).is_err() {
                    return;
                }
            }
            // Our own rings (the core ran in this thread) are not followed by a wake-up.
            let rung_here = self.handle.rung.swap(false, Ordering::AcqRel);
            if woken || rung_here {
                let inbox = std::mem::take(
                    &mut *self
                        .handle
                        .inbox
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner),
                );
                for a in inbox.accepted {
                    if self.accept(a).is_err() {
                        return;
                    }
                }
                for slot in inbox.rung {
                    // A stalled connection is rung when its client is resumed: it reads too.
                    let stalled = self
                        .conns
                        .get(slot)
                        .and_then(Option::as_ref)
                        .is_some_and(Conn::is_stalled);
                    let want = Want {
                        read: stalled,
                        write: true,
                    };
                    if self.serve(slot, want, true).is_err() {
                        return;
                    }
                }
            }
            std::mem::swap(&mut again, &mut self.again);
            for (slot, want) in again.drain(..) {
                if self.serve(slot, want, false).is_err() {
                    return;
                }
            }
            std::mem::swap(&mut stalled, &mut self.stalled);
            for slot in stalled.drain(..) {
                let want = Want {
                    read: true,
                    write: false,
                };
                if self.serve(slot, want, false).is_err() {
                    return;
                }
            }
            if self.expire().is_err() {
                return;
            }
            // What this turn handed the core is routed: the threads it queued packets for are
            // woken (this one serves its own on its next turn).
            if self.touched.take() {
                self.core.end_batch(Some(self.index));
            }
        }
    }

    /// Takes a new connection in.
    fn accept(&mut self, a: Accepted) -> Result<(), CoreGone> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let mut stream = a.stream;
        let tls = match a.tls.map(rustls::ServerConnection::new).transpose() {
            Ok(tls) => tls,
            Err(e) => {
                log(&format!("TLS: {e}"));
                return self.closed(slot, a.conn, &a.open);
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log(&format!("cannot poll a connection: {e}"));
            return self.closed(slot, a.conn, &a.open);
        }
        let bell: Arc<dyn Doorbell> = self.handle.clone();
        let outbox = Arc::new(Outbox::new(bell, slot));
        let mut conn = Conn::new(
            a.conn,
            Transport::new(stream, tls, a.ws.map(|l| Ws::new(l, self.max_packet_size))),
            outbox,
            a.open,
            a.peer,
            a.cert_username,
            self.now(),
        );
        let ctx = Ctx {
            core: &self.core,
            touched: &self.touched,
            max_packet_size: self.max_packet_size,
            limits: &self.limits,
            now: self.now(),
        };
        if conn.register(&ctx).is_err() {
            return Err(CoreGone);
        }
        self.conns[slot] = Some(conn);
        self.arm(slot);
        // Bytes that arrived before the registration: served now, not at the next edge.
        self.again.push((
            slot,
            Want {
                read: true,
                write: true,
            },
        ));
        Ok(())
    }

    /// Gives connection `slot` its turn.
    fn serve(&mut self, slot: usize, want: Want, rung: bool) -> Result<(), CoreGone> {
        let now = self.now();
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        let ctx = Ctx {
            core: &self.core,
            touched: &self.touched,
            max_packet_size: self.max_packet_size,
            limits: &self.limits,
            now,
        };
        let mut more = Want {
            read: false,
            write: false,
        };
        let mut stalled = false;
        let mut turn = || -> Result<(), Gone> {
            if rung && conn.aborted() {
                return Err(Gone);
            }
            // Writes first: what the core sends is not held up by what the client sends.
            if want.write {
                more.write = conn.write(&ctx)? == Turn::Again;
            }
            if want.read {
                match conn.read(&ctx, &mut self.scratch)? {
                    Turn::Wait => {}
                    Turn::Again => more.read = true,
                    Turn::Stalled => stalled = true,
                }
            }
            Ok(())
        };
        if turn().is_err() {
            return self.drop_conn(slot);
        }
        if more.read || more.write {
            self.again.push((slot, more));
        }
        if stalled {
            self.stalled.push(slot);
        }
        self.arm(slot);
        Ok(())
    }

    /// Puts the connection's deadline in the timer heap if the heap does not already have it
    /// earlier.
    fn arm(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if conn.deadline != 0 && (conn.armed == 0 || conn.deadline < conn.armed) {
            conn.armed = conn.deadline;
            self.timers.push(Reverse((conn.deadline, slot)));
        }
    }

    /// Drops the connections whose deadline passed.
    fn expire(&mut self) -> Result<(), CoreGone> {
        let now = self.now();
        while let Some(&Reverse((t, slot))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if conn.armed != t {
                continue;
            }
            conn.armed = 0;
            if conn.deadline != 0 && conn.deadline <= now {
                // No CONNECT in time, keep alive expired (MQTT-3.1.2-24), no close after an
                // error, or a close that could not be written: the connection is dropped and
                // the core publishes the Will.
                self.drop_conn(slot)?;
            } else {
                self.arm(slot);
            }
        }
        // Entries of closed connections wait for their time: do not let them pile up.
        let live = self.conns.len() - self.free.len();
        if self.timers.len() > 2 * live + 64 {
            let conns = &self.conns;
            self.timers.retain(|Reverse((t, slot))| {
                conns
                    .get(*slot)
                    .and_then(Option::as_ref)
                    .is_some_and(|c| c.armed == *t)
            });
        }
        Ok(())
    }

    /// Closes connection `slot` and tells the core.
    fn drop_conn(&mut self, slot: usize) -> Result<(), CoreGone> {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return Ok(());
        };
        let Conn {
            id, mut io, open, ..
        } = conn;
        let _ = self.poll.registry().deregister(&mut io.raw.sock);
        drop(io);
        self.closed(slot, id, &open)
    }

    /// The slot is free again and the core hears that connection `id` is gone.
    fn closed(&mut self, slot: usize, id: ConnId, open: &AtomicUsize) -> Result<(), CoreGone> {
        self.free.push(slot);
        open.fetch_sub(1, Ordering::Relaxed);
        if self.free.len() == self.conns.len() {
            // No connection left: give the memory back.
            self.conns = Vec::new();
            self.free = Vec::new();
        }
        self.core
            .submit(&self.touched, CoreMsg::Event(Event::Closed { conn: id }))
            .map_err(|_| CoreGone)
    }
}

/// The core has stopped: the broker is shutting down.
#[derive(Debug)]
pub(super) struct CoreGone;
