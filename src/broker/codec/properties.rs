//! MQTT 5 properties: one struct for every property, decoded with the standard's placement rules.
//!
//! Each property may appear at most once, except User Property (bounded by
//! [`super::MAX_USER_PROPERTIES`]) and Subscription Identifier in a server's PUBLISH
//! (MQTT 5 §2.2.2.2). A property in a packet that does not allow it is a protocol error.

use super::{put_binary, put_str, put_varint, DecodeError, Reader, MAX_USER_PROPERTIES};

/// Which packet (or part) a property list belongs to; decides which properties are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyContext {
    /// CONNECT.
    Connect,
    /// The Will properties in CONNECT's payload.
    Will,
    /// CONNACK.
    ConnAck,
    /// PUBLISH.
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK.
    SubAck,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// UNSUBACK.
    UnsubAck,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

/// Every MQTT 5 property; absent ones are `None` or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01 Payload Format Indicator.
    pub payload_format: Option<u8>,
    /// 0x02 Message Expiry Interval (seconds).
    pub message_expiry: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic.
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Vec<u8>>,
    /// 0x0B Subscription Identifier(s).
    pub subscription_ids: Vec<u32>,
    /// 0x11 Session Expiry Interval (seconds).
    pub session_expiry: Option<u32>,
    /// 0x12 Assigned Client Identifier.
    pub assigned_client_id: Option<String>,
    /// 0x13 Server Keep Alive.
    pub server_keep_alive: Option<u16>,
    /// 0x15 Authentication Method.
    pub auth_method: Option<String>,
    /// 0x16 Authentication Data.
    pub auth_data: Option<Vec<u8>>,
    /// 0x17 Request Problem Information.
    pub request_problem_info: Option<u8>,
    /// 0x18 Will Delay Interval (seconds).
    pub will_delay: Option<u32>,
    /// 0x19 Request Response Information.
    pub request_response_info: Option<u8>,
    /// 0x1A Response Information.
    pub response_info: Option<String>,
    /// 0x1C Server Reference.
    pub server_reference: Option<String>,
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x21 Receive Maximum.
    pub receive_maximum: Option<u16>,
    /// 0x22 Topic Alias Maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 Topic Alias.
    pub topic_alias: Option<u16>,
    /// 0x24 Maximum QoS.
    pub maximum_qos: Option<u8>,
    /// 0x25 Retain Available.
    pub retain_available: Option<u8>,
    /// 0x26 User Properties, in order.
    pub user: Vec<(String, String)>,
    /// 0x27 Maximum Packet Size.
    pub maximum_packet_size: Option<u32>,
    /// 0x28 Wildcard Subscription Available.
    pub wildcard_available: Option<u8>,
    /// 0x29 Subscription Identifier Available.
    pub subscription_ids_available: Option<u8>,
    /// 0x2A Shared Subscription Available.
    pub shared_available: Option<u8>,
}

use PropertyContext as C;

/// Whether property `id` may appear in `ctx`.
fn allowed(id: u8, ctx: PropertyContext) -> bool {
    match id {
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 => matches!(ctx, C::Publish | C::Will),
        0x0B => matches!(ctx, C::Publish | C::Subscribe),
        0x11 => matches!(ctx, C::Connect | C::ConnAck | C::Disconnect),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => ctx == C::ConnAck,
        0x15 | 0x16 => matches!(ctx, C::Connect | C::ConnAck | C::Auth),
        0x17 | 0x19 => ctx == C::Connect,
        0x18 => ctx == C::Will,
        0x1C => matches!(ctx, C::ConnAck | C::Disconnect),
        0x1F => matches!(
            ctx,
            C::ConnAck | C::Ack | C::SubAck | C::UnsubAck | C::Disconnect | C::Auth
        ),
        0x21 | 0x22 | 0x27 => matches!(ctx, C::Connect | C::ConnAck),
        0x23 => ctx == C::Publish,
        0x26 => true,
        _ => false,
    }
}

fn dup<T>(slot: &Option<T>) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Protocol(
            "a property appears more than once (MQTT-2.2.2-2)",
        ));
    }
    Ok(())
}

fn bool_byte(v: u8) -> Result<u8, DecodeError> {
    if v > 1 {
        return Err(DecodeError::Protocol("a 0/1 property has another value"));
    }
    Ok(v)
}

