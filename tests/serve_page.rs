//! The page's JSON, from the real `mqtt-policy serve` over the tutorial's files: the rules that apply
//! to a client with `%u`/`%c` substituted, "may X do Y on T" answered in exactly the words of
//! `mqtt-policy check`, recent denials from the audit log (bounded, newest first, shadow records and
//! garbage left out, each with today's verdict), the counters, and nothing but GET. The browser test
//! (`serve_browser.rs`) drives the page itself.

mod serve_support;

use std::process::Command;

use serve_support::{encode, tutorial_files, Serve};

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_rules_that_apply_to_a_client_are_shown_substituted() {
    let s = Serve::start(
        |dir| {
            tutorial_files(dir);
            let acl = "pattern readwrite +/+/+/%u\npattern read clients/%c/#\n\
                       user admin\ntopic readwrite #\nuser user1\ntopic deny secret/#\n";
            std::fs::write(dir.join("acl.txt"), acl).unwrap();
        },
        &[],
    );
    let v = s.json("/page/api/client?user=user1&client_id=sensor-7");
    assert_eq!(v["username"], "user1");
    assert_eq!(v["client_id"], "sensor-7");
    assert_eq!(strings(&v["read"]), ["+/+/+/user1", "clients/sensor-7/#"]);
    assert_eq!(strings(&v["write"]), ["+/+/+/user1"]);
    assert_eq!(strings(&v["denied"]), ["secret/#"]);
    let rules = v["rules"].as_array().unwrap();
    let acl = s.path("acl.txt").display().to_string();
    // Own list first, then the patterns in file order.
    assert_eq!(rules[0]["location"], format!("{acl}:6"));
    assert_eq!(rules[1]["text"], "pattern readwrite +/+/+/%u");
    assert_eq!(rules[1]["effective_filter"], "+/+/+/user1");
    assert_eq!(rules[2]["effective_filter"], "clients/sensor-7/#");
    assert_eq!(rules.len(), 3, "admin's rules do not apply to user1: {v}");

    // The client id defaults to the username.
    let v = s.json("/page/api/client?user=user1");
    assert_eq!(v["client_id"], "user1");
    assert_eq!(v["rules"][2]["effective_filter"], "clients/user1/#");

    // An anonymous client: the %u pattern is skipped, with why.
    let v = s.json("/page/api/client?user=&client_id=c1");
    assert_eq!(v["username"], serde_json::Value::Null);
    assert_eq!(strings(&v["read"]), ["clients/c1/#"]);
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["text"], "pattern readwrite +/+/+/%u");
    assert!(skipped[0]["why"].as_str().unwrap().contains("no username"));
}

#[test]
fn a_question_is_answered_in_the_words_of_check() {
    let s = Serve::start(tutorial_files, &[]);
    let conf = s.path("mosquitto.conf").display().to_string();
    for (user, client, access, topic) in [
        ("user1", "", "write", "panama/colon/user1"),
        ("user1", "", "write", "colombia/cundinamarca/cajica/user1"),
        ("user1", "other", "read", "a/b/c/user1"),
        ("admin", "", "subscribe", "#"),
        ("", "", "subscribe", "#"),
        ("ironman", "", "write", "$SYS/broker/x"),
    ] {
        let v = s.json(&format!(
            "/page/api/check?user={}&client_id={}&access={access}&topic={}",
            encode(user),
            encode(client),
            encode(topic)
        ));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"));
        cmd.args(["check", "-c", &conf]);
        if user.is_empty() {
            cmd.arg("--anonymous");
        } else {
            cmd.args(["--user", user]);
        }
        if !client.is_empty() {
            cmd.args(["--client-id", client]);
        }
        let out = cmd.arg(format!("--{access}")).arg(topic).output().unwrap();
        let printed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(v["text"], printed, "{user} {access} {topic}");
        let verdict = if out.status.code() == Some(0) {
            "allow"
        } else {
            "deny"
        };
        assert_eq!(v["verdict"], verdict, "{user} {access} {topic}: {printed}");
    }
    let (status, _, body) = s.get("/page/api/check?user=a&access=delete&topic=x", &[]);
    assert_eq!(status, 400);
    assert!(body.contains("expected read, write or subscribe"), "{body}");
}

