//! Every row of the worked examples (reference §2.6) and the ACL test vectors (§7 items 4, 6, 7, 8),
//! checked against the compiled policy and against the plain reference implementation.

use mqtt_policy::policy::acl::{parse_acl, reference::reference_verdict, AclErrorKind, Policy};
use mqtt_policy::policy::{Access, ClientRef, Reason, Verdict};

const RULE_SET_A: &str = "\
# anonymous list (comments only in column 1; a trailing \"# ...\" would be a parse error)
topic read public/#
topic deny public/private
user alice
topic readwrite alice/#
topic read shared/#
topic deny shared/secret
topic write sensors/+/temp
topic read $SYS/#
user bob
topic shared/#
user admin
topic readwrite #
pattern readwrite clients/%c/#
pattern deny clients/%c/private
pattern read users/%u/inbox
pattern write devices/%u/%c
";

const RULE_SET_T: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

fn verdict_both(
    acl: &str,
    user: Option<&str>,
    client_id: &str,
    topic: &str,
    access: Access,
) -> Verdict {
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).expect("valid acl");
    let file = parse_acl("acl.txt", acl.as_bytes()).expect("valid acl");
    let client = ClientRef {
        username: user,
        client_id,
    };
    let compiled = policy.decide(client, topic, access).verdict;
    let reference = reference_verdict(&file, client, topic, access);
    assert_eq!(
        compiled, reference,
        "compiled and reference disagree on {user:?}/{client_id} {access:?} {topic}"
    );
    compiled
}

use Access::{Read as R, Write as W};
use Verdict::{Allow as A, Deny as D};

#[test]
fn rule_set_a_worked_examples_match_mosquitto() {
    let rows: &[(Option<&str>, &str, &str, Access, Verdict)] = &[
        (Some("alice"), "c1", "alice/x", W, A),
        (Some("alice"), "c1", "alice/x", R, A),
        (Some("alice"), "c1", "shared/x", W, D),
        (Some("alice"), "c1", "shared/secret", R, D),
        (Some("alice"), "c1", "shared/secret/a", R, A),
        (Some("alice"), "c1", "sensors/room1/temp", W, A),
        (Some("alice"), "c1", "sensors/room1/temp", R, D),
        (Some("alice"), "c1", "sensors/a/b/temp", W, D),
        (Some("alice"), "c1", "$SYS/broker/version", R, A),
        (Some("admin"), "adm2", "$SYS/broker/version", R, D),
        (Some("admin"), "adm2", "$SYS/foo", W, D),
        (Some("admin"), "adm2", "clients/adm2/private", W, A),
        (Some("alice"), "c1", "clients/c1/x", W, A),
        (Some("alice"), "c1", "clients/c1/private", W, D),
        (Some("alice"), "c1", "clients/c2/x", W, D),
        (Some("bob"), "b1", "users/bob/inbox", R, A),
        (Some("bob"), "b1", "users/bob/inbox", W, D),
        (Some("bob"), "b1", "shared/secret", R, A),
        (Some("bob"), "b1", "shared/secret", W, A),
        (Some("carol"), "k1", "devices/carol/k1", W, A),
        (Some("carol"), "k1", "devices/carol/k1", R, D),
        (Some("carol"), "k1", "public/x", R, D),
        (Some("carol"), "k1", "alice/x", R, D),
        (None, "an1", "public/x", R, A),
        (None, "an1", "public/private", R, D),
        (None, "an1", "public/x", W, D),
        (None, "an1", "clients/an1/x", W, A),
        (Some("ev+l"), "e1", "clients/e1/x", W, D),
        (Some("carol"), "k+1", "public/x", W, D),
        (Some("carol"), "a/b", "clients/a/b/x", W, A),
        (Some("carol"), "a/b", "clients/a/x", W, D),
        (Some("x/y"), "xy1", "users/x/y/inbox", R, A),
    ];
    for &(user, id, topic, access, expected) in rows {
        assert_eq!(
            verdict_both(RULE_SET_A, user, id, topic, access),
            expected,
            "{user:?} {id} {topic} {access:?}"
        );
    }
}

