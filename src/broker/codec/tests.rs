//! Codec tests, named after the normative statement each checks.

use std::sync::Arc;

use super::*;

const MAX: usize = 1 << 20;

fn connect(version: Version) -> Connect {
    Connect {
        version,
        client_id: "c1".into(),
        clean_start: true,
        keep_alive: 60,
        username: Some("user1".into()),
        password: Some(b"123456".to_vec()),
        will: Some(Will {
            topic: "w/t".try_into().unwrap(),
            payload: Arc::from(&b"bye"[..]),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties {
                will_delay: Some(5),
                ..Properties::default()
            }
            .only_if(version.is_v5()),
        }),
        properties: Properties {
            session_expiry: Some(30),
            receive_maximum: Some(10),
            user: vec![("k".into(), "v".into())],
            ..Properties::default()
        }
        .only_if(version.is_v5()),
    }
}

impl Properties {
    fn only_if(self, keep: bool) -> Properties {
        if keep {
            self
        } else {
            Properties::default()
        }
    }
}

fn bytes(p: &Packet, v: Version) -> Vec<u8> {
    let mut out = Vec::new();
    encode(p, v, &mut out);
    out
}

fn decode_one(buf: &[u8], v: Option<Version>) -> Result<Packet, DecodeError> {
    match decode_client_packet(buf, v, MAX)? {
        Some((p, n)) => {
            assert_eq!(n, buf.len());
            Ok(p)
        }
        None => panic!("incomplete"),
    }
}

#[test]
fn connect_round_trips_in_both_versions() {
    for v in [Version::V311, Version::V5, Version::V31] {
        let c = connect(v);
        let p = Packet::Connect(Box::new(c.clone()));
        assert_eq!(decode_one(&bytes(&p, v), None).unwrap(), p);
    }
}

#[test]
fn publish_and_acks_round_trip() {
    let p = Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: true,
        topic: Some("a/b".try_into().unwrap()),
        pkid: 7,
        payload: Arc::from(&b"hello"[..]),
        properties: Properties {
            message_expiry: Some(9),
            content_type: Some("text/plain".into()),
            user: vec![("a".into(), "b".into())],
            ..Properties::default()
        }
        .into(),
    });
    assert_eq!(
        decode_one(&bytes(&p, Version::V5), Some(Version::V5)).unwrap(),
        p
    );
    let ack = Ack {
        pkid: 3,
        reason: 0x87,
        properties: Properties {
            reason_string: Some("no".into()),
            ..Properties::default()
        }
        .into(),
    };
    for p in [
        Packet::PubAck(ack.clone()),
        Packet::PubRec(ack.clone()),
        Packet::PubRel(ack.clone()),
        Packet::PubComp(ack),
    ] {
        assert_eq!(
            decode_one(&bytes(&p, Version::V5), Some(Version::V5)).unwrap(),
            p
        );
    }
    assert_eq!(
        bytes(
            &Packet::PubAck(Ack {
                pkid: 3,
                reason: 0x87,
                properties: Props::default()
            }),
            Version::V311
        ),
        [0x40, 2, 0, 3]
    );
}

#[test]
fn subscribe_round_trips_with_v5_options() {
    let s = Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![SubscribeFilter {
            filter: "a/+/#".try_into().unwrap(),
            options: SubOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: 2,
            },
        }],
        properties: Properties {
            subscription_ids: vec![5],
            ..Properties::default()
        }
        .into(),
    });
    assert_eq!(
        decode_one(&bytes(&s, Version::V5), Some(Version::V5)).unwrap(),
        s
    );
}

#[test]
fn mqtt_3_1_0_1_the_first_packet_must_be_connect() {
    let err = decode_client_packet(&[0xC0, 0], None, MAX).unwrap_err();
    assert!(matches!(err, DecodeError::Protocol(_)));
}

#[test]
fn mqtt_3_1_0_2_a_second_connect_is_a_protocol_violation() {
    let b = bytes(
        &Packet::Connect(Box::new(connect(Version::V311))),
        Version::V311,
    );
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), MAX),
        Err(DecodeError::Protocol(_))
    ));
}

#[test]
fn mqtt_3_1_2_2_an_unknown_protocol_level_is_reported() {
    let mut b = bytes(
        &Packet::Connect(Box::new(connect(Version::V311))),
        Version::V311,
    );
    b[8] = 6; // protocol level
    assert_eq!(
        decode_client_packet(&b, None, MAX).unwrap_err(),
        DecodeError::UnsupportedProtocol {
            level: 6,
            known_name: true
        }
    );
}

