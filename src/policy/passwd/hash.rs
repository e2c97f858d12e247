//! The hash field of a password line: which formats exist, how Mosquitto decodes them, how a password is
//! checked against them.
//!
//! | form | computation |
//! |---|---|
//! | `$6$SALT$HASH` | SHA-512(password ‖ salt), 64 bytes |
//! | `$7$ITERATIONS$SALT$HASH` | PBKDF2-HMAC-SHA512(password, salt, iterations), 64 bytes |
//! | `$argon2id$v=19$m=…,t=…,p=…$SALT$HASH` | argon2id, see [`super::argon2id`] |
//!
//! `$6$`/`$7$` are decoded as Mosquitto 2.0's broker does (`unpwd__decode_passwords`): the field is split
//! on `$` with empty pieces skipped (so `6$…`, `$$7$$…` work), the type must be `6` or `7`, the iteration
//! count is read with C `atoi` and must be at least 1, salt and hash are base64 as OpenSSL reads it
//! ([`super::b64`]), the hash must be 64 bytes, and pieces after the hash are ignored.
//!
//! **Deliberate extension.** Mosquitto 2.0 requires a 12-byte salt and knows no argon2id. We also accept
//! 64-byte salts in `$6$`/`$7$` and `$argon2id$` entries, which is what Mosquitto 2.1 writes, so that files
//! made by a newer `mosquitto_passwd` keep working. A 2.0 broker reading such a file itself would drop
//! those entries; [`StoredHash::mosquitto_20_reads_it`] tells which entries those are.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::argon2id::{self, Argon2idHash};
use super::b64;

/// The salt length Mosquitto 2.0 writes and requires.
pub const SALT_LEN_20: usize = 12;
/// The salt length Mosquitto 2.1 writes (it accepts 12 too).
pub const SALT_LEN_21: usize = 64;
/// The length of a SHA-512 or PBKDF2-HMAC-SHA512 hash.
pub const HASH_LEN: usize = 64;

/// What a well-formed hash field looks like, for messages.
const EXPECTED: &str =
    "expected $7$ITERATIONS$SALT$HASH (as mosquitto_passwd writes), $6$SALT$HASH or $argon2id$v=19$m=…,t=…,p=…$SALT$HASH";

/// A decoded hash field. Its `Debug` output names the format only, never salt or hash bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StoredHash {
    /// `$6$`: one round of SHA-512 over password then salt.
    Sha512 {
        /// 12 or 64 bytes.
        salt: Vec<u8>,
        /// The digest.
        hash: [u8; HASH_LEN],
    },
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        /// At least 1.
        iterations: u32,
        /// 12 or 64 bytes.
        salt: Vec<u8>,
        /// The derived key.
        hash: [u8; HASH_LEN],
    },
    /// `$argon2id$`.
    Argon2id(Argon2idHash),
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredHash::Sha512 { salt, .. } => write!(f, "$6$ ({}-byte salt)", salt.len()),
            StoredHash::Pbkdf2 {
                iterations, salt, ..
            } => write!(f, "$7$ ({iterations} iterations, {}-byte salt)", salt.len()),
            StoredHash::Argon2id(_) => f.write_str("$argon2id$"),
        }
    }
}

