//! Metrics and the shadow policy, in the real mosquitto with the plugin (the scrape on every release, the
//! rest on Debian's 2.0.11): the tutorial's scenarios (user1 publishes to its own topic and the admin
//! receives it, a wrong password, denied topics) and then a scrape of `/metrics`
//! (`plugin_opt_metrics_listen`) that must count exactly them; a shadow acl file that disagrees writes
//! rate-limited `"kind":"shadow"` records while the live decision stands; a metrics address that cannot be
//! bound stops the broker, naming it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::plugin::{audit_records, plugin_path};
use crate::support::broker::MosquittoBroker;
use crate::support::clients::{v5, Endpoint, Login};
use crate::support::ports::unused_port;
use crate::support::tools::hashed_password_file;
use crate::support::versions::Version;

const TUTORIAL_ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

/// `GET /metrics` on `port` (bounded by timeouts); the body.
fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics listener");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the scrape");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("Content-Type: text/plain; version=0.0.4"),
        "{out}"
    );
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the series `series` (name and labels exactly as exposed); 0 when absent.
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.parse().unwrap())
}

fn broker(metrics_port: u16, extra: &str, files: &[(&str, &[u8])]) -> MosquittoBroker {
    broker_on(Version::Debian2011, metrics_port, extra, files)
}

fn broker_on(
    version: Version,
    metrics_port: u16,
    extra: &str,
    files: &[(&str, &[u8])],
) -> MosquittoBroker {
    MosquittoBroker::start_on(
        version,
        &format!(
            "plugin {}\n\
             plugin_opt_password_file {{dir}}/users.txt\n\
             plugin_opt_acl_file {{dir}}/acl.txt\n\
             plugin_opt_audit_log {{dir}}/audit.log\n\
             plugin_opt_metrics_listen 127.0.0.1:{metrics_port}\n{extra}",
            plugin_path()
        ),
        files,
    )
}

