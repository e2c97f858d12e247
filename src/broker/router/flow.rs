//! Outgoing deliveries: QoS 0 sent at once, QoS 1/2 put in flight or queued within the limits
//! (asking for the publisher to be paused past the queue's high mark: see [`crate::broker::pacing`]),
//! and the acknowledgements that move the queue on.

use super::durable;
use super::*;
use crate::broker::outbox::Weight;
use crate::broker::session::Traffic;

impl Router {
    pub(super) fn on_puback(&mut self, client_id: &str, pkid: u16) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if let Some(InFlight::Publish(d)) = s.t().inflight.get(&pkid) {
            if d.qos == QoS::AtLeastOnce {
                let seq = d.seq;
                s.t_mut().inflight.remove(&pkid);
                durable::done(s, seq, &mut self.out);
                pump(
                    s,
                    &self.limits,
                    &mut self.authz,
                    self.wall,
                    &mut self.out,
                    self.now,
                );
            }
        }
    }

    pub(super) fn on_pubrec(&mut self, conn: ConnId, client_id: &str, a: Ack) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        match s.t().inflight.get(&a.pkid) {
            Some(InFlight::Publish(d)) if d.qos == QoS::ExactlyOnce => {
                let seq = d.seq;
                if a.reason >= 0x80 {
                    // MQTT 5: the receiver refused it; the flow ends here.
                    s.t_mut().inflight.remove(&a.pkid);
                    durable::done(s, seq, &mut self.out);
                    pump(
                        s,
                        &self.limits,
                        &mut self.authz,
                        self.wall,
                        &mut self.out,
                        self.now,
                    );
                } else {
                    s.t_mut().inflight.insert(a.pkid, InFlight::Release(seq));
                    durable::released(s, seq, a.pkid, &mut self.out);
                    send(&mut self.out, conn, Packet::PubRel(Ack::new(a.pkid)));
                }
            }
            Some(InFlight::Release(_)) => {
                send(&mut self.out, conn, Packet::PubRel(Ack::new(a.pkid)));
            }
            _ => {
                let rel = Ack {
                    reason: reason::PACKET_IDENTIFIER_NOT_FOUND,
                    ..Ack::new(a.pkid)
                };
                send(&mut self.out, conn, Packet::PubRel(rel));
            }
        }
    }

    pub(super) fn on_pubrel(&mut self, conn: ConnId, client_id: &str, pkid: u16) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let mut comp = Ack::new(pkid);
        if s.t_mut().incoming_qos2.remove(&pkid) {
            durable::received(s, pkid, false, &mut self.out);
        } else {
            comp.reason = reason::PACKET_IDENTIFIER_NOT_FOUND;
        }
        s.settle();
        send(&mut self.out, conn, Packet::PubComp(comp));
    }

    pub(super) fn on_pubcomp(&mut self, client_id: &str, pkid: u16) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if let Some(&InFlight::Release(seq)) = s.t().inflight.get(&pkid) {
            s.t_mut().inflight.remove(&pkid);
            durable::done(s, seq, &mut self.out);
            pump(
                s,
                &self.limits,
                &mut self.authz,
                self.wall,
                &mut self.out,
                self.now,
            );
        }
    }
}

/// Sends or queues a delivery to a session.
///
/// A connected client's queue past its high mark asks for the publisher to be paused
/// ([`Action::Backlogged`]); it is bounded by `max_queued_messages`/`max_queued_bytes` once the
/// client is slow (paused publishers for [`crate::broker::pacing::SLOW_AFTER`]) or disconnected, and by
/// the high mark plus what may be in transit otherwise. Every drop is logged and counted: returns
/// `false` for a drop.
#[must_use]
pub(super) fn push(
    s: &mut Session,
    mut d: Delivery,
    limits: &Limits,
    out: &mut Vec<Action>,
    now: Instant,
) -> bool {
    if d.qos == QoS::AtMostOnce {
        // QoS 0 goes out now, or never unless `queue_qos0_messages` keeps it for a disconnected
        // persistent session (as Mosquitto).
        if s.conn.is_some() {
            send_qos0(s, d, out, now);
            return true;
        }
        if !limits.queue_qos0 {
            return true;
        }
    }
    if s.conn.is_some()
        && s.t().queue.is_empty()
        && s.t().inflight.len() < s.inflight_limit(limits.max_inflight)
    {
        start(s, d, out, now);
        return true;
    }
    let slow = s
        .t()
        .backlog_since
        .is_some_and(|t| now.duration_since(t) >= crate::broker::pacing::SLOW_AFTER);
    let paced = s.conn.is_some() && !slow;
    let full = if paced {
        s.t().queue.len() >= limits.queue.cap
    } else {
        s.queue_full(limits.max_queued, limits.max_queued_bytes)
    };
    if full {
        s.t_mut().dropped += 1;
        if s.t().dropped == 1 {
            // Counted from here on; the total is logged when the session ends.
            out.push(Action::Notice(format!(
                "client {}: its queue is full ({} messages, {} payload bytes; max_queued_messages {}, max_queued_bytes {}): messages to it are being dropped",
                s.client_id,
                s.t().queue.len(),
                s.t().queued_bytes,
                limits.max_queued,
                limits.max_queued_bytes,
            )));
        }
        return false;
    }
    durable::keep(s, &mut d, None, out);
    s.enqueue(d);
    if let Some(conn) = s.conn {
        let t = s.t();
        if limits.queue.above_mark(&backlog(t)) {
            if t.backlog_since.is_none() {
                s.t_mut().backlog_since = Some(now);
            }
            out.push(Action::Backlogged { conn });
        }
    }
    true
}

