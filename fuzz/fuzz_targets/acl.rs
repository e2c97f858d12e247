//! The `acl_file` parser and compiler: any bytes as a file, for Mosquitto 2.0's or 2.1's semantics.
//! A file that parses is compiled (whole, and for one user), linted, and asked about the topics and
//! filters its own rules name, for the users its own `user` lines name; an error must say where.
//!
//! Input: one byte (bit 0: 2.1 semantics), then the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_policy::policy::acl::{parse_acl_as, Policy, RuleList};
use mqtt_policy::policy::lint::lint;
use mqtt_policy::policy::{topic, Access, ClientRef, Semantics};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let semantics = if flags & 1 == 0 {
        Semantics::Mosquitto20
    } else {
        Semantics::Mosquitto21
    };
    let file = match parse_acl_as("acl", text, semantics) {
        Ok(file) => file,
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("acl:"), "{message}");
            return;
        }
    };
    let lines = text.split(|&b| b == b'\n').count();
    for w in &file.warnings {
        assert!(w.line >= 1 && w.line as usize <= lines, "{w:?}");
    }
    let _ = lint(&file, None);
    let mut users: Vec<Option<String>> = vec![None];
    users.extend(file.rules.iter().filter_map(|r| match &r.list {
        RuleList::User(u) => Some(Some(u.clone())),
        _ => None,
    }));
    users.dedup();
    users.truncate(4);
    // What the rules name, with wildcards and substitutions made concrete, as topics and as filters.
    let mut questions: Vec<String> = Vec::new();
    for r in file.rules.iter().take(16) {
        let concrete = r
            .filter
            .replace("%u", "u")
            .replace("%c", "c")
            .replace('+', "x")
            .replace("/#", "/y/z")
            .replace('#', "y");
        questions.push(concrete);
        questions.push(r.filter.clone());
    }
    questions.push("a/b".into());
    questions.push("$SYS/broker/x".into());
    let whole = Policy::compile(file.clone());
    for user in &users {
        let one = Policy::compile_for(file.clone(), user.as_deref());
        let client = ClientRef {
            username: user.as_deref(),
            client_id: "c",
        };
        for q in &questions {
            let mut accesses = Vec::new();
            if topic::validate_topic(q).is_ok() {
                accesses.extend([Access::Read, Access::Write]);
            }
            if topic::validate_filter(q).is_ok() {
                accesses.push(Access::Subscribe);
            }
            for access in accesses {
                let a = whole.explain(client, q, access);
                let b = one.explain(client, q, access);
                assert_eq!(
                    format!("{a:?}"),
                    format!("{b:?}"),
                    "compiled for {user:?}: {access:?} {q}"
                );
            }
        }
    }
});
