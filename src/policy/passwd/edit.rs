//! Editing the text of a password file, as `mosquitto_passwd` does, without its data loss.
//!
//! These are pure functions from the old bytes to the new ones; `mqtt-policy passwd` reads and writes the
//! file around them. A line belongs to a user when the broker would read that username from it (same
//! `:` splitting and trimming as [`super::PasswordFile::parse`]).
//!
//! Differences from `mosquitto_passwd` 2.0, on purpose:
//! * Comment lines, blank lines and lines the broker ignores are kept. `mosquitto_passwd` calls them
//!   "corrupt" and, when adding a user, drops them and every line after them.
//! * Upgrading (`-U`) leaves lines that are already hashes alone; `mosquitto_passwd` hashes the hash
//!   strings, locking those users out.
//! * A file whose last line has no newline gets one before a line is appended (`mosquitto_passwd` would
//!   glue the new line onto the last one).
//! * Usernames the broker could not read back as given are refused (see [`validate_username`]).

use std::fmt;

use super::file::{self, LineKind, PhysicalLine};
use super::hash::StoredHash;

/// The longest username or password `mosquitto_passwd` accepts, in bytes.
pub const MAX_INPUT_LEN: usize = 65535;

/// Something worth telling the user about a line while editing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditNote {
    /// 1-based line number in the old text.
    pub line: u32,
    /// What happened to the line, or what is odd about it.
    pub message: String,
}

impl fmt::Display for EditNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The result of an edit: the new text and notes about lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edited {
    /// The new file contents.
    pub text: Vec<u8>,
    /// Notes, in line order.
    pub notes: Vec<EditNote>,
}

/// What [`upgrade_plaintext`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgraded {
    /// The new text and notes about lines left unchanged.
    pub edited: Edited,
    /// Lines whose plaintext password was replaced by a hash.
    pub hashed: usize,
    /// Lines that already held a valid hash and were left as they were.
    pub already_hashed: usize,
}

/// Why an edit could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// `delete_user` found no line for the user.
    #[error("User {0} not found in password file.")]
    UserNotFound(String),
}

/// Why a username cannot be written to a password file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameError {
    /// 65536 bytes or more (as `mosquitto_passwd`).
    #[error("Username must be less than 65536 characters long.")]
    TooLong,
    /// A byte below 32 or 127 (as `mosquitto_passwd`).
    #[error("Username must not contain control characters.")]
    ControlCharacter,
    /// `:` separates username and hash (as `mosquitto_passwd`).
    #[error("Username must not contain the ':' character.")]
    Colon,
    /// Empty: `mosquitto_passwd` writes a line the broker reads as another username.
    #[error("Username must not be empty.")]
    Empty,
    /// Starts with `#`: the broker would take the line for a comment.
    #[error("Username must not start with '#': Mosquitto reads such a line as a comment.")]
    Comment,
    /// Leading or trailing spaces: the broker trims them, so this exact name could never log in.
    #[error("Username must not start or end with a space: Mosquitto trims them away.")]
    Spaces,
}

/// Why a password cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// 65536 bytes or more (as `mosquitto_passwd`).
    #[error("Password must be less than 65536 characters long.")]
    TooLong,
}

/// Checks a username as `mosquitto_passwd` does (length, control characters, `:`), and also refuses names
/// the broker would not read back as given: empty, starting with `#`, or with surrounding spaces.
pub fn validate_username(username: &str) -> Result<(), UsernameError> {
    let bytes = username.as_bytes();
    if bytes.len() > MAX_INPUT_LEN {
        return Err(UsernameError::TooLong);
    }
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(UsernameError::ControlCharacter);
    }
    if bytes.contains(&b':') {
        return Err(UsernameError::Colon);
    }
    if bytes.is_empty() {
        return Err(UsernameError::Empty);
    }
    if bytes[0] == b'#' {
        return Err(UsernameError::Comment);
    }
    if file::trim_c_space(bytes).len() != bytes.len() {
        return Err(UsernameError::Spaces);
    }
    Ok(())
}

