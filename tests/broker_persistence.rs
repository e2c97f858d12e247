//! `persistence true` on the standalone broker: what it acknowledged survives a restart and a
//! `kill -9` at any moment, and a store it cannot use stops it at start with the file's path.
//!
//! The crash test runs rounds: a broker starts on the same files and port, a publisher (QoS 1 and 2,
//! persistent session, resuming its flows with DUP/PUBREL as MQTT requires) and a persistent
//! subscriber (QoS 2 subscription made once, in the first round) run against it, and the broker is
//! killed with SIGKILL (some rounds: SIGTERM) after a random time. The clients keep their own
//! session state across rounds, as real clients do. At the end every message the broker
//! acknowledged (PUBACK; PUBREC for QoS 2) reached the subscriber — QoS 1 at least once, QoS 2
//! exactly once — and nothing reached it that was never published.

mod broker_support;
#[path = "../mosquitto-test/support/small_disk.rs"]
mod small_disk;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use broker_support::{tutorial_files, unused_port, wait_listening, RawClient};
use mqtt_policy::broker::codec::{
    Ack, Packet, Properties, Publish, QoS, SubOptions, Subscribe, SubscribeFilter, Version,
};
use small_disk::SmallDisk;

const ADMIN: (&str, &str) = ("admin", "admin1234");
const USER1: (&str, &str) = ("user1", "123456");
const TOPIC: &str = "colombia/cundinamarca/cajica/user1";

/// A broker on fixed files and port, started and stopped again and again.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        tutorial_files(dir.path());
        let port = unused_port();
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {d}/users.txt\nacl_file {d}/acl.txt\npersistence true\npersistence_location {d}/\n",
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("conf");
        Site {
            dir,
            port,
            child: None,
            starts: 0,
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("mqtt-policy.db")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("broker-{}.log", self.starts))
    }

    fn spawn(&mut self) -> Child {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).expect("log");
        Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
            .arg("broker")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .arg("--audit-log")
            .arg(self.dir.path().join("audit.log"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the broker")
    }

    fn start(&mut self) {
        let mut child = self.spawn();
        // The port of the previous run may take a moment to be free again.
        if let Err(why) = wait_listening(&mut child, self.port, Duration::from_secs(30)) {
            let _ = child.kill();
            panic!(
                "the broker {why}: {}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
        }
        self.child = Some(child);
    }

    fn stop(&mut self, signal: &str) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop("-KILL");
    }
}

/// A small deterministic random generator (xorshift), seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// A PUBLISH's fields from its first byte and body (MQTT 3.1.1).
fn parse_publish(first: u8, body: &[u8]) -> (QoS, u16, String) {
    let qos = QoS::from_bits((first >> 1) & 3).expect("QoS");
    let n = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let mut at = 2 + n;
    let mut pkid = 0;
    if qos != QoS::AtMostOnce {
        pkid = u16::from_be_bytes([body[at], body[at + 1]]);
        at += 2;
    }
    (qos, pkid, String::from_utf8_lossy(&body[at..]).into_owned())
}

fn ack_id(body: &[u8]) -> u16 {
    u16::from_be_bytes([body[0], body[1]])
}

/// The publisher's state, kept across rounds as a client keeps its session.
#[derive(Default)]
struct Publisher {
    next: u64,
    next_pkid: u16,
    /// pkid → (number, QoS, PUBREC received).
    inflight: BTreeMap<u16, (u64, QoS, bool)>,
    /// Numbers the broker acknowledged, with their QoS.
    acked: HashMap<u64, QoS>,
    published: u64,
}

impl Publisher {
    fn publish_packet(pkid: u16, n: u64, qos: QoS, dup: bool) -> Packet {
        Packet::Publish(Publish {
            dup,
            qos,
            retain: false,
            topic: Some(TOPIC.try_into().unwrap()),
            pkid,
            payload: format!("{n}").into_bytes().into(),
            properties: Properties::default().into(),
        })
    }

