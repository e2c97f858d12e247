//! One connection's outgoing queue: what the core has decided to send and its connection has not
//! yet written to the socket.
//!
//! It is what bounds the memory an online client can cost:
//! * past its *high mark* (half of `max_queued_messages`/`max_queued_bytes`) the outbox is
//!   congested: the core pauses the publishers that fill it (see `net::pacing`) and asks to hear
//!   when it is back below its *low mark* (a quarter), so a client that reads loses nothing;
//! * a *slow* client (one that held its publishers back too long) gets Mosquitto's rules
//!   (`db__ready_for_flight` in `src/database.c`, 2.0.11): a QoS 0 PUBLISH is dropped when
//!   `max_queued_messages` packets, or `max_queued_bytes` payload bytes, already wait for the socket,
//!   and the caller counts and logs it; for any other client a QoS 0 PUBLISH is dropped only past
//!   [`Limits::cap`], which the pauses keep it far below;
//! * every other packet (QoS 1/2 PUBLISH, bounded by the in-flight window, and the answers to what the
//!   client sends) is queued, up to the in-flight window plus [`CONTROL_HEADROOM`]: beyond that the
//!   client sends without reading, and it is disconnected.
//!
//! An idle connection's queue holds no allocation: the items live in a `VecDeque` that the writer swaps
//! out whole when it is told, and a queued PUBLISH is about 64 bytes (its properties boxed, and only
//! when there are some) instead of a whole [`Packet`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::codec::{self, Ack, Packet, Props, Publish, QoS, Version};
use super::config::BrokerConfig;
use super::fanout::OutPublish;
use super::pacing::IN_TRANSIT;
use crate::policy::topic::TopicName;

/// Packets other than QoS 0 PUBLISH that may wait for one connection's socket beyond its in-flight
/// window, before it counts as a client that sends without reading.
pub const CONTROL_HEADROOM: usize = 4096;
/// The high mark in packets when `max_queued_messages` sets none.
const DEFAULT_MARK_PACKETS: usize = 1000;
/// The high mark in payload bytes when `max_queued_bytes` sets none.
const DEFAULT_MARK_BYTES: usize = 4 << 20;

/// A PUBLISH waiting in an outbox.
#[derive(Debug)]
pub struct QueuedPublish {
    topic: Option<TopicName>,
    payload: Arc<[u8]>,
    properties: Props,
    pkid: u16,
    qos: QoS,
    dup: bool,
    retain: bool,
}

/// Which acknowledgement an [`Outgoing::Ack`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// PUBACK.
    PubAck,
    /// PUBREC.
    PubRec,
    /// PUBREL.
    PubRel,
    /// PUBCOMP.
    PubComp,
}

/// What a connection receives from the core.
#[derive(Debug)]
pub enum Outgoing {
    /// A PUBLISH.
    Publish(QueuedPublish),
    /// A PUBLISH written from its message's shared bytes (see [`super::fanout`]).
    Shared(OutPublish),
    /// An acknowledgement without properties.
    Ack {
        /// Which one.
        kind: AckKind,
        /// Packet identifier.
        pkid: u16,
        /// MQTT 5 reason code.
        reason: u8,
    },
    /// PINGRESP.
    PingResp,
    /// Any other packet.
    Other(Box<Packet>),
    /// The CONNECT was accepted: apply this keep alive (seconds, 0: none).
    Accepted {
        /// Keep alive in force.
        keep_alive: u16,
    },
    /// Write what came before, then close.
    Close,
}

impl Outgoing {
    /// The queued form of a packet.
    pub fn from_packet(packet: Packet) -> Outgoing {
        let ack = |kind, a: Ack| {
            if a.properties.is_empty() {
                Outgoing::Ack {
                    kind,
                    pkid: a.pkid,
                    reason: a.reason,
                }
            } else {
                Outgoing::Other(Box::new(match kind {
                    AckKind::PubAck => Packet::PubAck(a),
                    AckKind::PubRec => Packet::PubRec(a),
                    AckKind::PubRel => Packet::PubRel(a),
                    AckKind::PubComp => Packet::PubComp(a),
                }))
            }
        };
        match packet {
            Packet::Publish(Publish {
                dup,
                qos,
                retain,
                topic,
                pkid,
                payload,
                properties,
            }) => Outgoing::Publish(QueuedPublish {
                topic,
                payload,
                properties,
                pkid,
                qos,
                dup,
                retain,
            }),
            Packet::PubAck(a) => ack(AckKind::PubAck, a),
            Packet::PubRec(a) => ack(AckKind::PubRec, a),
            Packet::PubRel(a) => ack(AckKind::PubRel, a),
            Packet::PubComp(a) => ack(AckKind::PubComp, a),
            Packet::PingResp => Outgoing::PingResp,
            other => Outgoing::Other(Box::new(other)),
        }
    }

