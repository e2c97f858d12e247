//! The tutorial's deployment on the real mosquitto with its built-in checks: `password_file` hashed
//! with `mosquitto_passwd -U`, `acl_file` with rule set T, `allow_anonymous false`, TLS 1.2 with a
//! private CA. Each test states one behaviour of the reference (§2.6 rule set T, §4, §7 items 3–5); the
//! same expectations are what our plugin and broker are held to.

use std::time::Duration;

use crate::support::broker::MosquittoBroker;
use crate::support::certs::TestPki;
use crate::support::clients::{v311, v5, Endpoint, Login};
use crate::support::tools::{hashed_password_file, mosquitto_pub, MosquittoSub};

/// The tutorial's acl file (rule set T).
pub const ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

/// The tutorial's users and passwords, before hashing.
pub const USERS: &[(&str, &str)] = &[
    ("admin", "admin1234"),
    ("user1", "123456"),
    ("pe.perez", "abc123"),
    ("ironman", "jarvis123"),
    ("Jfkennedy", "apolo11"),
];

/// How long a test waits for a message that should not come.
const QUIET: Duration = Duration::from_millis(300);

/// The tutorial's broker: mosquitto with the tutorial's files, on a TLS 1.2 listener.
struct Tutorial {
    broker: MosquittoBroker,
    pki: TestPki,
}

impl Tutorial {
    fn start() -> Tutorial {
        let pki = TestPki::generate();
        let config = format!(
            "allow_anonymous false\npassword_file {{dir}}/users.txt\nacl_file {{dir}}/acl.txt\n{}",
            pki.listener_config()
        );
        let users = hashed_password_file(USERS);
        let broker = MosquittoBroker::start(
            &config,
            &[("users.txt", &users), ("acl.txt", ACL.as_bytes())],
        );
        Tutorial { broker, pki }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::tls(self.broker.port(), self.pki.client_config())
    }

    /// The MQTT 5 session of a tutorial user with the right password.
    async fn v5(&self, user: &str) -> v5::Session {
        let password = USERS
            .iter()
            .find(|(u, _)| *u == user)
            .expect("tutorial user")
            .1;
        v5::connect(
            &self.endpoint(),
            &Login::user(&format!("{user}-v5"), user, password),
        )
        .await
        .unwrap_or_else(|code| panic!("{user} refused: 0x{code:02x}\n{}", self.broker.log()))
    }

    /// `mosquitto_sub` as admin on `#` at QoS 1, as in the tutorial.
    fn admin_sub(&self) -> MosquittoSub {
        let ca = self.pki.ca_cert.to_str().expect("UTF-8 path");
        let args = [
            "--cafile",
            ca,
            "--tls-version",
            "tlsv1.2",
            "-i",
            "admin-sub",
        ];
        let login = ["-u", "admin", "-P", "admin1234", "-t", "#", "-q", "1"];
        MosquittoSub::start(self.broker.port(), &[&args[..], &login[..]].concat())
    }
}

