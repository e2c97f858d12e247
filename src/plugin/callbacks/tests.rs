//! The safe layer's callbacks against a host that records what they do: logins, ACL checks, reloads,
//! audit records, options, and the delayed logins of 2.1.

use super::*;
use crate::plugin::host::ClientValues;
use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Default)]
struct Log(RefCell<Vec<(LogLevel, String)>>);

impl Host for Log {
    fn log(&self, level: LogLevel, message: &str) {
        self.0.borrow_mut().push((level, message.to_owned()));
    }
}

impl Log {
    fn take(&self) -> Vec<(LogLevel, String)> {
        std::mem::take(&mut self.0.borrow_mut())
    }
    fn audit(&self) -> Vec<serde_json::Value> {
        self.take()
            .into_iter()
            .filter_map(|(_, m)| {
                m.strip_prefix(super::super::sink::LOG_PREFIX)
                    .map(str::to_owned)
            })
            .map(|j| serde_json::from_str(&j).unwrap())
            .collect()
    }
}

fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

const TUTORIAL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn start(acl: &str, log: &Log) -> Plugin {
    Plugin::start_with_clock([Some(("acl_file", acl))], log, fixed_clock).unwrap()
}

const USER1: ClientValues<'static> = ClientValues {
    username: Some("user1"),
    id: Some("c1"),
    address: Some("127.0.0.1"),
};

fn t(s: &str) -> Text<'_> {
    Text::Utf8(s)
}

#[test]
fn acl_checks_follow_the_acl_file_and_deny_with_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let log = Log::default();
    let plugin = start(&acl, &log);
    log.take();
    let w = sys::MOSQ_ACL_WRITE;
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("a/b/c/user1"), w),
        Outcome::Allow
    );
    assert!(log.take().is_empty(), "an allowed write logs nothing");
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("panama/colon/user1"), w),
        Outcome::DenyAccess
    );
    let records = log.audit();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["access"], "write");
    assert_eq!(r["username"], "user1");
    assert_eq!(r["client_id"], "c1");
    assert_eq!(r["address"], "127.0.0.1");
    assert_eq!(r["topic"], "panama/colon/user1");
    assert_eq!(r["time"], "2023-11-14T22:13:20.000Z");
    assert_eq!(r["reason"]["kind"], "no_rule_matched");
}

#[test]
fn subscriptions_that_never_deliver_are_refused_and_unsubscribe_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let log = Log::default();
    let plugin = start(&acl, &log);
    log.take();
    let s = sys::MOSQ_ACL_SUBSCRIBE;
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("a/b"), s),
        Outcome::DenyAccess
    );
    assert_eq!(log.audit()[0]["access"], "subscribe");
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("+/+/+/user1"), s),
        Outcome::Allow
    );
    assert_eq!(plugin.acl_check(&log, &USER1, t("#"), s), Outcome::Allow);
    let u = sys::MOSQ_ACL_UNSUBSCRIBE;
    assert_eq!(plugin.acl_check(&log, &USER1, t("a/b"), u), Outcome::Allow);
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("x"), 0x40),
        Outcome::DenyAccess
    );
}

#[test]
fn withheld_deliveries_are_recorded_once_per_client_and_topic() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let log = Log::default();
    let plugin = start(&acl, &log);
    log.take();
    let r = sys::MOSQ_ACL_READ;
    for _ in 0..3 {
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("x/y/z/user2"), r),
            Outcome::DenyAccess
        );
    }
    assert_eq!(log.audit().len(), 1);
    assert_eq!(plugin.disconnect(&log, &USER1), Outcome::Allow);
    assert!(log.take()[0].1.contains("3 deliveries"));
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("x/y/z/user2"), r),
        Outcome::DenyAccess
    );
    assert_eq!(
        log.audit().len(),
        1,
        "recorded again after the client reconnects"
    );
}

#[test]
fn dangerous_usernames_are_denied_by_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let log = Log::default();
    let plugin = start(&acl, &log);
    let evil = ClientValues {
        username: Some("+"),
        id: Some("c"),
        address: None,
    };
    let w = sys::MOSQ_ACL_WRITE;
    assert_eq!(
        plugin.acl_check(&log, &evil, t("a/b/c/+"), w),
        Outcome::DenyAccess
    );
}

