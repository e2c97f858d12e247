//! Base64 as Mosquitto 2.0 reads and writes it in password files.
//!
//! Mosquitto decodes salts and hashes with an OpenSSL base64 BIO in "no newline" mode. That decoder is
//! lenient in specific ways, and which lines the broker accepts depends on them, so [`decode_like_mosquitto`]
//! reproduces it (OpenSSL 1.1 and 3.0, as on Debian 12):
//!
//! * only the longest prefix whose length is a multiple of 4 is decoded; 1 to 3 trailing characters are
//!   ignored (`…==AA` and `…===` decode like `…==`);
//! * in that prefix, leading spaces and tabs are skipped, and trailing spaces, tabs, `\r`, `\n` and `-`
//!   are dropped; what remains must be a whole number of 4-character groups of the standard alphabet,
//!   where `=` counts as a zero digit anywhere;
//! * the result is then shortened by one byte for each `=` among the last two characters of the prefix;
//! * an empty result is an error.
//!
//! Mosquitto's reader works through 1024-character chunks; a token longer than that is rejected here
//! (a salt or hash of the lengths Mosquitto accepts is far shorter).
//!
//! Writing uses standard base64 with `=` padding (`$6$`, `$7$`) or without it (`$argon2id$`).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;

/// The longest token decoded (OpenSSL's base64 BIO chunk).
const MAX_TOKEN_LEN: usize = 1024;

/// What OpenSSL's table says about one input byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A base64 digit (or `=`, which OpenSSL treats as the digit 0).
    Digit(u8),
    /// Space or tab.
    Blank,
    /// `\n`, `\r` or `-`: dropped at the end of the input, an error elsewhere.
    EndOfLine,
    /// Anything else.
    Invalid,
}

/// [`class_of`] for every byte, looked up rather than matched: decoding a million-line file's salts and
/// hashes spends its time here.
const CLASSES: [Class; 256] = {
    let mut table = [Class::Invalid; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = class_of(b as u8);
        b += 1;
    }
    table
};

fn classify(b: u8) -> Class {
    CLASSES[usize::from(b)]
}

const fn class_of(b: u8) -> Class {
    match b {
        b'A'..=b'Z' => Class::Digit(b - b'A'),
        b'a'..=b'z' => Class::Digit(b - b'a' + 26),
        b'0'..=b'9' => Class::Digit(b - b'0' + 52),
        b'+' => Class::Digit(62),
        b'/' => Class::Digit(63),
        b'=' => Class::Digit(0),
        b' ' | b'\t' => Class::Blank,
        b'\n' | b'\r' | b'-' => Class::EndOfLine,
        _ => Class::Invalid,
    }
}

/// Decodes one `$`-separated token the way Mosquitto 2.0's `base64__decode` does. `None` where Mosquitto
/// reports a decoding failure.
pub(crate) fn decode_like_mosquitto(token: &[u8]) -> Option<Vec<u8>> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let prefix = &token[..token.len() & !3];
    let mut block = prefix;
    while let Some((&first, rest)) = block.split_first() {
        if classify(first) != Class::Blank {
            break;
        }
        block = rest;
    }
    while block.len() > 3 {
        match classify(block[block.len() - 1]) {
            Class::Blank | Class::EndOfLine => block = &block[..block.len() - 1],
            _ => break,
        }
    }
    if !block.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(block.len() / 4 * 3);
    for group in block.chunks_exact(4) {
        let mut acc: u32 = 0;
        for &b in group {
            match classify(b) {
                Class::Digit(d) => acc = (acc << 6) | u32::from(d),
                _ => return None,
            }
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..]);
    }
    let mut len = out.len();
    if prefix.len() > 2 && prefix[prefix.len() - 1] == b'=' {
        len = len.saturating_sub(1);
        if prefix[prefix.len() - 2] == b'=' {
            len = len.saturating_sub(1);
        }
    }
    if len == 0 {
        return None;
    }
    out.truncate(len);
    Some(out)
}

