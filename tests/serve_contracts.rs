//! The cluster contracts of `mqtt-policy serve` at the HTTP level, against the real binary, with
//! request bodies built from each broker's documentation (sources in src/serve/<contract>.rs and
//! README.md): EMQX 5 HTTP authentication and authorization, VerneMQ webhooks, RabbitMQ's HTTP auth
//! backend, mosquitto-go-auth's HTTP backend; bad input; audit records, counters and SIGHUP.

mod serve_support;

use std::path::Path;

use mqtt_policy::policy::passwd::{hash_password, HashKind};
use serde_json::json;
use serve_support::client::{Answer, Client};
use serve_support::Serve;

/// The tutorial's acl file and two of its users (hashed), in a mosquitto.conf with an audit log.
fn files(dir: &Path) {
    serve_support::tutorial_files(dir);
    let line = |u: &str, p: &str| {
        format!(
            "{u}:{}\n",
            hash_password(p.as_bytes(), HashKind::Sha512Pbkdf2, Some(1000))
        )
    };
    std::fs::write(
        dir.join("passwd"),
        line("user1", "123456") + &line("admin", "admin1234"),
    )
    .unwrap();
    let conf = std::fs::read_to_string(dir.join("mosquitto.conf")).unwrap();
    std::fs::write(
        dir.join("mosquitto.conf"),
        format!("{conf}plugin_opt_password_file {}/passwd\n", dir.display()),
    )
    .unwrap();
}

fn start(extra: &[&str]) -> Serve {
    Serve::start(files, extra)
}

fn audit(s: &Serve) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.path("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit record"))
        .collect()
}

#[test]
fn emqx_authn_answers_with_the_clients_publish_rules_and_hides_unknown_users() {
    let s = start(&[]);
    let mut c = Client::connect(s.addr);
    // The body template of README.md: {"username": "${username}", "password": "${password}", ...}
    let authn = |c: &mut Client, u: &str, p: &str| {
        c.post_json(
            "/emqx/authn",
            &json!({"username": u, "password": p, "clientid": "c1", "peerhost": "127.0.0.1"}),
            &[],
        )
    };
    let ok = authn(&mut c, "user1", "123456");
    assert_eq!(ok.status, 200, "{ok:?}");
    let v = ok.json();
    assert_eq!(v["result"], "allow");
    assert_eq!(v["is_superuser"], false);
    assert!(v.get("expire_at").is_none());
    assert_eq!(
        v["acl"],
        json!([
            {"permission": "allow", "action": "publish", "topic": "+/+/+/user1"},
            {"permission": "deny", "action": "publish", "topic": "#"},
        ])
    );
    let wrong = authn(&mut c, "user1", "nope");
    let unknown = authn(&mut c, "nobody", "nope");
    assert_eq!((wrong.status, unknown.status), (200, 200));
    assert_eq!(
        wrong.body, unknown.body,
        "an unknown user looks like a wrong password"
    );
    assert_eq!(wrong.json(), json!({"result": "deny"}));
    let records = audit(&s);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["reason"]["kind"], "wrong_password");
    assert_eq!(records[1]["reason"]["kind"], "unknown_user");
    assert_eq!(records[0]["address"], "127.0.0.1");
    assert!(!std::fs::read_to_string(s.path("audit.log"))
        .unwrap()
        .contains("nope"));
}

#[test]
fn emqx_authz_decides_publish_and_subscribe_with_the_strict_default() {
    let s = start(&[]);
    let mut c = Client::connect(s.addr);
    let authz = |c: &mut Client, action: &str, topic: &str| {
        let a = c.post_json(
            "/emqx/authz",
            &json!({"username": "user1", "clientid": "c1", "topic": topic, "action": action, "peerhost": "127.0.0.1"}),
            &[],
        );
        assert_eq!(a.status, 200, "{a:?}");
        a.json()["result"].as_str().unwrap().to_owned()
    };
    assert_eq!(authz(&mut c, "publish", "a/b/c/user1"), "allow");
    assert_eq!(authz(&mut c, "publish", "a/b/c/admin"), "deny");
    assert_eq!(authz(&mut c, "subscribe", "a/b/+/user1"), "allow");
    // Some topics of +/+/+/+ are readable, others not: the strict default refuses it.
    assert_eq!(authz(&mut c, "subscribe", "+/+/+/+"), "deny");
    let records = audit(&s);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["access"], "write");
    assert_eq!(records[0]["topic"], "a/b/c/admin");
    assert!(
        records[0]["message"]
            .as_str()
            .unwrap()
            .contains("no rule matched"),
        "{records:?}"
    );
    assert_eq!(records[1]["access"], "subscribe");
    assert_eq!(
        records[1]["reason"]["kind"],
        "subscription_not_wholly_readable"
    );
    let lenient = start(&["--subscribe", "lenient"]);
    let mut c = Client::connect(lenient.addr);
    assert_eq!(authz(&mut c, "subscribe", "+/+/+/+"), "allow");
    assert_eq!(authz(&mut c, "subscribe", "x/#"), "allow");
    assert_eq!(authz(&mut c, "subscribe", "a/b/c/admin"), "deny");
}

