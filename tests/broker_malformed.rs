//! Bad input over raw sockets: each test is named after the normative statement (or CVE) it checks.
//! The offending client is disconnected (MQTT 5: DISCONNECT with the right reason code); others are
//! unaffected.

mod broker_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_support::Broker;
use mqtt_policy::broker::codec::{encode, Connect, Packet, Properties, Version};

fn broker() -> Broker {
    Broker::start(
        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_packet_size 1024\n",
        |_| {},
    )
}

/// A packet from the server: first byte and body.
#[derive(Debug)]
struct Raw {
    first: u8,
    body: Vec<u8>,
}

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn open(b: &Broker) -> Client {
        let s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn connect(b: &Broker, version: Version, keep_alive: u16) -> (Client, Raw) {
        let mut c = Client::open(b);
        c.send(
            &Packet::Connect(Box::new(Connect {
                version,
                client_id: String::new(),
                clean_start: true,
                keep_alive,
                username: None,
                password: None,
                will: None,
                properties: Properties::default(),
            })),
            version,
        );
        let ack = c.read().expect("CONNACK");
        assert_eq!(ack.first, 0x20);
        (c, ack)
    }

    fn send(&mut self, p: &Packet, v: Version) {
        let mut out = Vec::new();
        encode(p, v, &mut out);
        self.raw(&out);
    }

    fn raw(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// The next packet, or `None` at EOF (bounded by the read timeout).
    fn read(&mut self) -> Option<Raw> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.buf.len() >= 2 {
                let mut len = 0usize;
                let mut i = 1;
                let mut mult = 1;
                while i < self.buf.len() && i <= 4 {
                    len += usize::from(self.buf[i] & 0x7f) * mult;
                    mult *= 128;
                    if self.buf[i] & 0x80 == 0 {
                        break;
                    }
                    i += 1;
                }
                if i < self.buf.len() && self.buf.len() > i + len {
                    let first = self.buf[0];
                    let body = self.buf[i + 1..i + 1 + len].to_vec();
                    self.buf.drain(..i + 1 + len);
                    return Some(Raw { first, body });
                }
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
            if Instant::now() > deadline {
                return None;
            }
        }
    }

    fn expect_closed(&mut self) {
        assert!(self.read().is_none(), "the connection should be closed");
    }

    fn expect_disconnect(&mut self, code: u8) {
        let p = self.read().expect("a DISCONNECT");
        assert_eq!(p.first, 0xE0, "{p:?}");
        assert_eq!(p.body.first().copied(), Some(code), "{p:?}");
        self.expect_closed();
    }
}

fn still_serves_others(b: &Broker) {
    let (mut c, _) = Client::connect(b, Version::V311, 60);
    c.raw(&[0xC0, 0]);
    let p = c.read().expect("PINGRESP");
    assert_eq!(p.first, 0xD0);
}

#[test]
fn mqtt_3_1_0_1_a_first_packet_that_is_not_connect_closes_the_connection() {
    let b = broker();
    let mut c = Client::open(&b);
    c.raw(&[0xC0, 0]);
    c.expect_closed();
    still_serves_others(&b);
}

#[test]
fn mqtt_3_1_2_2_an_unsupported_protocol_level_gets_connack_1() {
    let b = broker();
    let mut c = Client::open(&b);
    c.raw(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 60, 0, 0]);
    let p = c.read().expect("CONNACK");
    assert_eq!((p.first, p.body), (0x20, vec![0, 1]));
    c.expect_closed();
}

#[test]
fn mqtt_3_3_1_4_a_qos_3_publish_gets_v5_disconnect_0x81() {
    let b = broker();
    let (mut c, _) = Client::connect(&b, Version::V5, 60);
    c.raw(&[0x36, 6, 0, 1, b'a', 0, 1, 0]);
    c.expect_disconnect(0x81);
    still_serves_others(&b);
}

