//! One client connection as its shard drives it: bytes in → packets for the core, the outbox → bytes
//! out, and its single deadline (CONNECT, keep alive, or the end of a close).
//!
//! An idle connection holds no buffer: incoming bytes are read into the shard's scratch buffer and
//! only an incomplete packet is copied out (and kept until it is whole), and the output state exists
//! only while something is being written.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use super::core_lock::{CoreLock, Held};
use super::transport::Transport;
use super::{CoreMsg, CLOSE_FLUSH_TIMEOUT, CONNECT_TIMEOUT};
use crate::broker::codec::{self, Packet, TopicCache, Version};
use crate::broker::identity::{self, CertUsername, Login};
use crate::broker::outbox::{Limits, Outbox, Outgoing, Weight};
use crate::broker::router::Event;
use crate::broker::session::ConnId;

/// Bytes encoded before they are written.
const WRITE_CHUNK: usize = 64 * 1024;
/// Reads per turn before the shard serves other connections.
const READ_TURN: usize = 4;
/// Chunks written per turn before the shard serves other connections.
const WRITE_TURN: usize = 4;
/// Time allowed after an invalid packet for the core's answer and the close.
const INVALID_CLOSE: Duration = Duration::from_secs(5);

/// The connection is finished: the shard drops it and tells the core.
#[derive(Debug)]
pub(super) struct Gone;

/// What a turn left to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Turn {
    /// Nothing until the socket or the outbox says so.
    Wait,
    /// More to do right away (the turn's share was used up).
    Again,
    /// The core cannot take packets yet (the store is behind), or the client is paused: the
    /// packets read wait in the connection, which reads no more until they are taken.
    Stalled,
}

/// What the shard lends a connection for one turn.
pub(super) struct Ctx<'a> {
    /// The core.
    pub(super) core: &'a CoreLock,
    /// Set once the core has been handed something in this turn of the shard (which then ends
    /// the core's batch; a turn that did not touch the core does not take its lock).
    pub(super) touched: &'a Cell<bool>,
    /// Largest packet accepted from clients.
    pub(super) max_packet_size: usize,
    /// The outboxes' bounds and marks.
    pub(super) limits: &'a Limits,
    /// Milliseconds since the shard's epoch (never 0).
    pub(super) now: u64,
}

impl<'a> Ctx<'a> {
    /// [`CoreLock::hold`], noted in `touched`.
    fn hold(&self) -> Result<Held<'a>, Gone> {
        self.touched.set(true);
        self.core.hold()
    }

    /// [`CoreLock::submit`], noted in `touched`.
    fn submit(&self, msg: CoreMsg) -> Result<(), Gone> {
        self.core.submit(self.touched, msg)
    }
}

/// What is being written: allocated while there is output, dropped when it is all written.
struct Writing {
    /// Taken from the outbox, not yet encoded.
    items: VecDeque<Outgoing>,
    /// Encoded, from `pos` on not yet written.
    out: Vec<u8>,
    pos: usize,
    /// What `out` counts for in the outbox's bounds.
    weight: Weight,
}

/// One connection.
pub(super) struct Conn {
    /// Its identity for the core.
    pub(super) id: ConnId,
    /// The byte stream.
    pub(super) io: Transport,
    /// What the core sends it.
    pub(super) outbox: Arc<Outbox>,
    /// Its listener's count of open connections.
    pub(super) open: Arc<AtomicUsize>,
    /// Where the username comes from when it is the client certificate's.
    cert_username: Option<CertUsername>,
    /// The deadline, in the shard's milliseconds (0: none).
    pub(super) deadline: u64,
    /// The deadline the shard's timer heap holds for it (0: none).
    pub(super) armed: u64,
    /// An incomplete packet (empty and unallocated otherwise).
    input: Vec<u8>,
    writing: Option<Box<Writing>>,
    peer: IpAddr,
    /// 1.5 × the keep alive in force, in milliseconds (0: none, or not yet accepted).
    keep_alive: u32,
    version: Option<Version>,
    /// The topic of its last PUBLISH, reused while it publishes there.
    topics: TopicCache,
    states: States,
}

