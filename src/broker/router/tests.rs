//! Router tests: events in, actions out, no sockets. Named after the behaviour they check.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::broker::codec::{SubOptions, SubscribeFilter};
use crate::policy::conf::MosquittoConf;

fn router(extra: &str) -> Router {
    let text = format!("listener 1883\nallow_anonymous true\n{extra}");
    let conf = MosquittoConf::parse("m.conf", text.as_bytes()).unwrap();
    let config = BrokerConfig::from_conf(&conf).unwrap();
    Router::new(&config, Arc::new(Security::new(None, None, true)))
}

struct T {
    r: Router,
    now: Instant,
}

impl T {
    fn new(extra: &str) -> T {
        T {
            r: router(extra),
            now: Instant::now(),
        }
    }

    /// Handles an event; password checks it asks for are done at once, as a worker would.
    fn ev(&mut self, e: Event) -> Vec<Action> {
        let mut out = Vec::new();
        for action in self.raw(e) {
            match action.verified_now() {
                Some(verified) => out.extend(self.ev(verified)),
                None => out.push(action),
            }
        }
        out
    }

    /// Handles an event; password checks it asks for stay in the actions.
    fn raw(&mut self, e: Event) -> Vec<Action> {
        self.r.handle(e, self.now, SystemTime::now());
        let mut out = Vec::new();
        self.r.drain_actions(&mut out);
        out
    }

    fn connect(&mut self, conn: ConnId, id: &str, version: Version, clean: bool) -> Vec<Action> {
        self.connect_with(conn, id, version, clean, None, Properties::default())
    }

    fn connect_with(
        &mut self,
        conn: ConnId,
        id: &str,
        version: Version,
        clean: bool,
        will: Option<Will>,
        properties: Properties,
    ) -> Vec<Action> {
        self.ev(Event::Connect {
            conn,
            address: "127.0.0.1".into(),
            login: Login::Credentials,
            connect: Box::new(Connect {
                version,
                client_id: id.into(),
                clean_start: clean,
                keep_alive: 60,
                username: None,
                password: None,
                will,
                properties,
            }),
        })
    }

    fn packet(&mut self, conn: ConnId, packet: Packet) -> Vec<Action> {
        self.ev(Event::Packet { conn, packet })
    }

    fn subscribe(&mut self, conn: ConnId, filter: &str, qos: QoS) -> Vec<Action> {
        self.packet(
            conn,
            Packet::Subscribe(Subscribe {
                pkid: 1,
                filters: vec![SubscribeFilter {
                    filter: filter.try_into().unwrap(),
                    options: SubOptions::qos(qos),
                }],
                properties: Props::default(),
            }),
        )
    }

    fn publish(&mut self, conn: ConnId, topic: &str, qos: QoS, pkid: u16) -> Vec<Action> {
        self.packet(conn, Packet::Publish(publish(topic, qos, pkid)))
    }
}

fn publish(topic: &str, qos: QoS, pkid: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: Some(topic.try_into().unwrap()),
        pkid,
        payload: Arc::from(&b"x"[..]),
        properties: Props::default(),
    }
}

fn sent(actions: &[Action], to: ConnId) -> Vec<&Packet> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn, packet } if *conn == to => Some(packet),
            _ => None,
        })
        .collect()
}

fn publishes(actions: &[Action], to: ConnId) -> Vec<Publish> {
    sent(actions, to)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts that connection `conn` is served: subscribed to `a`, it gets its own QoS 0 message.
fn assert_served(t: &mut T, conn: ConnId) {
    t.subscribe(conn, "a", QoS::AtMostOnce);
    assert_eq!(
        publishes(&t.publish(conn, "a", QoS::AtMostOnce, 0), conn).len(),
        1,
        "connection {conn} is served"
    );
}

#[test]
fn mqtt_3_1_4_2_a_second_connection_with_the_same_client_id_takes_the_session_over() {
    let mut t = T::new("");
    t.connect(1, "c", Version::V5, true);
    let actions = t.connect(2, "c", Version::V5, false);
    let to_old = sent(&actions, 1);
    assert!(matches!(to_old[0], Packet::Disconnect(d) if d.reason == reason::SESSION_TAKEN_OVER));
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: 1 })));
    // The old connection's later close does not disturb the new one.
    t.ev(Event::Closed { conn: 1 });
    assert_served(&mut t, 2);
}