    /// One connection: resumes the flows in flight, then publishes in windows of 20 until the
    /// connection fails, `stop` is set, or `limit` messages were published in this round.
    fn run(&mut self, port: u16, stop: &AtomicBool, limit: u64) {
        let Ok((mut c, connack)) =
            RawClient::try_login_at(port, Version::V311, "pub", Some(USER1), false)
        else {
            return;
        };
        assert_eq!(connack[1], 0, "publisher accepted");
        if connack[0] & 1 == 0 {
            assert!(
                self.inflight.is_empty(),
                "the broker lost the publisher's session with flows in flight"
            );
        }
        // Resume: PUBLISH again with DUP, or PUBREL for what had its PUBREC.
        for (pkid, (n, qos, rec)) in self.inflight.clone() {
            let p = if rec {
                Packet::PubRel(Ack::new(pkid))
            } else {
                Publisher::publish_packet(pkid, n, qos, true)
            };
            if c.try_send(&p).is_err() {
                return;
            }
        }
        let start = self.published;
        while !stop.load(Ordering::Relaxed) && self.published - start < limit {
            while self.inflight.len() < 20 {
                self.next += 1;
                let n = self.next;
                let qos = if n.is_multiple_of(2) {
                    QoS::ExactlyOnce
                } else {
                    QoS::AtLeastOnce
                };
                self.next_pkid = self.next_pkid % u16::MAX + 1;
                let pkid = self.next_pkid;
                self.inflight.insert(pkid, (n, qos, false));
                self.published += 1;
                if c.try_send(&Publisher::publish_packet(pkid, n, qos, false))
                    .is_err()
                {
                    return;
                }
            }
            let Ok((first, body)) = c.read() else {
                return;
            };
            let pkid = ack_id(&body);
            match first >> 4 {
                4 => {
                    if let Some((n, QoS::AtLeastOnce, _)) = self.inflight.get(&pkid).copied() {
                        self.inflight.remove(&pkid);
                        self.acked.insert(n, QoS::AtLeastOnce);
                    }
                }
                5 => {
                    if let Some(f) = self.inflight.get_mut(&pkid) {
                        f.2 = true;
                        self.acked.insert(f.0, QoS::ExactlyOnce);
                        if c.try_send(&Packet::PubRel(Ack::new(pkid))).is_err() {
                            return;
                        }
                    }
                }
                7 => {
                    self.inflight.remove(&pkid);
                }
                other => panic!("publisher got packet type {other}"),
            }
        }
    }
}

/// The subscriber's state, kept across rounds.
#[derive(Default)]
struct Subscriber {
    subscribed: bool,
    /// Incoming QoS 2 ids given to the application, PUBREL awaited (MQTT's receiver "method B").
    held: HashSet<u16>,
    /// What the application got, in order.
    got: Vec<(u64, QoS)>,
}

impl Subscriber {
    /// One connection: subscribes the first time, then takes messages until the connection fails
    /// or nothing comes for `quiet`.
    fn run(&mut self, port: u16, quiet: Duration) {
        let Ok((mut c, connack)) =
            RawClient::try_login_at(port, Version::V311, "sub", Some(ADMIN), false)
        else {
            return;
        };
        assert_eq!(connack[1], 0, "subscriber accepted");
        if self.subscribed {
            assert_eq!(
                connack[0] & 1,
                1,
                "the broker lost the subscriber's session"
            );
        } else {
            let sub = Packet::Subscribe(Subscribe {
                pkid: 1,
                filters: vec![SubscribeFilter {
                    filter: "+/+/+/user1".try_into().unwrap(),
                    options: SubOptions::qos(QoS::ExactlyOnce),
                }],
                properties: Properties::default().into(),
            });
            if c.try_send(&sub).is_err() {
                return;
            }
        }
        let _ = c.set_read_timeout(quiet);
        loop {
            let Ok((first, body)) = c.read() else {
                return;
            };
            let reply = match first >> 4 {
                9 => {
                    self.subscribed = true;
                    continue;
                }
                3 => {
                    let (qos, pkid, payload) = parse_publish(first, &body);
                    let n: u64 = payload.parse().expect("a number");
                    match qos {
                        QoS::AtLeastOnce => {
                            self.got.push((n, qos));
                            Packet::PubAck(Ack::new(pkid))
                        }
                        QoS::ExactlyOnce => {
                            if self.held.insert(pkid) {
                                self.got.push((n, qos));
                            }
                            Packet::PubRec(Ack::new(pkid))
                        }
                        QoS::AtMostOnce => panic!("QoS 0 delivery of {n}"),
                    }
                }
                6 => {
                    let pkid = ack_id(&body);
                    self.held.remove(&pkid);
                    Packet::PubComp(Ack::new(pkid))
                }
                other => panic!("subscriber got packet type {other}"),
            };
            if c.try_send(&reply).is_err() {
                return;
            }
        }
    }
}

