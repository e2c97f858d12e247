//! The outgoing queue of an online client, over raw sockets. A subscriber that reads nothing while a
//! publisher sends holds the publisher back (pacing), then is *slow* and gets Mosquitto's rule: its
//! QoS 0 messages are buffered up to `max_queued_messages`, and what goes beyond is dropped, counted
//! and logged, never silently. (`broker_flow.rs` has the subscribers that do read.)

mod broker_support;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use broker_support::{Broker, RawClient as Client};
use mqtt_policy::broker::codec::{encode, Packet, Properties, Publish, QoS, Version};

/// `n` QoS 0 messages of `size` bytes to `t/x`, each starting with its number.
fn publish_many(p: &mut Client, n: u32, size: usize) {
    let mut out = Vec::new();
    for i in 0..n {
        let mut payload = vec![b'.'; size];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        let packet = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: Some("t/x".try_into().unwrap()),
            pkid: 0,
            payload: Arc::from(payload),
            properties: Properties::default().into(),
        });
        encode(&packet, Version::V311, &mut out);
        if out.len() > 1 << 20 {
            p.s.write_all(&out).expect("publish");
            out.clear();
        }
    }
    p.s.write_all(&out).expect("publish");
    p.sync();
}

/// Sends PINGREQ, then reads QoS 0 PUBLISH packets until the PINGRESP; returns their numbers. Called
/// once the publisher has synchronised, this is everything that was not dropped: the broker handled
/// every PUBLISH before this PINGREQ, and the PINGRESP is queued after what it delivered.
fn receive(s: &mut Client) -> Vec<u32> {
    s.send(&Packet::PingReq);
    let mut got = Vec::new();
    loop {
        match s.read().expect("a PUBLISH or the PINGRESP") {
            (0x30, body) => {
                let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                let p = &body[2 + topic_len..];
                got.push(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
            }
            (0xd0, _) => return got,
            (first, _) => panic!("unexpected packet {first:#x}"),
        }
    }
}

/// Loopback sockets buffer a few MB in the kernel; these sizes overflow that several times over, so
/// most messages must wait in the broker's queue for the subscriber.
const MESSAGES: u32 = 30_000;
const SIZE: usize = 1000;

#[test]
fn qos_0_messages_to_a_slow_subscriber_are_queued_up_to_max_queued_messages_and_none_is_lost() {
    let b = Broker::start(
        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 40000\n",
        |_| {},
    );
    let mut sub = Client::anonymous(&b, "slow");
    sub.subscribe("t/#");
    let mut publisher = Client::anonymous(&b, "fast");
    // The subscriber reads nothing while the publisher sends everything.
    let started = Instant::now();
    publish_many(&mut publisher, MESSAGES, SIZE);
    let got = receive(&mut sub);
    assert_eq!(
        got.len(),
        MESSAGES as usize,
        "lost {} QoS 0 messages below max_queued_messages (after {:?}); log:\n{}",
        MESSAGES as usize - got.len(),
        started.elapsed(),
        b.log()
    );
    assert!(
        got.iter().enumerate().all(|(i, &n)| n as usize == i),
        "out of order"
    );
    assert!(!b.log().contains("dropped"), "{}", b.log());
}

#[test]
fn beyond_max_queued_messages_qos_0_messages_are_dropped_counted_and_logged() {
    let b = Broker::start(
        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100\n",
        |_| {},
    );
    let mut sub = Client::anonymous(&b, "slow");
    sub.subscribe("t/#");
    let mut publisher = Client::anonymous(&b, "fast");
    publish_many(&mut publisher, MESSAGES, SIZE);
    let log = b.wait_log("are being dropped for client \"slow\"");
    assert!(
        log.contains("are being dropped for client \"slow\""),
        "the first drop is logged:\n{log}"
    );
    let got = receive(&mut sub);
    assert!(
        !got.is_empty() && got.len() < MESSAGES as usize,
        "received {} of {MESSAGES}",
        got.len()
    );
    // The subscriber and the broker stay usable, and the subscriber gets new messages again.
    publish_many(&mut publisher, 1, SIZE);
    assert_eq!(receive(&mut sub), [0]);
    // Leaving, the client's drops are summed up: every drop counted.
    drop(sub);
    let log = b.wait_log("were dropped in all");
    let dropped: usize = log
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("client \"slow\": ")?;
            rest.split_once(" outgoing QoS 0 messages were dropped in all")?
                .0
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no summary for \"slow\":\n{log}"));
    assert_eq!(
        dropped + got.len(),
        MESSAGES as usize,
        "every message is either delivered or counted as dropped:\n{log}"
    );
}
