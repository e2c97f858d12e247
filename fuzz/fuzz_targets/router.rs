//! The broker's router, stateful: four client connections send byte streams, close, reconnect, time
//! passes and the policy is reloaded, in the order the input says. Bytes are decoded exactly as the
//! network layer does (`src/broker/net/conn.rs`: a CONNECT first, packets in its version, an invalid
//! packet ends the reading), events go to the router, and what it asks for is done as the network layer
//! would: password checks are answered (now or later), closed connections are reported back, and every
//! packet it sends is encoded for the connection's version. No sockets, no threads.
//!
//! Input: one byte choosing the broker's config, then operations. Each operation is one byte: the low
//! two bits pick the connection, the next four bits what happens:
//! * 0–6 and 12–15: the next byte is a length N, then N bytes the client sends;
//! * 7: the connection closes (the next operation on it opens a new one);
//! * 8: the next byte is a number of seconds that pass, then a clock tick;
//! * 9: the policy is reloaded (alternating between two policies);
//! * 10: a ready-made CONNECT (from the next byte: version, client id, username, password, clean
//!   start, Will), so that deep states are reached without spelling out a CONNECT;
//! * 11: the password checks asked for so far are answered.

#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use mqtt_policy::broker::codec::{
    decode_client_packet, encode, Connect, Packet, Properties, QoS, Version, Will,
};
use mqtt_policy::broker::config::BrokerConfig;
use mqtt_policy::broker::identity::Login;
use mqtt_policy::broker::router::{Action, Event, Router};
use mqtt_policy::broker::security::Security;
use mqtt_policy::broker::session::ConnId;
use mqtt_policy::policy::acl::Policy;
use mqtt_policy::policy::conf::MosquittoConf;
use mqtt_policy::policy::passwd::{hash_password, HashKind, PasswordFile};

const CONFIGS: [&str; 4] = [
    "listener 1883\nallow_anonymous true\n",
    "listener 1883\nallow_anonymous true\nmax_inflight_messages 2\nmax_queued_messages 3\n\
     max_topic_alias 2\nmax_packet_size 300\nmax_keepalive 10\nretain_available false\n\
     allow_zero_length_clientid false\ncheck_retain_source true\npersistent_client_expiration 1m\n\
     queue_qos0_messages true\n",
    "listener 1883\nallow_anonymous true\npersistence true\nmax_queued_bytes 100\n",
    "listener 1883\nallow_anonymous false\nmax_queued_messages 1\n",
];

const ACL: &str = "topic readwrite public/#\ntopic read $SYS/#\n\
    pattern readwrite clients/%c/#\npattern read users/%u/#\n\
    user u1\ntopic readwrite a/#\ntopic deny a/secret\ntopic write w/+\n\
    user admin\ntopic readwrite #\n";
const ACL_2: &str = "user admin\ntopic read #\npattern write clients/%c/+\n";

/// Two policies the input switches between; the password file's hashes are cheap ones.
fn securities() -> [Arc<Security>; 2] {
    let sha = hash_password(b"pw1", HashKind::Sha512, None);
    let pbkdf2 = hash_password(b"pw", HashKind::Sha512Pbkdf2, Some(1));
    let passwd = format!("u1:{sha}\nadmin:{pbkdf2}\nu2:plaintext\n");
    let make = |acl: &str| {
        let policy = Policy::from_acl("acl", acl.as_bytes()).expect("the target's acl");
        let passwords = PasswordFile::parse("passwd", passwd.as_bytes());
        Arc::new(Security::new(Some(policy), Some(passwords), true))
    };
    [make(ACL), make(ACL_2)]
}

thread_local! {
    static SECURITY: [Arc<Security>; 2] = securities();
}

/// One client connection, as the network layer keeps it.
#[derive(Default)]
struct Conn {
    /// `None`: no connection open in this slot.
    id: Option<ConnId>,
    version: Option<Version>,
    input: Vec<u8>,
    /// An invalid packet was read: nothing more is read.
    reading_done: bool,
}

struct Harness {
    router: Router,
    conns: [Conn; 4],
    next_id: ConnId,
    now: Instant,
    max_packet_size: usize,
    /// Password checks asked for and not yet answered.
    verifies: Vec<Event>,
    policy: usize,
}

impl Harness {
    fn handle(&mut self, event: Event) {
        self.router.handle(event, self.now, SystemTime::UNIX_EPOCH);
        self.actions();
    }

    /// Does what the router asked for.
    fn actions(&mut self) {
        let mut pending = Vec::new();
        // Bounded: each connection is closed and reported once.
        loop {
            let mut actions = Vec::new();
            self.router.drain_actions(&mut actions);
            for action in actions {
                match action {
                    Action::Send { conn, packet } => {
                        let version = self
                            .conns
                            .iter()
                            .find(|c| c.id == Some(conn))
                            .and_then(|c| c.version)
                            .unwrap_or(Version::V311);
                        let mut out = Vec::new();
                        encode(&packet, version, &mut out);
                        assert!(out.len() >= 2);
                    }
                    Action::Close { conn } => {
                        if let Some(c) = self.conns.iter_mut().find(|c| c.id == Some(conn)) {
                            *c = Conn::default();
                            pending.push(Event::Closed { conn });
                        }
                    }
                    Action::Verify { .. } => {
                        self.verifies.extend(action.verified_now());
                    }
                    _ => {}
                }
            }
            let Some(event) = pending.pop() else {
                return;
            };
            self.router.handle(event, self.now, SystemTime::UNIX_EPOCH);
        }
    }

