//! The WebSocket tests' two brokers, started from the same `mosquitto.conf`: ours, and upstream
//! Mosquitto 2.1.2 (built once from the vendored tarball by `scripts/build-mosquitto.sh`, with its
//! built-in websockets), each with the tutorial's users and ACL and a CA-signed server certificate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{make_certs, tutorial_files, unused_port, Broker};

/// The tutorial's policy on one WebSocket listener; `{tls}` becomes the TLS keys or nothing.
const CONF: &str = "user root\nlistener {port} 127.0.0.1\nprotocol websockets\n{tls}allow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n";
/// The TLS keys of a `wss://` listener.
const TLS_KEYS: &str = "cafile {dir}/ca.crt\ncertfile {dir}/server.crt\nkeyfile {dir}/server.key\n";

/// `ws` or `wss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain WebSocket.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Scheme {
    /// `ws` or `wss`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

/// The config both brokers run.
pub fn conf(scheme: Scheme) -> String {
    CONF.replace("{tls}", if scheme == Scheme::Wss { TLS_KEYS } else { "" })
}

fn prepare(dir: &Path) {
    tutorial_files(dir);
    make_certs(dir);
}

/// Mosquitto 2.1.2 on a free port, killed on drop.
pub struct Mosquitto {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The vendored Mosquitto 2.1.2, built once per test process (cached across processes by the script).
pub fn mosquitto_212() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/build-mosquitto.sh"
            ))
            .arg("2.1.2")
            .output()
            .expect("run scripts/build-mosquitto.sh");
        assert!(
            out.status.success(),
            "scripts/build-mosquitto.sh 2.1.2 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("mosquitto")
    })
}

impl Mosquitto {
    /// Starts Mosquitto 2.1.2 with `conf` (`{dir}`, `{port}` replaced) once `prepare` has written
    /// its files; waits (10 s at most) until it listens.
    pub fn start(conf: &str, prepare: impl FnOnce(&Path)) -> Mosquitto {
        let binary = mosquitto_212();
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(dir.path());
        let port = unused_port();
        let text = conf
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{port}", &port.to_string());
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, text).expect("write conf");
        let log = std::fs::File::create(dir.path().join("broker.log")).expect("create the log");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start mosquitto 2.1.2");
        let mut m = Mosquitto { child, dir, port };
        if let Err(why) = super::wait_listening(&mut m.child, port, Duration::from_secs(10)) {
            panic!("mosquitto 2.1.2 {why}: {}", m.log());
        }
        m
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }
}

/// One of the two brokers.
pub enum Server {
    /// `mqtt-policy broker`.
    Ours(Broker),
    /// Upstream Mosquitto 2.1.2.
    Mosquitto(Mosquitto),
}

impl Server {
    /// Our broker with [`conf`].
    pub fn ours(scheme: Scheme) -> Server {
        Server::ours_with(&conf(scheme))
    }

    /// Mosquitto 2.1.2 with the same [`conf`].
    pub fn mosquitto(scheme: Scheme) -> Server {
        Server::mosquitto_with(&conf(scheme))
    }

    /// Our broker with `conf` and the tutorial's files.
    pub fn ours_with(conf: &str) -> Server {
        Server::Ours(Broker::start(conf, prepare))
    }

    /// Mosquitto 2.1.2 with `conf` and the tutorial's files.
    pub fn mosquitto_with(conf: &str) -> Server {
        Server::Mosquitto(Mosquitto::start(conf, prepare))
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        match self {
            Server::Ours(b) => b.port,
            Server::Mosquitto(m) => m.port,
        }
    }

    /// The CA that signed its certificate.
    pub fn ca(&self) -> PathBuf {
        match self {
            Server::Ours(b) => b.path("ca.crt"),
            Server::Mosquitto(m) => m.dir.path().join("ca.crt"),
        }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        match self {
            Server::Ours(b) => b.log(),
            Server::Mosquitto(m) => m.log(),
        }
    }

    /// Its name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Server::Ours(_) => "mqtt-policy broker",
            Server::Mosquitto(_) => "mosquitto 2.1.2",
        }
    }
}
