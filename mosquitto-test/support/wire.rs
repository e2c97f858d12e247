//! [`WireClient`]: a deliberately small, synchronous MQTT 5 client over plain TCP, for tests that need
//! exact control of the packets: an empty (zero-length) username, any client id, many QoS 1 publishes
//! pipelined with their PUBACK reason codes matched by packet id, and [`WireClient::sync`], which uses a
//! PINGREQ/PINGRESP round trip as a barrier instead of waiting for silence.
//!
//! Only what the tests use is implemented: CONNECT (clean start), QoS 1 PUBLISH, SUBSCRIBE at QoS 0,
//! PINGREQ, DISCONNECT; incoming QoS 0/1 PUBLISH. Every read is bounded by [`READ_LIMIT`].

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// The longest any single read waits for the broker.
pub const READ_LIMIT: Duration = Duration::from_secs(5);

/// At most this many QoS 1 publishes are unacknowledged at once (less if the broker's Receive
/// Maximum is lower).
const WINDOW: u16 = 16;

/// What to put in CONNECT.
#[derive(Clone, Copy, Debug)]
pub struct Connect<'a> {
    /// The client id; empty asks the broker to assign one (see [`WireClient::client_id`]).
    pub client_id: &'a str,
    /// The username; `Some("")` sends the username flag with a zero-length name.
    pub username: Option<&'a str>,
    /// The password (only sent with a username).
    pub password: Option<&'a [u8]>,
}

/// A message the broker delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A connected MQTT 5 session.
#[derive(Debug)]
pub struct WireClient {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    client_id: String,
    window: u16,
    next_id: u16,
    delivered: Vec<Delivery>,
}

/// An incoming packet, as far as the tests care.
enum Incoming {
    ConnAck {
        reason: u8,
        assigned_id: Option<String>,
        receive_maximum: Option<u16>,
    },
    PubAck {
        id: u16,
        reason: u8,
    },
    SubAck {
        id: u16,
        reasons: Vec<u8>,
    },
    PingResp,
}

impl WireClient {
    /// Connects to `127.0.0.1:port`. `Ok(Err(code))` when the broker refuses with CONNACK reason `code`;
    /// `Err` on I/O or protocol failure.
    pub fn connect(port: u16, connect: &Connect<'_>) -> io::Result<Result<WireClient, u8>> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_LIMIT))?;
        let mut client = WireClient {
            reader: BufReader::new(stream.try_clone()?),
            stream,
            client_id: connect.client_id.to_owned(),
            window: WINDOW,
            next_id: 0,
            delivered: Vec::new(),
        };
        client.stream.write_all(&connect_packet(connect))?;
        match client.next_packet()? {
            Incoming::ConnAck {
                reason: 0,
                assigned_id,
                receive_maximum,
            } => {
                if let Some(id) = assigned_id {
                    client.client_id = id;
                }
                if let Some(max) = receive_maximum {
                    client.window = client.window.min(max.max(1));
                }
                Ok(Ok(client))
            }
            Incoming::ConnAck { reason, .. } => Ok(Err(reason)),
            _ => Err(protocol("expected CONNACK")),
        }
    }

    /// The client id the broker uses for this session (the assigned one if CONNECT's was empty).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Publishes each `(topic, payload)` at QoS 1, pipelined, and returns the PUBACK reason codes in
    /// the same order (0x00 success, 0x10 no matching subscribers, 0x87 not authorised, ...).
    pub fn publish_qos1(&mut self, messages: &[(&str, &[u8])]) -> io::Result<Vec<u8>> {
        let mut reasons = vec![None; messages.len()];
        let mut pending: HashMap<u16, usize> = HashMap::new();
        let mut next = 0;
        while next < messages.len() || !pending.is_empty() {
            let mut batch = Vec::new();
            while next < messages.len() && pending.len() < usize::from(self.window) {
                let id = self.packet_id();
                let (topic, payload) = messages[next];
                batch.extend(publish_packet(topic, id, payload));
                pending.insert(id, next);
                next += 1;
            }
            if !batch.is_empty() {
                self.stream.write_all(&batch)?;
            }
            match self.next_packet()? {
                Incoming::PubAck { id, reason } => {
                    let index = pending
                        .remove(&id)
                        .ok_or_else(|| protocol("PUBACK for an unknown packet id"))?;
                    reasons[index] = Some(reason);
                }
                _ => return Err(protocol("unexpected packet while publishing")),
            }
        }
        Ok(reasons
            .into_iter()
            .map(|r| r.expect("every publish acknowledged"))
            .collect())
    }

    /// Subscribes to `filters` at QoS 0 in one SUBSCRIBE; returns the SUBACK reason codes.
    pub fn subscribe(&mut self, filters: &[&str]) -> io::Result<Vec<u8>> {
        let id = self.packet_id();
        self.stream.write_all(&subscribe_packet(id, filters))?;
        match self.next_packet()? {
            Incoming::SubAck { id: got, reasons } if got == id => Ok(reasons),
            _ => Err(protocol("expected SUBACK")),
        }
    }

    /// Sends PINGREQ and reads until PINGRESP. The broker writes to a client in order, so every message
    /// it queued for us before handling the PINGREQ has arrived when this returns; returns them (and any
    /// received earlier), oldest first.
    pub fn sync(&mut self) -> io::Result<Vec<Delivery>> {
        self.stream.write_all(&[0xC0, 0x00])?;
        match self.next_packet()? {
            Incoming::PingResp => Ok(std::mem::take(&mut self.delivered)),
            _ => Err(protocol("unexpected packet while waiting for PINGRESP")),
        }
    }

