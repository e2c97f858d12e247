use super::*;
use crate::policy::acl::Policy;
use crate::policy::{ClientRef, RuleId};

fn policy() -> Policy {
    Policy::from_acl(
        "acl.txt",
        b"pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n",
    )
    .unwrap()
}

fn line_of(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .to_owned()
}

#[test]
fn counts_decisions_by_access_and_verdict_and_the_rule_that_decided() {
    let p = policy();
    let m = Metrics::new();
    let hits = Arc::new(RuleHits::new(Some(&p)));
    m.policy_loaded("sha256:00".into(), Arc::clone(&hits));
    let user1 = ClientRef {
        username: Some("user1"),
        client_id: "c1",
    };
    for _ in 0..3 {
        let d = m.decide(Access::Write, &hits, || {
            p.decide(user1, "a/b/c/user1", Access::Write)
        });
        assert!(d.is_allowed());
    }
    let d = m.decide(Access::Write, &hits, || {
        p.decide(user1, "panama/colon/user1", Access::Write)
    });
    assert!(!d.is_allowed());
    assert_eq!(m.decisions(Access::Write, Verdict::Allow), 3);
    assert_eq!(m.decisions(Access::Write, Verdict::Deny), 1);
    assert_eq!(hits.get(0), 3);
    let text = m.render();
    assert_eq!(
        line_of(
            &text,
            "mqtt_policy_decisions_total{access=\"write\",verdict=\"allow\"}"
        ),
        "mqtt_policy_decisions_total{access=\"write\",verdict=\"allow\"} 3"
    );
    assert_eq!(
        line_of(&text, "mqtt_policy_rule_hits_total{"),
        "mqtt_policy_rule_hits_total{file=\"acl.txt\",line=\"1\"} 3"
    );
    // Rules without hits have no series (bounded by the acl's lines, and sparse).
    assert!(!text.contains("line=\"3\""));
    assert!(text.contains("mqtt_policy_policy_info{fingerprint=\"sha256:00\"} 1\n"));
    // The first decision of each access is timed (one in 64).
    assert!(
        text.contains("mqtt_policy_decision_duration_seconds_count 1\n"),
        "{text}"
    );
}

#[test]
fn a_rule_index_outside_the_policy_is_ignored() {
    let hits = RuleHits::new(None);
    hits.hit(Reason::Rule(RuleId(7)));
    assert_eq!(hits.get(7), 0);
}

#[test]
fn logins_withheld_reloads_and_shadow_are_exposed() {
    let m = Metrics::new();
    m.login(Ok(()));
    m.login(Err(&LoginDenial::WrongPassword));
    m.login(Err(&LoginDenial::WrongPassword));
    m.withheld();
    m.reloaded(true);
    m.reloaded(false);
    m.set_shadow_loaded(true);
    m.shadow_disagreement(Some(Access::Read));
    m.shadow_disagreement(None);
    m.shadow_record_suppressed();
    let text = m.render();
    for line in [
        "mqtt_policy_logins_total{outcome=\"ok\"} 1",
        "mqtt_policy_logins_total{outcome=\"wrong_password\"} 2",
        "mqtt_policy_logins_total{outcome=\"unknown_user\"} 0",
        "mqtt_policy_withheld_deliveries_total 1",
        "mqtt_policy_reloads_total{result=\"ok\"} 1",
        "mqtt_policy_reloads_total{result=\"failed\"} 1",
        "mqtt_policy_shadow_loaded 1",
        "mqtt_policy_shadow_disagreements_total{access=\"read\"} 1",
        "mqtt_policy_shadow_disagreements_total{access=\"connect\"} 1",
        "mqtt_policy_shadow_records_suppressed_total 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    // Every series has HELP and TYPE.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{name} has no TYPE"
        );
    }
}

#[test]
fn latency_buckets_are_cumulative_and_in_seconds() {
    let m = Metrics::default();
    m.latency.observe(40);
    m.latency.observe(300);
    m.latency.observe(1_000_000);
    let text = m.render();
    assert!(text.contains("mqtt_policy_decision_duration_seconds_bucket{le=\"0.00000005\"} 1\n"));
    assert!(text.contains("mqtt_policy_decision_duration_seconds_bucket{le=\"0.0000005\"} 2\n"));
    assert!(text.contains("mqtt_policy_decision_duration_seconds_bucket{le=\"0.00025\"} 2\n"));
    assert!(text.contains("mqtt_policy_decision_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert!(text.contains("mqtt_policy_decision_duration_seconds_sum 0.00100034\n"));
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    assert_eq!(seconds(1), "0.000000001");
    assert_eq!(seconds(2_500_000_000), "2.5");
}
