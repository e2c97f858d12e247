//! Starting the real `mqtt-policy broker` for tests: a temp dir with the tutorial's files, a free
//! port, and a child process killed on drop. Every wait is bounded.

#![allow(dead_code)] // Each test file uses a different part of this module.

pub mod ws;

#[path = "../../mosquitto-test/support/ports.rs"]
pub mod ports;
pub use ports::unused_port;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mqtt_policy::broker::codec::{
    encode, Connect, Packet, Properties, QoS, SubOptions, Subscribe, SubscribeFilter, Version,
};
use mqtt_policy::policy::passwd::{hash_password, HashKind};

/// The tutorial's ACL.
pub const TUTORIAL_ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";
/// The tutorial's users (before hashing).
pub const TUTORIAL_USERS: &[(&str, &str)] = &[
    ("admin", "admin1234"),
    ("user1", "123456"),
    ("pe.perez", "abc123"),
    ("ironman", "jarvis123"),
    ("Jfkennedy", "apolo11"),
];

/// A running broker.
pub struct Broker {
    child: Child,
    /// The temp dir with its files.
    pub dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded by `within`) until something listens on `127.0.0.1:port`; `Err` says why not
/// (the process exited, or the time ran out).
pub fn wait_listening(child: &mut Child, port: u16, within: Duration) -> Result<(), String> {
    ports::wait_accepting(port, within, || child.try_wait().ok().flatten()).map_err(|e| match e {
        ports::NotAccepting::Exited(status) => format!("exited with {status}"),
        ports::NotAccepting::TimedOut => format!("did not listen on port {port} within {within:?}"),
    })
}

/// Writes the tutorial's hashed users file and ACL into `dir`.
pub fn tutorial_files(dir: &Path) {
    let mut users = String::new();
    for (u, p) in TUTORIAL_USERS {
        let h = hash_password(p.as_bytes(), HashKind::Sha512Pbkdf2, Some(101));
        users.push_str(&format!("{u}:{h}\n"));
    }
    std::fs::write(dir.join("users.txt"), users).expect("write users");
    std::fs::write(dir.join("acl.txt"), TUTORIAL_ACL).expect("write acl");
}

/// Makes a CA and a server certificate for `localhost`/127.0.0.1 with the openssl CLI.
pub fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=mqtt-policy test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

impl Broker {
    /// Starts a broker with `conf` (where `{dir}` becomes the temp dir and `{port}` the port), after
    /// `prepare` has written files into the dir.
    pub fn start(conf: &str, prepare: impl FnOnce(&Path)) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(dir.path());
        let port = unused_port();
        let text = conf
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{port}", &port.to_string());
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, text).expect("write conf");
        let audit = dir.path().join("audit.log");
        // Its log goes to a file: a pipe nobody reads would block a chatty broker.
        let log = std::fs::File::create(dir.path().join("broker.log")).expect("create the log");
        let child = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
            .arg("broker")
            .arg("-c")
            .arg(&conf_path)
            .arg("--audit-log")
            .arg(&audit)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the broker");
        let mut broker = Broker { child, dir, port };
        if let Err(why) = wait_listening(&mut broker.child, port, Duration::from_secs(20)) {
            panic!("the broker {why}: {}", broker.log());
        }
        broker
    }

    /// Starts the tutorial's broker (plain TCP).
    pub fn tutorial() -> Broker {
        Broker::start(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n",
            tutorial_files,
        )
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A path in the broker's dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What the broker logged so far (stderr; it runs with `-v`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("broker.log")).unwrap_or_default()
    }

    /// Waits (bounded, 10 s) until the log contains `text`; returns the log.
    pub fn wait_log(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(text) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The audit records written so far, one JSON value per line.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.path("audit.log")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
            .collect()
    }

    /// Waits (bounded) until the audit log has at least `n` records.
    pub fn wait_audit(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.audit();
            if records.len() >= n || Instant::now() > deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGHUP.
    pub fn hup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    }
}

/// Runs a mosquitto client (`mosquitto_pub`/`mosquitto_sub`) under a 15-second `timeout`.
pub fn mosquitto(tool: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("15")
        .arg(tool)
        .args(args)
        .output()
        .expect("run a mosquitto client")
}

/// Starts `mosquitto_sub` in the background with a bounded lifetime (`-W`).
pub fn spawn_sub(args: &[&str]) -> Child {
    Command::new("timeout")
        .arg("20")
        .arg("mosquitto_sub")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_sub")
}