#[test]
fn rule_set_t_the_tutorial_matches_mosquitto() {
    let rows: &[(&str, &str, Verdict)] = &[
        ("user1", "colombia/cundinamarca/cajica/user1", A),
        ("user1", "mexico/jalisco/guadalajara/user1", A),
        ("user1", "colombia/cundinamarca/bogota/user2", D),
        ("user1", "user1", D),
        ("user1", "panama/colon/user1", D),
        ("user1", "a/b/c/d/user1", D),
        ("user1", "a//c/user1", A),
        ("pe.perez", "x/y/z/pe.perez", A),
        ("Jfkennedy", "x/y/z/jfkennedy", D),
        ("admin", "any/topic", A),
    ];
    for &(user, topic, expected) in rows {
        for access in [W, R] {
            assert_eq!(
                verdict_both(RULE_SET_T, Some(user), user, topic, access),
                expected,
                "{user} {topic}"
            );
        }
    }
}

#[test]
fn tutorial_user_subscribing_to_everything_is_granted_but_reads_only_its_own_topics() {
    let policy = Policy::from_acl("acl.txt", RULE_SET_T.as_bytes()).unwrap();
    let user1 = ClientRef {
        username: Some("user1"),
        client_id: "c",
    };
    assert!(policy.decide(user1, "#", Access::Subscribe).is_allowed());
    assert!(policy
        .decide(user1, "+/+/+/user1", Access::Subscribe)
        .is_allowed());
    assert!(policy
        .decide(user1, "colombia/cundinamarca/cajica/user1", Access::Read)
        .is_allowed());
    assert!(!policy
        .decide(user1, "colombia/cundinamarca/cajica/user2", Access::Read)
        .is_allowed());
}

#[test]
fn subscriptions_that_can_never_deliver_are_refused_and_others_granted() {
    let policy = Policy::from_acl("acl.txt", RULE_SET_T.as_bytes()).unwrap();
    let user1 = ClientRef {
        username: Some("user1"),
        client_id: "c",
    };
    let admin = ClientRef {
        username: Some("admin"),
        client_id: "a",
    };
    let anon = ClientRef {
        username: None,
        client_id: "x",
    };
    for filter in [
        "a/b",
        "panama/colon/user1",
        "+/+/+/user2",
        "a/b/c/d/e",
        "$SYS/#",
    ] {
        assert_eq!(
            policy.decide(user1, filter, Access::Subscribe).reason,
            Reason::SubscriptionNeverDelivers,
            "{filter}"
        );
    }
    for filter in [
        "#",
        "+/#",
        "+/+/+/+",
        "x/+/z/user1",
        "$share/g/+/+/+/user1",
        "a/b/#",
    ] {
        assert!(
            policy.decide(user1, filter, Access::Subscribe).is_allowed(),
            "{filter}"
        );
    }
    assert!(policy.decide(admin, "a/b", Access::Subscribe).is_allowed());
    assert!(!policy
        .decide(admin, "$SYS/#", Access::Subscribe)
        .is_allowed());
    // An anonymous client has no rules at all here (%u patterns are skipped without a username).
    assert!(!policy.decide(anon, "#", Access::Subscribe).is_allowed());

    let deny_all = "user u\ntopic deny a/#\ntopic read #\n";
    let policy = Policy::from_acl("acl.txt", deny_all.as_bytes()).unwrap();
    let u = ClientRef {
        username: Some("u"),
        client_id: "c",
    };
    assert!(!policy.decide(u, "a/+", Access::Subscribe).is_allowed());
    assert!(policy.decide(u, "+/b", Access::Subscribe).is_allowed());
    assert!(policy.decide(u, "x", Access::Subscribe).is_allowed());
}

#[test]
fn every_subscription_that_could_deliver_is_granted_exhaustively_on_small_vocabularies() {
    // Soundness: if any topic of a small universe is readable and matched by the filter, the filter is granted.
    let acl = "topic read pub/#\nuser u\ntopic deny a/x\ntopic read a/+\ntopic write w/#\npattern read p/%u/+\npattern deny p/%c/x\npattern read $q/%c\n";
    let policy = Policy::from_acl("acl.txt", acl.as_bytes()).unwrap();
    let levels = ["a", "x", "p", "u", "c", "pub", "$q", "w", ""];
    let mut topics = Vec::new();
    for a in levels {
        topics.push(a.to_owned());
        for b in levels {
            topics.push(format!("{a}/{b}"));
            for c in levels {
                topics.push(format!("{a}/{b}/{c}"));
            }
        }
    }
    let topics: Vec<String> = topics.into_iter().filter(|t| !t.is_empty()).collect();
    let filter_levels = ["a", "x", "p", "u", "c", "pub", "$q", "+", ""];
    let mut filters = vec!["#".to_owned()];
    for a in filter_levels {
        filters.push(a.to_owned());
        filters.push(format!("{a}/#"));
        for b in filter_levels {
            filters.push(format!("{a}/{b}"));
            filters.push(format!("{a}/{b}/#"));
            for c in filter_levels {
                filters.push(format!("{a}/{b}/{c}"));
            }
        }
    }
    for client in [
        ClientRef {
            username: Some("u"),
            client_id: "c",
        },
        ClientRef {
            username: None,
            client_id: "c",
        },
        ClientRef {
            username: Some("v"),
            client_id: "u",
        },
    ] {
        for filter in filters.iter().filter(|f| !f.is_empty()) {
            let readable = topics.iter().any(|t| {
                mqtt_policy::policy::topic::matches(filter, t)
                    && policy.decide(client, t, Access::Read).is_allowed()
            });
            if readable {
                assert!(
                    policy
                        .decide(client, filter, Access::Subscribe)
                        .is_allowed(),
                    "{client:?} refused {filter:?} although a matching topic is readable"
                );
            }
        }
    }
}

