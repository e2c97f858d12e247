use super::*;
use crate::policy::acl::parse_acl_as;
use crate::policy::Semantics;

fn acl(text: &str) -> AclFile {
    parse_acl_as("acl.txt", text.as_bytes(), Semantics::Mosquitto20).unwrap()
}

fn codes(findings: &[Finding]) -> Vec<(u32, &'static str)> {
    findings.iter().map(|f| (f.line, f.code.as_str())).collect()
}

fn lint_acl(text: &str) -> Vec<(u32, &'static str)> {
    codes(&lint(&acl(text), None))
}

#[test]
fn an_allow_covered_by_a_deny_of_the_same_list_is_shadowed_wherever_the_deny_stands() {
    let found = lint_acl("user u\ntopic write a/b\ntopic deny a/#\n");
    assert_eq!(found, [(2, "shadowed-by-deny")]);
    let found = lint_acl("user u\ntopic deny a/#\ntopic read a/+/c\n");
    assert_eq!(found, [(3, "shadowed-by-deny")]);
}

#[test]
fn a_deny_in_another_list_shadows_nothing() {
    assert_eq!(
        lint_acl("user u\ntopic write a/b\nuser v\ntopic deny a/#\n"),
        []
    );
    assert_eq!(lint_acl("topic deny a/#\nuser u\ntopic write a/b\n"), []);
}

#[test]
fn a_partly_covering_deny_shadows_nothing() {
    assert_eq!(lint_acl("user u\ntopic write a/#\ntopic deny a/b\n"), []);
    assert_eq!(lint_acl("user u\ntopic write a/+\ntopic deny a/b/#\n"), []);
}

#[test]
fn of_two_equal_denies_only_the_second_is_reported() {
    assert_eq!(
        lint_acl("user u\ntopic deny a/b\ntopic deny a/b\n"),
        [(3, "shadowed-by-deny")]
    );
}

#[test]
fn a_later_allow_granted_by_earlier_rules_for_each_access_is_shadowed() {
    assert_eq!(
        lint_acl("user u\ntopic readwrite a/#\ntopic read a/b\n"),
        [(3, "shadowed-by-allow")]
    );
    assert_eq!(
        lint_acl("user u\ntopic read a/#\ntopic write +/b\ntopic readwrite a/b\n"),
        [(4, "shadowed-by-allow")]
    );
    // Read is covered, write is not.
    assert_eq!(
        lint_acl("user u\ntopic read a/#\ntopic readwrite a/b\n"),
        []
    );
    // A broader rule after a narrower one: the narrower still decides first.
    assert_eq!(lint_acl("user u\ntopic read a/b\ntopic read a/#\n"), []);
}

#[test]
fn patterns_shadow_each_other_only_through_equal_placeholder_levels() {
    assert_eq!(
        lint_acl("pattern readwrite +/+/%u/#\npattern read +/+/%u/x\n"),
        [(2, "shadowed-by-allow")]
    );
    // `+` does not cover `%u`: a username may hold a `/`.
    assert_eq!(lint_acl("pattern readwrite a/+\npattern read a/%u\n"), []);
    assert_eq!(
        lint_acl("pattern deny a/%c/#\npattern write a/%c/x\n"),
        [(2, "shadowed-by-deny")]
    );
}

#[test]
fn a_pattern_deny_is_reported_for_users_whose_own_list_grants_first() {
    let found = lint(
        &acl("pattern deny secret/%u\npattern readwrite +/%u\nuser admin\ntopic readwrite #\nuser bob\ntopic read secret/+\nuser carol\ntopic write public/#\n"),
        None,
    );
    let overridden: Vec<&Finding> = found
        .iter()
        .filter(|f| f.code == Code::DenyOverriddenByOwnAllow)
        .collect();
    assert_eq!(overridden.len(), 1, "{found:#?}");
    let message = &overridden[0].message;
    assert_eq!(overridden[0].line, 1);
    assert!(
        message.contains("user admin (reads and writes)"),
        "{message}"
    );
    assert!(message.contains("user bob (reads)"), "{message}");
    assert!(!message.contains("carol"), "{message}");
}

#[test]
fn a_pattern_deny_with_a_client_id_is_overridden_only_by_a_hash() {
    let found = lint_acl("pattern deny s/%c\nuser bob\ntopic readwrite s/+\n");
    assert!(
        !found.contains(&(1, "deny-overridden-by-own-allow")),
        "{found:?}"
    );
    let found = lint_acl("pattern deny s/%c\nuser bob\ntopic readwrite s/#\n");
    assert!(
        found.contains(&(1, "deny-overridden-by-own-allow")),
        "{found:?}"
    );
}

#[test]
fn placeholders_in_topic_lines_and_inside_levels_are_reported() {
    assert_eq!(
        lint_acl("topic read a/%u\nuser u\ntopic write b/%c\npattern write x/a%ub\npattern write y/%u/%c\n"),
        [
            (1, "placeholder-in-topic-line"),
            (3, "placeholder-in-topic-line"),
            (4, "placeholder-inside-level"),
        ]
    );
    let found = lint(&acl("topic read a/%u\n"), None);
    assert!(
        found[0].message.contains("anonymous list"),
        "{}",
        found[0].message
    );
}

#[test]
fn hash_is_reported_once_per_list_unless_the_list_reads_a_dollar_filter() {
    assert_eq!(
        lint_acl("user admin\ntopic readwrite #\n"),
        [(2, "wildcard-excludes-sys")]
    );
    assert_eq!(
        lint_acl("user admin\ntopic readwrite #\ntopic read $SYS/#\n"),
        []
    );
    assert_eq!(lint_acl("user admin\ntopic write #\n"), []);
}

#[test]
fn the_tutorial_acl_has_only_the_sys_note() {
    let found = lint_acl("pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n");
    assert_eq!(found, [(3, "wildcard-excludes-sys")]);
}

#[test]
fn users_are_compared_across_the_two_files() {
    let passwords = PasswordFile::parse(
        "users.txt",
        b"alice:$7$101$cHJvcGVyc2FsdHhY$W7v6cHTs9ZWyhnBX+B/i1I0HKGmiG4QdH8zsOTuNMrzNwI3EW82QUnZaP7gEXZ9EyLy9SihglI5vh8S9CISLfQ==\nbob:plain\ncarol:$7$101$cHJvcGVyc2FsdHhY$W7v6cHTs9ZWyhnBX+B/i1I0HKGmiG4QdH8zsOTuNMrzNwI3EW82QUnZaP7gEXZ9EyLy9SihglI5vh8S9CISLfQ==\n",
    );
    let found = lint(
        &acl("user alice\ntopic read a\nuser bob\ntopic read b\nuser dave\ntopic read d\n"),
        Some(&passwords),
    );
    let mut got = codes(&found);
    got.sort();
    assert_eq!(
        got,
        [
            (2, "password-plaintext"),
            (3, "password-user-without-rules"),
            (4, "acl-user-cannot-log-in"),
            (6, "acl-user-cannot-log-in"),
        ],
        "{found:#?}"
    );
}
