//! What the router tells the store (`persistence true`) and takes back from it at start.
//!
//! A session is durable while it outlives its connection (Clean Session 0, or a Session Expiry
//! Interval above 0). Every change of a durable session, of its deliveries (queued, in flight,
//! released, done) and incoming QoS 2 ids, and of the retained messages becomes an
//! [`Action::Store`] among the router's actions, in order; the network layer writes them before it
//! sends the packets of the same turn (see [`crate::broker::store`]).

use super::*;
use crate::broker::store::record::Clock;
use crate::broker::store::{DeliveryState, Restored, SessionImage};

impl Router {
    fn clock(&self) -> Clock {
        Clock {
            now: self.now,
            wall: self.wall,
        }
    }

    /// A session's own state changed (connected, subscribed, disconnected, its Will sent): kept
    /// while it outlives its connection, forgotten with what it holds once it does not.
    pub(super) fn save_session(&mut self, client_id: &str) {
        if !self.limits.persist {
            return;
        }
        let clock = self.clock();
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if s.expiry == Expiry::OnClose {
            if s.durable {
                s.durable = false;
                let id = Arc::clone(&s.client_id);
                self.out.push(Action::Store(Change::SessionEnded(id)));
            }
            return;
        }
        if s.durable {
            let image = image(s, &clock);
            self.out
                .push(Action::Store(Change::Session(Box::new(image))));
        } else {
            s.durable = true;
            let out = &mut self.out;
            describe(s, &clock, &mut |c| out.push(Action::Store(c)));
        }
    }

    /// A session ends: the store forgets it and what it holds.
    pub(super) fn forget_session(&mut self, s: &Session) {
        if s.durable {
            let id = Arc::clone(&s.client_id);
            self.out.push(Action::Store(Change::SessionEnded(id)));
        }
    }

    /// The retained message of a topic was set (`Some`) or cleared.
    pub(super) fn save_retained(&mut self, msg: &Arc<Message>) {
        if !self.limits.persist {
            return;
        }
        let stored = (!msg.payload.is_empty()).then(|| Arc::clone(msg));
        self.out.push(Action::Store(Change::Retained {
            topic: msg.topic.clone(),
            msg: stored,
        }));
    }

    /// Everything durable, for a store that must be written again from memory (after a failed
    /// write).
    pub fn durable_state(&mut self) -> Vec<Change> {
        let clock = self.clock();
        let mut out = Vec::new();
        for m in self.retained.all() {
            out.push(Change::Retained {
                topic: m.topic.clone(),
                msg: Some(m),
            });
        }
        for s in self.sessions.values_mut() {
            if s.durable {
                describe(s, &clock, &mut |c| out.push(c));
            }
        }
        out
    }

    /// Takes back what the store held at start: retained messages, and durable sessions
    /// (disconnected, their subscriptions indexed, their deliveries queued or in flight as they were).
    /// A session whose client was connected when the broker stopped is taken as disconnected now:
    /// its Will, if it had one, is due after its delay.
    pub fn restore(&mut self, restored: Restored) {
        let clock = Clock {
            now: Instant::now(),
            wall: SystemTime::now(),
        };
        for m in restored.retained {
            self.retained.set(&Arc::new(m));
        }
        for r in restored.sessions {
            let img = r.image;
            let id = Arc::clone(&img.client_id);
            let mut s = Box::new(Session::new(Arc::clone(&id), img.version));
            s.username = img.username.map(Arc::from);
            s.expiry = img.expiry;
            s.durable = true;
            s.disconnected_at = Some(
                img.disconnected_at
                    .map_or(clock.now, |t| clock.to_instant(t)),
            );
            s.will_due = match (&img.will, img.will_due) {
                (Some(_), Some(due)) => Some(clock.to_instant(due)),
                (Some(w), None) => {
                    let delay = w.properties.will_delay.unwrap_or(0);
                    clock.now.checked_add(Duration::from_secs(u64::from(delay)))
                }
                (None, _) => None,
            };
            s.will = img.will;
            for (filter, entry) in img.subscriptions {
                super::subscribe::index(&mut self.subs, &mut self.shared, &filter, &id, entry);
                s.subscriptions.insert(filter, entry);
            }
            for (seq, state) in r.deliveries {
                s.last_seq = s.last_seq.max(seq);
                match state {
                    DeliveryState::Queued(mut d) => {
                        d.seq = seq;
                        s.enqueue(d);
                    }
                    DeliveryState::Sent(pkid, mut d) => {
                        d.seq = seq;
                        s.t_mut().inflight.insert(pkid, InFlight::Publish(d));
                    }
                    DeliveryState::Released(pkid) => {
                        s.t_mut().inflight.insert(pkid, InFlight::Release(seq));
                    }
                }
            }
            for pkid in r.incoming {
                s.t_mut().incoming_qos2.insert(pkid);
            }
            s.settle();
            self.sessions.insert(id, s);
        }
    }
}

