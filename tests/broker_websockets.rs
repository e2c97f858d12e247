//! MQTT over WebSocket (`protocol websockets`, plain and TLS) with real clients, MQTT.js (npm `mqtt`,
//! `tests/js/`) and paho-mqtt's websocket transport (Debian's `python3-paho-mqtt`), against our broker
//! and upstream Mosquitto 2.1.2 running the same config: the tutorial's policy, so a wrong password is
//! refused, an allowed publish reaches the admin's `#` subscription and a denied one does not (and our
//! broker writes its audit record).

mod broker_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_support::ws::{Scheme, Server};

/// Debian's own interpreter, where `python3-paho-mqtt` is installed.
const PYTHON: &str = "/usr/bin/python3";
/// A client run's limit (the clients bound themselves at 10 s).
const CLIENT_LIMIT: &str = "20";

/// The client library.
#[derive(Clone, Copy, Debug)]
enum Client {
    Js,
    Paho,
}

impl Client {
    /// The command that runs it as `user`/`password` against `server`, with `args` (`--sub`,
    /// `--pub`, `--wait`).
    fn command(
        self,
        server: &Server,
        scheme: Scheme,
        login: (&str, &str),
        args: &[&str],
    ) -> Command {
        let root = env!("CARGO_MANIFEST_DIR");
        let ca = server.ca();
        let mut c = Command::new("timeout");
        c.arg(CLIENT_LIMIT);
        match self {
            Client::Js => {
                assert!(
                    std::path::Path::new(&format!("{root}/tests/js/node_modules/mqtt")).exists(),
                    "MQTT.js is missing: bash scripts/install-deps.sh (npm ci in tests/js)"
                );
                let url = format!("{}://127.0.0.1:{}", scheme.name(), server.port());
                c.arg("node")
                    .arg(format!("{root}/tests/js/ws_client.js"))
                    .arg(url);
            }
            Client::Paho => {
                c.arg(PYTHON)
                    .arg(format!("{root}/tests/paho/ws_client.py"))
                    .arg(scheme.name())
                    .arg(server.port().to_string());
            }
        }
        c.arg(login.0).arg(login.1);
        if scheme == Scheme::Wss {
            c.arg("--ca").arg(ca);
        }
        c.args(args);
        c
    }

    /// Runs it to its end: its stdout lines.
    fn run(
        self,
        server: &Server,
        scheme: Scheme,
        login: (&str, &str),
        args: &[&str],
    ) -> Vec<String> {
        let out = self
            .command(server, scheme, login, args)
            .output()
            .expect("run the client");
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(
            lines.last().map(String::as_str) == Some("done"),
            "{self:?} on {}: {lines:?}\n{}\n{}",
            server.name(),
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        lines
    }
}

/// The tutorial's scenarios over WebSocket with `client` against `server`.
fn tutorial(server: &Server, client: Client, scheme: Scheme) {
    let what = format!("{client:?} over {}:// on {}", scheme.name(), server.name());
    // A wrong password is refused: CONNACK 4 (bad user name or password) from ours, as Mosquitto 2.0
    // answers; 2.1.2 answers 5 (not authorised), over TCP as well.
    let code = match server {
        Server::Ours(_) => "refused 4",
        Server::Mosquitto(_) => "refused 5",
    };
    let refused = client.run(server, scheme, ("user1", "wrong"), &[]);
    assert!(
        refused.iter().any(|l| l == code) && !refused.contains(&"connected".to_owned()),
        "{what}: {refused:?}"
    );
    // The admin's `#` subscription sees the allowed publish and not the denied one.
    let mut sub = client
        .command(
            server,
            scheme,
            ("admin", "admin1234"),
            &["--sub", "#", "--wait", "3000"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the subscriber");
    let (tx, rx) = mpsc::channel();
    let stdout = sub.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.contains(&"subscribed".to_owned()) && !seen.contains(&"done".to_owned()) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    assert!(
        seen.contains(&"subscribed".to_owned()),
        "{what}: subscriber {seen:?}\n{}",
        server.log()
    );
    let publisher = client.run(
        server,
        scheme,
        ("user1", "123456"),
        &[
            "--pub",
            "lab/room/temp/user1=allowed",
            "--pub",
            "lab/room/temp/admin=denied",
        ],
    );
    assert!(
        publisher.contains(&"connected".to_owned()),
        "{what}: {publisher:?}"
    );
    while !seen.contains(&"done".to_owned()) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    let _ = reader.join();
    let got: Vec<&String> = seen.iter().filter(|l| l.starts_with("got ")).collect();
    assert_eq!(
        got,
        ["got lab/room/temp/user1 allowed"],
        "{what}: {seen:?}\n{}",
        server.log()
    );
    if let Server::Ours(b) = server {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = b.audit();
            let denied = records
                .iter()
                .any(|r| r["access"] == "write" && r["topic"] == "lab/room/temp/admin");
            if denied {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no audit record of the denied publish: {records:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn mqtt_js_over_ws_on_our_broker() {
    tutorial(&Server::ours(Scheme::Ws), Client::Js, Scheme::Ws);
}

#[test]
fn mqtt_js_over_wss_on_our_broker() {
    tutorial(&Server::ours(Scheme::Wss), Client::Js, Scheme::Wss);
}

#[test]
fn paho_over_ws_on_our_broker() {
    tutorial(&Server::ours(Scheme::Ws), Client::Paho, Scheme::Ws);
}

#[test]
fn paho_over_wss_on_our_broker() {
    tutorial(&Server::ours(Scheme::Wss), Client::Paho, Scheme::Wss);
}

#[test]
fn mqtt_js_over_ws_on_mosquitto_2_1_2() {
    tutorial(&Server::mosquitto(Scheme::Ws), Client::Js, Scheme::Ws);
}

#[test]
fn mqtt_js_over_wss_on_mosquitto_2_1_2() {
    tutorial(&Server::mosquitto(Scheme::Wss), Client::Js, Scheme::Wss);
}

#[test]
fn paho_over_ws_on_mosquitto_2_1_2() {
    tutorial(&Server::mosquitto(Scheme::Ws), Client::Paho, Scheme::Ws);
}

#[test]
fn paho_over_wss_on_mosquitto_2_1_2() {
    tutorial(&Server::mosquitto(Scheme::Wss), Client::Paho, Scheme::Wss);
}