#[test]
fn vernemq_webhooks_answer_all_six_hooks() {
    let s = start(&["--cache-max-age", "30"]);
    let mut c = Client::connect(s.addr);
    let hook = |c: &mut Client, name: &str, body: serde_json::Value| {
        let header = format!("vernemq-hook: {name}");
        let a = c.post_json("/vernemq", &body, &[&header]);
        assert_eq!(a.status, 200, "{name}: {a:?}");
        a
    };
    // Payloads as the VerneMQ webhooks documentation shows them.
    let register = |u: &str, p: &str| {
        json!({"peer_addr": "127.0.0.1", "peer_port": 8888, "username": u, "password": p,
               "mountpoint": "", "client_id": "c1", "clean_session": false})
    };
    for name in ["auth_on_register", "auth_on_register_m5"] {
        let mut body = register("user1", "123456");
        if name.ends_with("_m5") {
            body["properties"] = json!({});
            body["clean_start"] = json!(true);
        }
        let ok = hook(&mut c, name, body);
        assert_eq!(ok.json(), json!({"result": "ok"}));
        assert_eq!(ok.header("cache-control"), Some("max-age=30"));
        let wrong = hook(&mut c, name, register("user1", "x"));
        let unknown = hook(&mut c, name, register("ghost", "x"));
        assert_eq!(wrong.body, unknown.body);
        assert_eq!(wrong.json(), json!({"result": {"error": "not_allowed"}}));
        assert_eq!(
            wrong.header("cache-control"),
            None,
            "refusals are not cached"
        );
    }
    for name in ["auth_on_publish", "auth_on_publish_m5"] {
        let publish = |topic: &str| {
            json!({"username": "user1", "client_id": "c1", "mountpoint": "", "qos": 1,
                   "topic": topic, "payload": "aGVsbG8=", "retain": false, "properties": {}})
        };
        assert_eq!(
            hook(&mut c, name, publish("a/b/c/user1")).json(),
            json!({"result": "ok"})
        );
        assert_eq!(
            hook(&mut c, name, publish("a/b/c/admin")).json(),
            json!({"result": {"error": "not_allowed"}})
        );
    }
    for (name, refused) in [("auth_on_subscribe", 128), ("auth_on_subscribe_m5", 135)] {
        let subscribe = |topics: serde_json::Value| {
            json!({"username": "user1", "client_id": "c1", "mountpoint": "", "topics": topics,
                   "properties": {}})
        };
        let all = hook(
            &mut c,
            name,
            subscribe(json!([{"topic": "a/b/c/user1", "qos": 1}])),
        );
        assert_eq!(all.json(), json!({"result": "ok"}));
        assert_eq!(all.header("cache-control"), Some("max-age=30"));
        let some = hook(
            &mut c,
            name,
            subscribe(json!([{"topic": "a/b/c/user1", "qos": 1}, {"topic": "#", "qos": 0}])),
        );
        assert_eq!(
            some.json(),
            json!({"result": "ok", "topics": [{"topic": "a/b/c/user1", "qos": 1}, {"topic": "#", "qos": refused}]})
        );
        assert_eq!(some.header("cache-control"), None);
    }
    let no_header = c.post_json("/vernemq", &json!({}), &[]);
    assert_eq!(no_header.status, 400, "{no_header:?}");
    let unknown = c.post_json("/vernemq", &json!({}), &["vernemq-hook: on_deliver"]);
    assert_eq!(unknown.status, 400, "{unknown:?}");
}

