//! A connection's byte stream: plain TCP, or TLS through rustls driven by hand over a non-blocking
//! socket. Every call returns `WouldBlock` when it cannot go on until the socket is ready again.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use tokio_rustls::rustls::ServerConnection;

/// A non-blocking connection stream, plain or TLS.
pub(super) struct Transport {
    /// The socket.
    pub(super) sock: TcpStream,
    /// The TLS state (boxed: a plain connection pays one pointer).
    tls: Option<Box<ServerConnection>>,
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl Transport {
    /// A plain or TLS stream over `sock`.
    pub(super) fn new(sock: TcpStream, tls: Option<ServerConnection>) -> Transport {
        Transport {
            sock,
            tls: tls.map(Box::new),
        }
    }

    /// The DER of the client's end-entity certificate, if it presented one over TLS.
    pub(super) fn peer_certificate(&self) -> Option<&[u8]> {
        let certs = self.tls.as_ref()?.peer_certificates()?;
        certs.first().map(|c| c.as_ref())
    }

    /// `true` while a TLS handshake is still going on.
    pub(super) fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

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
    /// taken bytes may still wait in rustls: [`Transport::flush`] sends them.
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

    /// Starts an orderly close: queues TLS close_notify (sent by the next [`Transport::flush`]).
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
