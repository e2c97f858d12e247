//! The network layer: listeners (TCP, TLS through rustls), one task per connection that turns bytes
//! into packets and packets into bytes, and the core task that owns the [`Router`] and executes its
//! actions. The only place with sockets, tasks and signals.
//!
//! Memory is bounded per connection, and small while it is idle: the read buffer starts at
//! [`READ_MIN`] bytes, grows with what arrives (never beyond the maximum packet size plus one read)
//! and shrinks back after; the output buffer exists only while something is being written; the
//! outgoing queue ([`super::outbox`]) holds no allocation when empty and follows
//! `max_queued_messages`/`max_queued_bytes` (QoS 0 beyond them is dropped, counted and logged; a
//! client that sends without reading is disconnected); each session's queue follows the same limits.
//! A connection that sends no CONNECT within [`CONNECT_TIMEOUT`] is closed, and a connected client
//! silent for 1.5 × its keep alive is disconnected (half-open connections).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::codec::{self, Packet, Version};
use super::config::{BrokerConfig, Listener, TlsMin, TlsSettings};
use super::identity::{self, Login};
use super::outbox::{self, Outbox, Outgoing, Pushed, Weight};
use super::router::{Action, Event, Router};
use super::security::Security;
use super::session::ConnId;
use crate::audit::{AuditRecord, JsonLinesFile};

/// Time allowed between accepting a socket (and its TLS handshake) and its CONNECT.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events that may wait for the core task.
const CORE_CAPACITY: usize = 8192;
/// The smallest read, and the read buffer of an idle connection.
pub const READ_MIN: usize = 256;
/// The largest read: reads grow from [`READ_MIN`] up to this while they come back full.
pub const READ_MAX: usize = 16 * 1024;
/// Bytes encoded before they are written.
const WRITE_CHUNK: usize = 64 * 1024;
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

/// What the core task receives.
// Events carrying packets dominate this channel; boxing them would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum CoreMsg {
    Register { conn: ConnId, outbox: Arc<Outbox> },
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

/// One registered connection, as the core sees it.
struct Conn {
    outbox: Arc<Outbox>,
    /// The client id, once QoS 0 messages have been dropped for it (for the log).
    client: Option<String>,
    /// QoS 0 messages dropped for it since it connected.
    dropped: u64,
    /// Of those, not yet reported in a verbose log line.
    unreported: u64,
}

/// The QoS 0 drops of one connection that the core counts and logs.
#[derive(Debug, Default)]
struct Drops {
    /// Since the broker started.
    total: u64,
    /// Connections with drops not yet reported (verbose: once a second).
    pending: Vec<ConnId>,
}

impl Drops {
    /// Counts one drop; the first for a connection is logged (as Mosquitto logs "Outgoing messages
    /// are being dropped for client X" at NOTICE), the rest once a second with `-v`.
    fn note(&mut self, conn: ConnId, c: &mut Conn, router: &Router, limits: &outbox::Limits) {
        self.total += 1;
        c.dropped += 1;
        c.unreported += 1;
        if c.unreported == 1 {
            self.pending.push(conn);
        }
        if c.dropped == 1 {
            let client = router.client_id(conn).unwrap_or("?").to_owned();
            let w = c.outbox.waiting();
            log(&format!(
                "outgoing QoS 0 messages are being dropped for client {client:?}: {} packets ({} payload bytes) wait for its socket (max_queued_messages {}, max_queued_bytes {})",
                w.packets, w.bytes, limits.messages, limits.bytes
            ));
            c.unreported = 0;
            c.client = Some(client);
        }
    }

    /// Verbose: one line per connection with drops since the last report.
    fn report(&mut self, conns: &mut HashMap<ConnId, Conn>, verbose: bool) {
        for conn in self.pending.drain(..) {
            if let Some(c) = conns.get_mut(&conn) {
                if verbose && c.unreported > 0 {
                    log(&format!(
                        "client {:?}: {} more QoS 0 messages dropped ({} since it connected)",
                        c.client.as_deref().unwrap_or("?"),
                        c.unreported,
                        c.dropped
                    ));
                }
                c.unreported = 0;
            }
        }
    }