/// A connection's yes/no states, in one byte: the size of a connection is what each of ten
/// thousand idle ones costs.
#[derive(Clone, Copy, Debug, Default)]
struct States(u8);

impl States {
    /// The core knows it (for TLS: once the handshake is done).
    const REGISTERED: u8 = 1;
    /// Reads are over (after an invalid packet).
    const READING_DONE: u8 = 2;
    /// `input` holds packets the core could not take yet, or that wait for a pause to end.
    const STALLED: u8 = 4;
    /// A close was asked: write what came before it, then close.
    const CLOSING: u8 = 8;

    fn has(self, state: u8) -> bool {
        self.0 & state != 0
    }

    fn set(&mut self, state: u8, on: bool) {
        if on {
            self.0 |= state;
        } else {
            self.0 &= !state;
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Conn {
    /// A connection just accepted, with its CONNECT (or TLS handshake) deadline.
    pub(super) fn new(
        id: ConnId,
        io: Transport,
        outbox: Arc<Outbox>,
        open: Arc<AtomicUsize>,
        peer: IpAddr,
        cert_username: Option<CertUsername>,
        now: u64,
    ) -> Conn {
        Conn {
            id,
            io,
            outbox,
            open,
            cert_username,
            deadline: now + ms(CONNECT_TIMEOUT),
            armed: 0,
            input: Vec::new(),
            writing: None,
            peer,
            keep_alive: 0,
            version: None,
            topics: TopicCache::default(),
            states: States::default(),
        }
    }

    /// Where this client's username comes from: its CONNECT, or (with `use_identity_as_username` /
    /// `use_subject_as_username`) its certificate, which rustls has verified against `cafile` when
    /// `require_certificate` is set.
    fn login(&self) -> Login {
        match self.cert_username {
            None => Login::Credentials,
            Some(from) => identity::certificate_login(self.io.peer_certificate(), from),
        }
    }

    /// Tells the core about the connection once it can speak MQTT (a TLS handshake done).
    pub(super) fn register(&mut self, ctx: &Ctx<'_>) -> Result<(), Gone> {
        if self.states.has(States::REGISTERED) || self.io.handshaking() {
            return Ok(());
        }
        self.states.set(States::REGISTERED, true);
        let msg = CoreMsg::Register {
            conn: self.id,
            outbox: Arc::clone(&self.outbox),
        };
        ctx.submit(msg)?;
        // With TLS, the CONNECT's time starts after the handshake.
        self.deadline = ctx.now + ms(CONNECT_TIMEOUT);
        Ok(())
    }

    /// Reads what the socket has (a turn's share of it) and hands whole packets to the core. A
    /// stalled connection first hands over the packets it holds.
    pub(super) fn read(&mut self, ctx: &Ctx<'_>, scratch: &mut [u8]) -> Result<Turn, Gone> {
        if self.states.has(States::STALLED) {
            if self.outbox.is_paused() && self.keep_alive > 0 {
                // Paused by the core, it is not read: its silence is ours, not its own.
                self.deadline = ctx.now + u64::from(self.keep_alive);
            }
            let mut input = std::mem::take(&mut self.input);
            let used = self.packets(&mut input, ctx)?;
            self.keep(input, used, scratch.len());
            if self.states.has(States::STALLED) {
                return Ok(Turn::Stalled);
            }
        }
        for _ in 0..READ_TURN {
            if self.states.has(States::READING_DONE) {
                return Ok(Turn::Wait);
            }
            let n = match self.io.read(scratch) {
                Ok(0) => return Err(Gone),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.register(ctx)?;
                    return Ok(Turn::Wait);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Gone),
            };
            self.register(ctx)?;
            if self.keep_alive > 0 {
                self.deadline = ctx.now + u64::from(self.keep_alive);
            }
            if self.input.is_empty() {
                let used = self.packets(&mut scratch[..n], ctx)?;
                if used < n && !self.states.has(States::READING_DONE) {
                    self.input = scratch[used..n].to_vec();
                }
            } else {
                let mut input = std::mem::take(&mut self.input);
                input.extend_from_slice(&scratch[..n]);
                let used = self.packets(&mut input, ctx)?;
                self.keep(input, used, scratch.len());
            }
            if self.states.has(States::STALLED) {
                return Ok(Turn::Stalled);
            }
            if n < scratch.len() && self.io.is_plain() {
                // The socket is empty: no read just to hear `WouldBlock` (the poll is
                // edge-triggered, and bytes that arrive from now on are a new edge).
                return Ok(Turn::Wait);
            }
        }
        Ok(Turn::Again)
    }

    /// Keeps what is left of `input` after `used` bytes (nothing after an invalid packet); the
    /// buffer follows what it holds after a large packet.
    fn keep(&mut self, mut input: Vec<u8>, used: usize, room: usize) {
        input.drain(..used);
        if input.is_empty() || self.states.has(States::READING_DONE) {
            return;
        }
        let keep = input.len().saturating_add(room);
        if input.capacity() > keep.saturating_mul(2) {
            input.shrink_to(keep);
        }
        self.input = input;
    }

    /// Hands `event` to the core; `false` (and the connection stalls) when the core cannot take
    /// it yet (the store is behind).
    fn send<'c>(
        &mut self,
        event: Event,
        ctx: &Ctx<'c>,
        held: &mut Option<Held<'c>>,
    ) -> Result<bool, Gone> {
        let core = match held {
            Some(core) => core,
            None => held.insert(ctx.hold()?),
        };
        let taken = core.offer(CoreMsg::Event(event));
        if !taken {
            // The packet is decoded again from the same bytes when the core has room.
            self.states.set(States::STALLED, true);
        }
        Ok(taken)
    }

    /// Decodes the whole packets at the start of `buf` and sends them to the core, until it is
    /// full; returns the bytes used.
    fn packets(&mut self, buf: &mut [u8], ctx: &Ctx<'_>) -> Result<usize, Gone> {
        self.states.set(States::STALLED, false);
        let mut start = 0;
        // The core, taken at the first packet and held for the rest of `buf`.
        let mut held = None;
        // Bounded: each iteration consumes a whole packet from the buffer.
        loop {
            if let Ok(header) = codec::read_fixed_header(&buf[start..], ctx.max_packet_size) {
                match header {
                    Some((_, len, h)) if buf.len() - start >= h + len => {}
                    _ => return Ok(start),
                }
            }
            match codec::decode_client_packet_cached(
                &buf[start..],
                self.version,
                ctx.max_packet_size,
                &mut self.topics,
            ) {
                Ok(Some((packet, used))) => {
                    let (event, version) = match packet {
                        Packet::Connect(c) => {
                            let version = c.version;
                            let event = Event::Connect {
                                conn: self.id,
                                address: self.peer.to_string(),
                                login: self.login(),
                                connect: c,
                            };
                            (event, Some(version))
                        }
                        Packet::Publish(_) if self.outbox.is_paused() => {
                            // The core paused this publisher (a subscriber it fills has not caught
                            // up): the packet waits, and TCP holds the rest back.
                            self.states.set(States::STALLED, true);
                            return Ok(start);
                        }
                        packet => {
                            let event = Event::Packet {
                                conn: self.id,
                                packet,
                            };
                            (event, None)
                        }
                    };
                    if !self.send(event, ctx, &mut held)? {
                        return Ok(start);
                    }
                    if let Some(v) = version {
                        // The password's bytes do not stay behind in the buffer.
                        buf[start..start + used].fill(0);
                        self.version = Some(v);
                        // No CONNECT deadline any more: its login may wait for a password check
                        // (long in a login storm); the keep alive applies once it is accepted.
                        self.deadline = 0;
                    }
                    start += used;
                }
                Ok(None) => return Ok(start),
                Err(error) => {
                    let event = Event::Invalid {
                        conn: self.id,
                        error,
                    };
                    if !self.send(event, ctx, &mut held)? {
                        return Ok(start);
                    }
                    self.states.set(States::READING_DONE, true);
                    self.input = Vec::new();
                    // The core answers with a DISCONNECT and a close; do not wait forever.
                    self.deadline = ctx.now + ms(INVALID_CLOSE);
                    self.keep_alive = 0;
                    return Ok(start);
                }
            }
        }
    }

    /// `true` while it holds packets the core has not taken yet (see [`Turn::Stalled`]).
    pub(super) fn is_stalled(&self) -> bool {
        self.states.has(States::STALLED)
    }

    /// `true` when the core has asked for the connection to be dropped at once.
    pub(super) fn aborted(&self) -> bool {
        self.outbox.is_aborted()
    }

    /// Writes what the outbox holds (a turn's share of it).
    pub(super) fn write(&mut self, ctx: &Ctx<'_>) -> Result<Turn, Gone> {
        fn step(r: io::Result<()>) -> Result<bool, Gone> {
            match r {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                Err(_) => Err(Gone),
            }
        }
        // What rustls still holds (handshake, the end of a chunk).
        if !step(self.io.flush())? {
            return Ok(Turn::Wait);
        }
        for _ in 0..WRITE_TURN {
            let w = match self.writing.as_mut() {
                Some(w) => w,
                None => {
                    let mut items = VecDeque::new();
                    if !self.outbox.take(&mut items) {
                        return Err(Gone);
                    }
                    if items.is_empty() {
                        return Ok(Turn::Wait);
                    }
                    self.writing.insert(Box::new(Writing {
                        items,
                        out: Vec::new(),
                        pos: 0,
                        weight: Weight::default(),
                    }))
                }
            };
            while w.pos < w.out.len() {
                match self.io.write(&w.out[w.pos..]) {
                    Ok(n) => w.pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Turn::Wait),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(Gone),
                }
            }
            if !step(self.io.flush())? {
                return Ok(Turn::Wait);
            }
            if self.states.has(States::CLOSING) {
                // Everything before the close is out: TLS close_notify (sent once), shut down, then
                // the shard drops it.
                self.io.close_notify();
                if !step(self.io.flush())? {
                    return Ok(Turn::Wait);
                }
                return match self.io.shutdown() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Turn::Wait),
                    _ => Err(Gone),
                };
            }
            if !w.out.is_empty() {
                if self
                    .outbox
                    .written(std::mem::take(&mut w.weight), ctx.limits)
                {
                    // The core waits to hear that this client caught up.
                    ctx.submit(CoreMsg::Drained { conn: self.id })?;
                }
                w.out.clear();
                w.pos = 0;
            }
            if w.items.is_empty() {
                // A fresh queue goes back to the outbox, so that an idle outbox holds no allocation.
                w.items = VecDeque::new();
                if !self.outbox.take(&mut w.items) {
                    return Err(Gone);
                }
            }
            if w.items.is_empty() {
                // An idle connection keeps no output buffer nor queue.
                self.writing = None;
                return Ok(Turn::Wait);
            }
            if w.out.capacity() == 0 {
                w.out.reserve((w.items.len() * 64).min(WRITE_CHUNK));
            }
            // One chunk at a time, so that reads (and the keep alive) are served in between.
            while w.out.len() < WRITE_CHUNK {
                let Some(m) = w.items.pop_front() else { break };
                match m {
                    Outgoing::Accepted { keep_alive: ka } => {
                        self.keep_alive = u32::from(ka) * 1500;
                        self.deadline = match self.keep_alive {
                            0 => 0,
                            k => ctx.now + u64::from(k),
                        };
                    }
                    Outgoing::Close => {
                        // What precedes a close (a refusing CONNECT, a DISCONNECT) gets a bounded
                        // time.
                        self.states.set(States::CLOSING, true);
                        self.deadline = ctx.now + ms(CLOSE_FLUSH_TIMEOUT);
                        break;
                    }
                    m => {
                        w.weight += m.weight();
                        m.encode(self.version.unwrap_or(Version::V311), &mut w.out);
                    }
                }
            }
        }
        Ok(Turn::Again)
    }
}
#[cfg(test)]
mod tests {
    /// Ten thousand idle connections cost their slab entries (plus the slab's spare room): a field
    /// added to [`super::Conn`] shows in the idle-10k benchmark against mosquitto's 837 bytes per
    /// connection. Box what an idle connection does not use.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_connection_stays_within_128_bytes() {
        let size = std::mem::size_of::<super::Conn>();
        assert!(size <= 128, "a connection is {size} bytes");
    }
}
