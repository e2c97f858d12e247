//! MQTT over WebSocket (`protocol websockets`), layered on a connection's plain or TLS stream.
//!
//! The HTTP upgrade is parsed and answered with `tungstenite`'s handshake helpers (request parsing,
//! the checks of RFC 6455 §4.2.1 and the accept key); the subprotocol must be `mqtt` (or the older
//! `mqttv3.1`), as Mosquitto asks, and `websockets_origin` restricts the `Origin` header as it does.
//! Frames are read with `tungstenite`'s [`FrameHeader`] parser, but their payloads are streamed: each
//! read unmasks the payload bytes of binary (and continuation) frames in place, in the shard's
//! buffer, and hands them on as a byte stream, so an MQTT packet split across frames, or several in
//! one frame, decode like bytes from TCP, and no frame is ever held whole (`tungstenite`'s own
//! `WebSocket` would buffer each message and allocate it). Pings are answered, a close is echoed
//! and ends the stream; text frames, unmasked frames, extensions and frames larger than the
//! broker's largest packet end the connection with a close frame saying why. Writes go out as one
//! unmasked binary frame per chunk, written straight to the stream below (a vectored write of header
//! and payload); only what the socket does not take is copied.

use std::io::{self, Cursor, IoSlice};

use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{create_response, write_response, Request};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::transport::Raw;

/// The largest HTTP upgrade request accepted.
const MAX_REQUEST: usize = 16 * 1024;
/// The largest payload of one outgoing frame.
const MAX_OUT_FRAME: usize = 64 * 1024;
/// Output held before a write waits for the socket.
const OUT_HIGH: usize = 64 * 1024;
/// Close status codes (RFC 6455 §7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_UNSUPPORTED: u16 = 1003;
const CLOSE_TOO_BIG: u16 = 1009;

/// What a WebSocket listener asks of the upgrade.
#[derive(Clone, Debug, Default)]
pub(super) struct WsListener {
    /// `websockets_origin`: allowed `Origin` values (empty: any).
    pub(super) origins: Vec<String>,
}

/// The frame being read.
struct InFrame {
    /// Its payload goes to MQTT (binary, continuation) or is a control frame's.
    control: Option<Control>,
    /// Payload bytes still to come.
    left: u64,
    mask: [u8; 4],
    /// Payload bytes already unmasked (modulo 4: where in the mask the next byte is).
    at: usize,
}

/// One connection's WebSocket state (boxed in the transport: a plain connection pays one pointer).
pub(super) struct Ws {
    /// The upgrade request read so far; `None` once the connection is upgraded.
    request: Option<Vec<u8>>,
    listener: std::sync::Arc<WsListener>,
    /// The largest frame payload accepted.
    max_frame: u64,
    /// The start of a frame header split across reads.
    head: [u8; 14],
    head_len: usize,
    frame: Option<InFrame>,
    /// A control frame's payload (at most 125 bytes).
    control: Vec<u8>,
    /// A fragmented binary message is going on: continuation frames belong to it.
    fragmented: bool,
    /// Encoded output (the upgrade's answer, frames), from `out_pos` on not yet written.
    out: Vec<u8>,
    out_pos: usize,
    /// A close frame has been queued: nothing is sent after it.
    close_sent: bool,
    /// The stream is over (a close was received).
    ended: bool,
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {why}"))
}

impl Ws {
    /// The state of a connection accepted on a WebSocket listener.
    pub(super) fn new(listener: std::sync::Arc<WsListener>, max_frame: usize) -> Ws {
        Ws {
            request: Some(Vec::new()),
            listener,
            max_frame: u64::try_from(max_frame).unwrap_or(u64::MAX),
            head: [0; 14],
            head_len: 0,
            frame: None,
            control: Vec::new(),
            fragmented: false,
            out: Vec::new(),
            out_pos: 0,
            close_sent: false,
            ended: false,
        }
    }

    /// `true` until the upgrade is done.
    pub(super) fn handshaking(&self) -> bool {
        self.request.is_some()
    }

    /// Reads MQTT bytes into `buf`: `Ok(0)` at the end, `WouldBlock` when the socket has nothing,
    /// `Interrupted` when what it had held no MQTT bytes (the upgrade, control frames): the caller
    /// reads again.
    pub(super) fn read(&mut self, raw: &mut Raw, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        let n = raw.read(buf)?;
        if n == 0 {
            return Ok(0);
        }
        let got = match self.request.is_some() {
            true => self.upgrade(&buf[..n]).map(|rest| {
                // Frames sent right behind the request.
                let rest = rest.unwrap_or_default();
                buf[..rest.len()].copy_from_slice(&rest);
                rest.len()
            }),
            false => Ok(n),
        };
        let got = got.and_then(|n| self.frames(&mut buf[..n]));
        let got = match got {
            Ok(got) => got,
            Err((code, e)) => {
                if let Some(code) = code {
                    self.queue_close(code);
                }
                // Best effort: the peer hears why, if its socket takes it now.
                let _ = self.flush(raw);
                return Err(e);
            }
        };
        // Answers (the upgrade's, pongs, a close) go now if the socket takes them, else with the
        // next flush.
        match self.flush(raw) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        match got {
            0 if self.ended => Ok(0),
            0 => Err(io::ErrorKind::Interrupted.into()),
            n => Ok(n),
        }
    }

