//! Usernames from client certificates (`require_certificate`, `use_identity_as_username`,
//! `use_subject_as_username`) on the real `mqtt-policy broker`, with certificates made here by the
//! openssl command line and real clients (`mosquitto_pub`/`mosquitto_sub` with `--cert`/`--key`).
//! Every scenario also runs against Debian's mosquitto 2.0.11 with the same configuration, which
//! settles what the reference does: both brokers must give the same outcomes.

mod broker_support;

// The real-mosquitto harness of `mosquitto-test/`, borrowed: `/usr/sbin/mosquitto` started on a
// free port, killed on drop (`broker.rs` finds `process` and `versions` as its siblings, here at the crate root).
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

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use broker_support::{finish, mosquitto, spawn_sub, Broker, TUTORIAL_ACL, TUTORIAL_USERS};
use mosquitto_broker::MosquittoBroker;
use mqtt_policy::policy::passwd::{hash_password, HashKind};
use process::run_checked;

/// Client certificates the tests use: file stem, issuing CA, subject.
const CLIENTS: &[(&str, &str, &str)] = &[
    ("user1", "ca", "/C=ES/O=Uni/CN=user1"),
    ("admin", "ca", "/CN=admin"),
    ("nocn", "ca", "/O=Uni/OU=devices"),
    ("twocn", "ca", "/O=Uni/CN=user1/CN=admin"),
    ("evil", "other-ca", "/CN=user1"),
    ("tricky", "ca", r"/C=ES/O=Uni, S.A./OU=a\+b;c/CN=#user 1 "),
];

/// The subject of `tricky` as Mosquitto's `use_subject_as_username` spells it (OpenSSL's RFC 2253
/// printing: last RDN first, `,` `+` `;` escaped, a leading `#` and a trailing space escaped).
const TRICKY_SUBJECT: &str = r"CN=\#user 1\ ,OU=a\+b\;c,O=Uni\, S.A.,C=ES";

