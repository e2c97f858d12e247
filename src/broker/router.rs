//! The broker's core: a state machine free of I/O. Events in (a CONNECT, a packet, a closed
//! connection, a clock tick), actions out (packets to send, connections to close, audit records).
//!
//! Every decision of the policy is taken here: logins, PUBLISH (write), SUBSCRIBE, each delivery
//! (read), Wills and retained messages. The network layer ([`super::net`]) only moves bytes.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::audit::{AuditRecord, Peer};
use crate::policy::topic::{TopicFilter, TopicName};
use crate::policy::{Access, ClientRef};

use super::codec::{
    reason, Ack, ConnAck, Connect, ConnectReason, DecodeError, Disconnect, Packet, Properties,
    Props, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe, Version, Will,
};
use super::config::BrokerConfig;
use super::fanout::OutPublish;
use super::identity::Login;
use super::outbox::Outgoing;
use super::retained::Retained;
use super::security::{LoginRefusal, Security};
use super::session::{ConnId, Delivery, Expiry, InFlight, Message, Origin, Secret, Session};
use super::shared::SharedSubs;
use super::store::Change;
use super::subs::{SubEntry, SubTree};
use crate::enforce::logins::Password;
use crate::enforce::shadow::Shadow;
use crate::policy::passwd::{AuthResult, PasswordFile};
use logins::{Logins, Prepared};

/// Something that happened.
// Packets dominate; boxing them would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// A connection sent its CONNECT.
    Connect {
        /// The connection.
        conn: ConnId,
        /// The peer's IP address.
        address: String,
        /// Where the username comes from: the CONNECT, or the client certificate.
        login: Login,
        /// The CONNECT.
        connect: Box<Connect>,
    },
    /// A connected client sent a packet.
    Packet {
        /// The connection.
        conn: ConnId,
        /// The packet.
        packet: Packet,
    },
    /// A client sent bytes that are not an acceptable packet.
    Invalid {
        /// The connection.
        conn: ConnId,
        /// Why.
        error: DecodeError,
    },
    /// The connection is gone (closed by the peer, failed, or timed out).
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A password check asked for by [`Action::Verify`] is done.
    Verified {
        /// The connection whose CONNECT waits for it.
        conn: ConnId,
        /// The ticket of the [`Action::Verify`].
        ticket: u64,
        /// The verdict of the password file.
        result: AuthResult,
        /// The verdict of the shadow password file, when [`Action::Verify`] named a shadow policy
        /// with one (checked on the worker too).
        shadow: Option<AuthResult>,
    },
    /// Time passed: Will delays, session expiry.
    Tick,
}

/// Something the network layer must do.
// Packets dominate; boxing them would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action {
    /// Send a packet.
    Send {
        /// The connection.
        conn: ConnId,
        /// The packet.
        packet: Packet,
    },
    /// Send a delivery's PUBLISH, written from its message's shared bytes (see
    /// [`super::fanout`]). Only [`Router::take_actions`] hands these over;
    /// [`Router::drain_actions`] turns them into [`Action::Send`] of the same packet.
    Deliver {
        /// The connection.
        conn: ConnId,
        /// The PUBLISH.
        publish: OutPublish,
    },
    /// The CONNECT was accepted; apply this keep alive (seconds, 0: none).
    Accepted {
        /// The connection.
        conn: ConnId,
        /// Keep alive in force.
        keep_alive: u16,
    },
    /// Flush what was sent, then close the connection.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Write an audit record.
    Audit(Box<AuditRecord>),
    /// Log a line (verbose).
    Log(String),
    /// Log a line always (data was lost).
    Notice(String),
    /// Keep a change of durable state (`persistence true`): the network layer writes it to the
    /// store, and sends nothing of this turn before it is on disk.
    Store(Change),
    /// The session queue of this connection's client is past its high mark: pause whoever sent
    /// the PUBLISH being handled (see [`super::pacing`]).
    Backlogged {
        /// The subscriber's connection.
        conn: ConnId,
    },
    /// That queue is back below its low mark.
    Relieved {
        /// The subscriber's connection.
        conn: ConnId,
    },
    /// Check a CONNECT's password off the router's thread, then send back [`Event::Verified`] with
    /// the same connection and ticket.
    Verify {
        /// The connection.
        conn: ConnId,
        /// Echoed in [`Event::Verified`].
        ticket: u64,
        /// The file to check against.
        passwords: Arc<PasswordFile>,
        /// The username.
        username: String,
        /// The password (zeroed when dropped).
        password: Password,
        /// The shadow policy to check the login against on the worker too ([`Shadow::verify_login`]).
        shadow: Option<Arc<Shadow>>,
    },
}

