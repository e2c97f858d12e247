//! The broker's core: a state machine free of I/O. Events in (a CONNECT, a packet, a closed
//! connection, a clock tick), actions out (packets to send, connections to close, audit records).
//!
//! Every decision of the policy is taken here: logins, PUBLISH (write), SUBSCRIBE, each delivery
//! (read), Wills and retained messages. The network layer ([`super::net`]) only moves bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::audit::{AuditRecord, Peer, Withheld, WithheldDeliveries};
use crate::policy::{Access, ClientRef, Decision};

use super::codec::{
    reason, Ack, ConnAck, Connect, ConnectReason, DecodeError, Disconnect, Packet, Properties,
    Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe, Version, Will,
};
use super::config::BrokerConfig;
use super::identity::Login;
use super::retained::Retained;
use super::security::{LoginRefusal, Security};
use super::session::{ConnId, Delivery, Expiry, InFlight, Message, Origin, Secret, Session};
use super::shared::{self, SharedSubs};
use super::subs::{SubEntry, SubTree};
use crate::enforce::logins::Password;
use crate::policy::passwd::{AuthResult, PasswordFile};
use logins::{Logins, Prepared};

/// How many (client, topic) pairs of withheld deliveries are remembered for the audit log.
const WITHHELD_CAPACITY: usize = 100_000;

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
    },
}

/// Limits and switches taken from the config.
#[derive(Clone, Debug)]
struct Limits {
    max_queued: usize,
    max_queued_bytes: usize,
    /// The session queue's high mark `(deliveries, payload bytes)`: past it, publishers are paused.
    queue_mark: (usize, usize),
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
}