/// Checks a password's length as `mosquitto_passwd` does.
pub fn validate_password(password: &[u8]) -> Result<(), PasswordError> {
    if password.len() > MAX_INPUT_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// The text of a new file holding one user (what `-c` writes).
pub fn new_file(username: &str, hash_field: &str) -> Vec<u8> {
    format!("{username}:{hash_field}\n").into_bytes()
}

/// The username the broker reads from a line, if any.
fn username_of<'a>(line: &PhysicalLine<'a>) -> Option<&'a [u8]> {
    match file::classify(file::c_str(line.raw)) {
        LineKind::Entry { username, .. }
        | LineKind::MissingHash { username }
        | LineKind::HashTooLong { username } => Some(username),
        _ => None,
    }
}

/// The line ending a new or replaced line gets: the one `line` had, else `\n`.
fn ending_of(line: &PhysicalLine<'_>) -> &'static [u8] {
    if line.raw.ends_with(b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    }
}

/// The line ending the file mostly uses (its first line's), for appended lines.
fn file_ending(text: &[u8]) -> &'static [u8] {
    file::physical_lines(text)
        .next()
        .map_or(b"\n", |line| ending_of(&line))
}

fn push_line(out: &mut Vec<u8>, username: &[u8], hash_field: &str, ending: &[u8]) {
    out.extend_from_slice(username);
    out.push(b':');
    out.extend_from_slice(hash_field.as_bytes());
    out.extend_from_slice(ending);
}

/// Sets `username`'s password line to `username:hash_field`: every line of that user is replaced (as
/// `mosquitto_passwd` does); with none, the line is appended. All other lines are kept byte for byte.
pub fn set_user(text: &[u8], username: &str, hash_field: &str) -> Edited {
    let mut out = Vec::with_capacity(text.len() + username.len() + hash_field.len() + 2);
    let mut notes = Vec::new();
    let mut found = false;
    for line in file::physical_lines(text) {
        if username_of(&line) == Some(username.as_bytes()) {
            if found {
                notes.push(EditNote {
                    line: line.number,
                    message: format!("another line for {username:?}: set to the same new password"),
                });
            }
            found = true;
            push_line(&mut out, username.as_bytes(), hash_field, ending_of(&line));
        } else {
            out.extend_from_slice(line.raw);
        }
    }
    if !found {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(file_ending(text));
        }
        push_line(&mut out, username.as_bytes(), hash_field, file_ending(text));
    }
    Edited { text: out, notes }
}

/// Removes every line of `username`. Fails, leaving nothing changed, when there is none.
pub fn delete_user(text: &[u8], username: &str) -> Result<Edited, EditError> {
    let mut out = Vec::with_capacity(text.len());
    let mut found = false;
    for line in file::physical_lines(text) {
        if username_of(&line) == Some(username.as_bytes()) {
            found = true;
        } else {
            out.extend_from_slice(line.raw);
        }
    }
    if !found {
        return Err(EditError::UserNotFound(username.to_owned()));
    }
    Ok(Edited {
        text: out,
        notes: Vec::new(),
    })
}

/// How many lines [`upgrade_plaintext`] would hash: for a progress display before the slow part.
pub fn plaintext_lines(text: &[u8]) -> usize {
    file::physical_lines(text)
        .filter(|line| !line.has_nul())
        .filter(|line| match file::classify(line.raw) {
            LineKind::Entry {
                username,
                hash: field,
                ..
            } => needs_hashing(username, field),
            _ => false,
        })
        .count()
}

/// Whether [`upgrade_plaintext`] hashes an entry: a username and a password that is not a hash and does
/// not look like a broken one.
fn needs_hashing(username: &[u8], field: &[u8]) -> bool {
    !username.is_empty()
        && !field.is_empty()
        && field.first() != Some(&b'$')
        && StoredHash::parse(field).is_err()
}

