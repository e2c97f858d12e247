use std::time::{Duration, SystemTime};

use super::*;
use crate::policy::passwd::{hash_password, HashKind};
use crate::policy::Verdict;

fn live() -> Policy {
    Policy::from_acl("live.acl", b"pattern readwrite +/+/+/%u\n").unwrap()
}

fn candidate() -> Shadow {
    let acl = Policy::from_acl("shadow.acl", b"pattern read +/+/+/%u\n").unwrap();
    Shadow::new(Some(acl), None)
}

const USER1: ClientRef<'static> = ClientRef {
    username: Some("user1"),
    client_id: "c1",
};

#[test]
fn the_limiter_admits_so_many_a_window_then_opens_again() {
    let t0 = SystemTime::UNIX_EPOCH;
    let mut l = RateLimiter::new(2, Duration::from_secs(60));
    assert!(l.admit(t0));
    assert!(l.admit(t0 + Duration::from_secs(1)));
    assert!(!l.admit(t0 + Duration::from_secs(59)));
    assert!(l.admit(t0 + Duration::from_secs(61)));
}

#[test]
fn agreements_are_silent_and_a_disagreement_is_one_record_with_both_reasons() {
    let p = live();
    let s = candidate();
    let m = Metrics::new();
    let now = SystemTime::UNIX_EPOCH;
    let read = p.decide(USER1, "a/b/c/user1", Access::Read);
    let explain = || p.explain_decision(USER1, "a/b/c/user1", Access::Read, read);
    assert!(s
        .compare_acl(
            USER1,
            "a/b/c/user1",
            Access::Read,
            read,
            explain,
            None,
            now,
            Some(&m)
        )
        .record()
        .is_none());
    let write = p.decide(USER1, "a/b/c/user1", Access::Write);
    assert_eq!(write.verdict, Verdict::Allow);
    let record = s
        .compare_acl(
            USER1,
            "a/b/c/user1",
            Access::Write,
            write,
            || p.explain_decision(USER1, "a/b/c/user1", Access::Write, write),
            Some("127.0.0.1"),
            now,
            Some(&m),
        )
        .record()
        .expect("a record");
    let json = record.to_json();
    assert!(json.starts_with("{\"kind\":\"shadow\","), "{json}");
    assert!(json.contains("\"verdict\":\"allow\""), "{json}");
    assert!(json.contains("\"rule\":\"live.acl:1\""), "{json}");
    assert!(json.contains("\"shadow\":{\"verdict\":\"deny\""), "{json}");
    assert!(m
        .render()
        .contains("mqtt_policy_shadow_disagreements_total{access=\"write\"} 1\n"));
}

#[test]
fn disagreements_beyond_the_rate_limit_are_only_counted() {
    let p = live();
    let s = candidate();
    let m = Metrics::new();
    let t0 = SystemTime::UNIX_EPOCH;
    let write = p.decide(USER1, "a/b/c/user1", Access::Write);
    let mut records = 0;
    for i in 0..100 {
        let now = t0 + Duration::from_millis(i);
        records += usize::from(
            s.compare_acl(
                USER1,
                "a/b/c/user1",
                Access::Write,
                write,
                || p.explain_decision(USER1, "a/b/c/user1", Access::Write, write),
                None,
                now,
                Some(&m),
            )
            .record()
            .is_some(),
        );
    }
    assert_eq!(records, RECORDS_PER_MINUTE as usize);
    let text = m.render();
    assert!(text.contains("mqtt_policy_shadow_disagreements_total{access=\"write\"} 100\n"));
    assert!(text.contains("mqtt_policy_shadow_records_suppressed_total 40\n"));
}

#[test]
fn unchecked_subscriptions_are_not_compared() {
    let s = candidate();
    let d = Decision::allow(Reason::SubscribeUnchecked);
    let now = SystemTime::UNIX_EPOCH;
    assert!(s
        .compare_acl(
            USER1,
            "#",
            Access::Subscribe,
            d,
            || unreachable!(),
            None,
            now,
            None
        )
        .record()
        .is_none());
}

#[test]
fn a_shadow_file_that_does_not_load_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.acl");
    std::fs::write(&bad, "topic\n").unwrap();
    let e = Shadow::load(bad.to_str(), None, Semantics::Mosquitto20).unwrap_err();
    assert!(
        e.contains("bad.acl") && e.contains("plugin_opt_shadow_acl_file"),
        "{e}"
    );
    let e = Shadow::load(None, Some("/nonexistent/pw"), Semantics::Mosquitto20).unwrap_err();
    assert!(e.contains("/nonexistent/pw"), "{e}");
    assert!(Shadow::load(None, None, Semantics::Mosquitto20)
        .unwrap()
        .is_none());
}

#[test]
fn a_login_the_shadow_password_file_refuses_is_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "").unwrap();
    let s = Shadow::load(None, pw.to_str(), Semantics::Mosquitto20)
        .unwrap()
        .unwrap();
    let peer = Peer {
        username: Some("user1"),
        client_id: Some("c1"),
        address: None,
    };
    let now = SystemTime::UNIX_EPOCH;
    let verdict = s.verify_login("user1", Some(b"pw"));
    assert_eq!(verdict, Some(AuthResult::UnknownUser));
    let r = s
        .compare_login(peer, verdict.as_ref(), None, now, None)
        .expect("live accepts, shadow refuses");
    let json = r.to_json();
    assert!(
        json.contains("\"kind\":\"shadow\"") && json.contains("\"access\":\"connect\""),
        "{json}"
    );
    assert!(json.contains("\"shadow\":{\"verdict\":\"deny\""), "{json}");
    assert!(s
        .compare_login(
            peer,
            verdict.as_ref(),
            Some(&LoginDenial::UnknownUser),
            now,
            None
        )
        .is_none());
}

#[test]
fn a_login_seen_before_is_answered_by_the_shadow_without_a_hash_whatever_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    let line = |user: &str, password: &[u8]| {
        format!(
            "{user}:{}\n",
            hash_password(password, HashKind::Sha512Pbkdf2, Some(2))
        )
    };
    std::fs::write(&pw, line("alice", b"right") + &line("bob", b"other")).unwrap();
    let s = Shadow::load(None, pw.to_str(), Semantics::Mosquitto20)
        .unwrap()
        .unwrap();
    // Nothing to hash: no password, or no entry for the user.
    assert!(s.answers_at_once("alice", None));
    assert!(s.answers_at_once("nobody", Some(b"x")));
    // A real check the first time, for an accepted and a refused password alike.
    for (password, verdict) in [
        (&b"right"[..], AuthResult::Accepted),
        (b"wrong", AuthResult::WrongPassword),
    ] {
        assert!(!s.answers_at_once("alice", Some(password)));
        assert_eq!(
            s.verify_login("alice", Some(password)),
            Some(verdict.clone())
        );
        assert!(s.answers_at_once("alice", Some(password)), "remembered");
        assert_eq!(s.verify_login("alice", Some(password)), Some(verdict));
    }
    // Another user's password is not remembered for alice.
    assert!(!s.answers_at_once("bob", Some(b"right")));
    // No shadow password file: nothing to check.
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "topic read x\n").unwrap();
    let acl_only = Shadow::load(acl.to_str(), None, Semantics::Mosquitto20)
        .unwrap()
        .unwrap();
    assert!(acl_only.answers_at_once("alice", Some(b"right")));
    assert_eq!(acl_only.verify_login("alice", Some(b"right")), None);
}
