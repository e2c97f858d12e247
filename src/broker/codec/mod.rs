//! The MQTT 3.1, 3.1.1 and 5.0 wire format, for a server: decoding what clients send, encoding what
//! servers send (and, for tests, what clients send).
//!
//! One version-neutral packet model ([`Packet`]); the version only matters at this edge. Decoding is
//! strict and bounded, because every byte comes from an untrusted peer:
//! * the remaining length is checked against the maximum packet size before anything is buffered
//!   (CVE-2017-7651);
//! * topics and filters have at most 200 `/` (CVE-2019-11779), by the policy's own grammar, and are
//!   decoded into its types ([`TopicName`], [`TopicFilter`]), which the rest of the broker takes;
//! * at most [`MAX_USER_PROPERTIES`] user properties per packet (CVE-2021-41039), every other
//!   property at most once, and only where the standard allows it;
//! * strings are UTF-8 without U+0000; reserved flag bits are checked.
//!
//! One file per packet family, as in rumqttc's `mqttbytes`: [`connect`], [`publish`], [`subscribe`],
//! [`control`], plus [`properties`].

pub mod connect;
pub mod control;
pub mod properties;
pub mod props;
pub mod publish;
pub mod subscribe;

use std::fmt;

use crate::policy::topic::{validate_topic, FilterError, TopicError, TopicFilter, TopicName};

pub use connect::{ConnAck, Connect, ConnectReason, Will};
pub use control::{Auth, Disconnect};
pub use properties::{Properties, PropertyContext};
pub use props::Props;
pub use publish::{Ack, Publish, TopicCache};
pub use subscribe::{
    encode_subscribe_unchecked, SubAck, SubOptions, Subscribe, SubscribeFilter, UnsubAck,
    Unsubscribe,
};

/// Most user properties accepted in one packet (a bound against property floods, CVE-2021-41039).
pub const MAX_USER_PROPERTIES: usize = 128;
/// The largest packet MQTT can express: 1 + 4 + 268,435,455 bytes; remaining length at most this.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The protocol version a connection speaks, fixed by its CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1 (`MQIsdp`, level 3).
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

impl Version {
    /// `true` for MQTT 5.
    pub fn is_v5(self) -> bool {
        self == Version::V5
    }
}

/// Quality of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// At most once (0).
    AtMostOnce = 0,
    /// At least once (1).
    AtLeastOnce = 1,
    /// Exactly once (2).
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a 2-bit value; 3 is not one.
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Every control packet, version-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client → server).
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH (both ways).
    Publish(Publish),
    /// PUBACK (both ways).
    PubAck(Ack),
    /// PUBREC (both ways).
    PubRec(Ack),
    /// PUBREL (both ways).
    PubRel(Ack),
    /// PUBCOMP (both ways).
    PubComp(Ack),
    /// SUBSCRIBE (client → server).
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE (client → server).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT (both ways in MQTT 5).
    Disconnect(Disconnect),
    /// AUTH (MQTT 5).
    Auth(Auth),
}