crate::per_version!(async a_scrape_during_the_tutorial_scenarios_counts_exactly_them);
async fn a_scrape_during_the_tutorial_scenarios_counts_exactly_them(version: Version) {
    let users = hashed_password_file(&[("admin", "adminpw"), ("user1", "user1pw")]);
    let port = unused_port();
    let broker = broker_on(
        version,
        port,
        "",
        &[("users.txt", &users), ("acl.txt", TUTORIAL_ACL.as_bytes())],
    );
    assert!(broker.log().contains(&format!(
        "serving metrics at http://127.0.0.1:{port}/metrics"
    )));
    let before = scrape(port);
    assert_eq!(
        value(&before, "mqtt_policy_logins_total{outcome=\"ok\"}"),
        0
    );
    assert!(before.contains("mqtt_policy_policy_info{fingerprint=\"sha256:"));

    let endpoint = Endpoint::tcp(broker.port());
    let mut admin = v5::connect(&endpoint, &Login::user("admin-sub", "admin", "adminpw"))
        .await
        .unwrap();
    assert_eq!(admin.subscribe("#", 1).await, [1]);
    let mut user1 = v5::connect(&endpoint, &Login::user("user1", "user1", "user1pw"))
        .await
        .unwrap();
    // (1) user1 publishes to its own topic, twice; the admin receives both.
    for _ in 0..2 {
        assert_eq!(
            user1
                .publish("colombia/cundinamarca/cajica/user1", 1, b"22")
                .await,
            Some(0)
        );
    }
    assert_eq!(admin.receive(2, Duration::from_secs(5)).await.len(), 2);
    // (2) a wrong password.
    assert!(
        v5::connect(&endpoint, &Login::user("user1-bad", "user1", "wrong"))
            .await
            .is_err()
    );
    // (3) someone else's topic and a three-level topic.
    assert_eq!(
        user1
            .publish("colombia/cundinamarca/bogota/user2", 1, b"x")
            .await,
        Some(0x87)
    );
    assert_eq!(
        user1.publish("panama/colon/user1", 1, b"x").await,
        Some(0x87)
    );

    let text = scrape(port);
    let expect = [
        ("mqtt_policy_logins_total{outcome=\"ok\"}", 2),
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
        ("mqtt_policy_withheld_deliveries_total", 0),
        ("mqtt_policy_shadow_loaded", 0),
    ];
    for (series, n) in expect {
        assert_eq!(value(&text, series), n, "{series} in\n{text}");
    }
    let acl = broker.path("acl.txt").display().to_string();
    // The pattern (line 1) allowed user1's two writes; admin's `topic readwrite #` (line 3) its
    // subscription and both deliveries.
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
    // No username or topic is ever a label.
    assert!(
        !text.contains("user1\"") && !text.contains("colombia"),
        "{text}"
    );

    let mut broker = broker;
    broker.reload();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while value(&scrape(port), "mqtt_policy_reloads_total{result=\"ok\"}") != 1 {
        assert!(std::time::Instant::now() < deadline, "no reload counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    user1.disconnect().await;
    admin.disconnect().await;
    let (_, log) = broker.stop();
    assert!(!log.contains("panicked"), "{log}");
    // The listener goes with the broker.
    assert!(!crate::support::ports::accepts_connections(
        port,
        Duration::from_secs(1)
    ));
}

#[tokio::test]
async fn a_shadow_acl_that_disagrees_is_recorded_rate_limited_and_never_decides() {
    let users = hashed_password_file(&[("admin", "adminpw"), ("user1", "user1pw")]);
    let port = unused_port();
    // The candidate makes the pattern read-only: user1's own writes would be denied.
    let shadow = "pattern read +/+/+/%u\nuser admin\ntopic readwrite #\n";
    let broker = broker(
        port,
        "plugin_opt_shadow_acl_file {dir}/shadow.txt\n",
        &[
            ("users.txt", &users),
            ("acl.txt", TUTORIAL_ACL.as_bytes()),
            ("shadow.txt", shadow.as_bytes()),
        ],
    );
    let endpoint = Endpoint::tcp(broker.port());
    let mut admin = v5::connect(&endpoint, &Login::user("admin-sub", "admin", "adminpw"))
        .await
        .unwrap();
    assert_eq!(admin.subscribe("#", 1).await, [1]);
    let mut user1 = v5::connect(&endpoint, &Login::user("user1", "user1", "user1pw"))
        .await
        .unwrap();
    let n = 70;
    for i in 0..n {
        // The live policy decides: every write is accepted and delivered.
        assert_eq!(
            user1
                .publish(
                    "colombia/cundinamarca/cajica/user1",
                    1,
                    format!("{i}").as_bytes()
                )
                .await,
            Some(0)
        );
    }
    assert_eq!(admin.receive(n, Duration::from_secs(10)).await.len(), n);
    let records: Vec<_> = audit_records(&broker)
        .into_iter()
        .filter(|r| r["kind"] == "shadow")
        .collect();
    assert_eq!(
        records.len(),
        60,
        "one record per disagreement, at most 60 a minute"
    );
    let r = &records[0];
    assert_eq!(r["verdict"], "allow");
    assert_eq!(r["access"], "write");
    assert_eq!(r["username"], "user1");
    assert!(r["rule"].as_str().unwrap().ends_with("acl.txt:1"), "{r}");
    assert_eq!(r["shadow"]["verdict"], "deny");
    assert_eq!(r["shadow"]["reason"]["kind"], "no_rule_matched");
    let text = scrape(port);
    assert_eq!(value(&text, "mqtt_policy_shadow_loaded"), 1);
    assert_eq!(
        value(
            &text,
            "mqtt_policy_shadow_disagreements_total{access=\"write\"}"
        ),
        n as u64
    );
    assert_eq!(
        value(&text, "mqtt_policy_shadow_records_suppressed_total"),
        n as u64 - 60
    );
    assert_eq!(
        value(
            &text,
            "mqtt_policy_shadow_disagreements_total{access=\"read\"}"
        ),
        0
    );

    // A shadow file broken on reload: logged, the shadow absent, the live policy untouched.
    let mut broker = broker;
    broker.write_file("shadow.txt", b"topic\n");
    broker.reload();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while value(&scrape(port), "mqtt_policy_shadow_loaded") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the shadow is still reported loaded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        broker.log().contains("the shadow policy is absent"),
        "{}",
        broker.log()
    );
    assert_eq!(
        user1
            .publish("colombia/cundinamarca/cajica/user1", 1, b"after")
            .await,
        Some(0)
    );
    assert_eq!(
        user1.publish("panama/colon/user1", 1, b"x").await,
        Some(0x87)
    );
    user1.disconnect().await;
    admin.disconnect().await;
    broker.stop();
}

#[test]
fn a_metrics_address_that_cannot_be_bound_stops_mosquitto_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let exited = MosquittoBroker::start_expect_exit(
        &format!(
            "allow_anonymous true\nplugin {}\nplugin_opt_acl_file {{dir}}/acl.txt\nplugin_opt_metrics_listen {addr}\n",
            plugin_path()
        ),
        &[("acl.txt", TUTORIAL_ACL.as_bytes())],
    );
    assert_ne!(exited.code, Some(0), "{}", exited.log);
    assert!(
        exited
            .log
            .contains(&format!("cannot listen on {addr} for metrics")),
        "{}",
        exited.log
    );
}