/// The broker's state: sessions, subscriptions, retained messages.
#[derive(Debug)]
pub struct Router {
    limits: Limits,
    security: Arc<Security>,
    /// Boxed: the map's spare capacity then costs a pointer per slot, not a whole session.
    sessions: HashMap<Arc<str>, Box<Session>>,
    /// Client ids by connection, shared with the sessions' keys.
    conns: HashMap<ConnId, Arc<str>>,
    subs: SubTree,
    shared: SharedSubs,
    retained: Retained,
    withheld: WithheldDeliveries,
    /// Remembered logins and CONNECTs waiting for a password check.
    logins: Logins,
    next_auto_id: u64,
    /// QoS 1/2 (and queued QoS 0) deliveries dropped because a queue was full, since the start.
    queue_drops: u64,
    out: Vec<Action>,
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

/// The audit record for a denied ACL decision of session `s`'s client.
fn audit_acl(
    security: &Security,
    wall: SystemTime,
    s: &Session,
    topic: &str,
    access: Access,
    decision: Decision,
) -> Action {
    let explanation = security.explain(who(s), topic, access, decision);
    Action::Audit(Box::new(
        AuditRecord::acl(wall, Some(&s.address), explanation).with_semantics(security.semantics()),
    ))
}

fn send(out: &mut Vec<Action>, conn: ConnId, packet: Packet) {
    out.push(Action::Send { conn, packet });
}

fn reason_props(version: Version, why: &str) -> Properties {
    if version.is_v5() {
        Properties {
            reason_string: Some(why.to_owned()),
            ..Properties::default()
        }
    } else {
        Properties::default()
    }
}

impl Router {
    /// A router with the config's limits and the loaded policy.
    pub fn new(config: &BrokerConfig, security: Arc<Security>) -> Router {
        Router {
            limits: Limits {
                max_queued: config.queue_limits().0,
                max_queued_bytes: config.queue_limits().1,
                queue_mark: super::outbox::Limits::new(config).mark,
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
            },
            security,
            sessions: HashMap::new(),
            conns: HashMap::new(),
            subs: SubTree::default(),
            shared: SharedSubs::default(),
            retained: Retained::default(),
            withheld: WithheldDeliveries::new(WITHHELD_CAPACITY),
            logins: Logins::default(),
            next_auto_id: 0,
            queue_drops: 0,
            out: Vec::new(),
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Deliveries dropped because a session queue was full, since the start.
    pub fn queue_drops(&self) -> u64 {
        self.queue_drops
    }

    /// Replaces the policy (SIGHUP). As Mosquitto's `mosquitto_security_apply_default` does, every
    /// connected client's login is checked again with its stored username and password: a client
    /// the new policy refuses (removed or changed password, anonymous access now off) gets an audit
    /// record and is disconnected (MQTT 5: DISCONNECT 0x87 first), its Will published if the new
    /// policy lets it write the Will's topic. Stored subscriptions are re-checked too: those the new
    /// policy refuses are removed (CVE-2021-34434).
    pub fn set_security(&mut self, security: Arc<Security>) {
        self.security = security;
        // Emptied on every reload; CONNECTs still waiting are checked against the new policy when
        // their verdict comes back (`on_verified`).
        self.logins.cache.clear();
        self.recheck_logins();
        let mut removed = Vec::new();
        for s in self.sessions.values_mut() {
            let denied: Vec<String> = s
                .subscriptions
                .keys()
                .filter(|f| {
                    !self
                        .security
                        .decide(who(s), f, Access::Subscribe)
                        .is_allowed()
                })
                .cloned()
                .collect();
            for f in denied {
                s.subscriptions.remove(&f);
                removed.push((f, s.client_id.clone()));
            }
        }
        for (f, c) in removed {
            unindex(&mut self.subs, &mut self.shared, &f, &c);
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
            } => self.on_verified(conn, ticket, result),
            Event::Tick => self.on_tick(),
        }
    }

    /// Moves the pending actions into `into`.
    pub fn drain_actions(&mut self, into: &mut Vec<Action>) {
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

    fn on_publish(&mut self, conn: ConnId, client_id: &str, mut p: Publish) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let version = s.version;
        if let Some(alias) = p.properties.topic_alias.take() {
            if alias == 0 || alias > self.limits.max_topic_alias {
                return self.kick(
                    conn,
                    reason::TOPIC_ALIAS_INVALID,
                    "topic alias outside 1..=Topic Alias Maximum (MQTT-3.3.2-9)",
                );
            }
            if p.topic.is_empty() {
                match s.t().aliases.get(&alias) {
                    Some(t) => p.topic.clone_from(t),
                    None => return self.kick(conn, reason::PROTOCOL_ERROR, "unknown topic alias"),
                }
            } else {
                s.t_mut().aliases.insert(alias, p.topic.clone());
            }
        } else if p.topic.is_empty() {
            return self.kick(
                conn,
                reason::PROTOCOL_ERROR,
                "empty topic name without a topic alias",
            );
        }
        if p.retain && !self.limits.retain_available {
            return self.kick(conn, 0x9A, "retain is not supported");
        }
        if p.qos == QoS::ExactlyOnce && s.t().incoming_qos2.contains(&p.pkid) {
            // A resent QoS 2 message already received: acknowledge, do not deliver again.
            return send(&mut self.out, conn, Packet::PubRec(Ack::new(p.pkid)));
        }
        if version.is_v5()
            && p.properties.payload_format == Some(1)
            && !super::codec::properties::check_utf8_payload(&p.payload)
        {
            let ack = Ack {
                pkid: p.pkid,
                reason: reason::PAYLOAD_FORMAT_INVALID,
                properties: reason_props(version, "the payload is not UTF-8"),
            };
            match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => send(&mut self.out, conn, Packet::PubAck(ack)),
                QoS::ExactlyOnce => send(&mut self.out, conn, Packet::PubRec(ack)),
            }
            return;
        }
        let decision = self.security.decide(who(s), &p.topic, Access::Write);
        if !decision.is_allowed() {
            let record = audit_acl(
                &self.security,
                self.wall,
                s,
                &p.topic,
                Access::Write,
                decision,
            );
            self.out.push(record);
            let ack = Ack {
                pkid: p.pkid,
                reason: reason::NOT_AUTHORIZED,
                properties: reason_props(version, "not authorised to publish to this topic"),
            };
            match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => send(&mut self.out, conn, Packet::PubAck(ack)),
                QoS::ExactlyOnce => {
                    if !version.is_v5() {
                        // 3.1.1 cannot refuse: the flow completes as if accepted.
                        s.t_mut().incoming_qos2.insert(p.pkid);
                    }
                    send(&mut self.out, conn, Packet::PubRec(ack))
                }
            }
            return;
        }
        let origin = Origin {
            username: s.username.clone(),
            client_id: client_id.to_owned(),
        };
        let (qos, pkid) = (p.qos, p.pkid);
        let msg = self.message(p.topic, p.payload, qos, p.retain, p.properties, origin);
        let matched = self.publish(msg);
        let code = if matched == 0 && version.is_v5() {
            reason::NO_MATCHING_SUBSCRIBERS
        } else {
            reason::SUCCESS
        };
        let ack = Ack {
            pkid,
            reason: code,
            properties: Properties::default(),
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => send(&mut self.out, conn, Packet::PubAck(ack)),
            QoS::ExactlyOnce => {
                if let Some(s) = self.sessions.get_mut(client_id) {
                    s.t_mut().incoming_qos2.insert(pkid);
                }
                send(&mut self.out, conn, Packet::PubRec(ack));
            }
        }
    }

