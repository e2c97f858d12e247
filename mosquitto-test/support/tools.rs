//! Mosquitto's own command-line clients and tools: `mosquitto_pub`, `mosquitto_sub`, `mosquitto_passwd`.
//! Every process is bounded in time and killed and reaped when done.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::broker::write_readable;
use super::clients::Message;
use super::process::{run_checked, run_limited, ChildGuard};

/// The bound on one run of a tool.
pub const TOOL_LIMIT: Duration = Duration::from_secs(10);

/// Runs `mosquitto_pub -h 127.0.0.1 -p PORT ARGS...` (at most [`TOOL_LIMIT`]) and returns its output;
/// the caller checks the status (a refused connection exits non-zero and says why on stderr).
pub fn mosquitto_pub(port: u16, args: &[&str]) -> Output {
    run_limited(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        TOOL_LIMIT,
    )
}

/// Runs `mosquitto_passwd ARGS...` and panics unless it succeeds (for example `["-U", file]`).
pub fn mosquitto_passwd(args: &[&str]) -> Output {
    run_checked(Command::new("mosquitto_passwd").args(args), TOOL_LIMIT)
}

/// Writes `user:password` lines for `users` to `path` and hashes them in place with
/// `mosquitto_passwd -U`, as the tutorial does; the file is left readable by all.
pub fn write_password_file(path: &Path, users: &[(&str, &str)]) {
    let text: String = users.iter().map(|(u, p)| format!("{u}:{p}\n")).collect();
    write_readable(path, text.as_bytes());
    mosquitto_passwd(&["-U", path.to_str().expect("UTF-8 path")]);
    let hashed = std::fs::read(path).expect("read the hashed password file");
    write_readable(path, &hashed);
}

/// The bytes of a password file for `users` made by [`write_password_file`], to hand to
/// [`super::broker::MosquittoBroker::start`].
pub fn hashed_password_file(users: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("users.txt");
    write_password_file(&path, users);
    std::fs::read(&path).expect("read the hashed password file")
}

/// A running `mosquitto_sub` whose messages are read as they arrive.
pub struct MosquittoSub {
    _child: ChildGuard,
    lines: mpsc::Receiver<String>,
}

/// Marks message lines in `mosquitto_sub`'s output (its `-d` debug lines start with `Client `).
const MESSAGE_MARK: &str = "MSG\t";

impl MosquittoSub {
    /// Starts `mosquitto_sub -d -h 127.0.0.1 -p PORT ARGS...` (line-buffered) and waits (at most [`TOOL_LIMIT`]) until it
    /// has its SUBACK, so that messages published afterwards reach it. Panics if it exits first.
    pub fn start(port: u16, args: &[&str]) -> MosquittoSub {
        let mut child = ChildGuard::spawn(
            // mosquitto_sub's debug lines go through block-buffered stdio on a pipe (only a printed
            // message flushes them); stdbuf makes stdout line-buffered so the SUBACK line arrives.
            Command::new("stdbuf")
                .args(["-oL", "mosquitto_sub"])
                .args(["-d", "-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-F", &format!("{MESSAGE_MARK}%t\t%p")])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
            "mosquitto_sub",
        );
        let stdout = child.take_stdout();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let sub = MosquittoSub {
            _child: child,
            lines,
        };
        let deadline = Instant::now() + TOOL_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.lines.recv_timeout(left) {
                Ok(line) if line.contains("received SUBACK") => return sub,
                Ok(_) => {}
                Err(e) => panic!("mosquitto_sub {args:?} got no SUBACK ({e})"),
            }
        }
    }

    /// Messages received until `count` have arrived or `within` has passed.
    pub fn receive(&self, count: usize, within: Duration) -> Vec<Message> {
        let deadline = Instant::now() + within;
        let mut messages = Vec::new();
        while messages.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            if let Some(rest) = line.strip_prefix(MESSAGE_MARK) {
                let (topic, payload) = rest.split_once('\t').unwrap_or((rest, ""));
                messages.push(Message {
                    topic: topic.to_owned(),
                    payload: payload.as_bytes().to_vec(),
                });
            }
        }
        messages
    }
}
