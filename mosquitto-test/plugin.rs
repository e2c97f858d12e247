//! The plugin (`target/release/libmqtt_policy.so`) inside the real Debian mosquitto 2.0.11; the tests
//! written with [`per_version!`](crate::per_version) run on every release of
//! [`Version`](crate::support::versions::Version) (2.0.11, 2.0.22, 2.1.2).
//!
//! The first test that needs the plugin runs `cargo build --release --lib` once for the whole test
//! process ([`plugin_path`]), so `cargo test --test mosquitto plugin` always tests the current code.
//! Every test starts its own broker (`user root`, files in a private directory, see
//! [`crate::support::broker`]) with `plugin <absolute path>` and `plugin_opt_*` lines, and no built-in
//! `password_file` / `acl_file`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::broker::MosquittoBroker;
use crate::support::clients::{v311, v5, Endpoint, Login};
use crate::support::process::ChildGuard;
use crate::support::tools::mosquitto_pub;
use crate::support::versions::Version;

/// The tutorial's acl file.
const TUTORIAL_ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

/// How long to wait for a message that must not arrive.
const QUIET: Duration = Duration::from_millis(700);

/// Builds the plugin once per test process (release, as installed) and returns the `.so`'s absolute path.
pub(crate) fn plugin_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args(["build", "--release", "--lib", "--message-format=json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo build --release --lib");
        assert!(
            output.status.success(),
            "cargo build --release --lib failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let so = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "mqtt_policy")
            .flat_map(|m| {
                m["filenames"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
            })
            .find(|f| f.ends_with(".so"))
            .expect("cargo reports the cdylib libmqtt_policy.so");
        let so = PathBuf::from(so);
        assert!(so.is_absolute() && so.exists(), "{}", so.display());
        so.display().to_string()
    })
}

/// `plugin <path>` followed by `options` (lines with `{dir}` for the broker's directory).
fn plugin_config(options: &str) -> String {
    format!("plugin {}\n{options}", plugin_path())
}

/// A broker with the plugin enforcing `acl` (acl file only: any login is accepted, as without a password
/// file), audit records in `{dir}/audit.log`.
fn acl_broker(acl: &str) -> MosquittoBroker {
    acl_broker_on(Version::Debian2011, acl)
}

/// [`acl_broker`] on release `version`.
pub(crate) fn acl_broker_on(version: Version, acl: &str) -> MosquittoBroker {
    MosquittoBroker::start_on(
        version,
        &plugin_config(
            "allow_anonymous true\n\
             plugin_opt_acl_file {dir}/acl.txt\n\
             plugin_opt_audit_log {dir}/audit.log\n",
        ),
        &[("acl.txt", acl.as_bytes())],
    )
}

/// The audit log's records.
pub(crate) fn audit_records(broker: &MosquittoBroker) -> Vec<Value> {
    std::fs::read_to_string(broker.path("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("audit line {line:?}: {e}"))
        })
        .collect()
}

fn user(id: &str, name: &str) -> Login {
    Login::user(id, name, "any password")
}