#[test]
fn a_connect_of_an_older_connection_handled_after_a_newer_ones_does_not_take_the_session_over() {
    // Connection 2 was accepted after connection 1, but its CONNECT reached the router first (the
    // client gave up on connection 1 and opened connection 2).
    let mut t = T::new("");
    t.connect(2, "c", Version::V5, true);
    let actions = t.connect(1, "c", Version::V5, true);
    assert!(
        matches!(sent(&actions, 1)[0], Packet::ConnAck(c) if c.reason == ConnectReason::IdentifierRejected),
        "{actions:?}"
    );
    assert!(
        sent(&actions, 2).is_empty(),
        "nothing to the live connection"
    );
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: 2 })));
    // The stale connection's close leaves the live one in place.
    t.ev(Event::Closed { conn: 1 });
    assert_served(&mut t, 2);
}

#[test]
fn mqtt_3_1_3_8_an_empty_client_id_with_clean_session_0_is_rejected_in_3_1_1() {
    let mut t = T::new("");
    let actions = t.connect(1, "", Version::V311, false);
    assert!(
        matches!(sent(&actions, 1)[0], Packet::ConnAck(c) if c.reason == ConnectReason::IdentifierRejected)
    );
    // MQTT 5 assigns one and says which.
    let actions = t.connect(2, "", Version::V5, false);
    assert!(
        matches!(sent(&actions, 2)[0], Packet::ConnAck(c) if c.properties.assigned_client_id.is_some())
    );
}

#[test]
fn in_flight_messages_are_limited_and_the_rest_is_queued_until_acknowledged() {
    let mut t = T::new("max_inflight_messages 2\n");
    t.connect(1, "sub", Version::V311, true);
    t.subscribe(1, "a", QoS::AtLeastOnce);
    t.connect(2, "pub", Version::V311, true);
    let mut delivered = Vec::new();
    for i in 1..=5 {
        delivered.extend(publishes(&t.publish(2, "a", QoS::AtLeastOnce, i), 1));
    }
    assert_eq!(delivered.len(), 2);
    let more = publishes(&t.packet(1, Packet::PubAck(Ack::new(delivered[0].pkid))), 1);
    assert_eq!(more.len(), 1);
}

#[test]
fn the_queue_of_a_session_is_bounded_by_max_queued_messages() {
    let mut t = T::new("max_queued_messages 3\n");
    t.connect(1, "sub", Version::V311, false);
    t.subscribe(1, "a", QoS::AtLeastOnce);
    t.ev(Event::Closed { conn: 1 });
    t.connect(2, "pub", Version::V311, true);
    for i in 1..=10 {
        t.publish(2, "a", QoS::AtLeastOnce, i);
    }
    let actions = t.connect(3, "sub", Version::V311, false);
    assert!(matches!(sent(&actions, 3)[0], Packet::ConnAck(c) if c.session_present));
    assert_eq!(publishes(&actions, 3).len(), 3);
}

#[test]
fn mqtt_4_3_3_a_resent_qos_2_publish_is_not_delivered_twice() {
    let mut t = T::new("");
    t.connect(1, "sub", Version::V311, true);
    t.subscribe(1, "a", QoS::ExactlyOnce);
    t.connect(2, "pub", Version::V311, true);
    assert_eq!(
        publishes(&t.publish(2, "a", QoS::ExactlyOnce, 9), 1).len(),
        1
    );
    let mut again = publish("a", QoS::ExactlyOnce, 9);
    again.dup = true;
    let actions = t.packet(2, Packet::Publish(again));
    assert!(publishes(&actions, 1).is_empty());
    assert!(matches!(sent(&actions, 2)[0], Packet::PubRec(_)));
    let actions = t.packet(2, Packet::PubRel(Ack::new(9)));
    assert!(matches!(sent(&actions, 2)[0], Packet::PubComp(a) if a.reason == 0));
}