    /// The connection in `slot`, opened if none is.
    fn open(&mut self, slot: usize) -> ConnId {
        if let Some(id) = self.conns[slot].id {
            return id;
        }
        self.next_id += 1;
        self.conns[slot] = Conn {
            id: Some(self.next_id),
            ..Conn::default()
        };
        self.next_id
    }

    /// The client in `slot` sends `bytes`: whole packets are decoded and handed over, as
    /// `Conn::packets` in the network layer does.
    fn bytes(&mut self, slot: usize, bytes: &[u8]) {
        let id = self.open(slot);
        if self.conns[slot].reading_done {
            return;
        }
        self.conns[slot].input.extend_from_slice(bytes);
        let mut start = 0;
        // Bounded: every iteration consumes a whole packet, or stops.
        loop {
            let c = &self.conns[slot];
            let event =
                match decode_client_packet(&c.input[start..], c.version, self.max_packet_size) {
                    Ok(Some((Packet::Connect(connect), used))) => {
                        start += used;
                        self.conns[slot].version = Some(connect.version);
                        Event::Connect {
                            conn: id,
                            address: "127.0.0.1".into(),
                            login: Login::Credentials,
                            connect,
                        }
                    }
                    Ok(Some((packet, used))) => {
                        start += used;
                        Event::Packet { conn: id, packet }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        let c = &mut self.conns[slot];
                        c.reading_done = true;
                        c.input = Vec::new();
                        start = 0;
                        self.handle(Event::Invalid { conn: id, error });
                        break;
                    }
                };
            self.handle(event);
            if self.conns[slot].id != Some(id) {
                // The router closed the connection.
                return;
            }
        }
        self.conns[slot].input.drain(..start);
    }

    /// A ready-made CONNECT, described by one byte.
    fn connect(&mut self, slot: usize, b: u8) {
        let id = self.open(slot);
        if self.conns[slot].version.is_some() || self.conns[slot].reading_done {
            // The network layer never sends a second CONNECT as one: it is a protocol error there.
            return;
        }
        let version = [Version::V311, Version::V5, Version::V31, Version::V5][usize::from(b & 3)];
        let (username, password): (Option<&str>, Option<&[u8]>) = match (b >> 2) & 7 {
            0 => (None, None),
            1 => (Some("u1"), Some(b"pw1")),
            2 => (Some("admin"), Some(b"pw")),
            3 => (Some("u1"), Some(b"wrong")),
            4 => (Some("u2"), Some(b"plaintext")),
            5 => (Some("nobody"), Some(b"x")),
            6 => (Some("admin"), None),
            _ => (None, Some(b"pw")),
        };
        let will = (b & 0x20 != 0).then(|| Will {
            topic: mqtt_policy::policy::topic::TopicName::new(&format!("clients/c{slot}/will"))
                .expect("a valid topic name"),
            payload: Arc::from(&b"gone"[..]),
            qos: QoS::AtLeastOnce,
            retain: b & 0x40 != 0,
            properties: Properties::default(),
        });
        let connect = Connect {
            version,
            client_id: format!("c{}", (usize::from(b) + slot) % 5),
            clean_start: b & 0x80 == 0,
            keep_alive: 30,
            username: username.map(str::to_owned),
            password: password.map(<[u8]>::to_vec),
            will,
            properties: Properties::default(),
        };
        self.conns[slot].version = Some(version);
        self.handle(Event::Connect {
            conn: id,
            address: "127.0.0.1".into(),
            login: Login::Credentials,
            connect: Box::new(connect),
        });
    }

    fn answer_verifies(&mut self) {
        for event in std::mem::take(&mut self.verifies) {
            self.handle(event);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, mut ops)) = data.split_first() else {
        return;
    };
    let text = CONFIGS[usize::from(config) % CONFIGS.len()];
    let conf = MosquittoConf::parse("fuzz.conf", text.as_bytes()).expect("the target's config");
    let config = BrokerConfig::from_conf(&conf).expect("the target's config");
    let security = SECURITY.with(|s| s.clone());
    let mut h = Harness {
        router: Router::new(&config, Arc::clone(&security[0])),
        conns: Default::default(),
        next_id: 0,
        now: Instant::now(),
        max_packet_size: config.max_packet_size,
        verifies: Vec::new(),
        policy: 0,
    };
    // Bounded: every operation consumes at least one byte.
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        let slot = usize::from(op & 3);
        match (op >> 2) & 15 {
            7 => {
                if let Some(conn) = h.conns[slot].id {
                    h.conns[slot] = Conn::default();
                    h.handle(Event::Closed { conn });
                }
            }
            8 => {
                let secs = ops.first().copied().unwrap_or(1);
                ops = ops.get(1..).unwrap_or_default();
                h.now += Duration::from_secs(u64::from(secs));
                h.handle(Event::Tick);
            }
            9 => {
                h.policy ^= 1;
                h.router.set_security(Arc::clone(&security[h.policy]));
                h.actions();
            }
            10 => {
                let b = ops.first().copied().unwrap_or(0);
                ops = ops.get(1..).unwrap_or_default();
                h.connect(slot, b);
            }
            11 => h.answer_verifies(),
            _ => {
                let n =
                    usize::from(ops.first().copied().unwrap_or(0)).min(ops.len().saturating_sub(1));
                let bytes = ops.get(1..1 + n).unwrap_or_default();
                ops = ops.get(1 + n..).unwrap_or_default();
                h.bytes(slot, bytes);
            }
        }
    }
    h.answer_verifies();
    for slot in 0..4 {
        if let Some(conn) = h.conns[slot].id {
            h.conns[slot] = Conn::default();
            h.handle(Event::Closed { conn });
        }
    }
    h.now += Duration::from_secs(3600);
    h.handle(Event::Tick);
});
