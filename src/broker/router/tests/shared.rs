//! Shared subscriptions (`$share/GROUP/FILTER`): round-robin, membership, retained messages, the
//! read check of the chosen member, and the SUBSCRIBEs that are refused. What Mosquitto 2.0 does in
//! each case is noted where it decided the behaviour.

use super::*;
use crate::broker::codec::{decode_client_packet, encode, encode_subscribe_unchecked};
use crate::policy::acl::Policy;

const GROUP: &str = "$share/g/bench/#";

fn payload(p: &Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}

/// Publishes `n` messages to `topic` from `conn`, payloads `0`, `1`, ...
fn publish_n(t: &mut T, conn: ConnId, topic: &str, qos: QoS, n: u16) -> Vec<Action> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut p = publish(topic, qos, i + 1);
        p.payload = Arc::from(i.to_string().as_bytes());
        out.extend(t.packet(conn, Packet::Publish(p)));
    }
    out
}

fn granted(actions: &[Action], conn: ConnId) -> Vec<u8> {
    sent(actions, conn)
        .into_iter()
        .find_map(|p| match p {
            Packet::SubAck(a) => Some(a.codes.clone()),
            _ => None,
        })
        .expect("a SUBACK")
}

/// What the network layer does with bytes from a client: decode, then hand the packet (or the
/// error) to the router.
fn feed(t: &mut T, conn: ConnId, version: Version, packet: &impl Wire) -> Vec<Action> {
    let bytes = packet.bytes(version);
    match decode_client_packet(&bytes, Some(version), usize::MAX) {
        Ok(Some((packet, _))) => t.packet(conn, packet),
        Ok(None) => panic!("a whole packet was encoded"),
        Err(error) => t.ev(Event::Invalid { conn, error }),
    }
}

/// What a client puts on the wire.
trait Wire {
    fn bytes(&self, version: Version) -> Vec<u8>;
}

impl Wire for Packet {
    fn bytes(&self, version: Version) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(self, version, &mut bytes);
        bytes
    }
}

/// A SUBSCRIBE of one filter, valid or not (a [`Subscribe`] holds only valid ones).
struct SubscribeWith<'a>(&'a str, SubOptions);

impl Wire for SubscribeWith<'_> {
    fn bytes(&self, version: Version) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_subscribe_unchecked(7, self.0, self.1, version, &mut bytes);
        bytes
    }
}

fn subscribe_with(filter: &str, options: SubOptions) -> SubscribeWith<'_> {
    SubscribeWith(filter, options)
}

fn closed(actions: &[Action], conn: ConnId) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: c } if *c == conn))
}

#[test]
fn each_message_goes_to_one_member_in_turn_from_mqtt_5_and_3_1_1_clients_alike() {
    let mut t = T::new("");
    let connack = t.connect(1, "m5", Version::V5, true);
    // CONNACK no longer says "Shared Subscription Available: 0" (absent means available).
    assert!(matches!(
        sent(&connack, 1)[0],
        Packet::ConnAck(c) if c.properties.shared_available.is_none()
    ));
    t.connect(2, "m311", Version::V311, true);
    assert_eq!(granted(&t.subscribe(1, GROUP, QoS::AtLeastOnce), 1), [1]);
    assert_eq!(granted(&t.subscribe(2, GROUP, QoS::AtMostOnce), 2), [0]);
    t.connect(3, "pub", Version::V5, true);
    let actions = publish_n(&mut t, 3, "bench/x", QoS::AtLeastOnce, 6);
    let to_1: Vec<String> = publishes(&actions, 1).iter().map(payload).collect();
    let to_2: Vec<String> = publishes(&actions, 2).iter().map(payload).collect();
    // Strict alternation, the first subscriber first (as Mosquitto: the head of the list gets it
    // and moves to the tail).
    assert_eq!(to_1, ["0", "2", "4"]);
    assert_eq!(to_2, ["1", "3", "5"]);
    // Each member gets its own subscription's QoS, and the publisher is told someone matched.
    assert!(publishes(&actions, 1)
        .iter()
        .all(|p| p.qos == QoS::AtLeastOnce));
    assert!(publishes(&actions, 2)
        .iter()
        .all(|p| p.qos == QoS::AtMostOnce));
    assert!(sent(&actions, 3)
        .iter()
        .all(|p| matches!(p, Packet::PubAck(a) if a.reason == reason::SUCCESS)));
}