#[test]
fn recent_denials_come_from_the_audit_log_newest_first_with_todays_verdict() {
    use mqtt_policy::audit::AuditRecord;
    use mqtt_policy::policy::acl::Policy;
    use mqtt_policy::policy::{Access, ClientRef};
    use std::time::{Duration, UNIX_EPOCH};

    let s = Serve::start(tutorial_files, &[]);
    // No audit log yet: an empty list that says why.
    let v = s.json("/page/api/denials");
    assert_eq!(v["records"].as_array().unwrap().len(), 0);
    assert!(
        v["note"]
            .as_str()
            .unwrap()
            .contains("cannot read the audit log"),
        "{v}"
    );

    // Records as the broker and the plugin write them (`AuditRecord::to_json`), under a policy where
    // user1 could not write its own topics; a shadow record and a broken line among them.
    let acl = s.path("acl.txt").display().to_string();
    let old = Policy::from_acl(&acl, b"pattern read +/+/+/%u\n").unwrap();
    let mut lines = String::new();
    for (i, topic) in ["a/b/c/user1", "panama/colon/user1", "x/y/z/user1"]
        .iter()
        .enumerate()
    {
        let client = ClientRef::from_names(Some("user1"), None);
        let e = old.explain(client, topic, Access::Write);
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + i as u64);
        lines.push_str(&AuditRecord::acl(t, Some("127.0.0.1"), e).to_json());
        lines.push('\n');
        if i == 0 {
            lines.push_str(
                "{\"kind\":\"shadow\",\"verdict\":\"deny\",\"message\":\"x\"}\nnot json\n",
            );
        }
    }
    std::fs::write(s.path("audit.log"), lines).unwrap();
    let v = s.json("/page/api/denials");
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{v}");
    assert_eq!(records[0]["topic"], "x/y/z/user1");
    assert_eq!(records[2]["topic"], "a/b/c/user1");
    assert_eq!(records[1]["topic"], "panama/colon/user1");
    assert_eq!(records[0]["rule"], serde_json::Value::Null);
    assert!(
        records[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("DENY: user \"user1\""),
        "{v}"
    );
    // Under the tutorial's acl, in force now, user1 may write x/y/z/user1 but not panama/colon/user1.
    assert_eq!(records[0]["now"], "allow");
    assert_eq!(records[1]["now"], "deny");
    assert_eq!(
        s.json("/page/api/denials?limit=1")["records"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn counters_and_status_are_shown_and_nothing_but_get_is_served() {
    let mut s = Serve::start(tutorial_files, &[]);
    let status = s.json("/page/api/status");
    assert_eq!(status["rules"], 2);
    assert_eq!(status["semantics"], "mosquitto-2.0");
    assert!(status["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(
        status["audit_log"],
        s.path("audit.log").display().to_string()
    );

    std::fs::write(s.path("acl.txt"), "topic sometimes #\n").unwrap();
    s.hup();
    s.wait_log("SIGHUP: reload failed", 1);
    let c = s.json("/page/api/counters");
    let sources = c["sources"].as_array().unwrap();
    assert_eq!(
        sources.len(),
        1,
        "no plugin_opt_metrics_listen: only this service's: {c}"
    );
    let failed = sources[0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mqtt_policy_reloads_total" && m["labels"]["result"] == "failed")
        .unwrap_or_else(|| panic!("{c}"));
    assert_eq!(failed["value"], 1.0);

    // The page itself, and its guard rails.
    let (code, head, body) = s.get("/", &[]);
    assert_eq!(code, 200);
    assert!(
        head.to_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(body.contains("<script src=\"/page/app.js\""), "{body}");
    assert_eq!(s.get("/page/app.js", &[]).0, 200);
    let post = |path: &str| {
        use std::io::{Read, Write};
        let mut t = std::net::TcpStream::connect(s.addr).unwrap();
        t.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            t,
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        t.read_to_string(&mut out).unwrap();
        out
    };
    assert!(post("/page/api/check").starts_with("HTTP/1.1 405"));
    assert!(post("/").starts_with("HTTP/1.1 405"));
}

#[test]
fn after_sighup_the_answers_follow_the_new_policy_and_a_bad_file_changes_nothing() {
    let mut s = Serve::start(tutorial_files, &[]);
    let ask = |s: &Serve| {
        s.json("/page/api/check?user=user1&access=write&topic=a%2Fb%2Fc%2Fuser1")["verdict"].clone()
    };
    assert_eq!(ask(&s), "allow");
    std::fs::write(
        s.path("acl.txt"),
        "pattern read +/+/+/%u\ntopic nonsense-access x\n",
    )
    .unwrap();
    s.hup();
    s.wait_log("SIGHUP: reload failed", 1);
    assert_eq!(ask(&s), "allow", "the bad file changed nothing");
    std::fs::write(s.path("acl.txt"), "pattern read +/+/+/%u\n").unwrap();
    s.hup();
    s.wait_log("SIGHUP: reloaded", 1);
    assert_eq!(ask(&s), "deny", "the new policy answers");
}
