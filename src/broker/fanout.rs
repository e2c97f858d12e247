//! A message's PUBLISH shared by all its deliveries: a fan-out to N subscribers neither builds N
//! [`Publish`] packets (a topic `String` and a [`super::codec::Properties`] each) nor encodes the
//! message N times.
//!
//! A delivery's PUBLISH differs from another delivery's of the same message only in its first byte
//! (QoS, DUP, RETAIN), its packet identifier and, for MQTT 5, the properties that are the
//! subscriber's own (Subscription Identifiers, the Message Expiry Interval left). A delivery
//! without the latter ([`OutPublish::shareable`]) is queued as an [`OutPublish`]: the message (an
//! `Arc`) and those few fields. Its connection writes it from the message's bytes as they are
//! (topic, payload) and from its MQTT 5 property block, encoded once per message
//! ([`Encodings`]), putting the packet identifier in between: one copy into the write buffer per
//! delivery, no allocation.

use std::sync::{Arc, OnceLock};

use super::codec::{put_str, put_varint, varint_len, Properties, Publish, QoS, Version};
use super::session::Message;

/// What a message's deliveries share beyond its topic and payload: its MQTT 5 property block,
/// encoded when the first MQTT 5 delivery is written.
#[derive(Clone, Debug, Default)]
pub struct Encodings {
    v5_properties: OnceLock<Box<[u8]>>,
}

impl Encodings {
    /// The property block (length and properties) of `properties`, the message's own.
    fn v5_properties(&self, properties: &Properties) -> &[u8] {
        self.v5_properties.get_or_init(|| {
            let mut b = Vec::new();
            properties.write(&mut b);
            b.into_boxed_slice()
        })
    }
}

/// One delivery's PUBLISH as an outbox holds it: the shared message and what is this delivery's
/// own.
#[derive(Clone, Debug)]
pub struct OutPublish {
    /// The message (its topic, payload and properties are the packet's).
    pub msg: Arc<Message>,
    /// Packet identifier (0 for QoS 0).
    pub pkid: u16,
    /// QoS.
    pub qos: QoS,
    /// DUP flag.
    pub dup: bool,
    /// RETAIN flag.
    pub retain: bool,
}

impl OutPublish {
    /// `true` when a delivery of `msg` to a peer speaking `version` with subscription identifiers
    /// `sub_ids` has no property of its own, and so may be written as an [`OutPublish`]: always
    /// for MQTT 3.1/3.1.1 (no properties at all); for MQTT 5 without Subscription Identifiers and
    /// without a Message Expiry Interval (whose remaining time is each delivery's own).
    pub fn shareable(msg: &Message, sub_ids: &[u32], version: Version) -> bool {
        !version.is_v5() || (sub_ids.is_empty() && msg.expires_at.is_none())
    }

    /// Payload bytes (what `max_queued_bytes` counts).
    pub fn payload_len(&self) -> usize {
        self.msg.payload.len()
    }

    /// The length of the PUBLISH's variable header and payload, and the property block for MQTT 5.
    fn parts(&self, version: Version) -> (usize, Option<&[u8]>) {
        let m = &*self.msg;
        let props = version
            .is_v5()
            .then(|| m.encoded.v5_properties(&m.properties));
        let id = if self.qos == QoS::AtMostOnce { 0 } else { 2 };
        let len = 2 + m.topic.len() + id + props.map_or(0, <[u8]>::len) + m.payload.len();
        (len, props)
    }

    /// The whole packet's length for a peer speaking `version` (for its Maximum Packet Size).
    pub fn encoded_len(&self, version: Version) -> usize {
        let (len, _) = self.parts(version);
        1 + varint_len(len) + len
    }

    /// Appends the PUBLISH for a peer speaking `version`: the same bytes as
    /// [`super::codec::encode`] of [`OutPublish::to_publish`].
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        let m = &*self.msg;
        let (len, props) = self.parts(version);
        let mut first = 0x30 | ((self.qos as u8) << 1);
        if self.dup {
            first |= 0x08;
        }
        if self.retain {
            first |= 0x01;
        }
        out.reserve(1 + varint_len(len) + len);
        out.push(first);
        put_varint(out, len);
        put_str(out, &m.topic);
        if self.qos != QoS::AtMostOnce {
            out.extend_from_slice(&self.pkid.to_be_bytes());
        }
        if let Some(props) = props {
            out.extend_from_slice(props);
        }
        out.extend_from_slice(&m.payload);
    }

    /// The same packet as a [`Publish`].
    pub fn to_publish(&self) -> Publish {
        let m = &*self.msg;
        Publish {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: Some(m.topic.clone()),
            pkid: self.pkid,
            payload: Arc::clone(&m.payload),
            properties: m.properties.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec;

    fn message(properties: Properties, payload: usize) -> Arc<Message> {
        let mut m = Message::for_tests("a/b/ü", &vec![9u8; payload]);
        m.properties = properties.into();
        Arc::new(m)
    }

    #[test]
    fn a_shared_publish_encodes_as_the_packet_it_stands_for() {
        let mut props = Properties::default();
        props.user.push(("k".into(), "v".into()));
        props.content_type = Some("text/plain".into());
        props.payload_format = Some(1);
        for properties in [Properties::default(), props] {
            // 200 bytes: a remaining length of two bytes.
            for payload in [0, 5, 200, 20_000] {
                let msg = message(properties.clone(), payload);
                for (qos, pkid) in [
                    (QoS::AtMostOnce, 0),
                    (QoS::AtLeastOnce, 7),
                    (QoS::ExactlyOnce, 0x1234),
                ] {
                    for (dup, retain) in [(false, false), (true, false), (false, true)] {
                        let p = OutPublish {
                            msg: Arc::clone(&msg),
                            pkid,
                            qos,
                            dup: dup && qos != QoS::AtMostOnce,
                            retain,
                        };
                        for v in [Version::V31, Version::V311, Version::V5] {
                            let mut want = Vec::new();
                            codec::encode(&codec::Packet::Publish(p.to_publish()), v, &mut want);
                            let mut got = vec![0xAA];
                            p.encode(v, &mut got);
                            assert_eq!(got[1..], want[..], "{p:?} {v:?}");
                            assert_eq!(p.encoded_len(v), want.len());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_deliveries_without_properties_of_their_own_are_shared() {
        let msg = message(Properties::default(), 1);
        assert!(OutPublish::shareable(&msg, &[], Version::V5));
        assert!(!OutPublish::shareable(&msg, &[3], Version::V5));
        assert!(OutPublish::shareable(&msg, &[], Version::V311));
        let mut expiring = Message::for_tests("a", b"");
        expiring.expires_at = Some(std::time::Instant::now());
        assert!(!OutPublish::shareable(&expiring, &[], Version::V5));
        assert!(OutPublish::shareable(&expiring, &[], Version::V311));
    }
}
