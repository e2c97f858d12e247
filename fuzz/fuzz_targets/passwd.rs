//! The `password_file` parser and the hash verifiers.
//!
//! The file is read whole, in pieces (as the loader feeds it) and for one user only, and compared with
//! the model the compact one replaced (`mqtt_policy::policy::passwd::reference`): same users, lines,
//! warnings and entries. Every hash field of the file is decoded, and logins are checked against the
//! entries that are cheap to verify (a `$7$` entry with a billion iterations is a valid file, but not
//! something to compute per input), by both models, with the right password and a wrong one.
//!
//! Input: one byte (where to cut the file into pieces), the file up to the first `\0\0`, then passwords
//! to try, one a line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_policy::policy::passwd::fuzzing;
use mqtt_policy::policy::passwd::reference::Reference;
use mqtt_policy::policy::passwd::PasswordFile;

/// At most this much work per verification: 128 SHA-512 rounds, or 128 KiB-passes of argon2id.
const MAX_WORK: u64 = 128;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (text, passwords) = match rest.windows(2).position(|w| w == [0, 0]) {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let whole = PasswordFile::parse("p", text);
    let old = Reference::parse("p", text);
    let mut builder = PasswordFile::builder("p");
    let cut = usize::from(cut) % (text.len() + 1);
    builder.feed(&text[..cut]);
    for piece in text[cut..].chunks(97) {
        builder.feed(piece);
    }
    let pieces = builder.finish();
    assert_eq!(whole.warnings(), old.warnings());
    assert_eq!(pieces.warnings(), old.warnings());
    assert_eq!(whole.users(), old.users());
    assert_eq!(pieces.users(), old.users());
    assert_eq!(whole.len(), old.len());
    let _ = whole.warning_lines().count();
    // Logins cost hash computations (and a dummy one on every failure): a few users and passwords.
    let mut logins = 3;
    for user in whole.users().iter().take(8) {
        let name = user.name.as_str();
        assert_eq!(whole.contains(name), old.contains(name));
        assert_eq!(whole.line_of(name), old.line_of(name));
        assert_eq!(whole.entry_hash(name), old.entry_hash(name));
        assert_eq!(pieces.entry_hash(name), old.entry_hash(name));
        let mut builder = PasswordFile::builder("p").only_user(name);
        builder.feed(text);
        let one = builder.finish();
        assert_eq!(one.entry_hash(name), whole.entry_hash(name));
        assert_eq!(one.line_of(name), whole.line_of(name));
        let Some(field) = whole.entry_hash(name) else {
            continue;
        };
        // A usable entry decodes.
        let work = fuzzing::decode(field).unwrap_or_else(|e| panic!("{name}: {e}"));
        if work > MAX_WORK || logins == 0 {
            continue;
        }
        logins -= 1;
        for password in passwords.split(|&b| b == b'\n').take(2) {
            let new = whole.verify(name, Some(password));
            assert_eq!(new, old.verify(name, Some(password)), "{name}");
            assert_eq!(
                new.is_accepted(),
                fuzzing::verify(field, password, MAX_WORK) == Some(true),
                "{name}"
            );
        }
        assert_eq!(whole.verify(name, None), old.verify(name, None));
    }
    // Hash fields on their own: the text after the last `:` of each line.
    for line in text.split(|&b| b == b'\n').take(8) {
        if let Some(at) = line.iter().rposition(|&b| b == b':') {
            let field = &line[at + 1..];
            if let Ok(work) = fuzzing::decode(field) {
                if work <= MAX_WORK {
                    let _ = fuzzing::verify(field, b"password", MAX_WORK);
                }
            }
        }
    }
});