#[test]
fn groups_are_independent_of_each_other_and_of_ordinary_subscriptions() {
    let mut t = T::new("");
    t.connect(1, "a", Version::V5, true);
    t.subscribe(1, "$share/g1/dup/x", QoS::AtMostOnce);
    t.subscribe(1, "dup/x", QoS::AtMostOnce);
    t.subscribe(1, "$share/g2/dup/x", QoS::AtMostOnce);
    t.subscribe(1, "$share/g1/dup/+", QoS::AtMostOnce);
    // Four subscriptions, four copies: as Mosquitto 2.0.11 does (checked on the real broker).
    assert_eq!(
        publishes(&t.publish(1, "dup/x", QoS::AtMostOnce, 0), 1).len(),
        4
    );
    // `$` topics are not matched by wildcards at the first level, shared or not.
    t.subscribe(1, "$share/g/#", QoS::AtMostOnce);
    assert!(publishes(&t.publish(1, "$x/y", QoS::AtMostOnce, 0), 1).is_empty());
}

#[test]
fn unsubscribe_removes_that_member_only() {
    let mut t = T::new("");
    t.connect(1, "a", Version::V5, true);
    t.connect(2, "b", Version::V5, true);
    t.subscribe(1, GROUP, QoS::AtMostOnce);
    t.subscribe(2, GROUP, QoS::AtMostOnce);
    t.subscribe(1, "$share/other/bench/#", QoS::AtMostOnce);
    let unsubscribe = |filter: &str| {
        Packet::Unsubscribe(Unsubscribe {
            pkid: 3,
            filters: vec![filter.try_into().unwrap()],
            properties: Props::default(),
        })
    };
    let codes = |actions: &[Action]| match sent(actions, 1)[0] {
        Packet::UnsubAck(a) => a.codes.clone(),
        other => panic!("{other:?}"),
    };
    // MQTT 5 codes as Mosquitto gives them: 0x00, then 0x11 once it is gone.
    assert_eq!(codes(&t.packet(1, unsubscribe(GROUP))), [reason::SUCCESS]);
    assert_eq!(
        codes(&t.packet(1, unsubscribe(GROUP))),
        [reason::NO_SUBSCRIPTION_EXISTED]
    );
    t.connect(3, "pub", Version::V5, true);
    let actions = publish_n(&mut t, 3, "bench/x", QoS::AtMostOnce, 4);
    assert_eq!(publishes(&actions, 2).len(), 4, "b alone is left in g");
    assert_eq!(
        publishes(&actions, 1).len(),
        4,
        "a is still the only member of `other`"
    );
    // The last member leaving ends the group: nobody matches any more.
    t.packet(2, unsubscribe(GROUP));
    t.packet(1, unsubscribe("$share/other/bench/#"));
    let actions = t.publish(3, "bench/x", QoS::AtLeastOnce, 9);
    assert!(matches!(
        sent(&actions, 3)[0],
        Packet::PubAck(a) if a.reason == reason::NO_MATCHING_SUBSCRIBERS
    ));
    assert!(t.r.shared.is_empty());
}

#[test]
fn mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error() {
    let mut t = T::new("");
    t.connect(1, "a", Version::V5, true);
    let mut options = SubOptions::qos(QoS::AtMostOnce);
    options.no_local = true;
    let actions = feed(&mut t, 1, Version::V5, &subscribe_with(GROUP, options));
    assert!(
        matches!(sent(&actions, 1)[..], [Packet::Disconnect(d)] if d.reason == reason::PROTOCOL_ERROR),
        "{actions:?}"
    );
    assert!(closed(&actions, 1));
    assert!(t.r.shared.is_empty());
    // No Local on an ordinary subscription is fine.
    t.connect(2, "b", Version::V5, true);
    let actions = feed(&mut t, 2, Version::V5, &subscribe_with("bench/#", options));
    assert_eq!(granted(&actions, 2), [0]);
}

