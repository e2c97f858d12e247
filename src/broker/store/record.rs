//! The store's records: how a message, a session and a delivery become bytes and back. Pure.
//!
//! A format of our own rather than a serde format: the records are a handful of fields, MQTT
//! properties are written with the codec's own encoder (the one every client's packets go through),
//! and a record that does not read back is reported with what was wrong instead of a generic error.
//! Every record starts with [`FORMAT`]; numbers are big-endian; times are milliseconds since the Unix
//! epoch (an `Instant` does not survive a restart).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::broker::codec::{Properties, PropertyContext, QoS, SubOptions, Version, Will};
use crate::broker::session::{Delivery, Expiry, Message, Origin};
use crate::broker::subs::SubEntry;
use crate::policy::topic::{TopicFilter, TopicName};

use super::change::{DeliveryState, SessionImage};

/// The version of the record format, first byte of every record.
pub const FORMAT: u8 = 1;

/// A record that does not read back: what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRecord(pub String);

fn bad(what: impl Into<String>) -> BadRecord {
    BadRecord(what.into())
}

/// The two clocks at one moment: converts the router's `Instant`s to wall-clock time and back.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Monotonic now.
    pub now: Instant,
    /// Wall-clock now.
    pub wall: SystemTime,
}

impl Clock {
    /// The clocks now.
    pub fn now() -> Clock {
        Clock {
            now: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// `at` in wall-clock time.
    pub fn to_wall(&self, at: Instant) -> SystemTime {
        if at >= self.now {
            self.wall + (at - self.now)
        } else {
            self.wall.checked_sub(self.now - at).unwrap_or(UNIX_EPOCH)
        }
    }

    /// `at` as an `Instant` (a time past is now: what was due is due).
    pub fn to_instant(&self, at: SystemTime) -> Instant {
        match at.duration_since(self.wall) {
            Ok(ahead) => self.now.checked_add(ahead).unwrap_or(self.now),
            Err(_) => self.now,
        }
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

// ----- writing -----

struct W(Vec<u8>);

impl W {
    fn new() -> W {
        W(vec![FORMAT])
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn opt_time(&mut self, t: Option<SystemTime>) {
        match t {
            Some(t) => {
                self.u8(1);
                self.u64(millis(t));
            }
            None => self.u8(0),
        }
    }
    fn properties(&mut self, p: &Properties) {
        let mut b = Vec::new();
        p.write(&mut b);
        self.bytes(&b);
    }
}

// ----- reading -----

struct R<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> R<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Result<R<'a>, BadRecord> {
        match buf.split_first() {
            Some((&FORMAT, rest)) => Ok(R { buf: rest, what }),
            Some((v, _)) => Err(bad(format!(
                "{what}: record format {v}, this broker reads format {FORMAT}"
            ))),
            None => Err(bad(format!("{what}: empty record"))),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], BadRecord> {
        if self.buf.len() < n {
            return Err(bad(format!("{}: the record is cut short", self.what)));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, BadRecord> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, BadRecord> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32, BadRecord> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, BadRecord> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], BadRecord> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, BadRecord> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec())
            .map_err(|_| bad(format!("{}: a string is not UTF-8", self.what)))
    }
    /// A topic name, checked by the grammar as the codec checks it: a record that was written
    /// from a valid one and no longer is has been damaged.
    fn topic_name(&mut self) -> Result<TopicName, BadRecord> {
        let s = self.str()?;
        TopicName::new(&s).map_err(|e| {
            bad(format!(
                "{}: the topic name {s:?} is not valid: {e}",
                self.what
            ))
        })
    }
    /// A topic filter, checked by the grammar as the codec checks it.
    fn topic_filter(&mut self) -> Result<TopicFilter, BadRecord> {
        let s = self.str()?;
        TopicFilter::new(&s).map_err(|e| {
            bad(format!(
                "{}: the topic filter {s:?} is not valid: {e}",
                self.what
            ))
        })
    }
    fn flag(&mut self) -> Result<bool, BadRecord> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(bad(format!("{}: a flag is {v}", self.what))),
        }
    }
    fn opt_str(&mut self) -> Result<Option<String>, BadRecord> {
        Ok(if self.flag()? {
            Some(self.str()?)
        } else {
            None
        })
    }
    fn opt_time(&mut self) -> Result<Option<SystemTime>, BadRecord> {
        Ok(if self.flag()? {
            Some(from_millis(self.u64()?))
        } else {
            None
        })
    }
    fn qos(&mut self) -> Result<QoS, BadRecord> {
        let v = self.u8()?;
        QoS::from_bits(v).ok_or_else(|| bad(format!("{}: QoS {v}", self.what)))
    }
    fn properties(&mut self, ctx: PropertyContext) -> Result<Properties, BadRecord> {
        let what = self.what;
        let b = self.bytes()?;
        let mut r = crate::broker::codec::Reader::new(b);
        Properties::read(&mut r, ctx).map_err(|e| bad(format!("{what}: properties: {e}")))
    }
    fn end(&self) -> Result<(), BadRecord> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(bad(format!(
                "{}: {} bytes after the end of the record",
                self.what,
                self.buf.len()
            )))
        }
    }
}

