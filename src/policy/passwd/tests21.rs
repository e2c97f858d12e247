//! Tests of [`PasswordFile`] with Mosquitto 2.1's reading: what makes 2.1.2's password-file plugin refuse
//! the whole file, and its NUL handling. The refusals were checked against the real 2.1.2
//! (`mosquitto-test/password_versions.rs`).

use super::*;

/// Password `123456`.
const HASH1: &str = "$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==";
/// Password `secret2`.
const HASH2: &str = "$7$101$cbb6UlRtKQsdTbHQ$l04PMHHgpMalkiyY6ku/JcCwLz1atVbfIliJojevxyAZ5Aow7dwKLirkhENynMNkE5V5F+DReijr/gi+NOiMgA==";

fn parse21(text: &[u8]) -> PasswordFile {
    PasswordFile::parse_as("users.txt", text, Semantics::Mosquitto21)
}

/// The refusal's line when the file is fed whole, byte by byte, and with one user kept (each user named
/// in `users`): all must agree.
fn refused_line(text: &[u8], users: &[&str]) -> Option<u32> {
    let whole = parse21(text).refusal().map(|r| r.line);
    let mut builder = PasswordFile::builder_as("users.txt", Semantics::Mosquitto21);
    for byte in text {
        builder.feed(std::slice::from_ref(byte));
    }
    assert_eq!(
        builder.finish().refusal().map(|r| r.line),
        whole,
        "byte by byte"
    );
    for user in users {
        let mut builder =
            PasswordFile::builder_as("users.txt", Semantics::Mosquitto21).only_user(user);
        builder.feed(text);
        assert_eq!(
            builder.finish().refusal().map(|r| r.line),
            whole,
            "only {user}"
        );
    }
    whole
}

#[test]
fn a_file_2_1_reads_has_no_refusal_and_the_same_answers() {
    let text = format!("# users\n\nuser1:{HASH1}\nuser2 : {HASH2} \nno colon\n");
    assert_eq!(refused_line(text.as_bytes(), &["user1", "user2"]), None);
    let f = parse21(text.as_bytes());
    assert_eq!(f.verify("user1", Some(b"123456")), AuthResult::Accepted);
    assert_eq!(f.verify("user2", Some(b"secret2")), AuthResult::Accepted);
    assert_eq!(f.verify("user2", Some(b"x")), AuthResult::WrongPassword);
    assert!(f.warnings().is_empty(), "{:?}", f.warnings());
}

#[test]
fn the_first_line_2_1_refuses_is_reported_the_same_however_the_file_is_read() {
    let cases: Vec<(String, u32)> = vec![
        (format!("user1:{HASH1}\nbob:plain\n"), 2),
        (format!("user1:{HASH1}\n :{HASH2}\n"), 2),
        (format!("user1:{HASH1}\n:::\n"), 2),
        (format!("user1:{HASH1}\nbob:\n"), 2),
        (format!("user1:{HASH1}\nbob:"), 2),
        (format!("user1:{HASH1}\nbob:$9$aa\n"), 2),
        (format!("user1:{HASH1}\nuser2:{HASH2}\nuser1:{HASH2}\n"), 3),
        (
            format!("user2:{HASH2}\nuser1:{HASH1}\nuser2:{HASH2}\nbob:plain\n"),
            3,
        ),
        (format!("user1:{HASH1}\nbob:plain\nuser1:{HASH2}\n"), 2),
    ];
    for (text, line) in cases {
        assert_eq!(
            refused_line(text.as_bytes(), &["user1", "user2", "bob"]),
            Some(line),
            "{text:?}"
        );
    }
    // The message names what is wrong.
    let f = parse21(format!("user1:{HASH1}\nuser1:{HASH2}\n").as_bytes());
    let refusal = f.refusal().expect("a duplicate");
    assert!(refusal.message.contains("also on line 1"), "{refusal:?}");
}

#[test]
fn the_2_0_reading_never_refuses() {
    let f = PasswordFile::parse(
        "users.txt",
        format!("user1:{HASH1}\nbob:plain\nuser1:{HASH2}\n").as_bytes(),
    );
    assert_eq!(f.refusal(), None);
    assert_eq!(f.verify("user1", Some(b"secret2")), AuthResult::Accepted);
}

#[test]
fn a_nul_line_is_skipped_by_2_1_and_swallows_the_rest_on_2_0() {
    let text = format!("user1:{HASH1}\nbad\0x:y\nuser2:{HASH2}\n");
    let on_21 = parse21(text.as_bytes());
    assert_eq!(on_21.refusal(), None);
    assert_eq!(
        on_21.verify("user2", Some(b"secret2")),
        AuthResult::Accepted
    );
    assert!(on_21
        .warnings()
        .iter()
        .any(|w| w.line == 2 && w.message.contains("skips that line")));
    let on_20 = PasswordFile::parse("users.txt", text.as_bytes());
    assert_eq!(
        on_20.verify("user2", Some(b"secret2")),
        AuthResult::UnknownUser
    );
    // The NUL line last, without a newline: read up to the NUL, on both.
    let text = format!("user1:{HASH1}\nuser2:{HASH2}\0junk");
    assert_eq!(
        parse21(text.as_bytes()).verify("user2", Some(b"secret2")),
        AuthResult::Accepted
    );
}

#[test]
fn argon2id_is_accepted_with_a_warning_about_2_1_2s_default_build() {
    let argon = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$2fDk2tXoJr4Cyw1fA4NqnQ";
    let f = parse21(format!("carol:{argon}\nuser1:{HASH1}\n").as_bytes());
    assert_eq!(f.refusal(), None);
    assert!(
        f.warnings()
            .iter()
            .any(|w| w.message.contains("WITH_ARGON2")),
        "{:?}",
        f.warnings()
    );
    // A malformed one never verifies, and does not make the file refused.
    let f = parse21(format!("carol:$argon2id$garbage\nuser1:{HASH1}\n").as_bytes());
    assert_eq!(f.refusal(), None);
    assert!(!f.verify("carol", Some(b"x")).is_accepted());
}
