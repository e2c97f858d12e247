//! Making new hash fields, as `mosquitto_passwd` does.
//!
//! The defaults are what Debian's Mosquitto 2.0 reads: `$7$`, 101 iterations, a 12-byte random salt.
//! `$argon2id$` uses Mosquitto 2.1's parameters (m=47104 KiB, t=1, p=1, 64-byte salt and hash, unpadded
//! base64); a Mosquitto 2.0 broker cannot read those lines, only 2.1 and mqtt-policy can.

use super::{argon2id, b64, file, hash};

/// The iteration count `mosquitto_passwd` 2.0 uses for `$7$` unless told otherwise.
pub const DEFAULT_ITERATIONS: u32 = 101;
/// The largest iteration count Mosquitto reads back correctly (it parses the count into a C `int`).
pub const MAX_ITERATIONS: u32 = i32::MAX as u32;
/// argon2id memory cost in KiB, as Mosquitto 2.1 writes it.
pub const ARGON2_M_COST: u32 = 47104;
/// argon2id time cost, as Mosquitto 2.1 writes it.
pub const ARGON2_T_COST: u32 = 1;
/// argon2id parallelism, as Mosquitto 2.1 writes it.
pub const ARGON2_P_COST: u32 = 1;
/// argon2id salt and hash length, as Mosquitto 2.1 writes them.
pub const ARGON2_LEN: usize = 64;

/// Which hash a new password line gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512 with a 12-byte salt. The default, as in
    /// `mosquitto_passwd` 2.0 (`-H sha512-pbkdf2`).
    #[default]
    Sha512Pbkdf2,
    /// `$6$SALT$HASH`: one round of SHA-512 with a 12-byte salt, Mosquitto 1.6's default (`-H sha512`).
    /// Weak: only for brokers that need it.
    Sha512,
    /// `$argon2id$v=19$m=47104,t=1,p=1$SALT$HASH` as Mosquitto 2.1 writes it (`-H argon2id`).
    /// Mosquitto 2.0 (Debian 12) cannot read it.
    Argon2id,
}

/// Hashes `password` into a hash field (the part after `username:`), with a fresh random salt.
///
/// * The password is used up to its first NUL byte, as Mosquitto's C code reads it, so that what we
///   write verifies the same way in the broker.
/// * `iterations` applies to [`HashKind::Sha512Pbkdf2`] only; `None` means [`DEFAULT_ITERATIONS`]. Counts
///   are kept within `1..=`[`MAX_ITERATIONS`] (0 becomes 1; larger counts become the maximum), because
///   Mosquitto rejects anything else; the command line refuses such counts before getting here.
///
/// # Panics
/// If the operating system's random number generator fails.
pub fn hash_password(password: &[u8], kind: HashKind, iterations: Option<u32>) -> String {
    let salt_len = match kind {
        HashKind::Sha512Pbkdf2 | HashKind::Sha512 => hash::SALT_LEN_20,
        HashKind::Argon2id => ARGON2_LEN,
    };
    let mut salt = vec![0u8; salt_len];
    getrandom::getrandom(&mut salt).expect("the operating system's random number generator failed");
    hash_password_with_salt(password, kind, iterations, &salt)
}

/// [`hash_password`] with a given salt (12 or 64 bytes; tests use fixed ones).
pub(crate) fn hash_password_with_salt(
    password: &[u8],
    kind: HashKind,
    iterations: Option<u32>,
    salt: &[u8],
) -> String {
    let password = file::c_str(password);
    match kind {
        HashKind::Sha512Pbkdf2 => {
            let iterations = iterations
                .unwrap_or(DEFAULT_ITERATIONS)
                .clamp(1, MAX_ITERATIONS);
            let derived = hash::pbkdf2(password, salt, iterations);
            format!(
                "$7${iterations}${}${}",
                b64::encode_padded(salt),
                b64::encode_padded(&derived)
            )
        }
        HashKind::Sha512 => {
            let digest = hash::sha512(password, salt);
            format!(
                "$6${}${}",
                b64::encode_padded(salt),
                b64::encode_padded(&digest)
            )
        }
        HashKind::Argon2id => argon2id::hash_encoded(
            password,
            salt,
            ARGON2_M_COST,
            ARGON2_T_COST,
            ARGON2_P_COST,
            ARGON2_LEN,
        )
        .expect("Mosquitto 2.1's argon2id parameters are valid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::passwd::hash::StoredHash;

    fn check(field: &str, password: &[u8]) -> StoredHash {
        let stored = StoredHash::parse(field.as_bytes()).expect(field);
        assert!(stored.verify(password), "{field}");
        assert!(!stored.verify(b"not the password"), "{field}");
        stored
    }

    #[test]
    fn the_default_is_what_mosquitto_20_writes() {
        let field = hash_password(b"secret", HashKind::default(), None);
        assert!(field.starts_with("$7$101$"), "{field}");
        let pieces: Vec<&str> = field.split('$').collect();
        assert_eq!(pieces[3].len(), 16, "12-byte salt");
        assert_eq!(pieces[4].len(), 88, "64-byte hash, padded");
        assert!(check(&field, b"secret").mosquitto_20_reads_it());
    }

    #[test]
    fn salts_are_random() {
        let a = hash_password(b"secret", HashKind::Sha512Pbkdf2, None);
        let b = hash_password(b"secret", HashKind::Sha512Pbkdf2, None);
        assert_ne!(a, b);
    }

    #[test]
    fn iterations_are_kept_within_what_mosquitto_reads() {
        let field = hash_password(b"pw", HashKind::Sha512Pbkdf2, Some(1000));
        assert!(field.starts_with("$7$1000$"));
        check(&field, b"pw");
        let field = hash_password_with_salt(b"pw", HashKind::Sha512Pbkdf2, Some(0), &[0; 12]);
        assert!(field.starts_with("$7$1$"));
        check(&field, b"pw");
    }

    #[test]
    fn sha512_matches_mosquitto_16_form() {
        let field = hash_password(b"123456", HashKind::Sha512, Some(5000));
        assert!(field.starts_with("$6$"), "{field}");
        assert_eq!(field.split('$').count(), 4);
        assert!(check(&field, b"123456").mosquitto_20_reads_it());
    }

    #[test]
    fn known_answer_with_a_fixed_salt() {
        // The salt of reference §3.2's user1 line: the same line comes out.
        let salt = b64::decode_like_mosquitto(b"gyUWg1PAKh6oLPFM").unwrap();
        let field = hash_password_with_salt(b"123456", HashKind::Sha512Pbkdf2, None, &salt);
        assert_eq!(field, "$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==");
    }

    #[test]
    fn a_password_is_cut_at_its_first_nul() {
        let field = hash_password(b"abc\0def", HashKind::Sha512Pbkdf2, None);
        let stored = StoredHash::parse(field.as_bytes()).unwrap();
        assert!(stored.verify(b"abc"));
    }

    #[test]
    fn argon2id_uses_mosquitto_21_parameters() {
        let field = hash_password(b"pw", HashKind::Argon2id, None);
        assert!(
            field.starts_with("$argon2id$v=19$m=47104,t=1,p=1$"),
            "{field}"
        );
        let pieces: Vec<&str> = field.split('$').collect();
        assert!(
            !pieces[4].contains('=') && !pieces[5].contains('='),
            "unpadded: {field}"
        );
        assert_eq!(pieces[4].len(), 86, "64-byte salt, unpadded");
        assert_eq!(pieces[5].len(), 86, "64-byte hash, unpadded");
        assert!(!check(&field, b"pw").mosquitto_20_reads_it());
    }
}
