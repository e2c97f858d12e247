//! The standalone broker's metrics and shadow policy: the tutorial's scenarios with real clients
//! (mosquitto_pub / mosquitto_sub), then a scrape of `/metrics` (`plugin_opt_metrics_listen`) that must
//! count exactly them; a shadow acl file that disagrees gives `"kind":"shadow"` records while the live
//! decision stands; a metrics address that cannot be bound stops the broker, naming it; a shadow file
//! that does not parse is logged and the broker runs on the live policy.

mod broker_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use broker_support::{finish, mosquitto, spawn_sub, tutorial_files, unused_port, Broker};

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the scrape");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.parse().unwrap())
}

fn conf(metrics_port: u16, extra: &str) -> String {
    format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous false\n\
         plugin /usr/lib/libmqtt_policy.so\n\
         plugin_opt_password_file {{dir}}/users.txt\n\
         plugin_opt_acl_file {{dir}}/acl.txt\n\
         plugin_opt_metrics_listen 127.0.0.1:{metrics_port}\n{extra}"
    )
}

fn publish(b: &Broker, user: &str, password: &str, topic: &str) -> i32 {
    let port = b.port.to_string();
    let out = mosquitto(
        "mosquitto_pub",
        &[
            "-p", &port, "-u", user, "-P", password, "-t", topic, "-m", "22", "-q", "1", "-V", "5",
        ],
    );
    out.status.code().unwrap_or(-1)
}

/// Waits (bounded) until the scrape's `series` is `n`; returns the last scrape.
fn wait_value(port: u16, series: &str, n: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(port);
        if value(&text, series) == n || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_scrape_during_the_tutorial_scenarios_counts_exactly_them() {
    let mport = unused_port();
    let b = Broker::start(&conf(mport, ""), tutorial_files);
    assert!(b.log().contains(&format!(
        "serving metrics at http://127.0.0.1:{mport}/metrics"
    )));
    let port = b.port.to_string();
    let sub = spawn_sub(&[
        "-p",
        &port,
        "-u",
        "admin",
        "-P",
        "admin1234",
        "-i",
        "admin-sub",
        "-t",
        "#",
        "-C",
        "2",
        "-W",
        "10",
    ]);
    wait_value(
        mport,
        "mqtt_policy_decisions_total{access=\"subscribe\",verdict=\"allow\"}",
        1,
    );
    // (1) user1 publishes to its own topic, twice; the admin receives both.
    for _ in 0..2 {
        assert_eq!(
            publish(&b, "user1", "123456", "colombia/cundinamarca/cajica/user1"),
            0
        );
    }
    assert_eq!(finish(sub).lines().count(), 2);
    // (2) a wrong password (mosquitto_pub exits with the CONNACK code, 0x86 in MQTT 5).
    assert_ne!(
        publish(&b, "user1", "ABCDEFG", "colombia/cundinamarca/cajica/user1"),
        0
    );
    // (3) someone else's topic and a three-level topic: PUBACK 0x87.
    publish(&b, "user1", "123456", "colombia/cundinamarca/bogota/user2");
    publish(&b, "user1", "123456", "panama/colon/user1");
    let text = wait_value(
        mport,
        "mqtt_policy_decisions_total{access=\"write\",verdict=\"deny\"}",
        2,
    );
    for (series, n) in [
        // admin, user1's two allowed and two denied publishes.
        ("mqtt_policy_logins_total{outcome=\"ok\"}", 5),
        ("mqtt_policy_logins_total{outcome=\"wrong_password\"}", 1),
        (
            "mqtt_policy_decisions_total{access=\"write\",verdict=\"allow\"}",
            2,
        ),
        (
            "mqtt_policy_decisions_total{access=\"write\",verdict=\"deny\"}",
            2,
        ),
        (
            "mqtt_policy_decisions_total{access=\"read\",verdict=\"allow\"}",
            2,
        ),
        (
            "mqtt_policy_decisions_total{access=\"subscribe\",verdict=\"allow\"}",
            1,
        ),
        ("mqtt_policy_shadow_loaded", 0),
    ] {
        assert_eq!(value(&text, series), n, "{series} in\n{text}");
    }
    let acl = b.path("acl.txt").display().to_string();
    assert_eq!(
        value(
            &text,
            &format!("mqtt_policy_rule_hits_total{{file=\"{acl}\",line=\"1\"}}")
        ),
        2,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("mqtt_policy_rule_hits_total{{file=\"{acl}\",line=\"3\"}}")
        ),
        3,
        "{text}"
    );
    assert!(text.contains("mqtt_policy_decision_duration_seconds_count "));
    // The fingerprint of the bytes loaded: the acl file, a NUL, the password file.
    let fingerprint = |b: &Broker| {
        use sha2::Digest;
        let mut bytes = std::fs::read(b.path("acl.txt")).unwrap();
        bytes.push(0);
        bytes.extend(std::fs::read(b.path("users.txt")).unwrap());
        format!(
            "mqtt_policy_policy_info{{fingerprint=\"sha256:{:x}\"}}",
            sha2::Sha256::digest(&bytes)
        )
    };
    assert_eq!(value(&text, &fingerprint(&b)), 1, "{text}");
    std::fs::write(b.path("acl.txt"), "pattern read +/+/+/%u\n").unwrap();
    b.hup();
    let text = wait_value(mport, "mqtt_policy_reloads_total{result=\"ok\"}", 1);
    assert_eq!(
        value(&text, &fingerprint(&b)),
        1,
        "the new files' fingerprint: {text}"
    );
    std::fs::write(b.path("acl.txt"), "topic\n").unwrap();
    b.hup();
    let text = wait_value(mport, "mqtt_policy_reloads_total{result=\"failed\"}", 1);
    assert_eq!(
        value(&text, "mqtt_policy_reloads_total{result=\"failed\"}"),
        1,
        "{text}"
    );
}

