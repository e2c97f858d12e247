//! PUBLISH and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP.

use std::sync::Arc;

use super::{
    frame, put_str, topic_name, DecodeError, PropertyContext, Props, QoS, Reader, Version,
};
use crate::policy::topic::TopicName;

/// A PUBLISH packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name, checked by the grammar; `None` only in a client's MQTT 5 PUBLISH whose topic
    /// alias stands for it (sent as an empty string).
    pub topic: Option<TopicName>,
    /// Packet identifier (0 for QoS 0).
    pub pkid: u16,
    /// The application message.
    pub payload: Arc<[u8]>,
    /// MQTT 5 properties.
    pub properties: Props,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    /// Packet identifier.
    pub pkid: u16,
    /// MQTT 5 reason code (0 = success; not sent to 3.1.1 peers).
    pub reason: u8,
    /// MQTT 5 properties (reason string, user properties).
    pub properties: Props,
}

impl Ack {
    /// A successful acknowledgement of `pkid`.
    pub fn new(pkid: u16) -> Ack {
        Ack {
            pkid,
            reason: 0,
            properties: Props::default(),
        }
    }
}

/// The topic name of a connection's last PUBLISH: a client that publishes to the same topic again
/// (a sensor's readings) gets the same [`TopicName`], without checking the grammar and allocating
/// it again. Boxed on the first PUBLISH: a connection that never publishes pays one pointer.
#[derive(Debug, Default)]
pub struct TopicCache(Option<Box<TopicName>>);

impl TopicCache {
    /// `text` as a topic name: the last one if it is the same, else checked by the grammar.
    fn get(&mut self, text: &str) -> Result<TopicName, DecodeError> {
        if let Some(last) = &self.0 {
            if last.as_str() == text {
                return Ok(TopicName::clone(last));
            }
        }
        let topic = topic_name(text)?;
        match &mut self.0 {
            Some(last) => **last = topic.clone(),
            None => self.0 = Some(Box::new(topic.clone())),
        }
        Ok(topic)
    }
}

/// Decodes a PUBLISH body with the fixed header's `flags`.
pub(crate) fn decode_publish(
    flags: u8,
    body: &[u8],
    version: Version,
    cache: &mut TopicCache,
) -> Result<Publish, DecodeError> {
    let dup = flags & 0x08 != 0;
    let retain = flags & 0x01 != 0;
    let qos = QoS::from_bits((flags >> 1) & 0x03)
        .ok_or(DecodeError::Malformed("PUBLISH with QoS 3 (MQTT-3.3.1-4)"))?;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::Malformed(
            "DUP set on a QoS 0 PUBLISH (MQTT-3.3.1-2)",
        ));
    }
    let mut r = Reader::new(body);
    let text = r.utf8()?;
    let topic = if text.is_empty() && version.is_v5() {
        // The empty topic of a PUBLISH naming its topic by alias (the router resolves it).
        None
    } else {
        Some(cache.get(text)?)
    };
    let pkid = if qos == QoS::AtMostOnce {
        0
    } else {
        let id = r.u16()?;
        if id == 0 {
            return Err(DecodeError::Protocol(
                "a packet identifier of 0 (MQTT-2.3.1-1)",
            ));
        }
        id
    };
    let properties = if version.is_v5() {
        let p = Props::read(&mut r, PropertyContext::Publish)?;
        if !p.subscription_ids.is_empty() {
            return Err(DecodeError::Protocol(
                "a client PUBLISH carries a subscription identifier (MQTT-3.3.4-6)",
            ));
        }
        p
    } else {
        // MQTT 3.1.1 has no properties: no `Properties` to build and compare with the empty one.
        Props::default()
    };
    let payload: Arc<[u8]> = Arc::from(r.rest());
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        pkid,
        payload,
        properties,
    })
}

/// Decodes a PUBACK/PUBREC/PUBREL/PUBCOMP body.
pub(crate) fn decode_ack(body: &[u8], version: Version) -> Result<Ack, DecodeError> {
    let mut r = Reader::new(body);
    let pkid = r.u16()?;
    if pkid == 0 {
        return Err(DecodeError::Protocol(
            "a packet identifier of 0 (MQTT-2.3.1-1)",
        ));
    }
    if !version.is_v5() {
        if !r.is_empty() {
            return Err(DecodeError::Malformed(
                "an acknowledgement longer than 2 bytes",
            ));
        }
        return Ok(Ack::new(pkid));
    }
    let reason = if r.is_empty() { 0 } else { r.u8()? };
    let properties = if r.is_empty() {
        Props::default()
    } else {
        Props::read(&mut r, PropertyContext::Ack)?
    };
    if !r.is_empty() {
        return Err(DecodeError::Malformed(
            "bytes after an acknowledgement's properties",
        ));
    }
    Ok(Ack {
        pkid,
        reason,
        properties,
    })
}

/// Encodes a PUBLISH.
pub(crate) fn encode_publish(p: &Publish, version: Version, out: &mut Vec<u8>) {
    let mut first = 0x30 | ((p.qos as u8) << 1);
    if p.dup {
        first |= 0x08;
    }
    if p.retain {
        first |= 0x01;
    }
    let topic = p.topic.as_deref().unwrap_or("");
    let mut b = Vec::with_capacity(topic.len() + p.payload.len() + 8);
    put_str(&mut b, topic);
    if p.qos != QoS::AtMostOnce {
        b.extend_from_slice(&p.pkid.to_be_bytes());
    }
    if version.is_v5() {
        p.properties.write(&mut b);
    }
    b.extend_from_slice(&p.payload);
    frame(out, first, &b);
}

/// Encodes an acknowledgement with first byte `first`.
pub(crate) fn encode_ack(first: u8, a: &Ack, version: Version, out: &mut Vec<u8>) {
    let id = a.pkid.to_be_bytes();
    if !version.is_v5() || (a.reason == 0 && a.properties.is_empty()) {
        out.extend_from_slice(&[first, 2, id[0], id[1]]);
        return;
    }
    if a.properties.is_empty() {
        out.extend_from_slice(&[first, 3, id[0], id[1], a.reason]);
        return;
    }
    let mut b = vec![id[0], id[1], a.reason];
    a.properties.write(&mut b);
    frame(out, first, &b);
}
