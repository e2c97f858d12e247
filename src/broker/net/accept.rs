//! The accepting thread: takes sockets from every listener, applies `max_connections`, numbers
//! them and deals them out to the shards in turn.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use tokio_rustls::rustls;

use crate::broker::identity::CertUsername;

use super::log;
use super::shard::{Accepted, ShardHandle};
use super::ws::WsListener;
use crate::broker::session::ConnId;

/// A bound listener.
pub(super) struct Bound {
    /// The listening socket.
    pub(super) socket: TcpListener,
    /// Its TLS configuration, for a TLS listener.
    pub(super) tls: Option<Arc<rustls::ServerConfig>>,
    /// `use_identity_as_username` / `use_subject_as_username` on this TLS listener.
    pub(super) cert_username: Option<CertUsername>,
    /// `max_connections` (`None`: no limit).
    pub(super) max_connections: Option<usize>,
    /// Its WebSocket settings, for a `protocol websockets` listener.
    pub(super) ws: Option<Arc<WsListener>>,
}

/// Starts the accepting thread.
pub(super) fn spawn(mut listeners: Vec<Bound>, shards: Vec<Arc<ShardHandle>>) -> io::Result<()> {
    let poll = Poll::new()?;
    for (i, l) in listeners.iter_mut().enumerate() {
        poll.registry()
            .register(&mut l.socket, Token(i), Interest::READABLE)?;
    }
    std::thread::Builder::new()
        .name("mqtt-accept".into())
        .spawn(move || run(poll, &listeners, &shards))?;
    Ok(())
}

fn run(mut poll: Poll, listeners: &[Bound], shards: &[Arc<ShardHandle>]) {
    let open: Vec<Arc<AtomicUsize>> = listeners.iter().map(|_| Arc::default()).collect();
    let mut events = Events::with_capacity(16);
    let mut next_conn: ConnId = 1;
    let mut next_shard = 0;
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log(&format!("accepting stopped: {e}"));
            return;
        }
        for ev in &events {
            let i = ev.token().0;
            let l = &listeners[i];
            loop {
                let (stream, peer) = match l.socket.accept() {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little rather than spin.
                        log(&format!("accept failed: {e}"));
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                if let Some(max) = l.max_connections {
                    if open[i].load(Ordering::Relaxed) >= max {
                        drop(stream);
                        continue;
                    }
                }
                let _ = stream.set_nodelay(true);
                open[i].fetch_add(1, Ordering::Relaxed);
                let conn = next_conn;
                next_conn += 1;
                shards[next_shard].hand_over(Accepted {
                    stream,
                    peer: peer.ip(),
                    conn,
                    tls: l.tls.clone(),
                    cert_username: l.cert_username,
                    open: Arc::clone(&open[i]),
                    ws: l.ws.clone(),
                });
                next_shard = (next_shard + 1) % shards.len();
            }
        }
    }
}