    /// Adds `bytes` to the upgrade request; once it is whole, answers it and returns the bytes
    /// that followed it (`None` while it is incomplete). A refused upgrade is answered with an HTTP
    /// error and ends the connection.
    #[allow(clippy::type_complexity)]
    fn upgrade(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, (Option<u16>, io::Error)> {
        let request = self.request.as_mut().expect("upgrading");
        request.extend_from_slice(bytes);
        let parsed = match Request::try_parse(request) {
            Ok(Some(parsed)) => Ok(parsed),
            Ok(None) if request.len() > MAX_REQUEST => Err((
                "431 Request Header Fields Too Large",
                "request too large".to_owned(),
            )),
            Ok(None) => return Ok(None),
            Err(e) => Err(("400 Bad Request", e.to_string())),
        };
        let answered = parsed.and_then(|(used, req)| {
            let protocol =
                subprotocol(&req).ok_or(("400 Bad Request", "no `mqtt` subprotocol".to_owned()))?;
            if !self.listener.origins.is_empty() {
                if let Some(origin) = req.headers().get("Origin") {
                    if !self
                        .listener
                        .origins
                        .iter()
                        .any(|o| o.as_bytes() == origin.as_bytes())
                    {
                        return Err(("403 Forbidden", "origin not allowed".to_owned()));
                    }
                }
            }
            let mut resp = create_response(&req).map_err(|e| ("400 Bad Request", e.to_string()))?;
            let value = protocol
                .parse()
                .map_err(|_| ("400 Bad Request", "bad subprotocol".to_owned()))?;
            resp.headers_mut().insert("Sec-WebSocket-Protocol", value);
            write_response(&mut self.out, &resp)
                .map_err(|e| ("500 Internal Server Error", e.to_string()))?;
            Ok(used)
        });
        match answered {
            Ok(used) => {
                let rest = self.request.take().expect("upgrading").split_off(used);
                Ok(Some(rest))
            }
            Err((status, why)) => {
                self.request = Some(Vec::new());
                self.out.extend_from_slice(
                    format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                        .as_bytes(),
                );
                Err((None, invalid(&why)))
            }
        }
    }

    /// Decodes the frames in `buf`, moving the MQTT bytes to its start: how many there are.
    fn frames(&mut self, buf: &mut [u8]) -> Result<usize, (Option<u16>, io::Error)> {
        let (mut r, mut w) = (0, 0);
        // Bounded: each iteration consumes header or payload bytes, or finishes a frame.
        while r < buf.len() && !self.ended {
            let Some(f) = self.frame.as_mut() else {
                r += self.header(&buf[r..])?;
                continue;
            };
            let take =
                usize::try_from(f.left).map_or(buf.len() - r, |left| left.min(buf.len() - r));
            for (i, b) in buf[r..r + take].iter_mut().enumerate() {
                *b ^= f.mask[(f.at + i) & 3];
            }
            f.at = (f.at + take) & 3;
            f.left -= take as u64;
            if f.control.is_some() {
                self.control.extend_from_slice(&buf[r..r + take]);
            } else {
                buf.copy_within(r..r + take, w);
                w += take;
            }
            r += take;
            if f.left == 0 {
                self.end_frame();
            }
        }
        Ok(w)
    }

    /// Reads a frame header from the start of `bytes` (or what is kept of it): the bytes used.
    fn header(&mut self, bytes: &[u8]) -> Result<usize, (Option<u16>, io::Error)> {
        let had = self.head_len;
        let add = bytes.len().min(self.head.len() - had);
        self.head[had..had + add].copy_from_slice(&bytes[..add]);
        let mut cursor = Cursor::new(&self.head[..had + add]);
        let parsed = FrameHeader::parse(&mut cursor)
            .map_err(|e| (Some(CLOSE_PROTOCOL), invalid(&e.to_string())))?;
        let Some((h, len)) = parsed else {
            self.head_len = had + add;
            return Ok(add);
        };
        let used = usize::try_from(cursor.position()).unwrap_or(0) - had;
        self.head_len = 0;
        let protocol = |why: &str| (Some(CLOSE_PROTOCOL), invalid(why));
        if h.rsv1 || h.rsv2 || h.rsv3 {
            return Err(protocol("no extension was agreed"));
        }
        let Some(mask) = h.mask else {
            return Err(protocol("client frames must be masked"));
        };
        let control = match h.opcode {
            OpCode::Data(Data::Binary) if !self.fragmented => None,
            OpCode::Data(Data::Continue) if self.fragmented => None,
            OpCode::Data(Data::Text) => {
                return Err((Some(CLOSE_UNSUPPORTED), invalid("text frames are not MQTT")))
            }
            OpCode::Data(Data::Binary | Data::Continue) => {
                return Err(protocol("unexpected continuation"))
            }
            OpCode::Control(c @ (Control::Ping | Control::Pong | Control::Close)) => {
                if !h.is_final || len > 125 {
                    return Err(protocol("bad control frame"));
                }
                Some(c)
            }
            _ => return Err(protocol("reserved opcode")),
        };
        if control.is_none() {
            if len > self.max_frame {
                return Err((
                    Some(CLOSE_TOO_BIG),
                    invalid("frame larger than the largest packet"),
                ));
            }
            self.fragmented = !h.is_final;
        }
        self.frame = Some(InFrame {
            control,
            left: len,
            mask,
            at: 0,
        });
        if len == 0 {
            self.end_frame();
        }
        Ok(used)
    }

    /// A frame's payload is all read: control frames act.
    fn end_frame(&mut self) {
        let Some(f) = self.frame.take() else { return };
        match f.control {
            Some(Control::Ping) => {
                let payload = std::mem::take(&mut self.control);
                self.queue_frame(OpCode::Control(Control::Pong), &payload);
                self.control = payload;
            }
            Some(Control::Close) => {
                // Echo its status code (RFC 6455 §5.5.1) and end the stream.
                let code = match self.control.get(..2) {
                    Some(c) => u16::from_be_bytes([c[0], c[1]]),
                    None => CLOSE_NORMAL,
                };
                self.queue_close(code);
                self.ended = true;
            }
            _ => {}
        }
        self.control.clear();
    }

    fn queue_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.close_sent {
            return;
        }
        let h = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        // Writing to a Vec cannot fail.
        let _ = h.format(payload.len() as u64, &mut self.out);
        self.out.extend_from_slice(payload);
    }