impl Action {
    /// For [`Action::Send`] and [`Action::Deliver`]: the connection and the packet in the form its
    /// outbox queues it; `None` for the other actions.
    pub fn into_queued(self) -> Option<(ConnId, Outgoing)> {
        match self {
            Action::Send { conn, packet } => Some((conn, Outgoing::from_packet(packet))),
            Action::Deliver { conn, publish } => Some((conn, Outgoing::Shared(publish))),
            _ => None,
        }
    }

    /// For an [`Action::Verify`]: the checks a worker runs, done now on this thread, as the
    /// [`Event::Verified`] it sends back (for tests and the fuzz target); `None` for the other actions.
    pub fn verified_now(&self) -> Option<Event> {
        let Action::Verify {
            conn,
            ticket,
            passwords,
            username,
            password,
            shadow,
        } = self
        else {
            return None;
        };
        let password = Some(password.expose());
        Some(Event::Verified {
            conn: *conn,
            ticket: *ticket,
            result: passwords.verify(username, password),
            shadow: shadow
                .as_ref()
                .and_then(|s| s.verify_login(username, password)),
        })
    }
}

/// Limits and switches taken from the config.
#[derive(Clone, Debug)]
struct Limits {
    max_queued: usize,
    max_queued_bytes: usize,
    /// The marks and the cap, shared with the outboxes: a session queue past its high mark pauses
    /// publishers, and one that is paced is bounded by the cap.
    queue: super::outbox::Limits,
    max_inflight: u16,
    max_packet_size: usize,
    max_keepalive: u16,
    max_topic_alias: u16,
    retain_available: bool,
    allow_zero_length_clientid: bool,
    auto_id_prefix: String,
    check_retain_source: bool,
    persistent_expiration: Option<Duration>,
    queue_qos0: bool,
    /// `persistence true`: sessions that outlive their connection, their deliveries and retained
    /// messages are described to the store ([`Action::Store`]).
    persist: bool,
}

/// The broker's state: sessions, subscriptions, retained messages.
#[derive(Debug)]
pub struct Router {
    limits: Limits,
    /// The policy, and the one point its decisions pass through.
    authz: Authorizer,
    /// Boxed: the map's spare capacity then costs a pointer per slot, not a whole session.
    sessions: HashMap<Arc<str>, Box<Session>>,
    /// Client ids by connection, shared with the sessions' keys. Hashed with FxHash: the keys
    /// are the broker's own counter, not chosen by clients.
    conns: FxHashMap<ConnId, Arc<str>>,
    subs: SubTree,
    shared: SharedSubs,
    retained: Retained,
    /// Remembered logins and CONNECTs waiting for a password check.
    logins: Logins,
    next_auto_id: u64,
    /// QoS 1/2 (and queued QoS 0) deliveries dropped because a queue was full, since the start.
    queue_drops: u64,
    out: Vec<Action>,
    /// The subscriptions a message matches, kept between messages (empty between them) so that
    /// routing one does not allocate the list.
    targets: Vec<(Arc<str>, SubEntry)>,
    now: Instant,
    wall: SystemTime,
}

/// The identity the policy sees for a session.
fn who(s: &Session) -> ClientRef<'_> {
    ClientRef {
        username: s.username.as_deref(),
        client_id: &s.client_id,
    }
}

fn send(out: &mut Vec<Action>, conn: ConnId, packet: Packet) {
    out.push(Action::Send { conn, packet });
}

/// Properties carrying a Reason String. The router states outcomes the same way for every MQTT
/// version, in MQTT 5's reason codes; the codec writes what each version has room for (3.1.1 acks
/// carry neither a reason code nor properties, its SUBACK failure is 0x80: `super::codec`).
fn reason_string(why: &str) -> Properties {
    Properties {
        reason_string: Some(why.to_owned()),
        ..Properties::default()
    }
}