    fn message(
        &self,
        topic: String,
        payload: Arc<[u8]>,
        qos: QoS,
        retain: bool,
        p: Properties,
        origin: Origin,
    ) -> Arc<Message> {
        let expires_at = p
            .message_expiry
            .and_then(|secs| self.now.checked_add(Duration::from_secs(u64::from(secs))));
        Arc::new(Message {
            topic,
            payload,
            qos,
            retain,
            properties: Properties {
                payload_format: p.payload_format,
                content_type: p.content_type,
                response_topic: p.response_topic,
                correlation_data: p.correlation_data,
                user: p.user,
                ..Properties::default()
            },
            expires_at,
            origin,
        })
    }

    /// Stores a retained message and delivers `msg` to every matching subscription, and to one
    /// member of every matching shared group. Returns the number of subscribed clients and groups
    /// that matched.
    fn publish(&mut self, msg: Arc<Message>) -> usize {
        if msg.retain {
            self.retained.set(&msg);
        }
        let mut targets: HashMap<Box<str>, Option<(super::codec::SubOptions, Vec<u32>)>> =
            HashMap::new();
        self.subs.for_each_match(&msg.topic, |client, entry| {
            Session::merge(targets.entry(client.into()).or_default(), entry);
        });
        let mut matched = targets.len();
        for (client, merged) in targets {
            if let Some((options, ids)) = merged {
                if options.no_local && *client == msg.origin.client_id {
                    continue;
                }
                let retain = options.retain_as_published && msg.retain;
                self.deliver(&client, &msg, options.qos, retain, ids);
            }
        }
        // One member of each matching shared group, in turn (No Local cannot be set on these).
        let mut chosen: Vec<(Box<str>, SubEntry)> = Vec::new();
        matched += self.shared.choose(&msg.topic, |client, entry| {
            chosen.push((client.into(), entry))
        });
        for (client, entry) in chosen {
            let retain = entry.options.retain_as_published && msg.retain;
            let ids = entry.id.into_iter().collect();
            self.deliver(&client, &msg, entry.options.qos, retain, ids);
        }
        matched
    }