#[test]
fn parser_accepts_and_rejects_like_mosquitto() {
    let err = |text: &str| Policy::from_acl("acl.txt", text.as_bytes()).unwrap_err();
    assert!(matches!(
        err("  # indented\n").kind,
        AclErrorKind::InvalidLine { .. }
    ));
    assert!(matches!(
        err("topic\tread\ta\n").kind,
        AclErrorKind::InvalidLine { .. }
    ));
    assert!(matches!(
        err("topic READ a\n").kind,
        AclErrorKind::InvalidAccess { .. }
    ));
    assert!(matches!(
        err("topic read a/#/b\n").kind,
        AclErrorKind::InvalidFilter { .. }
    ));
    assert!(matches!(
        err("topic read a # note\n").kind,
        AclErrorKind::InvalidFilter { .. }
    ));
    assert!(matches!(
        err("topic a b\n").kind,
        AclErrorKind::InvalidAccess { .. }
    ));
    assert!(matches!(
        err("user   \n").kind,
        AclErrorKind::MissingUsername
    ));
    assert!(matches!(
        err("topic\n").kind,
        AclErrorKind::EmptyTopic { .. }
    ));
    assert!(matches!(
        err("frobnicate x\n").kind,
        AclErrorKind::InvalidLine { .. }
    ));
    let e = err("topic read a\n\nuser bob\ntopic readd b\n");
    assert_eq!((e.path.as_str(), e.line), ("acl.txt", 4));
    assert!(
        e.to_string()
            .starts_with("acl.txt:4: invalid topic access type \"readd\""),
        "{e}"
    );

    // `topic read` is read/write on the topic literally named `read`.
    let file = parse_acl("acl.txt", b"topic read\n").unwrap();
    assert_eq!(file.rules[0].filter, "read");
    assert_eq!(
        file.rules[0].permission,
        mqtt_policy::policy::acl::Permission::ReadWrite
    );
    // Spaces inside a filter and extra spaces around words are accepted; CRLF too.
    let file = parse_acl(
        "acl.txt",
        b"  topic   readwrite   spaced topic/x  \r\nuser  bob smith \r\ntopic x\r\n",
    )
    .unwrap();
    assert_eq!(file.rules[0].filter, "spaced topic/x");
    assert_eq!(
        file.rules[1].list,
        mqtt_policy::policy::acl::RuleList::User("bob smith".into())
    );
    assert_eq!(file.rules[1].filter, "x");
    // A pattern without %u/%c is accepted with a warning.
    let file = parse_acl("acl.txt", b"pattern read a/b\n").unwrap();
    assert_eq!(file.warnings.len(), 1);
}

#[test]
fn an_empty_or_comment_only_acl_denies_everything() {
    for text in ["", "# only a comment\n\n   \n"] {
        let policy = Policy::from_acl("acl.txt", text.as_bytes()).unwrap();
        for user in [None, Some("admin")] {
            let d = policy.decide(
                ClientRef {
                    username: user,
                    client_id: "c",
                },
                "a/b",
                Access::Write,
            );
            assert_eq!(d.reason, Reason::NoRulesForClient);
            assert_eq!(d.verdict, Verdict::Deny);
        }
    }
}