/// A session's own state, for the store.
fn image(s: &Session, clock: &Clock) -> SessionImage {
    let mut subscriptions: Vec<(TopicFilter, SubEntry)> = s
        .subscriptions
        .iter()
        .map(|(f, e)| (f.clone(), *e))
        .collect();
    subscriptions.sort_by(|a, b| a.0.cmp(&b.0));
    SessionImage {
        client_id: Arc::clone(&s.client_id),
        username: s.username.as_deref().map(str::to_owned),
        version: s.version,
        expiry: s.expiry,
        disconnected_at: s.disconnected_at.map(|t| clock.to_wall(t)),
        subscriptions,
        will: s.will.clone(),
        will_due: s.will_due.map(|t| clock.to_wall(t)),
    }
}

/// The whole of a session for the store: its state, every delivery (numbered if it was not), its
/// incoming QoS 2 ids.
fn describe(s: &mut Session, clock: &Clock, out: &mut dyn FnMut(Change)) {
    out(Change::Session(Box::new(image(s, clock))));
    let id = Arc::clone(&s.client_id);
    let mut last = s.last_seq;
    let mut number = |seq: &mut u64| {
        if *seq == 0 {
            last += 1;
            *seq = last;
        }
        *seq
    };
    if let Some(t) = s.traffic.as_deref_mut() {
        for (pkid, f) in t.inflight.iter_mut() {
            let (seq, state) = match f {
                InFlight::Publish(d) => (number(&mut d.seq), DeliveryState::Sent(*pkid, d.clone())),
                InFlight::Release(seq) => (number(seq), DeliveryState::Released(*pkid)),
            };
            out(Change::Delivery {
                client_id: Arc::clone(&id),
                seq,
                state,
            });
        }
        for d in t.queue.iter_mut() {
            let seq = number(&mut d.seq);
            out(Change::Delivery {
                client_id: Arc::clone(&id),
                seq,
                state: DeliveryState::Queued(d.clone()),
            });
        }
        for pkid in &t.incoming_qos2 {
            out(Change::Received {
                client_id: Arc::clone(&id),
                pkid: *pkid,
                held: true,
            });
        }
    }
    s.last_seq = last;
}

/// A delivery to `s` now stands as `state` (`d` numbered if it was not): stored if `s` is durable.
pub(super) fn keep(s: &mut Session, d: &mut Delivery, pkid: Option<u16>, out: &mut Vec<Action>) {
    if !s.durable {
        return;
    }
    if d.seq == 0 {
        s.last_seq += 1;
        d.seq = s.last_seq;
    }
    let state = match pkid {
        Some(pkid) => DeliveryState::Sent(pkid, d.clone()),
        None => DeliveryState::Queued(d.clone()),
    };
    out.push(Action::Store(Change::Delivery {
        client_id: Arc::clone(&s.client_id),
        seq: d.seq,
        state,
    }));
}

/// A QoS 2 delivery's PUBREL was sent: its message is no longer needed.
pub(super) fn released(s: &Session, seq: u64, pkid: u16, out: &mut Vec<Action>) {
    if s.durable && seq != 0 {
        out.push(Action::Store(Change::Delivery {
            client_id: Arc::clone(&s.client_id),
            seq,
            state: DeliveryState::Released(pkid),
        }));
    }
}

/// A delivery is over.
pub(super) fn done(s: &Session, seq: u64, out: &mut Vec<Action>) {
    if s.durable && seq != 0 {
        out.push(Action::Store(Change::Delivered {
            client_id: Arc::clone(&s.client_id),
            seq,
        }));
    }
}

/// An incoming QoS 2 id is held (PUBREC sent) or released (PUBREL received).
pub(super) fn received(s: &Session, pkid: u16, held: bool, out: &mut Vec<Action>) {
    if s.durable {
        out.push(Action::Store(Change::Received {
            client_id: Arc::clone(&s.client_id),
            pkid,
            held,
        }));
    }
}
