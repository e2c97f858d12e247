//! Logins on Mosquitto 2.1.2 (the vendored build) with the plugin: password checks run on worker
//! threads and are answered through delayed basic auth, so another client's messages go through
//! while a slow check (an `$argon2id$` entry with a high cost) is pending; logins are accepted and
//! refused as on 2.0.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mqtt_policy::broker::codec::{encode, Connect as WireConnect, Packet, Properties, Version};
use mqtt_policy::policy::passwd::{hash_password, HashKind};

use crate::plugin::plugin_path;
use crate::support::broker::MosquittoBroker;
use crate::support::versions::Version as Release;
use crate::support::wire::{Connect, WireClient};

/// An `$argon2id$` entry whose check takes seconds (256 MiB, 8 passes).
fn slow_argon2id(password: &str) -> String {
    let (m, t) = (262_144, 8);
    let params = argon2::Params::new(m, t, 1, Some(32)).expect("argon2 parameters");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = *b"a-salt-of-16-byt";
    let mut hash = [0u8; 32];
    argon
        .hash_password_into(password.as_bytes(), &salt, &mut hash)
        .expect("argon2 hash");
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!(
        "$argon2id$v=19$m={m},t={t},p=1${}${}",
        b64.encode(salt),
        b64.encode(hash)
    )
}

fn broker_21() -> MosquittoBroker {
    let fast = hash_password(b"fast-pw", HashKind::Argon2id, None);
    let users = format!("fast:{fast}\nslow:{}\n", slow_argon2id("slow-pw"));
    MosquittoBroker::start_on(
        Release::Upstream212,
        &format!(
            "plugin {}\nallow_anonymous false\n\
             plugin_opt_password_file {{dir}}/users.txt\n\
             plugin_opt_audit_log {{dir}}/audit.log\n",
            plugin_path()
        ),
        &[("users.txt", users.as_bytes())],
    )
}

/// The CONNACK reason (MQTT 5) a login gets: 0 accepted.
fn login_code(port: u16, id: &str, user: &str, password: &str) -> u8 {
    let connect = Connect {
        client_id: id,
        username: Some(user),
        password: Some(password.as_bytes()),
    };
    match WireClient::connect(port, &connect).expect("CONNECT gets an answer") {
        Ok(client) => {
            client.disconnect();
            0
        }
        Err(code) => code,
    }
}

fn wait_log(broker: &MosquittoBroker, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !broker.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn on_2_1_logins_are_accepted_and_refused_as_on_2_0_through_delayed_auth() {
    let broker = broker_21();
    assert_eq!(login_code(broker.port(), "good", "fast", "fast-pw"), 0);
    assert_eq!(login_code(broker.port(), "wrong", "fast", "nope"), 0x87);
    assert_eq!(login_code(broker.port(), "unknown", "nobody", "x"), 0x87);
    // The good login again: from the cache, answered at once.
    assert_eq!(login_code(broker.port(), "again", "fast", "fast-pw"), 0);
    let log = broker.log();
    assert!(
        log.contains("checking the password of client \"good\" on a worker thread"),
        "{log}"
    );
    assert!(
        !log.contains("checking the password of client \"again\""),
        "{log}"
    );
    let audit = std::fs::read_to_string(broker.path("audit.log")).unwrap_or_default();
    let kinds: Vec<(String, String)> = audit
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            (
                v["client_id"].as_str().unwrap_or_default().to_owned(),
                v["reason"]["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("wrong".to_owned(), "wrong_password".to_owned()),
            ("unknown".to_owned(), "unknown_user".to_owned())
        ],
        "{audit}"
    );
    assert!(!audit.contains("nope") && !audit.contains("fast-pw"));
}

#[test]
fn on_2_1_a_round_trip_completes_while_a_slow_login_is_pending() {
    let broker = broker_21();
    let port = broker.port();
    let login = |id| Connect {
        client_id: id,
        username: Some("fast"),
        password: Some(b"fast-pw"),
    };
    let mut sub = WireClient::connect(port, &login("sub")).unwrap().unwrap();
    assert_eq!(sub.subscribe(&["t/#"]).unwrap(), [0]);
    let mut publisher = WireClient::connect(port, &login("pub")).unwrap().unwrap();

    // The slow login: CONNECT sent, CONNACK not read.
    let mut slow = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut out = Vec::new();
    let connect = WireConnect {
        version: Version::V311,
        client_id: "slow-client".into(),
        clean_start: true,
        keep_alive: 0,
        username: Some("slow".into()),
        password: Some(b"slow-pw".to_vec()),
        will: None,
        properties: Properties::default(),
    };
    encode(&Packet::Connect(Box::new(connect)), Version::V311, &mut out);
    slow.write_all(&out).unwrap();
    wait_log(
        &broker,
        "checking the password of client \"slow-client\" on a worker thread",
    );

    // The round trip while it waits.
    assert_eq!(publisher.publish_qos1(&[("t/x", b"ping")]).unwrap(), [0]);
    let got = sub.sync().unwrap();
    assert_eq!(got.len(), 1, "the message arrived");

    // Only now: no CONNACK for the slow client yet.
    slow.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match slow.read(&mut byte) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the slow login was answered before the round trip ended: {other:?}"),
    }
    // Then it is accepted.
    slow.set_nonblocking(false).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut connack = [0u8; 4];
    slow.read_exact(&mut connack).expect("a CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0], "accepted");
}
