//! Starting the real `mqtt-policy broker` for tests: a temp dir with the tutorial's files, a free
//! port, and a child process killed on drop. Every wait is bounded.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
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
        let port = free_port();
        let text = conf
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{port}", &port.to_string());
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, text).expect("write conf");
        let audit = dir.path().join("audit.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
            .arg("broker")
            .arg("-c")
            .arg(&conf_path)
            .arg("--audit-log")
            .arg(&audit)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the broker");
        let mut broker = Broker { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return broker;
            }
            if let Ok(Some(status)) = broker.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = broker.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the broker exited with {status}: {err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the broker did not listen on port {port} within 20 s");
    }

    /// Starts the tutorial's broker (plain TCP).
    pub fn tutorial() -> Broker {
        Broker::start(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n",
            tutorial_files,
        )
    }

    /// A path in the broker's dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
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