/// Replaces every plaintext password by `hash(password)` (`-U`). A line's password is what the broker would
/// read as its hash field: trimmed, up to the next `:`, as `mosquitto_passwd -U` takes it.
///
/// Left unchanged, with a note where useful: comments, blank lines, lines that already hold a valid hash
/// (counted in [`Upgraded::already_hashed`]), fields starting with `$` that are not valid hashes (they are
/// broken hashes rather than passwords), lines without `:` or without a password, empty usernames, lines
/// with a NUL byte, and over-long fields.
pub fn upgrade_plaintext(text: &[u8], mut hash: impl FnMut(&[u8]) -> String) -> Upgraded {
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut notes = Vec::new();
    let mut hashed = 0;
    let mut already_hashed = 0;
    for line in file::physical_lines(text) {
        let mut note = |message: String| {
            notes.push(EditNote {
                line: line.number,
                message,
            })
        };
        if line.has_nul() {
            note("contains a NUL byte; left unchanged".into());
            out.extend_from_slice(line.raw);
            continue;
        }
        match file::classify(line.raw) {
            LineKind::Comment => {}
            LineKind::NoColon => {
                if !file::trim_c_space(line.raw).is_empty() {
                    note("no ':' on this line; Mosquitto ignores it; left unchanged".into());
                }
            }
            LineKind::NoUsername => note("no username on this line; left unchanged".into()),
            LineKind::UsernameTooLong => {
                note("the username is longer than 65535 bytes; left unchanged".into())
            }
            LineKind::MissingHash { username } => note(format!(
                "no password for {}; left unchanged",
                String::from_utf8_lossy(username)
            )),
            LineKind::HashTooLong { username } => note(format!(
                "the password of {} is longer than 65535 bytes; left unchanged",
                String::from_utf8_lossy(username)
            )),
            LineKind::Entry {
                username,
                hash: field,
                trailing_text,
            } => {
                let name = String::from_utf8_lossy(username);
                if username.is_empty() {
                    note("empty username; left unchanged".into());
                } else if field.is_empty() {
                    note(format!("no password for {name}; left unchanged"));
                } else if StoredHash::parse(field).is_ok() {
                    already_hashed += 1;
                } else if let (Some(b'$'), Err(e)) = (field.first(), StoredHash::parse(field)) {
                    note(format!(
                        "{name}: starts with '$' but is not a valid hash ({e}); left unchanged. Set a new password with `mqtt-policy passwd -b FILE {name} PASSWORD`"
                    ));
                } else {
                    if trailing_text {
                        note(format!(
                            "{name}: the text after the second ':' is not part of the password (as for mosquitto_passwd -U) and was dropped"
                        ));
                    }
                    push_line(&mut out, username, &hash(field), ending_of(&line));
                    hashed += 1;
                    continue;
                }
            }
        }
        out.extend_from_slice(line.raw);
    }
    Upgraded {
        edited: Edited { text: out, notes },
        hashed,
        already_hashed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::passwd::PasswordFile;

    const USER1: &str = "$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==";

    fn fake_hash(pw: &[u8]) -> String {
        format!("H({})", String::from_utf8_lossy(pw))
    }

    fn text(e: &Edited) -> &str {
        std::str::from_utf8(&e.text).unwrap()
    }

    #[test]
    fn usernames_are_checked_like_mosquitto_passwd() {
        assert_eq!(validate_username("alice"), Ok(()));
        assert_eq!(validate_username("a+b#c/d"), Ok(()));
        assert_eq!(validate_username("ünï cödé"), Ok(()));
        assert_eq!(validate_username("a:b"), Err(UsernameError::Colon));
        assert_eq!(
            validate_username("a\tb"),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(
            validate_username("a\x7fb"),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(
            validate_username(&"a".repeat(65536)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(validate_username(&"a".repeat(65535)), Ok(()));
    }

    #[test]
    fn usernames_the_broker_could_not_read_back_are_refused() {
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(validate_username("#alice"), Err(UsernameError::Comment));
        assert_eq!(validate_username(" alice"), Err(UsernameError::Spaces));
        assert_eq!(validate_username("alice "), Err(UsernameError::Spaces));
        assert_eq!(validate_username("al ice"), Ok(()));
    }

    #[test]
    fn passwords_are_checked_like_mosquitto_passwd() {
        assert_eq!(validate_password(&[b'x'; 65535]), Ok(()));
        assert_eq!(
            validate_password(&[b'x'; 65536]),
            Err(PasswordError::TooLong)
        );
        assert_eq!(validate_password(b""), Ok(()));
    }

    #[test]
    fn new_file_holds_one_line() {
        assert_eq!(new_file("alice", "$7$x"), b"alice:$7$x\n");
    }

    #[test]
    fn set_user_appends_and_keeps_comments_and_blank_lines() {
        let old = b"# users\n\nbob:$7$b\n# end\n";
        let e = set_user(old, "alice", "$7$a");
        assert_eq!(text(&e), "# users\n\nbob:$7$b\n# end\nalice:$7$a\n");
    }

    #[test]
    fn set_user_replaces_every_line_of_the_user_in_place() {
        let old = b"alice:old1\n# c\n alice : old2 \r\nbob:b\n";
        let e = set_user(old, "alice", "$7$new");
        assert_eq!(text(&e), "alice:$7$new\n# c\nalice:$7$new\r\nbob:b\n");
        assert_eq!(e.notes.len(), 1);
        assert_eq!(e.notes[0].line, 3);
    }

    #[test]
    fn set_user_adds_the_missing_newline_before_appending() {
        let e = set_user(b"bob:b", "alice", "$7$a");
        assert_eq!(text(&e), "bob:b\nalice:$7$a\n");
        let e = set_user(b"bob:b\r\n", "alice", "$7$a");
        assert_eq!(text(&e), "bob:b\r\nalice:$7$a\r\n");
        let e = set_user(b"", "alice", "$7$a");
        assert_eq!(text(&e), "alice:$7$a\n");
    }

    #[test]
    fn set_user_does_not_touch_comments_naming_the_user() {
        let e = set_user(b"#alice:x\n", "alice", "$7$a");
        assert_eq!(text(&e), "#alice:x\nalice:$7$a\n");
    }

    #[test]
    fn set_user_matches_what_the_broker_reads_as_the_username() {
        let e = set_user(b"::alice::x\n", "alice", "$7$a");
        assert_eq!(text(&e), "alice:$7$a\n");
        let e = set_user(b"alice:\n", "alice", "$7$a");
        assert_eq!(text(&e), "alice:$7$a\n");
        let e = set_user(b"alicex:\n", "alice", "$7$a");
        assert_eq!(text(&e), "alicex:\nalice:$7$a\n");
    }

    #[test]
    fn delete_user_removes_every_line_of_the_user_and_keeps_the_rest() {
        let old = b"# head\nalice:a\n\nbob:b\nalice:a2\n# tail\n";
        let e = delete_user(old, "alice").unwrap();
        assert_eq!(text(&e), "# head\n\nbob:b\n# tail\n");
    }

    #[test]
    fn delete_user_fails_for_a_missing_user() {
        assert_eq!(
            delete_user(b"bob:b\n", "alice"),
            Err(EditError::UserNotFound("alice".into()))
        );
        assert_eq!(
            EditError::UserNotFound("alice".into()).to_string(),
            "User alice not found in password file."
        );
    }

    #[test]
    fn upgrade_hashes_plaintext_and_keeps_everything_else() {
        let old = format!("# users\nalice:secret\n\n bob : pw2 \r\ncarol:{USER1}\n");
        let u = upgrade_plaintext(old.as_bytes(), fake_hash);
        assert_eq!(
            text(&u.edited),
            format!("# users\nalice:H(secret)\n\nbob:H(pw2)\r\ncarol:{USER1}\n")
        );
        assert_eq!(u.hashed, 2);
        assert_eq!(u.already_hashed, 1);
        assert!(u.edited.notes.is_empty(), "{:?}", u.edited.notes);
    }

    #[test]
    fn upgrade_leaves_broken_hashes_and_odd_lines_alone_with_notes() {
        let old = b"alice:$7$0$abc$def\nno colon here\nbob:\ncarol:pw:extra\n :pw\nd\0:x\n";
        let u = upgrade_plaintext(old, fake_hash);
        assert_eq!(
            text(&u.edited),
            "alice:$7$0$abc$def\nno colon here\nbob:\ncarol:H(pw)\n :pw\nd\0:x\n"
        );
        let lines: Vec<u32> = u.edited.notes.iter().map(|n| n.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6]);
        assert!(u.edited.notes[0].message.contains("iteration count"));
        assert_eq!(u.hashed, 1);
    }

    #[test]
    fn upgrade_of_a_hashed_file_changes_nothing() {
        let old = format!("alice:{USER1}\nbob:{USER1}\n");
        let u = upgrade_plaintext(old.as_bytes(), |_| unreachable!("nothing to hash"));
        assert_eq!(u.edited.text, old.as_bytes());
        assert_eq!(u.already_hashed, 2);
    }

    #[test]
    fn upgraded_lines_verify() {
        let u = upgrade_plaintext(b"alice:123456\n", |pw| {
            crate::policy::passwd::hash_password(
                pw,
                crate::policy::passwd::HashKind::Sha512Pbkdf2,
                None,
            )
        });
        let parsed = PasswordFile::parse("f", &u.edited.text);
        assert!(parsed.verify("alice", Some(b"123456")).is_accepted());
        assert!(parsed.warnings().is_empty());
    }
}