#[test]
fn what_was_acknowledged_survives_kill_9_and_restarts_at_random_moments() {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let mut site = Site::new();
    let mut publisher = Publisher::default();
    let mut subscriber = Subscriber::default();
    let rounds = 24;
    let deadline = Instant::now() + Duration::from_secs(240);
    // The subscription, made once: the rounds never make it again.
    site.start();
    subscriber.run(site.port, Duration::from_millis(500));
    assert!(subscriber.subscribed, "SUBACK");
    for round in 0..rounds {
        assert!(Instant::now() < deadline, "rounds took too long");
        if round > 0 {
            site.start();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let port = site.port;
        let s = std::thread::spawn({
            let mut sub = std::mem::take(&mut subscriber);
            move || {
                sub.run(port, Duration::from_secs(20));
                sub
            }
        });
        let p = std::thread::spawn({
            let mut p = std::mem::take(&mut publisher);
            let stop = Arc::clone(&stop);
            move || {
                p.run(port, &stop, 20_000);
                p
            }
        });
        std::thread::sleep(Duration::from_millis(50 + rng.next(600)));
        let signal = if round % 6 == 5 { "-TERM" } else { "-KILL" };
        site.stop(signal);
        stop.store(true, Ordering::Relaxed);
        publisher = p.join().expect("publisher thread");
        subscriber = s.join().expect("subscriber thread");
        eprintln!(
            "round {round} ({signal}): published {}, acknowledged {}, received {}",
            publisher.published,
            publisher.acked.len(),
            subscriber.got.len()
        );
    }
    // A last, clean run: the publisher finishes its flows, the subscriber takes the rest.
    site.start();
    let stop = AtomicBool::new(true);
    publisher.run(site.port, &stop, 0);
    // Let the resumed flows complete.
    subscriber.run(site.port, Duration::from_secs(3));
    let store_size = std::fs::metadata(site.store())
        .map(|m| m.len())
        .unwrap_or(0);
    site.stop("-TERM");

    assert!(
        publisher.acked.len() > 1000,
        "too few messages acknowledged to prove anything: {}",
        publisher.acked.len()
    );
    let mut times: HashMap<u64, usize> = HashMap::new();
    for (n, _) in &subscriber.got {
        *times.entry(*n).or_default() += 1;
    }
    let invented: Vec<_> = times.keys().filter(|n| **n > publisher.next).collect();
    assert!(invented.is_empty(), "never published: {invented:?}");
    let mut lost = Vec::new();
    let mut doubled = Vec::new();
    for (n, qos) in &publisher.acked {
        match times.get(n).copied().unwrap_or(0) {
            0 => lost.push(*n),
            1 => {}
            k if *qos == QoS::ExactlyOnce => doubled.push((*n, k)),
            _ => {}
        }
    }
    // QoS 2 exactly once also for what was not acknowledged (an application must never see it twice).
    for (n, k) in &times {
        if n.is_multiple_of(2) && *k > 1 && !publisher.acked.contains_key(n) {
            doubled.push((*n, *k));
        }
    }
    lost.sort_unstable();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost (first: {:?}); seed {seed}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        doubled.is_empty(),
        "QoS 2 delivered more than once: {doubled:?}; seed {seed}"
    );
    eprintln!(
        "{} acknowledged, {} deliveries, store file {store_size} bytes",
        publisher.acked.len(),
        subscriber.got.len()
    );
}