#[test]
fn mqtt_3_1_3_9_a_delayed_will_is_sent_only_if_the_client_does_not_come_back() {
    let mut t = T::new("");
    t.connect(1, "watcher", Version::V5, true);
    t.subscribe(1, "will", QoS::AtMostOnce);
    let will = Will {
        topic: "will".try_into().unwrap(),
        payload: Arc::from(&b"gone"[..]),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay: Some(5),
            ..Properties::default()
        },
    };
    let session = Properties {
        session_expiry: Some(60),
        ..Properties::default()
    };
    t.connect_with(
        2,
        "w",
        Version::V5,
        false,
        Some(will.clone()),
        session.clone(),
    );
    assert!(publishes(&t.ev(Event::Closed { conn: 2 }), 1).is_empty());
    t.now += Duration::from_secs(2);
    // Back within the delay: no Will.
    t.connect_with(3, "w", Version::V5, false, Some(will), session);
    t.now += Duration::from_secs(10);
    assert!(publishes(&t.ev(Event::Tick), 1).is_empty());
    // Gone for good: the Will goes out when the delay has passed.
    t.ev(Event::Closed { conn: 3 });
    t.now += Duration::from_secs(6);
    let actions = t.ev(Event::Tick);
    assert_eq!(publishes(&actions, 1).len(), 1);
}

#[test]
fn mqtt_3_14_4_3_a_normal_disconnect_discards_the_will() {
    let mut t = T::new("");
    t.connect(1, "watcher", Version::V311, true);
    t.subscribe(1, "will", QoS::AtMostOnce);
    let will = Will {
        topic: "will".try_into().unwrap(),
        payload: Arc::from(&b"gone"[..]),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    };
    t.connect_with(
        2,
        "w",
        Version::V311,
        true,
        Some(will),
        Properties::default(),
    );
    let actions = t.packet(2, Packet::Disconnect(Disconnect::default()));
    assert!(publishes(&actions, 1).is_empty());
    assert!(publishes(&t.ev(Event::Closed { conn: 2 }), 1).is_empty());
}

#[test]
fn mqtt_3_3_1_8_retained_messages_are_sent_on_subscribe_with_retain_1_and_cleared_by_empty_ones() {
    let mut t = T::new("");
    t.connect(1, "pub", Version::V311, true);
    let mut p = publish("r", QoS::AtMostOnce, 0);
    p.retain = true;
    t.packet(1, Packet::Publish(p.clone()));
    t.connect(2, "sub", Version::V311, true);
    let got = publishes(&t.subscribe(2, "#", QoS::AtLeastOnce), 2);
    assert_eq!(got.len(), 1);
    assert!(got[0].retain);
    p.payload = Arc::from(&b""[..]);
    t.packet(1, Packet::Publish(p));
    t.connect(3, "sub2", Version::V311, true);
    assert!(publishes(&t.subscribe(3, "#", QoS::AtLeastOnce), 3).is_empty());
}

#[test]
fn no_matching_subscribers_is_reported_to_mqtt_5_publishers() {
    let mut t = T::new("");
    t.connect(1, "pub", Version::V5, true);
    let actions = t.publish(1, "nobody", QoS::AtLeastOnce, 1);
    assert!(
        matches!(sent(&actions, 1)[0], Packet::PubAck(a) if a.reason == reason::NO_MATCHING_SUBSCRIBERS)
    );
}