    /// The packet again (for [`Outgoing::Accepted`] and [`Outgoing::Close`]: `None`).
    pub fn into_packet(self) -> Option<Packet> {
        Some(match self {
            Outgoing::Shared(p) => Packet::Publish(p.to_publish()),
            Outgoing::Publish(p) => Packet::Publish(Publish {
                dup: p.dup,
                qos: p.qos,
                retain: p.retain,
                topic: p.topic,
                pkid: p.pkid,
                payload: p.payload,
                properties: p.properties,
            }),
            Outgoing::Ack { kind, pkid, reason } => {
                let a = Ack {
                    pkid,
                    reason,
                    properties: Props::default(),
                };
                match kind {
                    AckKind::PubAck => Packet::PubAck(a),
                    AckKind::PubRec => Packet::PubRec(a),
                    AckKind::PubRel => Packet::PubRel(a),
                    AckKind::PubComp => Packet::PubComp(a),
                }
            }
            Outgoing::PingResp => Packet::PingResp,
            Outgoing::Other(p) => *p,
            Outgoing::Accepted { .. } | Outgoing::Close => return None,
        })
    }

    /// What this item counts for in the bounds: `(packets, control packets, payload bytes)`.
    pub fn weight(&self) -> Weight {
        match self {
            Outgoing::Publish(p) => Weight {
                packets: 1,
                control: usize::from(p.qos != QoS::AtMostOnce),
                bytes: p.payload.len(),
            },
            Outgoing::Shared(p) => Weight {
                packets: 1,
                control: usize::from(p.qos != QoS::AtMostOnce),
                bytes: p.payload_len(),
            },
            Outgoing::Accepted { .. } | Outgoing::Close => Weight::default(),
            _ => Weight {
                packets: 1,
                control: 1,
                bytes: 0,
            },
        }
    }

    /// Appends its encoding for a peer speaking `version` (nothing for the non-packets).
    pub fn encode(self, version: Version, out: &mut Vec<u8>) {
        if let Outgoing::Shared(p) = &self {
            return p.encode(version, out);
        }
        if let Some(p) = self.into_packet() {
            codec::encode(&p, version, out);
        }
    }
}

/// What queued items count for in the bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Weight {
    /// Packets.
    pub packets: usize,
    /// Packets other than QoS 0 PUBLISH.
    pub control: usize,
    /// Payload bytes of the PUBLISH packets.
    pub bytes: usize,
}

impl std::ops::AddAssign for Weight {
    fn add_assign(&mut self, o: Weight) {
        self.packets += o.packets;
        self.control += o.control;
        self.bytes += o.bytes;
    }
}

/// The bounds of every outbox, from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Packets waiting beyond which a slow client's QoS 0 is dropped (0: no bound of this kind).
    pub messages: usize,
    /// Payload bytes waiting beyond which a slow client's QoS 0 is dropped (0: no bound of this
    /// kind).
    pub bytes: usize,
    /// Control packets waiting beyond which the client is disconnected.
    pub control: usize,
    /// The high mark: `(packets, payload bytes)` waiting from which the outbox is congested.
    pub mark: (usize, usize),
    /// Packets waiting beyond which any client's QoS 0 is dropped: the high mark plus what may be
    /// in transit when its publishers are paused.
    pub cap: usize,
}

impl Limits {
    /// `max_queued_messages`/`max_queued_bytes` (see [`BrokerConfig::queue_limits`]) and the
    /// in-flight window (`max_inflight_messages`, 0 meaning 65,535) plus [`CONTROL_HEADROOM`].
    pub fn new(config: &BrokerConfig) -> Limits {
        let (messages, bytes) = config.queue_limits();
        let inflight = match config.max_inflight_messages {
            0 => usize::from(u16::MAX),
            n => usize::from(n),
        };
        let half = |limit: usize, default: usize| match limit {
            0 => default,
            n => (n / 2).max(1),
        };
        let mark = (
            half(messages, DEFAULT_MARK_PACKETS),
            half(bytes, DEFAULT_MARK_BYTES),
        );
        Limits {
            messages,
            bytes,
            control: inflight + CONTROL_HEADROOM,
            mark,
            cap: messages.max(mark.0) + IN_TRANSIT,
        }
    }