#[test]
fn mqtt_3_1_2_3_the_reserved_connect_flag_must_be_zero() {
    let mut b = bytes(
        &Packet::Connect(Box::new(connect(Version::V311))),
        Version::V311,
    );
    b[9] |= 1;
    assert!(matches!(
        decode_client_packet(&b, None, MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn mqtt_3_1_2_22_a_password_needs_a_user_name_in_3_1_1() {
    let mut c = connect(Version::V311);
    c.username = None;
    let b = bytes(&Packet::Connect(Box::new(c.clone())), Version::V311);
    assert!(matches!(
        decode_client_packet(&b, None, MAX),
        Err(DecodeError::Malformed(_))
    ));
    // MQTT 5 allows it.
    c.version = Version::V5;
    let b = bytes(&Packet::Connect(Box::new(c)), Version::V5);
    assert!(decode_client_packet(&b, None, MAX).is_ok());
}

#[test]
fn mqtt_2_2_2_2_reserved_fixed_header_flags_are_malformed() {
    // SUBSCRIBE must have flags 0b0010.
    let b = [0x80, 6, 0, 1, 0, 1, b'a', 0];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn mqtt_3_3_1_2_dup_on_qos_0_is_malformed() {
    let b = [0x38, 3, 0, 1, b'a'];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn mqtt_3_3_1_4_qos_3_is_malformed() {
    let b = [0x36, 5, 0, 1, b'a', 0, 1];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn mqtt_3_3_2_2_a_topic_name_with_wildcards_is_invalid() {
    let b = [0x30, 3, 0, 1, b'#'];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V5), MAX),
        Err(DecodeError::TopicInvalid(_))
    ));
}

#[test]
fn cve_2019_11779_more_than_200_slashes_are_refused_as_mosquitto_and_the_policy_do() {
    // Mosquitto (`util_topic.c`, 2.0.22) refuses more than 200 `/`; the codec and the policy now use
    // one grammar, so they agree at exactly 200 (where they once disagreed).
    let topic = "a/".repeat(201) + "a";
    assert!(check_topic_name(&topic).is_err());
    assert!(check_topic_filter(&topic).is_err());
    let ok = "a/".repeat(200) + "a";
    assert!(check_topic_name(&ok).is_ok());
    assert!(check_topic_filter(&ok).is_ok());
    assert_eq!(crate::policy::topic::validate_topic(&ok), Ok(()));
    assert_eq!(crate::policy::topic::validate_filter(&ok), Ok(()));
}

#[test]
fn cve_2017_7651_an_oversized_remaining_length_is_refused_before_buffering() {
    // Remaining length 268,435,455 with only the header present.
    let b = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), 1024),
        Err(DecodeError::TooLarge { .. })
    ));
    // A fifth length byte is malformed.
    let b = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), usize::MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn cve_2021_41039_a_flood_of_user_properties_is_refused() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: Some("a".try_into().unwrap()),
        pkid: 0,
        payload: Arc::from(&b""[..]),
        properties: Properties {
            user: vec![("k".into(), "v".into()); MAX_USER_PROPERTIES + 1],
            ..Properties::default()
        }
        .into(),
    });
    assert!(matches!(
        decode_client_packet(&bytes(&p, Version::V5), Some(Version::V5), MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn mqtt_2_2_2_2_a_property_twice_is_a_protocol_error() {
    // PUBLISH "a", properties: message expiry twice.
    let b = [0x30, 14, 0, 1, b'a', 10, 2, 0, 0, 0, 1, 2, 0, 0, 0, 1];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V5), MAX),
        Err(DecodeError::Protocol(_))
    ));
}

#[test]
fn a_property_in_the_wrong_packet_is_a_protocol_error() {
    // PUBLISH with Session Expiry Interval (0x11).
    let b = [0x30, 9, 0, 1, b'a', 5, 0x11, 0, 0, 0, 1];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V5), MAX),
        Err(DecodeError::Protocol(_))
    ));
}

#[test]
fn mqtt_1_5_3_1_strings_must_be_valid_utf8_without_nul() {
    let b = [0x30, 4, 0, 2, 0xC3, 0x28];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), MAX),
        Err(DecodeError::Malformed(_))
    ));
    let b = [0x30, 4, 0, 2, b'a', 0];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn mqtt_3_8_3_3_subscribe_needs_a_filter() {
    let b = [0x82, 2, 0, 1];
    assert!(matches!(
        decode_client_packet(&b, Some(Version::V311), MAX),
        Err(DecodeError::Protocol(_))
    ));
}