#[test]
fn non_utf8_identities_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", "topic readwrite #\n");
    let log = Log::default();
    let plugin = start(&acl, &log);
    log.take();
    let anon = ClientValues {
        id: Some("c"),
        ..Default::default()
    };
    let w = sys::MOSQ_ACL_WRITE;
    assert_eq!(plugin.acl_check(&log, &anon, t("a"), w), Outcome::Allow);
    assert_eq!(
        plugin.acl_check(&log, &anon, Text::NotUtf8(b"\xff"), w),
        Outcome::DenyAccess
    );
    assert_eq!(log.audit()[0]["reason"]["kind"], "invalid_topic");
    let no_id = ClientValues::default();
    assert_eq!(
        plugin.acl_check(&log, &no_id, t("a"), w),
        Outcome::DenyAccess
    );
}

#[test]
fn mosquitto_version_must_name_the_broker_the_plugin_is_loaded_in() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", "pattern write a%ub/#\n");
    let log = Log::default();
    let start = |version: &str, semantics| {
        let opts = [("acl_file", acl.as_str()), ("mosquitto_version", version)];
        Plugin::start_as(opts.iter().map(|&(k, v)| Some((k, v))), &log, semantics)
    };
    assert!(start("2.1", Semantics::Mosquitto21).is_ok());
    assert!(log
        .take()
        .iter()
        .any(|(_, m)| m.contains("mosquitto-2.1's acl_file")));
    assert_eq!(
        start("2.1", Semantics::Mosquitto20).unwrap_err(),
        Outcome::BadConfig
    );
    assert!(log.take()[0].1.contains("but this broker is mosquitto-2.0"));
    assert_eq!(
        start("3.0", Semantics::Mosquitto20).unwrap_err(),
        Outcome::BadConfig
    );
    assert!(log.take()[0].1.contains("expected 2.0 or 2.1"));
}

#[test]
fn on_2_1_percent_u_inside_a_level_is_literal_and_records_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", "pattern write a%ub/#\n");
    let log = Log::default();
    let opts = [("acl_file", acl.as_str())];
    let v21 = Plugin::start_as(
        opts.iter().map(|&(k, v)| Some((k, v))),
        &log,
        Semantics::Mosquitto21,
    )
    .unwrap();
    let bob = ClientValues {
        username: Some("bob"),
        id: Some("c1"),
        address: Some("127.0.0.1"),
    };
    let write_code = sys::MOSQ_ACL_WRITE;
    assert_eq!(
        v21.acl_check(&log, &bob, Text::Utf8("a%ub/x"), write_code),
        Outcome::Allow
    );
    log.take();
    assert_eq!(
        v21.acl_check(&log, &bob, Text::Utf8("abobb/x"), write_code),
        Outcome::DenyAccess
    );
    let records = log.audit();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["semantics"], "mosquitto-2.1");
}

#[test]
fn start_refuses_bad_options_and_files_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let bad = |opts: &[(&str, &str)]| {
        Plugin::start(opts.iter().map(|&(k, v)| Some((k, v))), &log).unwrap_err()
    };
    assert_eq!(bad(&[("acl_fiel", "/x")]), Outcome::BadConfig);
    assert!(log.take()[0].1.contains("plugin_opt_acl_fiel"));
    let missing = dir.path().join("missing.txt");
    assert_eq!(
        bad(&[("acl_file", missing.to_str().unwrap())]),
        Outcome::Unavailable
    );
    let m = &log.take()[0];
    assert_eq!(m.0, LogLevel::Err);
    assert!(
        m.1.contains("missing.txt") && m.1.contains("plugin_opt_acl_file"),
        "{}",
        m.1
    );
    let malformed = write(&dir, "bad.txt", "topic read a\n  # indented\n");
    assert_eq!(bad(&[("acl_file", &malformed)]), Outcome::BadConfig);
    let m = &log.take()[0].1;
    assert!(m.contains(&format!("{malformed}:2")), "{m}");
    let audit_dir = dir.path().join("no/such/dir/audit.log");
    let acl = write(&dir, "acl.txt", TUTORIAL);
    assert_eq!(
        bad(&[
            ("acl_file", &acl),
            ("audit_log", audit_dir.to_str().unwrap())
        ]),
        Outcome::Unavailable
    );
    assert!(log
        .take()
        .last()
        .unwrap()
        .1
        .contains("plugin_opt_audit_log"));
}

