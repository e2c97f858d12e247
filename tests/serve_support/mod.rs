//! Starting the real `mqtt-policy serve` for tests: a temp dir with the tutorial's files, port 0 (the
//! service prints the address it got), a child process killed on drop, and a small HTTP/1.1 client.
//! Every wait is bounded.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod client;
#[path = "../../mosquitto-test/support/process.rs"]
mod process;

use process::ChildGuard;

/// The tutorial's ACL.
pub const TUTORIAL_ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

/// A running `mqtt-policy serve`, killed and reaped when dropped.
pub struct Serve {
    child: ChildGuard,
    /// The temp dir with its files (the caller's, when started with [`Serve::start_in`]).
    pub dir: PathBuf,
    _own: Option<tempfile::TempDir>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

/// Writes the tutorial's acl file and a mosquitto.conf naming it (and `audit.log`) into `dir`.
pub fn tutorial_files(dir: &Path) {
    std::fs::write(dir.join("acl.txt"), TUTORIAL_ACL).expect("write acl");
    std::fs::write(
        dir.join("mosquitto.conf"),
        format!(
            "listener 1883 127.0.0.1\nallow_anonymous false\nplugin /usr/lib/libmqtt_policy.so\n\
             plugin_opt_acl_file {d}/acl.txt\nplugin_opt_audit_log {d}/audit.log\n",
            d = dir.display()
        ),
    )
    .expect("write conf");
}

/// Runs `mqtt-policy serve ARGS` (with `{dir}` replaced) to its end, bounded by 20 s; returns the
/// exit code and stderr. For starts that must fail.
pub fn serve_fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_mqtt-policy"))
        .arg("serve")
        .args(
            args.iter()
                .map(|a| a.replace("{dir}", &dir.display().to_string())),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run mqtt-policy serve");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Serve {
    /// Starts `mqtt-policy serve -c {dir}/mosquitto.conf --listen 127.0.0.1:0 EXTRA` in a new temp dir
    /// prepared by `prepare`.
    pub fn start(prepare: impl FnOnce(&Path), extra: &[&str]) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(dir.path());
        let mut args = vec!["-c", "{dir}/mosquitto.conf", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut s = Serve::start_in(dir.path(), &args);
        s._own = Some(dir);
        s
    }

    /// Starts `mqtt-policy serve ARGS` (with `{dir}` replaced) in `dir`, waiting (bounded) for the
    /// line that says where it listens.
    pub fn start_in(dir: &Path, args: &[&str]) -> Serve {
        // Its log goes to a file: a pipe nobody reads would block it.
        let log = std::fs::File::create(dir.join("serve.log")).expect("create the log");
        let mut child = ChildGuard::spawn(
            Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
                .arg("serve")
                .args(
                    args.iter()
                        .map(|a| a.replace("{dir}", &dir.display().to_string())),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log),
            "mqtt-policy serve",
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let read_log = || std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
        let addr = loop {
            let log = read_log();
            if let Some(addr) = log.lines().find_map(|l| {
                let url = l.strip_prefix("mqtt-policy serve: listening on ")?;
                url.strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"))
            }) {
                break addr.trim_end_matches('/').parse().expect("an address");
            }
            if let Some(status) = child.try_wait() {
                panic!("mqtt-policy serve exited with {status}: {log}");
            }
            if Instant::now() > deadline {
                panic!("mqtt-policy serve did not listen within 20 s: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Serve {
            child,
            dir: dir.to_owned(),
            _own: None,
            addr,
        }
    }

    /// A path in its dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// What it logged so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }

    /// Waits (bounded, 10 s) until the log contains `text` `n` times; returns the log.
    pub fn wait_log(&self, text: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.matches(text).count() >= n || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGHUP.
    pub fn hup(&mut self) {
        self.child.signal(libc::SIGHUP);
    }

    /// Sends SIGTERM and waits (bounded, 10 s) for the exit; returns whether it exited with 0.
    pub fn stop(mut self) -> bool {
        self.child.signal(libc::SIGTERM);
        self.child
            .wait_for(Duration::from_secs(10))
            .is_some_and(|status| status.success())
    }

    /// `GET path` with optional extra header lines; returns (status, headers, body).
    pub fn get(&self, path: &str, headers: &[&str]) -> (u16, String, String) {
        http_get(self.addr, path, headers)
    }
}

/// One HTTP/1.1 GET over a new connection (`Connection: close`), bounded by 10 s.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the answer");
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, head.to_owned(), body.to_owned())
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Serve {
    /// `GET path` answered 200 with JSON.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, head, body) = self.get(path, &[]);
        assert_eq!(status, 200, "{path}: {head}\n{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}