#[test]
fn mqtt_4_7_1_2_hash_must_be_last_and_wildcards_whole_levels() {
    assert!(check_topic_filter("a/#/b").is_err());
    assert!(check_topic_filter("a+/b").is_err());
    assert!(check_topic_filter("a/b#").is_err());
    assert!(check_topic_filter("+/+/#").is_ok());
    assert!(check_topic_filter("$share/g/a/#").is_ok());
    assert!(check_topic_filter("$share/g").is_err());
}

#[test]
fn mqtt_4_8_2_1_and_2_a_shared_filter_needs_a_plain_share_name_and_a_filter() {
    for bad in [
        "$share",
        "$share/",
        "$share//x",
        "$share/g",
        "$share/g/",
        "$share/+/x",
        "$share/#",
    ] {
        assert!(
            matches!(check_topic_filter(bad), Err(DecodeError::Protocol(_))),
            "{bad}"
        );
    }
    // Wildcards that are not whole levels, or `#` before the end, are malformed anywhere.
    for bad in ["$share/a+/x", "$share/#/x"] {
        assert!(
            matches!(check_topic_filter(bad), Err(DecodeError::Malformed(_))),
            "{bad}"
        );
    }
    for good in [
        "$share/g/x",
        "$share/g/+/#",
        "$share/g/#",
        "$share/g//",
        "$sharefoo/x",
    ] {
        assert!(check_topic_filter(good).is_ok(), "{good}");
    }
}

#[test]
fn mqtt_2_3_1_1_packet_identifier_zero_is_refused() {
    let b = [0x40, 2, 0, 0];
    assert!(decode_client_packet(&b, Some(Version::V311), MAX).is_err());
}

#[test]
fn partial_packets_ask_for_more_bytes() {
    let b = bytes(
        &Packet::Connect(Box::new(connect(Version::V5))),
        Version::V5,
    );
    for cut in 0..b.len() {
        assert_eq!(decode_client_packet(&b[..cut], None, MAX).unwrap(), None);
    }
}

#[test]
fn connack_codes_map_per_version() {
    assert_eq!(ConnectReason::BadCredentials.code(Version::V311), Some(4));
    assert_eq!(ConnectReason::BadCredentials.code(Version::V5), Some(0x86));
    assert_eq!(ConnectReason::NotAuthorized.code(Version::V311), Some(5));
    assert_eq!(ConnectReason::NotAuthorized.code(Version::V5), Some(0x87));
    assert_eq!(ConnectReason::Malformed.code(Version::V311), None);
}

#[test]
fn truncated_and_random_input_never_panics() {
    let mut seed: u32 = 12345;
    for _ in 0..20_000 {
        let len = (seed % 40) as usize;
        let mut buf = Vec::with_capacity(len);
        for _ in 0..len {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            buf.push((seed >> 16) as u8);
        }
        for v in [None, Some(Version::V311), Some(Version::V5)] {
            let _ = decode_client_packet(&buf, v, MAX);
        }
    }
}

/// A client's QoS 0 PUBLISH of `topic` (any bytes), as it is on the wire in `version`.
fn raw_publish(topic: &[u8], version: Version) -> Vec<u8> {
    let mut body = Vec::new();
    put_binary(&mut body, topic);
    if version.is_v5() {
        body.push(0); // no properties
    }
    body.extend_from_slice(b"x");
    let mut out = Vec::new();
    frame(&mut out, 0x30, &body);
    out
}

fn raw_unsubscribe(filter: &[u8], version: Version) -> Vec<u8> {
    let mut body = vec![0, 1];
    if version.is_v5() {
        body.push(0); // no properties
    }
    put_binary(&mut body, filter);
    let mut out = Vec::new();
    frame(&mut out, 0xA2, &body);
    out
}

/// The PUBLISH a client sends with `topic` in `version`, decoded.
fn publish_of(topic: &[u8], version: Version) -> Publish {
    match decode_one(&raw_publish(topic, version), Some(version)) {
        Ok(Packet::Publish(p)) => p,
        other => panic!("a PUBLISH: {other:?}"),
    }
}

