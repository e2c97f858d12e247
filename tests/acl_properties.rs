//! Property tests: the compiled policy decides exactly as the plain transcription of Mosquitto's
//! algorithm (reference §2.3) on generated acl files, identities and topics; and the subscription check
//! never refuses a filter under which some generated topic is readable.

use mqtt_policy::policy::acl::{parse_acl, parse_acl_as, reference::reference_verdict, Policy};
use mqtt_policy::policy::Semantics;
use mqtt_policy::policy::{topic, Access, ClientRef};
use proptest::prelude::*;

/// Levels that collide often, including the characters that matter.
fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("u1".to_owned()),
        Just("c1".to_owned()),
        Just("".to_owned()),
        Just("$x".to_owned()),
        Just("$SYS".to_owned()),
        Just("x-u1".to_owned()),
        // Literal on Mosquitto 2.1, where only whole `%u`/`%c` levels are substituted.
        Just("x-%u".to_owned()),
        Just("%c%u".to_owned()),
    ]
}

fn filter_level() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => level(),
        2 => Just("+".to_owned()),
        2 => Just("%u".to_owned()),
        2 => Just("%c".to_owned()),
        1 => Just("x-%u".to_owned()),
        1 => Just("%c%u".to_owned()),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    (prop::collection::vec(filter_level(), 1..4), any::<bool>())
        .prop_map(|(levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            f
        })
        .prop_filter("a filter is never empty", |f| !f.is_empty())
}

fn rule_line() -> impl Strategy<Value = String> {
    let access = prop_oneof![
        Just("read "),
        Just("write "),
        Just("readwrite "),
        Just("deny "),
        Just("")
    ];
    let keyword = prop_oneof![Just("topic"), Just("pattern")];
    prop_oneof![
        6 => (keyword, access, prop_oneof![4 => filter(), 1 => Just("#".to_owned())])
            .prop_map(|(k, a, f)| format!("{k} {a}{f}")),
        2 => prop_oneof![Just("u1"), Just("u2"), Just("a/b"), Just("e+v")].prop_map(|u| format!("user {u}")),
    ]
}

fn acl_text() -> impl Strategy<Value = String> {
    prop::collection::vec(rule_line(), 0..12).prop_map(|lines| lines.join("\n") + "\n")
}

fn username() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("u1".to_owned())),
        Just(Some("u2".to_owned())),
        Just(Some("a/b".to_owned())),
        Just(Some("e+v".to_owned())),
        Just(Some("".to_owned())),
        Just(Some("$x".to_owned())),
    ]
}

fn client_id() -> impl Strategy<Value = String> {
    prop_oneof![Just("c1"), Just("u1"), Just("a/b"), Just("k#1"), Just("a")].prop_map(str::to_owned)
}