#[test]
fn events_follow_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let log = Log::default();
    let plugin = start(&acl, &log);
    assert_eq!(
        plugin.events(),
        [
            Event::Reload,
            Event::AclCheck,
            Event::Disconnect,
            Event::Tick
        ]
    );
    let none = Plugin::start([Some(("listen_backlog", "0"))], &log).unwrap();
    assert_eq!(none.events(), [Event::Reload]);
    let backlog_only = Plugin::start([], &log).unwrap();
    assert_eq!(backlog_only.events(), [Event::Reload, Event::Tick]);
    let s = sys::MOSQ_ACL_SUBSCRIBE;
    assert_eq!(none.acl_check(&log, &USER1, t("a"), s), Outcome::Defer);
    assert_eq!(
        backlog_only.acl_check(&log, &USER1, t("a"), s),
        Outcome::Defer
    );
}

#[test]
fn reload_swaps_a_good_file_keeps_the_old_one_on_errors_and_always_defers() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let log = Log::default();
    let plugin = start(&acl, &log);
    let w = sys::MOSQ_ACL_WRITE;
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("x"), w),
        Outcome::DenyAccess
    );
    write(&dir, "acl.txt", "user user1\ntopic write x\n");
    assert_eq!(plugin.reload(&log), Outcome::Defer);
    assert_eq!(plugin.acl_check(&log, &USER1, t("x"), w), Outcome::Allow);
    log.take();
    write(&dir, "acl.txt", "user user1\ntopic wrte x y\n");
    assert_eq!(plugin.reload(&log), Outcome::Defer);
    let messages = log.take();
    assert!(
        messages.iter().any(|(l, m)| *l == LogLevel::Err
            && m.contains("acl.txt:2")
            && m.contains("previous policy")),
        "{messages:?}"
    );
    assert_eq!(plugin.acl_check(&log, &USER1, t("x"), w), Outcome::Allow);
    std::fs::remove_file(&acl).unwrap();
    assert_eq!(plugin.reload(&log), Outcome::Defer);
    assert_eq!(plugin.acl_check(&log, &USER1, t("x"), w), Outcome::Allow);
}

#[test]
fn a_remembered_allow_does_not_survive_a_reload_that_denies() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", "user user1\ntopic readwrite x\n");
    let log = Log::default();
    let plugin = start(&acl, &log);
    let raw = |access| RawCheck {
        username: Some(b"user1"),
        client_id: b"c1",
        topic: b"x",
        access,
    };
    let both = [
        (sys::MOSQ_ACL_WRITE, Access::Write),
        (sys::MOSQ_ACL_READ, Access::Read),
    ];
    for (code, access) in both {
        assert!(!plugin.remembered(&raw(access)));
        assert_eq!(plugin.acl_check(&log, &USER1, t("x"), code), Outcome::Allow);
        assert!(plugin.remembered(&raw(access)));
    }
    write(
        &dir,
        "acl.txt",
        "user user1\ntopic readwrite x\ntopic deny x\n",
    );
    assert_eq!(plugin.reload(&log), Outcome::Defer);
    for (code, access) in both {
        assert!(!plugin.remembered(&raw(access)));
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("x"), code),
            Outcome::DenyAccess
        );
        assert!(!plugin.remembered(&raw(access)));
    }
    // Another client on the same topic is decided on its own.
    let other = ClientValues {
        username: Some("user2"),
        id: Some("c1"),
        address: None,
    };
    assert_eq!(
        plugin.acl_check(&log, &other, t("x"), sys::MOSQ_ACL_WRITE),
        Outcome::DenyAccess
    );
}

#[test]
fn audit_records_go_to_the_audit_log_file_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let audit = dir.path().join("audit.log");
    let log = Log::default();
    let plugin = Plugin::start(
        [
            Some(("acl_file", acl.as_str())),
            Some(("audit_log", audit.to_str().unwrap())),
        ],
        &log,
    )
    .unwrap();
    log.take();
    let w = sys::MOSQ_ACL_WRITE;
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("nope"), w),
        Outcome::DenyAccess
    );
    assert!(log.audit().is_empty());
    let text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(text.lines().count(), 1);
    let r: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(r["topic"], "nope");
}

