//! Connections under bounds: at most [`MAX_CONNECTIONS`] open at once (a flood waits in the
//! kernel's backlog instead of taking memory and file descriptors), and a connection on which nothing
//! moves for [`IDLE_TIMEOUT`] is closed (a slow or stalled client, or an idle keep-alive connection,
//! which the brokers' HTTP clients open again when they need one). With HTTPS, each connection
//! shakes hands in its own task ([`super::tls::Served`]), under the same idle deadline.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use super::tls::Served;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a connection may stay without a byte read or written.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A listener that hands out at most `max` connections at once, each closed after `idle` without
/// traffic, and spoken to over TLS when it has an acceptor.
pub struct Bounded {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    idle: Duration,
    tls: Option<TlsAcceptor>,
}

impl Bounded {
    /// Bounds `inner`; its connections speak TLS through `tls` when given.
    pub fn new(
        inner: TcpListener,
        max: usize,
        idle: Duration,
        tls: Option<TlsAcceptor>,
    ) -> Bounded {
        Bounded {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            idle,
            tls,
        }
    }
}

impl Listener for Bounded {
    type Io = Served<Guarded>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Served<Guarded>, std::net::SocketAddr) {
        // The semaphore is never closed: acquiring only waits.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let _ = stream.set_nodelay(true);
        let idle = self.idle;
        let guarded = Guarded {
            stream,
            _permit: permit,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        };
        (Served::new(guarded, self.tls.as_ref()), addr)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection holding its place among the bounded ones, with its idle deadline.
pub struct Guarded {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl Guarded {
    /// Pushes the deadline back after traffic.
    fn moved(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// `Ready(Err)` once the deadline has passed while waiting.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no traffic within the idle timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future;

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.expired(cx),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.expired(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.expired(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