#[test]
fn special_characters_follow_cve_2017_7650() {
    let acl = "user ev+l\ntopic readwrite own/#\npattern readwrite clients/%c/#\n";
    assert_eq!(verdict_both(acl, Some("ev+l"), "e1", "own/x", W), A);
    assert_eq!(verdict_both(acl, Some("ev+l"), "e1", "clients/e1/x", W), D);
    assert_eq!(verdict_both(acl, Some("bob"), "k#1", "clients/k#1/x", W), D);
    assert_eq!(verdict_both(acl, Some("bob"), "a/b", "clients/a/b/x", W), A);
    // Without patterns the dangerous-name rule does not apply.
    assert_eq!(
        verdict_both("user ev+l\ntopic own/#\n", Some("ev+l"), "k#1", "own/x", W),
        A
    );
}

#[test]
fn dollar_topics_need_dollar_rules() {
    let acl = "user u\ntopic readwrite #\ntopic read $SYS/#\ntopic readwrite $app/+\npattern readwrite +/%u\n";
    assert_eq!(verdict_both(acl, Some("u"), "c", "$SYS/broker/load", R), A);
    assert_eq!(verdict_both(acl, Some("u"), "c", "$SYS/x", W), D);
    assert_eq!(verdict_both(acl, Some("u"), "c", "$app/x", W), A);
    assert_eq!(verdict_both(acl, Some("v"), "c", "$x/v", W), D);
    assert_eq!(verdict_both(acl, Some("u"), "c", "$share/g/a", W), D);
    assert_eq!(verdict_both(acl, Some("u"), "c", "$shared", W), D);
    assert_eq!(
        verdict_both(
            "user u\ntopic readwrite $SYS/#\n",
            Some("u"),
            "c",
            "$SYS/broker/connection/b1/state",
            W
        ),
        A
    );
}

#[test]
fn substitution_is_substring_and_may_span_levels() {
    let acl =
        "pattern write d/%u-x\npattern readwrite c/%c/#\npattern read %u\npattern read e/%u/%u\n";
    assert_eq!(verdict_both(acl, Some("alice"), "c1", "d/alice-x", W), A);
    assert_eq!(verdict_both(acl, Some("alice"), "c1", "d/alice", W), D);
    assert_eq!(verdict_both(acl, Some("a/b"), "c1", "e/a/b/a/b", R), A);
    assert_eq!(verdict_both(acl, Some("a/b"), "c1", "e/a/b/a/c", R), D);
    assert_eq!(verdict_both(acl, None, "x/y", "c/x/y", W), A);
    assert_eq!(verdict_both(acl, None, "x", "c/x/y", W), A);
    assert_eq!(verdict_both(acl, Some("$v"), "c1", "$v", R), A);
    // An empty username is a username: %u becomes an empty level.
    assert_eq!(
        verdict_both("pattern readwrite +/+/+/%u\n", Some(""), "c1", "a/b/c/", W),
        A
    );
    // Anonymous clients skip %u patterns entirely.
    assert_eq!(
        verdict_both("pattern readwrite %u/%c\n", None, "c1", "/c1", W),
        D
    );
}

#[test]
fn user_blocks_merge_and_user_rules_beat_pattern_denies() {
    let acl = "user a\ntopic read x\nuser b\ntopic y\nuser a\ntopic write z\npattern deny #\n";
    assert_eq!(verdict_both(acl, Some("a"), "c", "x", R), A);
    assert_eq!(verdict_both(acl, Some("a"), "c", "z", W), A);
    assert_eq!(verdict_both(acl, Some("a"), "c", "y", R), D);
    assert_eq!(verdict_both(acl, Some("b"), "c", "y", W), A);
}

#[test]
fn tutorial_check_explains_the_three_level_topic() {
    let policy = Policy::from_acl("acl.txt", RULE_SET_T.as_bytes()).unwrap();
    let e = policy.explain(
        ClientRef {
            username: Some("user1"),
            client_id: "user1",
        },
        "panama/colon/user1",
        Access::Write,
    );
    assert_eq!(e.verdict, Verdict::Deny);
    let text = e.to_string();
    assert!(
        text.contains("acl.txt:1 `pattern readwrite +/+/+/%u`"),
        "{text}"
    );
    assert!(
        text.contains("needs 4 levels and the topic has 3"),
        "{text}"
    );
    let e = policy.explain(
        ClientRef {
            username: Some("user1"),
            client_id: "user1",
        },
        "colombia/cundinamarca/bogota/user2",
        Access::Write,
    );
    assert!(
        e.to_string()
            .contains("level 4 must be \"user1\" and the topic has \"user2\""),
        "{e}"
    );
}