#[test]
fn rabbitmq_backend_answers_its_four_paths_by_get_and_post() {
    let s = start(&[]);
    let mut c = Client::connect(s.addr);
    let get = |c: &mut Client, path: &str, pairs: &[(&str, &str)]| -> Answer {
        let q = serve_support::client::form(pairs);
        c.request("GET", &format!("{path}?{q}"), &[], b"")
    };
    let user = get(
        &mut c,
        "/rabbitmq/user",
        &[("username", "user1"), ("password", "123456")],
    );
    assert_eq!((user.status, user.body.as_str()), (200, "allow"));
    let wrong = c.post_form(
        "/rabbitmq/user",
        &[("username", "user1"), ("password", "bad")],
    );
    let unknown = c.post_form(
        "/rabbitmq/user",
        &[("username", "ghost"), ("password", "bad")],
    );
    assert_eq!(wrong.body, "deny");
    assert_eq!(wrong.body, unknown.body);
    let vhost = c.post_form(
        "/rabbitmq/vhost",
        &[("username", "user1"), ("vhost", "/"), ("ip", "127.0.0.1")],
    );
    assert_eq!(vhost.body, "allow");
    let resource = c.post_form(
        "/rabbitmq/resource",
        &[
            ("username", "user1"),
            ("vhost", "/"),
            ("resource", "exchange"),
            ("name", "amq.topic"),
            ("permission", "write"),
        ],
    );
    assert_eq!(resource.body, "allow");
    let topic = |c: &mut Client, permission: &str, key: &str| {
        let a = c.post_form(
            "/rabbitmq/topic",
            &[
                ("username", "user1"),
                ("vhost", "/"),
                ("resource", "topic"),
                ("name", "amq.topic"),
                ("permission", permission),
                ("routing_key", key),
                ("variable_map.client_id", "c1"),
            ],
        );
        assert_eq!(a.status, 200, "{a:?}");
        a.body
    };
    // MQTT a/b/c/user1 is the routing key a.b.c.user1.
    assert_eq!(topic(&mut c, "write", "a.b.c.user1"), "allow");
    assert_eq!(topic(&mut c, "write", "a.b.c.admin"), "deny");
    assert_eq!(topic(&mut c, "read", "*.b.*.user1"), "allow");
    assert_eq!(topic(&mut c, "read", "#"), "deny");
    let records = audit(&s);
    assert_eq!(records.last().unwrap()["topic"], "#");
    assert_eq!(records[records.len() - 2]["topic"], "a/b/c/admin");
    let missing = c.post_form("/rabbitmq/topic", &[("username", "user1")]);
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("missing field"), "{missing:?}");
}

#[test]
fn go_auth_backend_answers_in_json_form_and_text_modes() {
    let s = start(&[]);
    let mut c = Client::connect(s.addr);
    let user = c.post_json(
        "/go-auth/user",
        &json!({"username": "user1", "password": "123456", "clientid": "c1"}),
        &[],
    );
    assert_eq!(user.status, 200);
    assert_eq!(user.json(), json!({"Ok": true, "Error": ""}));
    let wrong = c.post_form(
        "/go-auth/user",
        &[("username", "user1"), ("password", "x"), ("clientid", "c1")],
    );
    let unknown = c.post_form(
        "/go-auth/user",
        &[("username", "ghost"), ("password", "x"), ("clientid", "c1")],
    );
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.body, unknown.body);
    let su = c.post_json("/go-auth/superuser", &json!({"username": "admin"}), &[]);
    assert_eq!(su.status, 403);
    let acl = |c: &mut Client, topic: &str, acc: i64| {
        c.post_json(
            "/go-auth/acl",
            &json!({"username": "user1", "clientid": "c1", "topic": topic, "acc": acc}),
            &[],
        )
        .status
    };
    assert_eq!(acl(&mut c, "a/b/c/user1", 1), 200);
    assert_eq!(acl(&mut c, "a/b/c/user1", 2), 200);
    assert_eq!(acl(&mut c, "a/b/c/user1", 3), 200);
    assert_eq!(acl(&mut c, "a/b/c/admin", 2), 403);
    // Mosquitto checks each delivery with acc 1: a subscription is answered as the plugin does.
    assert_eq!(acl(&mut c, "+/+/+/+", 4), 200);
    assert_eq!(acl(&mut c, "a/b/c/user1", 7), 400);
    let text = c.post_form(
        "/go-auth/acl?response_mode=text",
        &[
            ("username", "user1"),
            ("clientid", "c1"),
            ("topic", "a/b/c/user1"),
            ("acc", "2"),
        ],
    );
    assert_eq!((text.status, text.body.as_str()), (200, "ok"));
}

