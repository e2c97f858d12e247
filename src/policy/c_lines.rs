//! Lines as Mosquitto reads its `acl_file` and `password_file`: an exact model of its line reader
//! (2.0's `fgets_extending`, 2.1's `mosquitto_fgets`: a 256-byte buffer that grows by 1000 bytes),
//! quirks included.
//!
//! The differential test against the real broker found two places where this reader differs from
//! "split on `\n`", and Mosquitto's behaviour is the reference, so we reproduce them:
//! * **A NUL byte** ends the line's C string before its `\n`. On 2.0 the reader never sees the end of
//!   the line and keeps reading: every following line is swallowed. If the file ends with `\n`, the NUL
//!   line and everything after it are ignored; otherwise the NUL line, up to the NUL, is still read. On
//!   2.1 the reader notices the NUL and stops: the NUL line and everything after it are ignored, unless
//!   the NUL line is the last line and has no `\n` (then it is read up to the NUL). On 2.1 a NUL as the
//!   very first byte of a line makes that line empty, and reading goes on with the next line. (So does
//!   upstream 2.0.22; Debian's 2.0.11, which the 2.0 model follows, treats it as any other NUL.)
//! * **A last line without `\n` that exactly fills the buffer** (255 bytes with a fresh buffer, or
//!   255 + 1000·k, relative to the size the buffer has grown to) is dropped: the reader asks for more,
//!   hits end of file having read nothing more, and reports end of file.
//!
//! Callers warn about both (see [`Cut`]) so that nobody is surprised by them.

use crate::policy::semantics::Semantics;

/// C `isspace` in the "C" locale: space, `\t`, `\n`, `\v`, `\f`, `\r` (Rust's `is_ascii_whitespace` omits `\v`).
/// Mosquitto trims lines and fields with it.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The buffer Mosquitto starts each file with.
pub(crate) const INITIAL_BUFFER: usize = 256;
/// How much it grows the buffer when a line does not fit.
const GROWTH: usize = 1000;

/// The size Mosquitto's reader buffer has grown to after reading a line of `len` bytes that ends in
/// `\n` and has no NUL byte, starting from `buffer` (such a line is always read whole).
pub(crate) fn grown_buffer(mut buffer: usize, len: usize) -> usize {
    if len > buffer - 1 {
        buffer += (len - (buffer - 1)).div_ceil(GROWTH) * GROWTH;
    }
    buffer
}

/// One line as Mosquitto's parser sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CLine<'a> {
    /// 1-based number of the physical line the text starts on.
    pub number: u32,
    /// The line's C string: up to its first NUL, with its `\n` when it has one.
    pub text: &'a [u8],
}

/// Where Mosquitto's reader stops short of the end of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Line `line` has a NUL byte: the lines after it are never read, and neither is the NUL line
    /// itself unless `line_read` (the file does not end with `\n`).
    Nul {
        /// The line with the NUL.
        line: u32,
        /// Whether the NUL line (up to the NUL) is still read.
        line_read: bool,
        /// How many physical lines after it are ignored.
        lines_after: u32,
    },
    /// The last line, which has no `\n`, exactly filled the reader's buffer and is dropped.
    LastLineDropped {
        /// The dropped line.
        line: u32,
    },
}