const USERS: &str = "user1:$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==\nplain:secret\n";

#[test]
fn logins_are_checked_against_the_password_file_and_denials_recorded_without_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(&dir, "users.txt", USERS);
    let log = Log::default();
    let plugin =
        Plugin::start_with_clock([Some(("password_file", users.as_str()))], &log, fixed_clock)
            .unwrap();
    let messages = log.take();
    assert!(
        messages
            .iter()
            .any(|(l, m)| *l == LogLevel::Warning && m.contains("users.txt:2")),
        "the plaintext line is reported: {messages:?}"
    );
    assert_eq!(
        plugin.events(),
        [Event::Reload, Event::BasicAuth, Event::Tick]
    );
    let c = USER1;
    let name = t("user1");
    assert_eq!(
        plugin.basic_auth(&log, &c, name, Some(b"123456")),
        Outcome::Allow
    );
    assert_eq!(
        plugin.basic_auth(&log, &c, Text::Absent, None),
        Outcome::Defer
    );
    assert!(log.take().is_empty());
    let refused = [
        (name, Some(&b"1234567"[..]), "wrong_password"),
        (name, None, "no_password"),
        (t("nobody"), Some(&b"x"[..]), "unknown_user"),
        (t(""), Some(&b"x"[..]), "unknown_user"),
        (t("plain"), Some(&b"secret"[..]), "unusable_entry"),
    ];
    for (username, password, kind) in refused {
        assert_eq!(
            plugin.basic_auth(&log, &c, username, password),
            Outcome::RefuseLogin
        );
        let messages = log.take();
        assert!(messages
            .iter()
            .all(|(_, m)| !m.contains("1234567") && !m.contains("secret\"")));
        let json: Vec<serde_json::Value> = messages
            .iter()
            .filter_map(|(_, m)| m.strip_prefix(super::super::sink::LOG_PREFIX))
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        assert_eq!(json.len(), 1);
        assert_eq!(json[0]["access"], "connect");
        assert_eq!(json[0]["reason"]["kind"], kind);
        assert_eq!(json[0]["client_id"], "c1");
        assert_eq!(json[0]["address"], "127.0.0.1");
    }
    // The ACL side is not configured: no opinion.
    assert_eq!(
        plugin.acl_check(&log, &c, t("x"), sys::MOSQ_ACL_WRITE),
        Outcome::Defer
    );
}

#[test]
fn reload_keeps_the_password_file_when_it_disappears() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(&dir, "users.txt", USERS);
    let log = Log::default();
    let plugin = Plugin::start([Some(("password_file", users.as_str()))], &log).unwrap();
    std::fs::remove_file(&users).unwrap();
    assert_eq!(plugin.reload(&log), Outcome::Defer);
    assert!(log.take().iter().any(|(l, m)| *l == LogLevel::Err
        && m.contains("cannot read the password file")
        && m.contains("previous policy")));
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Allow
    );
}

#[test]
fn a_repeated_login_comes_from_the_cache_which_a_reload_empties() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(&dir, "users.txt", USERS);
    let log = Log::default();
    let plugin = Plugin::start([Some(("password_file", users.as_str()))], &log).unwrap();
    for _ in 0..2 {
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
            Outcome::Allow
        );
    }
    assert_eq!(plugin.logins.borrow().hits(), 1);
    // The password changes: the remembered login does not survive the reload.
    let changed = crate::policy::passwd::hash_password(
        b"654321",
        crate::policy::passwd::HashKind::Sha512,
        None,
    );
    std::fs::write(&users, format!("user1:{changed}\n")).unwrap();
    assert_eq!(plugin.reload(&log), Outcome::Defer);
    assert!(plugin.logins.borrow().is_empty());
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::RefuseLogin
    );
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"654321")),
        Outcome::Allow
    );
}

/// Ticks (bounded: 20 s) until the delayed logins have given `n` verdicts.
fn completions(plugin: &Plugin, log: &Log, n: usize) -> Vec<Completion> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < n && std::time::Instant::now() < deadline {
        got.extend(plugin.tick(log).0);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    got
}