/// Why a hash field is not usable. The message says what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HashError {
    /// Nothing (or only `$`) after the username.
    #[error("the password hash is empty; {EXPECTED}")]
    Empty,
    /// No `$` at all: almost certainly a plaintext password.
    #[error("the password is not hashed (plaintext?): Mosquitto never accepts a plaintext password; {EXPECTED}. Hash the file with `mqtt-policy passwd -U FILE` or `mosquitto_passwd -U FILE`")]
    Plaintext,
    /// A type other than 6, 7 or argon2id.
    #[error("unknown password hash type {0:?}; {EXPECTED}")]
    UnknownType(String),
    /// `$7$` without anything after it.
    #[error("the $7$ hash has no iteration count; {EXPECTED}")]
    MissingIterations,
    /// `atoi` of the iteration count is below 1.
    #[error("the iteration count {0:?} is not a number of at least 1; {EXPECTED}")]
    BadIterations(String),
    /// No salt piece.
    #[error("the hash has no salt; {EXPECTED}")]
    MissingSalt,
    /// The salt does not decode, or not to 12 or 64 bytes.
    #[error("the salt {0}; expected base64 of 12 bytes (16 characters, as Mosquitto 2.0 writes) or of 64 bytes (Mosquitto 2.1)")]
    BadSalt(String),
    /// No hash piece after the salt.
    #[error("nothing follows the salt; {EXPECTED}")]
    MissingHash,
    /// The hash does not decode to 64 bytes.
    #[error("the hash {0}; expected base64 of 64 bytes (88 characters ending in ==)")]
    BadHash(String),
    /// A malformed `$argon2id$` field.
    #[error("malformed argon2id hash: {0}; expected $argon2id$v=19$m=…,t=…,p=…$SALT$HASH with unpadded base64")]
    Argon2(String),
}

/// How a decoded piece fell short, for [`HashError::BadSalt`]/[`HashError::BadHash`].
fn describe(decoded: &Option<Vec<u8>>) -> String {
    match decoded {
        Some(bytes) => format!("decodes to {} bytes", bytes.len()),
        None => "is not valid base64".to_owned(),
    }
}

/// C `atoi`: optional blanks, an optional sign, digits; saturates like `strtol` on a 64-bit `long`, then
/// keeps the low 32 bits as the conversion to `int` does.
pub(crate) fn c_atoi(text: &[u8]) -> i32 {
    let mut rest = text;
    while let Some((&b, tail)) = rest.split_first() {
        if !super::file::is_c_space(b) {
            break;
        }
        rest = tail;
    }
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    let mut value: i64 = 0;
    let mut overflow = false;
    for &b in rest.iter().take_while(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        match value.checked_mul(10).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        }) {
            Some(v) => value = v,
            None => {
                overflow = true;
                break;
            }
        }
    }
    if overflow {
        value = if negative { i64::MIN } else { i64::MAX };
    }
    // Truncation to `int` is what the C code does.
    value as i32
}

/// The `$`-separated pieces of a field, empty ones skipped (C `strtok` with `"$"`).
fn dollar_pieces(field: &[u8]) -> impl Iterator<Item = &[u8]> {
    field
        .split(|&b| b == b'$')
        .filter(|piece| !piece.is_empty())
}

impl StoredHash {
    /// Decodes a trimmed hash field.
    pub fn parse(field: &[u8]) -> Result<StoredHash, HashError> {
        if field.starts_with(b"$argon2id$") {
            return argon2id::parse(field)
                .map(StoredHash::Argon2id)
                .map_err(HashError::Argon2);
        }
        let mut pieces = dollar_pieces(field);
        let kind = pieces.next().ok_or(HashError::Empty)?;
        let iterations = match kind {
            b"6" => None,
            b"7" => {
                let text = pieces.next().ok_or(HashError::MissingIterations)?;
                let n = c_atoi(text);
                if n < 1 {
                    return Err(HashError::BadIterations(
                        String::from_utf8_lossy(text).into_owned(),
                    ));
                }
                Some(n.unsigned_abs())
            }
            _ if !field.contains(&b'$') => return Err(HashError::Plaintext),
            other => {
                return Err(HashError::UnknownType(format!(
                    "${}$",
                    String::from_utf8_lossy(other)
                )))
            }
        };
        let salt_text = pieces.next().ok_or(HashError::MissingSalt)?;
        let salt = b64::decode_like_mosquitto(salt_text);
        let salt = match salt {
            Some(s) if s.len() == SALT_LEN_20 || s.len() == SALT_LEN_21 => s,
            other => return Err(HashError::BadSalt(describe(&other))),
        };
        let hash_text = pieces.next().ok_or(HashError::MissingHash)?;
        let decoded = b64::decode_like_mosquitto(hash_text);
        let hash: [u8; HASH_LEN] = match decoded.as_deref().map(<[u8; HASH_LEN]>::try_from) {
            Some(Ok(hash)) => hash,
            _ => return Err(HashError::BadHash(describe(&decoded))),
        };
        Ok(match iterations {
            None => StoredHash::Sha512 { salt, hash },
            Some(iterations) => StoredHash::Pbkdf2 {
                iterations,
                salt,
                hash,
            },
        })
    }

