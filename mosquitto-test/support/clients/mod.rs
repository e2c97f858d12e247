//! MQTT clients on rumqttc: [`v5`] (MQTT 5, with reason codes) and [`v311`] (MQTT 3.1.1), over TCP or
//! TLS with the test CA. Every wait is bounded by [`WAIT`] (or the caller's limit); failures other
//! than the ones a helper returns (a refused CONNACK) panic with what was being waited for.

use std::sync::Arc;
use std::time::Duration;

pub mod v311;
pub mod v5;

/// The default bound on any single wait for the broker.
pub const WAIT: Duration = Duration::from_secs(5);

/// Where to connect: `127.0.0.1:port`, in clear or with TLS.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The broker's loopback port.
    pub port: u16,
    /// TLS client configuration (see [`crate::support::certs::TestPki::client_config`]); `None` for TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Endpoint {
    /// Plain TCP to `127.0.0.1:port`.
    pub fn tcp(port: u16) -> Endpoint {
        Endpoint { port, tls: None }
    }

    /// TLS to `127.0.0.1:port` (server name `127.0.0.1`) with `config`.
    pub fn tls(port: u16, config: Arc<rustls::ClientConfig>) -> Endpoint {
        Endpoint {
            port,
            tls: Some(config),
        }
    }

    fn transport(&self) -> rumqttc::Transport {
        match &self.tls {
            None => rumqttc::Transport::tcp(),
            Some(config) => rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
                config.clone(),
            )),
        }
    }
}

/// Who connects. rumqttc cannot send an empty username; use [`crate::support::wire`] for that.
#[derive(Clone, Debug)]
pub struct Login {
    /// The client id (non-empty, no leading space: rumqttc's rules).
    pub client_id: String,
    /// Username and password, or `None` for an anonymous client.
    pub credentials: Option<(String, String)>,
}

impl Login {
    /// An anonymous client with id `client_id`.
    pub fn anonymous(client_id: &str) -> Login {
        Login {
            client_id: client_id.to_owned(),
            credentials: None,
        }
    }

    /// A client with id `client_id` that logs in as `username` / `password`.
    pub fn user(client_id: &str, username: &str, password: &str) -> Login {
        Login {
            client_id: client_id.to_owned(),
            credentials: Some((username.to_owned(), password.to_owned())),
        }
    }
}

/// A message a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Message {
    fn new(topic: &[u8], payload: &[u8]) -> Message {
        Message {
            topic: String::from_utf8_lossy(topic).into_owned(),
            payload: payload.to_vec(),
        }
    }
}

/// Runs `future` for at most `limit`; panics naming `what` when it takes longer.
async fn bounded<F: std::future::Future>(limit: Duration, what: &str, future: F) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?} waiting for {what}"))
}
