//! CONNECT and CONNACK.

use std::sync::Arc;

use crate::policy::topic::TopicName;

use super::{
    frame, put_binary, put_str, DecodeError, Properties, PropertyContext, Props, QoS, Reader,
    Version,
};

/// A CONNECT packet. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version asked for.
    pub version: Version,
    /// The client identifier (may be empty: the server then assigns one).
    pub client_id: String,
    /// Clean Session (3.1.1) / Clean Start (5).
    pub clean_start: bool,
    /// Keep Alive in seconds (0: off).
    pub keep_alive: u16,
    /// The username, if the flag is set.
    pub username: Option<String>,
    /// The password, if the flag is set.
    pub password: Option<Vec<u8>>,
    /// The Will, if the flag is set.
    pub will: Option<Will>,
    /// MQTT 5 properties.
    pub properties: Properties,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("will", &self.will)
            .field("properties", &self.properties)
            .finish()
    }
}

/// A Will message from CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Will Topic, checked by the grammar.
    pub topic: TopicName,
    /// Will Payload.
    pub payload: Arc<[u8]>,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// MQTT 5 Will properties (Will Delay Interval, Message Expiry, ...).
    pub properties: Properties,
}

/// The outcome a CONNACK reports, version-neutral; [`ConnectReason::code`] maps it to the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectReason {
    /// Accepted.
    Success,
    /// 3.1.1: 1 unacceptable protocol version / 5: 0x84.
    UnsupportedProtocol,
    /// 3.1.1: 2 identifier rejected / 5: 0x85.
    IdentifierRejected,
    /// 3.1.1: 3 server unavailable / 5: 0x88.
    ServerUnavailable,
    /// 3.1.1: 4 bad user name or password / 5: 0x86.
    BadCredentials,
    /// 3.1.1: 5 not authorized / 5: 0x87.
    NotAuthorized,
    /// 5: 0x89 server busy (3.1.1: 3).
    ServerBusy,
    /// 5: 0x8C bad authentication method (3.1.1: 5).
    BadAuthMethod,
    /// 5: 0x81 malformed packet (no CONNACK for 3.1.1).
    Malformed,
    /// 5: 0x82 protocol error (no CONNACK for 3.1.1).
    ProtocolError,
    /// 5: 0x90 topic name invalid (no CONNACK for 3.1.1).
    TopicNameInvalid,
    /// 5: 0x95 packet too large (no CONNACK for 3.1.1).
    PacketTooLarge,
}

impl ConnectReason {
    /// The CONNACK code for `version`, or `None` when 3.1.1 has no code for it (the connection is
    /// then closed without a CONNACK).
    pub fn code(self, version: Version) -> Option<u8> {
        use ConnectReason::*;
        if version.is_v5() {
            return Some(match self {
                Success => 0x00,
                UnsupportedProtocol => 0x84,
                IdentifierRejected => 0x85,
                ServerUnavailable => 0x88,
                BadCredentials => 0x86,
                NotAuthorized => 0x87,
                ServerBusy => 0x89,
                BadAuthMethod => 0x8C,
                Malformed => 0x81,
                ProtocolError => 0x82,
                TopicNameInvalid => 0x90,
                PacketTooLarge => 0x95,
            });
        }
        match self {
            Success => Some(0),
            UnsupportedProtocol => Some(1),
            IdentifierRejected => Some(2),
            ServerUnavailable | ServerBusy => Some(3),
            BadCredentials => Some(4),
            NotAuthorized | BadAuthMethod => Some(5),
            Malformed | ProtocolError | TopicNameInvalid | PacketTooLarge => None,
        }
    }
}

/// A CONNACK packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present.
    pub session_present: bool,
    /// The outcome.
    pub reason: ConnectReason,
    /// MQTT 5 properties.
    pub properties: Props,
}