// ----- messages -----

/// A message as stored (retained, or referred to by deliveries).
pub fn encode_message(m: &Message, clock: &Clock) -> Vec<u8> {
    let mut w = W::new();
    w.str(&m.topic);
    w.bytes(&m.payload);
    w.u8(m.qos as u8);
    w.u8(u8::from(m.retain));
    w.opt_time(m.expires_at.map(|t| clock.to_wall(t)));
    w.opt_str(m.origin.username.as_deref());
    w.str(&m.origin.client_id);
    w.properties(&m.properties);
    w.0
}

/// Reads back [`encode_message`]; returns the message and its wall-clock expiry.
pub fn decode_message(b: &[u8], clock: &Clock) -> Result<(Message, Option<SystemTime>), BadRecord> {
    let mut r = R::new(b, "message")?;
    let topic = r.topic_name()?;
    let payload: Arc<[u8]> = r.bytes()?.into();
    let qos = r.qos()?;
    let retain = r.flag()?;
    let expires = r.opt_time()?;
    let username = r.opt_str()?;
    let client_id = r.str()?;
    let properties = r.properties(PropertyContext::Publish)?;
    r.end()?;
    let m = Message {
        topic,
        payload,
        qos,
        retain,
        properties: properties.into(),
        expires_at: expires.map(|t| clock.to_instant(t)),
        origin: Origin {
            username: username.map(Arc::from),
            client_id: client_id.into(),
        },
        encoded: Default::default(),
    };
    Ok((m, expires))
}

// ----- sessions -----

fn version_byte(v: Version) -> u8 {
    match v {
        Version::V31 => 3,
        Version::V311 => 4,
        Version::V5 => 5,
    }
}

/// A session's own state.
pub fn encode_session(s: &SessionImage) -> Vec<u8> {
    let mut w = W::new();
    w.str(&s.client_id);
    w.u8(version_byte(s.version));
    w.opt_str(s.username.as_deref());
    match s.expiry {
        Expiry::OnClose => w.u8(0),
        Expiry::After(secs) => {
            w.u8(1);
            w.u32(secs);
        }
        Expiry::Never => w.u8(2),
    }
    w.opt_time(s.disconnected_at);
    w.u32(u32::try_from(s.subscriptions.len()).unwrap_or(u32::MAX));
    for (filter, e) in &s.subscriptions {
        w.str(filter);
        w.u8(e.options.qos as u8);
        w.u8(u8::from(e.options.no_local) | u8::from(e.options.retain_as_published) << 1);
        w.u8(e.options.retain_handling);
        match e.id {
            Some(id) => {
                w.u8(1);
                w.u32(id);
            }
            None => w.u8(0),
        }
    }
    match &s.will {
        Some(will) => {
            w.u8(1);
            w.str(&will.topic);
            w.bytes(&will.payload);
            w.u8(will.qos as u8);
            w.u8(u8::from(will.retain));
            w.properties(&will.properties);
        }
        None => w.u8(0),
    }
    w.opt_time(s.will_due);
    w.0
}