#[test]
fn mqtt_3_3_2_10_topic_aliases_stand_for_their_topic() {
    let mut t = T::new("");
    t.connect(1, "sub", Version::V5, true);
    t.subscribe(1, "long/topic", QoS::AtMostOnce);
    t.connect(2, "pub", Version::V5, true);
    let mut p = publish("long/topic", QoS::AtMostOnce, 0);
    p.properties.topic_alias = Some(3);
    t.packet(2, Packet::Publish(p.clone()));
    p.topic = None;
    let got = publishes(&t.packet(2, Packet::Publish(p)), 1);
    assert_eq!(got[0].topic.as_deref(), Some("long/topic"));
    assert_eq!(got[0].properties.topic_alias, None);
}

#[test]
fn the_queue_of_a_session_is_bounded_by_max_queued_bytes() {
    // Each message carries one payload byte.
    let mut t = T::new("max_queued_messages 0\nmax_queued_bytes 4\n");
    t.connect(1, "sub", Version::V311, false);
    t.subscribe(1, "a", QoS::AtLeastOnce);
    t.ev(Event::Closed { conn: 1 });
    t.connect(2, "pub", Version::V311, true);
    for i in 1..=10 {
        t.publish(2, "a", QoS::AtLeastOnce, i);
    }
    assert_eq!(t.r.sessions["sub"].t().queued_bytes, 4);
    let actions = t.connect(3, "sub", Version::V311, false);
    assert_eq!(publishes(&actions, 3).len(), 4);
    assert_eq!(t.r.sessions["sub"].t().queued_bytes, 0);
}

/// A router whose password file holds `user1` / `123456` and `user2` / `abc`.
fn with_users(allow_anonymous: bool) -> T {
    let mut t = T::new("");
    t.r.set_security(Arc::new(security(&["user1", "user2"], allow_anonymous)));
    t
}

mod durable;
mod logins;

fn security(users: &[&str], allow_anonymous: bool) -> Security {
    use crate::policy::passwd::{hash_password, HashKind, PasswordFile};
    let mut text = String::new();
    for u in users {
        let password = if *u == "user1" { "123456" } else { "abc" };
        let hash = hash_password(password.as_bytes(), HashKind::Sha512Pbkdf2, Some(101));
        text.push_str(&format!("{u}:{hash}\n"));
    }
    let pw = PasswordFile::parse("users.txt", text.as_bytes());
    Security::new(None, Some(pw), allow_anonymous)
}

fn login(t: &mut T, conn: ConnId, id: &str, user: Option<(&str, &str)>) -> Vec<Action> {
    login_as(t, conn, id, user, Login::Credentials)
}

fn login_as(
    t: &mut T,
    conn: ConnId,
    id: &str,
    user: Option<(&str, &str)>,
    login: Login,
) -> Vec<Action> {
    t.ev(Event::Connect {
        conn,
        address: "10.0.0.1".into(),
        login,
        connect: Box::new(Connect {
            version: Version::V5,
            client_id: id.into(),
            clean_start: false,
            keep_alive: 60,
            username: user.map(|(u, _)| u.to_owned()),
            password: user.map(|(_, p)| p.as_bytes().to_vec()),
            will: None,
            // A session that outlives its connection.
            properties: Properties {
                session_expiry: Some(300),
                ..Properties::default()
            },
        }),
    })
}