/// Starts `mosquitto_sub -i ID -F %t -W SECONDS ARGS...` in the background and waits (bounded) until the
/// broker has sent its SUBACK. Collect what it printed with `ChildGuard::finish` once it has ended.
///
/// (`support::tools::MosquittoSub` waits for mosquitto_sub's `-d` lines on a pipe, where they are
/// block-buffered until it exits; this helper reads the broker's log instead.)
fn background_sub(broker: &MosquittoBroker, id: &str, seconds: u32, args: &[&str]) -> ChildGuard {
    let child = ChildGuard::spawn(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args(["-i", id, "-F", "%t", "-W", &seconds.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "mosquitto_sub",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker.log().contains(&format!("Sending SUBACK to {id}")) {
        assert!(
            Instant::now() < deadline,
            "mosquitto_sub {id} got no SUBACK; log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn plugin_loads_and_enforces_the_tutorial_acl_with_mosquitto_clients() {
    let broker = acl_broker(TUTORIAL_ACL);
    let port = broker.port();
    let admin = background_sub(
        &broker,
        "admin-sub",
        3,
        &["-u", "admin", "-P", "x", "-t", "#"],
    );
    for topic in [
        "colombia/cundinamarca/bogota/user2",
        "panama/colon/user1",
        "colombia/cundinamarca/cajica/user1",
    ] {
        let out = mosquitto_pub(port, &["-u", "user1", "-P", "x", "-t", topic, "-m", topic]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = admin.finish(Duration::from_secs(10));
    let received = String::from_utf8_lossy(&out.stdout);
    let topics: Vec<&str> = received.lines().collect();
    assert_eq!(
        topics,
        ["colombia/cundinamarca/cajica/user1"],
        "log:\n{}",
        broker.log()
    );
    assert!(broker.log().contains("mqtt-policy: using acl file"));
}

crate::per_version!(async denied_publishes_get_v5_reason_code_0x87_and_one_audit_record_each);
async fn denied_publishes_get_v5_reason_code_0x87_and_one_audit_record_each(version: Version) {
    let broker = acl_broker_on(version, TUTORIAL_ACL);
    let endpoint = Endpoint::tcp(broker.port());
    let mut user1 = v5::connect(&endpoint, &user("u1", "user1")).await.unwrap();
    assert_eq!(user1.publish("a/b/c/user1", 1, b"ok").await, Some(0x10));
    assert_eq!(
        user1.publish("panama/colon/user1", 1, b"no").await,
        Some(0x87)
    );
    assert_eq!(user1.publish("x/y/z/user2", 2, b"no").await, Some(0x87));
    assert_eq!(user1.publish("user1", 0, b"no").await, None);
    // The session survives denials: an allowed publish still works.
    assert_eq!(user1.publish("a//c/user1", 1, b"ok").await, Some(0x10));
    user1.disconnect().await;

    let records = audit_records(&broker);
    let topics: Vec<&str> = records
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["panama/colon/user1", "x/y/z/user2", "user1"]);
    for r in &records {
        assert_eq!(r["access"], "write");
        assert_eq!(r["username"], "user1");
        assert_eq!(r["client_id"], "u1");
        assert_eq!(r["address"], "127.0.0.1");
        assert_eq!(r["verdict"], "deny");
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["reason"]["kind"], "no_rule_matched");
        assert!(r["message"].as_str().unwrap().contains("no rule matched"));
    }
}

#[tokio::test]
async fn a_deny_rule_is_named_by_file_and_line_in_the_audit_record() {
    let acl = "pattern readwrite +/+/+/%u\nuser user1\ntopic deny x/y/z/user1\n";
    let broker = acl_broker(acl);
    let endpoint = Endpoint::tcp(broker.port());
    let mut user1 = v5::connect(&endpoint, &user("u1", "user1")).await.unwrap();
    assert_eq!(user1.publish("x/y/z/user1", 1, b"no").await, Some(0x87));
    user1.disconnect().await;
    let records = audit_records(&broker);
    assert_eq!(records.len(), 1);
    let acl_path = broker.path("acl.txt").display().to_string();
    assert_eq!(records[0]["rule"], format!("{acl_path}:3"));
    assert_eq!(
        records[0]["reason"]["rule"]["text"],
        "topic deny x/y/z/user1"
    );
}

crate::per_version!(async subscriptions_that_can_never_deliver_are_refused_and_others_granted);
async fn subscriptions_that_can_never_deliver_are_refused_and_others_granted(version: Version) {
    let broker = acl_broker_on(version, TUTORIAL_ACL);
    let endpoint = Endpoint::tcp(broker.port());
    let mut v5_user1 = v5::connect(&endpoint, &user("u5", "user1")).await.unwrap();
    assert_eq!(v5_user1.subscribe("a/b", 1).await, [0x87]);
    assert_eq!(v5_user1.subscribe("+/+/+/user1", 1).await, [0x01]);
    assert_eq!(v5_user1.subscribe("#", 0).await, [0x00]);
    v5_user1.disconnect().await;

    let mut v3_user1 = v311::connect(&endpoint, &user("u3", "user1"))
        .await
        .unwrap();
    assert_eq!(v3_user1.subscribe("a/b", 1).await, [0x80]);
    assert_eq!(v3_user1.subscribe("+/+/+/user1", 1).await, [0x01]);
    assert_eq!(v3_user1.subscribe("#", 0).await, [0x00]);
    v3_user1.disconnect().await;

    let records = audit_records(&broker);
    assert_eq!(records.len(), 2, "{records:?}");
    for (r, id) in records.iter().zip(["u5", "u3"]) {
        assert_eq!(r["access"], "subscribe");
        assert_eq!(r["topic"], "a/b");
        assert_eq!(r["client_id"], id);
        assert_eq!(r["reason"]["kind"], "subscription_never_delivers");
    }
}

/// `plugin_opt_refuse_subscriptions false`: every SUBSCRIBE granted, as by mosquitto's built-in
/// acl_file (asked side by side here), and reads still checked per message.
#[tokio::test]
async fn refuse_subscriptions_false_grants_every_subscribe_as_the_built_in_acl_file_does() {
    let ours = MosquittoBroker::start(
        &plugin_config(
            "allow_anonymous true\n\
             plugin_opt_acl_file {dir}/acl.txt\n\
             plugin_opt_audit_log {dir}/audit.log\n\
             plugin_opt_refuse_subscriptions false\n",
        ),
        &[("acl.txt", TUTORIAL_ACL.as_bytes())],
    );
    let builtin = MosquittoBroker::start(
        "allow_anonymous true\nacl_file {dir}/acl.txt\n",
        &[("acl.txt", TUTORIAL_ACL.as_bytes())],
    );
    for broker in [&ours, &builtin] {
        let endpoint = Endpoint::tcp(broker.port());
        let mut v5_user1 = v5::connect(&endpoint, &user("u5", "user1")).await.unwrap();
        assert_eq!(v5_user1.subscribe("a/b", 1).await, [0x01]);
        assert_eq!(v5_user1.subscribe("+/+/+/user1", 1).await, [0x01]);
        v5_user1.disconnect().await;
        let mut v3_user1 = v311::connect(&endpoint, &user("u3", "user1"))
            .await
            .unwrap();
        assert_eq!(v3_user1.subscribe("a/b", 1).await, [0x01]);
        v3_user1.disconnect().await;
    }
    // Granted, but nothing user1 may not read is delivered: the read check still applies.
    let sub = background_sub(
        &ours,
        "reader",
        2,
        &["-u", "user1", "-t", "a/b", "-t", "+/+/+/user1"],
    );
    let endpoint = Endpoint::tcp(ours.port());
    let mut admin = v5::connect(&endpoint, &user("pub", "admin")).await.unwrap();
    admin.publish("a/b", 1, b"not for user1").await;
    admin.publish("x/y/z/user1", 1, b"for user1").await;
    admin.disconnect().await;
    let printed = String::from_utf8_lossy(&sub.finish(Duration::from_secs(10)).stdout).into_owned();
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        ["x/y/z/user1"],
        "{printed}"
    );
    let records = audit_records(&ours);
    assert!(
        records.iter().all(|r| r["access"] != "subscribe"),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["access"] == "read" && r["topic"] == "a/b"),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_hash_subscriber_receives_only_readable_topics_and_withheld_ones_are_recorded_once() {
    let broker = acl_broker(TUTORIAL_ACL);
    let endpoint = Endpoint::tcp(broker.port());
    let mut reader = v5::connect(&endpoint, &user("reader", "user1"))
        .await
        .unwrap();
    assert_eq!(reader.subscribe("#", 0).await, [0x00]);
    let mut admin = v5::connect(&endpoint, &user("adm", "admin")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(admin.publish("x/y/z/user2", 1, b"secret").await, Some(0x00));
    }
    assert_eq!(admin.publish("a/b/c/user1", 1, b"mine").await, Some(0x00));
    let got = reader.receive(4, QUIET).await;
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, ["a/b/c/user1"]);
    admin.disconnect().await;
    reader.disconnect().await;

    let records = audit_records(&broker);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["access"], "read");
    assert_eq!(records[0]["topic"], "x/y/z/user2");
    assert_eq!(records[0]["client_id"], "reader");
}

#[tokio::test]
async fn without_an_audit_log_records_go_to_the_broker_log() {
    let broker = MosquittoBroker::start(
        &plugin_config("allow_anonymous true\nplugin_opt_acl_file {dir}/acl.txt\n"),
        &[("acl.txt", TUTORIAL_ACL.as_bytes())],
    );
    let endpoint = Endpoint::tcp(broker.port());
    let mut user1 = v5::connect(&endpoint, &user("u1", "user1")).await.unwrap();
    assert_eq!(
        user1.publish("panama/colon/user1", 1, b"no").await,
        Some(0x87)
    );
    user1.disconnect().await;
    let log = broker.log();
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("mqtt-policy audit: ").map(|(_, json)| json))
        .collect();
    assert_eq!(lines.len(), 1, "log:\n{log}");
    let record: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(record["topic"], "panama/colon/user1");
    assert_eq!(record["address"], "127.0.0.1");
}

crate::per_version!(async sighup_applies_a_good_acl_file_and_keeps_the_old_policy_for_a_malformed_one);
async fn sighup_applies_a_good_acl_file_and_keeps_the_old_policy_for_a_malformed_one(
    version: Version,
) {
    let mut broker = acl_broker_on(version, TUTORIAL_ACL);
    let endpoint = Endpoint::tcp(broker.port());
    let mut user1 = v5::connect(&endpoint, &user("u1", "user1")).await.unwrap();
    assert_eq!(user1.publish("free/x", 1, b"").await, Some(0x87));

    broker.write_file("acl.txt", b"user user1\ntopic readwrite free/#\n");
    broker.reload();
    assert_eq!(user1.publish("free/x", 1, b"").await, Some(0x10));
    assert_eq!(user1.publish("a/b/c/user1", 1, b"").await, Some(0x87));

    broker.write_file(
        "acl.txt",
        b"user user1\ntopic readwrite free/#\n  # indented\n",
    );
    broker.reload();
    assert_eq!(
        user1.publish("free/x", 1, b"").await,
        Some(0x10),
        "old policy kept"
    );
    assert_eq!(
        user1.publish("a/b/c/user1", 1, b"").await,
        Some(0x87),
        "no fail-open"
    );
    let log = broker.log();
    let acl_path = broker.path("acl.txt").display().to_string();
    assert!(
        log.lines().any(
            |l| l.contains("reload failed, the previous policy stays in force")
                && l.contains(&format!("{acl_path}:3"))
        ),
        "log:\n{log}"
    );

    std::fs::remove_file(broker.path("acl.txt")).unwrap();
    broker.reload();
    assert_eq!(
        user1.publish("a/b/c/user1", 1, b"").await,
        Some(0x87),
        "no fail-open"
    );
    assert!(broker.log().contains("cannot read the acl file"));
    user1.disconnect().await;
}

/// Starts a broker that must refuse to start; returns its log after checking the exit code.
fn refused(options: &str, files: &[(&str, &[u8])]) -> String {
    let exited = MosquittoBroker::start_expect_exit(&plugin_config(options), files);
    assert_ne!(exited.code, Some(0), "log:\n{}", exited.log);
    assert!(
        exited.code.is_some(),
        "died from a signal; log:\n{}",
        exited.log
    );
    exited.log
}

#[test]
fn the_broker_refuses_to_start_on_an_unknown_option() {
    let log = refused("plugin_opt_acl_flie {dir}/acl.txt\n", &[]);
    assert!(
        log.contains("unknown option plugin_opt_acl_flie"),
        "log:\n{log}"
    );
    assert!(
        log.contains("Plugin returned 3 when initialising"),
        "log:\n{log}"
    );
}

#[test]
fn the_broker_refuses_to_start_on_a_missing_acl_file() {
    let log = refused("plugin_opt_acl_file {dir}/missing.txt\n", &[]);
    assert!(
        log.contains("cannot read the acl file") && log.contains("missing.txt\""),
        "log:\n{log}"
    );
    assert!(log.contains("plugin_opt_acl_file"), "log:\n{log}");
}

#[test]
fn the_broker_refuses_to_start_on_a_malformed_acl_line() {
    let acl = b"user user1\ntopic read a/#/b\n";
    let exited = MosquittoBroker::start_expect_exit(
        &plugin_config("plugin_opt_acl_file {dir}/acl.txt\n"),
        &[("acl.txt", acl)],
    );
    assert_eq!(exited.code, Some(3), "log:\n{}", exited.log);
    assert!(
        exited
            .log
            .contains("acl.txt:2: invalid ACL topic \"a/#/b\""),
        "log:\n{}",
        exited.log
    );
}

#[test]
fn the_broker_refuses_to_start_on_an_unwritable_audit_log() {
    let log = refused(
        "plugin_opt_acl_file {dir}/acl.txt\nplugin_opt_audit_log {dir}/no/such/dir/audit.log\n",
        &[("acl.txt", TUTORIAL_ACL.as_bytes())],
    );
    assert!(log.contains("plugin_opt_audit_log"), "log:\n{log}");
}

/// Lines made by Debian's `mosquitto_passwd` 2.0.11 (mosquitto-semantics §3.2): user1 `123456`
/// (`$7$`, 101 iterations), user2 `secret2`.
const USER1_USER2: &str = "\
user1:$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==
user2:$7$101$cbb6UlRtKQsdTbHQ$l04PMHHgpMalkiyY6ku/JcCwLz1atVbfIliJojevxyAZ5Aow7dwKLirkhENynMNkE5V5F+DReijr/gi+NOiMgA==
";

/// The admin's password (hashed by `mosquitto_passwd -U` in [`tutorial_password_file`]).
const ADMIN_PASSWORD: &str = "admin-pw-7f3a";

/// The tutorial's users: user1 / 123456, user2 / secret2, admin / [`ADMIN_PASSWORD`], hashed by Mosquitto's
/// own tool.
fn tutorial_password_file() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("admin.txt");
    crate::support::tools::write_password_file(&path, &[("admin", ADMIN_PASSWORD)]);
    let admin = std::fs::read_to_string(&path).expect("read the hashed admin line");
    format!("{USER1_USER2}{admin}").into_bytes()
}

/// The tutorial's deployment on the plugin: password file, acl file, audit log, no anonymous clients.
fn tutorial_broker() -> MosquittoBroker {
    MosquittoBroker::start(
        &plugin_config(
            "allow_anonymous false\n\
             plugin_opt_password_file {dir}/users.txt\n\
             plugin_opt_acl_file {dir}/acl.txt\n\
             plugin_opt_audit_log {dir}/audit.log\n",
        ),
        &[
            ("users.txt", &tutorial_password_file()),
            ("acl.txt", TUTORIAL_ACL.as_bytes()),
        ],
    )
}

#[tokio::test]
async fn the_tutorial_scenarios_hold_with_passwords() {
    let broker = tutorial_broker();
    let endpoint = Endpoint::tcp(broker.port());
    let mut admin = v5::connect(&endpoint, &Login::user("adm", "admin", ADMIN_PASSWORD))
        .await
        .expect("admin logs in");
    assert_eq!(admin.subscribe("#", 0).await, [0x00]);
    let mut user1 = v5::connect(&endpoint, &Login::user("u1", "user1", "123456"))
        .await
        .expect("user1 logs in");
    // 1. user1 publishes on its own topic; admin, on `#`, receives it.
    assert_eq!(
        user1
            .publish("colombia/cundinamarca/cajica/user1", 1, b"own")
            .await,
        Some(0x00)
    );
    // 3. another user's topic and a three-level topic are refused and never delivered.
    assert_eq!(
        user1
            .publish("colombia/cundinamarca/bogota/user2", 1, b"other")
            .await,
        Some(0x87)
    );
    assert_eq!(
        user1.publish("panama/colon/user1", 1, b"short").await,
        Some(0x87)
    );
    let got = admin.receive(3, QUIET).await;
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, ["colombia/cundinamarca/cajica/user1"]);
    user1.disconnect().await;
    admin.disconnect().await;

    // 2. a wrong password is refused: CONNACK 5 (3.1.1) / 0x87 (5); a plugin cannot produce 4 / 0x86.
    assert_eq!(
        v5::connect(&endpoint, &Login::user("w5", "user1", "1234567"))
            .await
            .err(),
        Some(0x87)
    );
    assert_eq!(
        v311::connect(&endpoint, &Login::user("w3", "user1", "1234567"))
            .await
            .err(),
        Some(5)
    );
    let out = mosquitto_pub(
        broker.port(),
        &["-u", "user1", "-P", "wrong", "-t", "a/b/c/user1", "-m", "x"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not authori"),
        "{out:?}"
    );
}

#[tokio::test]
async fn login_denials_are_audited_without_passwords() {
    let broker = tutorial_broker();
    let endpoint = Endpoint::tcp(broker.port());
    assert_eq!(
        v5::connect(&endpoint, &Login::user("w1", "user1", "pw-wrong-1"))
            .await
            .err(),
        Some(0x87)
    );
    assert_eq!(
        v311::connect(&endpoint, &Login::user("w2", "nobody", "pw-wrong-2"))
            .await
            .err(),
        Some(5)
    );
    let records = audit_records(&broker);
    assert_eq!(records.len(), 2, "{records:?}");
    let expected = [
        ("w1", "user1", "wrong_password"),
        ("w2", "nobody", "unknown_user"),
    ];
    for (r, (id, name, kind)) in records.iter().zip(expected) {
        assert_eq!(r["access"], "connect");
        assert_eq!(r["client_id"], id);
        assert_eq!(r["username"], name);
        assert_eq!(r["address"], "127.0.0.1");
        assert_eq!(r["reason"]["kind"], kind);
        assert!(r["time"].is_string());
    }
    let audit = std::fs::read_to_string(broker.path("audit.log")).unwrap();
    let log = broker.log();
    for secret in ["pw-wrong-1", "pw-wrong-2"] {
        assert!(!audit.contains(secret) && !log.contains(secret));
    }
}

/// The CONNACK (MQTT 5) a login gets: 0 accepted, else the reason code.
fn login_code(port: u16, username: Option<&str>, password: Option<&[u8]>) -> u8 {
    use crate::support::wire::{Connect, WireClient};
    let connect = Connect {
        client_id: "login-probe",
        username,
        password,
    };
    match WireClient::connect(port, &connect).expect("CONNECT gets an answer") {
        Ok(client) => {
            client.disconnect();
            0
        }
        Err(code) => code,
    }
}

#[test]
fn logins_come_out_exactly_as_with_the_built_in_password_file() {
    let users = USER1_USER2.as_bytes();
    let logins: [(Option<&str>, Option<&[u8]>); 7] = [
        (None, None),
        (Some("user1"), Some(b"123456")),
        (Some("user1"), Some(b"12345")),
        (Some("user1"), None),
        (Some("user2"), Some(b"secret2")),
        (Some("nobody"), Some(b"x")),
        (Some(""), Some(b"x")),
    ];
    for anonymous in ["true", "false"] {
        let builtin = MosquittoBroker::start(
            &format!("allow_anonymous {anonymous}\npassword_file {{dir}}/users.txt\n"),
            &[("users.txt", users)],
        );
        let plugin = MosquittoBroker::start(
            &plugin_config(&format!(
                "allow_anonymous {anonymous}\nplugin_opt_password_file {{dir}}/users.txt\n"
            )),
            &[("users.txt", users)],
        );
        for (username, password) in logins {
            let want = login_code(builtin.port(), username, password);
            let got = login_code(plugin.port(), username, password);
            assert_eq!(
                got, want,
                "allow_anonymous {anonymous}, username {username:?}, password {password:?}"
            );
        }
    }
}

#[tokio::test]
async fn sighup_reloads_the_password_file_and_keeps_it_when_it_disappears() {
    let mut broker = tutorial_broker();
    let endpoint = Endpoint::tcp(broker.port());
    let user3 = || Login::user("u3", "user3", "123456");
    assert_eq!(v5::connect(&endpoint, &user3()).await.err(), Some(0x87));
    let user3_line = "user3:$6$Qd+ss9ZjBUacpaD4$xBgUxHmOTPK60J/1XB0QqeVFXq5IT+cJG37ZVr3/L6n/GKQ0gOrcbeW64/LGx7Ym+0y52Z95MN9BlcxrC99v5w==\n";
    broker.write_file("users.txt", format!("{USER1_USER2}{user3_line}").as_bytes());
    broker.reload();
    v5::connect(&endpoint, &user3())
        .await
        .expect("user3 added by the reload")
        .disconnect()
        .await;

    std::fs::remove_file(broker.path("users.txt")).unwrap();
    broker.reload();
    v5::connect(&endpoint, &user3())
        .await
        .expect("the previous password file stays in force")
        .disconnect()
        .await;
    let log = broker.log();
    assert!(
        log.contains("reload failed, the previous policy stays in force")
            && log.contains("users.txt"),
        "log:\n{log}"
    );
}

#[test]
fn the_broker_refuses_to_start_on_a_missing_password_file() {
    let log = refused("plugin_opt_password_file {dir}/nope.txt\n", &[]);
    assert!(
        log.contains("nope.txt") && log.contains("plugin_opt_password_file"),
        "log:\n{log}"
    );
}

#[test]
fn sighup_disconnects_a_connected_client_whose_credentials_no_longer_verify() {
    use crate::support::wire::{Connect, WireClient};
    let mut broker = tutorial_broker();
    let login = |id| Connect {
        client_id: id,
        username: Some("user1"),
        password: Some(b"123456"),
    };
    let mut user1 = WireClient::connect(broker.port(), &login("stays-u1"))
        .expect("connect")
        .expect("user1 logs in");
    user1.sync().expect("user1 is connected");
    // user1 disappears from the password file; user2 stays.
    let user2_only: String = USER1_USER2
        .lines()
        .filter(|l| l.starts_with("user2:"))
        .map(|l| format!("{l}\n"))
        .collect();
    broker.write_file("users.txt", user2_only.as_bytes());
    broker.reload();
    // Mosquitto re-runs BASIC_AUTH for every client on reload; ours now refuses user1, so it is disconnected.
    assert!(
        user1.sync().is_err(),
        "user1 should have been disconnected by the reload\n{}",
        broker.log()
    );
    assert!(matches!(
        WireClient::connect(broker.port(), &login("new-u1")),
        Ok(Err(0x87))
    ));
    let audit = std::fs::read_to_string(broker.path("audit.log")).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"connect\"")
            && l.contains("stays-u1")
            && l.contains("unknown_user")),
        "the reload's refusal is audited:\n{audit}"
    );
}