    fn qos0_full(&self, w: &Weight, slow: bool) -> bool {
        if !slow {
            return w.packets >= self.cap;
        }
        (self.messages != 0 && w.packets >= self.messages)
            || (self.bytes != 0 && w.bytes >= self.bytes)
    }

    /// `true` when `w` is at or past the high mark.
    pub fn above_mark(&self, w: &Weight) -> bool {
        w.packets >= self.mark.0 || w.bytes >= self.mark.1
    }

    /// `true` when `w` is below the low mark (half the high mark).
    pub fn below_low_mark(&self, w: &Weight) -> bool {
        w.packets < self.mark.0.div_ceil(2) && w.bytes < self.mark.1.div_ceil(2)
    }
}

/// What became of a packet given to [`Outbox::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, and the outbox is past its high mark (and its client is not slow): whoever sent
    /// this should be paused, and [`Outbox::watch`] asks to hear when it has caught up.
    Congested,
    /// A QoS 0 PUBLISH dropped: the client is slow and its queue is at
    /// `max_queued_messages`/`max_queued_bytes`, or it is at [`Limits::cap`].
    Dropped,
    /// Not queued: too many control packets wait; the client sends without reading and must be
    /// disconnected.
    Overflow,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Outgoing>,
    /// Queued, or taken by the connection and not yet written.
    waiting: Weight,
    /// Close without writing what waits (a client that does not read).
    abort: bool,
    /// The core waits to hear that the outbox is below its low mark.
    watched: bool,
    /// The client is slow: Mosquitto's limits apply and it is never congested.
    slow: bool,
}

/// Whoever writes a connection's outbox to its socket: told when the outbox needs attention.
pub trait Doorbell: Send + Sync {
    /// Something was queued into an empty outbox, or the connection must be aborted; `token` is
    /// the one given to [`Outbox::new`]. The writer may be told later, once whoever pushes has
    /// finished its batch (the broker's core wakes a connection thread once per batch).
    fn ring(&self, token: usize);
}

/// One connection's outgoing queue, shared by the core (which pushes) and the connection's writer
/// (which takes everything at once and writes it).
pub struct Outbox {
    state: Mutex<State>,
    /// Rung when something is queued into an empty queue, or on abort.
    bell: Option<Arc<dyn Doorbell>>,
    token: usize,
    /// This connection's client is paused: its connection reads no more PUBLISH packets.
    paused: AtomicBool,
}

