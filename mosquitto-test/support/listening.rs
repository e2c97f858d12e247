//! Whether something listens on a loopback port, without being fooled by a connection to itself.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

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