    /// Sends DISCONNECT (normal) and closes the connection.
    pub fn disconnect(mut self) {
        let _ = self.stream.write_all(&[0xE0, 0x00]);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.next_id
    }

    /// Reads packets until one that is not a delivery; deliveries are stored (QoS 1 ones acknowledged).
    fn next_packet(&mut self) -> io::Result<Incoming> {
        loop {
            let mut first = [0u8; 1];
            self.reader.read_exact(&mut first)?;
            let length = read_varint(&mut self.reader)?;
            let mut body = vec![0u8; length];
            self.reader.read_exact(&mut body)?;
            let mut body = Body(&body);
            match first[0] >> 4 {
                2 => {
                    body.take(1)?;
                    let reason = body.byte()?;
                    let (assigned_id, receive_maximum) = connack_properties(&mut body)?;
                    return Ok(Incoming::ConnAck {
                        reason,
                        assigned_id,
                        receive_maximum,
                    });
                }
                3 => {
                    let qos = (first[0] >> 1) & 3;
                    let topic = body.string()?;
                    if qos > 0 {
                        let id = body.u16()?;
                        if qos > 1 {
                            return Err(protocol("QoS 2 delivery to a QoS 0 subscriber"));
                        }
                        self.stream
                            .write_all(&[0x40, 0x02, (id >> 8) as u8, id as u8])?;
                    }
                    let properties = body.varint()?;
                    body.take(properties)?;
                    self.delivered.push(Delivery {
                        topic,
                        payload: body.0.to_vec(),
                    });
                }
                4 => {
                    let id = body.u16()?;
                    let reason = if body.0.is_empty() { 0 } else { body.byte()? };
                    return Ok(Incoming::PubAck { id, reason });
                }
                9 => {
                    let id = body.u16()?;
                    let properties = body.varint()?;
                    body.take(properties)?;
                    return Ok(Incoming::SubAck {
                        id,
                        reasons: body.0.to_vec(),
                    });
                }
                13 => return Ok(Incoming::PingResp),
                14 => {
                    let reason = body.0.first().copied().unwrap_or(0);
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("broker sent DISCONNECT with reason 0x{reason:02x}"),
                    ));
                }
                kind => return Err(protocol(&format!("unexpected packet type {kind}"))),
            }
        }
    }
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// A cursor over a packet body.
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(protocol("packet too short"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> io::Result<usize> {
        read_varint(&mut self.0)
    }

    fn binary(&mut self) -> io::Result<Vec<u8>> {
        let n = usize::from(self.u16()?);
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.binary()?).map_err(|_| protocol("invalid UTF-8"))
    }
}

/// Reads CONNACK properties: (Assigned Client Identifier, Receive Maximum); skips the others.
fn connack_properties(body: &mut Body<'_>) -> io::Result<(Option<String>, Option<u16>)> {
    let length = body.varint()?;
    let mut props = Body(body.take(length)?);
    let (mut assigned, mut receive_maximum) = (None, None);
    while !props.0.is_empty() {
        match props.byte()? {
            0x12 => assigned = Some(props.string()?),
            0x21 => receive_maximum = Some(props.u16()?),
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => drop(props.byte()?),
            0x13 | 0x22 | 0x23 => drop(props.u16()?),
            0x02 | 0x11 | 0x18 | 0x27 => drop(props.u32()?),
            0x0B => drop(props.varint()?),
            0x03 | 0x08 | 0x09 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => drop(props.binary()?),
            0x26 => drop((props.binary()?, props.binary()?)),
            other => return Err(protocol(&format!("unknown CONNACK property 0x{other:02x}"))),
        }
    }
    Ok((assigned, receive_maximum))
}

fn read_varint(reader: &mut impl Read) -> io::Result<usize> {
    let mut value = 0usize;
    for shift in [0, 7, 14, 21] {
        let mut b = [0u8; 1];
        reader.read_exact(&mut b)?;
        value |= usize::from(b[0] & 0x7F) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(protocol("variable byte integer too long"))
}

fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let mut b = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            b |= 0x80;
        }
        out.push(b);
        if value == 0 {
            return;
        }
    }
}

fn put_binary(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = u16::try_from(bytes.len()).expect("string shorter than 64 KiB");
    out.extend(n.to_be_bytes());
    out.extend(bytes);
}

/// `first` byte, remaining length, `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    put_varint(&mut out, body.len());
    out.extend(body);
    out
}

fn connect_packet(c: &Connect<'_>) -> Vec<u8> {
    let mut body = Vec::new();
    put_binary(&mut body, b"MQTT");
    body.push(5);
    let mut flags = 0x02; // clean start
    if c.username.is_some() {
        flags |= 0x80;
        if c.password.is_some() {
            flags |= 0x40;
        }
    }
    body.push(flags);
    body.extend(60u16.to_be_bytes()); // keep alive
    body.push(0); // no properties
    put_binary(&mut body, c.client_id.as_bytes());
    if let Some(username) = c.username {
        put_binary(&mut body, username.as_bytes());
        if let Some(password) = c.password {
            put_binary(&mut body, password);
        }
    }
    packet(0x10, &body)
}

fn publish_packet(topic: &str, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_binary(&mut body, topic.as_bytes());
    body.extend(id.to_be_bytes());
    body.push(0); // no properties
    body.extend(payload);
    packet(0x32, &body)
}

fn subscribe_packet(id: u16, filters: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(id.to_be_bytes());
    body.push(0); // no properties
    for filter in filters {
        put_binary(&mut body, filter.as_bytes());
        body.push(0); // QoS 0, no options
    }
    packet(0x82, &body)
}