    /// The connection is gone from the core: sums up its drops.
    fn forget(c: &Conn) {
        if c.dropped > 0 {
            log(&format!(
                "client {:?}: {} outgoing QoS 0 messages were dropped in all because its queue was full",
                c.client.as_deref().unwrap_or("?"),
                c.dropped
            ));
        }
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
    let security = Security::load(&next)?;
    Ok((next, security))
}

/// Runs the broker until SIGINT or SIGTERM. Errors at start (a port in use, a bad certificate, a
/// policy file that does not load) are returned, naming the file.
pub async fn serve(mut config: BrokerConfig, options: Options) -> Result<(), String> {
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
    let limits = outbox::Limits::new(&config);

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

    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut drops = Drops::default();
    let mut actions = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = |why: &str, drops: &Drops| {
        let dropped = if drops.total > 0 {
            format!(
                " ({} outgoing QoS 0 messages were dropped in all)",
                drops.total
            )
        } else {
            String::new()
        };
        log(&format!("{why}: stopping{dropped}"));
    };
    loop {
        let msg = tokio::select! {
            m = core_rx.recv() => match m {
                Some(m) => m,
                None => return Ok(()),
            },
            _ = tick.tick() => CoreMsg::Event(Event::Tick),
            _ = term.recv() => { stopping("SIGTERM", &drops); return Ok(()); }
            _ = tokio::signal::ctrl_c() => { stopping("SIGINT", &drops); return Ok(()); }
        };
        match msg {
            CoreMsg::Register { conn, outbox } => {
                conns.insert(
                    conn,
                    Conn {
                        outbox,
                        client: None,
                        dropped: 0,
                        unreported: 0,
                    },
                );
                continue;
            }
            CoreMsg::Reload => {
                match reload(&config) {
                    Ok((next, s)) => {
                        log(&format!("SIGHUP: reloaded; {}", s.describe()));
                        config = next;
                        // Connected clients' logins are checked again: some may be disconnected.
                        router.set_security(Arc::new(s));
                    }
                    Err(e) => log(&format!(
                        "SIGHUP: reload failed, the previous policy stays in force: {e}"
                    )),
                }
                audit.reopen();
            }
            CoreMsg::Event(event) => {
                let closed = match &event {
                    Event::Closed { conn } => Some(*conn),
                    Event::Tick => {
                        drops.report(&mut conns, options.verbose);
                        None
                    }
                    _ => None,
                };
                router.handle(event, Instant::now(), SystemTime::now());
                if let Some(c) = closed.and_then(|conn| conns.remove(&conn)) {
                    Drops::forget(&c);
                }
            }
        }
        router.drain_actions(&mut actions);
        for action in actions.drain(..) {
            match action {
                Action::Send { conn, packet } => {
                    let Some(c) = conns.get_mut(&conn) else {
                        continue;
                    };
                    match c.outbox.push(packet, &limits) {
                        Pushed::Queued => {}
                        Pushed::Dropped => drops.note(conn, c, &router, &limits),
                        Pushed::Overflow => {
                            // A client that sends without reading: close it now; the task's end
                            // reports the close to the router.
                            log(&format!(
                                "client {:?}: {} packets wait for its socket and it sends without reading: disconnecting",
                                router.client_id(conn).unwrap_or("?"),
                                c.outbox.waiting().packets
                            ));
                            c.outbox.abort();
                            if let Some(c) = conns.remove(&conn) {
                                Drops::forget(&c);
                            }
                        }
                    }
                }
                Action::Accepted { conn, keep_alive } => {
                    if let Some(c) = conns.get(&conn) {
                        c.outbox.push_signal(Outgoing::Accepted { keep_alive });
                    }
                }
                Action::Close { conn } => {
                    if let Some(c) = conns.remove(&conn) {
                        c.outbox.push_signal(Outgoing::Close);
                        Drops::forget(&c);
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
        let cert_username = listener.tls.as_ref().and_then(|t| t.cert_username);
        let open = Arc::clone(&open);
        open.fetch_add(1, Ordering::Relaxed);
        // Two task types: a plain connection's task does not carry the room a TLS handshake needs.
        match acceptor {
            None => tokio::spawn(async move {
                let login = Login::Credentials;
                connection(stream, peer, conn, login, max_packet_size, &core).await;
                closed(&core, conn).await;
                open.fetch_sub(1, Ordering::Relaxed);
            }),
            Some(acceptor) => tokio::spawn(async move {
                // A failed or slow handshake just closes the socket.
                if let Ok(Ok(tls)) =
                    tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(stream)).await
                {
                    // With `require_certificate`, rustls has verified the client's chain already.
                    let login = match cert_username {
                        None => Login::Credentials,
                        Some(from) => {
                            let certs = tls.get_ref().1.peer_certificates();
                            let end_entity = certs.and_then(|c| c.first()).map(|c| c.as_ref());
                            identity::certificate_login(end_entity, from)
                        }
                    };
                    connection(tls, peer, conn, login, max_packet_size, &core).await;
                }
                closed(&core, conn).await;
                open.fetch_sub(1, Ordering::Relaxed);
            }),
        };
    }
}

/// Tells the core that a connection is gone.
async fn closed(core: &mpsc::Sender<CoreMsg>, conn: ConnId) {
    // Reserve, then build the message: a task does not hold a message while it waits.
    if let Ok(permit) = core.reserve().await {
        permit.send(CoreMsg::Event(Event::Closed { conn }));
    }
}

/// The read buffer's state: how much to read next, adapted to what arrives.
struct ReadBuf {
    buf: Vec<u8>,
    /// The next read's size, between [`READ_MIN`] and [`READ_MAX`].
    size: usize,
}

impl ReadBuf {
    fn new() -> ReadBuf {
        ReadBuf {
            buf: Vec::new(),
            size: READ_MIN,
        }
    }

    /// Makes room for the next read: its size, or what the packet being received still needs (up
    /// to [`READ_MAX`] at a time, so that memory follows the bytes that really arrive). Returns the
    /// room.
    fn prepare(&mut self) -> usize {
        let needed = match codec::read_fixed_header(&self.buf, usize::MAX) {
            Ok(Some((_, len, header))) => (header + len).saturating_sub(self.buf.len()),
            _ => 0,
        };
        let want = self.size.max(needed.min(READ_MAX));
        if self.buf.capacity() - self.buf.len() < want {
            if needed > READ_MAX {
                // A large packet: grow geometrically rather than once per read.
                self.buf.reserve(want);
            } else {
                self.buf.reserve_exact(want);
            }
        }
        self.buf.capacity() - self.buf.len()
    }

    /// After a read of `n` bytes into `room` and the removal of the whole packets: the next read
    /// doubles when this one filled the room, else it fits what came; a buffer much larger than
    /// what it holds plus the next read shrinks (after a large packet, or when a busy connection
    /// goes quiet).
    fn adapt(&mut self, n: usize, room: usize) {
        self.size = if n >= room {
            (self.size * 2).min(READ_MAX)
        } else {
            n.next_power_of_two().clamp(READ_MIN, READ_MAX)
        };
        let keep = self.buf.len() + self.size;
        if self.buf.capacity() > 2 * keep {
            self.buf.shrink_to(keep);
        }
    }
}

/// Writes `out` (and flushes), unless the connection is aborted meanwhile or `deadline` (given when
/// the write precedes a close) passes.
async fn write_out<W>(
    wr: &mut W,
    out: &[u8],
    outbox: &Outbox,
    deadline: Option<Pin<&mut tokio::time::Sleep>>,
) -> bool
where
    W: AsyncWrite + Unpin,
{
    let io = async {
        wr.write_all(out).await?;
        wr.flush().await
    };
    match deadline {
        None => tokio::select! {
            r = io => r.is_ok(),
            _ = outbox.aborted() => false,
        },
        Some(deadline) => tokio::select! {
            r = io => r.is_ok(),
            _ = outbox.aborted() => false,
            _ = deadline => false,
        },
    }
}

/// One client connection: reads and decodes packets for the core, writes what the core sends.
/// `login` says where its username comes from (the CONNECT, or its certificate).
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    conn: ConnId,
    login: Login,
    max_packet_size: usize,
    core: &mpsc::Sender<CoreMsg>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let outbox = Arc::new(Outbox::default());
    // Every message to the core is built once its slot is reserved, so that no message (a packet
    // is a few hundred bytes) is part of the task's state while it waits.
    let Ok(permit) = core.reserve().await else {
        return;
    };
    permit.send(CoreMsg::Register {
        conn,
        outbox: Arc::clone(&outbox),
    });
    let mut input = ReadBuf::new();
    // What was taken from the outbox and is not yet written.
    let mut items: VecDeque<Outgoing> = VecDeque::new();
    let mut version: Option<Version> = None;
    // Until the CONNECT is accepted the deadline is fixed; after, it moves with every read.
    let mut keep_alive: Option<Duration> = None;
    let mut deadline_active = true;
    let mut reading = true;
    let deadline = tokio::time::sleep(CONNECT_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        let room = if reading { input.prepare() } else { 0 };
        tokio::select! {
            r = rd.read_buf(&mut input.buf), if reading => {
                let n = match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if let Some(ka) = keep_alive {
                    deadline.as_mut().reset(tokio::time::Instant::now() + ka);
                }
                let mut start = 0;
                // Bounded: each iteration consumes a whole packet from the buffer.
                loop {
                    if let Ok(header) = codec::read_fixed_header(&input.buf[start..], max_packet_size) {
                        match header {
                            Some((_, len, h)) if input.buf.len() - start >= h + len => {}
                            _ => break,
                        }
                    }
                    let Ok(permit) = core.reserve().await else {
                        return;
                    };
                    let buf = &mut input.buf;
                    match codec::decode_client_packet(&buf[start..], version, max_packet_size) {
                        Ok(Some((packet, used))) => {
                            let at = start;
                            start += used;
                            let event = match packet {
                                Packet::Connect(c) => {
                                    // The password's bytes do not stay behind in the buffer.
                                    buf[at..start].fill(0);
                                    version = Some(c.version);
                                    Event::Connect { conn, address: peer.ip().to_string(), login: login.clone(), connect: c }
                                }
                                packet => Event::Packet { conn, packet },
                            };
                            permit.send(CoreMsg::Event(event));
                        }
                        Ok(None) => break,
                        Err(error) => {
                            permit.send(CoreMsg::Event(Event::Invalid { conn, error }));
                            reading = false;
                            // The core answers with a DISCONNECT and a close; do not wait forever.
                            deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                            deadline_active = true;
                            keep_alive = None;
                            break;
                        }
                    }
                }
                input.buf.drain(..start);
                if reading {
                    input.adapt(n, room);
                } else {
                    input.buf = Vec::new();
                }
            }
            _ = outbox.woken(), if items.is_empty() => {
                if !outbox.take(&mut items) {
                    return;
                }
            }
            _ = std::future::ready(()), if !items.is_empty() => {
                // One chunk at a time, so that reads (and the keep alive) are served in between.
                let mut out = Vec::with_capacity((items.len() * 64).min(WRITE_CHUNK));
                let mut encoded = Weight::default();
                let mut close = false;
                while out.len() < WRITE_CHUNK {
                    let Some(m) = items.pop_front() else { break };
                    match m {
                        Outgoing::Accepted { keep_alive: ka } => {
                            keep_alive = (ka > 0).then(|| Duration::from_millis(u64::from(ka) * 1500));
                            deadline_active = keep_alive.is_some();
                            if let Some(ka) = keep_alive {
                                deadline.as_mut().reset(tokio::time::Instant::now() + ka);
                            }
                        }
                        Outgoing::Close => {
                            close = true;
                            break;
                        }
                        m => {
                            encoded += m.weight();
                            m.encode(version.unwrap_or(Version::V311), &mut out);
                        }
                    }
                }
                if close {
                    // What precedes a close (a refusing CONNACK, a DISCONNECT) gets a bounded time.
                    deadline.as_mut().reset(tokio::time::Instant::now() + CLOSE_FLUSH_TIMEOUT);
                    if !out.is_empty() && !write_out(&mut wr, &out, &outbox, Some(deadline.as_mut())).await {
                        return;
                    }
                    tokio::select! {
                        _ = wr.shutdown() => {}
                        _ = deadline.as_mut() => {}
                    }
                    return;
                }
                if !out.is_empty() {
                    if !write_out(&mut wr, &out, &outbox, None).await {
                        return;
                    }
                    outbox.written(encoded);
                }
                if items.is_empty() {
                    // An idle connection keeps no queue buffer (nor output buffer: `out` is gone).
                    items = VecDeque::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_costs_little() {
        // A connection's task future is allocated for its whole life: it must carry neither a TLS
        // handshake (kilobytes) nor a packet or a message to the core (a few hundred bytes each).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = l.local_addr().expect("addr");
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (core, _rx) = mpsc::channel(1);
            let task = connection(stream, addr, 1, Login::Credentials, 100, &core);
            let size = std::mem::size_of_val(&task);
            assert!(size <= 1024, "the connection future takes {size} bytes");
        });
        let session = std::mem::size_of::<super::super::session::Session>();
        assert!(session <= 512, "a session takes {session} bytes");
    }

    #[test]
    fn the_read_buffer_grows_with_what_arrives_and_shrinks_back() {
        let mut r = ReadBuf::new();
        assert_eq!(r.buf.capacity(), 0);
        let room = r.prepare();
        assert!((READ_MIN..2 * READ_MIN).contains(&room), "{room}");
        // The start of a 100,000-byte PUBLISH fills the first read.
        let mut packet = vec![0x30];
        codec::put_varint(&mut packet, 100_000 - 4);
        packet.resize(100_000, b'x');
        r.buf.extend_from_slice(&packet[..room]);
        r.adapt(room, room);
        assert_eq!(r.size, 2 * READ_MIN);
        // The rest arrives in reads of at most READ_MAX, the buffer growing with it.
        let mut at = room;
        while at < packet.len() {
            let room = r.prepare();
            assert!(room >= READ_MAX.min(packet.len() - at), "{room}");
            let n = room.min(packet.len() - at).min(READ_MAX);
            r.buf.extend_from_slice(&packet[at..at + n]);
            at += n;
            if at < packet.len() {
                r.adapt(n, room);
            }
        }
        assert!(r.buf.capacity() >= 100_000);
        // Consumed, then a PINGREQ: back to a small buffer.
        r.buf.clear();
        r.adapt(2, 4096);
        assert!(r.buf.capacity() < 2 * READ_MIN, "{}", r.buf.capacity());
        assert_eq!(r.size, READ_MIN);
    }
}