#[tokio::test]
async fn admin_on_everything_receives_user1_publishing_to_its_own_topic() {
    let tutorial = Tutorial::start();
    let admin = tutorial.admin_sub();
    let mut user1 = tutorial.v5("user1").await;
    let topic = "colombia/cundinamarca/cajica/user1";
    for qos in [1, 2] {
        let reason = user1.publish(topic, qos, b"MQTT Test").await;
        assert_eq!(reason, Some(0x00), "QoS {qos}\n{}", tutorial.broker.log());
    }
    let got = admin.receive(2, Duration::from_secs(5));
    let got: Vec<(&str, &[u8])> = got
        .iter()
        .map(|m| (m.topic.as_str(), &m.payload[..]))
        .collect();
    assert_eq!(
        got,
        [(topic, &b"MQTT Test"[..]); 2],
        "{}",
        tutorial.broker.log()
    );
    user1.disconnect().await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_connack_5_over_mqtt_311_and_0x87_over_mqtt_5() {
    let tutorial = Tutorial::start();
    let login = Login::user("user1-wrong", "user1", "ABCDEFG");
    let v311 = v311::connect(&tutorial.endpoint(), &login).await;
    assert_eq!(v311.err(), Some(5), "MQTT 3.1.1: 5 not authorised (not 4)");
    let v5 = v5::connect(&tutorial.endpoint(), &login).await;
    assert_eq!(
        v5.err(),
        Some(0x87),
        "MQTT 5: 0x87 not authorised (not 0x86)"
    );
}

#[tokio::test]
async fn an_anonymous_client_is_refused_with_connack_5_over_mqtt_311_and_0x87_over_mqtt_5() {
    let tutorial = Tutorial::start();
    let login = Login::anonymous("nobody");
    let v311 = v311::connect(&tutorial.endpoint(), &login).await;
    assert_eq!(v311.err(), Some(5));
    let v5 = v5::connect(&tutorial.endpoint(), &login).await;
    assert_eq!(v5.err(), Some(0x87));
}

/// §2.6 rule set T, every row: v5 QoS 1 PUBACK codes.
#[tokio::test]
async fn rule_set_t_publish_outcomes_are_the_reference_table() {
    let tutorial = Tutorial::start();
    let rows: &[(&str, &str, u8)] = &[
        ("user1", "colombia/cundinamarca/cajica/user1", 0x10),
        ("user1", "colombia/cundinamarca/bogota/user2", 0x87),
        ("user1", "user1", 0x87),
        ("user1", "panama/colon/user1", 0x87),
        ("user1", "a/b/c/d/user1", 0x87),
        ("user1", "a//c/user1", 0x10),
        ("pe.perez", "x/y/z/pe.perez", 0x10),
        ("Jfkennedy", "x/y/z/jfkennedy", 0x87),
        ("admin", "any/topic", 0x10),
    ];
    for (user, topic, expected) in rows {
        let mut session = tutorial.v5(user).await;
        let reason = session.publish(topic, 1, b"MQTT Test").await;
        assert_eq!(
            reason,
            Some(*expected),
            "{user} publishing {topic:?}\n{}",
            tutorial.broker.log()
        );
        session.disconnect().await;
    }
}

#[tokio::test]
async fn user1_denied_on_another_users_topic_gets_puback_and_pubrec_0x87_and_admin_receives_nothing(
) {
    let tutorial = Tutorial::start();
    let admin = tutorial.admin_sub();
    let mut user1 = tutorial.v5("user1").await;
    let denied = "colombia/cundinamarca/bogota/user2";
    assert_eq!(user1.publish(denied, 1, b"qos1").await, Some(0x87));
    assert_eq!(user1.publish(denied, 2, b"qos2").await, Some(0x87));
    // QoS 0 has no answer; the connection stays up, as the next, allowed publish shows.
    assert_eq!(user1.publish(denied, 0, b"qos0").await, None);
    let allowed = "colombia/cundinamarca/cajica/user1";
    assert_eq!(user1.publish(allowed, 1, b"allowed").await, Some(0x00));
    // The broker handles one client's packets in order: had a denied message been delivered, it
    // would have arrived before the allowed one.
    let got = admin.receive(2, QUIET * 3);
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, [allowed], "{}", tutorial.broker.log());
    user1.disconnect().await;
}

/// §4.3 and the tutorial's main stumbling block: over MQTT 3.1.1 a denied publish looks accepted.
#[tokio::test]
async fn user1_denied_over_mqtt_311_sees_no_error_at_all() {
    let tutorial = Tutorial::start();
    let admin = tutorial.admin_sub();
    let ca = tutorial.pki.ca_cert.to_str().expect("UTF-8 path");
    for qos in ["0", "1"] {
        let out = mosquitto_pub(
            tutorial.broker.port(),
            &[
                "--cafile",
                ca,
                "-V",
                "mqttv311",
                "-u",
                "user1",
                "-P",
                "123456",
                "-q",
                qos,
                "-t",
                "panama/colon/user1",
                "-m",
                "MQTT Test",
            ],
        );
        assert!(
            out.status.success(),
            "mosquitto_pub QoS {qos} reports no error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut user1 = v311::connect(
        &tutorial.endpoint(),
        &Login::user("user1-v311", "user1", "123456"),
    )
    .await
    .expect("user1 connects");
    user1
        .publish("colombia/cundinamarca/bogota/user2", 1, b"MQTT Test")
        .await; // PUBACK, no code
    assert!(
        admin.receive(1, QUIET).is_empty(),
        "{}",
        tutorial.broker.log()
    );
    assert!(
        tutorial
            .broker
            .log()
            .contains("Denied PUBLISH from user1-v311"),
        "mosquitto logs the denial only at DEBUG\n{}",
        tutorial.broker.log()
    );
    user1.disconnect().await;
}

#[tokio::test]
async fn user1_subscribed_to_everything_receives_only_its_own_topics() {
    let tutorial = Tutorial::start();
    let mut user1 = tutorial.v5("user1").await;
    assert_eq!(
        user1.subscribe("#", 1).await,
        [1],
        "acl_file never refuses a subscription"
    );
    let mut admin = tutorial.v5("admin").await;
    let published = [
        "colombia/cundinamarca/bogota/user2",
        "colombia/cundinamarca/cajica/user1",
        "user1",
        "x/y/z/pe.perez",
        "a//c/user1",
        "mexico/jalisco/guadalajara/user1",
    ];
    for topic in published {
        assert_eq!(
            admin.publish(topic, 1, b"MQTT Test").await,
            Some(0x00),
            "{topic}"
        );
    }
    let got = user1.receive(published.len(), QUIET * 3).await;
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "colombia/cundinamarca/cajica/user1",
            "a//c/user1",
            "mexico/jalisco/guadalajara/user1"
        ],
        "{}",
        tutorial.broker.log()
    );
    user1.disconnect().await;
    admin.disconnect().await;
}