/// Decodes a CONNECT body.
pub(crate) fn decode_connect(body: &[u8]) -> Result<Connect, DecodeError> {
    let mut r = Reader::new(body);
    let name = r.binary()?;
    let level = r.u8()?;
    let version = match (name, level) {
        (b"MQTT", 4) => Version::V311,
        (b"MQTT", 5) => Version::V5,
        (b"MQIsdp", 3) => Version::V31,
        (b"MQTT" | b"MQIsdp", level) => {
            return Err(DecodeError::UnsupportedProtocol {
                level,
                known_name: true,
            })
        }
        (_, level) => {
            return Err(DecodeError::UnsupportedProtocol {
                level,
                known_name: false,
            })
        }
    };
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed(
            "the reserved CONNECT flag is set (MQTT-3.1.2-3)",
        ));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos_bits = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    let will_qos = QoS::from_bits(will_qos_bits)
        .ok_or(DecodeError::Malformed("Will QoS is 3 (MQTT-3.1.2-14)"))?;
    if !will_flag && (will_qos_bits != 0 || will_retain) {
        return Err(DecodeError::Malformed(
            "Will QoS or Will Retain set without the Will flag (MQTT-3.1.2-13, MQTT-3.1.2-15)",
        ));
    }
    if version != Version::V5 && password_flag && !username_flag {
        return Err(DecodeError::Malformed(
            "a password without a user name (MQTT-3.1.2-22)",
        ));
    }
    let keep_alive = r.u16()?;
    let properties = if version.is_v5() {
        Properties::read(&mut r, PropertyContext::Connect)?
    } else {
        Properties::default()
    };
    let client_id = r.string()?.to_owned();
    let will = if will_flag {
        let properties = if version.is_v5() {
            Properties::read(&mut r, PropertyContext::Will)?
        } else {
            Properties::default()
        };
        let topic = r.topic_name()?;
        let payload: Arc<[u8]> = Arc::from(r.binary()?);
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?.to_owned())
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?.to_vec())
    } else {
        None
    };
    if !r.is_empty() {
        return Err(DecodeError::Malformed(
            "bytes after the end of the CONNECT payload",
        ));
    }
    Ok(Connect {
        version,
        client_id,
        clean_start,
        keep_alive,
        username,
        password,
        will,
        properties,
    })
}

/// Encodes a CONNECT (what a client sends; used by tests).
pub(crate) fn encode_connect(c: &Connect, out: &mut Vec<u8>) {
    let mut b = Vec::new();
    let (name, level): (&str, u8) = match c.version {
        Version::V31 => ("MQIsdp", 3),
        Version::V311 => ("MQTT", 4),
        Version::V5 => ("MQTT", 5),
    };
    put_str(&mut b, name);
    b.push(level);
    let mut flags = 0u8;
    if c.clean_start {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | ((w.qos as u8) << 3);
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    b.push(flags);
    b.extend_from_slice(&c.keep_alive.to_be_bytes());
    if c.version.is_v5() {
        c.properties.write(&mut b);
    }
    put_str(&mut b, &c.client_id);
    if let Some(w) = &c.will {
        if c.version.is_v5() {
            w.properties.write(&mut b);
        }
        put_str(&mut b, &w.topic);
        put_binary(&mut b, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(&mut b, u);
    }
    if let Some(p) = &c.password {
        put_binary(&mut b, p);
    }
    frame(out, 0x10, &b);
}

/// Encodes a CONNACK. For 3.1.1 a reason without a code there is sent as 3 (server unavailable);
/// callers close such connections without a CONNACK instead.
pub(crate) fn encode_connack(c: &ConnAck, version: Version, out: &mut Vec<u8>) {
    let code = c.reason.code(version).unwrap_or(3);
    let sp = u8::from(c.session_present && c.reason == ConnectReason::Success);
    if !version.is_v5() {
        out.extend_from_slice(&[0x20, 2, sp, code]);
        return;
    }
    let mut b = vec![sp, code];
    c.properties.write(&mut b);
    frame(out, 0x20, &b);
}
