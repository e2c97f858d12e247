//! The network layer: listeners (TCP, TLS through rustls), one task per connection that turns bytes
//! into packets and packets into bytes, and the core task that owns the [`Router`] and executes its
//! actions. The only place with sockets, tasks and signals.
//!
//! Memory is bounded per connection: the read buffer never exceeds the maximum packet size plus one
//! read, the outgoing channel holds at most [`OUTGOING_CAPACITY`] packets (a client that does not read
//! is disconnected rather than buffered for), and each session's queue is bounded by
//! `max_queued_messages`. A connection that sends no CONNECT within [`CONNECT_TIMEOUT`] is closed, and
//! a connected client silent for 1.5 × its keep alive is disconnected (half-open connections).

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::codec::{self, Packet, Version};
use super::config::{BrokerConfig, Listener, TlsMin, TlsSettings};
use super::router::{Action, Event, Router};
use super::security::Security;
use super::session::ConnId;
use crate::audit::{AuditRecord, JsonLinesFile};

/// Packets that may wait for one connection's socket before it counts as a slow reader.
pub const OUTGOING_CAPACITY: usize = 4096;
/// Time allowed between accepting a socket (and its TLS handshake) and its CONNECT.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events that may wait for the core task.
const CORE_CAPACITY: usize = 8192;
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// How the broker was started.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--audit-log`: overrides `plugin_opt_audit_log`.
    pub audit_log: Option<String>,
    /// `-v`: log connections and refusals to stderr.
    pub verbose: bool,
}

/// What a connection task receives from the core.
// Packets dominate this channel; boxing them would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Outgoing {
    Packet(Packet),
    Accepted { keep_alive: u16 },
    Close,
}

/// What the core task receives.
// Events carrying packets dominate this channel; boxing them would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum CoreMsg {
    Register {
        conn: ConnId,
        tx: mpsc::Sender<Outgoing>,
    },
    Event(Event),
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

/// Where audit records go.
enum AuditOut {
    File(String, JsonLinesFile),
    Stderr,
}

impl AuditOut {
    fn open(path: Option<&str>) -> Result<AuditOut, String> {
        match path {
            None => Ok(AuditOut::Stderr),
            Some(p) => JsonLinesFile::open(p)
                .map(|f| AuditOut::File(p.to_owned(), f))
                .map_err(|e| format!("cannot open the audit log {p:?}: {e}")),
        }
    }

    fn write(&mut self, record: &AuditRecord) {
        match self {
            AuditOut::File(path, f) => {
                if let Err(e) = f.write(record) {
                    log(&format!("cannot write the audit log {path:?}: {e}"));
                }
            }
            AuditOut::Stderr => log(&format!("audit: {}", record.to_json())),
        }
    }

    fn reopen(&mut self) {
        if let AuditOut::File(path, f) = self {
            match JsonLinesFile::open(path) {
                Ok(new) => *f = new,
                Err(e) => log(&format!("cannot reopen the audit log {path:?}: {e}")),
            }
        }
    }
}

