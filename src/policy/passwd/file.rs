//! The password_file line grammar, exactly as Mosquitto 2.0's broker reads it (`pwfile__parse`).
//!
//! * The file is read line by line; a line keeps its `\n` (it is trimmed away below).
//! * A line whose first byte is `#` is skipped, and so is a line without `:` (blank lines included).
//! * The username is the first `:`-separated token and the password hash the second, where, as with C
//!   `strtok`, empty tokens are skipped (`::alice::HASH` is `alice` and `HASH`). Text after the second
//!   token is ignored. Both are trimmed with C `isspace` (space, `\t`, `\n`, `\v`, `\f`, `\r`).
//! * A username or hash longer than 65535 bytes makes Mosquitto skip the line.
//! * Lines are read as Mosquitto's line reader reads them, NUL bytes and all
//!   ([`crate::policy::c_lines`]).
//!
//! This module only splits and classifies lines; [`super::hash`] decodes the hash field.

/// The longest username or hash field Mosquitto keeps (longer ones are skipped with a notice).
pub const MAX_FIELD_LEN: usize = 65535;

pub(crate) use crate::policy::c_lines::is_c_space;

/// Removes leading and trailing C `isspace` bytes, like Mosquitto's `misc__trimblanks`.
pub(crate) fn trim_c_space(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_c_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_c_space(b))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// The text of a C string: everything before the first NUL.
pub(crate) fn c_str(s: &[u8]) -> &[u8] {
    match memchr::memchr(0, s) {
        Some(nul) => &s[..nul],
        None => s,
    }
}

/// One physical line of a file: its 1-based number and its bytes including the `\n`, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PhysicalLine<'a> {
    /// 1-based line number.
    pub number: u32,
    /// The line's bytes, with its `\n` terminator when it has one.
    pub raw: &'a [u8],
}

impl<'a> PhysicalLine<'a> {
    /// The line without its `\n` (a `\r` before it stays).
    pub fn content(&self) -> &'a [u8] {
        self.raw.strip_suffix(b"\n").unwrap_or(self.raw)
    }

    /// Whether the line has a NUL byte before its end.
    pub fn has_nul(&self) -> bool {
        self.content().contains(&0)
    }
}

/// Splits `bytes` into physical lines (a final line without `\n` is a line too; an empty file has none).
pub(crate) fn physical_lines(bytes: &[u8]) -> impl Iterator<Item = PhysicalLine<'_>> {
    let mut rest = bytes;
    let mut number: u32 = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (raw, tail) = rest.split_at(len);
        rest = tail;
        number = number.saturating_add(1);
        Some(PhysicalLine { number, raw })
    })
}

/// What one line means to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineKind<'a> {
    /// The first byte is `#`.
    Comment,
    /// No `:` (blank lines land here): the broker skips it silently.
    NoColon,
    /// Nothing but `:` characters: `strtok` finds no username, the broker skips it silently.
    NoUsername,
    /// A username but no second token (`alice:`); the broker logs "Invalid line" and skips it.
    MissingHash {
        /// The trimmed username.
        username: &'a [u8],
    },
    /// The username is longer than 65535 bytes; the broker skips the line.
    UsernameTooLong,
    /// The hash field is longer than 65535 bytes; the broker skips the line.
    HashTooLong {
        /// The trimmed username.
        username: &'a [u8],
    },
    /// `username:hash`, both trimmed (either may be empty).
    Entry {
        /// The trimmed username.
        username: &'a [u8],
        /// The trimmed hash field (up to the next `:`).
        hash: &'a [u8],
        /// Whether non-blank text follows the hash field after another `:` (it is ignored).
        trailing_text: bool,
    },
}

/// The next `strtok` token of `s` delimited by `:`, and the rest after its delimiter.
fn strtok_colon(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| b != b':')?;
    let s = &s[start..];
    match memchr::memchr(b':', s) {
        Some(end) => Some((&s[..end], &s[end + 1..])),
        None => Some((s, &[])),
    }
}