fn topic_name() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..6).prop_map(|levels| levels.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn a_policy_compiled_for_one_client_explains_as_the_whole_policy(
        acl in acl_text(),
        user in username(),
        id in client_id(),
        topics in prop::collection::vec(topic_name(), 1..6),
        semantics in prop_oneof![Just(Semantics::Mosquitto20), Just(Semantics::Mosquitto21)],
    ) {
        let file = parse_acl_as("acl.txt", acl.as_bytes(), semantics).expect("generated acl is valid");
        let whole = Policy::compile(file.clone());
        let one = Policy::compile_for(file, user.as_deref());
        let client = ClientRef { username: user.as_deref(), client_id: &id };
        for t in &topics {
            for access in [Access::Read, Access::Write, Access::Subscribe] {
                prop_assert_eq!(
                    format!("{:?}", one.explain(client, t, access)),
                    format!("{:?}", whole.explain(client, t, access)),
                    "acl:\n{}\nclient {:?} {:?} {}", acl, client, access, t
                );
            }
        }
    }

    #[test]
    fn compiled_policy_equals_the_reference_algorithm(
        acl in acl_text(),
        user in username(),
        id in client_id(),
        topics in prop::collection::vec(topic_name(), 1..8),
    ) {
        let file = parse_acl("acl.txt", acl.as_bytes()).expect("generated acl is valid");
        let policy = Policy::compile(file.clone());
        let client = ClientRef { username: user.as_deref(), client_id: &id };
        for t in &topics {
            for access in [Access::Read, Access::Write] {
                let compiled = policy.decide(client, t, access).verdict;
                let reference = reference_verdict(&file, client, t, access);
                prop_assert_eq!(compiled, reference, "acl:\n{}\nclient {:?} {:?} {}", acl, client, access, t);
            }
        }
    }

    #[test]
    fn compiled_policy_equals_the_reference_algorithm_on_2_1(
        acl in acl_text(),
        user in username(),
        id in client_id(),
        topics in prop::collection::vec(topic_name(), 1..8),
    ) {
        let file = parse_acl_as("acl.txt", acl.as_bytes(), Semantics::Mosquitto21).expect("generated acl is valid");
        let policy = Policy::compile(file.clone());
        let client = ClientRef { username: user.as_deref(), client_id: &id };
        for t in &topics {
            for access in [Access::Read, Access::Write] {
                let compiled = policy.decide(client, t, access).verdict;
                let reference = reference_verdict(&file, client, t, access);
                prop_assert_eq!(compiled, reference, "acl:\n{}\nclient {:?} {:?} {}", acl, client, access, t);
            }
        }
    }

    #[test]
    fn on_2_1_a_subscription_is_never_refused_when_a_matching_topic_is_readable(
        acl in acl_text(),
        user in username(),
        id in client_id(),
        sub in filter(),
        topics in prop::collection::vec(topic_name(), 1..12),
    ) {
        let policy = Policy::from_acl_as("acl.txt", acl.as_bytes(), Semantics::Mosquitto21).expect("valid");
        let client = ClientRef { username: user.as_deref(), client_id: &id };
        prop_assume!(topic::validate_filter(&sub).is_ok());
        let readable = topics.iter().any(|t| topic::matches(&sub, t) && policy.decide(client, t, Access::Read).is_allowed());
        if readable {
            prop_assert!(policy.decide(client, &sub, Access::Subscribe).is_allowed(), "acl:\n{}\n{:?} sub {}", acl, client, sub);
        }
    }

    #[test]
    fn a_subscription_is_never_refused_when_a_matching_topic_is_readable(
        acl in acl_text(),
        user in username(),
        id in client_id(),
        sub in filter(),
        topics in prop::collection::vec(topic_name(), 1..12),
    ) {
        // `%u`/`%c` in a subscription filter are plain text; use the filter as generated.
        let policy = Policy::from_acl("acl.txt", acl.as_bytes()).expect("valid");
        let client = ClientRef { username: user.as_deref(), client_id: &id };
        prop_assume!(topic::validate_filter(&sub).is_ok());
        let readable = topics.iter().any(|t| topic::matches(&sub, t) && policy.decide(client, t, Access::Read).is_allowed());
        if readable {
            prop_assert!(policy.decide(client, &sub, Access::Subscribe).is_allowed(), "acl:\n{}\n{:?} sub {}", acl, client, sub);
        }
    }

    #[test]
    fn the_subscription_index_changes_no_decision_and_no_reason(
        lines in prop::collection::vec(rule_line(), 80..140),
        user in username(),
        id in client_id(),
        subs in prop::collection::vec(
            prop_oneof![3 => filter(), 1 => Just("#".to_owned()), 1 => filter().prop_map(|f| format!("+/{f}"))],
            1..8,
        ),
    ) {
        // Long lists (over the index threshold): every `topic` line in one user block, and the patterns.
        let lines: Vec<&String> = lines.iter().filter(|l| !l.starts_with("user")).collect();
        let acl = format!("user u1\n{}\n", lines.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n"));
        let file = parse_acl("acl.txt", acl.as_bytes()).expect("generated acl is valid");
        let indexed = Policy::compile(file.clone());
        let scanned = Policy::compile(file).without_subscribe_index();
        let client = ClientRef { username: user.as_deref(), client_id: &id };
        for sub in &subs {
            prop_assert_eq!(
                indexed.decide(client, sub, Access::Subscribe),
                scanned.decide(client, sub, Access::Subscribe),
                "acl:\n{}\n{:?} sub {}", acl, client, sub
            );
        }
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Policy::from_acl("acl.txt", &bytes);
    }

    #[test]
    fn parsing_arbitrary_lines_never_panics(lines in prop::collection::vec("[ a-z%#+/$\t]{0,20}", 0..10)) {
        let text = lines.join("\n");
        if let Ok(policy) = Policy::from_acl("acl.txt", text.as_bytes()) {
            let c = ClientRef { username: Some("u"), client_id: "c" };
            let _ = policy.explain(c, "a/b", Access::Write);
            let _ = policy.explain(c, "a/+", Access::Subscribe);
        }
    }
}