fn delayed_plugin(dir: &tempfile::TempDir, log: &Log) -> (Plugin, String) {
    let users = write(dir, "users.txt", USERS);
    let mut plugin = Plugin::start(
        [
            Some(("password_file", users.as_str())),
            Some(("listen_backlog", "0")),
        ],
        log,
    )
    .unwrap();
    assert!(!plugin.events().contains(&Event::Tick));
    plugin.enable_delayed_auth(log);
    assert!(plugin.delays_logins());
    assert!(plugin.events().contains(&Event::Tick));
    (plugin, users)
}

#[test]
fn with_delayed_auth_checks_run_on_workers_and_verdicts_come_from_tick() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let (plugin, _) = delayed_plugin(&dir, &log);
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Delayed
    );
    let got = completions(&plugin, &log, 1);
    assert_eq!(
        got,
        [Completion {
            client_id: "c1".into(),
            outcome: Outcome::Allow
        }]
    );
    assert_eq!(plugin.tick(&log), (Vec::new(), false));
    // Remembered: the same login is answered at once.
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Allow
    );
    // A wrong password: refused from tick, with an audit record.
    log.take();
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"654321")),
        Outcome::Delayed
    );
    let got = completions(&plugin, &log, 1);
    assert_eq!(got[0].outcome, Outcome::RefuseLogin);
    let audit = log.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["reason"]["kind"], "wrong_password");
    assert_eq!(audit[0]["client_id"], "c1");
    // No password: answered at once, never delayed.
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), None),
        Outcome::RefuseLogin
    );
}

#[test]
fn with_delayed_auth_the_shadow_password_file_is_checked_on_the_worker_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let users = write(&dir, "users.txt", USERS);
    // The candidate gives user1 another password: each login of user1 is a disagreement.
    let changed = crate::policy::passwd::hash_password(
        b"changed",
        crate::policy::passwd::HashKind::Sha512Pbkdf2,
        Some(101),
    );
    let shadow = write(&dir, "shadow.txt", &format!("user1:{changed}\n"));
    let mut plugin = Plugin::start(
        [
            Some(("password_file", users.as_str())),
            Some(("shadow_password_file", shadow.as_str())),
        ],
        &log,
    )
    .unwrap();
    plugin.enable_delayed_auth(&log);
    let shadow_records = |log: &Log| log.audit().iter().filter(|r| r["kind"] == "shadow").count();
    log.take();
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Delayed
    );
    let got = completions(&plugin, &log, 1);
    assert_eq!(got[0].outcome, Outcome::Allow, "the live file decides");
    assert_eq!(shadow_records(&log), 1);
    // Known to the live cache and to the shadow's (which keeps what it refused): answered at once,
    // still compared.
    log.take();
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Allow
    );
    assert_eq!(shadow_records(&log), 1);
}

#[test]
fn a_verdict_for_a_client_replaced_under_the_same_id_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let (plugin, _) = delayed_plugin(&dir, &log);
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Delayed
    );
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"wrong")),
        Outcome::Delayed
    );
    let mut got = completions(&plugin, &log, 1);
    // Give the other verdict time to come back (and be dropped).
    std::thread::sleep(std::time::Duration::from_millis(300));
    got.extend(plugin.tick(&log).0);
    assert_eq!(
        got,
        [Completion {
            client_id: "c1".into(),
            outcome: Outcome::RefuseLogin
        }]
    );
}

#[test]
fn a_reload_during_a_delayed_check_checks_the_login_again_against_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let (plugin, users) = delayed_plugin(&dir, &log);
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Delayed
    );
    let changed = crate::policy::passwd::hash_password(
        b"654321",
        crate::policy::passwd::HashKind::Sha512,
        None,
    );
    std::fs::write(&users, format!("user1:{changed}\n")).unwrap();
    assert_eq!(plugin.reload(&log), Outcome::Defer);
    let got = completions(&plugin, &log, 1);
    assert_eq!(
        got,
        [Completion {
            client_id: "c1".into(),
            outcome: Outcome::RefuseLogin
        }]
    );
    assert!(log
        .take()
        .iter()
        .any(|(_, m)| m.contains("checking it again")));
}