    /// Queues a close frame with `code` (once).
    pub(super) fn queue_close(&mut self, code: u16) {
        if self.request.is_none() {
            self.queue_frame(OpCode::Control(Control::Close), &code.to_be_bytes());
        }
        self.close_sent = true;
    }

    /// Starts an orderly close from the broker's side.
    pub(super) fn close(&mut self) {
        self.queue_close(CLOSE_NORMAL);
    }

    /// Takes some of `data` as a binary frame: how many bytes, or `WouldBlock` while the socket
    /// has not taken what is queued. When nothing is queued, the frame goes straight to the stream
    /// below and only what it does not take now is copied.
    pub(super) fn write(&mut self, raw: &mut Raw, data: &[u8]) -> io::Result<usize> {
        if self.request.is_some() || self.close_sent {
            return Err(io::ErrorKind::NotConnected.into());
        }
        if self.out.len() - self.out_pos >= OUT_HIGH {
            self.flush(raw)?;
        }
        let take = data.len().min(MAX_OUT_FRAME);
        if take == 0 {
            return Ok(0);
        }
        let payload = &data[..take];
        let h = FrameHeader {
            opcode: OpCode::Data(Data::Binary),
            ..FrameHeader::default()
        };
        let mut head = Cursor::new([0u8; 14]);
        // 14 bytes hold any header.
        let _ = h.format(take as u64, &mut head);
        let head_len = usize::try_from(head.position()).unwrap_or(0);
        let head = &head.get_ref()[..head_len];
        let mut sent = 0;
        if !self.pending() {
            // Bounded: each turn sends at least one byte, or stops.
            while sent < head_len + take {
                let r = if sent < head_len {
                    raw.write_vectored(&[IoSlice::new(&head[sent..]), IoSlice::new(payload)])
                } else {
                    raw.write(&payload[sent - head_len..])
                };
                match r {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        // What the stream did not take waits here, after what waited already.
        if sent < head_len {
            self.out.extend_from_slice(&head[sent..]);
            self.out.extend_from_slice(payload);
        } else if sent < head_len + take {
            self.out.extend_from_slice(&payload[sent - head_len..]);
        }
        Ok(take)
    }

    /// Hands what is queued to the stream below and flushes it.
    pub(super) fn flush(&mut self, raw: &mut Raw) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match raw.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // An idle connection keeps no output buffer.
        self.out = Vec::new();
        self.out_pos = 0;
        raw.flush()
    }

    /// `true` while queued bytes wait for the socket.
    pub(super) fn pending(&self) -> bool {
        self.out_pos < self.out.len()
    }
}

/// The subprotocol asked for that this broker speaks (`Sec-WebSocket-Protocol` may list several).
fn subprotocol(req: &Request) -> Option<String> {
    req.headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| *p == "mqtt" || *p == "mqttv3.1")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
