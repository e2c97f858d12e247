//! Loopback ports for the brokers tests start: one no other test of this process was given, and
//! whether something listens on one without being fooled by a connection to itself.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

/// Ports handed out so far by [`unused_port`] in this process.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// How many ports [`unused_port`] asks the system for before giving up.
const ATTEMPTS: usize = 1000;

/// A loopback port that was free a moment ago and that no other caller in this process was given.
///
/// The system hands out a port of its ephemeral range for `bind` to port 0, and once the probe is
/// closed it may hand the same one to another test running in parallel. Two brokers told the same
/// port then race for it: one fails to bind, and a test waiting for "its" broker to listen finds
/// the other one's. That once made a fault test break its broker's files before its broker had
/// read them.
pub fn unused_port() -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..ATTEMPTS {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral loopback port")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no loopback port not handed out already in {ATTEMPTS} attempts");
}

/// Whether a TCP connect to `127.0.0.1:port` reaches a listener within `timeout`.
///
/// A connection to itself does not count: while nothing listens on `port`, Linux may pick `port`
/// itself as the connect's ephemeral source port, and the TCP simultaneous open succeeds. Here
/// that is rare (`bind` to port 0 hands out odd ports, `connect` picks even ones first) but not
/// impossible, and it would send a test on before its broker listens.
pub fn accepts_connections(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s.local_addr().ok() != s.peer_addr().ok(),
        Err(_) => false,
    }
}

/// Why [`wait_accepting`] gave up.
#[derive(Debug)]
pub enum NotAccepting<E> {
    /// The process that was to listen ended first, as its `exited` check reported.
    Exited(E),
    /// Nothing accepted connections within the time allowed.
    TimedOut,
}

/// Waits, bounded by `within`, until `127.0.0.1:port` [accepts connections](accepts_connections).
/// Between tries it asks `exited` whether the process that was to listen has ended (`Some` with
/// how), so that a failed start-up is reported at once rather than after the whole wait.
pub fn wait_accepting<E>(
    port: u16,
    within: Duration,
    mut exited: impl FnMut() -> Option<E>,
) -> Result<(), NotAccepting<E>> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(how) = exited() {
            return Err(NotAccepting::Exited(how));
        }
        if accepts_connections(port, Duration::from_millis(200)) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(NotAccepting::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
