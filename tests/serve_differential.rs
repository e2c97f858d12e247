//! The differential test of the cluster contracts: the generated acl files, identities and topics of
//! `mosquitto-test/differential/` (the same generator, the same default seed), each file served by the
//! real `mqtt-policy serve`, and every write and read asked through each HTTP contract must get the
//! engine's decision — the decision `mosquitto-test`'s differential test holds equal to mosquitto's
//! built-in acl_file.
//!
//! Reads: Mosquitto checks each delivered message; the brokers of EMQX, VerneMQ and RabbitMQ check a
//! SUBSCRIBE once. A subscription to a concrete topic delivers exactly that topic, so under the strict
//! default it must be answered as a read of it; filters with wildcards are the documented difference
//! (tests/serve_contracts.rs and the unit tests of `Policy::decide_subscribe_strict`).
//!
//! Left out, as README.md says: a client id or username RabbitMQ or go-auth cannot send (no username;
//! for EMQX and go-auth an empty one, which they send as absent), `$share` topics as subscriptions
//! (they deliver the topic after the group), and for RabbitMQ topics with `.` or `*` (the lossy
//! routing-key translation).

mod serve_support;

#[path = "../mosquitto-test/differential/generate.rs"]
#[allow(dead_code)]
mod generate;

#[path = "../mosquitto-test/support/rng.rs"]
#[allow(dead_code)]
pub mod rng;

/// Where the generator looks for its random numbers (`crate::support::rng`).
mod support {
    pub use super::rng;
}

use mqtt_policy::policy::acl::Policy;
use mqtt_policy::policy::{Access, ClientRef, Semantics};
use serde_json::json;
use serve_support::client::Client;
use serve_support::Serve;

/// The seed of `mosquitto-test/differential` (`DEFAULT_SEED`), so both tests see the same files.
const SEED: u64 = 0x6d71_7474_2d70_6f6c;
const SCENARIOS: usize = 24;

/// One contract's answer to a write or a read, `None` when the contract cannot ask it.
type Ask = fn(&mut Client, Option<&str>, &str, &str, Access) -> Option<bool>;

fn emqx(c: &mut Client, user: Option<&str>, id: &str, topic: &str, access: Access) -> Option<bool> {
    if user == Some("") || (access == Access::Read && topic.starts_with("$share")) {
        return None;
    }
    let action = if access == Access::Write {
        "publish"
    } else {
        "subscribe"
    };
    let a = c.post_json(
        "/emqx/authz",
        &json!({"username": user, "clientid": id, "topic": topic, "action": action}),
        &[],
    );
    assert_eq!(a.status, 200, "{a:?}");
    Some(a.json()["result"] == "allow")
}

fn vernemq(
    c: &mut Client,
    user: Option<&str>,
    id: &str,
    topic: &str,
    access: Access,
) -> Option<bool> {
    if access == Access::Read && topic.starts_with("$share") {
        return None;
    }
    let (hook, body) = if access == Access::Write {
        (
            "auth_on_publish",
            json!({"username": user, "client_id": id, "mountpoint": "", "qos": 0, "topic": topic,
                   "payload": "", "retain": false}),
        )
    } else {
        (
            "auth_on_subscribe",
            json!({"username": user, "client_id": id, "mountpoint": "",
                   "topics": [{"topic": topic, "qos": 0}]}),
        )
    };
    let a = c.post_json("/vernemq", &body, &[&format!("vernemq-hook: {hook}")]);
    assert_eq!(a.status, 200, "{a:?}");
    Some(a.json() == json!({"result": "ok"}))
}

fn rabbitmq(
    c: &mut Client,
    user: Option<&str>,
    id: &str,
    topic: &str,
    access: Access,
) -> Option<bool> {
    let user = user?;
    if topic.contains(['.', '*']) || (access == Access::Read && topic.starts_with("$share")) {
        return None;
    }
    let key: String = topic.replace('/', ".").replace('+', "*");
    let permission = if access == Access::Write {
        "write"
    } else {
        "read"
    };
    let a = c.post_form(
        "/rabbitmq/topic",
        &[
            ("username", user),
            ("vhost", "/"),
            ("resource", "topic"),
            ("name", "amq.topic"),
            ("permission", permission),
            ("routing_key", &key),
            ("variable_map.client_id", id),
        ],
    );
    assert_eq!(a.status, 200, "{a:?}");
    Some(a.body == "allow")
}

fn go_auth(
    c: &mut Client,
    user: Option<&str>,
    id: &str,
    topic: &str,
    access: Access,
) -> Option<bool> {
    if user == Some("") {
        return None;
    }
    let acc = if access == Access::Write { 2 } else { 1 };
    let a = c.post_json(
        "/go-auth/acl",
        &json!({"username": user.unwrap_or(""), "clientid": id, "topic": topic, "acc": acc}),
        &[],
    );
    assert!(a.status == 200 || a.status == 403, "{a:?}");
    Some(a.status == 200)
}

#[test]
fn every_contract_decides_the_generated_cases_as_the_engine() {
    let contracts: [(&str, Ask); 4] = [
        ("emqx", emqx),
        ("vernemq", vernemq),
        ("rabbitmq", rabbitmq),
        ("go-auth", go_auth),
    ];
    let mut asked = [0usize; 4];
    let mut disagreements = Vec::new();
    for scenario in generate::scenarios(SEED, SCENARIOS) {
        let acl = scenario.acl();
        let policy = Policy::from_acl_as("acl.txt", acl.as_bytes(), Semantics::default())
            .unwrap_or_else(|e| panic!("{}: {e}", scenario.label));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("acl.txt"), &acl).unwrap();
        let serve = Serve::start_in(
            dir.path(),
            &["--acl-file", "{dir}/acl.txt", "--listen", "127.0.0.1:0"],
        );
        let mut client = Client::connect(serve.addr);
        for who in &scenario.identities {
            let user = who.username.as_deref();
            let id = who.client_id.as_str();
            for topic in &scenario.topics {
                for access in [Access::Write, Access::Read] {
                    let engine = policy
                        .decide(ClientRef::from_names(user, Some(id)), topic, access)
                        .is_allowed();
                    for (i, (name, ask)) in contracts.iter().enumerate() {
                        let Some(answer) = ask(&mut client, user, id, topic, access) else {
                            continue;
                        };
                        asked[i] += 1;
                        if answer != engine {
                            disagreements.push(format!(
                                "{}: {name}: username {user:?}, client id {id:?}, topic {topic:?}, {}: \
                                 contract {answer}, engine {engine}\n{acl}",
                                scenario.label,
                                access.as_str()
                            ));
                        }
                    }
                }
            }
        }
        assert!(serve.stop());
    }
    eprintln!(
        "asked: emqx {}, vernemq {}, rabbitmq {}, go-auth {}; {} disagreements",
        asked[0],
        asked[1],
        asked[2],
        asked[3],
        disagreements.len()
    );
    for (name, n) in contracts.iter().map(|c| c.0).zip(asked) {
        assert!(n > 100, "{name}: only {n} cases asked");
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements; the first:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
