//! The standalone broker with real clients (mosquitto_pub / mosquitto_sub): the tutorial's scenarios,
//! CONNACK codes, MQTT 5 reason codes, retained messages, persistent sessions and audit records.

mod broker_support;

use std::time::Duration;

use broker_support::{finish, make_certs, mosquitto, spawn_sub, tutorial_files, Broker, RawClient};
use mqtt_policy::broker::codec::Version;

fn settle() {
    // Lets a background subscriber's SUBSCRIBE reach the broker.
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn a_wrong_password_gets_connack_4_and_a_right_one_0() {
    let b = Broker::tutorial();
    let port = b.port.to_string();
    let ok = mosquitto(
        "mosquitto_pub",
        &[
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "a/b/c/user1",
            "-m",
            "x",
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let bad = mosquitto(
        "mosquitto_pub",
        &[
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "ABCDEFG",
            "-t",
            "a/b/c/user1",
            "-m",
            "x",
        ],
    );
    // mosquitto_pub exits with the CONNACK code.
    assert_eq!(bad.status.code(), Some(4), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad user name or password"));
    let bad5 = mosquitto(
        "mosquitto_pub",
        &[
            "-V",
            "mqttv5",
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "ABCDEFG",
            "-t",
            "a/b/c/user1",
            "-m",
            "x",
        ],
    );
    assert_eq!(bad5.status.code(), Some(0x86), "{bad5:?}");
    let anon = mosquitto(
        "mosquitto_pub",
        &["-p", &port, "-t", "a/b/c/user1", "-m", "x"],
    );
    assert_eq!(anon.status.code(), Some(5), "{anon:?}");
    let anon5 = mosquitto(
        "mosquitto_pub",
        &["-V", "mqttv5", "-p", &port, "-t", "a/b/c/user1", "-m", "x"],
    );
    assert_eq!(anon5.status.code(), Some(0x87), "{anon5:?}");
    let records = b.wait_audit(4);
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["reason"]["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "wrong_password",
            "wrong_password",
            "anonymous_not_allowed",
            "anonymous_not_allowed"
        ]
    );
    assert!(records.iter().all(|r| r["access"] == "connect"));
    let text = std::fs::read_to_string(b.path("audit.log")).unwrap();
    assert!(
        !text.contains("ABCDEFG"),
        "a password reached the audit log"
    );
}

#[test]
fn the_tutorial_scenarios_over_tls_1_2() {
    let b = Broker::start(
        "port {port}\nacl_file {dir}/acl.txt\nallow_anonymous false\npassword_file {dir}/users.txt\ncafile {dir}/ca.crt\nkeyfile {dir}/server.key\ncertfile {dir}/server.crt\ntls_version tlsv1.2\n",
        |dir| {
            tutorial_files(dir);
            make_certs(dir);
        },
    );
    let port = b.port.to_string();
    let ca = b.path("ca.crt").display().to_string();
    let tls = [
        "--cafile",
        ca.as_str(),
        "--tls-version",
        "tlsv1.2",
        "-h",
        "localhost",
    ];
    let mut sub_args = vec![
        "-p",
        &port,
        "-u",
        "admin",
        "-P",
        "admin1234",
        "-t",
        "#",
        "-q",
        "1",
        "-v",
        "-W",
        "8",
        "-C",
        "2",
    ];
    sub_args.extend_from_slice(&tls);
    let sub = spawn_sub(&sub_args);
    settle();
    let publish = |user: &str, pass: &str, topic: &str| {
        let mut args = vec![
            "-p",
            &port,
            "-u",
            user,
            "-P",
            pass,
            "-t",
            topic,
            "-m",
            "MQTT Test",
            "-q",
            "1",
        ];
        args.extend_from_slice(&tls);
        mosquitto("mosquitto_pub", &args)
    };
    // Scenario 1: own topic.
    assert_eq!(
        publish("user1", "123456", "colombia/cundinamarca/cajica/user1")
            .status
            .code(),
        Some(0)
    );
    // Scenario 2: wrong password.
    assert_eq!(
        publish("user1", "ABCDEFG", "colombia/cundinamarca/cajica/user1")
            .status
            .code(),
        Some(4)
    );
    // Scenario 3: someone else's topic, a one-level topic, a three-level topic: silently dropped.
    for topic in [
        "colombia/cundinamarca/bogota/user2",
        "user1",
        "panama/colon/user1",
    ] {
        assert_eq!(publish("user1", "123456", topic).status.code(), Some(0));
    }
    assert_eq!(
        publish("user1", "123456", "mexico/jalisco/guadalajara/user1")
            .status
            .code(),
        Some(0)
    );
    let out = finish(sub);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "colombia/cundinamarca/cajica/user1 MQTT Test",
            "mexico/jalisco/guadalajara/user1 MQTT Test"
        ]
    );
    let records = b.wait_audit(4);
    let writes: Vec<&str> = records
        .iter()
        .filter(|r| r["access"] == "write")
        .map(|r| r["topic"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        writes,
        [
            "colombia/cundinamarca/bogota/user2",
            "user1",
            "panama/colon/user1"
        ]
    );
    // Plain TCP is not accepted on a TLS listener.
    let plain = mosquitto(
        "mosquitto_pub",
        &[
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "a/b/c/user1",
            "-m",
            "x",
        ],
    );
    assert_ne!(plain.status.code(), Some(0));
}

#[test]
fn a_denied_qos_1_publish_from_mqtt_5_gets_puback_0x87_and_3_1_1_a_plain_puback() {
    let b = Broker::tutorial();
    let port = b.port.to_string();
    let v5 = mosquitto(
        "mosquitto_pub",
        &[
            "-V",
            "mqttv5",
            "-d",
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "x/y/z/user2",
            "-m",
            "x",
            "-q",
            "1",
        ],
    );
    let text = String::from_utf8_lossy(&v5.stdout);
    assert!(text.contains("received PUBACK (Mid: 1, RC:135)"), "{text}");
    let v5q2 = mosquitto(
        "mosquitto_pub",
        &[
            "-V",
            "mqttv5",
            "-d",
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "x/y/z/user2",
            "-m",
            "x",
            "-q",
            "2",
        ],
    );
    let text = String::from_utf8_lossy(&v5q2.stdout);
    // libmosquitto logs PUBREC without its code; a refused PUBREC ends the flow without PUBREL.
    assert!(text.contains("received PUBREC (Mid: 1)"), "{text}");
    assert!(!text.contains("sending PUBREL"), "{text}");
    let v4 = mosquitto(
        "mosquitto_pub",
        &[
            "-d",
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "x/y/z/user2",
            "-m",
            "x",
            "-q",
            "1",
        ],
    );
    let text = String::from_utf8_lossy(&v4.stdout);
    assert!(text.contains("received PUBACK (Mid: 1, RC:0)"), "{text}");
    assert_eq!(v4.status.code(), Some(0));
    let records = b.wait_audit(3);
    assert_eq!(records.len(), 3);
    let r = &records[0];
    assert_eq!(r["access"], "write");
    assert_eq!(r["username"], "user1");
    assert_eq!(r["reason"]["kind"], "no_rule_matched");
    assert!(r["near_misses"][0]["rule"]["line"] == 1);
}

#[test]
fn a_subscription_that_can_never_deliver_gets_suback_0x87_or_0x80() {
    let b = Broker::tutorial();
    let port = b.port.to_string();
    // Two levels can never match `+/+/+/%u`.
    let v5 = mosquitto(
        "mosquitto_sub",
        &[
            "-V", "mqttv5", "-d", "-p", &port, "-u", "user1", "-P", "123456", "-t", "x/y", "-W",
            "2", "-C", "1",
        ],
    );
    let text = String::from_utf8_lossy(&v5.stdout);
    assert!(text.contains("received SUBACK"), "{text}");
    assert!(text.contains("Subscribed (mid: 1): 135"), "{text}");
    let v4 = mosquitto(
        "mosquitto_sub",
        &[
            "-d", "-p", &port, "-u", "user1", "-P", "123456", "-t", "x/y", "-W", "2", "-C", "1",
        ],
    );
    let text = String::from_utf8_lossy(&v4.stdout);
    assert!(text.contains("Subscribed (mid: 1): 128"), "{text}");
    // A filter that can deliver is granted.
    let ok = mosquitto(
        "mosquitto_sub",
        &[
            "-d",
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "+/+/+/user1",
            "-q",
            "1",
            "-W",
            "2",
            "-C",
            "1",
        ],
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("Subscribed (mid: 1): 1"), "{text}");
    let records = b.wait_audit(2);
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .all(|r| r["access"] == "subscribe" && r["topic"] == "x/y"));
}

/// `plugin_opt_refuse_subscriptions false` (read from the same config as Mosquitto's plugin would):
/// every SUBSCRIBE granted, as Mosquitto's acl_file grants it, and reads still checked per message.
#[test]
fn refuse_subscriptions_false_grants_a_subscription_that_can_never_deliver() {
    let b = Broker::start(
        "listener {port} 127.0.0.1\nallow_anonymous false\n\
         plugin /usr/lib/libmqtt_policy.so\nplugin_opt_password_file {dir}/users.txt\n\
         plugin_opt_acl_file {dir}/acl.txt\nplugin_opt_refuse_subscriptions false\n",
        broker_support::tutorial_files,
    );
    let port = b.port.to_string();
    let sub = broker_support::spawn_sub(&[
        "-V",
        "mqttv5",
        "-d",
        "-p",
        &port,
        "-u",
        "user1",
        "-P",
        "123456",
        "-t",
        "x/y",
        "-t",
        "+/+/+/user1",
        "-W",
        "15",
        "-C",
        "1",
    ]);
    // Connected; its SUBSCRIBE follows at once.
    b.wait_log("u'user1'");
    std::thread::sleep(Duration::from_millis(500));
    // The first is withheld from user1 (it may not read it), the second delivered.
    for (topic, payload) in [("x/y", "withheld"), ("a/b/c/user1", "delivered")] {
        let args = ["-p", &port, "-u", "admin", "-P", "admin1234", "-q", "1"];
        let admin = mosquitto(
            "mosquitto_pub",
            &[&args[..], &["-t", topic, "-m", payload]].concat(),
        );
        assert_eq!(admin.status.code(), Some(0));
    }
    let text = broker_support::finish(sub);
    assert!(
        text.contains("Subscribed (mid: 1): 0, 0"),
        "both granted: {text}"
    );
    assert!(
        text.contains("delivered"),
        "the readable one delivered: {text}"
    );
    assert!(!text.contains("withheld"), "the other not: {text}");
    let records = b.wait_audit(1);
    assert_eq!(records.len(), 1, "{records:?}\n{}", b.log());
    assert_eq!(records[0]["access"], "read", "{records:?}");
    assert!(
        records.iter().all(|r| r["access"] != "subscribe"),
        "{records:?}"
    );
}

#[test]
fn retained_messages_reach_later_subscribers_with_their_read_access_checked() {
    let b = Broker::tutorial();
    let port = b.port.to_string();
    let p = mosquitto(
        "mosquitto_pub",
        &[
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "co/st/city/user1",
            "-m",
            "kept",
            "-r",
            "-q",
            "1",
        ],
    );
    assert_eq!(p.status.code(), Some(0));
    let admin = mosquitto(
        "mosquitto_sub",
        &[
            "-p",
            &port,
            "-u",
            "admin",
            "-P",
            "admin1234",
            "-t",
            "#",
            "-v",
            "-W",
            "3",
            "-C",
            "1",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&admin.stdout).trim(),
        "co/st/city/user1 kept"
    );
    // user1 may read its own retained message; pe.perez may not, though `+/+/+/#`-style filters
    // could deliver its own topics.
    let own = mosquitto(
        "mosquitto_sub",
        &[
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "+/+/+/user1",
            "-v",
            "-W",
            "3",
            "-C",
            "1",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&own.stdout).trim(),
        "co/st/city/user1 kept"
    );
    let other = mosquitto(
        "mosquitto_sub",
        &[
            "-p", &port, "-u", "pe.perez", "-P", "abc123", "-t", "+/+/+/+", "-v", "-W", "2", "-C",
            "1",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&other.stdout).trim(), "");
    let records = b.wait_audit(1);
    assert!(records.iter().any(|r| r["access"] == "read"
        && r["username"] == "pe.perez"
        && r["topic"] == "co/st/city/user1"));
}

#[test]
fn qos_1_messages_wait_for_a_persistent_session_across_a_reconnect() {
    let b = Broker::tutorial();
    let port = b.port.to_string();
    // Create the persistent session and its subscription, then disconnect.
    let first = mosquitto(
        "mosquitto_sub",
        &[
            "-p",
            &port,
            "-u",
            "admin",
            "-P",
            "admin1234",
            "-i",
            "keeper",
            "-c",
            "-q",
            "1",
            "-t",
            "a/b/c/#",
            "-W",
            "1",
        ],
    );
    assert!(first.status.code().is_some());
    for i in 0..3 {
        let m = format!("m{i}");
        let p = mosquitto(
            "mosquitto_pub",
            &[
                "-p",
                &port,
                "-u",
                "user1",
                "-P",
                "123456",
                "-t",
                "a/b/c/user1",
                "-m",
                &m,
                "-q",
                "1",
            ],
        );
        assert_eq!(p.status.code(), Some(0));
    }
    let again = mosquitto(
        "mosquitto_sub",
        &[
            "-p",
            &port,
            "-u",
            "admin",
            "-P",
            "admin1234",
            "-i",
            "keeper",
            "-c",
            "-q",
            "1",
            "-t",
            "a/b/c/#",
            "-W",
            "5",
            "-C",
            "3",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["m0", "m1", "m2"]
    );
}

#[test]
fn a_will_is_published_when_a_client_vanishes_and_checked_against_the_acl() {
    let b = Broker::tutorial();
    let port = b.port.to_string();
    let sub = spawn_sub(&[
        "-p",
        &port,
        "-u",
        "admin",
        "-P",
        "admin1234",
        "-t",
        "#",
        "-v",
        "-W",
        "6",
        "-C",
        "1",
    ]);
    settle();
    // A subscriber with a Will, killed without DISCONNECT.
    let mut victim = std::process::Command::new("mosquitto_sub")
        .args([
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "a/b/c/user1",
            "--will-topic",
            "a/b/c/user1",
            "--will-payload",
            "gone",
            "-W",
            "10",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the victim");
    settle();
    let _ = victim.kill();
    let _ = victim.wait();
    assert_eq!(finish(sub).trim(), "a/b/c/user1 gone");
}

#[test]
fn sighup_keeps_the_old_policy_when_the_new_acl_file_is_malformed() {
    let b = Broker::tutorial();
    let port = b.port.to_string();
    std::fs::write(b.path("acl.txt"), "topic READ a\n").unwrap();
    b.hup();
    std::thread::sleep(Duration::from_millis(500));
    let sub = spawn_sub(&[
        "-p",
        &port,
        "-u",
        "admin",
        "-P",
        "admin1234",
        "-t",
        "#",
        "-v",
        "-W",
        "5",
        "-C",
        "1",
    ]);
    settle();
    let p = mosquitto(
        "mosquitto_pub",
        &[
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "a/b/c/user1",
            "-m",
            "still",
            "-q",
            "1",
        ],
    );
    assert_eq!(p.status.code(), Some(0));
    assert_eq!(finish(sub).trim(), "a/b/c/user1 still");
    // A good file replaces the policy: now user1 may write nothing.
    std::fs::write(b.path("acl.txt"), "user admin\ntopic readwrite #\n").unwrap();
    b.hup();
    std::thread::sleep(Duration::from_millis(500));
    let v5 = mosquitto(
        "mosquitto_pub",
        &[
            "-V",
            "mqttv5",
            "-d",
            "-p",
            &port,
            "-u",
            "user1",
            "-P",
            "123456",
            "-t",
            "a/b/c/user1",
            "-m",
            "x",
            "-q",
            "1",
        ],
    );
    assert!(String::from_utf8_lossy(&v5.stdout).contains("RC:135"));
}

/// The audit record of a refused login of `client_id`, waiting (bounded) for it.
fn login_refusal(b: &Broker, client_id: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = b
            .audit()
            .into_iter()
            .find(|r| r["access"] == "connect" && r["client_id"] == client_id);
        match found {
            Some(r) => return r,
            None if std::time::Instant::now() > deadline => {
                panic!(
                    "no connect record for {client_id}: {:?}\n{}",
                    b.audit(),
                    b.log()
                )
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn sighup_disconnects_a_connected_client_whose_password_entry_was_removed_and_audits_it() {
    let b = Broker::tutorial();
    let (mut user1, connack) =
        RawClient::login(&b, Version::V5, "user1-v5", Some(("user1", "123456")));
    assert_eq!(connack[1], 0, "user1 logs in");
    let (mut old, connack) =
        RawClient::login(&b, Version::V311, "user1-v311", Some(("user1", "123456")));
    assert_eq!(connack, [0, 0]);
    let (mut admin, connack) =
        RawClient::login(&b, Version::V311, "admin-1", Some(("admin", "admin1234")));
    assert_eq!(connack, [0, 0]);
    user1.sync();
    // user1's entry leaves the password file; admin's stays.
    let users = std::fs::read_to_string(b.path("users.txt")).unwrap();
    let without: String = users
        .lines()
        .filter(|l| !l.starts_with("user1:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(b.path("users.txt"), without).unwrap();
    b.hup();
    // MQTT 5: DISCONNECT "not authorized", then the close; MQTT 3.1.1: the close.
    let (first, body) = user1.read().expect("a DISCONNECT");
    assert_eq!((first, body[0]), (0xe0, 0x87), "DISCONNECT 0x87");
    assert!(user1.read().is_err(), "closed after the DISCONNECT");
    assert!(
        old.try_sync().is_err(),
        "user1 on 3.1.1 is disconnected too"
    );
    admin.sync();
    for id in ["user1-v5", "user1-v311"] {
        let r = login_refusal(&b, id);
        assert_eq!(r["username"], "user1");
        assert_eq!(r["reason"]["kind"], "unknown_user", "{r}");
        assert!(r["message"].as_str().unwrap().contains("reload"), "{r}");
    }
    let audit = std::fs::read_to_string(b.path("audit.log")).unwrap();
    assert!(
        !audit.contains("123456"),
        "a password reached the audit log"
    );
    assert!(!b.log().contains("123456"), "a password reached the log");
    // And user1 can no longer log in.
    let (_, connack) = RawClient::login(&b, Version::V311, "again", Some(("user1", "123456")));
    assert_eq!(connack, [0, 4]);
}

#[test]
fn sighup_disconnects_anonymous_clients_when_the_config_now_disallows_them() {
    let b = Broker::start(
        "listener {port} 127.0.0.1\nallow_anonymous true\npassword_file {dir}/users.txt\n",
        broker_support::tutorial_files,
    );
    let mut anon = RawClient::anonymous(&b, "anon-1");
    let (mut user1, connack) =
        RawClient::login(&b, Version::V311, "user1-1", Some(("user1", "123456")));
    assert_eq!(connack, [0, 0]);
    let conf = std::fs::read_to_string(b.path("mosquitto.conf")).unwrap();
    std::fs::write(
        b.path("mosquitto.conf"),
        conf.replace("allow_anonymous true", "allow_anonymous false"),
    )
    .unwrap();
    b.hup();
    assert!(anon.read().is_err(), "the anonymous client is disconnected");
    user1.sync();
    let r = login_refusal(&b, "anon-1");
    assert_eq!(r["reason"]["kind"], "anonymous_not_allowed", "{r}");
    assert!(r["username"].is_null(), "{r}");
}