#[test]
fn invalid_share_names_disconnect_the_client() {
    // MQTT-4.8.2-1/-2: a share name of one character or more, without `/`, `+`, `#`, then a filter.
    // Mosquitto answers its own refusals this way (`$share` alone: DISCONNECT 0x82; a wildcard
    // inside a level: 0x81; 3.1.1 clients: the connection is closed).
    let cases = [
        ("$share", reason::PROTOCOL_ERROR),
        ("$share/", reason::PROTOCOL_ERROR),
        ("$share//x", reason::PROTOCOL_ERROR),
        ("$share/+/x", reason::PROTOCOL_ERROR),
        ("$share/#", reason::PROTOCOL_ERROR),
        ("$share/g", reason::PROTOCOL_ERROR),
        ("$share/g/", reason::PROTOCOL_ERROR),
        ("$share/a+/x", reason::MALFORMED_PACKET),
        ("$share/#/x", reason::MALFORMED_PACKET),
    ];
    let mut t = T::new("");
    let mut conn = 0;
    for (filter, code) in cases {
        conn += 1;
        t.connect(conn, "v5", Version::V5, true);
        let actions = feed(
            &mut t,
            conn,
            Version::V5,
            &subscribe_with(filter, SubOptions::qos(QoS::AtMostOnce)),
        );
        assert!(
            matches!(sent(&actions, conn)[..], [Packet::Disconnect(d)] if d.reason == code),
            "{filter}: {actions:?}"
        );
        assert!(closed(&actions, conn), "{filter}");
        conn += 1;
        t.connect(conn, "v311", Version::V311, true);
        let actions = feed(
            &mut t,
            conn,
            Version::V311,
            &subscribe_with(filter, SubOptions::qos(QoS::AtMostOnce)),
        );
        assert!(sent(&actions, conn).is_empty(), "{filter}: {actions:?}");
        assert!(closed(&actions, conn), "{filter}");
    }
    assert!(t.r.shared.is_empty());
}

#[test]
fn retained_messages_are_not_sent_to_a_new_shared_subscription() {
    let mut t = T::new("");
    t.connect(1, "pub", Version::V5, true);
    let mut p = publish("bench/r", QoS::AtMostOnce, 0);
    p.retain = true;
    t.packet(1, Packet::Publish(p));
    t.connect(2, "sub", Version::V5, true);
    let actions = t.subscribe(2, GROUP, QoS::AtLeastOnce);
    assert_eq!(granted(&actions, 2), [1]);
    assert!(publishes(&actions, 2).is_empty(), "{actions:?}");
    // An ordinary subscription still gets it.
    assert_eq!(
        publishes(&t.subscribe(2, "bench/#", QoS::AtLeastOnce), 2).len(),
        1
    );
}

#[test]
fn an_offline_member_keeps_its_turn_and_its_membership() {
    let mut t = T::new("");
    t.connect(1, "online", Version::V311, true);
    t.connect(2, "offline", Version::V311, false);
    t.subscribe(1, GROUP, QoS::AtLeastOnce);
    t.subscribe(2, GROUP, QoS::AtLeastOnce);
    t.ev(Event::Closed { conn: 2 });
    t.connect(3, "pub", Version::V311, true);
    // As Mosquitto 2.0.11 (checked on the real broker): on its turn a QoS 1 message is queued for
    // the offline member, a QoS 0 message is lost; the online member does not get them instead.
    let mut actions = publish_n(&mut t, 3, "bench/q1", QoS::AtLeastOnce, 4);
    actions.extend(publish_n(&mut t, 3, "bench/q0", QoS::AtMostOnce, 4));
    let online: Vec<(String, String)> = publishes(&actions, 1)
        .iter()
        .map(|p| (p.topic.as_deref().unwrap_or("").to_owned(), payload(p)))
        .collect();
    let q = |topic: &str, n: &str| (topic.to_owned(), n.to_owned());
    assert_eq!(
        online,
        [
            q("bench/q1", "0"),
            q("bench/q1", "2"),
            q("bench/q0", "0"),
            q("bench/q0", "2")
        ]
    );
    let back = t.connect(4, "offline", Version::V311, false);
    let queued: Vec<String> = publishes(&back, 4).iter().map(payload).collect();
    assert_eq!(queued, ["1", "3"]);
    // Still a member after coming back.
    let actions = publish_n(&mut t, 3, "bench/after", QoS::AtMostOnce, 2);
    assert_eq!(
        publishes(&actions, 1).len() + publishes(&actions, 4).len(),
        2
    );
    assert_eq!(publishes(&actions, 4).len(), 1);
    // A clean start ends the session, and its membership with it.
    t.connect(5, "offline", Version::V311, true);
    assert_eq!(t.r.shared.members(GROUP), ["online"]);
}