/// Runs a mosquitto client against the site (bounded by `timeout`).
fn client(tool: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("15")
        .arg(tool)
        .args(args)
        .output()
        .expect("run a mosquitto client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn retained_messages_sessions_and_their_queues_are_back_after_restarts() {
    let mut site = Site::new();
    site.start();
    let port = site.port.to_string();
    let p = port.as_str();
    let admin = ["-u", ADMIN.0, "-P", ADMIN.1];
    let user1 = ["-u", USER1.0, "-P", USER1.1];
    let with = |creds: &[&str], rest: &[&str]| -> Vec<String> {
        ["-h", "127.0.0.1", "-p", p]
            .iter()
            .chain(creds)
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |tool: &str, args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        client(tool, &a)
    };
    // The MQTT 5 session, outliving its connection by an hour.
    let v5sub = |extra: &[&str]| {
        let mut args = vec![
            "-V",
            "5",
            "-i",
            "v5sub",
            "-c",
            "-x",
            "3600",
            "-t",
            "+/+/+/user1",
            "-q",
            "2",
        ];
        args.extend(extra);
        with(&admin, &args)
    };
    run(
        "mosquitto_pub",
        with(&user1, &["-t", TOPIC, "-m", "retained", "-r", "-q", "1"]),
    );
    // An MQTT 5 session that outlives its connection by an hour, and a 3.1.1 persistent one.
    run("mosquitto_sub", v5sub(&["-W", "1"]));
    run(
        "mosquitto_sub",
        with(
            &admin,
            &["-i", "v3sub", "-c", "-t", "#", "-q", "1", "-W", "1"],
        ),
    );
    site.stop("-KILL");
    site.start();
    // Both sessions are offline: the messages are queued for them.
    for (i, qos) in [(1, "1"), (2, "2")] {
        run(
            "mosquitto_pub",
            with(
                &user1,
                &["-t", TOPIC, "-m", &format!("queued{i}"), "-q", qos],
            ),
        );
    }
    site.stop("-KILL");
    site.start();
    site.stop("-TERM");
    site.start();
    let v5 = run("mosquitto_sub", v5sub(&["-C", "3", "-W", "5"]));
    // mosquitto_sub subscribes again on every connection, so the retained message comes too; it
    // hands a QoS 2 message over at PUBREL, so the order varies.
    let sorted = |s: String| {
        let mut l: Vec<String> = s.lines().map(str::to_owned).collect();
        l.sort();
        l
    };
    let expected = ["queued1", "queued2", "retained"];
    assert_eq!(sorted(v5), expected, "the MQTT 5 session's queue");
    let v3 = run(
        "mosquitto_sub",
        with(
            &admin,
            &[
                "-i", "v3sub", "-c", "-t", "#", "-q", "1", "-C", "3", "-W", "5",
            ],
        ),
    );
    assert_eq!(sorted(v3), expected, "the 3.1.1 session's queue");
    let retained = run(
        "mosquitto_sub",
        with(&admin, &["-t", "+/+/+/user1", "-C", "1", "-W", "5"]),
    );
    assert_eq!(retained, "retained\n");
    // A clean session is not kept: it never comes back with anything queued.
    site.stop("-KILL");
    site.start();
    let log = std::fs::read_to_string(site.log_path()).unwrap_or_default();
    assert!(
        log.contains("2 sessions and 1 retained messages restored"),
        "{log}"
    );
}

/// Starts the broker on a config and waits (bounded) for it to exit; returns its stderr.
fn refused(conf: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = unused_port();
    let conf = conf
        .replace("{dir}", &dir.path().display().to_string())
        .replace("{port}", &port.to_string());
    std::fs::write(dir.path().join("m.conf"), conf).expect("conf");
    refused_in(dir.path(), &dir.path().join("m.conf"))
}

fn refused_in(dir: &std::path::Path, conf: &std::path::Path) -> String {
    let out = Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_mqtt-policy"))
        .arg("broker")
        .arg("-c")
        .arg(conf)
        .current_dir(dir)
        .output()
        .expect("run the broker");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(124), "it did not stop: {err}");
    assert!(!out.status.success(), "it started: {err}");
    assert!(!err.contains("listening on"), "it listened first: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_store_it_cannot_use_stops_it_at_start_naming_the_file_and_what_to_do() {
    // No such directory.
    let err = refused(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/missing/\n",
    );
    assert!(
        err.contains("missing/mqtt-policy.db") && err.contains("persistence_location exists"),
        "{err}"
    );
    // A Mosquitto persistence file named by `persistence_file`: refused, and left as it was.
    let dir = tempfile::tempdir().expect("temp dir");
    let mosq = dir.path().join("mosquitto.db");
    let mut magic = b"\x00\xB5\x00mosquitto db".to_vec();
    magic.extend_from_slice(&[0, 0, 0, 6, 0, 0, 0, 0]);
    std::fs::write(&mosq, &magic).expect("write");
    let conf = dir.path().join("m.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}\npersistence_file mosquitto.db\n",
            unused_port(),
            dir.path().display()
        ),
    )
    .expect("conf");
    let err = refused_in(dir.path(), &conf);
    assert!(
        err.contains(&mosq.display().to_string()) && err.contains("Mosquitto persistence file"),
        "{err}"
    );
    assert_eq!(std::fs::read(&mosq).expect("read"), magic);

    // A store cut short (as a full disk or a bad copy leaves it): refused, never an empty start.
    let mut site = Site::new();
    site.start();
    let port = site.port.to_string();
    client(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            USER1.0,
            "-P",
            USER1.1,
            "-t",
            TOPIC,
            "-m",
            "kept",
            "-r",
        ],
    );
    site.stop("-TERM");
    let store = site.store();
    let bytes = std::fs::read(&store).expect("the store exists");
    std::fs::write(&store, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = refused_in(site.dir.path(), &site.dir.path().join("mosquitto.conf"));
    assert!(
        err.contains(&store.display().to_string()) && err.contains("move it away"),
        "{err}"
    );
}