impl Packet {
    /// The packet's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// Why bytes from a peer are not an acceptable packet. Each maps to one MQTT 5 reason code
/// ([`DecodeError::reason_code`]); MQTT 3.1.1 peers are simply disconnected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes break the packet's grammar (v5 reason 0x81).
    Malformed(&'static str),
    /// Well-formed, but not allowed here (v5 reason 0x82).
    Protocol(&'static str),
    /// The packet is larger than the maximum packet size (v5 reason 0x95).
    TooLarge {
        /// The packet's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A PUBLISH topic name is not valid (v5 reason 0x90).
    TopicInvalid(&'static str),
    /// The CONNECT asks for a protocol name or level this server does not speak: answered with
    /// CONNACK 1 / 0x84 when the level is unknown (MQTT-3.1.2-2), else the connection is closed.
    UnsupportedProtocol {
        /// The protocol level byte.
        level: u8,
        /// `true` when the protocol name was "MQTT" or "MQIsdp" (a CONNACK can be understood).
        known_name: bool,
    },
}

impl DecodeError {
    /// The MQTT 5 reason code for a DISCONNECT (or CONNACK) that reports this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::Malformed(_) => reason::MALFORMED_PACKET,
            DecodeError::Protocol(_) => reason::PROTOCOL_ERROR,
            DecodeError::TooLarge { .. } => reason::PACKET_TOO_LARGE,
            DecodeError::TopicInvalid(_) => reason::TOPIC_NAME_INVALID,
            DecodeError::UnsupportedProtocol { .. } => reason::UNSUPPORTED_PROTOCOL_VERSION,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "malformed packet: {why}"),
            DecodeError::Protocol(why) => write!(f, "protocol error: {why}"),
            DecodeError::TooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the maximum of {max}")
            }
            DecodeError::TopicInvalid(why) => write!(f, "invalid topic name: {why}"),
            DecodeError::UnsupportedProtocol { level, .. } => {
                write!(f, "unsupported protocol (level {level})")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// MQTT 5 reason codes used by the broker.
pub mod reason {
    /// Success / granted QoS 0 / normal disconnection.
    pub const SUCCESS: u8 = 0x00;
    /// Granted QoS 1.
    pub const GRANTED_QOS_1: u8 = 0x01;
    /// Granted QoS 2.
    pub const GRANTED_QOS_2: u8 = 0x02;
    /// DISCONNECT with Will Message.
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    /// No matching subscribers (PUBACK/PUBREC).
    pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
    /// No subscription existed (UNSUBACK).
    pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
    /// Unspecified error.
    pub const UNSPECIFIED_ERROR: u8 = 0x80;
    /// Malformed Packet.
    pub const MALFORMED_PACKET: u8 = 0x81;
    /// Protocol Error.
    pub const PROTOCOL_ERROR: u8 = 0x82;
    /// Implementation specific error.
    pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
    /// Unsupported Protocol Version.
    pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
    /// Client Identifier not valid.
    pub const CLIENT_IDENTIFIER_NOT_VALID: u8 = 0x85;
    /// Bad User Name or Password.
    pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
    /// Not authorized.
    pub const NOT_AUTHORIZED: u8 = 0x87;
    /// Server unavailable.
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    /// Server busy.
    pub const SERVER_BUSY: u8 = 0x89;
    /// Bad authentication method.
    pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
    /// Keep Alive timeout.
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    /// Session taken over.
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    /// Topic Filter invalid.
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    /// Topic Name invalid.
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    /// Packet Identifier in use.
    pub const PACKET_IDENTIFIER_IN_USE: u8 = 0x91;
    /// Packet Identifier not found.
    pub const PACKET_IDENTIFIER_NOT_FOUND: u8 = 0x92;
    /// Receive Maximum exceeded.
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    /// Topic Alias invalid.
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    /// Packet too large.
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    /// Quota exceeded.
    pub const QUOTA_EXCEEDED: u8 = 0x97;
    /// Administrative action.
    pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
    /// Payload format invalid.
    pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
    /// Shared Subscriptions not supported.
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9E;
}

/// A cursor over a packet's bytes: every read checks the bounds.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Malformed(
                "a field runs past the end of the packet",
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A variable byte integer (at most 4 bytes, minimal encoding not required by the standard).
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "a variable byte integer is longer than 4 bytes",
        ))
    }

    /// Two-byte length-prefixed binary data.
    pub(crate) fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// A UTF-8 encoded string: valid UTF-8 without U+0000 (MQTT-1.5.3-1, MQTT-1.5.3-2).
    pub(crate) fn string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.binary()?;
        utf8(bytes)
    }

    /// A topic name: UTF-8, then the grammar (which refuses U+0000 as [`Reader::string`] does).
    pub(crate) fn topic_name(&mut self) -> Result<TopicName, DecodeError> {
        topic_name(self.utf8()?)
    }

    /// A topic filter: UTF-8, then the grammar (which refuses U+0000 as [`Reader::string`] does).
    pub(crate) fn topic_filter(&mut self) -> Result<TopicFilter, DecodeError> {
        topic_filter(self.utf8()?)
    }

    /// A string checked for UTF-8 only (the caller checks U+0000).
    pub(crate) fn utf8(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.binary()?)
            .map_err(|_| DecodeError::Malformed("a string is not valid UTF-8"))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }
}

/// Checks an MQTT UTF-8 string.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    let s = std::str::from_utf8(bytes)
        .map_err(|_| DecodeError::Malformed("a string is not valid UTF-8"))?;
    if s.contains('\0') {
        return Err(DecodeError::Malformed("a string contains U+0000"));
    }
    Ok(s)
}

/// Appends a variable byte integer.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let mut b = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            b |= 0x80;
        }
        out.push(b);
        if value == 0 {
            break;
        }
    }
}

/// The number of bytes [`put_varint`] writes for `value`.
pub(crate) fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends a two-byte length-prefixed field (truncated to 65,535 bytes; callers check lengths).
pub(crate) fn put_binary(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..len]);
}

/// Appends a string field.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_binary(out, s.as_bytes());
}

/// Writes the fixed header and `body` as one packet.
pub(crate) fn frame(out: &mut Vec<u8>, first_byte: u8, body: &[u8]) {
    out.reserve(1 + varint_len(body.len()) + body.len());
    out.push(first_byte);
    put_varint(out, body.len());
    out.extend_from_slice(body);
}

