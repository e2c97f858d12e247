//! A connection's byte stream: plain TCP, or TLS through rustls driven by hand over a non-blocking
//! socket, either of them with MQTT over WebSocket on top ([`super::ws`]). Every call returns
//! `WouldBlock` when it cannot go on until the socket is ready again.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use tokio_rustls::rustls::ServerConnection;

use super::ws::Ws;

/// A non-blocking connection stream, plain or TLS, MQTT's bytes or WebSocket's.
pub(super) struct Transport {
    /// The stream below (TCP or TLS).
    pub(super) raw: Raw,
    /// The WebSocket state on a `protocol websockets` listener (boxed: a plain connection pays one
    /// pointer).
    ws: Option<Box<Ws>>,
}

/// A non-blocking byte stream, plain or TLS.
pub(super) struct Raw {
    /// The socket.
    pub(super) sock: TcpStream,
    /// The TLS state (boxed: a plain connection pays one pointer).
    tls: Option<Box<ServerConnection>>,
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl Transport {
    /// A plain or TLS stream over `sock`, with WebSocket on top when `ws` is given.
    pub(super) fn new(sock: TcpStream, tls: Option<ServerConnection>, ws: Option<Ws>) -> Transport {
        Transport {
            raw: Raw {
                sock,
                tls: tls.map(Box::new),
            },
            ws: ws.map(Box::new),
        }
    }

    /// The DER of the client's end-entity certificate, if it presented one over TLS.
    pub(super) fn peer_certificate(&self) -> Option<&[u8]> {
        let certs = self.raw.tls.as_ref()?.peer_certificates()?;
        certs.first().map(|c| c.as_ref())
    }

    /// `true` for plain TCP (no TLS, no WebSocket): a read that returns less than it asked for
    /// took everything the socket had, with nothing kept above it.
    pub(super) fn is_plain(&self) -> bool {
        self.raw.tls.is_none() && self.ws.is_none()
    }

    /// `true` while a TLS handshake or a WebSocket upgrade is still going on.
    pub(super) fn handshaking(&self) -> bool {
        self.raw.tls.as_ref().is_some_and(|t| t.is_handshaking())
            || self.ws.as_ref().is_some_and(|w| w.handshaking())
    }

    /// Reads MQTT bytes: `Ok(0)` at the end of the stream, `WouldBlock` when none are available
    /// now, `Interrupted` when the bytes read were WebSocket's own (read again).
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.ws.as_mut() {
            Some(ws) => ws.read(&mut self.raw, buf),
            None => self.raw.read(buf),
        }
    }

    /// Writes some of `data`: how many bytes were taken (at least one), or `WouldBlock`; taken
    /// bytes may still wait (TLS, WebSocket): [`Transport::flush`] sends them.
    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.ws.as_mut() {
            Some(ws) => ws.write(&mut self.raw, data),
            None => self.raw.write(data),
        }
    }

    /// Sends what is buffered; `WouldBlock` if the socket cannot take all of it now.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        match self.ws.as_mut() {
            Some(ws) => ws.flush(&mut self.raw),
            None => self.raw.flush(),
        }
    }

    /// Starts an orderly close: queues a WebSocket close frame and TLS close_notify (sent by the
    /// next [`Transport::flush`]).
    pub(super) fn close_notify(&mut self) {
        if let Some(ws) = self.ws.as_mut() {
            ws.close();
            // The close frame goes before TLS close_notify; if the socket cannot take it now, the
            // TLS close is left out (the TCP shutdown still ends the stream).
            if ws.flush(&mut self.raw).is_err() && ws.pending() {
                return;
            }
        }
        self.raw.close_notify();
    }

    /// Shuts the sending direction down, once everything is flushed.
    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        if self.ws.as_ref().is_some_and(|w| w.pending()) {
            return Err(would_block());
        }
        self.raw.shutdown()
    }
}

impl Raw {
    /// Reads application bytes: `Ok(0)` at the end of the stream, `WouldBlock` when none are
    /// available now. With TLS, this also reads and answers the handshake.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.sock.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // An end without close_notify is an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut self.sock)? == 0 {
                return Ok(0);
            }
            if let Err(e) = tls.process_new_packets() {
                // Tell the peer why (an alert), if the socket takes it now.
                let _ = tls.write_tls(&mut self.sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages, or answers to the peer's (key updates): best effort here, the
            // rest goes with the next flush.
            match Self::flush_tls(tls, &mut self.sock) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes some of `data`: how many bytes were taken (at least one), or `WouldBlock`. With TLS,
    /// taken bytes may still wait in rustls: [`Raw::flush`] sends them.
    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.sock.write(data);
        };
        loop {
            let n = tls.writer().write(data)?;
            if n > 0 || data.is_empty() {
                return Ok(n);
            }
            // rustls' buffer is full: make room, or wait for the socket.
            Self::flush_tls(tls, &mut self.sock)?;
        }
    }

    /// [`Raw::write`] from several buffers, in order.
    pub(super) fn write_vectored(&mut self, data: &[IoSlice<'_>]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.sock.write_vectored(data);
        };
        loop {
            let n = tls.writer().write_vectored(data)?;
            if n > 0 || data.iter().all(|d| d.is_empty()) {
                return Ok(n);
            }
            // rustls' buffer is full: make room, or wait for the socket.
            Self::flush_tls(tls, &mut self.sock)?;
        }
    }

    /// Sends what is buffered (TLS records); `WouldBlock` if the socket cannot take all of it now.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_mut() {
            Some(tls) => Self::flush_tls(tls, &mut self.sock),
            None => Ok(()),
        }
    }

    fn flush_tls(tls: &mut ServerConnection, sock: &mut TcpStream) -> io::Result<()> {
        while tls.wants_write() {
            if tls.write_tls(sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Starts an orderly close: queues TLS close_notify (sent by the next [`Raw::flush`]).
    pub(super) fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
    }

    /// Shuts the sending direction down, once everything is flushed.
    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        if self.tls.as_ref().is_some_and(|t| t.wants_write()) {
            return Err(would_block());
        }
        self.sock.shutdown(Shutdown::Write)
    }
}
