//! The network layer: listeners (TCP, TLS through rustls), connection threads that turn bytes into
//! packets and packets into bytes, and the core that owns the [`Router`] and executes its actions
//! (behind a lock, run by the connection thread that read a packet, or by the runtime's task for
//! ticks, signals, password verdicts and commits: `core_lock`). The only place with sockets,
//! threads and signals.
//!
//! * `accept`: one thread takes every listener's sockets and deals them out to the shards.
//! * `shard`: one thread per core (a mio poll each) serves its connections in turn, with their
//!   deadlines in a timer heap.
//! * `conn`: one connection's reads, writes and deadline; `transport`: plain TCP or TLS; `ws`: MQTT
//!   over WebSocket on top of either (`protocol websockets`).
//!
//! Memory is bounded per connection, and small while it is idle: a slab entry and an outbox, no
//! task, no buffer. Reads go into the shard's buffer and only an incomplete packet is copied out
//! (growing with what really arrives, at most twice that, and freed once the packet is whole); the output
//! buffer exists only while something is being written; the outgoing queue ([`super::outbox`]) holds
//! no allocation when empty; a publisher that fills a subscriber's queues faster than it reads is
//! paused ([`super::pacing`]), and a subscriber too slow for that gets `max_queued_messages`/
//! `max_queued_bytes` (QoS 0 beyond them is dropped, counted and logged); a client that sends
//! without reading is disconnected. A connection that sends no CONNECT within [`CONNECT_TIMEOUT`] is
//! closed, and a connected client silent for 1.5 × its keep alive is disconnected (half-open
//! connections).

mod accept;
mod conn;
mod core;
mod core_lock;
mod drops;
mod flow;
mod notify;
mod shard;
mod tls_config;
mod transport;
mod ws;

use std::io::{self, Write as _};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::config::BrokerConfig;
use super::outbox::{self, Outbox};
use super::router::{Event, Router};
use super::security::Security;
use super::session::ConnId;
use super::store::worker::Worker;
use super::store::Store;
use crate::enforce::audit_sink::{AuditLog, AuditSink};
use crate::enforce::logins::VerifyPool;
use crate::enforce::metrics::Metrics;
use crate::exposition::Exposition;
use core_lock::CoreLock;