#[test]
fn on_a_full_disk_nothing_unwritten_is_acknowledged_and_the_store_recovers_when_space_returns() {
    let mut site = Site::new();
    let Some(disk) = SmallDisk::mount(site.dir.path().join("store"), "2m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)");
        return;
    };
    let conf = std::fs::read_to_string(site.dir.path().join("mosquitto.conf"))
        .expect("conf")
        .replace(
            "persistence_location ",
            &format!("persistence_location {}/\n#", disk.path.display()),
        );
    std::fs::write(site.dir.path().join("mosquitto.conf"), conf).expect("conf");
    site.start();
    let port = site.port.to_string();
    let base = ["-h", "127.0.0.1", "-p", port.as_str()];
    let sub = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend([
            "-u",
            ADMIN.0,
            "-P",
            ADMIN.1,
            "-i",
            "keeper",
            "-c",
            "-q",
            "1",
            "-t",
            "+/+/+/user1",
        ]);
        a.extend(extra);
        client("mosquitto_sub", &a)
    };
    let publish = |payload: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(["-u", USER1.0, "-P", USER1.1, "-t", TOPIC, "-q", "1", "-d"]);
        a.extend(payload);
        let out = Command::new("timeout")
            .arg("10")
            .arg("mosquitto_pub")
            .args(&a)
            .output()
            .expect("mosquitto_pub");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    sub(&["-W", "1"]);
    // Fill the disk.
    let filler = disk.path.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        for _ in 0..64 {
            if f.write_all(&block).and_then(|()| f.sync_data()).is_err() {
                break;
            }
        }
    }
    let big = site.dir.path().join("big.txt");
    std::fs::write(&big, "x".repeat(60_000)).expect("payload");
    let big = big.display().to_string();
    let refused = publish(&["-f", &big]);
    assert!(
        !refused.contains("received PUBACK"),
        "acknowledged on a full disk: {refused}"
    );
    let log = std::fs::read_to_string(site.log_path()).unwrap_or_default();
    assert!(
        log.contains(&disk.path.join("mqtt-policy.db").display().to_string())
            && log.contains("No space left on device")
            && log.contains("not acknowledged"),
        "{log}"
    );
    // Space comes back: within a few retries the store is written again and acknowledgements flow.
    std::fs::remove_file(&filler).expect("free the disk");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = publish(&["-m", "after"]);
        if out.contains("received PUBACK") {
            break;
        }
        assert!(Instant::now() < deadline, "never acknowledged again: {out}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(site.log_path()).unwrap_or_default();
    assert!(log.contains("the store is written again"), "{log}");
    // What was acknowledged survives a kill -9.
    site.stop("-KILL");
    site.start();
    let got = sub(&["-W", "3"]);
    assert!(
        got.lines().any(|l| l == "after"),
        "the acknowledged message is gone: {} lines",
        got.lines().count()
    );
    site.stop("-TERM");
}