#[test]
fn a_shadow_acl_that_disagrees_is_recorded_and_never_decides() {
    let mport = unused_port();
    let b = Broker::start(
        &conf(mport, "plugin_opt_shadow_acl_file {dir}/shadow.txt\n"),
        |dir| {
            tutorial_files(dir);
            std::fs::write(
                dir.join("shadow.txt"),
                "pattern read +/+/+/%u\nuser admin\ntopic readwrite #\n",
            )
            .unwrap();
        },
    );
    assert!(b.log().contains("shadow policy: acl file"), "{}", b.log());
    for _ in 0..3 {
        assert_eq!(
            publish(&b, "user1", "123456", "colombia/cundinamarca/cajica/user1"),
            0
        );
    }
    let records: Vec<_> = b
        .wait_audit(3)
        .into_iter()
        .filter(|r| r["kind"] == "shadow")
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records[0]["verdict"], "allow");
    assert_eq!(records[0]["access"], "write");
    assert_eq!(records[0]["shadow"]["verdict"], "deny");
    let text = scrape(mport);
    assert_eq!(value(&text, "mqtt_policy_shadow_loaded"), 1);
    assert_eq!(
        value(
            &text,
            "mqtt_policy_shadow_disagreements_total{access=\"write\"}"
        ),
        3
    );
    // Broken on reload: logged, absent, the live policy untouched.
    std::fs::write(b.path("shadow.txt"), "topic\n").unwrap();
    b.hup();
    let text = wait_value(mport, "mqtt_policy_shadow_loaded", 0);
    assert_eq!(value(&text, "mqtt_policy_shadow_loaded"), 0, "{text}");
    assert!(b
        .wait_log("the shadow policy is absent")
        .contains("the shadow policy is absent"));
    assert_eq!(
        publish(&b, "user1", "123456", "colombia/cundinamarca/cajica/user1"),
        0
    );
}

#[test]
fn a_shadow_file_that_does_not_parse_at_start_is_logged_and_the_broker_runs() {
    let mport = unused_port();
    let b = Broker::start(
        &conf(mport, "plugin_opt_shadow_acl_file {dir}/shadow.txt\n"),
        |dir| {
            tutorial_files(dir);
            std::fs::write(dir.join("shadow.txt"), "topic\n").unwrap();
        },
    );
    assert!(b.log().contains("shadow.txt"), "{}", b.log());
    assert_eq!(value(&scrape(mport), "mqtt_policy_shadow_loaded"), 0);
    assert_eq!(
        publish(&b, "user1", "123456", "colombia/cundinamarca/cajica/user1"),
        0
    );
}

#[test]
fn a_metrics_address_that_cannot_be_bound_stops_the_broker_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    tutorial_files(dir.path());
    let text = conf(0, "")
        .replace("127.0.0.1:0", &addr)
        .replace("{port}", &unused_port().to_string())
        .replace("{dir}", &dir.path().display().to_string());
    let conf_path = dir.path().join("mosquitto.conf");
    std::fs::write(&conf_path, text).unwrap();
    let out = Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_mqtt-policy"))
        .arg("broker")
        .arg("-c")
        .arg(&conf_path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr} for metrics")),
        "{stderr}"
    );
}

#[test]
fn deliveries_the_fan_out_remembers_are_still_counted_with_their_rule() {
    let mport = unused_port();
    let b = Broker::start(&conf(mport, ""), tutorial_files);
    let port = b.port.to_string();
    let subs: Vec<_> = ["admin-1", "admin-2", "admin-3"]
        .iter()
        .map(|id| {
            spawn_sub(&[
                "-p",
                &port,
                "-u",
                "admin",
                "-P",
                "admin1234",
                "-i",
                id,
                "-t",
                "#",
                "-C",
                "1",
                "-W",
                "10",
            ])
        })
        .collect();
    wait_value(
        mport,
        "mqtt_policy_decisions_total{access=\"subscribe\",verdict=\"allow\"}",
        3,
    );
    assert_eq!(
        publish(&b, "user1", "123456", "colombia/cundinamarca/cajica/user1"),
        0
    );
    for sub in subs {
        assert_eq!(finish(sub).lines().count(), 1);
    }
    let text = wait_value(
        mport,
        "mqtt_policy_decisions_total{access=\"read\",verdict=\"allow\"}",
        3,
    );
    assert_eq!(
        value(
            &text,
            "mqtt_policy_decisions_total{access=\"read\",verdict=\"allow\"}"
        ),
        3,
        "{text}"
    );
    let acl = b.path("acl.txt").display().to_string();
    // Three subscriptions and three deliveries by admin's `topic readwrite #` (line 3).
    assert_eq!(
        value(
            &text,
            &format!("mqtt_policy_rule_hits_total{{file=\"{acl}\",line=\"3\"}}")
        ),
        6,
        "{text}"
    );
}
