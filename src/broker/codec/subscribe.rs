//! SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK.

use super::{
    frame, put_str, DecodeError, Properties, PropertyContext, Props, QoS, Reader, Version,
};
use crate::policy::topic::TopicFilter;

/// Subscription options (MQTT 5 §3.8.3.1; 3.1.1 has only the QoS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local: do not deliver the client's own messages.
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag on forwarded messages.
    pub retain_as_published: bool,
    /// Retain Handling: 0 send retained on subscribe, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

impl SubOptions {
    /// Options with only a QoS (as MQTT 3.1.1 has).
    pub fn qos(qos: QoS) -> SubOptions {
        SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        }
    }
}

/// One filter of a SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// The topic filter, checked by the grammar (a shared `$share/GROUP/FILTER` is one too).
    pub filter: TopicFilter,
    /// Its options.
    pub options: SubOptions,
}

/// A SUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub pkid: u16,
    /// The filters, at least one.
    pub filters: Vec<SubscribeFilter>,
    /// MQTT 5 properties (subscription identifier, user properties).
    pub properties: Props,
}

/// A SUBACK packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier.
    pub pkid: u16,
    /// One MQTT 5 reason code per filter (granted QoS, or ≥ 0x80 for a failure; 3.1.1 gets 0x80).
    pub codes: Vec<u8>,
    /// MQTT 5 properties.
    pub properties: Props,
}

/// An UNSUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub pkid: u16,
    /// The filters (checked by the grammar), at least one.
    pub filters: Vec<TopicFilter>,
    /// MQTT 5 properties.
    pub properties: Props,
}

/// An UNSUBACK packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier.
    pub pkid: u16,
    /// One MQTT 5 reason code per filter (not sent to 3.1.1 peers).
    pub codes: Vec<u8>,
    /// MQTT 5 properties.
    pub properties: Props,
}

fn read_pkid(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(DecodeError::Protocol(
            "a packet identifier of 0 (MQTT-2.3.1-1)",
        ));
    }
    Ok(id)
}

/// Decodes a SUBSCRIBE body.
pub(crate) fn decode_subscribe(body: &[u8], version: Version) -> Result<Subscribe, DecodeError> {
    let mut r = Reader::new(body);
    let pkid = read_pkid(&mut r)?;
    let properties = if version.is_v5() {
        Properties::read(&mut r, PropertyContext::Subscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    // Bounded: every iteration consumes at least 3 bytes.
    while !r.is_empty() {
        let filter = r.topic_filter()?;
        let options = r.u8()?;
        let qos = QoS::from_bits(options & 0x03).ok_or(DecodeError::Malformed(
            "a subscription asks for QoS 3 (MQTT-3.8.3-4)",
        ))?;
        let options = if version.is_v5() {
            if options & 0xC0 != 0 {
                return Err(DecodeError::Malformed(
                    "reserved subscription option bits are set (MQTT-3.8.3-5)",
                ));
            }
            let retain_handling = (options >> 4) & 0x03;
            if retain_handling == 3 {
                return Err(DecodeError::Protocol("Retain Handling is 3"));
            }
            let no_local = options & 0x04 != 0;
            if no_local && filter.is_shared() {
                return Err(DecodeError::Protocol(
                    "No Local on a shared subscription (MQTT-3.8.3-4)",
                ));
            }
            SubOptions {
                qos,
                no_local,
                retain_as_published: options & 0x08 != 0,
                retain_handling,
            }
        } else {
            if options & 0xFC != 0 {
                return Err(DecodeError::Malformed(
                    "reserved bits of the requested QoS byte are set (MQTT-3.8.3-4)",
                ));
            }
            SubOptions::qos(qos)
        };
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol(
            "a SUBSCRIBE without any topic filter (MQTT-3.8.3-3)",
        ));
    }
    Ok(Subscribe {
        pkid,
        filters,
        properties: properties.into(),
    })
}

/// Decodes an UNSUBSCRIBE body.
pub(crate) fn decode_unsubscribe(
    body: &[u8],
    version: Version,
) -> Result<Unsubscribe, DecodeError> {
    let mut r = Reader::new(body);
    let pkid = read_pkid(&mut r)?;
    let properties = if version.is_v5() {
        Properties::read(&mut r, PropertyContext::Unsubscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    // Bounded: every iteration consumes at least 2 bytes.
    while !r.is_empty() {
        filters.push(r.topic_filter()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol(
            "an UNSUBSCRIBE without any topic filter (MQTT-3.10.3-2)",
        ));
    }
    Ok(Unsubscribe {
        pkid,
        filters,
        properties: properties.into(),
    })
}

/// Encodes a SUBSCRIBE (what a client sends; used by tests).
pub(crate) fn encode_subscribe(s: &Subscribe, version: Version, out: &mut Vec<u8>) {
    let filters = s.filters.iter().map(|f| (f.filter.as_str(), f.options));
    write_subscribe(s.pkid, filters, &s.properties, version, out);
}

/// Encodes a SUBSCRIBE of one filter taken as it is, checked by nothing: what a faulty client may
/// send, for tests of the broker's refusals (a [`Subscribe`] holds only filters the grammar
/// accepted; for one of those this writes the same bytes as [`super::encode`]).
pub fn encode_subscribe_unchecked(
    pkid: u16,
    filter: &str,
    options: SubOptions,
    version: Version,
    out: &mut Vec<u8>,
) {
    let filters = std::iter::once((filter, options));
    write_subscribe(pkid, filters, &Properties::default(), version, out);
}

fn write_subscribe<'a>(
    pkid: u16,
    filters: impl Iterator<Item = (&'a str, SubOptions)>,
    properties: &Properties,
    version: Version,
    out: &mut Vec<u8>,
) {
    let mut b = pkid.to_be_bytes().to_vec();
    if version.is_v5() {
        properties.write(&mut b);
    }
    for (filter, o) in filters {
        put_str(&mut b, filter);
        let mut byte = o.qos as u8;
        if version.is_v5() {
            byte |= u8::from(o.no_local) << 2
                | u8::from(o.retain_as_published) << 3
                | (o.retain_handling & 3) << 4;
        }
        b.push(byte);
    }
    frame(out, 0x82, &b);
}

/// Encodes an UNSUBSCRIBE (what a client sends; used by tests).
pub(crate) fn encode_unsubscribe(u: &Unsubscribe, version: Version, out: &mut Vec<u8>) {
    let mut b = u.pkid.to_be_bytes().to_vec();
    if version.is_v5() {
        u.properties.write(&mut b);
    }
    for f in &u.filters {
        put_str(&mut b, f);
    }
    frame(out, 0xA2, &b);
}

/// Encodes a SUBACK; 3.1.1 peers get 0x80 for every failure code.
pub(crate) fn encode_suback(s: &SubAck, version: Version, out: &mut Vec<u8>) {
    let mut b = s.pkid.to_be_bytes().to_vec();
    if version.is_v5() {
        s.properties.write(&mut b);
        b.extend_from_slice(&s.codes);
    } else {
        b.extend(s.codes.iter().map(|&c| if c >= 0x80 { 0x80 } else { c }));
    }
    frame(out, 0x90, &b);
}

/// Encodes an UNSUBACK (3.1.1: the packet identifier only).
pub(crate) fn encode_unsuback(u: &UnsubAck, version: Version, out: &mut Vec<u8>) {
    let mut b = u.pkid.to_be_bytes().to_vec();
    if version.is_v5() {
        u.properties.write(&mut b);
        b.extend_from_slice(&u.codes);
    }
    frame(out, 0xB0, &b);
}