    /// Whether `password` matches. The password is used up to its first NUL, as Mosquitto's C code does;
    /// the comparison takes the same time wherever the first differing byte is.
    pub fn verify(&self, password: &[u8]) -> bool {
        let password = super::file::c_str(password);
        match self {
            StoredHash::Sha512 { salt, hash } => {
                let computed = sha512(password, salt);
                bool::from(computed.ct_eq(hash))
            }
            StoredHash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => {
                let computed = pbkdf2(password, salt, *iterations);
                bool::from(computed.ct_eq(hash))
            }
            StoredHash::Argon2id(h) => h.verify(password),
        }
    }

    /// Roughly how long [`StoredHash::verify`] takes, in SHA-512 compressions or argon2 KiB-passes
    /// (for the fuzz targets, which only verify against cheap entries).
    #[cfg(fuzzing)]
    pub fn work(&self) -> u64 {
        match self {
            StoredHash::Sha512 { .. } => 1,
            StoredHash::Pbkdf2 { iterations, .. } => u64::from(*iterations),
            StoredHash::Argon2id(h) => h.work(),
        }
    }

    /// Whether Mosquitto 2.0's own `password_file` would accept this entry (12-byte salt, `$6$`/`$7$`).
    pub fn mosquitto_20_reads_it(&self) -> bool {
        match self {
            StoredHash::Sha512 { salt, .. } | StoredHash::Pbkdf2 { salt, .. } => {
                salt.len() == SALT_LEN_20
            }
            StoredHash::Argon2id(_) => false,
        }
    }
}

/// SHA-512(password ‖ salt).
pub(crate) fn sha512(password: &[u8], salt: &[u8]) -> [u8; HASH_LEN] {
    let mut digest = Sha512::new();
    digest.update(password);
    digest.update(salt);
    digest.finalize().into()
}