/// A private PKI made with the openssl command line: a CA with a server certificate for
/// `localhost`, another CA, and the client certificates of [`CLIENTS`].
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("broker-identity-pki.")
            .tempdir()
            .expect("temp dir");
        let openssl = |args: &[&str]| {
            run_checked(
                Command::new("openssl").current_dir(dir.path()).args(args),
                Duration::from_secs(30),
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (ca, name) in [("ca", "identity test CA"), ("other-ca", "another CA")] {
            let (key, crt, subj) = (
                format!("{ca}.key"),
                format!("{ca}.crt"),
                format!("/CN={name}"),
            );
            let mut args = vec!["req", "-x509"];
            args.extend_from_slice(&ec);
            args.extend_from_slice(&["-days", "2", "-keyout", &key, "-out", &crt, "-subj", &subj]);
            args.extend_from_slice(&[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(&args);
        }
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("server.ext");
        std::fs::write(
            dir.path().join("client.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
        .expect("client.ext");
        let mut leaves = vec![("server", "ca", "/CN=localhost")];
        leaves.extend_from_slice(CLIENTS);
        for (stem, ca, subj) in leaves {
            let (key, csr, crt) = (
                format!("{stem}.key"),
                format!("{stem}.csr"),
                format!("{stem}.crt"),
            );
            let mut args = vec!["req", "-utf8"];
            args.extend_from_slice(&ec);
            args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", subj]);
            openssl(&args);
            let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
            let ext = if stem == "server" {
                "server.ext"
            } else {
                "client.ext"
            };
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &crt,
            ]);
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Listener lines for TLS with this PKI (the server side).
    fn listener_tls(&self) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\ntls_version tlsv1.2\n",
            self.path("ca.crt"),
            self.path("server.crt"),
            self.path("server.key")
        )
    }

    /// TLS options for a mosquitto client, with the client certificate `cert` (a stem of
    /// [`CLIENTS`]) or none.
    fn client_args(&self, cert: Option<&str>) -> Vec<String> {
        let mut args = vec![
            "-h".to_owned(),
            "localhost".to_owned(),
            "--cafile".to_owned(),
            self.path("ca.crt"),
            "--tls-version".to_owned(),
            "tlsv1.2".to_owned(),
        ];
        if let Some(stem) = cert {
            args.extend([
                "--cert".to_owned(),
                self.path(&format!("{stem}.crt")),
                "--key".to_owned(),
                self.path(&format!("{stem}.key")),
            ]);
        }
        args
    }
}

/// The tutorial's password file (hashed) and ACL.
fn policy_files() -> Vec<(&'static str, Vec<u8>)> {
    let mut users = String::new();
    for (u, p) in TUTORIAL_USERS {
        let h = hash_password(p.as_bytes(), HashKind::Sha512Pbkdf2, Some(101));
        users.push_str(&format!("{u}:{h}\n"));
    }
    vec![
        ("users.txt", users.into_bytes()),
        ("acl.txt", TUTORIAL_ACL.as_bytes().to_vec()),
    ]
}

/// Which broker a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Ours,
    Mosquitto,
}

/// A running broker of either kind, listening on 127.0.0.1.
enum Running {
    Ours(Broker),
    Mosquitto(MosquittoBroker),
}

impl Running {
    /// Starts `which` with the listener settings `body` (`{dir}`: the broker's directory, holding
    /// `files`).
    fn start(which: Which, body: &str, files: &[(&str, Vec<u8>)]) -> Running {
        match which {
            Which::Ours => {
                let conf = format!("listener {{port}} 127.0.0.1\n{body}");
                Running::Ours(Broker::start(&conf, |dir| {
                    for (name, bytes) in files {
                        std::fs::write(dir.join(name), bytes).expect("write a broker file");
                    }
                }))
            }
            Which::Mosquitto => {
                let files: Vec<(&str, &[u8])> =
                    files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
                Running::Mosquitto(MosquittoBroker::start(body, &files))
            }
        }
    }

    fn port(&self) -> String {
        match self {
            Running::Ours(b) => b.port.to_string(),
            Running::Mosquitto(m) => m.port().to_string(),
        }
    }

    fn log(&self) -> String {
        match self {
            Running::Ours(b) => b.log(),
            Running::Mosquitto(m) => m.log(),
        }
    }

    /// Waits (bounded, 10 s) until the log shows client `id` connected; returns the username it
    /// logged for it (`u'...'` in both brokers' "New client connected" lines).
    fn connected_as(&self, id: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let found = log.lines().find_map(|l| {
                let rest = l.split(&format!(" as {id} (")).nth(1)?;
                l.contains("New client connected").then_some(())?;
                let start = rest.find("u'")? + 2;
                let end = rest.rfind("').")?;
                Some(rest[start..end].to_owned())
            });
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `mosquitto_pub` (bounded) with TLS options for `cert` and `args`.
fn publish(r: &Running, pki: &Pki, cert: Option<&str>, args: &[&str]) -> Output {
    let port = r.port();
    let mut all: Vec<String> = vec!["-p".into(), port];
    all.extend(pki.client_args(cert));
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    mosquitto("mosquitto_pub", &refs)
}

/// What a publish printed, for failure messages.
fn shown(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The listener settings of the main scenario: client certificates required and their CN as the
/// username, with the tutorial's password file and ACL still configured.
fn identity_body(pki: &Pki) -> String {
    format!(
        "{}require_certificate true\nuse_identity_as_username true\nallow_anonymous false\npassword_file {{dir}}/users.txt\nacl_file {{dir}}/acl.txt\n",
        pki.listener_tls()
    )
}

/// The main scenario on `which`: returns the broker for checks specific to it.
fn identity_scenario(which: Which, pki: &Pki) -> Running {
    let r = Running::start(which, &identity_body(pki), &policy_files());
    let port = r.port();
    // The admin certificate's subscriber on `#` (its CONNECT names nobody): it must get exactly the
    // two allowed messages, in order, and not the denied one published between them.
    let mut sub_args: Vec<String> = vec!["-p".into(), port.clone()];
    sub_args.extend(pki.client_args(Some("admin")));
    sub_args.extend(
        ["-i", "sub-admin", "-t", "#", "-v", "-W", "15", "-C", "2"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    let refs: Vec<&str> = sub_args.iter().map(String::as_str).collect();
    let mut sub = spawn_sub(&refs);
    let admin = r.connected_as("sub-admin");
    if admin.is_none() {
        // Say what the subscriber saw too: its log line never came (a CI run once showed nothing
        // after the broker's start-up lines).
        let _ = sub.kill();
        let out = sub.wait_with_output().expect("wait for mosquitto_sub");
        panic!(
            "{which:?}: the subscriber never logged in; mosquitto_sub: {}\nbroker log:\n{}",
            shown(&out),
            r.log()
        );
    }
    assert_eq!(
        admin.as_deref(),
        Some("admin"),
        "{which:?}: the subscriber is admin by its certificate\n{}",
        r.log()
    );
    // Let its SUBSCRIBE arrive.
    std::thread::sleep(Duration::from_millis(500));

    // user1's certificate; the CONNECT claims admin with a wrong password: ignored.
    let creds = ["-u", "admin", "-P", "wrong"];
    let ok = publish(
        &r,
        pki,
        Some("user1"),
        &[
            &creds[..],
            &["-i", "pub-user1", "-t", "a/b/c/user1", "-m", "first"],
        ]
        .concat(),
    );
    assert_eq!(ok.status.code(), Some(0), "{which:?}: {}", shown(&ok));
    assert_eq!(r.connected_as("pub-user1").as_deref(), Some("user1"));
    // MQTT 5, QoS 1, to another user's topic: PUBACK 0x87.
    let denied = publish(
        &r,
        pki,
        Some("user1"),
        &[
            &creds[..],
            &[
                "-V",
                "mqttv5",
                "-d",
                "-q",
                "1",
                "-i",
                "pub-denied",
                "-t",
                "a/b/c/user2",
                "-m",
                "denied",
            ],
        ]
        .concat(),
    );
    let text = String::from_utf8_lossy(&denied.stdout);
    assert!(
        text.contains("received PUBACK (Mid: 1, RC:135)"),
        "{which:?}: {}",
        shown(&denied)
    );
    let last = publish(
        &r,
        pki,
        Some("user1"),
        &["-i", "pub-last", "-t", "x/y/z/user1", "-m", "second"],
    );
    assert_eq!(last.status.code(), Some(0), "{which:?}: {}", shown(&last));
    let got = finish(sub);
    assert_eq!(
        got, "a/b/c/user1 first\nx/y/z/user1 second\n",
        "{which:?}: what admin received"
    );

    // No client certificate, or one from another CA: the TLS handshake fails, nothing connects
    // (mosquitto_pub says "The connection was lost" or "Protocol error", depending on when it
    // notices, with either broker; never a CONNACK code).
    for (cert, what) in [(None, "no certificate"), (Some("evil"), "another CA")] {
        let o = publish(
            &r,
            pki,
            cert,
            &["-t", "a/b/c/user1", "-m", "x", "-i", "rejected"],
        );
        assert!(
            matches!(o.status.code(), Some(1) | Some(7)),
            "{which:?}, {what}: {}",
            shown(&o)
        );
    }
    assert!(!r.log().contains(" as rejected "), "{which:?}: {}", r.log());
    // Two CNs: the first one in the certificate counts.
    let o = publish(
        &r,
        pki,
        Some("twocn"),
        &["-i", "pub-twocn", "-t", "a/b/c/user1", "-m", "x"],
    );
    assert_eq!(o.status.code(), Some(0), "{which:?}: {}", shown(&o));
    assert_eq!(r.connected_as("pub-twocn").as_deref(), Some("user1"));
    // A certificate without a CN: CONNACK 4 (3.1.1) / 0x86 (5), whatever the CONNECT says.
    let o = publish(
        &r,
        pki,
        Some("nocn"),
        &[&creds[..], &["-t", "t", "-m", "x"]].concat(),
    );
    assert_eq!(o.status.code(), Some(4), "{which:?}: {}", shown(&o));
    let o = publish(
        &r,
        pki,
        Some("nocn"),
        &[
            "-V", "mqttv5", "-u", "user1", "-P", "123456", "-t", "t", "-m", "x",
        ],
    );
    assert_eq!(o.status.code(), Some(0x86), "{which:?}: {}", shown(&o));
    r
}

#[test]
fn the_certificate_cn_is_the_username_on_our_broker() {
    let pki = Pki::generate();
    let r = identity_scenario(Which::Ours, &pki);
    let Running::Ours(b) = &r else { unreachable!() };
    let records = b.wait_audit(3);
    let write: Vec<_> = records.iter().filter(|r| r["access"] == "write").collect();
    assert_eq!(write.len(), 1, "{records:#?}");
    assert_eq!(write[0]["username"], "user1");
    assert_eq!(write[0]["topic"], "a/b/c/user2");
    assert_eq!(write[0]["client_id"], "pub-denied");
    let connects: Vec<_> = records
        .iter()
        .filter(|r| r["access"] == "connect")
        .collect();
    assert_eq!(connects.len(), 2, "{records:#?}");
    for c in connects {
        assert_eq!(c["reason"]["kind"], "certificate", "{c}");
        assert!(c["username"].is_null(), "{c}");
        assert!(
            c["message"].as_str().unwrap_or("").contains("Common Name"),
            "{c}"
        );
    }
    let text = std::fs::read_to_string(b.path("audit.log")).unwrap();
    assert!(!text.contains("wrong"), "a password reached the audit log");
}

#[test]
fn the_certificate_cn_is_the_username_on_mosquitto_too() {
    let pki = Pki::generate();
    identity_scenario(Which::Mosquitto, &pki);
}

/// `use_subject_as_username`: the username both brokers derive, and an ACL `user` block for it.
fn subject_scenario(which: Which, pki: &Pki) -> (String, String) {
    let acl = format!("user CN=user1,O=Uni,C=ES\ntopic readwrite own/#\nuser {TRICKY_SUBJECT}\ntopic readwrite tricky/#\n");
    let files = vec![("acl.txt", acl.into_bytes())];
    let body = format!(
        "{}require_certificate true\nuse_subject_as_username true\nacl_file {{dir}}/acl.txt\n",
        pki.listener_tls()
    );
    let r = Running::start(which, &body, &files);
    let mut names = Vec::new();
    for (cert, id, allowed, denied) in [
        ("user1", "s-user1", "own/x", "tricky/x"),
        ("tricky", "s-tricky", "tricky/x", "own/x"),
    ] {
        for (topic, rc) in [(allowed, 16), (denied, 135)] {
            let o = publish(
                &r,
                pki,
                Some(cert),
                &[
                    "-V", "mqttv5", "-d", "-q", "1", "-i", id, "-t", topic, "-m", "x",
                ],
            );
            let want = format!("received PUBACK (Mid: 1, RC:{rc})");
            assert!(
                String::from_utf8_lossy(&o.stdout).contains(&want),
                "{which:?}, {cert} to {topic}: {}\n{}",
                shown(&o),
                r.log()
            );
        }
        names.push(
            r.connected_as(id)
                .expect("the client's username in the log"),
        );
    }
    (names[0].clone(), names[1].clone())
}

#[test]
fn the_whole_subject_is_the_username_as_mosquitto_spells_it() {
    let pki = Pki::generate();
    let ours = subject_scenario(Which::Ours, &pki);
    let theirs = subject_scenario(Which::Mosquitto, &pki);
    assert_eq!(ours.0, "CN=user1,O=Uni,C=ES");
    assert_eq!(ours.1, TRICKY_SUBJECT);
    assert_eq!(ours, theirs);
}

/// `use_identity_as_username` where it cannot work: TLS without `require_certificate` (no
/// certificate is asked for) and a listener without TLS (ignored). Returns the exit codes of
/// mosquitto_pub: with user1's certificate on the first; with user1's right and wrong passwords on
/// the second.
fn misconfigured(which: Which, pki: &Pki) -> [Option<i32>; 3] {
    let files = policy_files();
    let tls = Running::start(
        which,
        &format!(
            "{}use_identity_as_username true\nallow_anonymous false\npassword_file {{dir}}/users.txt\nacl_file {{dir}}/acl.txt\n",
            pki.listener_tls()
        ),
        &files,
    );
    let with_cert = publish(
        &tls,
        pki,
        Some("user1"),
        &[
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
    let plain = Running::start(
        which,
        "use_identity_as_username true\nallow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n",
        &files,
    );
    let port = plain.port();
    let login = |password: &str| {
        mosquitto(
            "mosquitto_pub",
            &[
                "-p",
                &port,
                "-u",
                "user1",
                "-P",
                password,
                "-t",
                "a/b/c/user1",
                "-m",
                "x",
            ],
        )
        .status
        .code()
    };
    if which == Which::Ours {
        assert!(
            tls.log().contains("without `require_certificate true`"),
            "{}",
            tls.log()
        );
        assert!(plain.log().contains("is ignored"), "{}", plain.log());
    }
    [with_cert.status.code(), login("123456"), login("wrong")]
}

#[test]
fn use_identity_as_username_where_it_cannot_work_behaves_as_in_mosquitto() {
    let pki = Pki::generate();
    let ours = misconfigured(Which::Ours, &pki);
    let theirs = misconfigured(Which::Mosquitto, &pki);
    // No certificate asked for: refused with 4 by both. Without TLS the password file decides:
    // both accept the right password and refuse the wrong one (ours with 4, mosquitto with 5: the
    // deliberate difference for bad credentials).
    assert_eq!(ours, [Some(4), Some(0), Some(4)]);
    assert_eq!(theirs, [Some(4), Some(0), Some(5)]);
}
