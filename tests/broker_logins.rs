//! Logins against the real `mqtt-policy broker` with real sockets: a slow password check (an
//! `$argon2id$` entry with a high cost) runs off the router, so another client's messages go through
//! while it is pending; logins still succeed and fail as before.

mod broker_support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use broker_support::{Broker, RawClient};
use mqtt_policy::broker::codec::{encode, Connect, Packet, Properties, Publish, QoS, Version};
use mqtt_policy::policy::passwd::{hash_password, HashKind};

/// An `$argon2id$` entry whose check takes long (256 MiB, 8 passes): seconds, not milliseconds.
fn slow_argon2id(password: &str) -> String {
    let (m, t) = (262_144, 8);
    let params = argon2::Params::new(m, t, 1, Some(32)).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = *b"a-salt-of-16-byt";
    let mut hash = [0u8; 32];
    argon
        .hash_password_into(password.as_bytes(), &salt, &mut hash)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!(
        "$argon2id$v=19$m={m},t={t},p=1${}${}",
        b64.encode(salt),
        b64.encode(hash)
    )
}

fn users(dir: &Path) {
    let fast = hash_password(b"fast-pw", HashKind::Sha512Pbkdf2, None);
    let text = format!("fast:{fast}\nslow:{}\n", slow_argon2id("slow-pw"));
    std::fs::write(dir.join("users.txt"), text).unwrap();
}

fn broker() -> Broker {
    Broker::start(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/users.txt\n",
        users,
    )
}

/// Sends a CONNECT without waiting for the CONNACK.
fn start_login(b: &Broker, id: &str, user: &str, password: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    let mut out = Vec::new();
    let connect = Connect {
        version: Version::V311,
        client_id: id.into(),
        clean_start: true,
        keep_alive: 0,
        username: Some(user.to_owned()),
        password: Some(password.as_bytes().to_vec()),
        will: None,
        properties: Properties::default(),
    };
    encode(&Packet::Connect(Box::new(connect)), Version::V311, &mut out);
    s.write_all(&out).unwrap();
    s
}

/// The CONNACK's return code (waits up to 60 s).
fn connack(s: &mut TcpStream) -> u8 {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).expect("a CONNACK");
    assert_eq!(buf[..2], [0x20, 2], "CONNACK");
    buf[3]
}

#[test]
fn another_clients_round_trip_completes_while_a_slow_login_is_pending() {
    let b = broker();
    let (mut sub, ack) = RawClient::login(&b, Version::V311, "sub", Some(("fast", "fast-pw")));
    assert_eq!(ack, [0, 0]);
    sub.subscribe("t/#");
    let (mut publisher, ack) =
        RawClient::login(&b, Version::V311, "pub", Some(("fast", "fast-pw")));
    assert_eq!(ack, [0, 0]);

    let mut slow = start_login(&b, "slow-client", "slow", "slow-pw");
    let log = b.wait_log("checking the password of \"slow\" off the router");
    assert!(log.contains("off the router"), "{log}");

    // The round trip, while the slow login waits for its check.
    publisher.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: Some("t/x".try_into().unwrap()),
        pkid: 0,
        payload: Arc::from(&b"ping"[..]),
        properties: Properties::default().into(),
    }));
    let (first, body) = sub.read().expect("the message");
    assert_eq!(first, 0x30);
    assert!(body.ends_with(b"ping"));

    // Only now: the slow client has no CONNACK yet.
    slow.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match slow.read(&mut byte) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the slow login was answered before the round trip ended: {other:?}"),
    }
    assert!(!b.log().contains("New client connected as slow-client"));
    // And it is accepted when its check is done.
    assert_eq!(connack(&mut slow), 0);
    b.wait_log("New client connected as slow-client");
}

#[test]
fn logins_checked_off_the_router_succeed_and_fail_as_before() {
    let b = broker();
    // Good, wrong, unknown, and the same good login again (from the cache).
    let cases = [
        ("a", "fast", "fast-pw", 0),
        ("b", "fast", "wrong", 4),
        ("c", "nobody", "x", 4),
        ("d", "slow", "wrong", 4),
        ("e", "fast", "fast-pw", 0),
    ];
    for (id, user, password, code) in cases {
        let mut s = start_login(&b, id, user, password);
        assert_eq!(connack(&mut s), code, "{id}: {user}/{password}");
    }
    let audit = b.wait_audit(3);
    let seen: Vec<(&str, &str)> = audit
        .iter()
        .map(|r| {
            (
                r["client_id"].as_str().unwrap_or_default(),
                r["reason"]["kind"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("b", "wrong_password"),
            ("c", "unknown_user"),
            ("d", "wrong_password")
        ],
        "{audit:?}"
    );
    // No password in any record.
    assert!(!audit.iter().any(|r| r.to_string().contains("-pw")));
}