    /// Delivers `msg` to one client, checking its read access first.
    fn deliver(
        &mut self,
        client_id: &str,
        msg: &Arc<Message>,
        max_qos: QoS,
        retain: bool,
        sub_ids: Vec<u32>,
    ) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let decision = self.security.decide(who(s), &msg.topic, Access::Read);
        if !decision.is_allowed() {
            if self.withheld.note(client_id, &msg.topic) == Withheld::First {
                let record = audit_acl(
                    &self.security,
                    self.wall,
                    s,
                    &msg.topic,
                    Access::Read,
                    decision,
                );
                self.out.push(record);
            }
            return;
        }
        let delivery = Delivery {
            msg: Arc::clone(msg),
            qos: msg.qos.min(max_qos),
            retain,
            sub_ids,
        };
        if !push(s, delivery, &self.limits, &mut self.out, self.now) {
            self.queue_drops += 1;
        }
    }

    fn on_puback(&mut self, client_id: &str, pkid: u16) {
        let security = Arc::clone(&self.security);
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if let Some(InFlight::Publish(d)) = s.t().inflight.get(&pkid) {
            if d.qos == QoS::AtLeastOnce {
                s.t_mut().inflight.remove(&pkid);
                pump(s, &self.limits, &security, &mut self.out, self.now);
            }
        }
    }

    fn on_pubrec(&mut self, conn: ConnId, client_id: &str, a: Ack) {
        let security = Arc::clone(&self.security);
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        match s.t().inflight.get(&a.pkid) {
            Some(InFlight::Publish(d)) if d.qos == QoS::ExactlyOnce => {
                if a.reason >= 0x80 {
                    // MQTT 5: the receiver refused it; the flow ends here.
                    s.t_mut().inflight.remove(&a.pkid);
                    pump(s, &self.limits, &security, &mut self.out, self.now);
                } else {
                    s.t_mut().inflight.insert(a.pkid, InFlight::Release);
                    send(&mut self.out, conn, Packet::PubRel(Ack::new(a.pkid)));
                }
            }
            Some(InFlight::Release) => {
                send(&mut self.out, conn, Packet::PubRel(Ack::new(a.pkid)));
            }
            _ => {
                let mut rel = Ack::new(a.pkid);
                if s.version.is_v5() {
                    rel.reason = reason::PACKET_IDENTIFIER_NOT_FOUND;
                }
                send(&mut self.out, conn, Packet::PubRel(rel));
            }
        }
    }

    fn on_pubrel(&mut self, conn: ConnId, client_id: &str, pkid: u16) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let mut comp = Ack::new(pkid);
        if !s.t_mut().incoming_qos2.remove(&pkid) && s.version.is_v5() {
            comp.reason = reason::PACKET_IDENTIFIER_NOT_FOUND;
        }
        s.settle();
        send(&mut self.out, conn, Packet::PubComp(comp));
    }

    fn on_pubcomp(&mut self, client_id: &str, pkid: u16) {
        let security = Arc::clone(&self.security);
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if let Some(InFlight::Release) = s.t().inflight.get(&pkid) {
            s.t_mut().inflight.remove(&pkid);
            pump(s, &self.limits, &security, &mut self.out, self.now);
        }
    }

    fn on_subscribe(&mut self, conn: ConnId, client_id: &str, sub: Subscribe) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let id = sub.properties.subscription_ids.first().copied();
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut send_retained = Vec::new();
        for f in sub.filters {
            // `$share/GROUP/FILTER` (the codec refused the malformed ones and, from MQTT 5 clients,
            // No Local with them: MQTT-3.8.3-4). The policy strips `$share/GROUP/`.
            let is_shared = shared::split(&f.filter).is_some();
            let decision = self.security.decide(who(s), &f.filter, Access::Subscribe);
            if !decision.is_allowed() {
                let record = audit_acl(
                    &self.security,
                    self.wall,
                    s,
                    &f.filter,
                    Access::Subscribe,
                    decision,
                );
                self.out.push(record);
                codes.push(reason::NOT_AUTHORIZED);
                continue;
            }
            let entry = SubEntry {
                options: f.options,
                id,
            };
            let new = if is_shared {
                self.shared.insert(&f.filter, client_id, entry)
            } else {
                self.subs.insert(&f.filter, client_id, entry)
            };
            s.subscriptions.insert(f.filter.clone(), entry);
            codes.push(f.options.qos as u8);
            // Mosquitto's `log_type subscribe` line: client id, QoS, filter.
            self.out.push(Action::Log(format!(
                "{client_id} {} {}",
                f.options.qos as u8, f.filter
            )));
            let rh = f.options.retain_handling;
            // A shared subscription gets no retained messages (MQTT 5 §3.3.1.3 sends them when a
            // new non-shared subscription is made; Mosquitto from 2.0.13 on, 2.0.11 still does).
            if !is_shared && (rh == 0 || (rh == 1 && new)) {
                send_retained.push((f.filter, f.options.qos, id));
            }
        }
        send(
            &mut self.out,
            conn,
            Packet::SubAck(SubAck {
                pkid: sub.pkid,
                codes,
                properties: Properties::default(),
            }),
        );
        for (filter, qos, id) in send_retained {
            for msg in self.retained.matching(&filter, self.now) {
                if self.limits.check_retain_source {
                    let origin = ClientRef {
                        username: msg.origin.username.as_deref(),
                        client_id: &msg.origin.client_id,
                    };
                    if !self
                        .security
                        .decide(origin, &msg.topic, Access::Write)
                        .is_allowed()
                    {
                        continue;
                    }
                }
                // Retained messages sent on subscribe keep RETAIN 1 (MQTT-3.3.1-8).
                self.deliver(client_id, &msg, qos, true, id.into_iter().collect());
            }
        }
    }

    fn on_unsubscribe(&mut self, conn: ConnId, client_id: &str, u: Unsubscribe) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let mut codes = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            let decision = self.security.decide(who(s), f, Access::Unsubscribe);
            if !decision.is_allowed() {
                let record = audit_acl(
                    &self.security,
                    self.wall,
                    s,
                    f,
                    Access::Unsubscribe,
                    decision,
                );
                self.out.push(record);
                codes.push(reason::NOT_AUTHORIZED);
                continue;
            }
            let existed = s.subscriptions.remove(f).is_some();
            unindex(&mut self.subs, &mut self.shared, f, client_id);
            codes.push(if existed {
                reason::SUCCESS
            } else {
                reason::NO_SUBSCRIPTION_EXISTED
            });
        }
        send(
            &mut self.out,
            conn,
            Packet::UnsubAck(UnsubAck {
                pkid: u.pkid,
                codes,
                properties: Properties::default(),
            }),
        );
    }

    fn on_disconnect(&mut self, conn: ConnId, client_id: &str, d: Disconnect) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if let Some(secs) = d.properties.session_expiry {
            if s.expiry == Expiry::OnClose && secs != 0 {
                // MQTT-3.14.2-2.
                return self.kick(
                    conn,
                    reason::PROTOCOL_ERROR,
                    "session expiry set on DISCONNECT after 0 on CONNECT",
                );
            }
            s.expiry = Expiry::from_interval(secs);
        }
        if d.reason != reason::DISCONNECT_WITH_WILL {
            // MQTT-3.1.2-10: a normal DISCONNECT discards the Will.
            s.will = None;
        }
        self.out.push(Action::Close { conn });
        self.detach(conn);
    }

    // ----- disconnection, Wills, expiry -----

    /// The connection is gone: detach it from its session, send or schedule the Will, end the
    /// session if it expires on close.
    fn detach(&mut self, conn: ConnId) {
        let Some(client_id) = self.conns.remove(&conn) else {
            return;
        };
        let total = self.withheld.forget_client(&client_id);
        if total > 1 {
            self.log(format!(
                "{total} deliveries to client {client_id:?} were withheld (the audit log records each topic once)"
            ));
        }
        let Some(s) = self.sessions.get_mut(&client_id) else {
            return;
        };
        if s.conn != Some(conn) {
            return;
        }
        s.conn = None;
        s.password = None;
        if let Some(t) = s.traffic.as_deref_mut() {
            t.backlog_since = None;
        }
        s.clear_aliases();
        s.disconnected_at = Some(self.now);
        let mut will_now = None;
        if let Some(w) = s.will.take() {
            let delay = w.properties.will_delay.unwrap_or(0);
            if delay == 0 || s.expiry == Expiry::OnClose {
                will_now = Some(w);
            } else {
                s.will_due = self.now.checked_add(Duration::from_secs(u64::from(delay)));
                s.will = Some(w);
            }
        }
        let ends = s.expiry == Expiry::OnClose;
        let line = format!("Client {client_id} disconnected.");
        self.log(line);
        if let Some(w) = will_now {
            self.send_will(&client_id, w);
        }
        if ends {
            self.end_session(&client_id);
        }
    }

    /// Publishes a Will, if its client may write its topic.
    fn send_will(&mut self, client_id: &str, w: Box<Will>) {
        let Some(s) = self.sessions.get(client_id) else {
            return;
        };
        let decision = self.security.decide(who(s), &w.topic, Access::Write);
        if !decision.is_allowed() {
            let record = audit_acl(
                &self.security,
                self.wall,
                s,
                &w.topic,
                Access::Write,
                decision,
            );
            self.out.push(record);
            return;
        }
        let origin = Origin {
            username: s.username.clone(),
            client_id: client_id.to_owned(),
        };
        let msg = self.message(w.topic, w.payload, w.qos, w.retain, w.properties, origin);
        self.publish(msg);
    }

    /// Ends a session: sends a pending delayed Will, removes its subscriptions and queue.
    fn end_session(&mut self, client_id: &str) {
        let will = self.sessions.get_mut(client_id).and_then(|s| {
            // A disconnected session still holding a Will has a delayed Will pending.
            s.will_due = None;
            if s.conn.is_none() {
                s.will.take()
            } else {
                None
            }
        });
        if let Some(w) = will {
            self.send_will(client_id, w);
        }
        if let Some(s) = self.sessions.remove(client_id) {
            for filter in s.subscriptions.keys() {
                unindex(&mut self.subs, &mut self.shared, filter, client_id);
            }
            if s.t().dropped > 0 {
                self.out.push(Action::Notice(format!(
                    "client {client_id}: {} messages dropped because its queue was full",
                    s.t().dropped
                )));
            }
        }
    }

    fn on_tick(&mut self) {
        let now = self.now;
        let mut wills = Vec::new();
        let mut ended = Vec::new();
        for (id, s) in &self.sessions {
            if s.conn.is_some() {
                continue;
            }
            if s.will_due.is_some_and(|t| t <= now) {
                wills.push(id.clone());
            }
            let after = match s.expiry {
                Expiry::OnClose => Some(Duration::ZERO),
                Expiry::After(secs) => Some(Duration::from_secs(u64::from(secs))),
                Expiry::Never => self.limits.persistent_expiration,
            };
            if let (Some(after), Some(at)) = (after, s.disconnected_at) {
                if at.checked_add(after).is_some_and(|end| end <= now) {
                    ended.push(id.clone());
                }
            }
        }
        for id in wills {
            let will = self.sessions.get_mut(&id).and_then(|s| {
                s.will_due = None;
                s.will.take()
            });
            if let Some(w) = will {
                self.send_will(&id, w);
            }
        }
        for id in ended {
            self.end_session(&id);
        }
        self.retained.expire(now);
    }
}