#[test]
fn mqtt_3_3_1_4_a_qos_3_publish_closes_a_3_1_1_connection() {
    let b = broker();
    let (mut c, _) = Client::connect(&b, Version::V311, 60);
    c.raw(&[0x36, 5, 0, 1, b'a', 0, 1]);
    c.expect_closed();
}

#[test]
fn mqtt_3_2_2_3_connack_announces_the_maximum_packet_size_and_larger_packets_get_0x95() {
    let b = broker();
    let (mut c, ack) = Client::connect(&b, Version::V5, 60);
    // Maximum Packet Size property 0x27 = 1024.
    assert!(
        ack.body.windows(5).any(|w| w == [0x27, 0, 0, 4, 0]),
        "{ack:?}"
    );
    // Header of a 100,000-byte PUBLISH: refused before the body arrives (CVE-2017-7651).
    c.raw(&[0x30, 0xA0, 0x8D, 0x06]);
    c.expect_disconnect(0x95);
    still_serves_others(&b);
}

#[test]
fn cve_2019_11779_a_topic_of_more_than_200_levels_gets_disconnect_0x90() {
    let b = broker();
    let (mut c, _) = Client::connect(&b, Version::V5, 60);
    let topic = "/".repeat(300);
    let mut body = vec![0u8, 0];
    body[0] = (topic.len() >> 8) as u8;
    body[1] = topic.len() as u8;
    body.extend_from_slice(topic.as_bytes());
    body.push(0); // properties
    let mut packet = vec![0x30];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    c.raw(&packet);
    c.expect_disconnect(0x90);
}

#[test]
fn mqtt_1_5_3_2_a_string_with_u0000_gets_disconnect_0x81() {
    let b = broker();
    let (mut c, _) = Client::connect(&b, Version::V5, 60);
    c.raw(&[0x30, 5, 0, 2, b'a', 0, 0]);
    c.expect_disconnect(0x81);
}

#[test]
fn mqtt_3_3_2_9_a_topic_alias_above_the_maximum_gets_disconnect_0x94() {
    let b = broker();
    let (mut c, _) = Client::connect(&b, Version::V5, 60);
    c.send(
        &Packet::Publish(mqtt_policy::broker::codec::Publish {
            dup: false,
            qos: mqtt_policy::broker::codec::QoS::AtMostOnce,
            retain: false,
            topic: Some("a".try_into().unwrap()),
            pkid: 0,
            payload: Arc::from(&b"x"[..]),
            properties: Properties {
                topic_alias: Some(11),
                ..Properties::default()
            }
            .into(),
        }),
        Version::V5,
    );
    c.expect_disconnect(0x94);
}

#[test]
fn cve_2021_41039_a_flood_of_user_properties_gets_disconnect_0x81() {
    let b = Broker::start("listener {port} 127.0.0.1\nallow_anonymous true\n", |_| {});
    let (mut c, _) = Client::connect(&b, Version::V5, 60);
    c.send(
        &Packet::Publish(mqtt_policy::broker::codec::Publish {
            dup: false,
            qos: mqtt_policy::broker::codec::QoS::AtMostOnce,
            retain: false,
            topic: Some("a".try_into().unwrap()),
            pkid: 0,
            payload: Arc::from(&b"x"[..]),
            properties: Properties {
                user: vec![("k".into(), "v".into()); 10_000],
                ..Properties::default()
            }
            .into(),
        }),
        Version::V5,
    );
    c.expect_disconnect(0x81);
}

#[test]
fn mqtt_3_1_2_24_a_client_silent_for_one_and_a_half_keep_alives_is_disconnected() {
    let b = broker();
    let (mut c, _) = Client::connect(&b, Version::V311, 1);
    let start = Instant::now();
    c.expect_closed();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[test]
fn mqtt_3_1_0_2_a_second_connect_gets_disconnect_0x82() {
    let b = broker();
    let (mut c, _) = Client::connect(&b, Version::V5, 60);
    c.send(
        &Packet::Connect(Box::new(Connect {
            version: Version::V5,
            client_id: "x".into(),
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            properties: Properties::default(),
        })),
        Version::V5,
    );
    c.expect_disconnect(0x82);
}