impl Router {
    /// A router with the config's limits and the loaded policy.
    pub fn new(config: &BrokerConfig, security: Arc<Security>) -> Router {
        Router {
            limits: Limits {
                max_queued: config.queue_limits().0,
                max_queued_bytes: config.queue_limits().1,
                queue: super::outbox::Limits::new(config),
                max_inflight: config.max_inflight_messages,
                max_packet_size: config.max_packet_size,
                max_keepalive: config.max_keepalive,
                max_topic_alias: config.max_topic_alias,
                retain_available: config.retain_available,
                allow_zero_length_clientid: config.allow_zero_length_clientid,
                auto_id_prefix: config.auto_id_prefix.clone(),
                check_retain_source: config.check_retain_source,
                persistent_expiration: config.persistent_client_expiration,
                queue_qos0: config.queue_qos0_messages,
                persist: config.persistence.is_some(),
            },
            authz: Authorizer::new(security),
            sessions: HashMap::new(),
            conns: FxHashMap::default(),
            subs: SubTree::default(),
            shared: SharedSubs::default(),
            retained: Retained::default(),
            logins: Logins::default(),
            next_auto_id: 0,
            queue_drops: 0,
            out: Vec::new(),
            targets: Vec::new(),
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Deliveries dropped because a session queue was full, since the start.
    pub fn queue_drops(&self) -> u64 {
        self.queue_drops
    }

    /// Counts decisions and logins in `metrics` from now on.
    pub fn set_metrics(&mut self, metrics: Arc<crate::enforce::metrics::Metrics>) {
        self.authz.metrics = Some(metrics);
    }

    /// The counters, with metrics on.
    pub fn metrics(&self) -> Option<&Arc<crate::enforce::metrics::Metrics>> {
        self.authz.metrics.as_ref()
    }

    /// Replaces the policy (SIGHUP). As Mosquitto's `mosquitto_security_apply_default` does, every
    /// connected client's login is checked again with its stored username and password: a client
    /// the new policy refuses (removed or changed password, anonymous access now off) gets an audit
    /// record and is disconnected (MQTT 5: DISCONNECT 0x87 first), its Will published if the new
    /// policy lets it write the Will's topic. Stored subscriptions are re-checked too: those the new
    /// policy refuses are removed (CVE-2021-34434).
    pub fn set_security(&mut self, security: Arc<Security>) {
        self.authz.security = security;
        // Emptied on every reload; CONNECTs still waiting are checked against the new policy when
        // their verdict comes back (`on_verified`).
        self.logins.cache.clear();
        self.recheck_logins();
        let mut removed = Vec::new();
        for s in self.sessions.values_mut() {
            for f in self.authz.denied_subscriptions(s, self.wall, &mut self.out) {
                s.subscriptions.remove(&f);
                removed.push((f, s.client_id.clone()));
            }
        }
        for (f, c) in &removed {
            unindex(&mut self.subs, &mut self.shared, f, c);
        }
        for (_, c) in removed {
            self.save_session(&c);
        }
    }

    /// The client id of a connection, once its CONNECT is accepted.
    pub fn client_id(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).map(|c| &**c)
    }

    /// Number of sessions (connected or not).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Handles one event at time `now` (`wall` for audit timestamps); the actions wait in
    /// [`Router::drain_actions`].
    pub fn handle(&mut self, event: Event, now: Instant, wall: SystemTime) {
        self.now = now;
        self.wall = wall;
        match event {
            Event::Connect {
                conn,
                address,
                login,
                connect,
            } => {
                if self.forget_pending(conn) {
                    // A second CONNECT while the first one's login is checked.
                    self.log(format!("connection {conn}: a second CONNECT"));
                    return self.out.push(Action::Close { conn });
                }
                self.on_connect(conn, address, login, *connect)
            }
            Event::Packet { conn, packet } => {
                if let Some(packet) = self.hold_if_pending(conn, packet) {
                    self.on_packet(conn, packet);
                }
            }
            Event::Invalid { conn, error } => {
                self.forget_pending(conn);
                self.on_invalid(conn, &error)
            }
            Event::Closed { conn } => {
                self.forget_pending(conn);
                self.detach(conn)
            }
            Event::Verified {
                conn,
                ticket,
                result,
                shadow,
            } => self.on_verified(conn, ticket, result, shadow),
            Event::Tick => self.on_tick(),
        }
    }

    /// Moves the pending actions into `into`, every delivery as [`Action::Send`] of its PUBLISH
    /// packet (for readers of the packets).
    pub fn drain_actions(&mut self, into: &mut Vec<Action>) {
        let from = into.len();
        self.take_actions(into);
        for a in &mut into[from..] {
            if let Action::Deliver { conn, publish } = a {
                let packet = Packet::Publish(publish.to_publish());
                *a = Action::Send {
                    conn: *conn,
                    packet,
                };
            }
        }
    }

    /// Moves the pending actions into `into` as they are, deliveries as [`Action::Deliver`] (for
    /// the network layer, which writes them from their shared bytes).
    pub fn take_actions(&mut self, into: &mut Vec<Action>) {
        if into.is_empty() {
            // No copy of the actions (a fan-out makes one per subscriber): the buffers trade places.
            std::mem::swap(into, &mut self.out);
        } else {
            into.append(&mut self.out);
        }
    }

    fn log(&mut self, line: String) {
        self.out.push(Action::Log(line));
    }

    // ----- packets -----

    fn on_packet(&mut self, conn: ConnId, packet: Packet) {
        let Some(client_id) = self.conns.get(&conn).cloned() else {
            return;
        };
        match packet {
            Packet::Publish(p) => self.on_publish(conn, &client_id, p),
            Packet::PubAck(a) => self.on_puback(&client_id, a.pkid),
            Packet::PubRec(a) => self.on_pubrec(conn, &client_id, a),
            Packet::PubRel(a) => self.on_pubrel(conn, &client_id, a.pkid),
            Packet::PubComp(a) => self.on_pubcomp(&client_id, a.pkid),
            Packet::Subscribe(s) => self.on_subscribe(conn, &client_id, s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(conn, &client_id, u),
            Packet::PingReq => send(&mut self.out, conn, Packet::PingResp),
            Packet::Disconnect(d) => self.on_disconnect(conn, &client_id, d),
            Packet::Auth(_) => self.kick(
                conn,
                reason::PROTOCOL_ERROR,
                "AUTH without enhanced authentication",
            ),
            other => {
                let why = format!("a client sent {}", other.name());
                self.log(why);
                self.kick(conn, reason::PROTOCOL_ERROR, "unexpected packet")
            }
        }
    }

    fn version_of(&self, conn: ConnId) -> Option<Version> {
        self.conns
            .get(&conn)
            .and_then(|c| self.sessions.get(c))
            .map(|s| s.version)
    }

    /// Disconnects a client for a protocol violation: v5 gets DISCONNECT with `code`; the Will is
    /// published (the close is not a normal disconnection).
    fn kick(&mut self, conn: ConnId, code: u8, why: &str) {
        if self.version_of(conn).is_some_and(Version::is_v5) {
            send(
                &mut self.out,
                conn,
                Packet::Disconnect(Disconnect::with_reason(code, why)),
            );
        }
        let line = format!("disconnecting connection {conn}: {why}");
        self.log(line);
        self.out.push(Action::Close { conn });
        self.detach(conn);
    }

    fn on_invalid(&mut self, conn: ConnId, error: &DecodeError) {
        if !self.conns.contains_key(&conn) {
            // Before or in the CONNECT.
            if let DecodeError::UnsupportedProtocol {
                known_name: true, ..
            } = error
            {
                // MQTT-3.1.2-2: CONNACK 1 (0x84 in 5.0's numbering), then close.
                self.refuse(conn, Version::V311, ConnectReason::UnsupportedProtocol);
            } else {
                self.out.push(Action::Close { conn });
            }
            self.log(format!("connection {conn}: {error}"));
            return;
        }
        let why = error.to_string();
        self.kick(conn, error.reason_code(), &why);
    }
}

mod authorize;
mod connect;
mod durable;
mod flow;
mod lifecycle;
mod logins;
mod publish;
mod subscribe;

use authorize::Authorizer;
use flow::{pump, push};
use subscribe::unindex;

#[cfg(test)]
mod tests;