/// Loads the TLS configuration of a listener.
fn tls_acceptor(tls: &TlsSettings) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.certfile)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certfile {:?}: {e}", tls.certfile))?;
    if certs.is_empty() {
        return Err(format!("certfile {:?}: no certificate in it", tls.certfile));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.keyfile)
        .map_err(|e| format!("keyfile {:?}: {e}", tls.keyfile))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsMin::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsMin::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if tls.require_certificate {
        let cafile = tls
            .cafile
            .as_deref()
            .ok_or("require_certificate true needs cafile")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(cafile).map_err(|e| format!("cafile {cafile:?}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("cafile {cafile:?}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("cafile {cafile:?}: {e}"))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("cafile {cafile:?}: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certfile/keyfile: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
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
    log(&security.describe());
    let audit_path = options.audit_log.clone().or(config.audit_log.clone());
    let mut audit = AuditOut::open(audit_path.as_deref())?;
    let mut router = Router::new(&config, security);

    let (core_tx, mut core_rx) = mpsc::channel::<CoreMsg>(CORE_CAPACITY);
    let next_conn = Arc::new(std::sync::atomic::AtomicU64::new(1));
    for listener in &config.listeners {
        let acceptor = match &listener.tls {
            Some(tls) => Some(
                tls_acceptor(tls).map_err(|e| format!("{}:{}: {e}", config.path, listener.line))?,
            ),
            None => None,
        };
        let addr = format!(
            "{}:{}",
            listener.bind.as_deref().unwrap_or("0.0.0.0"),
            listener.port
        );
        let socket = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        log(&format!(
            "listening on {addr}{}",
            if acceptor.is_some() { " (TLS)" } else { "" }
        ));
        tokio::spawn(accept_loop(
            socket,
            acceptor,
            listener.clone(),
            config.max_packet_size,
            core_tx.clone(),
            Arc::clone(&next_conn),
        ));
    }

    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let reload_tx = core_tx.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if reload_tx.send(CoreMsg::Reload).await.is_err() {
                break;
            }
        }
    });
    drop(core_tx);

    let mut conns: HashMap<ConnId, mpsc::Sender<Outgoing>> = HashMap::new();
    let mut actions = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            m = core_rx.recv() => match m {
                Some(m) => m,
                None => return Ok(()),
            },
            _ = tick.tick() => CoreMsg::Event(Event::Tick),
            _ = term.recv() => { log("SIGTERM: stopping"); return Ok(()); }
            _ = tokio::signal::ctrl_c() => { log("SIGINT: stopping"); return Ok(()); }
        };
        match msg {
            CoreMsg::Register { conn, tx } => {
                conns.insert(conn, tx);
                continue;
            }
            CoreMsg::Reload => {
                match Security::load(&config) {
                    Ok(s) => {
                        log(&format!("SIGHUP: reloaded; {}", s.describe()));
                        router.set_security(Arc::new(s));
                    }
                    Err(e) => log(&format!(
                        "SIGHUP: reload failed, the previous policy stays in force: {e}"
                    )),
                }
                audit.reopen();
                continue;
            }
            CoreMsg::Event(event) => {
                let closed = match &event {
                    Event::Closed { conn } => Some(*conn),
                    _ => None,
                };
                router.handle(event, Instant::now(), SystemTime::now());
                if let Some(conn) = closed {
                    conns.remove(&conn);
                }
            }
        }
        router.drain_actions(&mut actions);
        for action in actions.drain(..) {
            match action {
                Action::Send { conn, packet } => {
                    let Some(tx) = conns.get(&conn) else { continue };
                    let droppable =
                        matches!(&packet, Packet::Publish(p) if p.qos == codec::QoS::AtMostOnce);
                    if let Err(mpsc::error::TrySendError::Full(_)) =
                        tx.try_send(Outgoing::Packet(packet))
                    {
                        if !droppable {
                            // A client that does not read its socket: drop our end; the task
                            // drains what is queued and closes.
                            if options.verbose {
                                log(&format!(
                                    "connection {conn}: outgoing queue full, disconnecting"
                                ));
                            }
                            conns.remove(&conn);
                        }
                    }
                }
                Action::Accepted { conn, keep_alive } => {
                    if let Some(tx) = conns.get(&conn) {
                        let _ = tx.try_send(Outgoing::Accepted { keep_alive });
                    }
                }
                Action::Close { conn } => {
                    if let Some(tx) = conns.remove(&conn) {
                        let _ = tx.try_send(Outgoing::Close);
                    }
                }
                Action::Audit(record) => audit.write(&record),
                Action::Log(line) => {
                    if options.verbose {
                        log(&line);
                    }
                }
            }
        }
    }
}