fn scrape(plugin: &Plugin) -> String {
    plugin.metrics().expect("metrics on").render()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn with_metrics_on_decisions_memo_hits_logins_and_withheld_deliveries_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let users = write(&dir, "users.txt", USERS);
    let log = Log::default();
    let plugin = Plugin::start_with_clock(
        [
            Some(("acl_file", acl.as_str())),
            Some(("password_file", users.as_str())),
            Some(("metrics_listen", "127.0.0.1:0")),
        ],
        &log,
        fixed_clock,
    )
    .unwrap();
    assert!(plugin.metrics_addr().is_some());
    let w = sys::MOSQ_ACL_WRITE;
    let r = sys::MOSQ_ACL_READ;
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Allow
    );
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"nope")),
        Outcome::RefuseLogin
    );
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("a/b/c/user1"), w),
        Outcome::Allow
    );
    // The second time the memo answers (as the C layer's fast path does): still counted, with its rule.
    let raw = RawCheck {
        username: Some(b"user1"),
        client_id: b"c1",
        topic: b"a/b/c/user1",
        access: Access::Write,
    };
    assert!(plugin.remembered(&raw));
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("panama/colon/user1"), w),
        Outcome::DenyAccess
    );
    for _ in 0..3 {
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("x/y"), r),
            Outcome::DenyAccess
        );
    }
    let text = scrape(&plugin);
    for line in [
        "mqtt_policy_decisions_total{access=\"write\",verdict=\"allow\"} 2",
        "mqtt_policy_decisions_total{access=\"write\",verdict=\"deny\"} 1",
        "mqtt_policy_decisions_total{access=\"read\",verdict=\"deny\"} 3",
        "mqtt_policy_withheld_deliveries_total 3",
        "mqtt_policy_logins_total{outcome=\"ok\"} 1",
        "mqtt_policy_logins_total{outcome=\"wrong_password\"} 1",
        "mqtt_policy_shadow_loaded 0",
    ] {
        assert!(has_line(&text, line), "{line} missing from\n{text}");
    }
    let rule = format!("mqtt_policy_rule_hits_total{{file=\"{acl}\",line=\"1\"}} 2");
    assert!(has_line(&text, &rule), "{rule} missing from\n{text}");
    // The fingerprint of the bytes loaded: the acl file, a NUL, the password file.
    let mut loaded = std::fs::read(&acl).unwrap();
    loaded.push(0);
    loaded.extend(std::fs::read(&users).unwrap());
    let expected = {
        use sha2::Digest;
        format!("sha256:{:x}", sha2::Sha256::digest(&loaded))
    };
    let info = format!("mqtt_policy_policy_info{{fingerprint=\"{expected}\"}} 1");
    assert!(has_line(&text, &info), "{info} missing from\n{text}");
    plugin.reload(&log);
    std::fs::write(&acl, "topic\n").unwrap();
    plugin.reload(&log);
    let text = scrape(&plugin);
    assert!(
        has_line(&text, "mqtt_policy_reloads_total{result=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        has_line(&text, "mqtt_policy_reloads_total{result=\"failed\"} 1"),
        "{text}"
    );
}

#[test]
fn without_metrics_nothing_is_counted_or_served() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let log = Log::default();
    let plugin = start(&acl, &log);
    assert!(plugin.metrics().is_none() && plugin.metrics_addr().is_none());
}

#[test]
fn a_metrics_address_that_cannot_be_bound_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let log = Log::default();
    let e = Plugin::start_with_clock(
        [
            Some(("acl_file", acl.as_str())),
            Some(("metrics_listen", addr.as_str())),
        ],
        &log,
        fixed_clock,
    )
    .unwrap_err();
    assert_eq!(e, Outcome::Unavailable);
    let messages = log.take();
    assert!(
        messages.iter().any(|(l, m)| *l == LogLevel::Err
            && m.contains(&addr)
            && m.contains("refuses to start")),
        "{messages:?}"
    );
}