/// Classifies one line (as a C string: pass it NUL-truncated, with its `\n` when it has one).
pub(crate) fn classify(line: &[u8]) -> LineKind<'_> {
    let line = c_str(line);
    if line.first() == Some(&b'#') {
        return LineKind::Comment;
    }
    if memchr::memchr(b':', line).is_none() {
        return LineKind::NoColon;
    }
    let Some((username, rest)) = strtok_colon(line) else {
        return LineKind::NoUsername;
    };
    let username = trim_c_space(username);
    if username.len() > MAX_FIELD_LEN {
        return LineKind::UsernameTooLong;
    }
    let Some((hash, rest)) = strtok_colon(rest) else {
        return LineKind::MissingHash { username };
    };
    let hash = trim_c_space(hash);
    if hash.len() > MAX_FIELD_LEN {
        return LineKind::HashTooLong { username };
    }
    let trailing_text = rest.iter().any(|&b| b != b':' && !is_c_space(b));
    LineKind::Entry {
        username,
        hash,
        trailing_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(username: &'a [u8], hash: &'a [u8]) -> LineKind<'a> {
        LineKind::Entry {
            username,
            hash,
            trailing_text: false,
        }
    }

    #[test]
    fn trims_c_isspace_only() {
        assert_eq!(trim_c_space(b" \t\x0b\x0c\r\n a b \r\n"), b"a b");
        assert_eq!(trim_c_space(b"   "), b"");
        assert_eq!(trim_c_space(b""), b"");
        assert_eq!(
            trim_c_space("\u{a0}x\u{a0}".as_bytes()),
            "\u{a0}x\u{a0}".as_bytes()
        );
    }

    #[test]
    fn comments_blank_lines_and_lines_without_colon_are_skipped() {
        assert_eq!(classify(b"# alice:x\n"), LineKind::Comment);
        assert_eq!(classify(b"\n"), LineKind::NoColon);
        assert_eq!(classify(b"   \r\n"), LineKind::NoColon);
        assert_eq!(classify(b"alice\n"), LineKind::NoColon);
    }

    #[test]
    fn an_indented_hash_is_not_a_comment() {
        assert_eq!(classify(b" # alice:x\n"), entry(b"# alice", b"x"));
    }

    #[test]
    fn username_and_hash_are_trimmed_and_the_hash_ends_at_the_next_colon() {
        assert_eq!(classify(b" user1 : $7$x \n"), entry(b"user1", b"$7$x"));
        assert_eq!(classify(b"alice:h\r\n"), entry(b"alice", b"h"));
        assert_eq!(
            classify(b"alice:h:more\n"),
            LineKind::Entry {
                username: b"alice",
                hash: b"h",
                trailing_text: true
            }
        );
        assert_eq!(classify(b"alice:h: \n"), entry(b"alice", b"h"));
    }

    #[test]
    fn empty_tokens_are_skipped_as_strtok_does() {
        assert_eq!(classify(b"::alice::h\n"), entry(b"alice", b"h"));
        assert_eq!(classify(b" :h\n"), entry(b"", b"h"));
    }

    #[test]
    fn a_line_without_a_second_token_has_no_hash() {
        assert_eq!(
            classify(b"alice:"),
            LineKind::MissingHash { username: b"alice" }
        );
        assert_eq!(
            classify(b":alice"),
            LineKind::MissingHash { username: b"alice" }
        );
        // With its newline, the second token is "\n": an entry with an empty hash.
        assert_eq!(classify(b"alice:\n"), entry(b"alice", b""));
        assert_eq!(classify(b":::"), LineKind::NoUsername);
        assert_eq!(classify(b":::\n"), LineKind::MissingHash { username: b"" });
    }

    #[test]
    fn over_long_fields_are_skipped() {
        let long = vec![b'a'; MAX_FIELD_LEN + 1];
        let mut line = long.clone();
        line.extend_from_slice(b":h\n");
        assert_eq!(classify(&line), LineKind::UsernameTooLong);
        let mut line = b"alice:".to_vec();
        line.extend_from_slice(&long);
        assert_eq!(
            classify(&line),
            LineKind::HashTooLong { username: b"alice" }
        );
        let mut line = b"alice:".to_vec();
        line.extend_from_slice(&long[1..]);
        assert!(matches!(classify(&line), LineKind::Entry { .. }));
    }

    #[test]
    fn physical_lines_keep_their_terminators() {
        let lines: Vec<_> = physical_lines(b"a\r\nb\n\nc").collect();
        let raws: Vec<&[u8]> = lines.iter().map(|l| l.raw).collect();
        assert_eq!(raws, vec![&b"a\r\n"[..], b"b\n", b"\n", b"c"]);
        assert_eq!(lines[3].number, 4);
        assert_eq!(lines[0].content(), b"a\r");
        assert_eq!(physical_lines(b"").count(), 0);
    }
}