/// Standard base64 with `=` padding, as `mosquitto_passwd` writes salts and hashes.
pub(crate) fn encode_padded(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard base64 without padding, as libargon2 writes its encoded hashes.
pub(crate) fn encode_unpadded(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Decodes libargon2's unpadded base64 (canonical: no padding, unused bits zero).
pub(crate) fn decode_unpadded(text: &[u8]) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &[u8] = b"ly4F1TgV3TSB341y";
    const SALT_BYTES: [u8; 12] = [
        0x97, 0x2e, 0x05, 0xd5, 0x38, 0x15, 0xdd, 0x34, 0x81, 0xdf, 0x8d, 0x72,
    ];

    fn dec(s: &str) -> Option<Vec<u8>> {
        decode_like_mosquitto(s.as_bytes())
    }

    #[test]
    fn decodes_standard_base64() {
        assert_eq!(decode_like_mosquitto(SALT), Some(SALT_BYTES.to_vec()));
        assert_eq!(dec("QQ=="), Some(b"A".to_vec()));
        assert_eq!(dec("QUI="), Some(b"AB".to_vec()));
        assert_eq!(dec("QUJD"), Some(b"ABC".to_vec()));
    }

    // Each case below was checked against `openssl base64 -d -A` (OpenSSL 3.0, the same BIO in the same
    // mode) and, for whole lines, against mosquitto 2.0.11 itself.
    #[test]
    fn ignores_up_to_three_characters_after_the_last_whole_group() {
        assert_eq!(dec("ly4F1TgV3TSB341y!"), Some(SALT_BYTES.to_vec()));
        assert_eq!(dec("ly4F1TgV3TSB341y--"), Some(SALT_BYTES.to_vec()));
        assert_eq!(dec("ly4F1TgV3TSB341yAAA"), Some(SALT_BYTES.to_vec()));
        assert_eq!(dec("QQ==AA"), Some(b"A".to_vec()));
        assert_eq!(dec("QQ==="), Some(b"A".to_vec()));
    }

    #[test]
    fn skips_leading_blanks_only_within_whole_groups() {
        assert_eq!(dec("    ly4F1TgV3TSB341y"), Some(SALT_BYTES.to_vec()));
        assert_eq!(dec(" ly4F1TgV3TSB341y"), None);
        assert_eq!(dec("\tQUJD"), None);
        assert_eq!(dec("\t\t\t\tQUJD"), Some(b"ABC".to_vec()));
    }

    #[test]
    fn drops_trailing_line_ends_blanks_and_dashes_inside_the_prefix() {
        assert_eq!(dec("QUJD----"), Some(b"ABC".to_vec()));
        assert_eq!(dec("QUJD  \r\n"), Some(b"ABC".to_vec()));
    }

    #[test]
    fn rejects_bad_characters_inside_groups() {
        assert_eq!(dec("ly4F-1TgV3TSB341y"), None);
        assert_eq!(dec("ly4F 1TgV3TSB341y"), None);
        assert_eq!(dec("QU*D"), None);
        assert_eq!(dec("QUJ\u{e9}"), None);
    }

    #[test]
    fn an_unpadded_tail_is_lost() {
        // 86 characters of a 64-byte hash without its "==": only 84 are decoded, giving 63 bytes.
        let hash = STANDARD.encode([7u8; 64]);
        let unpadded = hash.trim_end_matches('=');
        assert_eq!(dec(unpadded).map(|v| v.len()), Some(63));
        assert_eq!(dec(&hash).map(|v| v.len()), Some(64));
    }

    #[test]
    fn padding_in_the_middle_counts_as_zero_bits() {
        assert_eq!(dec("QQ==QQ=="), Some(vec![0x41, 0, 0, 0x41]));
        assert_eq!(dec("QQ==QUJD"), Some(vec![0x41, 0, 0, 0x41, 0x42, 0x43]));
    }

    #[test]
    fn empty_or_short_input_is_an_error() {
        assert_eq!(dec(""), None);
        assert_eq!(dec("QQ"), None);
        assert_eq!(dec("===="), Some(vec![0]));
    }

    #[test]
    fn over_long_tokens_are_rejected() {
        assert_eq!(dec(&"A".repeat(1028)), None);
        assert_eq!(dec(&"A".repeat(1024)).map(|v| v.len()), Some(768));
    }

    #[test]
    fn unpadded_round_trip() {
        let bytes: Vec<u8> = (0..64).collect();
        let text = encode_unpadded(&bytes);
        assert!(!text.contains('='));
        assert_eq!(decode_unpadded(text.as_bytes()), Some(bytes));
        assert_eq!(decode_unpadded(b"QR"), None, "non-zero unused bits");
        assert_eq!(decode_unpadded(b"QQ=="), None, "padding");
    }
}
