//! Binding `--listen`: an address that cannot be bound stops the start, naming it; a non-loopback
//! address is refused unless clients must present a credential.

use std::net::{SocketAddr, ToSocketAddrs};

/// Binds `listen` (`ADDRESS:PORT`, a host name resolved first). Every address it resolves to must be
/// a loopback one unless `has_credential`.
pub fn bind(listen: &str, has_credential: bool) -> Result<tokio::net::TcpListener, String> {
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|e| format!("cannot listen on {listen}: {e} (expected ADDRESS:PORT)"))?
        .collect();
    let Some(first) = addrs.first() else {
        return Err(format!(
            "cannot listen on {listen}: it resolves to no address"
        ));
    };
    if !has_credential {
        if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "refusing to listen on {listen} ({open}) without a credential: only loopback \
                 addresses may be served without one; give --credential-file FILE (see README, \
                 \"mqtt-policy serve\")"
            ));
        }
    }
    let std = std::net::TcpListener::bind(first)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    std.set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tokio::net::TcpListener::from_std(std).map_err(|e| format!("cannot listen on {listen}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_non_loopback_address_needs_a_credential() {
        let e = bind("0.0.0.0:0", false).unwrap_err();
        assert!(
            e.contains("0.0.0.0:0") && e.contains("--credential-file"),
            "{e}"
        );
        assert!(bind("127.0.0.1:0", false).is_ok());
    }

    #[tokio::test]
    async fn an_address_in_use_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = bind(&addr, false).unwrap_err();
        assert!(e.starts_with(&format!("cannot listen on {addr}: ")), "{e}");
        let e = bind("no-port-here", false).unwrap_err();
        assert!(e.contains("no-port-here"), "{e}");
    }
}