#[test]
fn topics_are_decoded_into_the_grammars_types() {
    let p = publish_of(b"a/b", Version::V311);
    assert_eq!(p.topic, Some(TopicName::new("a/b").unwrap()));
    // MQTT 5: an empty topic stands for a topic alias, resolved by the router.
    assert_eq!(publish_of(b"", Version::V5).topic, None);
    assert!(matches!(
        decode_one(&raw_publish(b"", Version::V311), Some(Version::V311)),
        Err(DecodeError::TopicInvalid(_))
    ));
    let unsubscribe = raw_unsubscribe(b"$share/g/a/+", Version::V311);
    let u = match decode_one(&unsubscribe, Some(Version::V311)) {
        Ok(Packet::Unsubscribe(u)) => u,
        other => panic!("an UNSUBSCRIBE: {other:?}"),
    };
    let (group, inner) = u.filters[0].share().expect("a shared filter");
    assert_eq!((group, inner.as_str()), ("g", "a/+"));
}

#[test]
fn mqtt_1_5_3_a_topic_not_utf8_or_with_nul_never_becomes_a_type() {
    for bad in [&b"a/\xff"[..], b"a\0b", b"\xc3"] {
        assert!(
            matches!(
                decode_one(&raw_publish(bad, Version::V311), Some(Version::V311)),
                Err(DecodeError::Malformed(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(
                decode_one(&raw_unsubscribe(bad, Version::V311), Some(Version::V311)),
                Err(DecodeError::Malformed(_))
            ),
            "{bad:?}"
        );
    }
    // U+0000 is refused before the grammar, as by every other string: `+\0` is malformed, not
    // a topic with a wildcard.
    assert!(matches!(
        decode_one(&raw_publish(b"+\0", Version::V5), Some(Version::V5)),
        Err(DecodeError::Malformed("a string contains U+0000"))
    ));
}

#[test]
fn two_hundred_and_one_levels_decode_and_two_hundred_and_two_do_not() {
    let levels = |n: usize| vec!["l"; n].join("/");
    let p = publish_of(levels(201).as_bytes(), Version::V5);
    assert_eq!(p.topic.as_deref(), Some(&*levels(201)));
    let too_deep = raw_publish(levels(202).as_bytes(), Version::V5);
    assert!(matches!(
        decode_one(&too_deep, Some(Version::V5)),
        Err(DecodeError::TopicInvalid(_))
    ));
    let unsubscribe = raw_unsubscribe(levels(201).as_bytes(), Version::V5);
    assert!(decode_one(&unsubscribe, Some(Version::V5)).is_ok());
    let too_deep = raw_unsubscribe(levels(202).as_bytes(), Version::V5);
    assert!(matches!(
        decode_one(&too_deep, Some(Version::V5)),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn an_unchecked_subscribe_is_the_bytes_of_a_checked_one() {
    let options = SubOptions::qos(QoS::AtLeastOnce);
    for v in [Version::V311, Version::V5] {
        let checked = Packet::Subscribe(Subscribe {
            pkid: 9,
            filters: vec![SubscribeFilter {
                filter: TopicFilter::new("a/+").unwrap(),
                options,
            }],
            properties: Props::default(),
        });
        let mut unchecked = Vec::new();
        encode_subscribe_unchecked(9, "a/+", options, v, &mut unchecked);
        assert_eq!(bytes(&checked, v), unchecked);
    }
}

fn cached_topic(buf: &[u8], cache: &mut TopicCache) -> Result<TopicName, DecodeError> {
    match decode_client_packet_cached(buf, Some(Version::V311), MAX, cache)? {
        Some((Packet::Publish(p), _)) => Ok(p.topic.expect("a topic")),
        other => panic!("not a PUBLISH: {other:?}"),
    }
}

#[test]
fn a_connections_repeated_topic_is_decoded_once_and_a_new_or_invalid_one_is_still_checked() {
    let mut cache = TopicCache::default();
    let first = cached_topic(&raw_publish(b"a/b", Version::V311), &mut cache).unwrap();
    let again = cached_topic(&raw_publish(b"a/b", Version::V311), &mut cache).unwrap();
    assert!(
        std::ptr::eq(first.as_str(), again.as_str()),
        "the same topic shares the first one's text"
    );
    let other = cached_topic(&raw_publish(b"a/c", Version::V311), &mut cache).unwrap();
    assert_eq!(other.as_str(), "a/c");
    // MQTT-3.3.2-2: no wildcard in a topic name, whatever was cached before.
    assert!(cached_topic(&raw_publish(b"a/+", Version::V311), &mut cache).is_err());
    assert_eq!(
        cached_topic(&raw_publish(b"a/c", Version::V311), &mut cache)
            .unwrap()
            .as_str(),
        "a/c"
    );
}