impl Cut {
    /// The line the cut happens at.
    pub fn line(&self) -> u32 {
        match *self {
            Cut::Nul { line, .. } | Cut::LastLineDropped { line } => line,
        }
    }
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cut::Nul { line, line_read, lines_after } => write!(
                f,
                "line {line} contains a NUL byte: Mosquitto ignores {}the {lines_after} line(s) after it, and so do we",
                if *line_read { "" } else { "that line and " }
            ),
            Cut::LastLineDropped { line } => write!(
                f,
                "line {line}, the last line, has no newline and a length at which Mosquitto's line reader drops it; \
                 so do we (end the file with a newline)"
            ),
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

/// The lines Mosquitto 2.0's parser is handed for a file's `bytes`, and where its reader stopped short.
pub fn mosquitto_lines(bytes: &[u8]) -> (Vec<CLine<'_>>, Option<Cut>) {
    mosquitto_lines_as(bytes, Semantics::Mosquitto20)
}

/// The lines the parser of Mosquitto `semantics` is handed for a file's `bytes`, and where its reader
/// stopped short.
pub fn mosquitto_lines_as(bytes: &[u8], semantics: Semantics) -> (Vec<CLine<'_>>, Option<Cut>) {
    mosquitto_lines_from(bytes, semantics, INITIAL_BUFFER, 1)
}

/// [`mosquitto_lines_as`] for the rest of a file whose earlier lines (each ending in `\n`, none with a
/// NUL) were read already: `bytes` starts at line `first_line`, with the reader's buffer grown to
/// `buffer` ([`grown_buffer`]). Line numbers in lines and cut are the file's.
pub(crate) fn mosquitto_lines_from(
    bytes: &[u8],
    semantics: Semantics,
    buffer: usize,
    first_line: u32,
) -> (Vec<CLine<'_>>, Option<Cut>) {
    read_lines(bytes, semantics, buffer, first_line, None)
}

/// The lines Mosquitto 2.1's password-file plugin is handed for the rest of a file (as
/// [`mosquitto_lines_from`]), the lines it skips, and where its reader stops short.
///
/// Its loop differs from the acl reader's: it runs `while(!feof(file))` and skips a line the reader
/// rejects for an embedded NUL, where the acl reader stops at it. So a line with a NUL byte is skipped
/// and reading goes on, unless it is the last line without a `\n`, which is read up to the NUL. (What
/// "a line" is here is one call of the reader: a NUL line longer than the buffer is rejected one
/// buffer's worth at a time, and the rest of it is read as the next line, as Mosquitto does.)
pub(crate) fn password_lines_21(
    bytes: &[u8],
    buffer: usize,
    first_line: u32,
) -> (Vec<CLine<'_>>, Vec<u32>, Option<Cut>) {
    let mut skipped = Vec::new();
    let (lines, cut) = read_lines(
        bytes,
        Semantics::Mosquitto21,
        buffer,
        first_line,
        Some(&mut skipped),
    );
    (lines, skipped, cut)
}

/// The model of the reader. With `skip_nul_lines`, a call that the 2.1 reader rejects for an embedded
/// NUL is recorded there (its first line number) and reading goes on; without, reading stops there.
fn read_lines<'a>(
    bytes: &'a [u8],
    semantics: Semantics,
    buffer: usize,
    first_line: u32,
    mut skip_nul_lines: Option<&mut Vec<u32>>,
) -> (Vec<CLine<'a>>, Option<Cut>) {
    let mut lines = Vec::new();
    let mut buffer = buffer;
    let mut pos = 0;
    let mut line_number: u32 = first_line;
    let nul_cut = |bytes: &[u8], nul: usize, line_read: bool| match nul_cut(bytes, nul, line_read) {
        Cut::Nul {
            line,
            line_read,
            lines_after,
        } => Cut::Nul {
            line: line.saturating_add(first_line.saturating_sub(1)),
            line_read,
            lines_after,
        },
        other => other,
    };
    loop {
        // One call of the line reader, starting at `pos` with an empty buffer of `buffer` bytes.
        let start = pos;
        let start_line = line_number;
        let mut offset = 0;
        let mut nul_at: Option<usize> = None;
        loop {
            // fgets(&buf[offset], buffer - offset): at most buffer - offset - 1 bytes, up to and including `\n`.
            let room = buffer - offset - 1;
            let rest = &bytes[pos..];
            let (count, saw_newline) = match rest.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (rest.len().min(room), false),
            };
            let chunk = &bytes[pos..pos + count];
            if nul_at.is_none() {
                nul_at = chunk.iter().position(|&b| b == 0).map(|i| pos + i);
            }
            line_number = line_number.saturating_add(count_newlines(chunk));
            pos += count;
            // End of file is reached when fgets had room left but no more bytes.
            let end_of_file = !saw_newline && count < room;
            let c_end = nul_at.unwrap_or(pos);
            if end_of_file {
                if count == 0 {
                    // fgets read nothing: the reader reports end of file and this call's bytes are lost.
                    let cut = if pos == start {
                        None
                    } else if let Some(nul) = nul_at {
                        Some(nul_cut(bytes, nul, false))
                    } else {
                        Some(Cut::LastLineDropped { line: start_line })
                    };
                    return (lines, cut);
                }
                lines.push(CLine {
                    number: start_line,
                    text: &bytes[start..c_end],
                });
                return (lines, nul_at.map(|nul| nul_cut(bytes, nul, true)));
            }
            // A C string that ends in `\n` is a line; so is an empty one (a NUL first) on 2.1, whose
            // reader returns it (2.0.22's does too; Debian's 2.0.11 reads on, as for any NUL).
            let empty_is_a_line = c_end == start && semantics == Semantics::Mosquitto21;
            if empty_is_a_line || (c_end > start && bytes[c_end - 1] == b'\n') {
                lines.push(CLine {
                    number: start_line,
                    text: &bytes[start..c_end],
                });
                break;
            }
            // 2.1: a C string shorter than what fgets filled means an embedded NUL: stop reading.
            if semantics == Semantics::Mosquitto21 && c_end - start + 1 < buffer {
                if let Some(skipped) = skip_nul_lines.as_deref_mut() {
                    // The password plugin's loop goes on with what follows this call's bytes.
                    skipped.push(start_line);
                    break;
                }
                let nul = nul_at.expect("a short C string has a NUL");
                return (lines, Some(nul_cut(bytes, nul, false)));
            }
            // The C string does not end in `\n`: grow the buffer and read on.
            offset = buffer - 1;
            buffer += GROWTH;
        }
    }
}

