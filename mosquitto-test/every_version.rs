//! The plugin on every release our users run ([`Version`]: Debian's 2.0.11, upstream 2.0.22 and 2.1.2):
//! the tutorial's deployment over TLS 1.2 with Mosquitto's own clients, and a reduced differential test
//! in which each release's own built-in `acl_file` is the reference. (PUBACK 0x87, SUBACK refusals,
//! audit records and SIGHUP run per release in [`crate::plugin`].)

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use mqtt_policy::policy::{Access, Semantics};

use crate::differential::compare::{client_ref, compile};
use crate::differential::generate::{Identity, Scenario};
use crate::differential::targets::PluginOn;
use crate::differential::{
    check_count, check_scenarios, AclFileOn, BrokerUnderTest, RunningBroker,
};
use crate::plugin::{audit_records, plugin_path};
use crate::support::broker::MosquittoBroker;
use crate::support::certs::TestPki;
use crate::support::tools::{hashed_password_file, mosquitto_pub, MosquittoSub};
use crate::support::versions::Version;
use crate::tutorial_builtin::{ACL, USERS};

/// Generated acl files per release and enforcement point in the reduced differential test (the full
/// one, on Debian's 2.0.11, runs [`crate::differential::DEFAULT_SCENARIOS`]).
const REDUCED_SCENARIOS: usize = 6;

/// How long to wait for a message that must not arrive.
const QUIET: Duration = Duration::from_millis(700);

/// The tutorial's deployment on `version` with our plugin: its users (hashed by `mosquitto_passwd`),
/// its acl file, `allow_anonymous false`, a TLS 1.2 listener with a private CA, and an audit log.
fn tutorial_on(version: Version) -> (MosquittoBroker, TestPki) {
    let pki = TestPki::generate();
    let config = format!(
        "plugin {}\nallow_anonymous false\n\
         plugin_opt_password_file {{dir}}/users.txt\n\
         plugin_opt_acl_file {{dir}}/acl.txt\n\
         plugin_opt_audit_log {{dir}}/audit.log\n{}",
        plugin_path(),
        pki.listener_config()
    );
    let broker = MosquittoBroker::start_on(
        version,
        &config,
        &[
            ("users.txt", &hashed_password_file(USERS)),
            ("acl.txt", ACL.as_bytes()),
        ],
    );
    (broker, pki)
}

crate::per_version!(the_tutorial_scenarios_hold_over_tls_with_mosquitto_clients);
fn the_tutorial_scenarios_hold_over_tls_with_mosquitto_clients(version: Version) {
    let (broker, pki) = tutorial_on(version);
    let port = broker.port();
    let ca = pki.ca_cert.to_str().expect("UTF-8 path");
    let tls = ["--cafile", ca, "--tls-version", "tlsv1.2"];
    // The tutorial's subscriber: admin on `#` at QoS 1.
    let admin = MosquittoSub::start(
        port,
        &[
            &tls[..],
            &["-i", "admin-sub", "-u", "admin", "-P", "admin1234"],
            &["-t", "#", "-q", "1"],
        ]
        .concat(),
    );
    let publish = |user: &str, password: &str, topic: &str| {
        mosquitto_pub(
            port,
            &[
                &tls[..],
                &["-u", user, "-P", password, "-q", "1", "-t", topic],
                &["-m", "MQTT Test"],
            ]
            .concat(),
        )
    };

    // 3. user1 on another user's topic: accepted on the wire (MQTT 3.1.1 has no refusal), never delivered.
    let denied = "colombia/cundinamarca/bogota/user2";
    let out = publish("user1", "123456", denied);
    assert!(out.status.success(), "{version}: {out:?}");
    // 2. a wrong password is refused.
    let out = publish("user1", "ABCDEFG", "colombia/cundinamarca/cajica/user1");
    assert!(!out.status.success(), "{version}: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not authori"),
        "{version}: {out:?}"
    );
    // 1. user1 on its own topic: admin receives it. The broker handles user1's packets in order, and
    // admin's deliveries are in order too: had the denied message been delivered, it would come first.
    let own = "colombia/cundinamarca/cajica/user1";
    let out = publish("user1", "123456", own);
    assert!(out.status.success(), "{version}: {out:?}");
    let got = admin.receive(2, QUIET * 3);
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, [own], "{version}; log:\n{}", broker.log());
    assert_eq!(got[0].payload, b"MQTT Test");

    // The audit log holds the refused login and the withheld publish, and nothing else.
    let records = audit_records(&broker);
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["access"].as_str().unwrap_or("?"),
                r["topic"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("write", denied)),
        "{version}: {records:?}\nlog:\n{}",
        broker.log()
    );
    let semantics = format!("mosquitto-{}", version.semantics());
    for r in &records {
        assert_eq!(r["verdict"], "deny", "{r}");
        assert_eq!(r["semantics"], semantics.as_str(), "{r}");
        assert!(!r.to_string().contains("ABCDEFG"), "no password: {r}");
    }
    // The plugin says whose acl_file it decides as; on 2.1 it also tells the broker who it is.
    let log = broker.log();
    assert!(
        log.contains(&format!("deciding as {semantics}'s acl_file")),
        "{version}; log:\n{log}"
    );
    let introduced = log.contains(&format!(
        "Plugin mqtt-policy version {} loaded.",
        env!("CARGO_PKG_VERSION")
    ));
    assert_eq!(introduced, version.is_2_1(), "{version}; log:\n{log}");
}