#[test]
fn a_reload_checks_the_logins_of_connected_clients_again() {
    let mut t = with_users(true);
    login(&mut t, 1, "one", Some(("user1", "123456")));
    login(&mut t, 2, "two", Some(("user2", "abc")));
    login(&mut t, 3, "anon", None);
    login(&mut t, 4, "one-b", Some(("user1", "123456")));
    // The password is kept while connected, and never shown.
    let s = &t.r.sessions["one"];
    assert_eq!(
        s.password.as_ref().map(Secret::expose),
        Some(&b"123456"[..])
    );
    assert!(!format!("{s:?}").contains("123456"));
    // user1 leaves the password file and anonymous access is turned off.
    t.r.set_security(Arc::new(security(&["user2"], false)));
    let mut actions = Vec::new();
    t.r.drain_actions(&mut actions);
    let closed: Vec<ConnId> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn } => Some(*conn),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 3, "{actions:?}");
    for conn in [1, 3, 4] {
        assert!(closed.contains(&conn), "{conn} is disconnected");
        assert!(matches!(
            sent(&actions, conn)[0],
            Packet::Disconnect(d) if d.reason == reason::NOT_AUTHORIZED
        ));
    }
    let audited: Vec<(String, String)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(r) => Some((r.client_id.clone()?, r.to_json())),
            _ => None,
        })
        .collect();
    assert_eq!(audited.len(), 3);
    assert!(audited
        .iter()
        .any(|(id, j)| id == "one" && j.contains("unknown_user")));
    assert!(audited
        .iter()
        .any(|(id, j)| id == "anon" && j.contains("anonymous_not_allowed")));
    // The persistent sessions stay, without the password; user2 is still connected.
    assert!(t.r.sessions["one"].password.is_none());
    assert!(t.r.sessions["one"].conn.is_none());
    assert_eq!(t.r.sessions["two"].conn, Some(2));
}

#[test]
fn a_certificate_login_ignores_the_connect_credentials_and_survives_a_reload() {
    use crate::broker::identity::CertProblem;
    let mut t = with_users(false);
    // The CONNECT claims user2 with a wrong password: the certificate's CN decides, unchecked.
    let actions = login_as(
        &mut t,
        1,
        "cert",
        Some(("user2", "wrong")),
        Login::Certificate(Ok("user1".to_owned())),
    );
    assert!(matches!(
        sent(&actions, 1)[0],
        Packet::ConnAck(a) if a.reason == ConnectReason::Success
    ));
    let s = &t.r.sessions["cert"];
    assert_eq!(s.username.as_deref(), Some("user1"));
    assert!(s.password.is_none() && s.cert_login);
    // A certificate without a CN: CONNACK 0x86 and an audit record without a username.
    let actions = login_as(
        &mut t,
        2,
        "nocn",
        Some(("user1", "123456")),
        Login::Certificate(Err(CertProblem::NoCommonName)),
    );
    assert!(matches!(
        sent(&actions, 2)[0],
        Packet::ConnAck(a) if a.reason == ConnectReason::BadCredentials
    ));
    let record = actions
        .iter()
        .find_map(|a| match a {
            Action::Audit(r) => Some(r),
            _ => None,
        })
        .expect("an audit record");
    assert_eq!(record.username, None);
    assert!(
        record.to_json().contains("Common Name"),
        "{}",
        record.to_json()
    );
    // A reload with an empty password file leaves the certificate client connected.
    t.r.set_security(Arc::new(security(&[], false)));
    let mut actions = Vec::new();
    t.r.drain_actions(&mut actions);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(t.r.sessions["cert"].conn, Some(1));
}

mod reads;
mod shared;

/// `queue_qos0_messages true` keeps QoS 0 messages for a disconnected persistent session (as Mosquitto);
/// by default they are lost.
#[test]
fn queue_qos0_messages_keeps_qos_0_for_a_disconnected_persistent_session() {
    for (extra, kept) in [("", 0), ("queue_qos0_messages true\n", 2)] {
        let mut t = T::new(extra);
        t.connect(1, "sub", Version::V311, false);
        t.subscribe(1, "a", QoS::AtMostOnce);
        t.ev(Event::Closed { conn: 1 });
        t.connect(2, "pub", Version::V311, true);
        t.publish(2, "a", QoS::AtMostOnce, 0);
        t.publish(2, "a", QoS::AtLeastOnce, 7);
        let actions = t.connect(3, "sub", Version::V311, false);
        let got = publishes(&actions, 3);
        assert_eq!(got.len(), kept, "{extra:?}: {got:?}");
        assert!(got.iter().all(|p| p.qos == QoS::AtMostOnce && p.pkid == 0));
        // Once delivered, nothing is left to deliver again.
        t.ev(Event::Closed { conn: 3 });
        assert!(publishes(&t.connect(4, "sub", Version::V311, false), 4).is_empty());
    }
}