#[test]
fn bad_input_gets_clear_errors_and_the_service_answers_on() {
    let s = start(&[]);
    let mut c = Client::connect(s.addr);
    let malformed = c.request(
        "POST",
        "/emqx/authz",
        &["Content-Type: application/json"],
        b"{\"username\": ",
    );
    assert_eq!(malformed.status, 400);
    assert!(malformed.json()["error"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    let missing = c.post_json(
        "/emqx/authz",
        &json!({"username": "user1", "clientid": "c1", "action": "publish"}),
        &[],
    );
    assert_eq!(missing.status, 400);
    assert!(
        missing.body.contains("missing field `topic`"),
        "{missing:?}"
    );
    let bad_action = c.post_json(
        "/emqx/authz",
        &json!({"username": "user1", "clientid": "c1", "topic": "t", "action": "all"}),
        &[],
    );
    assert_eq!(bad_action.status, 400);
    let unknown = c.request("GET", "/emqx/nothing", &[], b"");
    assert_eq!(unknown.status, 404);
    let huge = vec![b' '; 300 * 1024];
    let too_big = c.request(
        "POST",
        "/emqx/authz",
        &["Content-Type: application/json"],
        &huge,
    );
    assert_eq!(too_big.status, 413, "{too_big:?}");
    // A new connection still gets answers.
    let mut c = Client::connect(s.addr);
    let ok = c.post_json(
        "/emqx/authz",
        &json!({"username": "user1", "clientid": "c1", "topic": "a/b/c/user1", "action": "publish"}),
        &[],
    );
    assert_eq!(ok.json()["result"], "allow");
}

#[test]
fn decisions_are_counted_and_a_sighup_changes_them() {
    let mut s = start(&[]);
    let mut c = Client::connect(s.addr);
    let publish = |c: &mut Client| {
        c.post_json(
            "/emqx/authz",
            &json!({"username": "user1", "clientid": "c1", "topic": "a/b/c/user1", "action": "publish"}),
            &[],
        )
        .json()["result"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(publish(&mut c), "allow");
    let counters = s.json("/page/api/counters").to_string();
    assert!(
        counters.contains("mqtt_policy_decisions_total"),
        "{counters}"
    );
    std::fs::write(s.path("acl.txt"), "pattern read +/+/+/%u\n").unwrap();
    s.hup();
    s.wait_log("SIGHUP: reloaded", 1);
    assert_eq!(publish(&mut c), "deny");
    // A bad file keeps the policy in force.
    std::fs::write(s.path("acl.txt"), "topic nonsense a/b\n").unwrap();
    s.hup();
    s.wait_log("SIGHUP: reload failed", 1);
    assert_eq!(publish(&mut c), "deny");
    assert!(s.stop());
}

#[test]
fn connections_are_bounded_and_stalled_clients_are_closed() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let s = start(&["--max-connections", "2", "--idle-timeout", "1"]);
    let started = Instant::now();
    // Two clients that connect and stall: one sends nothing, one half a request.
    let mut silent = std::net::TcpStream::connect(s.addr).unwrap();
    let mut half = std::net::TcpStream::connect(s.addr).unwrap();
    half.write_all(b"POST /emqx/authz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A third waits for a place: it is answered once a stalled one is closed.
    let mut c = Client::connect(s.addr);
    let a = c.post_json(
        "/emqx/authz",
        &json!({"username": "user1", "clientid": "c1", "topic": "a/b/c/user1", "action": "publish"}),
        &[],
    );
    assert_eq!(a.json()["result"], "allow");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "answered after {:?}, before any stalled connection was closed",
        started.elapsed()
    );
    for stalled in [&mut silent, &mut half] {
        stalled
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        // Closed by the service: EOF (or a reset), not the 10 s read timeout.
        if let Err(e) = stalled.read_to_end(&mut rest) {
            assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(9));
}