/// Waits for a background client and returns its stdout.
pub fn finish(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for the client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A minimal MQTT client on a blocking socket (MQTT 3.1.1 unless said otherwise).
pub struct RawClient {
    /// The socket.
    pub s: TcpStream,
    /// The version it speaks.
    pub version: Version,
    buf: Vec<u8>,
    at: usize,
}

impl RawClient {
    /// Connects and logs in; returns the client and the CONNACK's body.
    pub fn login(
        b: &Broker,
        version: Version,
        id: &str,
        credentials: Option<(&str, &str)>,
    ) -> (RawClient, Vec<u8>) {
        RawClient::login_at(b.port, version, id, credentials)
    }

    /// [`RawClient::login`] to any broker on `127.0.0.1:port` (ours or Debian's mosquitto).
    pub fn login_at(
        port: u16,
        version: Version,
        id: &str,
        credentials: Option<(&str, &str)>,
    ) -> (RawClient, Vec<u8>) {
        RawClient::try_login_at(port, version, id, credentials, true).expect("connect")
    }

    /// [`RawClient::login_at`] with Clean Session `clean`, returning I/O errors (a broker that is
    /// not there) instead of panicking.
    pub fn try_login_at(
        port: u16,
        version: Version,
        id: &str,
        credentials: Option<(&str, &str)>,
        clean: bool,
    ) -> io::Result<(RawClient, Vec<u8>)> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = RawClient {
            s,
            version,
            buf: Vec::new(),
            at: 0,
        };
        c.try_send(&Packet::Connect(Box::new(Connect {
            version,
            client_id: id.into(),
            clean_start: clean,
            keep_alive: 0,
            username: credentials.map(|(u, _)| u.to_owned()),
            password: credentials.map(|(_, p)| p.as_bytes().to_vec()),
            will: None,
            properties: Properties::default(),
        })))?;
        let (first, body) = c.read()?;
        if first != 0x20 {
            return Err(io::Error::other(format!(
                "packet {first:#x} instead of CONNACK"
            )));
        }
        Ok((c, body))
    }

    /// A client on a connected socket that has sent nothing yet (for a CONNECT of the test's own).
    pub fn from_stream(s: TcpStream, version: Version) -> RawClient {
        RawClient {
            s,
            version,
            buf: Vec::new(),
            at: 0,
        }
    }

    /// An anonymous MQTT 3.1.1 client, accepted.
    pub fn anonymous(b: &Broker, id: &str) -> RawClient {
        let (c, connack) = RawClient::login(b, Version::V311, id, None);
        assert_eq!(connack, vec![0, 0], "CONNACK 0");
        c
    }

    /// How long a read waits before it fails.
    pub fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        self.s.set_read_timeout(Some(d))
    }

    /// Sends a packet.
    pub fn send(&mut self, p: &Packet) {
        self.try_send(p).expect("write");
    }

    /// Sends bytes as they are (a packet the codec's model cannot hold, such as an invalid filter).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Sends a packet, returning I/O errors.
    pub fn try_send(&mut self, p: &Packet) -> io::Result<()> {
        let mut out = Vec::new();
        encode(p, self.version, &mut out);
        self.s.write_all(&out)
    }

    /// One packet from the broker: first byte and body.
    pub fn read(&mut self) -> io::Result<(u8, Vec<u8>)> {
        loop {
            let avail = &self.buf[self.at..];
            if avail.len() >= 2 {
                let mut len = 0usize;
                let mut i = 1;
                let mut complete = false;
                while i < avail.len() && i <= 4 {
                    len |= usize::from(avail[i] & 0x7f) << (7 * (i - 1));
                    if avail[i] & 0x80 == 0 {
                        complete = true;
                        break;
                    }
                    i += 1;
                }
                if complete && avail.len() > i + len {
                    let packet = (avail[0], avail[i + 1..i + 1 + len].to_vec());
                    self.at += i + 1 + len;
                    if self.at > 1 << 20 {
                        self.buf.drain(..self.at);
                        self.at = 0;
                    }
                    return Ok(packet);
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn subscribe(&mut self, filter: &str) {
        self.send(&Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter {
                filter: filter.try_into().unwrap(),
                options: SubOptions::qos(QoS::AtMostOnce),
            }],
            properties: Properties::default().into(),
        }));
        let (first, body) = self.read().expect("SUBACK");
        assert_eq!(first, 0x90, "SUBACK");
        assert_eq!(body.last(), Some(&0), "SUBACK granting QoS 0");
    }

    /// PINGREQ, then waits for the PINGRESP: the broker has handled everything sent before.
    pub fn sync(&mut self) {
        self.try_sync().expect("PINGRESP");
    }

    /// [`RawClient::sync`] that reports a closed connection (or any packet but PINGRESP).
    pub fn try_sync(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        encode(&Packet::PingReq, self.version, &mut out);
        self.s.write_all(&out)?;
        match self.read()? {
            (0xd0, _) => Ok(()),
            (first, body) => Err(io::Error::other(format!(
                "packet {first:#x} {body:?} instead of PINGRESP"
            ))),
        }
    }
}