impl Properties {
    /// Reads a property length and that many bytes of properties allowed in `ctx`.
    pub(crate) fn read(
        r: &mut Reader<'_>,
        ctx: PropertyContext,
    ) -> Result<Properties, DecodeError> {
        let len = r.varint()? as usize;
        let bytes = r.take(len)?;
        let mut r = Reader::new(bytes);
        let mut p = Properties::default();
        // Bounded: every iteration consumes at least one byte of `bytes`.
        while !r.is_empty() {
            let id = r.varint()?;
            let id = u8::try_from(id)
                .map_err(|_| DecodeError::Malformed("unknown property identifier"))?;
            if !(allowed(id, ctx)) {
                return Err(if matches!(id, 0x01..=0x2A) {
                    DecodeError::Protocol("a property this packet may not carry")
                } else {
                    DecodeError::Malformed("unknown property identifier")
                });
            }
            match id {
                0x01 => {
                    dup(&p.payload_format)?;
                    p.payload_format = Some(bool_byte(r.u8()?)?);
                }
                0x02 => {
                    dup(&p.message_expiry)?;
                    p.message_expiry = Some(r.u32()?);
                }
                0x03 => {
                    dup(&p.content_type)?;
                    p.content_type = Some(r.string()?.to_owned());
                }
                0x08 => {
                    dup(&p.response_topic)?;
                    let topic = r.string()?;
                    super::check_topic_name(topic).map_err(|_| {
                        DecodeError::Protocol("the response topic is not a valid topic name")
                    })?;
                    p.response_topic = Some(topic.to_owned());
                }
                0x09 => {
                    dup(&p.correlation_data)?;
                    p.correlation_data = Some(r.binary()?.to_vec());
                }
                0x0B => {
                    if ctx != C::Publish && !p.subscription_ids.is_empty() {
                        return Err(DecodeError::Protocol(
                            "more than one subscription identifier",
                        ));
                    }
                    if p.subscription_ids.len() >= MAX_USER_PROPERTIES {
                        return Err(DecodeError::Malformed("too many subscription identifiers"));
                    }
                    let v = r.varint()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol(
                            "a subscription identifier of 0 (MQTT-3.8.2.1.2)",
                        ));
                    }
                    p.subscription_ids.push(v);
                }
                0x11 => {
                    dup(&p.session_expiry)?;
                    p.session_expiry = Some(r.u32()?);
                }
                0x12 => {
                    dup(&p.assigned_client_id)?;
                    p.assigned_client_id = Some(r.string()?.to_owned());
                }
                0x13 => {
                    dup(&p.server_keep_alive)?;
                    p.server_keep_alive = Some(r.u16()?);
                }
                0x15 => {
                    dup(&p.auth_method)?;
                    p.auth_method = Some(r.string()?.to_owned());
                }
                0x16 => {
                    dup(&p.auth_data)?;
                    p.auth_data = Some(r.binary()?.to_vec());
                }
                0x17 => {
                    dup(&p.request_problem_info)?;
                    p.request_problem_info = Some(bool_byte(r.u8()?)?);
                }
                0x18 => {
                    dup(&p.will_delay)?;
                    p.will_delay = Some(r.u32()?);
                }
                0x19 => {
                    dup(&p.request_response_info)?;
                    p.request_response_info = Some(bool_byte(r.u8()?)?);
                }
                0x1A => {
                    dup(&p.response_info)?;
                    p.response_info = Some(r.string()?.to_owned());
                }
                0x1C => {
                    dup(&p.server_reference)?;
                    p.server_reference = Some(r.string()?.to_owned());
                }
                0x1F => {
                    dup(&p.reason_string)?;
                    p.reason_string = Some(r.string()?.to_owned());
                }
                0x21 => {
                    dup(&p.receive_maximum)?;
                    let v = r.u16()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("a receive maximum of 0"));
                    }
                    p.receive_maximum = Some(v);
                }
                0x22 => {
                    dup(&p.topic_alias_maximum)?;
                    p.topic_alias_maximum = Some(r.u16()?);
                }
                0x23 => {
                    dup(&p.topic_alias)?;
                    p.topic_alias = Some(r.u16()?);
                }
                0x24 => {
                    dup(&p.maximum_qos)?;
                    p.maximum_qos = Some(bool_byte(r.u8()?)?);
                }
                0x25 => {
                    dup(&p.retain_available)?;
                    p.retain_available = Some(bool_byte(r.u8()?)?);
                }
                0x26 => {
                    if p.user.len() >= MAX_USER_PROPERTIES {
                        return Err(DecodeError::Malformed("too many user properties"));
                    }
                    let k = r.string()?.to_owned();
                    let v = r.string()?.to_owned();
                    p.user.push((k, v));
                }
                0x27 => {
                    dup(&p.maximum_packet_size)?;
                    let v = r.u32()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("a maximum packet size of 0"));
                    }
                    p.maximum_packet_size = Some(v);
                }
                0x28 => {
                    dup(&p.wildcard_available)?;
                    p.wildcard_available = Some(bool_byte(r.u8()?)?);
                }
                0x29 => {
                    dup(&p.subscription_ids_available)?;
                    p.subscription_ids_available = Some(bool_byte(r.u8()?)?);
                }
                0x2A => {
                    dup(&p.shared_available)?;
                    p.shared_available = Some(bool_byte(r.u8()?)?);
                }
                _ => return Err(DecodeError::Malformed("unknown property identifier")),
            }
        }
        Ok(p)
    }

    /// Appends the property length and the properties.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut b = Vec::new();
        let byte = |b: &mut Vec<u8>, id: u8, v: Option<u8>| {
            if let Some(v) = v {
                b.extend_from_slice(&[id, v]);
            }
        };
        let u16p = |b: &mut Vec<u8>, id: u8, v: Option<u16>| {
            if let Some(v) = v {
                b.push(id);
                b.extend_from_slice(&v.to_be_bytes());
            }
        };
        let u32p = |b: &mut Vec<u8>, id: u8, v: Option<u32>| {
            if let Some(v) = v {
                b.push(id);
                b.extend_from_slice(&v.to_be_bytes());
            }
        };
        let strp = |b: &mut Vec<u8>, id: u8, v: &Option<String>| {
            if let Some(v) = v {
                b.push(id);
                put_str(b, v);
            }
        };
        let binp = |b: &mut Vec<u8>, id: u8, v: &Option<Vec<u8>>| {
            if let Some(v) = v {
                b.push(id);
                put_binary(b, v);
            }
        };
        byte(&mut b, 0x01, self.payload_format);
        u32p(&mut b, 0x02, self.message_expiry);
        strp(&mut b, 0x03, &self.content_type);
        strp(&mut b, 0x08, &self.response_topic);
        binp(&mut b, 0x09, &self.correlation_data);
        for id in &self.subscription_ids {
            b.push(0x0B);
            put_varint(&mut b, *id as usize);
        }
        u32p(&mut b, 0x11, self.session_expiry);
        strp(&mut b, 0x12, &self.assigned_client_id);
        u16p(&mut b, 0x13, self.server_keep_alive);
        strp(&mut b, 0x15, &self.auth_method);
        binp(&mut b, 0x16, &self.auth_data);
        byte(&mut b, 0x17, self.request_problem_info);
        u32p(&mut b, 0x18, self.will_delay);
        byte(&mut b, 0x19, self.request_response_info);
        strp(&mut b, 0x1A, &self.response_info);
        strp(&mut b, 0x1C, &self.server_reference);
        strp(&mut b, 0x1F, &self.reason_string);
        u16p(&mut b, 0x21, self.receive_maximum);
        u16p(&mut b, 0x22, self.topic_alias_maximum);
        u16p(&mut b, 0x23, self.topic_alias);
        byte(&mut b, 0x24, self.maximum_qos);
        byte(&mut b, 0x25, self.retain_available);
        for (k, v) in &self.user {
            b.push(0x26);
            put_str(&mut b, k);
            put_str(&mut b, v);
        }
        u32p(&mut b, 0x27, self.maximum_packet_size);
        byte(&mut b, 0x28, self.wildcard_available);
        byte(&mut b, 0x29, self.subscription_ids_available);
        byte(&mut b, 0x2A, self.shared_available);
        put_varint(out, b.len());
        out.extend_from_slice(&b);
    }

    /// `true` when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// Checks a PUBLISH payload that declares itself UTF-8 (Payload Format Indicator 1).
pub fn check_utf8_payload(payload: &[u8]) -> bool {
    std::str::from_utf8(payload).is_ok()
}
