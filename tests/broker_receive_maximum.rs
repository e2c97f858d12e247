//! How many QoS 1 messages the broker has in flight to one client, against Mosquitto 2.1.2 with the
//! same config: `max_inflight_messages` for an MQTT 3.1.1 client and for an MQTT 5 client that
//! sends no Receive Maximum; an MQTT 5 client's Receive Maximum *replaces* it (above or below), as
//! Mosquitto's `property__process_connect` does.

mod broker_support;

use std::sync::Arc;
use std::time::Duration;

use broker_support::ws::Server;
use broker_support::RawClient;
use mqtt_policy::broker::codec::{
    Connect, Packet, Properties, Publish, QoS, SubOptions, Subscribe, SubscribeFilter, Version,
};

/// Anonymous clients, a window of 2.
const CONF: &str =
    "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 2\n";

/// Messages published: more than any window asked for here.
const SENT: u16 = 12;

/// A client that connects with `version` and, when given, Receive Maximum `receive_maximum`,
/// subscribes to `t` at QoS 1 and never acknowledges; `SENT` QoS 1 messages are then published to
/// `t`. Returns how many PUBLISH packets it got before the PINGRESP that follows them.
fn in_flight(server: &Server, version: Version, receive_maximum: Option<u16>) -> usize {
    let port = server.port();
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sub = RawClient::from_stream(s, version);
    let properties = Properties {
        receive_maximum,
        ..Properties::default()
    };
    sub.send(&Packet::Connect(Box::new(Connect {
        version,
        client_id: "window".into(),
        clean_start: true,
        keep_alive: 0,
        username: None,
        password: None,
        will: None,
        properties,
    })));
    let (first, _) = sub.read().expect("CONNACK");
    assert_eq!(first, 0x20, "{}: CONNACK", server.name());
    sub.send(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![SubscribeFilter {
            filter: "t".try_into().unwrap(),
            options: SubOptions::qos(QoS::AtLeastOnce),
        }],
        properties: Properties::default().into(),
    }));
    let (first, _) = sub.read().expect("SUBACK");
    assert_eq!(first, 0x90, "{}: SUBACK", server.name());

    let (mut publisher, _) = RawClient::login_at(port, Version::V311, "publisher", None);
    for pkid in 1..=SENT {
        publisher.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: Some("t".try_into().unwrap()),
            pkid,
            payload: Arc::from(&b"m"[..]),
            properties: Properties::default().into(),
        }));
        let (first, _) = publisher.read().expect("PUBACK");
        assert_eq!(first, 0x40, "{}: PUBACK", server.name());
    }
    publisher.sync();
    sub.send(&Packet::PingReq);
    let mut got = 0;
    loop {
        match sub.read().expect("a PUBLISH or the PINGRESP") {
            (first, _) if first & 0xf0 == 0x30 => got += 1,
            (0xd0, _) => return got,
            (first, _) => panic!("{}: unexpected packet {first:#x}", server.name()),
        }
    }
}

/// The windows of each kind of client, on one broker.
fn windows(server: &Server) -> [usize; 4] {
    [
        in_flight(server, Version::V311, None),
        in_flight(server, Version::V5, None),
        in_flight(server, Version::V5, Some(5)),
        in_flight(server, Version::V5, Some(1)),
    ]
}

#[test]
fn a_v5_clients_receive_maximum_replaces_max_inflight_messages_as_in_mosquitto() {
    let mosquitto = windows(&Server::mosquitto_with(CONF));
    let ours = windows(&Server::ours_with(CONF));
    // 3.1.1, 5 without the property, 5 asking for 5, 5 asking for 1.
    assert_eq!(mosquitto, [2, 2, 5, 1], "mosquitto 2.1.2");
    assert_eq!(ours, mosquitto, "ours against mosquitto 2.1.2");
}