/// PBKDF2-HMAC-SHA512 with a 64-byte output.
pub(crate) fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    pbkdf2::pbkdf2_hmac_array::<Sha512, HASH_LEN>(password, salt, iterations)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines made by Debian's mosquitto_passwd 2.0.11 (reference §3.2).
    const USER1: &str = "$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==";
    const USER3: &str = "$6$Qd+ss9ZjBUacpaD4$xBgUxHmOTPK60J/1XB0QqeVFXq5IT+cJG37ZVr3/L6n/GKQ0gOrcbeW64/LGx7Ym+0y52Z95MN9BlcxrC99v5w==";
    const USER4: &str = "$7$1000$R4dnnfwJyN11Efuj$Lk2Wy2c2SngvZoOHa1/O7qBaYt6yBmV3AuAgAZIpu37J+va9htcwSsW5D4eo1Qrqk30H5jSMY/4uO9Z/NzZC0Q==";
    const USER2: &str = "$7$101$cbb6UlRtKQsdTbHQ$l04PMHHgpMalkiyY6ku/JcCwLz1atVbfIliJojevxyAZ5Aow7dwKLirkhENynMNkE5V5F+DReijr/gi+NOiMgA==";
    // 64-byte salts (the 2.1 form), computed with Python's hashlib: password `pw64`.
    const PBKDF2_SALT64: &str = "$7$1000$AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVMU1phaG92fYSLkpmgp661vA==$QoeG3u2YmeJ0lf9NJzf+GyGPokJMSNlSLY4bxl7exuHI3jX76fTOQsRSxrui76jTA0ZDXKaYndQmFY3U1IKdPA==";
    const SHA512_SALT64: &str = "$6$AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVMU1phaG92fYSLkpmgp661vA==$MyLGBzgk/RfjD80BvJPs0/EZMlA1q2G7kszWW0hEd1ukIj96gPP1orwi6uESPLv4LTs6ljsqv/LsBMUb0pNU3Q==";

    fn parse(s: &str) -> Result<StoredHash, HashError> {
        StoredHash::parse(s.as_bytes())
    }

    fn verifies(field: &str, password: &[u8]) -> bool {
        parse(field).map(|h| h.verify(password)).unwrap_or(false)
    }

    #[test]
    fn real_mosquitto_20_lines_verify_with_their_passwords() {
        assert!(verifies(USER1, b"123456"));
        assert!(verifies(USER3, b"123456"));
        assert!(verifies(USER4, b"123456"));
        assert!(verifies(USER2, b"secret2"));
        for field in [USER1, USER3, USER4, USER2] {
            assert!(parse(field).unwrap().mosquitto_20_reads_it());
        }
    }

    #[test]
    fn one_changed_byte_of_password_fails() {
        assert!(!verifies(USER1, b"123457"));
        assert!(!verifies(USER3, b"023456"));
        assert!(!verifies(USER4, b"12345"));
        assert!(!verifies(USER2, b"secret2 "));
    }

    #[test]
    fn one_changed_byte_of_salt_or_hash_fails() {
        assert!(!verifies(&USER1.replace("gyUWg1", "gyUWh1"), b"123456"));
        assert!(!verifies(&USER3.replace("Qd+ss9", "Qd+ss8"), b"123456"));
        assert!(!verifies(&USER1.replace("ZRACx", "ZRACy"), b"123456"));
        assert!(!verifies(&USER3.replace("xBgUx", "xBgUy"), b"123456"));
    }

    #[test]
    fn a_changed_iteration_count_fails() {
        assert!(!verifies(&USER1.replace("$101$", "$102$"), b"123456"));
        assert!(!verifies(&USER4.replace("$1000$", "$999$"), b"123456"));
    }

    #[test]
    fn the_type_matters() {
        assert!(!verifies(&USER1.replace("$7$101$", "$6$"), b"123456"));
    }

    #[test]
    fn salts_of_64_bytes_are_accepted_as_mosquitto_21_does() {
        assert!(verifies(PBKDF2_SALT64, b"pw64"));
        assert!(verifies(SHA512_SALT64, b"pw64"));
        assert!(!verifies(PBKDF2_SALT64, b"pw65"));
        assert!(!parse(PBKDF2_SALT64).unwrap().mosquitto_20_reads_it());
    }

    #[test]
    fn bytes_after_a_nul_in_the_password_are_ignored() {
        assert!(verifies(USER1, b"123456\0anything"));
        assert!(!verifies(USER1, b"12345\x006"));
    }

    #[test]
    fn plaintext_is_rejected() {
        assert_eq!(parse("plaintext"), Err(HashError::Plaintext));
        assert_eq!(parse("123456"), Err(HashError::Plaintext));
        assert_eq!(parse(""), Err(HashError::Empty));
        assert_eq!(parse("$$$"), Err(HashError::Empty));
    }

    #[test]
    fn other_hash_types_are_rejected() {
        assert_eq!(
            parse("$5$rounds=5000$abc$def"),
            Err(HashError::UnknownType("$5$".into()))
        );
        assert_eq!(
            parse("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA"),
            Err(HashError::UnknownType("$argon2i$".into()))
        );
        assert!(matches!(
            parse("$1$abc$def"),
            Err(HashError::UnknownType(_))
        ));
        assert!(matches!(
            parse("$2y$10$abcdefghijklmnopqrstuu"),
            Err(HashError::UnknownType(_))
        ));
    }

    #[test]
    fn iteration_counts_below_one_are_rejected() {
        assert!(matches!(
            parse(&USER1.replace("$101$", "$0$")),
            Err(HashError::BadIterations(_))
        ));
        assert!(matches!(
            parse(&USER1.replace("$101$", "$-5$")),
            Err(HashError::BadIterations(_))
        ));
        assert!(matches!(
            parse(&USER1.replace("$101$", "$abc$")),
            Err(HashError::BadIterations(_))
        ));
        assert_eq!(parse("$7$"), Err(HashError::MissingIterations));
    }

    #[test]
    fn iteration_counts_are_read_with_atoi() {
        assert_eq!(c_atoi(b"101"), 101);
        assert_eq!(c_atoi(b"101abc"), 101);
        assert_eq!(c_atoi(b" +101"), 101);
        assert_eq!(c_atoi(b"-3"), -3);
        assert_eq!(c_atoi(b""), 0);
        // 2^32 + 101 keeps its low 32 bits; values past i64 saturate and truncate to -1.
        assert_eq!(c_atoi(b"4294967397"), 101);
        assert_eq!(c_atoi(b"99999999999999999999"), -1);
        assert_eq!(c_atoi(b"-99999999999999999999"), 0);
        assert!(verifies(&USER1.replace("$101$", "$101abc$"), b"123456"));
        assert!(verifies(&USER1.replace("$101$", "$4294967397$"), b"123456"));
    }

    #[test]
    fn salts_that_are_not_12_or_64_bytes_are_rejected() {
        // 16-byte salt.
        let field = format!(
            "$7$101${}${}",
            b64::encode_padded(&[1u8; 16]),
            b64::encode_padded(&[2u8; 64])
        );
        assert_eq!(
            parse(&field),
            Err(HashError::BadSalt("decodes to 16 bytes".into()))
        );
        let field = format!("$6$!!!!${}", b64::encode_padded(&[2u8; 64]));
        assert_eq!(
            parse(&field),
            Err(HashError::BadSalt("is not valid base64".into()))
        );
        assert_eq!(parse("$7$101"), Err(HashError::MissingSalt));
    }

    #[test]
    fn hashes_that_are_not_64_bytes_are_rejected() {
        let field = format!("$7$101$gyUWg1PAKh6oLPFM${}", b64::encode_padded(&[2u8; 63]));
        assert_eq!(
            parse(&field),
            Err(HashError::BadHash("decodes to 63 bytes".into()))
        );
        assert_eq!(
            parse("$7$101$gyUWg1PAKh6oLPFM"),
            Err(HashError::MissingHash)
        );
        let unpadded = USER1.trim_end_matches('=');
        assert_eq!(
            parse(unpadded),
            Err(HashError::BadHash("decodes to 63 bytes".into()))
        );
    }

    // Checked against mosquitto 2.0.11: each of these logs in with the right password.
    #[test]
    fn lenient_forms_mosquitto_accepts() {
        let forms = [
            USER1.trim_start_matches('$').to_owned(),
            USER1.replace('$', "$$"),
            format!("{USER1}$junk"),
            format!("{USER1}AA"),
            format!("{USER1}="),
            USER1.replace("$101$", "$+101$"),
            USER1.replace("$101$", "$ 101$"),
        ];
        for field in forms {
            assert!(verifies(&field, b"123456"), "{field}");
        }
    }

    // Checked against mosquitto 2.0.11: each of these is refused.
    #[test]
    fn strict_forms_mosquitto_rejects() {
        let inner_space = format!("{} {}", &USER1[..60], &USER1[60..]);
        assert!(parse(&inner_space).is_err());
        assert!(parse("6$x").is_err());
    }

    #[test]
    fn argon2id_needs_its_exact_prefix() {
        assert!(matches!(
            parse("argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhh"),
            Err(HashError::UnknownType(_))
        ));
        assert!(matches!(
            parse("$$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhh"),
            Err(HashError::UnknownType(_))
        ));
        assert!(matches!(
            parse("$argon2id$v=19$m=64"),
            Err(HashError::Argon2(_))
        ));
    }

    #[test]
    fn debug_output_shows_no_hash_material() {
        let shown = format!("{:?}", parse(USER1).unwrap());
        assert_eq!(shown, "$7$ (101 iterations, 12-byte salt)");
    }

    #[test]
    fn messages_say_what_was_expected() {
        let text = HashError::Plaintext.to_string();
        assert!(
            text.contains("plaintext") && text.contains("$7$ITERATIONS$SALT$HASH"),
            "{text}"
        );
        let text = HashError::BadSalt("decodes to 16 bytes".into()).to_string();
        assert!(
            text.contains("16 bytes") && text.contains("12 bytes"),
            "{text}"
        );
    }
}
