//! A client's session: its subscriptions, the messages in flight both ways, its queue, its Will.
//! Pure state; [`super::router::Router`] drives it.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};

use super::codec::{Props, Publish, QoS, SubOptions, Version, Will};
use crate::policy::topic::{TopicFilter, TopicName};

/// Identifies a network connection.
pub type ConnId = u64;

/// Who published a message (for `check_retain_source`, `no_local`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The publisher's username (shared with its session: no copy per message).
    pub username: Option<Arc<str>>,
    /// The publisher's client id (shared with its session).
    pub client_id: Arc<str>,
}

/// An application message as the broker stores and forwards it.
#[derive(Clone, Debug)]
pub struct Message {
    /// Topic name.
    pub topic: TopicName,
    /// Payload.
    pub payload: Arc<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
    /// The RETAIN flag it was published with.
    pub retain: bool,
    /// Properties passed through to subscribers (payload format, content type, response topic,
    /// correlation data, user properties); boxed, and nothing when there are none.
    pub properties: Props,
    /// When it expires (Message Expiry Interval).
    pub expires_at: Option<Instant>,
    /// Who published it.
    pub origin: Origin,
    /// Its encoding shared by its deliveries (see [`super::fanout`]); empty until first used.
    pub encoded: super::fanout::Encodings,
}

impl Message {
    /// `true` once its expiry interval has passed.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// A QoS 0 message with no properties, for tests.
    #[cfg(test)]
    pub fn for_tests(topic: &str, payload: &[u8]) -> Message {
        Message {
            topic: TopicName::new(topic).expect("a valid topic"),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Props::default(),
            expires_at: None,
            origin: Origin {
                username: None,
                client_id: "test".into(),
            },
            encoded: Default::default(),
        }
    }
}

/// A message on its way to one subscriber.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The message.
    pub msg: Arc<Message>,
    /// The QoS it is delivered with.
    pub qos: QoS,
    /// The RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers of the matching subscriptions.
    pub sub_ids: Vec<u32>,
    /// Its number in a durable session's store, in the order deliveries were made (0: not stored).
    pub seq: u64,
}

impl Delivery {
    /// The PUBLISH packet for this delivery.
    pub fn to_publish(&self, pkid: u16, dup: bool, now: Instant) -> Publish {
        let m = &self.msg;
        // Written only when set: a write allocates the properties' box (the message's own
        // properties carry neither of these two).
        let mut properties = m.properties.clone();
        if !self.sub_ids.is_empty() {
            properties.subscription_ids.clone_from(&self.sub_ids);
        }
        if let Some(t) = m.expires_at {
            properties.message_expiry = Some(
                u32::try_from(t.saturating_duration_since(now).as_secs().max(1))
                    .unwrap_or(u32::MAX),
            );
        }
        Publish {
            dup,
            qos: self.qos,
            retain: self.retain,
            topic: Some(m.topic.clone()),
            pkid,
            payload: Arc::clone(&m.payload),
            properties,
        }
    }
}

/// A password kept while its client is connected, because a SIGHUP re-checks every connected
/// client's credentials against the reloaded password file (as Mosquitto does). Never printed (its
/// `Debug` is redacted), never cloned, overwritten with zeros when dropped (best effort: without
/// `unsafe` the compiler is only discouraged, through `black_box`, from skipping the writes).
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of the bytes (no copy is left behind).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The password, for a verification.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&mut self.0);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An outgoing QoS 1/2 message not yet fully acknowledged.
#[derive(Clone, Debug)]
pub enum InFlight {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish(Delivery),
    /// PUBREL sent, waiting for PUBCOMP; the delivery's number in the store (0: not stored).
    Release(u64),
}