/// Time allowed between accepting a socket (and, after it, its TLS handshake) and its CONNECT.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest read (each shard has one buffer of this size).
pub const READ_MAX: usize = 16 * 1024;
/// The most messages (password verdicts, reloads) the runtime's task hands the core before the
/// connection threads are woken for what it queued, while more keep coming.
const WAKE_BATCH: usize = 64;
/// Time allowed to write what precedes a close (a DISCONNECT, a refused CONNACK).
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How the broker was started.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--audit-log`: overrides `plugin_opt_audit_log`.
    pub audit_log: Option<String>,
    /// `-v`: log connections and refusals to stderr.
    pub verbose: bool,
}

/// What the core handles.
// Events carrying packets dominate this channel; boxing them would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum CoreMsg {
    Register {
        conn: ConnId,
        outbox: Arc<Outbox>,
    },
    Event(Event),
    /// A watched outbox was written below its low mark (see [`Outbox::watch`]).
    Drained {
        conn: ConnId,
    },
    Reload,
}

fn log(line: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "{} mqtt-policy: {line}",
        crate::audit::rfc3339(SystemTime::now())
    );
}

/// The broker's log (stderr) as the audit sink's fallback.
struct Stderr;

impl AuditLog for Stderr {
    fn error(&self, message: &str) {
        log(message);
    }

    fn record(&self, json: &str) {
        log(&format!("audit: {json}"));
    }
}

/// SIGHUP: reads the config again for the keys that decide logins and access (`allow_anonymous`,
/// `password_file`, `acl_file`, as Mosquitto reloads them) and loads those files. Any failure
/// leaves everything as it was.
fn reload(config: &BrokerConfig) -> Result<(BrokerConfig, Security), String> {
    let fresh = BrokerConfig::load(&config.path).map_err(|e| e.to_string())?;
    let mut next = config.clone();
    next.allow_anonymous = fresh.allow_anonymous;
    next.password_file = fresh.password_file;
    next.acl_file = fresh.acl_file;
    next.shadow_acl_file = fresh.shadow_acl_file;
    next.shadow_password_file = fresh.shadow_password_file;
    let security = Security::load(&next)?;
    Ok((next, security))
}

/// Runs the broker until SIGINT or SIGTERM. Errors at start (a port in use, a bad certificate, a
/// policy file that does not load) are returned, naming the file.
pub async fn serve(config: BrokerConfig, options: Options) -> Result<(), String> {
    for w in &config.warnings {
        log(&format!("warning: {w}"));
    }
    let security = Arc::new(Security::load(&config)?);
    for w in security.warnings() {
        log(&format!("warning: {w}"));
    }
    if let Some(e) = security.shadow_error() {
        log(&format!(
            "error: {e}; the shadow policy is absent until a reload loads it (the live policy is not affected)"
        ));
    }
    let status = security.describe();
    log(&status);
    // Counters only when something reads them; the address is bound now, so that one that cannot be
    // bound stops the start, naming it.
    let metrics = config.has_metrics().then(|| {
        let m = Metrics::new();
        m.policy_loaded(
            security.fingerprint().to_owned(),
            Arc::clone(security.hits()),
        );
        m.set_shadow_loaded(security.shadow().is_some());
        m
    });
    // Kept until `serve` returns: dropping it stops the metrics thread.
    let exposition = match &metrics {
        Some(m) => Exposition::start(
            config.metrics_listen.as_deref(),
            config.metrics_textfile.as_deref(),
            Arc::clone(m),
        )?,
        None => None,
    };
    if let Some(addr) = exposition.as_ref().and_then(|e| e.local_addr) {
        log(&format!("serving metrics at http://{addr}/metrics"));
    }
    let audit_path = options.audit_log.clone().or(config.audit_log.clone());
    let audit = AuditSink::open(audit_path.as_deref()).map_err(|e| {
        format!(
            "cannot open the audit log {:?}: {e}",
            audit_path.as_deref().unwrap_or_default()
        )
    })?;
    let mut router = Router::new(&config, security);
    if let Some(m) = metrics {
        router.set_metrics(m);
    }
    let store = match &config.persistence {
        Some(p) => {
            let (store, restored) = Store::open(&p.path).map_err(|e| e.to_string())?;
            log(&format!(
                "persistence: {}: {} sessions and {} retained messages restored",
                p.path.display(),
                restored.sessions.len(),
                restored.retained.len()
            ));
            router.restore(restored);
            Some(store)
        }
        None => None,
    };
    // Password checks run here, off the threads that route (one thread per core).
    let verifier = VerifyPool::per_core("mqtt-verify")
        .map_err(|e| format!("cannot start a password-check thread: {e}"))?;
    let limits = outbox::Limits::new(&config);

    let (core_tx, mut core_rx) = mpsc::channel::<CoreMsg>(super::pacing::CORE_CAPACITY);
    let mut bound = Vec::new();
    for listener in &config.listeners {
        let tls = match &listener.tls {
            Some(tls) => {
                let loaded = tls_config::tls_config(tls)
                    .map_err(|e| format!("{}:{}: {e}", config.path, listener.line))?;
                for w in &loaded.warnings {
                    log(&format!("warning: {}:{}: {w}", config.path, listener.line));
                }
                Some(loaded.config)
            }
            None => None,
        };
        let addr = format!(
            "{}:{}",
            listener.bind.as_deref().unwrap_or("0.0.0.0"),
            listener.port
        );
        let socket = bind(&addr, config.listen_backlog)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        log(&format!(
            "listening on {addr}{}{}",
            if listener.websockets {
                " (WebSocket)"
            } else {
                ""
            },
            if tls.is_some() { " (TLS)" } else { "" }
        ));
        bound.push(accept::Bound {
            socket,
            tls,
            cert_username: listener.tls.as_ref().and_then(|t| t.cert_username),
            max_connections: listener.max_connections,
            ws: listener.websockets.then(|| {
                Arc::new(ws::WsListener {
                    origins: listener.websockets_origins.clone(),
                })
            }),
        });
    }
    // The store's thread reports each commit here.
    let (commit_tx, mut commit_rx) = mpsc::unbounded_channel();
    let persist = match store {
        Some(store) => {
            let worker = Worker::spawn(store, move |result| {
                let _ = commit_tx.send(result);
            })
            .map_err(|e| format!("cannot start the store's thread: {e}"))?;
            Some(core::Persist::new(worker))
        }
        None => None,
    };
    let max_packet_size = config.max_packet_size;
    let core = Arc::new(CoreLock::new(core::Core::new(
        router,
        config,
        options,
        audit,
        limits,
        verifier,
        // For the verdicts of password checks and reloads.
        core_tx.clone(),
        persist,
    )));
    let shards = std::thread::available_parallelism().map_or(2, usize::from);
    let mut handles = Vec::with_capacity(shards);
    let mut threads = Vec::with_capacity(shards);
    for i in 0..shards {
        let (shard, handle) = shard::Shard::new(i, Arc::clone(&core), max_packet_size, limits)
            .map_err(|e| format!("cannot start a connection thread: {e}"))?;
        threads.push(shard);
        handles.push(handle);
    }
    core.lock().set_shards(handles.clone());
    for (i, shard) in threads.into_iter().enumerate() {
        std::thread::Builder::new()
            .name(format!("mqtt-conn-{i}"))
            .spawn(move || shard.run())
            .map_err(|e| format!("cannot start a connection thread: {e}"))?;
    }
    accept::spawn(bound, handles).map_err(|e| format!("cannot start accepting: {e}"))?;

    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    // A stream, not `ctrl_c()` in the loop: a SIGINT that arrives while the core is busy is kept.
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let reload_tx = core_tx;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if reload_tx.send(CoreMsg::Reload).await.is_err() {
                break;
            }
        }
    });
    notify::ready(&status);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // This task brings the core what does not come from a connection thread.
    let mut unwoken = 0;
    loop {
        let msg = tokio::select! {
            biased;
            Some(result) = commit_rx.recv() => {
                let mut c = core.lock();
                c.committed(result);
                c.end_batch(None);
                continue;
            }
            Some(m) = core_rx.recv() => m,
            _ = tick.tick() => CoreMsg::Event(Event::Tick),
            _ = term.recv() => return stop(&core, "SIGTERM"),
            _ = int.recv() => return stop(&core, "SIGINT"),
        };
        let more_waiting = !core_rx.is_empty();
        let mut c = core.lock();
        c.handle(msg, more_waiting, core::Clock::read());
        unwoken += 1;
        // A storm of password verdicts: the connection threads hear of the CONNACKs every
        // `WAKE_BATCH`, not only once the storm is over.
        if !more_waiting || unwoken >= WAKE_BATCH {
            c.end_batch(None);
            unwoken = 0;
        }
    }
}

/// Stops the core (connection threads end at their next message for it) and logs why; the
/// broker's end.
fn stop(core: &CoreLock, why: &str) -> Result<(), String> {
    core.stop();
    core.lock().stopping(why);
    Ok(())
}

/// Binds a listening socket on `addr` (the first of its addresses that works), non-blocking, with
/// `SO_REUSEADDR` as Mosquitto sets it and a backlog of `backlog` (`plugin_opt_listen_backlog`,
/// default 4096; capped by `net.core.somaxconn`). The backlog is how many connections the kernel may
/// hold for us before the accepting thread takes them. A reconnect storm sends a thousand SYNs at
/// once; with std's and mio's default of 128 (Mosquitto listens with 100) the rest overflow, and each
/// overflowed client waits for TCP's one-second retransmission before it can even send its CONNECT.
fn bind(addr: &str, backlog: u32) -> io::Result<mio::net::TcpListener> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        let attempt = (|| {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(a),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.set_reuse_address(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&a.into())?;
            socket.listen(backlog)?;
            Ok(mio::net::TcpListener::from_std(socket.into()))
        })();
        match attempt {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_idle_connection_costs_little() {
        // A connection's slab entry lives as long as the connection: buffers, TLS state and output
        // are behind pointers, allocated only when used.
        let conn = std::mem::size_of::<Option<super::conn::Conn>>();
        assert!(conn <= 160, "a connection takes {conn} bytes");
        // What a session holds in flight and queued is boxed, allocated only while in use.
        let session = std::mem::size_of::<super::super::session::Session>();
        assert!(session <= 256, "a session takes {session} bytes");
        // Its outbox lives in an `Arc` for as long as it is connected (128-byte allocations).
        let outbox = std::mem::size_of::<super::super::outbox::Outbox>();
        assert!(outbox + 16 <= 128, "an outbox takes {outbox} bytes");
    }
}