/// A PUBLISH or Will topic name, as the policy's grammar accepts it ([`TopicName::new`], as
/// Mosquitto's `mosquitto_pub_topic_check`): not empty, no wildcards, at most
/// [`crate::policy::topic::MAX_SLASHES`] `/` (CVE-2019-11779), no U+0000.
pub fn topic_name(topic: &str) -> Result<TopicName, DecodeError> {
    TopicName::new(topic).map_err(topic_error)
}

/// A SUBSCRIBE/UNSUBSCRIBE topic filter, as the policy's grammar accepts it ([`TopicFilter::new`], as
/// Mosquitto's `mosquitto_sub_topic_check`): not empty, wildcards only as whole levels and `#` last
/// (MQTT-4.7.1-1, MQTT-4.7.1-2), at most [`crate::policy::topic::MAX_SLASHES`] `/`, no U+0000; and a
/// well-formed `$share/NAME/FILTER`.
pub fn topic_filter(filter: &str) -> Result<TopicFilter, DecodeError> {
    TopicFilter::new(filter).map_err(filter_error)
}

/// Checks a topic name (for a topic carried as text, such as a Response Topic) with the grammar of
/// [`topic_name`], without keeping it.
pub fn check_topic_name(topic: &str) -> Result<(), DecodeError> {
    if topic.contains('\0') {
        return Err(topic_error(TopicError::Nul));
    }
    validate_topic(topic).map_err(topic_error)
}

/// Checks a topic filter with the grammar of [`topic_filter`].
pub fn check_topic_filter(filter: &str) -> Result<(), DecodeError> {
    topic_filter(filter).map(drop)
}

/// What a client is told about a topic name the grammar refused.
fn topic_error(e: TopicError) -> DecodeError {
    match e {
        TopicError::Nul => DecodeError::Malformed("a string contains U+0000"),
        TopicError::Empty => DecodeError::TopicInvalid("the topic name is empty"),
        TopicError::Wildcard => {
            DecodeError::TopicInvalid("the topic name contains a wildcard (MQTT-3.3.2-2)")
        }
        TopicError::TooManyLevels => {
            DecodeError::TopicInvalid("the topic name has too many levels")
        }
        TopicError::TooLong => DecodeError::TopicInvalid("the topic name is too long"),
    }
}

/// What a client is told about a topic filter the grammar refused.
fn filter_error(e: FilterError) -> DecodeError {
    match e {
        FilterError::Nul => DecodeError::Malformed("a string contains U+0000"),
        FilterError::Empty => DecodeError::Malformed("a topic filter is empty (MQTT-4.7.3-1)"),
        FilterError::TooManyLevels => DecodeError::Malformed("a topic filter has too many levels"),
        FilterError::HashNotLast => {
            DecodeError::Malformed("`#` is not the last level of a topic filter (MQTT-4.7.1-2)")
        }
        FilterError::PlusNotWholeLevel => DecodeError::Malformed(
            "a wildcard does not occupy a whole level (MQTT-4.7.1-2, MQTT-4.7.1-3)",
        ),
        FilterError::TooLong => DecodeError::Malformed("a topic filter is too long"),
        FilterError::ShareNameWildcard => {
            DecodeError::Protocol("a share name contains a wildcard (MQTT-4.8.2-2)")
        }
        FilterError::ShareIncomplete => DecodeError::Protocol(
            "a shared subscription needs a share name and a filter (MQTT-4.8.2-1)",
        ),
        FilterError::ShareAlone => DecodeError::Protocol("`$share` alone is not a filter"),
    }
}

/// Reads the fixed header at the start of `buf`: `(first byte, remaining length, header length)`, or
/// `None` when more bytes are needed. Fails fast when the packet would exceed `max_packet_size`.
pub fn read_fixed_header(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<(u8, usize, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len: usize = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let header = 2 + i;
            let size = header + len;
            if size > max_packet_size {
                return Err(DecodeError::TooLarge {
                    size,
                    max: max_packet_size,
                });
            }
            return Ok(Some((first, len, header)));
        }
    }
    Err(DecodeError::Malformed(
        "the remaining length is longer than 4 bytes",
    ))
}

/// Decodes one packet a client sent from the start of `buf`.
///
/// `version` is `None` until the CONNECT has been read: then only a CONNECT is accepted
/// (MQTT-3.1.0-1). Returns the packet and the number of bytes it used, or `None` when `buf` does not
/// yet hold a whole packet.
pub fn decode_client_packet(
    buf: &[u8],
    version: Option<Version>,
    max_packet_size: usize,
) -> Result<Option<(Packet, usize)>, DecodeError> {
    decode_client_packet_cached(buf, version, max_packet_size, &mut TopicCache::default())
}

