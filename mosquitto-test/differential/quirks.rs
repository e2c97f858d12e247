//! Fixed scenarios for corners of mosquitto's behaviour that the generated ones reach only by chance:
//! how its acl line reader treats NUL bytes and a last line without a newline, and how it reads a
//! zero-length username. Each runs through [`super::check_scenarios`] (or states the fact the
//! differential relies on), so the engine is held to the same answers.

use super::generate::{Identity, Scenario};
use super::{check_scenarios, BrokerUnderTest, MosquittoAclFile};
use crate::support::wire::{Connect, WireClient};

/// The identity mapping in [`super::compare::client_ref`] rests on this: mosquitto 2.0 treats a CONNECT
/// with the username flag and a zero-length username as anonymous (the anonymous list applies, `%u`
/// patterns do not).
#[test]
fn mosquitto_treats_a_zero_length_username_as_anonymous() {
    let acl = b"topic write anonymous/#\npattern write users/%u/x\n";
    let broker = MosquittoAclFile.start(acl);
    let connect = Connect {
        client_id: "c-empty",
        username: Some(""),
        password: Some(b"pw"),
    };
    let mut client = WireClient::connect(broker.port(), &connect)
        .expect("connect")
        .expect("accepted: no password file, allow_anonymous true");
    let reasons = client
        .publish_qos1(&[("anonymous/a", b"x"), ("users//x", b"x")])
        .expect("publish");
    assert_eq!(
        reasons,
        [0x10, 0x87],
        "anonymous rule applies, empty %u does not\n{}",
        broker.log()
    );
    client.disconnect();
}

/// Mosquitto reads acl lines with `fgets` into a buffer it extends until the C string ends in a
/// newline; a NUL byte stops `strlen` short of it, so the reader swallows every following line, and,
/// when the file ends with a newline, returns end-of-file: the line with the NUL and every line after it
/// are ignored. (Without a final newline, the part of that line before the NUL still counts.)
#[test]
fn a_nul_byte_makes_mosquitto_ignore_that_line_and_the_rest_of_the_acl_file() {
    let anonymous = Identity {
        username: None,
        client_id: "nul".to_owned(),
    };
    let scenario = |label: &str, lines: &[&str]| Scenario {
        label: label.to_owned(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        crlf: false,
        final_newline: true,
        identities: vec![anonymous.clone()],
        topics: ["a", "b", "c"].map(String::from).to_vec(),
    };
    check_scenarios(
        &MosquittoAclFile,
        &[
            scenario(
                "NUL on the first line",
                &["topic write a\0x", "topic write b"],
            ),
            scenario(
                "NUL in the middle",
                &["topic write b", "topic write a\0x", "topic write c"],
            ),
        ],
        "fixed scenarios",
    );
}

/// The same line reader, at the end of a file without a final newline: when the last line exactly
/// fills the buffer (255 bytes, or 255 + 1000·k), the read that would find its newline finds
/// end-of-file instead and the line is dropped.
#[test]
fn mosquitto_drops_a_last_line_of_255_bytes_without_a_newline() {
    let scenario = |line_length: usize, final_newline: bool| {
        let topic = "a".repeat(line_length - "topic write ".len());
        Scenario {
            label: format!("last line of {line_length} bytes, final newline: {final_newline}"),
            lines: vec!["topic write b".to_owned(), format!("topic write {topic}")],
            crlf: false,
            final_newline,
            identities: vec![Identity {
                username: None,
                client_id: "long".to_owned(),
            }],
            topics: vec![topic, "b".to_owned()],
        }
    };
    check_scenarios(
        &MosquittoAclFile,
        &[
            scenario(255, false),
            scenario(255, true),
            scenario(254, false),
            scenario(256, false),
        ],
        "fixed scenarios",
    );
}
