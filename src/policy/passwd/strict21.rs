//! What Mosquitto 2.1's password-file plugin refuses: where 2.0 drops a line it cannot use and reads on,
//! 2.1.2 (`plugins/password-file/password_parse.c`) stops at the first such line and the whole file fails
//! to load, so the broker does not start. Checked in its order: the username (over 65,535 bytes, empty
//! after trimming, already in the file), then the hash field (missing, over 65,535 bytes, not decodable
//! as `$6$`, `$7$` or `$argon2id$`).
//!
//! One exception, on purpose: an `$argon2id$` field. 2.1.2 reads it only when built with `WITH_ARGON2`,
//! which its own CMake build and Makefile leave off (so a default build refuses the file), and a build
//! with it accepts any text after the prefix when loading (a malformed one simply never verifies). We
//! accept it (see [`super::PasswordFile`]) and say so in a warning.

use super::file::{LineKind, MAX_FIELD_LEN};
use super::hash::StoredHash;
use super::show;

/// Whether an earlier line of the file names a username.
pub(super) enum Earlier {
    /// No earlier line does.
    No,
    /// This line does.
    Line(u32),
    /// One does; which is not known (only a hash of the name was kept).
    Unknown,
}

/// Why 2.1.2 refuses the file at this line, if it does. `earlier` says whether an earlier line names
/// the same username.
pub(super) fn refusal(
    kind: &LineKind<'_>,
    earlier: impl FnOnce(&[u8]) -> Earlier,
) -> Option<String> {
    let username = match *kind {
        LineKind::Comment | LineKind::NoColon | LineKind::NoUsername => return None,
        LineKind::UsernameTooLong => {
            return Some(format!(
                "a username longer than {MAX_FIELD_LEN} bytes; expected USERNAME:HASH"
            ))
        }
        LineKind::MissingHash { username }
        | LineKind::HashTooLong { username }
        | LineKind::Entry { username, .. } => username,
    };
    if username.is_empty() {
        return Some("an empty username; expected USERNAME:HASH".to_owned());
    }
    let also_on = match earlier(username) {
        Earlier::No => None,
        Earlier::Line(line) => Some(format!("line {line}")),
        Earlier::Unknown => Some("an earlier line".to_owned()),
    };
    if let Some(also_on) = also_on {
        return Some(format!(
            "user {} is also on {also_on}; Mosquitto 2.1 refuses a user named twice",
            show(username)
        ));
    }
    match *kind {
        LineKind::MissingHash { .. } => Some(format!(
            "no password hash after the username {}; expected USERNAME:HASH",
            show(username)
        )),
        LineKind::HashTooLong { .. } => Some(format!(
            "the password hash of {} is longer than {MAX_FIELD_LEN} bytes",
            show(username)
        )),
        LineKind::Entry { hash, .. } if !hash.starts_with(b"$argon2id$") => {
            match StoredHash::parse(hash) {
                Ok(_) => None,
                Err(e) => Some(format!("user {}: {e}", show(username))),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::classify;
    use super::*;

    const GOOD: &str = "$7$101$Dp8S+aQZBCjTUgdd$gCLSs/YOrcLtwOFhpL0JuIi0QUTC2hD7E0dmyC7WV5jGuJqbubpbhXe1kRM8jGGMQ1UFoVHOmtc3R4mmCfkhkw==";

    fn refused(line: &str) -> Option<String> {
        refusal(&classify(line.as_bytes()), |_| Earlier::No)
    }

    #[test]
    fn a_good_line_comments_and_lines_without_colon_pass() {
        assert_eq!(refused(&format!("user1:{GOOD}\n")), None);
        assert_eq!(refused("# user1:plain\n"), None);
        assert_eq!(refused("no colon here\n"), None);
        assert_eq!(refused("\n"), None);
        // Only colons and no newline: strtok finds no username (with a newline, "\n" is an empty one).
        assert_eq!(refused(":::"), None);
    }

    #[test]
    fn what_2_1_refuses() {
        for (line, expected) in [
            ("bob:plain\n", "not hashed"),
            (" :$7$x\n", "empty username"),
            (":::\n", "empty username"),
            ("bob:\n", "empty"),
            ("bob:", "no password hash"),
            ("bob:$9$aa\n", "unknown password hash type"),
            ("bob:$7$0$aaaa$bbbb\n", "iteration count"),
        ] {
            let why = refused(line).unwrap_or_else(|| panic!("{line:?} must be refused"));
            assert!(why.contains(expected), "{line:?}: {why}");
        }
        let long = format!("{}:{GOOD}\n", "u".repeat(MAX_FIELD_LEN + 1));
        assert!(refused(&long).is_some_and(|w| w.contains("longer than")));
    }

    #[test]
    fn a_second_line_for_a_user_is_refused_whatever_it_holds() {
        let line = format!("user1:{GOOD}\n");
        let why = refusal(&classify(line.as_bytes()), |name| {
            if name == b"user1" {
                Earlier::Line(3)
            } else {
                Earlier::No
            }
        })
        .expect("a duplicate");
        assert!(why.contains("also on line 3"), "{why}");
    }

    #[test]
    fn argon2id_fields_are_left_to_verification() {
        assert_eq!(refused("bob:$argon2id$garbage\n"), None);
    }
}
