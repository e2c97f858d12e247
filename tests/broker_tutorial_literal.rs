//! The tutorial as a student really follows it, on our broker and on Debian's mosquitto 2.0.11 with the
//! same files: certificates from its own five openssl commands (`examples/tutorial/make-certs.sh`: an
//! X.509 version 1 server certificate, no extensions, the IP address as its CN, the CA's subject), and
//! its own kind of clients (`examples/tutorial/subscriber.py` and `publisher.py`: paho-mqtt 1.6 as
//! Debian packages it, `tls_version=PROTOCOL_TLSv1_2`, `cert_reqs=CERT_NONE`, an admin subscriber on `#`
//! at QoS 1, a publisher sending QoS 0). Both brokers must serve that certificate and give the
//! tutorial's outcomes; ours must also say at start what modern clients will refuse about it.

mod broker_support;

// The real-mosquitto harness of `mosquitto-test/`, borrowed (as in `broker_identity.rs`).
#[allow(dead_code)]
#[path = "../mosquitto-test/support/process.rs"]
mod process;

#[allow(dead_code)]
#[path = "../mosquitto-test/support/versions.rs"]
mod versions;

// `broker.rs` finds its `ports` sibling here too.
use broker_support::ports;

#[allow(dead_code)]
#[path = "../mosquitto-test/support/broker.rs"]
mod mosquitto_broker;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_support::{Broker, TUTORIAL_ACL, TUTORIAL_USERS};
use mosquitto_broker::MosquittoBroker;
use mqtt_policy::policy::passwd::{hash_password, HashKind};

/// Debian's own interpreter, where `python3-paho-mqtt` is installed.
const PYTHON: &str = "/usr/bin/python3";
/// The tutorial's user1 and its right password.
const USER1: (&str, &str) = ("user1", "123456");
/// Every client run is bounded by this (seconds, through `timeout`).
const CLIENT_LIMIT: &str = "60";
/// The tutorial's listener settings (the listener line itself is added by each harness).
const TUTORIAL_CONF: &str = "allow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n\
     cafile {dir}/ca.crt\nkeyfile {dir}/server.key\ncertfile {dir}/server.crt\ntls_version tlsv1.2\n";

fn tutorial_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tutorial")
}

/// The tutorial's files as a student ends up with them: its certificates from its own commands, its
/// users hashed, its acl.
fn student_files() -> Vec<(&'static str, Vec<u8>)> {
    let certs = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .arg(tutorial_dir().join("make-certs.sh"))
        .arg(certs.path())
        .arg("127.0.0.1")
        .output()
        .expect("run bash examples/tutorial/make-certs.sh");
    assert!(
        out.status.success(),
        "make-certs.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(certs.path().join("server.crt"))
        .output()
        .expect("run openssl");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Version: 1 (0x0)") && !text.contains("X509v3"),
        "the tutorial's commands make a version 1 certificate without extensions:\n{text}"
    );
    let mut users = String::new();
    for (u, p) in TUTORIAL_USERS {
        let h = hash_password(p.as_bytes(), HashKind::Sha512Pbkdf2, Some(101));
        users.push_str(&format!("{u}:{h}\n"));
    }
    let mut files = vec![
        ("users.txt", users.into_bytes()),
        ("acl.txt", TUTORIAL_ACL.as_bytes().to_vec()),
    ];
    for name in ["ca.crt", "server.crt", "server.key"] {
        let bytes = std::fs::read(certs.path().join(name)).expect("read a certificate file");
        files.push((name, bytes));
    }
    files
}

/// One of the two brokers, running the tutorial's configuration.
enum Running {
    Ours(Broker),
    Mosquitto(MosquittoBroker),
}