impl Default for Outbox {
    /// An outbox nobody is told about (for tests).
    fn default() -> Outbox {
        Outbox {
            state: Mutex::default(),
            bell: None,
            token: 0,
            paused: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("state", &self.state)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An empty outbox whose writer is told through `bell`, with `token`.
    pub fn new(bell: Arc<dyn Doorbell>, token: usize) -> Outbox {
        Outbox {
            state: Mutex::default(),
            bell: Some(bell),
            token,
            paused: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent counters: go on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ring(&self) {
        if let Some(bell) = &self.bell {
            bell.ring(self.token);
        }
    }

    /// Queues a packet within `limits`.
    pub fn push(&self, packet: Packet, limits: &Limits) -> Pushed {
        self.push_item(Outgoing::from_packet(packet), limits)
    }

    /// Queues a packet in its queued form ([`Outgoing::Publish`], [`Outgoing::Shared`],
    /// [`Outgoing::Ack`], [`Outgoing::PingResp`] or [`Outgoing::Other`]) within `limits`, as
    /// [`Outbox::push`] does.
    pub fn push_item(&self, item: Outgoing, limits: &Limits) -> Pushed {
        let w = item.weight();
        let mut st = self.lock();
        if w.control == 0 {
            if limits.qos0_full(&st.waiting, st.slow) {
                return Pushed::Dropped;
            }
        } else if st.waiting.control >= limits.control {
            return Pushed::Overflow;
        }
        st.waiting += w;
        let congested = !st.slow && limits.above_mark(&st.waiting);
        self.queue(st, item);
        if congested {
            Pushed::Congested
        } else {
            Pushed::Queued
        }
    }

    /// Asks to hear (from [`Outbox::written`]) when the outbox is below its low mark. Returns
    /// `false`, asking nothing, if it already is.
    pub fn watch(&self, limits: &Limits) -> bool {
        let mut st = self.lock();
        st.watched = !limits.below_low_mark(&st.waiting);
        st.watched
    }

    /// Marks the client slow (Mosquitto's limits apply, it is never congested) or no longer slow.
    pub fn set_slow(&self, slow: bool) {
        self.lock().slow = slow;
    }

    /// Pauses this connection's client (its connection reads no more PUBLISH packets), or resumes
    /// it: then the outbox rings, so that its connection takes up the packets it holds now rather
    /// than at its next retry.
    pub fn set_paused(&self, paused: bool) {
        if self.paused.swap(paused, Ordering::Relaxed) && !paused {
            self.ring();
        }
    }

    /// `true` while this connection's client is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Queues [`Outgoing::Accepted`] or [`Outgoing::Close`] (never bounded).
    pub fn push_signal(&self, item: Outgoing) {
        let st = self.lock();
        self.queue(st, item);
    }

    fn queue(&self, mut st: MutexGuard<'_, State>, item: Outgoing) {
        let was_empty = st.items.is_empty();
        st.items.push_back(item);
        drop(st);
        if was_empty {
            // The writer takes the whole queue when told: one ring per empty → non-empty.
            self.ring();
        }
    }

    /// Makes the writer close the connection now, without writing what waits.
    pub fn abort(&self) {
        self.lock().abort = true;
        self.ring();
    }

    /// `true` once [`Outbox::abort`] was called.
    pub fn is_aborted(&self) -> bool {
        self.lock().abort
    }

    /// Swaps the queue with `into` (which must be empty): the writer then owns what was queued.
    /// Returns `false` when the connection is to be aborted.
    pub fn take(&self, into: &mut VecDeque<Outgoing>) -> bool {
        let mut st = self.lock();
        std::mem::swap(&mut st.items, into);
        !st.abort
    }

    /// Items taken with [`Outbox::take`] are now written. Returns `true` when this brought a
    /// watched outbox below its low mark (once per [`Outbox::watch`]): the core must hear it.
    #[must_use]
    pub fn written(&self, w: Weight, limits: &Limits) -> bool {
        let mut st = self.lock();
        st.waiting.packets -= w.packets;
        st.waiting.control -= w.control;
        st.waiting.bytes -= w.bytes;
        if st.watched && limits.below_low_mark(&st.waiting) {
            st.watched = false;
            return true;
        }
        false
    }

    /// What waits (queued or being written).
    pub fn waiting(&self) -> Weight {
        self.lock().waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::Properties;

    fn publish(qos: QoS, payload: usize) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: Some("a/b".try_into().unwrap()),
            pkid: u16::from(qos != QoS::AtMostOnce),
            payload: Arc::from(vec![7u8; payload]),
            properties: Props::default(),
        })
    }

    const LIMITS: Limits = Limits {
        messages: 3,
        bytes: 0,
        control: 5,
        mark: (100, 1 << 20),
        cap: 1000,
    };

    /// An outbox whose client is slow: Mosquitto's limits.
    fn slow() -> Outbox {
        let o = Outbox::default();
        o.set_slow(true);
        o
    }

    fn weight(items: &VecDeque<Outgoing>) -> Weight {
        let mut w = Weight::default();
        for item in items {
            w += item.weight();
        }
        w
    }

    #[test]
    fn a_queued_packet_is_small_and_encodes_as_the_packet() {
        assert!(
            std::mem::size_of::<Outgoing>() <= 64,
            "{}",
            std::mem::size_of::<Outgoing>()
        );
        let mut props = Properties::default();
        props.user.push(("k".into(), "v".into()));
        let with_props = Packet::Publish(Publish {
            properties: props.into(),
            ..match publish(QoS::AtLeastOnce, 5) {
                Packet::Publish(p) => p,
                _ => unreachable!(),
            }
        });
        let denied = Packet::PubAck(Ack {
            pkid: 9,
            reason: 0x87,
            properties: Properties {
                reason_string: Some("no".into()),
                ..Properties::default()
            }
            .into(),
        });
        for p in [
            publish(QoS::AtMostOnce, 3),
            with_props,
            Packet::PubRec(Ack::new(4)),
            denied,
            Packet::PingResp,
        ] {
            for v in [Version::V311, Version::V5] {
                let mut direct = Vec::new();
                codec::encode(&p, v, &mut direct);
                let mut queued = Vec::new();
                Outgoing::from_packet(p.clone()).encode(v, &mut queued);
                assert_eq!(direct, queued, "{p:?}");
            }
        }
    }

    #[test]
    fn a_slow_clients_qos_0_is_dropped_at_max_queued_messages_and_nothing_else_is() {
        let o = slow();
        for _ in 0..3 {
            assert_eq!(
                o.push(publish(QoS::AtMostOnce, 10), &LIMITS),
                Pushed::Queued
            );
        }
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 10), &LIMITS),
            Pushed::Dropped
        );
        // QoS 1 and acknowledgements still go, up to the control bound.
        assert_eq!(
            o.push(publish(QoS::AtLeastOnce, 10), &LIMITS),
            Pushed::Queued
        );
        for _ in 0..4 {
            assert_eq!(o.push(Packet::PubAck(Ack::new(1)), &LIMITS), Pushed::Queued);
        }
        assert_eq!(o.push(Packet::PingResp, &LIMITS), Pushed::Overflow);
        assert_eq!(
            o.waiting(),
            Weight {
                packets: 8,
                control: 5,
                bytes: 40
            }
        );
        // Taken is still waiting until written; then there is room again.
        let mut taken = VecDeque::new();
        assert!(o.take(&mut taken));
        assert_eq!(taken.len(), 8);
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 10), &LIMITS),
            Pushed::Dropped
        );
        assert!(!o.written(weight(&taken), &LIMITS), "nobody asked");
        assert_eq!(o.waiting(), Weight::default());
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 10), &LIMITS),
            Pushed::Queued
        );
    }

    #[test]
    fn a_slow_clients_qos_0_is_dropped_at_max_queued_bytes() {
        let limits = Limits {
            messages: 0,
            bytes: 100,
            ..LIMITS
        };
        let o = slow();
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 60), &limits),
            Pushed::Queued
        );
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 60), &limits),
            Pushed::Queued
        );
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 1), &limits),
            Pushed::Dropped
        );
    }

    #[test]
    fn past_its_high_mark_an_outbox_is_congested_and_says_when_it_is_below_its_low_mark() {
        let limits = Limits {
            mark: (4, 1 << 20),
            cap: 6,
            ..LIMITS
        };
        let o = Outbox::default();
        for _ in 0..3 {
            assert_eq!(o.push(publish(QoS::AtMostOnce, 1), &limits), Pushed::Queued);
        }
        // Past `max_queued_messages` (3), but not slow: nothing is dropped below the cap.
        for _ in 0..3 {
            assert_eq!(
                o.push(publish(QoS::AtMostOnce, 1), &limits),
                Pushed::Congested
            );
        }
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 1), &limits),
            Pushed::Dropped
        );
        assert!(o.watch(&limits), "above the low mark");
        let mut taken = VecDeque::new();
        assert!(o.take(&mut taken));
        let mut first = taken.split_off(1);
        std::mem::swap(&mut first, &mut taken);
        assert!(
            !o.written(weight(&first), &limits),
            "5 wait: above the low mark (2)"
        );
        assert!(o.written(weight(&taken), &limits), "below it: told once");
        assert!(!o.watch(&limits), "already below it");
        // A slow client is never congested, and Mosquitto's limit applies.
        o.set_slow(true);
        for _ in 0..3 {
            assert_eq!(o.push(publish(QoS::AtMostOnce, 1), &limits), Pushed::Queued);
        }
        assert_eq!(
            o.push(publish(QoS::AtMostOnce, 1), &limits),
            Pushed::Dropped
        );
    }

    #[test]
    fn the_marks_are_half_and_a_quarter_of_the_limits() {
        let config = |text: &str| {
            let conf =
                crate::policy::conf::MosquittoConf::parse("t.conf", text.as_bytes()).unwrap();
            BrokerConfig::from_conf(&conf).unwrap()
        };
        let l = Limits::new(&config("listener 1\n"));
        assert_eq!(
            (l.messages, l.mark, l.cap),
            (1000, (500, 4 << 20), 1000 + IN_TRANSIT)
        );
        let l = Limits::new(&config(
            "listener 1\nmax_queued_messages 0\nmax_queued_bytes 100\n",
        ));
        assert_eq!((l.messages, l.bytes, l.mark), (0, 100, (1000, 50)));
        let w = |packets, bytes| Weight {
            packets,
            control: 0,
            bytes,
        };
        assert!(l.above_mark(&w(0, 50)) && !l.above_mark(&w(999, 49)));
        assert!(l.below_low_mark(&w(499, 24)) && !l.below_low_mark(&w(0, 25)));
    }

    #[test]
    fn abort_is_seen_by_take() {
        let o = Outbox::default();
        o.push_signal(Outgoing::Close);
        o.abort();
        let mut taken = VecDeque::new();
        assert!(!o.take(&mut taken));
    }
}