async fn accept_loop(
    socket: TcpListener,
    acceptor: Option<TlsAcceptor>,
    listener: Listener,
    max_packet_size: usize,
    core: mpsc::Sender<CoreMsg>,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                log(&format!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(max) = listener.max_connections {
            if open.load(Ordering::Relaxed) >= max {
                drop(stream);
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let core = core.clone();
        let acceptor = acceptor.clone();
        let open = Arc::clone(&open);
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            run_connection(stream, peer, acceptor, conn, max_packet_size, &core).await;
            let _ = core.send(CoreMsg::Event(Event::Closed { conn })).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    conn: ConnId,
    max_packet_size: usize,
    core: &mpsc::Sender<CoreMsg>,
) {
    match acceptor {
        None => connection(stream, peer, conn, max_packet_size, core).await,
        Some(acceptor) => {
            // A failed or slow handshake just closes the socket.
            if let Ok(Ok(tls)) =
                tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(stream)).await
            {
                connection(tls, peer, conn, max_packet_size, core).await;
            }
        }
    }
}

/// One client connection: reads and decodes packets for the core, writes what the core sends.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    conn: ConnId,
    max_packet_size: usize,
    core: &mpsc::Sender<CoreMsg>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUTGOING_CAPACITY);
    if core.send(CoreMsg::Register { conn, tx }).await.is_err() {
        return;
    }
    let address = peer.ip().to_string();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut version: Option<Version> = None;
    // Until the CONNECT is accepted the deadline is fixed; after, it moves with every read.
    let mut keep_alive: Option<Duration> = None;
    let mut deadline_active = true;
    let mut reading = true;
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let deadline = tokio::time::sleep(CONNECT_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = rd.read(&mut chunk), if reading => {
                let n = match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                if let Some(ka) = keep_alive {
                    deadline.as_mut().reset(tokio::time::Instant::now() + ka);
                }
                let mut start = 0;
                // Bounded: each iteration consumes a whole packet from `buf`.
                loop {
                    match codec::decode_client_packet(&buf[start..], version, max_packet_size) {
                        Ok(Some((packet, used))) => {
                            start += used;
                            let event = match packet {
                                Packet::Connect(c) => {
                                    version = Some(c.version);
                                    Event::Connect { conn, address: address.clone(), connect: c }
                                }
                                packet => Event::Packet { conn, packet },
                            };
                            if core.send(CoreMsg::Event(event)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            let _ = core.send(CoreMsg::Event(Event::Invalid { conn, error: error.clone() })).await;
                            reading = false;
                            // The core answers with a DISCONNECT and a close; do not wait forever.
                            deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                            deadline_active = true;
                            keep_alive = None;
                            break;
                        }
                    }
                }
                buf.drain(..start);
                if !reading {
                    buf = Vec::new();
                }
            }
            m = rx.recv() => {
                let Some(m) = m else {
                    let _ = wr.write_all(&out).await;
                    let _ = wr.flush().await;
                    return;
                };
                let mut close = false;
                let mut next = Some(m);
                // Batch what is already queued, bounded: take another item only when it will be
                // handled in this round.
                let mut handled = 0;
                while let Some(m) = next.take() {
                    match m {
                        Outgoing::Packet(p) => codec::encode(&p, version.unwrap_or(Version::V311), &mut out),
                        Outgoing::Accepted { keep_alive: ka } => {
                            keep_alive = (ka > 0).then(|| Duration::from_millis(u64::from(ka) * 1500));
                            deadline_active = keep_alive.is_some();
                            if let Some(ka) = keep_alive {
                                deadline.as_mut().reset(tokio::time::Instant::now() + ka);
                            }
                        }
                        Outgoing::Close => { close = true; break; }
                    }
                    handled += 1;
                    if handled >= 256 {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
                    return;
                }
                out.clear();
                if out.capacity() > 1 << 20 {
                    out = Vec::with_capacity(READ_CHUNK);
                }
                if close {
                    let _ = wr.shutdown().await;
                    return;
                }
            }
            _ = &mut deadline, if deadline_active => {
                // No CONNECT in time, keep alive expired (MQTT-3.1.2-24), or no close after an
                // error: the connection is dropped and the core publishes the Will.
                return;
            }
        }
    }
}
