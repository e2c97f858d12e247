//! `$argon2id$v=19$m=M,t=T,p=P$SALT$HASH`: the libargon2 encoded form that Mosquitto 2.1 writes.
//!
//! Mosquitto 2.1 hands the whole string to libargon2's `argon2id_verify`, so we accept what libargon2's
//! decoder accepts: `$argon2id`, an optional `$v=16|19` (16 when absent), `$m=…,t=…,p=…` in that order
//! with plain decimal numbers (no sign, no leading zeros), then salt and hash in unpadded standard base64
//! with their unused bits zero, and nothing after. libargon2's own limits apply: a salt of at least 8
//! bytes, a hash of at least 4, `t >= 1`, `1 <= p < 2^24`, `m >= 8·p` KiB.
//!
//! We parse this ourselves rather than with `argon2::PasswordHash`: the PHC parser of the `password-hash`
//! crate refuses salts longer than 64 base64 characters, and Mosquitto 2.1's 64-byte salt takes 86.
//! The `argon2` crate then does the hashing.
//!
//! One limit of our own: `m` above [`MAX_MEMORY_KIB`] (1 GiB) is refused when the file is read. Each
//! login allocates `m` KiB, and an allocation that fails would abort the broker; libargon2 would fail that
//! login instead. Mosquitto 2.1 writes `m=47104` (46 MiB).

use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq;

use super::b64;

/// The most memory (KiB) a hash in a password file may ask for: 1 GiB.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;

/// A decoded `$argon2id$` entry, ready to verify passwords against (no `Debug`: it holds the hash).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Argon2idHash {
    version: Version,
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Argon2idHash {
    /// Whether `password` (already cut at its first NUL) hashes to the stored hash.
    pub fn verify(&self, password: &[u8]) -> bool {
        let argon = Argon2::new(Algorithm::Argon2id, self.version, self.params.clone());
        let mut computed = vec![0u8; self.hash.len()];
        match argon.hash_password_into(password, &self.salt, &mut computed) {
            Ok(()) => bool::from(computed.ct_eq(&self.hash)),
            Err(_) => false,
        }
    }

    /// Memory (KiB) times passes: what a verification costs (for the fuzz targets).
    #[cfg(fuzzing)]
    pub fn work(&self) -> u64 {
        u64::from(self.params.m_cost()) * u64::from(self.params.t_cost())
    }

    /// The salt's length in bytes.
    #[cfg(test)]
    pub fn salt_len(&self) -> usize {
        self.salt.len()
    }
}

/// Hashes `password` with argon2id version 19 and the given parameters, returning the encoded form.
pub(crate) fn hash_encoded(
    password: &[u8],
    salt: &[u8],
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    hash_len: usize,
) -> Result<String, argon2::Error> {
    let params = Params::new(m_cost, t_cost, p_cost, Some(hash_len))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut hash = vec![0u8; hash_len];
    argon.hash_password_into(password, salt, &mut hash)?;
    Ok(format!(
        "$argon2id$v=19$m={m_cost},t={t_cost},p={p_cost}${}${}",
        b64::encode_unpadded(salt),
        b64::encode_unpadded(&hash)
    ))
}

/// A cursor over the encoded string.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn literal(&mut self, text: &str) -> bool {
        match self.0.strip_prefix(text.as_bytes()) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// A decimal `u32` as libargon2 reads it: at least one digit, no leading zero unless it is `0`.
    fn decimal(&mut self, name: &str) -> Result<u32, String> {
        let digits = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let text = &self.0[..digits];
        let bad =
            || format!("`{name}=` must be followed by a decimal number without leading zeros");
        if digits == 0 || (text[0] == b'0' && digits > 1) {
            return Err(bad());
        }
        let value = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| format!("`{name}=` is larger than 4294967295"))?;
        self.0 = &self.0[digits..];
        Ok(value)
    }

    /// Unpadded base64 up to the next `$` or the end.
    fn base64(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let len = self
            .0
            .iter()
            .position(|&b| b == b'$')
            .unwrap_or(self.0.len());
        let bytes = b64::decode_unpadded(&self.0[..len])
            .ok_or_else(|| format!("the {what} is not unpadded standard base64"))?;
        self.0 = &self.0[len..];
        Ok(bytes)
    }
}

