//! DISCONNECT and AUTH (PINGREQ/PINGRESP have no body and live in the parent module).

use super::{frame, DecodeError, Properties, PropertyContext, Props, Reader, Version};

/// A DISCONNECT packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// MQTT 5 reason code (0 normal; 0x04 with Will).
    pub reason: u8,
    /// MQTT 5 properties (session expiry, reason string, ...).
    pub properties: Props,
}

impl Disconnect {
    /// A DISCONNECT with `reason` and a reason string.
    pub fn with_reason(reason: u8, why: &str) -> Disconnect {
        Disconnect {
            reason,
            properties: Properties {
                reason_string: Some(why.to_owned()),
                ..Properties::default()
            }
            .into(),
        }
    }
}

/// An AUTH packet (MQTT 5 enhanced authentication).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// Reason code.
    pub reason: u8,
    /// Properties.
    pub properties: Props,
}

/// Decodes a DISCONNECT body.
pub(crate) fn decode_disconnect(body: &[u8], version: Version) -> Result<Disconnect, DecodeError> {
    if !version.is_v5() {
        if !body.is_empty() {
            return Err(DecodeError::Malformed("a 3.1.1 DISCONNECT has a body"));
        }
        return Ok(Disconnect::default());
    }
    let mut r = Reader::new(body);
    let reason = if r.is_empty() { 0 } else { r.u8()? };
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        Properties::read(&mut r, PropertyContext::Disconnect)?
    };
    if !r.is_empty() {
        return Err(DecodeError::Malformed(
            "bytes after DISCONNECT's properties",
        ));
    }
    Ok(Disconnect {
        reason,
        properties: properties.into(),
    })
}

/// Decodes an AUTH body.
pub(crate) fn decode_auth(body: &[u8]) -> Result<Auth, DecodeError> {
    let mut r = Reader::new(body);
    let reason = if r.is_empty() { 0 } else { r.u8()? };
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        Properties::read(&mut r, PropertyContext::Auth)?
    };
    if !r.is_empty() {
        return Err(DecodeError::Malformed("bytes after AUTH's properties"));
    }
    Ok(Auth {
        reason,
        properties: properties.into(),
    })
}

/// Encodes a DISCONNECT (3.1.1: two bytes; servers never send it to 3.1.1 peers).
pub(crate) fn encode_disconnect(d: &Disconnect, version: Version, out: &mut Vec<u8>) {
    if !version.is_v5() || (d.reason == 0 && d.properties.is_empty()) {
        out.extend_from_slice(&[0xE0, 0]);
        return;
    }
    let mut b = vec![d.reason];
    if !d.properties.is_empty() {
        d.properties.write(&mut b);
    }
    frame(out, 0xE0, &b);
}

/// Encodes an AUTH.
pub(crate) fn encode_auth(a: &Auth, out: &mut Vec<u8>) {
    let mut b = vec![a.reason];
    a.properties.write(&mut b);
    frame(out, 0xF0, &b);
}
