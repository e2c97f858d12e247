//! The verified-credential cache: remembers that a username and password verified against one
//! password-file entry, so that the same login costs a keyed MAC (microseconds) instead of a hash
//! (`$argon2id$`: ~50 ms and 46 MiB).
//!
//! # What is stored
//! * Key: HMAC-SHA256, under a 32-byte key drawn from the OS (`getrandom`) when the cache is made and
//!   never written anywhere, of the username and the password, each prefixed with its length (so
//!   `("ab", "c")` and `("a", "bc")` are different keys).
//! * Value: the HMAC, under the same key, of the username and the hash field of the entry the
//!   password verified against.
//!
//! No password, and no unkeyed hash of one, is stored or logged. Someone who can read the process's
//! memory gets the MAC key and the MACs, and can then test password guesses offline at the speed of
//! one HMAC-SHA256 per guess instead of the password file's slow hash, for the logins in the cache.
//! Such a reader could also read passwords as clients send them, so the cache adds little; it is
//! the trade-off the speed costs (README.md, "Logins never stall the broker").
//!
//! # When a remembered login is used
//! Only when the user's entry in the password file in force has the very hash field it verified
//! against (a changed hash, a removed user: the login is verified again). The owner also empties
//! the cache on every reload ([`LoginCache::clear`]). Only accepted logins are remembered; a wrong
//! password is never stored. A damaged entry (a key or value that no longer matches) can only miss,
//! and a miss means "verify", never "accept".
//!
//! # Bounds
//! At most [`CAPACITY`] logins (about 1.5 MiB); when full, the oldest remembered login is dropped
//! (first in, first out).

use std::collections::VecDeque;

use hmac::{Hmac, Mac};
use rustc_hash::FxHashMap;
use sha2::Sha256;

use crate::policy::passwd::{AuthResult, PasswordFile};

/// How many logins a cache remembers at most.
pub const CAPACITY: usize = 16_384;

type Tag = [u8; 32];

/// Domain separation between the two kinds of MAC made with the same key.
const LOGIN: &[u8] = b"mqtt-policy login v1";
const ENTRY: &[u8] = b"mqtt-policy entry v1";

/// Remembered logins (see the module documentation). Used from one thread at a time.
pub struct LoginCache {
    /// `None` when the OS gave no random key: then nothing is remembered.
    key: Option<[u8; 32]>,
    entries: FxHashMap<Tag, Tag>,
    /// Keys in the order they were first remembered (exactly the keys of `entries`).
    order: VecDeque<Tag>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl std::fmt::Debug for LoginCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCache")
            .field("enabled", &self.key.is_some())
            .field("len", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for LoginCache {
    fn default() -> Self {
        LoginCache::new()
    }
}

impl LoginCache {
    /// An empty cache of [`CAPACITY`] logins with a fresh random key.
    pub fn new() -> LoginCache {
        LoginCache::with_capacity(CAPACITY)
    }

    /// An empty cache of `capacity` logins with a fresh random key. If the OS has no randomness to
    /// give, the cache stays disabled (every login is verified), see [`LoginCache::is_enabled`].
    pub fn with_capacity(capacity: usize) -> LoginCache {
        let mut key = [0u8; 32];
        let key = getrandom::getrandom(&mut key).ok().map(|()| key);
        LoginCache {
            key,
            entries: FxHashMap::default(),
            order: VecDeque::new(),
            capacity,
            hits: 0,
            misses: 0,
        }
    }

    /// Whether the cache remembers anything (it has a random key).
    pub fn is_enabled(&self) -> bool {
        self.key.is_some()
    }

    fn mac(key: &[u8; 32], domain: &[u8], first: &[u8], second: &[u8]) -> Tag {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(domain);
        for part in [first, second] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The key of a login and the value its user's current entry would have; `None` if the user has
    /// no usable entry (nothing to remember) or the cache is disabled.
    fn tags(
        &self,
        passwords: &PasswordFile,
        username: &str,
        password: &[u8],
    ) -> Option<(Tag, Tag)> {
        let key = self.key.as_ref()?;
        let hash = passwords.entry_hash(username)?;
        Some((
            Self::mac(key, LOGIN, username.as_bytes(), password),
            Self::mac(key, ENTRY, username.as_bytes(), hash),
        ))
    }

    /// Whether this exact username and password verified before against the entry `passwords`
    /// holds for the user now. `false` means "verify it", never "refused".
    pub fn accepts(&mut self, passwords: &PasswordFile, username: &str, password: &[u8]) -> bool {
        self.remembers(passwords, username, password)
    }

    /// Whether this exact username and password were remembered ([`LoginCache::remember`]) against
    /// the entry `passwords` holds for the user now.
    pub fn remembers(&mut self, passwords: &PasswordFile, username: &str, password: &[u8]) -> bool {
        let hit = self
            .tags(passwords, username, password)
            .is_some_and(|(key, entry)| self.entries.get(&key) == Some(&entry));
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        hit
    }

    /// Remembers the login if `result`, the verification of `password` against `passwords`, accepted
    /// it; does nothing otherwise.
    pub fn record(
        &mut self,
        passwords: &PasswordFile,
        username: &str,
        password: &[u8],
        result: &AuthResult,
    ) {
        if result.is_accepted() {
            self.remember(passwords, username, password);
        }
    }

    /// Remembers `password` for `username` against the user's entry in `passwords` now, whatever the
    /// verdict was: for a cache whose owner knows which verdict it holds. The live caches hold only
    /// accepted logins ([`LoginCache::record`]); the shadow policy, which decides nothing, also keeps
    /// the passwords its file refused, so that a disagreement costs no hash the second time.
    pub fn remember(&mut self, passwords: &PasswordFile, username: &str, password: &[u8]) {
        let Some((key, entry)) = self.tags(passwords, username, password) else {
            return;
        };
        if let Some(value) = self.entries.get_mut(&key) {
            *value = entry;
            return;
        }
        if self.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        self.entries.insert(key, entry);
        self.order.push_back(key);
    }

    /// Checks a login as [`PasswordFile::verify`] does, answering from the cache when it can and
    /// remembering an accepted login.
    pub fn verify(
        &mut self,
        passwords: &PasswordFile,
        username: &str,
        password: Option<&[u8]>,
    ) -> AuthResult {
        let Some(password) = password else {
            return passwords.verify(username, None);
        };
        if self.accepts(passwords, username, password) {
            return AuthResult::Accepted;
        }
        let result = passwords.verify(username, Some(password));
        self.record(passwords, username, password, &result);
        result
    }

    /// Forgets every login (on every reload of the password file).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// How many logins are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Logins answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that had to be verified so far.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Damages every remembered key and value (tests of "a damaged cache only re-verifies").
    #[cfg(test)]
    fn damage(&mut self, keys: bool, values: bool) {
        let old: Vec<(Tag, Tag)> = self.entries.drain().collect();
        self.order.clear();
        for (mut k, mut v) in old {
            if keys {
                k[0] ^= 0x5a;
            }
            if values {
                v[31] ^= 0x01;
            }
            self.entries.insert(k, v);
            self.order.push_back(k);
        }
    }
}

#[cfg(test)]
mod tests;