/// Parses a hash field that starts with `$argon2id$`. The error says what is wrong.
pub(crate) fn parse(field: &[u8]) -> Result<Argon2idHash, String> {
    let mut c = Cursor(field);
    if !c.literal("$argon2id") {
        return Err("expected `$argon2id$`".into());
    }
    let version = if c.literal("$v=") {
        match c.decimal("v")? {
            0x10 => Version::V0x10,
            0x13 => Version::V0x13,
            other => {
                return Err(format!(
                    "unknown argon2 version {other}; expected 19 (or 16)"
                ))
            }
        }
    } else {
        Version::V0x10
    };
    if !c.literal("$m=") {
        return Err("expected `$m=` after the version".into());
    }
    let m_cost = c.decimal("m")?;
    if !c.literal(",t=") {
        return Err("expected `,t=` after the memory cost".into());
    }
    let t_cost = c.decimal("t")?;
    if !c.literal(",p=") {
        return Err("expected `,p=` after the time cost".into());
    }
    let p_cost = c.decimal("p")?;
    if !c.literal("$") {
        return Err("expected `$SALT$HASH` after the parameters".into());
    }
    let salt = c.base64("salt")?;
    if !c.literal("$") {
        return Err("expected `$HASH` after the salt".into());
    }
    let hash = c.base64("hash")?;
    if !c.0.is_empty() {
        return Err("unexpected text after the hash".into());
    }
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(format!(
            "the salt is {} bytes; argon2 needs at least {}",
            salt.len(),
            argon2::MIN_SALT_LEN
        ));
    }
    if m_cost > MAX_MEMORY_KIB {
        return Err(format!(
            "m={m_cost} KiB is more than the {MAX_MEMORY_KIB} KiB (1 GiB) we allow per login"
        ));
    }
    let params = Params::new(m_cost, t_cost, p_cost, Some(hash.len()))
        .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
    Ok(Argon2idHash {
        version,
        params,
        salt,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by libargon2 (through argon2-cffi) with Mosquitto 2.1's parameters and a 64-byte salt.
    const MOSQUITTO_21: &str = "$argon2id$v=19$m=47104,t=1,p=1$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw$HuEEeIHVvuUCPRBRS0+HXrcuSpZ37pLVvAtKt6zgc3AzZ9F6oIqIW5bPPaNaIiraD1Qv8HJpDjPok69ANWUDDA";
    /// Made by libargon2 with small parameters: password `secret`.
    const SMALL: &str = "$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWrn6I/PGlluEBRcxBfMjJk/9ti0CC0ig+MNGAsI8Q";

    #[test]
    fn verifies_libargon2_output() {
        let h = parse(SMALL.as_bytes()).unwrap();
        assert!(h.verify(b"secret"));
        assert!(!h.verify(b"secreT"));
        assert!(!h.verify(b""));
    }

    #[test]
    fn verifies_mosquitto_21_form_with_a_64_byte_salt() {
        let h = parse(MOSQUITTO_21.as_bytes()).unwrap();
        assert_eq!(h.salt_len(), 64);
        assert!(h.verify(b"123456"));
        assert!(!h.verify(b"123457"));
    }

    #[test]
    fn the_password_hash_crate_cannot_parse_a_64_byte_salt() {
        // Why we parse the encoded form ourselves.
        assert!(argon2::PasswordHash::new(MOSQUITTO_21).is_err());
        assert!(argon2::PasswordHash::new(SMALL).is_ok());
    }

    #[test]
    fn round_trips_our_own_output() {
        let salt = [9u8; 64];
        let text = hash_encoded(b"pw", &salt, 64, 1, 1, 64).unwrap();
        assert!(text.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let pieces: Vec<&str> = text.split('$').collect();
        assert!(
            !pieces[4].contains('=') && !pieces[5].contains('='),
            "{text}"
        );
        let h = parse(text.as_bytes()).unwrap();
        assert!(h.verify(b"pw"));
        assert!(!h.verify(b"pW"));
    }

    #[test]
    fn one_changed_parameter_or_byte_fails() {
        let changed = [
            SMALL.replace("t=2", "t=3"),
            SMALL.replace("p=2", "p=1"),
            SMALL.replace("m=64", "m=72"),
            SMALL.replace("v=19", "v=16"),
            SMALL.replace("c29tZXNhbHRzb21lc2FsdA", "c29tZXNhbHRzb21lc2FsdB"),
            SMALL.replace("vGWrn6", "vGWrn7"),
        ];
        for text in changed {
            if let Ok(h) = parse(text.as_bytes()) {
                assert!(!h.verify(b"secret"), "{text}");
            }
        }
    }

    #[test]
    fn the_version_is_optional() {
        let text = SMALL.replace("$v=19", "");
        let h = parse(text.as_bytes()).unwrap();
        assert!(!h.verify(b"secret"), "version 16 is a different hash");
    }

    #[test]
    fn rejects_what_libargon2_rejects() {
        let bad = [
            "$argon2i$v=19$m=64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWrn6I/PGlluEBRcxBfMjJk/9ti0CC0ig+MNGAsI8Q",
            "$argon2id$v=20$m=64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWr",
            "$argon2id$v=19$m=064,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWr",
            "$argon2id$v=19$t=2,m=64,p=2$c29tZXNhbHRzb21lc2FsdA$vGWr",
            "$argon2id$v=19$m=64,t=0,p=2$c29tZXNhbHRzb21lc2FsdA$vGWr",
            "$argon2id$v=19$m=64,t=2,p=0$c29tZXNhbHRzb21lc2FsdA$vGWr",
            "$argon2id$v=19$m=15,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWr",
            "$argon2id$v=19$m=64,t=2,p=2$c29tZQ$vGWrn6I/PGlluEBRcxBfMjJk",
            "$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA==$vGWrn6I/PGlluEBRcxBfMjJk",
            "$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGW",
            "$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWrn6I/$x",
            "$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA",
            "$argon2id$v=19$m=4294967296,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWrn6I/",
            "$argon2id$v=19$m=2097152,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$vGWrn6I/",
            "$argon2id$v=19$m=+64,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$vGWrn6I/",
        ];
        for text in bad {
            assert!(parse(text.as_bytes()).is_err(), "{text}");
        }
    }
}