#[test]
fn the_shadow_policy_records_disagreements_and_never_decides() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    // The candidate takes write away from the pattern.
    let shadow = write(
        &dir,
        "shadow.txt",
        "pattern read +/+/+/%u\nuser admin\ntopic readwrite #\n",
    );
    let log = Log::default();
    let plugin = Plugin::start_with_clock(
        [
            Some(("acl_file", acl.as_str())),
            Some(("shadow_acl_file", shadow.as_str())),
            Some(("metrics_textfile", write(&dir, "m.prom", "").as_str())),
        ],
        &log,
        fixed_clock,
    )
    .unwrap();
    assert!(log
        .take()
        .iter()
        .any(|(_, m)| m.contains("shadow policy: acl file")));
    let w = sys::MOSQ_ACL_WRITE;
    for _ in 0..3 {
        // The live policy still decides.
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("a/b/c/user1"), w),
            Outcome::Allow
        );
    }
    let raw = RawCheck {
        username: Some(b"user1"),
        client_id: b"c1",
        topic: b"a/b/c/user1",
        access: Access::Write,
    };
    assert!(
        !plugin.remembered(&raw),
        "a disagreement is never remembered"
    );
    let records = log.audit();
    assert_eq!(records.len(), 3, "{records:?}");
    let r = &records[0];
    assert_eq!(r["kind"], "shadow");
    assert_eq!(r["verdict"], "allow");
    assert_eq!(r["rule"], format!("{acl}:1"));
    assert_eq!(r["shadow"]["verdict"], "deny");
    assert_eq!(r["shadow"]["reason"]["kind"], "no_rule_matched");
    // Agreement: nothing written, and remembered.
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("a/b/c/user1"), sys::MOSQ_ACL_READ),
        Outcome::Allow
    );
    assert!(log.audit().is_empty());
    let text = scrape(&plugin);
    assert!(has_line(&text, "mqtt_policy_shadow_loaded 1"), "{text}");
    assert!(
        has_line(
            &text,
            "mqtt_policy_shadow_disagreements_total{access=\"write\"} 3"
        ),
        "{text}"
    );
}

#[test]
fn a_shadow_file_that_does_not_parse_is_logged_and_the_live_policy_stands() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(&dir, "acl.txt", TUTORIAL);
    let shadow = write(&dir, "shadow.txt", "topic\n");
    let log = Log::default();
    let plugin = Plugin::start_with_clock(
        [
            Some(("acl_file", acl.as_str())),
            Some(("shadow_acl_file", shadow.as_str())),
            Some(("metrics_listen", "127.0.0.1:0")),
        ],
        &log,
        fixed_clock,
    )
    .expect("the plugin starts");
    let messages = log.take();
    assert!(
        messages.iter().any(|(l, m)| *l == LogLevel::Err
            && m.contains("shadow.txt")
            && m.contains("the shadow policy is absent")),
        "{messages:?}"
    );
    assert!(has_line(&scrape(&plugin), "mqtt_policy_shadow_loaded 0"));
    let w = sys::MOSQ_ACL_WRITE;
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("a/b/c/user1"), w),
        Outcome::Allow
    );
    // Fixed, then broken again on reload: loaded, then absent, the live policy untouched.
    std::fs::write(&shadow, "pattern read +/+/+/%u\n").unwrap();
    plugin.reload(&log);
    assert!(has_line(&scrape(&plugin), "mqtt_policy_shadow_loaded 1"));
    std::fs::write(&shadow, "topic\n").unwrap();
    plugin.reload(&log);
    assert!(has_line(&scrape(&plugin), "mqtt_policy_shadow_loaded 0"));
    assert!(has_line(
        &scrape(&plugin),
        "mqtt_policy_reloads_total{result=\"ok\"} 2"
    ));
    assert_eq!(
        plugin.acl_check(&log, &USER1, t("a/b/c/user1"), w),
        Outcome::Allow
    );
}

#[test]
fn a_shadow_password_file_is_compared_on_logins() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(&dir, "users.txt", USERS);
    let shadow = write(&dir, "shadow-users.txt", "");
    let log = Log::default();
    let plugin = Plugin::start_with_clock(
        [
            Some(("password_file", users.as_str())),
            Some(("shadow_password_file", shadow.as_str())),
        ],
        &log,
        fixed_clock,
    )
    .unwrap();
    log.take();
    assert_eq!(
        plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
        Outcome::Allow
    );
    let records = log.audit();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["kind"], "shadow");
    assert_eq!(records[0]["access"], "connect");
    assert_eq!(records[0]["verdict"], "allow");
    assert_eq!(records[0]["shadow"]["reason"]["kind"], "unknown_user");
    assert!(!records[0].to_string().contains("123456"));
}
