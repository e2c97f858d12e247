//! Differential: the compiled `acl_file` policy (tries, per-user lists, the subscription index) against
//! the plain transcription of Mosquitto's algorithm (`mqtt_policy::policy::acl::reference`) on the same
//! file and the same questions, as the property tests do (`tests/acl_properties.rs`) but on any text.
//! Also: a policy compiled for one user explains as the whole policy, and the subscription index changes
//! no decision.
//!
//! Input: one byte (bit 0: 2.1 semantics), the file up to the first NUL byte, then questions, one a line:
//! `username<TAB>client id<TAB>topic`, or `client id<TAB>topic` for a client without a username.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_policy::policy::acl::{parse_acl_as, reference::reference_verdict, Policy};
use mqtt_policy::policy::{topic, Access, ClientRef, Semantics};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let semantics = if flags & 1 == 0 {
        Semantics::Mosquitto20
    } else {
        Semantics::Mosquitto21
    };
    let (text, questions) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(file) = parse_acl_as("acl", text, semantics) else {
        return;
    };
    let Ok(questions) = std::str::from_utf8(questions) else {
        return;
    };
    let policy = Policy::compile(file.clone());
    let scanned = Policy::compile(file.clone()).without_subscribe_index();
    for line in questions.lines().take(32) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (username, client_id, name) = match fields[..] {
            [u, c, t] => (Some(u), c, t),
            [c, t] => (None, c, t),
            _ => continue,
        };
        let client = ClientRef {
            username,
            client_id,
        };
        if topic::validate_topic(name).is_ok() {
            for access in [Access::Read, Access::Write] {
                let compiled = policy.decide(client, name, access).verdict;
                let reference = reference_verdict(&file, client, name, access);
                assert_eq!(compiled, reference, "{client:?} {access:?} {name}");
            }
        }
        if topic::validate_filter(name).is_ok() {
            assert_eq!(
                policy.decide(client, name, Access::Subscribe),
                scanned.decide(client, name, Access::Subscribe),
                "{client:?} subscribes to {name}"
            );
        }
        let one = Policy::compile_for(file.clone(), username);
        for access in [Access::Read, Access::Write, Access::Subscribe] {
            let valid = match access {
                Access::Subscribe => topic::validate_filter(name).is_ok(),
                _ => topic::validate_topic(name).is_ok(),
            };
            if valid {
                assert_eq!(
                    format!("{:?}", one.explain(client, name, access)),
                    format!("{:?}", policy.explain(client, name, access)),
                    "compiled for {username:?}: {client:?} {access:?} {name}"
                );
            }
        }
    }
});