/// Removes `client`'s subscription `filter` from the index that holds it: the shared groups for
/// `$share/GROUP/FILTER`, the trie otherwise. `true` if it was there.
fn unindex(subs: &mut SubTree, shared: &mut SharedSubs, filter: &str, client: &str) -> bool {
    if shared::split(filter).is_some() {
        shared.remove(filter, client)
    } else {
        subs.remove(filter, client)
    }
}

/// Sends or queues a delivery to a session.
///
/// A connected client's queue past its high mark asks for the publisher to be paused
/// ([`Action::Backlogged`]); it is bounded by `max_queued_messages`/`max_queued_bytes` once the
/// client is slow (paused publishers for [`super::pacing::SLOW_AFTER`]) or disconnected, and by
/// the high mark plus what may be in transit otherwise. Every drop is logged and counted: returns
/// `false` for a drop.
#[must_use]
fn push(
    s: &mut Session,
    d: Delivery,
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
        .is_some_and(|t| now.duration_since(t) >= super::pacing::SLOW_AFTER);
    let paced = s.conn.is_some() && !slow;
    let full = if paced {
        s.t().queue.len() >= limits.queue_mark.0.max(limits.max_queued) + super::pacing::IN_TRANSIT
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
    s.enqueue(d);
    if let Some(conn) = s.conn {
        let t = s.t();
        if t.queue.len() >= limits.queue_mark.0 || t.queued_bytes >= limits.queue_mark.1 {
            if t.backlog_since.is_none() {
                s.t_mut().backlog_since = Some(now);
            }
            out.push(Action::Backlogged { conn });
        }
    }
    true
}

/// A connected client's queue back below its low mark (a quarter of `max_queued_*`) ends its
/// backlog: [`Action::Relieved`].
fn end_backlog(s: &mut Session, limits: &Limits, out: &mut Vec<Action>) {
    let (Some(conn), Some(t)) = (s.conn, s.traffic.as_deref_mut()) else {
        return;
    };
    if t.backlog_since.is_some()
        && t.queue.len() < limits.queue_mark.0.div_ceil(2)
        && t.queued_bytes < limits.queue_mark.1.div_ceil(2)
    {
        t.backlog_since = None;
        out.push(Action::Relieved { conn });
    }
}

/// Sends a QoS 0 delivery to a connected client (if it fits the client's Maximum Packet Size).
fn send_qos0(s: &Session, d: Delivery, out: &mut Vec<Action>, now: Instant) {
    if let Some(conn) = s.conn {
        let p = d.to_publish(0, false, now);
        if fits(s, &p) {
            send(out, conn, Packet::Publish(p));
        }
    }
}

/// Puts a QoS 1/2 delivery in flight.
fn start(s: &mut Session, d: Delivery, out: &mut Vec<Action>, now: Instant) {
    let Some(conn) = s.conn else {
        s.requeue(d);
        return;
    };
    let Some(pkid) = s.allocate_pkid() else {
        s.requeue(d);
        return;
    };
    let p = d.to_publish(pkid, false, now);
    if !fits(s, &p) {
        return;
    }
    s.t_mut().inflight.insert(pkid, InFlight::Publish(d));
    send(out, conn, Packet::Publish(p));
}

/// Moves queued deliveries into flight while there is room, re-checking expiry and read access.
fn pump(
    s: &mut Session,
    limits: &Limits,
    security: &Security,
    out: &mut Vec<Action>,
    now: Instant,
) {
    let limit = s.inflight_limit(limits.max_inflight);
    // Bounded by the queue's length.
    while s.conn.is_some() && s.t().inflight.len() < limit {
        let Some(d) = s.dequeue() else {
            break;
        };
        if d.msg.expired(now)
            || !security
                .decide(who(s), &d.msg.topic, Access::Read)
                .is_allowed()
        {
            continue;
        }
        if d.qos == QoS::AtMostOnce {
            // Queued by `queue_qos0_messages`: sent as it is, never in flight.
            send_qos0(s, d, out, now);
        } else {
            start(s, d, out, now);
        }
    }
    end_backlog(s, limits, out);
    s.settle();
}

/// Whether a PUBLISH fits the client's Maximum Packet Size (MQTT-3.1.2-25: else it is dropped).
fn fits(s: &Session, p: &Publish) -> bool {
    match s.max_packet_size {
        None => true,
        Some(max) => {
            let size = super::codec::encoded_len(&Packet::Publish(p.clone()), s.version);
            size <= max as usize
        }
    }
}

mod connect;
mod logins;

#[cfg(test)]
mod tests;