/// [`decode_client_packet`] for a connection that keeps its last topic name in `topics`.
pub fn decode_client_packet_cached(
    buf: &[u8],
    version: Option<Version>,
    max_packet_size: usize,
    topics: &mut TopicCache,
) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some((first, len, header)) = read_fixed_header(buf, max_packet_size)? else {
        return Ok(None);
    };
    let total = header + len;
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[header..total];
    let kind = first >> 4;
    let flags = first & 0x0f;
    let Some(version) = version else {
        if kind != 1 {
            return Err(DecodeError::Protocol(
                "the first packet is not a CONNECT (MQTT-3.1.0-1)",
            ));
        }
        check_flags(flags, 0)?;
        let connect = connect::decode_connect(body)?;
        return Ok(Some((Packet::Connect(Box::new(connect)), total)));
    };
    let packet = match kind {
        1 => {
            return Err(DecodeError::Protocol(
                "a second CONNECT on one connection (MQTT-3.1.0-2)",
            ))
        }
        3 => Packet::Publish(publish::decode_publish(flags, body, version, topics)?),
        4 => {
            check_flags(flags, 0)?;
            Packet::PubAck(publish::decode_ack(body, version)?)
        }
        5 => {
            check_flags(flags, 0)?;
            Packet::PubRec(publish::decode_ack(body, version)?)
        }
        6 => {
            check_flags(flags, 2)?;
            Packet::PubRel(publish::decode_ack(body, version)?)
        }
        7 => {
            check_flags(flags, 0)?;
            Packet::PubComp(publish::decode_ack(body, version)?)
        }
        8 => {
            check_flags(flags, 2)?;
            Packet::Subscribe(subscribe::decode_subscribe(body, version)?)
        }
        10 => {
            check_flags(flags, 2)?;
            Packet::Unsubscribe(subscribe::decode_unsubscribe(body, version)?)
        }
        12 => {
            check_flags(flags, 0)?;
            if !body.is_empty() {
                return Err(DecodeError::Malformed("PINGREQ has a body"));
            }
            Packet::PingReq
        }
        14 => {
            check_flags(flags, 0)?;
            Packet::Disconnect(control::decode_disconnect(body, version)?)
        }
        15 if version.is_v5() => {
            check_flags(flags, 0)?;
            Packet::Auth(control::decode_auth(body)?)
        }
        0 | 15 => {
            return Err(DecodeError::Malformed(
                "reserved packet type (MQTT-2.2.2-2)",
            ))
        }
        _ => {
            return Err(DecodeError::Protocol(
                "a packet type that only a server sends",
            ))
        }
    };
    Ok(Some((packet, total)))
}

/// Checks the fixed header's flag bits against the only value the standard allows (MQTT-2.2.2-1).
fn check_flags(flags: u8, expected: u8) -> Result<(), DecodeError> {
    if flags != expected {
        return Err(DecodeError::Malformed(
            "reserved flag bits in the fixed header are wrong (MQTT-2.2.2-2)",
        ));
    }
    Ok(())
}

/// Appends the encoding of `packet` for a peer speaking `version`.
pub fn encode(packet: &Packet, version: Version, out: &mut Vec<u8>) {
    match packet {
        Packet::Connect(c) => connect::encode_connect(c, out),
        Packet::ConnAck(c) => connect::encode_connack(c, version, out),
        Packet::Publish(p) => publish::encode_publish(p, version, out),
        Packet::PubAck(a) => publish::encode_ack(0x40, a, version, out),
        Packet::PubRec(a) => publish::encode_ack(0x50, a, version, out),
        Packet::PubRel(a) => publish::encode_ack(0x62, a, version, out),
        Packet::PubComp(a) => publish::encode_ack(0x70, a, version, out),
        Packet::Subscribe(s) => subscribe::encode_subscribe(s, version, out),
        Packet::SubAck(s) => subscribe::encode_suback(s, version, out),
        Packet::Unsubscribe(u) => subscribe::encode_unsubscribe(u, version, out),
        Packet::UnsubAck(u) => subscribe::encode_unsuback(u, version, out),
        Packet::PingReq => out.extend_from_slice(&[0xc0, 0]),
        Packet::PingResp => out.extend_from_slice(&[0xd0, 0]),
        Packet::Disconnect(d) => control::encode_disconnect(d, version, out),
        Packet::Auth(a) => control::encode_auth(a, out),
    }
}

/// The encoded size of `packet` for `version` (encodes it; for size checks against a peer's maximum).
pub fn encoded_len(packet: &Packet, version: Version) -> usize {
    let mut out = Vec::new();
    encode(packet, version, &mut out);
    out.len()
}

#[cfg(test)]
mod tests;