/// What a session queue holds, measured as the outboxes are (for the shared marks).
fn backlog(t: &Traffic) -> Weight {
    Weight {
        packets: t.queue.len(),
        control: 0,
        bytes: t.queued_bytes,
    }
}

/// A connected client's queue back below its low mark (a quarter of `max_queued_*`) ends its
/// backlog: [`Action::Relieved`].
pub(super) fn end_backlog(s: &mut Session, limits: &Limits, out: &mut Vec<Action>) {
    let (Some(conn), Some(t)) = (s.conn, s.traffic.as_deref_mut()) else {
        return;
    };
    if t.backlog_since.is_some() && limits.queue.below_low_mark(&backlog(t)) {
        t.backlog_since = None;
        out.push(Action::Relieved { conn });
    }
}

/// Sends a QoS 0 delivery to a connected client (if it fits the client's Maximum Packet Size).
pub(super) fn send_qos0(s: &Session, d: Delivery, out: &mut Vec<Action>, now: Instant) {
    if let Some(conn) = s.conn {
        send_publish(s, conn, d, 0, out, now);
    }
}

/// Sends delivery `d` with packet identifier `pkid` to `conn`, `s`'s connection, if it fits the
/// client's Maximum Packet Size: shared with the message's other deliveries when it has no
/// property of its own ([`OutPublish`]). Returns `false` when it does not fit.
fn send_publish(
    s: &Session,
    conn: ConnId,
    d: Delivery,
    pkid: u16,
    out: &mut Vec<Action>,
    now: Instant,
) -> bool {
    if !OutPublish::shareable(&d.msg, &d.sub_ids, s.version) {
        let p = d.to_publish(pkid, false, now);
        if !fits(s, &p) {
            return false;
        }
        send(out, conn, Packet::Publish(p));
        return true;
    }
    let publish = OutPublish {
        msg: d.msg,
        pkid,
        qos: d.qos,
        dup: false,
        retain: d.retain,
    };
    if s.max_packet_size
        .is_some_and(|max| publish.encoded_len(s.version) > max as usize)
    {
        return false;
    }
    out.push(Action::Deliver { conn, publish });
    true
}

/// Puts a QoS 1/2 delivery in flight.
pub(super) fn start(s: &mut Session, mut d: Delivery, out: &mut Vec<Action>, now: Instant) {
    let Some(conn) = s.conn else {
        durable::keep(s, &mut d, None, out);
        s.requeue(d);
        return;
    };
    let Some(pkid) = s.allocate_pkid() else {
        durable::keep(s, &mut d, None, out);
        s.requeue(d);
        return;
    };
    // Kept in the store in the same turn: the core writes a turn's changes before the packets
    // that depend on them.
    if send_publish(s, conn, d.clone(), pkid, out, now) {
        durable::keep(s, &mut d, Some(pkid), out);
        s.t_mut().inflight.insert(pkid, InFlight::Publish(d));
    } else {
        durable::done(s, d.seq, out);
    }
}

/// Moves queued deliveries into flight while there is room, re-checking expiry and read access.
pub(super) fn pump(
    s: &mut Session,
    limits: &Limits,
    authz: &mut Authorizer,
    wall: SystemTime,
    out: &mut Vec<Action>,
    now: Instant,
) {
    let limit = s.inflight_limit(limits.max_inflight);
    // Bounded by the queue's length.
    while s.conn.is_some() && s.t().inflight.len() < limit {
        let Some(d) = s.dequeue() else {
            break;
        };
        if d.msg.expired(now) || !authz.authorize(s, d.msg.topic.as_str(), Access::Read, wall, out)
        {
            durable::done(s, d.seq, out);
            continue;
        }
        if d.qos == QoS::AtMostOnce {
            // Queued by `queue_qos0_messages`: sent as it is, never in flight.
            durable::done(s, d.seq, out);
            send_qos0(s, d, out, now);
        } else {
            start(s, d, out, now);
        }
    }
    end_backlog(s, limits, out);
    s.settle();
}

/// Whether a PUBLISH fits the client's Maximum Packet Size (MQTT-3.1.2-25: else it is dropped).
pub(super) fn fits(s: &Session, p: &Publish) -> bool {
    match s.max_packet_size {
        None => true,
        Some(max) => {
            let size = crate::broker::codec::encoded_len(&Packet::Publish(p.clone()), s.version);
            size <= max as usize
        }
    }
}