crate::per_version!(the_plugin_and_the_engine_decide_as_the_releases_own_acl_file);
fn the_plugin_and_the_engine_decide_as_the_releases_own_acl_file(version: Version) {
    // `MQTT_POLICY_DIFF_SCENARIOS` (and `MQTT_POLICY_DIFF_SEED`) explore further, as for the full test.
    let count = std::env::var("MQTT_POLICY_DIFF_SCENARIOS")
        .map(|n| n.parse().expect("MQTT_POLICY_DIFF_SCENARIOS is a number"))
        .unwrap_or(REDUCED_SCENARIOS);
    check_count(&AclFileOn(version), count);
    check_count(&PluginOn(version), count);
}

/// Fixed scenarios on every place where 2.0 and 2.1 read the same acl file differently (see
/// `mqtt_policy::policy::semantics`): `%u`/`%c` inside a level, values with `/` or a leading `$`, and a
/// NUL byte in a file without a final newline.
fn differences() -> Vec<Scenario> {
    let identity = |username: Option<&str>, client_id: &str| Identity {
        username: username.map(str::to_owned),
        client_id: client_id.to_owned(),
    };
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        Scenario {
            label: "2.0/2.1: %u and %c inside levels and values that are not one level".to_owned(),
            lines: strings(&[
                "pattern write a%ub/#",
                "pattern write %u/x",
                "pattern write y/%c",
                "pattern readwrite %c/z",
                "pattern read q/%u-%c",
            ]),
            crlf: false,
            final_newline: true,
            identities: vec![
                identity(Some("bob"), "c1"),
                identity(Some("a/b"), "c/d"),
                identity(Some("$u"), "$c"),
            ],
            topics: strings(&[
                "abobb/q", "a%ub/q", "a/b/x", "$u/x", "bob/x", "y/$c", "$c/z", "c/d/z", "c1/z",
                "q/bob-c1", "q/%u-%c",
            ]),
        },
        Scenario {
            label: "2.0/2.1: a NUL byte in a line of a file without a final newline".to_owned(),
            lines: strings(&["topic write b", "topic write a\0x", "topic write c"]),
            crlf: false,
            final_newline: false,
            identities: vec![identity(None, "nul")],
            topics: strings(&["a", "b", "c"]),
        },
    ]
}