/// What a session has in flight and waiting, and its connection's topic aliases: boxed in the
/// [`Session`] and allocated only while some of it is in use (an idle client's session has none).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Outgoing QoS 1/2 in flight, by packet identifier.
    pub inflight: BTreeMap<u16, InFlight>,
    /// Deliveries waiting for an in-flight slot or a connection; change it only through
    /// [`Session::enqueue`], [`Session::requeue`] and [`Session::dequeue`], which keep
    /// [`Traffic::queued_bytes`].
    pub queue: VecDeque<Delivery>,
    /// Payload bytes in [`Traffic::queue`] (for `max_queued_bytes`).
    pub queued_bytes: usize,
    /// Incoming QoS 2 packet identifiers awaiting PUBREL.
    pub incoming_qos2: FxHashSet<u16>,
    /// Inbound topic aliases of the current connection.
    pub aliases: FxHashMap<u16, TopicName>,
    /// Deliveries dropped because the queue was full.
    pub dropped: u64,
    /// Since when the queue is past its high mark (its publishers are being paused), while the
    /// client is connected.
    pub backlog_since: Option<Instant>,
}

impl Traffic {
    fn is_empty(&self) -> bool {
        self.inflight.is_empty()
            && self.queue.is_empty()
            && self.incoming_qos2.is_empty()
            && self.aliases.is_empty()
            && self.dropped == 0
            && self.backlog_since.is_none()
    }
}

/// When a session ends after its connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// With the connection (clean session / expiry interval 0).
    OnClose,
    /// This many seconds after the connection closes.
    After(u32),
    /// Never (3.1.1 persistent session, or interval 0xFFFFFFFF).
    Never,
}

impl Expiry {
    /// From an MQTT 5 Session Expiry Interval.
    pub fn from_interval(secs: u32) -> Expiry {
        match secs {
            0 => Expiry::OnClose,
            u32::MAX => Expiry::Never,
            s => Expiry::After(s),
        }
    }
}

/// An IP address as text, on the stack: what an audit record names, without an allocation.
pub struct AddressText {
    buf: [u8; 48],
    len: usize,
}

impl AddressText {
    /// `ip` written out as `Display` writes it (IPv6 at most 45 bytes).
    pub fn new(ip: IpAddr) -> AddressText {
        let mut buf = [0; 48];
        let mut rest = &mut buf[..];
        // Cannot fail: 48 bytes hold any address.
        let _ = write!(rest, "{ip}");
        let len = 48 - rest.len();
        AddressText { buf, len }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    /// Client identifier (shared with the router's maps).
    pub client_id: Arc<str>,
    /// Username of the connection that owns (or last owned) it.
    pub username: Option<Arc<str>>,
    /// The password its connection logged in with, kept only while connected (for the re-check of
    /// credentials on SIGHUP).
    pub password: Option<Secret>,
    /// The username came from the client certificate (`use_identity_as_username`,
    /// `use_subject_as_username`): a reload does not check it against the password file.
    pub cert_login: bool,
    /// IP address of that connection (kept as the address, not its text: no allocation per
    /// session; [`AddressText`] writes it out for an audit record).
    pub address: IpAddr,
    /// Protocol version of that connection.
    pub version: Version,
    /// The connection, while connected.
    pub conn: Option<ConnId>,
    /// When the session ends after disconnection.
    pub expiry: Expiry,
    /// When it was disconnected.
    pub disconnected_at: Option<Instant>,
    /// Filters → options, mirrored in the router's trie.
    pub subscriptions: FxHashMap<TopicFilter, super::subs::SubEntry>,
    /// What is in flight and waiting, and the topic aliases (`None` while all of it is empty).
    pub traffic: Option<Box<Traffic>>,
    /// Next packet identifier to try.
    pub next_pkid: u16,
    /// The client's Receive Maximum, when it sent one (MQTT 5): it replaces `max_inflight_messages`
    /// for this client, above or below it, as in Mosquitto.
    pub receive_maximum: Option<u16>,
    /// The client's Maximum Packet Size.
    pub max_packet_size: Option<u32>,
    /// The Will of the current connection (boxed: most clients have none).
    pub will: Option<Box<Will>>,
    /// When a delayed Will is due (after an unclean close).
    pub will_due: Option<Instant>,
    /// Kept in the store (`persistence true` and a session that outlives its connection).
    pub durable: bool,
    /// The last delivery number given out (see [`Delivery::seq`]).
    pub last_seq: u64,
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: Arc<str>, version: Version) -> Session {
        Session {
            client_id,
            username: None,
            password: None,
            cert_login: false,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            version,
            conn: None,
            expiry: Expiry::OnClose,
            disconnected_at: None,
            subscriptions: FxHashMap::default(),
            traffic: None,
            next_pkid: 1,
            receive_maximum: None,
            max_packet_size: None,
            will: None,
            will_due: None,
            durable: false,
            last_seq: 0,
        }
    }