/// Reads back [`encode_session`].
pub fn decode_session(b: &[u8]) -> Result<SessionImage, BadRecord> {
    let mut r = R::new(b, "session")?;
    let client_id: Arc<str> = r.str()?.into();
    let version = match r.u8()? {
        3 => Version::V31,
        4 => Version::V311,
        5 => Version::V5,
        v => return Err(bad(format!("session: protocol level {v}"))),
    };
    let username = r.opt_str()?;
    let expiry = match r.u8()? {
        0 => Expiry::OnClose,
        1 => Expiry::After(r.u32()?),
        2 => Expiry::Never,
        v => return Err(bad(format!("session: expiry kind {v}"))),
    };
    let disconnected_at = r.opt_time()?;
    let n = r.u32()?;
    let mut subscriptions = Vec::new();
    for _ in 0..n {
        let filter = r.topic_filter()?;
        let qos = r.qos()?;
        let flags = r.u8()?;
        let retain_handling = r.u8()?;
        let id = if r.flag()? { Some(r.u32()?) } else { None };
        let options = SubOptions {
            qos,
            no_local: flags & 1 != 0,
            retain_as_published: flags & 2 != 0,
            retain_handling,
        };
        subscriptions.push((filter, SubEntry { options, id }));
    }
    let will = if r.flag()? {
        let topic = r.topic_name()?;
        let payload: Arc<[u8]> = r.bytes()?.into();
        let qos = r.qos()?;
        let retain = r.flag()?;
        let properties = r.properties(PropertyContext::Will)?;
        Some(Box::new(Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        }))
    } else {
        None
    };
    let will_due = r.opt_time()?;
    r.end()?;
    Ok(SessionImage {
        client_id,
        username,
        version,
        expiry,
        disconnected_at,
        subscriptions,
        will,
        will_due,
    })
}

// ----- deliveries -----

/// A delivery, referring to its message by the id under which the store keeps it (0: none, for a
/// released one).
pub fn encode_delivery(state: &DeliveryState, msg_id: u64) -> Vec<u8> {
    let mut w = W::new();
    let (kind, pkid, d) = match state {
        DeliveryState::Queued(d) => (0, 0, Some(d)),
        DeliveryState::Sent(pkid, d) => (1, *pkid, Some(d)),
        DeliveryState::Released(pkid) => (2, *pkid, None),
    };
    w.u8(kind);
    w.u16(pkid);
    w.u64(msg_id);
    if let Some(d) = d {
        w.u8(d.qos as u8);
        w.u8(u8::from(d.retain));
        w.u32(u32::try_from(d.sub_ids.len()).unwrap_or(u32::MAX));
        for id in &d.sub_ids {
            w.u32(*id);
        }
    }
    w.0
}

/// A delivery as read back: its state without the message, and the message's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    /// 0 queued, 1 sent, 2 released.
    pub kind: u8,
    /// The packet id (sent, released).
    pub pkid: u16,
    /// The message's id (0 for a released one).
    pub msg_id: u64,
    /// QoS, RETAIN and subscription ids (not for a released one).
    pub options: Option<(QoS, bool, Vec<u32>)>,
}

/// The message id a stored delivery refers to, without decoding the rest (0: none or unreadable).
pub fn delivery_msg_id(b: &[u8]) -> u64 {
    match b.get(4..12) {
        Some(id) if b[0] == FORMAT => u64::from_be_bytes(id.try_into().unwrap_or_default()),
        _ => 0,
    }
}

/// Reads back [`encode_delivery`].
pub fn decode_delivery(b: &[u8]) -> Result<StoredDelivery, BadRecord> {
    let mut r = R::new(b, "delivery")?;
    let kind = r.u8()?;
    if kind > 2 {
        return Err(bad(format!("delivery: state {kind}")));
    }
    let pkid = r.u16()?;
    let msg_id = r.u64()?;
    let options = if kind == 2 {
        None
    } else {
        let qos = r.qos()?;
        let retain = r.flag()?;
        let n = r.u32()?;
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(r.u32()?);
        }
        Some((qos, retain, ids))
    };
    r.end()?;
    Ok(StoredDelivery {
        kind,
        pkid,
        msg_id,
        options,
    })
}

impl StoredDelivery {
    /// The delivery state, given its message.
    pub fn into_state(self, msg: Option<Arc<Message>>) -> Result<DeliveryState, BadRecord> {
        let delivery = |msg: Option<Arc<Message>>, o: Option<(QoS, bool, Vec<u32>)>| {
            let (Some(msg), Some((qos, retain, sub_ids))) = (msg, o) else {
                return Err(bad(format!(
                    "delivery: its message {} is missing",
                    self.msg_id
                )));
            };
            Ok(Delivery {
                msg,
                qos,
                retain,
                sub_ids,
                seq: 0,
            })
        };
        match self.kind {
            0 => Ok(DeliveryState::Queued(delivery(msg, self.options.clone())?)),
            1 => Ok(DeliveryState::Sent(
                self.pkid,
                delivery(msg, self.options.clone())?,
            )),
            _ => Ok(DeliveryState::Released(self.pkid)),
        }
    }
}

#[cfg(test)]
mod tests;