impl Running {
    fn start_ours(files: &[(&str, Vec<u8>)]) -> Running {
        let conf = format!("listener {{port}} 127.0.0.1\n{TUTORIAL_CONF}");
        Running::Ours(Broker::start(&conf, |dir| {
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes).expect("write a broker file");
            }
        }))
    }

    fn start_mosquitto(files: &[(&str, Vec<u8>)]) -> Running {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        Running::Mosquitto(MosquittoBroker::start(TUTORIAL_CONF, &files))
    }

    fn port(&self) -> u16 {
        match self {
            Running::Ours(b) => b.port,
            Running::Mosquitto(m) => m.port(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        match self {
            Running::Ours(b) => b.path(name),
            Running::Mosquitto(m) => m.path(name),
        }
    }

    fn log(&self) -> String {
        match self {
            Running::Ours(b) => b.log(),
            Running::Mosquitto(m) => m.log(),
        }
    }
}

/// A tutorial client script with the connection arguments for `broker`, bounded by [`CLIENT_LIMIT`].
fn script(broker: &Running, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg(CLIENT_LIMIT)
        .arg(PYTHON)
        .arg(tutorial_dir().join(name))
        .args(["--host", "127.0.0.1", "--port"])
        .arg(broker.port().to_string())
        .arg("--ca")
        .arg(broker.path("ca.crt"))
        .args(args);
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The three scenarios with the tutorial's clients; `refusal` is what the publisher prints for a wrong
/// password on this broker.
fn tutorial_scenarios(broker: &Running, refusal: &str) {
    // The admin subscriber stops after two messages: scenario 3 runs first, so a wrongly delivered
    // message would be among the two it prints.
    let mut subscriber = script(
        broker,
        "subscriber.py",
        &[
            "--user",
            "admin",
            "--passwd",
            "admin1234",
            "--count",
            "2",
            "--timeout",
            "30",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("start subscriber.py (python3-paho-mqtt: scripts/install-deps.sh installs it)");
    // Its lines, as they come: the publishers start once it printed its SUBACK.
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = subscriber.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen_lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen_lines
        .iter()
        .any(|l: &String| l.starts_with("Subscribed"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen_lines.push(line),
            Err(_) => panic!(
                "subscriber.py did not subscribe within 20 s: {seen_lines:?}\nbroker log:\n{}",
                broker.log()
            ),
        }
    }

    for topic in [
        "colombia/cundinamarca/bogota/user2",
        "user1",
        "panama/colon/user1",
    ] {
        let out = publisher(broker, USER1, topic, 1, "0.3");
        assert!(
            out.status.success() && text(&out).contains("Msg: Connection Accepted."),
            "scenario 3 ({topic}): the publisher is accepted and sees no error\n{}",
            text(&out)
        );
    }

    let out = publisher(
        broker,
        ("user1", "ABCDEFG"),
        "colombia/cundinamarca/cajica/user1",
        1,
        "0.5",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "scenario 2: refused\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains(refusal),
        "scenario 2 prints {refusal:?}\n{}",
        text(&out)
    );

    let out = publisher(
        broker,
        USER1,
        "colombia/cundinamarca/cajica/user1",
        2,
        "0.3",
    );
    assert!(out.status.success(), "scenario 1: accepted\n{}", text(&out));

    let status = subscriber.wait().expect("wait for subscriber.py");
    reader.join().expect("the subscriber's reader thread");
    seen_lines.extend(lines.try_iter());
    let seen_text = seen_lines.join("\n");
    assert!(status.success(), "subscriber.py connected\n{seen_text}");
    assert!(
        seen_text.contains("Subscribed to #: granted QoS [1]"),
        "the admin's `#` subscription is granted at QoS 1\n{seen_text}"
    );
    let received: Vec<&str> = seen_text
        .lines()
        .filter(|l| l.starts_with("Data received:"))
        .collect();
    assert_eq!(
        received,
        ["Data received: MQTT Test (colombia/cundinamarca/cajica/user1)"; 2],
        "scenario 1 delivered, scenario 3 not\n{seen_text}\nbroker log:\n{}",
        broker.log()
    );
}

/// `publisher.py` as `user` with `password` to `topic`, `count` messages `interval` seconds apart.
fn publisher(
    broker: &Running,
    (user, password): (&str, &str),
    topic: &str,
    count: u32,
    interval: &str,
) -> Output {
    let count = count.to_string();
    script(
        broker,
        "publisher.py",
        &[
            "--user",
            user,
            "--passwd",
            password,
            "--topic",
            topic,
            "--count",
            &count,
            "--interval",
            interval,
        ],
    )
    .output()
    .expect("run publisher.py")
}

/// `mosquitto_pub --cafile ca.crt` against the tutorial's certificates: the same outcome on both
/// brokers, because it is the certificates (the CA's subject on the server certificate), not the broker.
fn mosquitto_pub_verifying(broker: &Running) -> Output {
    Command::new("timeout")
        .arg(CLIENT_LIMIT)
        .arg("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(broker.port().to_string())
        .arg("--cafile")
        .arg(broker.path("ca.crt"))
        .args([
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "a/b/c/user1",
            "-m",
            "x",
        ])
        .output()
        .expect("run mosquitto_pub")
}

#[test]
fn the_tutorials_own_certificates_and_clients_work_on_our_broker_as_on_mosquitto() {
    let files = student_files();

    let mosquitto = Running::start_mosquitto(&files);
    tutorial_scenarios(&mosquitto, "Connection Refused: not authorised.");
    let theirs = mosquitto_pub_verifying(&mosquitto);
    drop(mosquitto);

    let ours = Running::start_ours(&files);
    tutorial_scenarios(&ours, "Connection Refused: bad user name or password.");
    let mine = mosquitto_pub_verifying(&ours);
    assert!(
        !theirs.status.success() && !mine.status.success(),
        "a client that verifies against ca.crt refuses the tutorial's server certificate on both brokers\nmosquitto: {}\nours: {}",
        text(&theirs),
        text(&mine)
    );

    let log = ours.log();
    for warning in [
        "X.509 version 1",
        "no subjectAltName, its only name is the IP address \"127.0.0.1\" in the CN",
        "the certificate's issuer and subject are the same name",
    ] {
        assert!(
            log.contains(warning),
            "our broker warns at start: {warning:?}\n{log}"
        );
    }
}