    /// What is in flight and waiting (empty when the session has none).
    pub fn t(&self) -> &Traffic {
        static EMPTY: OnceLock<Traffic> = OnceLock::new();
        match self.traffic.as_deref() {
            Some(t) => t,
            None => EMPTY.get_or_init(Traffic::default),
        }
    }

    /// What is in flight and waiting, to change it (allocated on first use).
    pub fn t_mut(&mut self) -> &mut Traffic {
        self.traffic.get_or_insert_with(Box::default)
    }

    /// Frees the traffic state once it holds nothing.
    pub fn settle(&mut self) {
        if self.traffic.as_ref().is_some_and(|t| t.is_empty()) {
            self.traffic = None;
        }
    }

    /// Forgets the topic aliases (a new or a closed connection).
    pub fn clear_aliases(&mut self) {
        if let Some(t) = self.traffic.as_mut() {
            t.aliases.clear();
        }
        self.settle();
    }

    /// Appends a delivery to the queue.
    pub fn enqueue(&mut self, d: Delivery) {
        let t = self.t_mut();
        t.queued_bytes += d.msg.payload.len();
        t.queue.push_back(d);
    }

    /// Puts a delivery back at the head of the queue.
    pub fn requeue(&mut self, d: Delivery) {
        let t = self.t_mut();
        t.queued_bytes += d.msg.payload.len();
        t.queue.push_front(d);
    }

    /// Takes the delivery at the head of the queue.
    pub fn dequeue(&mut self) -> Option<Delivery> {
        let t = self.traffic.as_mut()?;
        let d = t.queue.pop_front()?;
        t.queued_bytes -= d.msg.payload.len();
        Some(d)
    }

    /// `true` when the queue may not grow: `max_messages` (0: no bound) deliveries or
    /// `max_bytes` (0: no bound) payload bytes are waiting (Mosquitto's `db__ready_for_queue`).
    pub fn queue_full(&self, max_messages: usize, max_bytes: usize) -> bool {
        let t = self.t();
        (max_messages != 0 && t.queue.len() >= max_messages)
            || (max_bytes != 0 && t.queued_bytes >= max_bytes)
    }

    /// A free packet identifier, or `None` if all 65,535 are in flight.
    pub fn allocate_pkid(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            let id = self.next_pkid;
            self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
            if !self.t().inflight.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// How many QoS 1/2 messages may be in flight to this client: its Receive Maximum if it sent
    /// one, else `max_inflight_messages` (0: no limit).
    pub fn inflight_limit(&self, max_inflight: u16) -> usize {
        match (self.receive_maximum, max_inflight) {
            (Some(client), _) => usize::from(client),
            (None, 0) => usize::from(u16::MAX),
            (None, server) => usize::from(server),
        }
    }

    /// The granted options of all subscriptions merged, for the deliveries of one message.
    pub fn merge(options: &mut Option<(SubOptions, Vec<u32>)>, entry: super::subs::SubEntry) {
        match options {
            None => *options = Some((entry.options, entry.id.into_iter().collect())),
            Some((o, ids)) => {
                o.qos = o.qos.max(entry.options.qos);
                o.retain_as_published |= entry.options.retain_as_published;
                o.no_local &= entry.options.no_local;
                ids.extend(entry.id);
            }
        }
    }
}

#[cfg(test)]
mod address_tests {
    use super::AddressText;
    use std::net::IpAddr;

    #[test]
    fn an_address_is_written_as_display_writes_it_even_the_longest_ipv6() {
        for text in [
            "127.0.0.1",
            "::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(AddressText::new(ip).as_str(), ip.to_string());
        }
    }
}
