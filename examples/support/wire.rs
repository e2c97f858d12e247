//! The MQTT 3.1.1 wire format as the examples' load generators need it (`loadgen`, `latency`): a
//! CONNECT, a SUBSCRIBE, PUBLISH encoding, splitting packets off a buffer, and a connected client on
//! a tokio `TcpStream`. No client library, so that the load costs the same against every broker.

#![allow(dead_code)] // Each example uses a part.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any error of a run.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

pub fn connect_packet(
    client_id: &str,
    user: &str,
    password: &str,
    keep_alive: u16,
    clean: bool,
) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(4); // protocol level 3.1.1
    body.push(0x80 | 0x40 | if clean { 0x02 } else { 0 }); // username, password, clean session
    body.extend_from_slice(&keep_alive.to_be_bytes());
    put_str(&mut body, client_id.as_bytes());
    put_str(&mut body, user.as_bytes());
    put_str(&mut body, password.as_bytes());
    let mut out = vec![0x10];
    put_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

pub fn subscribe_packet(filter: &str, qos: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&1u16.to_be_bytes());
    put_str(&mut body, filter.as_bytes());
    body.push(qos);
    let mut out = vec![0x82];
    put_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

pub fn put_publish(out: &mut Vec<u8>, topic: &str, qos: u8, pkid: u16, payload: &[u8]) {
    out.push(0x30 | (qos << 1));
    let len = 2 + topic.len() + if qos > 0 { 2 } else { 0 } + payload.len();
    put_len(out, len);
    put_str(out, topic.as_bytes());
    if qos > 0 {
        out.extend_from_slice(&pkid.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Splits the first complete packet off `buf[start..]`: (first byte, body range, packet end).
pub fn next_packet(buf: &[u8], start: usize) -> Option<(u8, usize, usize)> {
    let b = &buf[start..];
    if b.len() < 2 {
        return None;
    }
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut i = 1;
    loop {
        let byte = *b.get(i)?;
        len += usize::from(byte & 0x7f) * mult;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        mult *= 128;
        if i > 4 {
            return None;
        }
    }
    if b.len() < i + len {
        return None;
    }
    Some((b[0], start + i, start + i + len))
}

/// A connected client: the socket and bytes read past the last whole packet.
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read past the last whole packet.
    pub buf: Vec<u8>,
}

impl Client {
    /// Reads until one whole packet is buffered; returns (first byte, body).
    pub async fn read_packet(&mut self) -> Result<(u8, Vec<u8>), Error> {
        loop {
            if let Some((h, body, end)) = next_packet(&self.buf, 0) {
                let b = self.buf[body..end].to_vec();
                self.buf.drain(..end);
                return Ok((h, b));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("connection closed by the broker".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn connect(
        addr: &str,
        client_id: &str,
        user: &str,
        password: &str,
        keep_alive: u16,
    ) -> Result<Client, Error> {
        Client::connect_as(addr, client_id, user, password, keep_alive, true).await
    }

    /// [`Client::connect`] with Clean Session `clean`.
    pub async fn connect_as(
        addr: &str,
        client_id: &str,
        user: &str,
        password: &str,
        keep_alive: u16,
        clean: bool,
    ) -> Result<Client, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            buf: Vec::new(),
        };
        c.stream
            .write_all(&connect_packet(
                client_id, user, password, keep_alive, clean,
            ))
            .await?;
        let (h, body) = c.read_packet().await?;
        if h >> 4 != 2 || body.len() != 2 {
            return Err(format!("expected CONNACK, got packet type {}", h >> 4).into());
        }
        if body[1] != 0 {
            return Err(format!("CONNACK return code {} for {user}", body[1]).into());
        }
        Ok(c)
    }

    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<(), Error> {
        self.stream
            .write_all(&subscribe_packet(filter, qos))
            .await?;
        let (h, body) = self.read_packet().await?;
        if h >> 4 != 9 || body.len() != 3 {
            return Err(format!("expected SUBACK, got packet type {}", h >> 4).into());
        }
        if body[2] == 0x80 {
            return Err(format!("subscription to {filter:?} refused (SUBACK 0x80)").into());
        }
        Ok(())
    }
}