/// The tutorial's policy: `pattern readwrite +/+/+/%u`, admin reads and writes everything.
fn tutorial() -> T {
    use crate::policy::passwd::{hash_password, HashKind, PasswordFile};
    let mut t = T::new("");
    let mut users = String::new();
    for u in ["admin", "user1", "user2"] {
        let hash = hash_password(b"pw", HashKind::Sha512Pbkdf2, Some(101));
        users.push_str(&format!("{u}:{hash}\n"));
    }
    let acl = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).unwrap();
    let passwords = PasswordFile::parse("users.txt", users.as_bytes());
    t.r.set_security(Arc::new(Security::new(
        Some(policy),
        Some(passwords),
        false,
    )));
    t
}

#[test]
fn a_member_that_may_not_read_the_topic_loses_its_turn_and_the_message_is_withheld() {
    let mut t = tutorial();
    login(&mut t, 1, "u1", Some(("user1", "pw")));
    login(&mut t, 2, "u2", Some(("user2", "pw")));
    login(&mut t, 3, "adm", Some(("admin", "pw")));
    // The SUBSCRIBE is decided on FILTER (`bench/#`), under which each user may read something.
    assert_eq!(granted(&t.subscribe(1, GROUP, QoS::AtMostOnce), 1), [0]);
    assert_eq!(granted(&t.subscribe(2, GROUP, QoS::AtMostOnce), 2), [0]);
    let actions = publish_n(&mut t, 3, "bench/x/y/user1", QoS::AtMostOnce, 6);
    // As Mosquitto 2.0.11 (subs.c, and checked on the real broker): user2's turns are not passed on
    // to user1; those messages go to nobody in the group.
    let to_1: Vec<String> = publishes(&actions, 1).iter().map(payload).collect();
    assert_eq!(to_1, ["0", "2", "4"]);
    assert!(publishes(&actions, 2).is_empty());
    // Audited like any withheld delivery: once per client and topic.
    let audited: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(r) => Some(r.to_json()),
            _ => None,
        })
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(audited[0].contains("\"u2\"") && audited[0].contains("bench/x/y/user1"));
}

#[test]
fn a_shared_subscription_is_refused_and_revoked_by_the_policy_like_any_other() {
    let mut t = tutorial();
    login(&mut t, 1, "u1", Some(("user1", "pw")));
    // Nothing under `bench/+` may ever be read by user1: refused (0x87) and audited with the
    // filter as sent.
    let actions = t.subscribe(1, "$share/g/bench/+", QoS::AtMostOnce);
    assert_eq!(granted(&actions, 1), [reason::NOT_AUTHORIZED]);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Audit(r) if r.to_json().contains("$share/g/bench/+"))));
    assert!(t.r.shared.is_empty());
    // Granted, then revoked by a reload whose policy no longer lets user1 read anything there.
    t.subscribe(1, GROUP, QoS::AtMostOnce);
    assert_eq!(t.r.shared.members(GROUP), ["u1"]);
    let acl = "user admin\ntopic readwrite #\n";
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).unwrap();
    let security = Security::new(Some(policy), None, true);
    t.r.set_security(Arc::new(security));
    assert!(t.r.shared.is_empty());
    assert!(t.r.sessions["u1"].subscriptions.is_empty());
}
