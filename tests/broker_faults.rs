//! Faults around the standalone broker (issue 13, the part that concerns files and connections): the
//! audit log rotated under it, a policy file broken during a reload, a TLS client that stops in the
//! middle of its handshake while `max_connections` is reached. Each checks that the broker keeps
//! serving and that no record or decision is lost. (The store's full disk is in
//! `broker_persistence.rs`.)

mod broker_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use broker_support::{make_certs, mosquitto, tutorial_files, Broker};

const TOPIC: &str = "colombia/cundinamarca/cajica/user1";

/// user1 publishes QoS 1 to `topic` (MQTT 5: a denial is PUBACK 0x87 and an audit record).
fn publish(b: &Broker, topic: &str) -> String {
    let port = b.port.to_string();
    let out = mosquitto(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "5",
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            topic,
            "-m",
            "x",
            "-q",
            "1",
            "-d",
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A PUBACK that is not a refusal (0x10 "no matching subscribers" is a success).
fn allowed(out: &str) -> bool {
    out.contains("received PUBACK") && !out.contains("RC:135")
}

fn audit_lines(b: &Broker, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(b.path(name))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l:?}")))
        .collect()
}

/// Waits (bounded, 10 s) until `name` has `n` records.
fn wait_lines(b: &Broker, name: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = audit_lines(b, name);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn audit_records_go_on_after_logrotate_copytruncate_and_after_create_with_sighup() {
    let b = Broker::tutorial();
    assert!(publish(&b, "panama/colon/user1").contains("RC:135"));
    assert_eq!(wait_lines(&b, "audit.log", 1).len(), 1);

    // copytruncate: copied away, then cut to 0 under the open file.
    std::fs::copy(b.path("audit.log"), b.path("audit.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(b.path("audit.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(publish(&b, "panama/colon/user2").contains("RC:135"));
    let after = wait_lines(&b, "audit.log", 1);
    assert_eq!(after.len(), 1, "one record, from the start of the file");
    assert_eq!(after[0]["topic"], "panama/colon/user2");
    let raw = std::fs::read(b.path("audit.log")).unwrap();
    assert_eq!(raw.first(), Some(&b'{'), "no hole of zeros before it");

    // create: renamed away, then SIGHUP reopens the path.
    std::fs::rename(b.path("audit.log"), b.path("audit.log.2")).unwrap();
    b.hup();
    b.wait_log("SIGHUP: reloaded");
    assert!(publish(&b, "panama/colon/user3").contains("RC:135"));
    let new = wait_lines(&b, "audit.log", 1);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["topic"], "panama/colon/user3");
    assert_eq!(
        audit_lines(&b, "audit.log.2").len(),
        1,
        "the old file is left as it was"
    );
    // And the broker still decides: its own topic is allowed.
    assert!(allowed(&publish(&b, TOPIC)));
}

/// A way to break the acl file.
type Breakage<'a> = Box<dyn Fn() + 'a>;

#[test]
fn a_reload_with_the_acl_file_gone_a_directory_or_cut_mid_line_keeps_the_old_policy() {
    let b = Broker::tutorial();
    let acl = b.path("acl.txt");
    let good = std::fs::read_to_string(&acl).unwrap();
    let breakages: Vec<(&str, Breakage)> = vec![
        (
            "a directory",
            Box::new(|| {
                std::fs::remove_file(&acl).unwrap();
                std::fs::create_dir(&acl).unwrap();
            }),
        ),
        (
            "cut in the middle of a line",
            Box::new(|| {
                std::fs::remove_dir(&acl).unwrap();
                // Cut right after a keyword: a cut after `topic readwr` would be a valid rule
                // for the topic `readwr`, as Mosquitto reads it.
                std::fs::write(&acl, "pattern readwrite +/+/+/%u\nuser admin\ntopic").unwrap();
            }),
        ),
        ("gone", Box::new(|| std::fs::remove_file(&acl).unwrap())),
    ];
    for (n, (what, breaks)) in breakages.iter().enumerate() {
        breaks();
        b.hup();
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.log().matches("SIGHUP: reload failed").count() <= n {
            assert!(
                Instant::now() < deadline,
                "{what}: no failed reload logged:\n{}",
                b.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The old policy still decides, both ways.
        assert!(allowed(&publish(&b, TOPIC)), "{what}: own topic refused");
        assert!(
            publish(&b, "panama/colon/user1").contains("RC:135"),
            "{what}: a denied topic allowed"
        );
    }
    std::fs::write(&acl, good).unwrap();
    b.hup();
    b.wait_log("SIGHUP: reloaded");
}

#[test]
fn a_tls_client_stalled_in_its_handshake_is_dropped_and_frees_its_slot() {
    let b = Broker::start(
        "listener {port} 127.0.0.1\nmax_connections 1\nacl_file {dir}/acl.txt\nallow_anonymous false\npassword_file {dir}/users.txt\ncafile {dir}/ca.crt\nkeyfile {dir}/server.key\ncertfile {dir}/server.crt\n",
        |dir| {
            tutorial_files(dir);
            make_certs(dir);
        },
    );
    let port = b.port.to_string();
    let ca = b.path("ca.crt").display().to_string();
    let tls_pub = || {
        let out = mosquitto(
            "mosquitto_pub",
            &[
                "--cafile",
                &ca,
                "-h",
                "localhost",
                "-p",
                &port,
                "-u",
                "user1",
                "-P",
                "123456",
                "-t",
                TOPIC,
                "-m",
                "x",
                "-q",
                "1",
                "-d",
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The start-up probe's connection may still count: bounded retries until a client gets through.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tls_pub().contains("received PUBACK") {
        assert!(
            Instant::now() < deadline,
            "no client served at all:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // That client's slot is free once its end is logged (the slot is released before the core hears of
    // the close): otherwise the stalled client below could find the slot still taken and be refused.
    b.wait_log("disconnected.");
    // A client that sends the first bytes of a ClientHello and then nothing.
    let mut stalled = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let stalled_at = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // It holds the only slot: others are refused cleanly meanwhile.
    assert!(
        !tls_pub().contains("received PUBACK"),
        "max_connections 1 let a second client in"
    );
    // Within the connect timeout (10 s) and a margin, the slot is free again.
    let deadline = stalled_at + Duration::from_secs(20);
    loop {
        if tls_pub().contains("received PUBACK") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled handshake still holds the slot:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        stalled_at.elapsed() >= Duration::from_secs(5),
        "freed too early to be the timeout"
    );
    drop(stalled);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// As many half-open connections as this process may hold (10,000 when the open-file limit allows):
/// TCP connections that never send a CONNECT. Memory stays bounded, another client is served
/// meanwhile, and they are all dropped after the connect timeout.
#[test]
fn ten_thousand_connections_that_never_send_connect_cost_bounded_memory_and_block_no_one() {
    let b = Broker::tutorial();
    // The test and the broker each hold one descriptor per connection; the broker's limit is the
    // same as ours (inherited).
    let limit = std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        .unwrap_or(1024);
    let n = 10_000.min(limit.saturating_sub(200));
    eprintln!("{n} half-open connections (open-file limit {limit})");
    assert!(
        n >= 500,
        "the open-file limit {limit} is too low for this test"
    );
    let before = rss_kib(b.pid());
    let mut idle = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(60);
    while idle.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} connections in 60 s",
            idle.len()
        );
        match TcpStream::connect(("127.0.0.1", b.port)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {}: {e}", idle.len()),
        }
    }
    // Served meanwhile.
    assert!(allowed(&publish(&b, TOPIC)), "a client was not served");
    let during = rss_kib(b.pid());
    let per_conn = (during.saturating_sub(before)) * 1024 / n as u64;
    eprintln!("RSS {before} KiB -> {during} KiB: {per_conn} bytes per half-open connection");
    assert!(
        per_conn < 8 * 1024,
        "{per_conn} bytes per half-open connection"
    );
    // The connect timeout (10 s) closes them: reads see the end of the stream.
    let mut first = idle.swap_remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 1];
    let closed = std::io::Read::read(&mut first, &mut buf);
    let timed_out = matches!(&closed, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    assert!(
        matches!(closed, Ok(0)) || (closed.is_err() && !timed_out),
        "still open after the connect timeout: {closed:?}"
    );
    assert!(
        allowed(&publish(&b, TOPIC)),
        "a client was not served after"
    );
}