fn nul_cut(bytes: &[u8], nul: usize, line_read: bool) -> Cut {
    let line = count_newlines(&bytes[..nul]).saturating_add(1);
    let after = &bytes[nul..];
    let trailing = count_newlines(after);
    // Physical lines after the NUL line: newlines after it, less the NUL line's own, plus an unterminated last line.
    let lines_after =
        trailing.saturating_sub(1) + u32::from(!after.ends_with(b"\n") && trailing > 0);
    Cut::Nul {
        line,
        line_read,
        lines_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(bytes: &[u8]) -> (Vec<(u32, Vec<u8>)>, Option<Cut>) {
        let (lines, cut) = mosquitto_lines(bytes);
        (
            lines
                .into_iter()
                .map(|l| (l.number, l.text.to_vec()))
                .collect(),
            cut,
        )
    }

    #[test]
    fn ordinary_lines_are_split_on_newlines() {
        let (lines, cut) = texts(b"a\nbb\n\nc");
        assert_eq!(
            lines,
            vec![
                (1, b"a\n".to_vec()),
                (2, b"bb\n".to_vec()),
                (3, b"\n".to_vec()),
                (4, b"c".to_vec())
            ]
        );
        assert_eq!(cut, None);
        assert_eq!(texts(b"").0, vec![]);
    }

    #[test]
    fn long_lines_are_read_whole() {
        let long = "x".repeat(3000);
        let text = format!("{long}\nend\n");
        let (lines, cut) = texts(text.as_bytes());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1.len(), 3001);
        assert_eq!(cut, None);
    }

    #[test]
    fn a_nul_swallows_the_rest_of_a_file_that_ends_with_a_newline() {
        let (lines, cut) = texts(b"topic write b\ntopic write a\0x\ntopic write c\n");
        assert_eq!(lines, vec![(1, b"topic write b\n".to_vec())]);
        assert_eq!(
            cut,
            Some(Cut::Nul {
                line: 2,
                line_read: false,
                lines_after: 1
            })
        );
    }

    #[test]
    fn a_nul_line_is_read_up_to_the_nul_when_the_file_does_not_end_with_a_newline() {
        let (lines, cut) = texts(b"topic write b\ntopic write a\0x\ntopic write c");
        assert_eq!(
            lines,
            vec![
                (1, b"topic write b\n".to_vec()),
                (2, b"topic write a".to_vec())
            ]
        );
        assert_eq!(
            cut,
            Some(Cut::Nul {
                line: 2,
                line_read: true,
                lines_after: 1
            })
        );
    }

    #[test]
    fn a_nul_first_empties_only_that_line_on_2_1_and_swallows_the_rest_on_2_0_11() {
        let (lines, cut) = mosquitto_lines_as(b"a\n\0bc\nd\n", Semantics::Mosquitto21);
        let texts: Vec<&[u8]> = lines.iter().map(|l| l.text).collect();
        assert_eq!(texts, [&b"a\n"[..], b"", b"d\n"]);
        assert_eq!(lines[2].number, 3);
        assert_eq!(cut, None);
        let (lines, cut) = mosquitto_lines(b"a\n\0bc\nd\n");
        assert_eq!(lines.len(), 1);
        assert!(matches!(cut, Some(Cut::Nul { line: 2, .. })));
    }

    #[test]
    fn on_2_1_a_nul_stops_the_reader_at_that_line() {
        let v21 = |bytes: &'static [u8]| {
            let (lines, cut) = mosquitto_lines_as(bytes, Semantics::Mosquitto21);
            (
                lines
                    .into_iter()
                    .map(|l| l.text.to_vec())
                    .collect::<Vec<_>>(),
                cut,
            )
        };
        // Without a final newline, 2.0 would read the NUL line up to the NUL; 2.1 does not.
        let (lines, cut) = v21(b"topic write b\ntopic write a\0x\ntopic write c");
        assert_eq!(lines, [b"topic write b\n".to_vec()]);
        assert_eq!(
            cut,
            Some(Cut::Nul {
                line: 2,
                line_read: false,
                lines_after: 1
            })
        );
        // The NUL line last, without a newline: read up to the NUL, as on 2.0.
        let (lines, cut) = v21(b"topic write b\ntopic write a\0x");
        assert_eq!(
            lines,
            [b"topic write b\n".to_vec(), b"topic write a".to_vec()]
        );
        assert!(matches!(
            cut,
            Some(Cut::Nul {
                line_read: true,
                ..
            })
        ));
        // A NUL beyond the first 255 bytes of a long line.
        let long = format!("topic write {}\0x\ntopic write c\n", "a".repeat(400));
        let (lines, cut) = mosquitto_lines_as(long.as_bytes(), Semantics::Mosquitto21);
        assert!(lines.is_empty());
        assert!(matches!(
            cut,
            Some(Cut::Nul {
                line: 1,
                line_read: false,
                ..
            })
        ));
    }

    #[test]
    fn the_2_1_password_reader_skips_a_nul_line_and_reads_on() {
        let texts = |bytes: &'static [u8]| {
            let (lines, skipped, cut) = password_lines_21(bytes, INITIAL_BUFFER, 1);
            let lines: Vec<(u32, Vec<u8>)> =
                lines.iter().map(|l| (l.number, l.text.to_vec())).collect();
            (lines, skipped, cut)
        };
        let (lines, skipped, cut) = texts(b"a:1\nb:2\0x\nc:3\n");
        assert_eq!(lines, [(1, b"a:1\n".to_vec()), (3, b"c:3\n".to_vec())]);
        assert_eq!(skipped, [2]);
        assert_eq!(cut, None);
        // The NUL line last without a newline: read up to the NUL.
        let (lines, skipped, cut) = texts(b"a:1\nb:2\0x");
        assert_eq!(lines, [(1, b"a:1\n".to_vec()), (2, b"b:2".to_vec())]);
        assert!(skipped.is_empty());
        assert!(matches!(
            cut,
            Some(Cut::Nul {
                line: 2,
                line_read: true,
                ..
            })
        ));
        // A NUL first: an empty line (no `:`, so no entry), then on.
        let (lines, skipped, _) = texts(b"\0a:1\nc:3\n");
        assert_eq!(lines, [(1, b"".to_vec()), (2, b"c:3\n".to_vec())]);
        assert!(skipped.is_empty());
    }

    #[test]
    fn the_2_1_password_reader_reads_the_rest_of_a_long_nul_line_as_a_line() {
        // 255 bytes with a NUL are rejected; the rest of the physical line is the next call's line.
        let mut bytes = b"x\0".to_vec();
        bytes.extend(std::iter::repeat_n(b'y', 300));
        bytes.extend_from_slice(b":z\nc:3\n");
        let (lines, skipped, cut) = password_lines_21(&bytes, INITIAL_BUFFER, 1);
        assert_eq!(skipped, [1]);
        assert_eq!(cut, None);
        let texts: Vec<&[u8]> = lines.iter().map(|l| l.text).collect();
        assert_eq!(texts.len(), 2);
        assert_eq!(texts[0], &bytes[255..bytes.len() - 4]);
        assert_eq!(lines[0].number, 1);
        assert_eq!((lines[1].number, texts[1]), (2, &b"c:3\n"[..]));
    }

    #[test]
    fn a_last_line_that_exactly_fills_the_buffer_is_dropped() {
        for (len, dropped) in [
            (254, false),
            (255, true),
            (256, false),
            (1255, true),
            (1254, false),
        ] {
            let text = format!("topic write b\n{}", "a".repeat(len));
            let (lines, cut) = texts(text.as_bytes());
            assert_eq!(lines.len(), if dropped { 1 } else { 2 }, "length {len}");
            assert_eq!(cut.is_some(), dropped, "length {len}");
            // With a final newline nothing is dropped.
            let (lines, cut) = texts(format!("{text}\n").as_bytes());
            assert_eq!((lines.len(), cut), (2, None), "length {len} with newline");
        }
    }

    #[test]
    fn the_threshold_moves_after_the_buffer_has_grown() {
        // A 300-byte line grows the buffer to 1256 bytes, so a last line of 1255 bytes is dropped, 255 is not.
        let first = "y".repeat(300);
        let text = format!("{first}\n{}", "a".repeat(255));
        assert_eq!(texts(text.as_bytes()).0.len(), 2);
        let text = format!("{first}\n{}", "a".repeat(1255));
        assert_eq!(texts(text.as_bytes()).0.len(), 1);
    }
}