crate::per_version!(the_known_differences_between_2_0_and_2_1_decide_as_each_release_does);
fn the_known_differences_between_2_0_and_2_1_decide_as_each_release_does(version: Version) {
    // The scenarios must tell the two semantics apart, or this test could not fail.
    for scenario in differences() {
        let v20 = compile(&scenario, Semantics::Mosquitto20).expect("valid acl");
        let v21 = compile(&scenario, Semantics::Mosquitto21).expect("valid acl");
        let differs = scenario.identities.iter().any(|identity| {
            scenario.topics.iter().any(|topic| {
                [Access::Read, Access::Write].iter().any(|&access| {
                    let client = client_ref(identity, &identity.client_id);
                    v20.decide(client, topic, access).verdict
                        != v21.decide(client, topic, access).verdict
                })
            })
        });
        assert!(differs, "{}: 2.0 and 2.1 decide alike", scenario.label);
    }
    let mut scenarios = differences();
    if version == Version::Upstream2022 {
        // The known divergence: 2.0.22's own acl_file reads a NUL-first line as 2.1 does.
        check_scenarios(&NulFirstAs21, &nul_first(), "fixed scenarios");
    } else {
        scenarios.extend(nul_first());
    }
    check_scenarios(&AclFileOn(version), &scenarios, "fixed scenarios");
    check_scenarios(&PluginOn(version), &scenarios, "fixed scenarios");
}

/// 2.0.22's built-in acl_file, compared with the engine's 2.1 semantics (for [`nul_first`] only).
struct NulFirstAs21;

impl BrokerUnderTest for NulFirstAs21 {
    fn name(&self) -> String {
        "mosquitto 2.0.22 acl_file (as 2.1)".to_owned()
    }

    fn start(&self, acl: &[u8]) -> Box<dyn RunningBroker> {
        AclFileOn(Version::Upstream2022).start(acl)
    }

    fn version(&self) -> Version {
        Version::Upstream212
    }
}

/// A NUL as the first byte of a line: 2.1 (and 2.0.22) return the empty C string as a line and read on;
/// Debian's 2.0.11 swallows the rest of the file as for any NUL. The 2.0 semantics follow 2.0.11, so this
/// runs on 2.0.11 and 2.1.2 (on 2.0.22 it is the one known divergence, documented in README.md).
fn nul_first() -> Vec<Scenario> {
    let nul_first = |final_newline: bool| Scenario {
        label: format!("a NUL first on a line (final newline: {final_newline})"),
        lines: ["topic write a", "\0topic write x", "topic write b"]
            .map(String::from)
            .to_vec(),
        crlf: false,
        final_newline,
        identities: vec![Identity {
            username: None,
            client_id: "nul-first".to_owned(),
        }],
        topics: ["a", "b", "x"].map(String::from).to_vec(),
    };
    vec![nul_first(true), nul_first(false)]
}

/// Connections the storm test opens while the broker is frozen: well past Mosquitto's backlog of 100.
const STORM: usize = 300;

crate::per_version!(a_connect_storm_finds_room_in_the_backlog_the_plugin_raised);
/// `plugin_opt_listen_backlog` (default 4096): with the broker frozen (SIGSTOP), the kernel completes
/// handshakes only for as many connections as the listen backlog holds. With the plugin's default all
/// [`STORM`] fit; with `0` (Mosquitto's own 100) the rest are dropped, as in a reconnect storm where
/// they wait for TCP's 1 s retransmission.
fn a_connect_storm_finds_room_in_the_backlog_the_plugin_raised(version: Version) {
    for (option, raised) in [("", true), ("plugin_opt_listen_backlog 0\n", false)] {
        let config = format!("plugin {}\nallow_anonymous true\n{option}", plugin_path());
        let mut broker = MosquittoBroker::start_on(version, &config, &[]);
        if raised {
            broker.wait_log("listen backlog of 1 listening socket(s) raised to 4096");
        }
        broker.signal(libc::SIGSTOP);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, broker.port()));
        let mut queued = Vec::new();
        while queued.len() < STORM {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(_) => break,
            }
        }
        broker.signal(libc::SIGCONT);
        let taken = queued.len();
        drop(queued);
        let log = broker.stop().1;
        if raised {
            assert_eq!(
                taken, STORM,
                "{version}: the raised backlog holds them all; log:\n{log}"
            );
        } else {
            assert!(
                (90..150).contains(&taken),
                "{version}: Mosquitto's own backlog of 100 holds about 100, not {taken}; log:\n{log}"
            );
            assert!(!log.contains("listen backlog"), "{log}");
        }
    }
}
