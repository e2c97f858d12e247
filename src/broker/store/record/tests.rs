use super::*;
use crate::broker::codec::Properties;

fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        wall: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

fn message(c: &Clock) -> Message {
    Message {
        topic: "colombia/cundinamarca/cajica/user1".try_into().unwrap(),
        payload: (0..=255u8).collect::<Vec<_>>().into(),
        qos: QoS::ExactlyOnce,
        retain: true,
        properties: Properties {
            content_type: Some("text/plain".to_owned()),
            correlation_data: Some(vec![1, 2, 3]),
            user: vec![("k".to_owned(), "v".to_owned())],
            ..Properties::default()
        }
        .into(),
        expires_at: Some(c.now + Duration::from_secs(90)),
        origin: Origin {
            username: Some("user1".into()),
            client_id: "pub-1".into(),
        },
        encoded: Default::default(),
    }
}

#[test]
fn a_message_reads_back_as_written_with_its_expiry_in_wall_clock_time() {
    let c = clock();
    let m = message(&c);
    let (back, expires) = decode_message(&encode_message(&m, &c), &c).unwrap();
    assert_eq!(back.topic, m.topic);
    assert_eq!(back.payload, m.payload);
    assert_eq!(back.qos, m.qos);
    assert!(back.retain);
    assert_eq!(back.properties, m.properties);
    assert_eq!(back.origin, m.origin);
    assert_eq!(expires, Some(c.wall + Duration::from_secs(90)));
    assert_eq!(back.expires_at, m.expires_at);
}

#[test]
fn a_restart_later_sees_less_time_left() {
    let c = clock();
    let m = message(&c);
    let later = Clock {
        now: c.now + Duration::from_secs(5),
        wall: c.wall + Duration::from_secs(60),
    };
    let (back, _) = decode_message(&encode_message(&m, &c), &later).unwrap();
    assert_eq!(back.expires_at, Some(later.now + Duration::from_secs(30)));
}

#[test]
fn a_session_reads_back_as_written() {
    let s = SessionImage {
        client_id: "sensor-1".into(),
        username: Some("user1".to_owned()),
        version: Version::V5,
        expiry: Expiry::After(3600),
        disconnected_at: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
        subscriptions: vec![
            (
                "a/+/c".try_into().unwrap(),
                SubEntry {
                    options: SubOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: false,
                        retain_handling: 2,
                    },
                    id: Some(7),
                },
            ),
            (
                "$share/g/x/#".try_into().unwrap(),
                SubEntry {
                    options: SubOptions::qos(QoS::ExactlyOnce),
                    id: None,
                },
            ),
        ],
        will: Some(Box::new(Will {
            topic: "status/sensor-1".try_into().unwrap(),
            payload: b"gone".to_vec().into(),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties {
                will_delay: Some(30),
                ..Properties::default()
            },
        })),
        will_due: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_030_123)),
    };
    let back = decode_session(&encode_session(&s)).unwrap();
    assert_eq!(&*back.client_id, "sensor-1");
    assert_eq!(back.username, s.username);
    assert_eq!(back.version, Version::V5);
    assert_eq!(back.expiry, Expiry::After(3600));
    assert_eq!(back.disconnected_at, s.disconnected_at);
    assert_eq!(back.subscriptions, s.subscriptions);
    assert_eq!(back.will.as_deref(), s.will.as_deref());
    assert_eq!(back.will_due, s.will_due);
}

#[test]
fn deliveries_read_back_in_each_state() {
    let c = clock();
    let d = Delivery {
        msg: Arc::new(message(&c)),
        qos: QoS::AtLeastOnce,
        retain: false,
        sub_ids: vec![3, 9],
        seq: 42,
    };
    for (state, kind, pkid, msg_id) in [
        (DeliveryState::Queued(d.clone()), 0, 0, 5),
        (DeliveryState::Sent(17, d.clone()), 1, 17, 5),
        (DeliveryState::Released(18), 2, 18, 0),
    ] {
        let b = encode_delivery(&state, msg_id);
        assert_eq!(delivery_msg_id(&b), msg_id);
        let back = decode_delivery(&b).unwrap();
        assert_eq!((back.kind, back.pkid, back.msg_id), (kind, pkid, msg_id));
        if kind != 2 {
            assert_eq!(back.options, Some((QoS::AtLeastOnce, false, vec![3, 9])));
        }
    }
}

#[test]
fn a_damaged_record_is_an_error_that_says_what_is_wrong_never_a_panic() {
    let c = clock();
    let good = encode_message(&message(&c), &c);
    for cut in 0..good.len() {
        let e = decode_message(&good[..cut], &c).unwrap_err();
        assert!(e.0.starts_with("message:"), "{e}");
    }
    let mut newer = good.clone();
    newer[0] = FORMAT + 1;
    let e = decode_message(&newer, &c).unwrap_err();
    assert!(e.0.contains("format"), "{e}");
    let mut longer = good;
    longer.push(0);
    assert!(decode_message(&longer, &c)
        .unwrap_err()
        .0
        .contains("after the end"));
    // Every byte flipped in turn: an error or a message, never a panic.
    let s = encode_session(
        &decode_session(&encode_session(&SessionImage {
            client_id: "c".into(),
            username: None,
            version: Version::V311,
            expiry: Expiry::Never,
            disconnected_at: None,
            subscriptions: vec![],
            will: None,
            will_due: None,
        }))
        .unwrap(),
    );
    for i in 0..s.len() {
        let mut b = s.clone();
        b[i] ^= 0xFF;
        let _ = decode_session(&b);
    }
}
