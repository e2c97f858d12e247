//! Mosquitto's `password_file`: grammar, hash formats, verification, creation and editing.
//!
//! [`PasswordFile::parse`] reads the file exactly as Mosquitto 2.0's broker does and never fails: like
//! Mosquitto, it drops entries it cannot use and says why in [`PasswordFile::warnings`], naming the line.
//! [`PasswordFile::verify`] answers a login with an [`AuthResult`] that says why it failed.
//!
//! * Grammar: `file.rs` (comments, `:` splitting, trimming, NUL bytes).
//! * Hash formats `$6$`, `$7$`, `$argon2id$`: `hash.rs` and `argon2id.rs`; base64 as Mosquitto reads it:
//!   `b64.rs`.
//! * New hashes, as `mosquitto_passwd` makes them: [`hash_password`] (`create.rs`).
//! * Editing a file's text (`mqtt-policy passwd`): [`edit`].
//!
//! # Which entry counts
//! A later line for the same username replaces an earlier one. A line Mosquitto cannot use (plaintext,
//! malformed hash, over-long field) is removed by Mosquitto *without* touching an earlier good line for
//! that user, so the earlier line stays in force; we do the same. A user with no usable line at all gets
//! [`AuthResult::UnusableEntry`] with the last such line, so that an audit record can point at it.
//!
//! (Mosquitto keeps users in a hash table whose growth can reorder duplicates in files with very many
//! users; there "later wins" may not hold. We always let the later usable line win.)
//!
//! # Deliberate differences from Mosquitto 2.0
//! * 64-byte salts in `$6$`/`$7$` and `$argon2id$` entries (what Mosquitto 2.1 writes) are accepted;
//!   Mosquitto 2.0 drops them. Each such entry also gets a warning saying Mosquitto 2.0 would not read it.
//! * An `$argon2id$` entry asking for more than 1 GiB of memory ([`ARGON2_MAX_MEMORY_KIB`]) is dropped: each
//!   login allocates that much, and a failed allocation would abort the broker.
//! * A username containing a NUL byte never matches (Mosquitto refuses such a CONNECT before asking).
//!
//! # Timing
//! Hashes are compared in constant time. An unknown user, or one whose entry is unusable, costs the same
//! as a wrong password against a default `$7$` entry (101 iterations): a dummy hash is computed.

#![forbid(unsafe_code)]

mod argon2id;
mod b64;
mod create;
pub mod edit;
mod file;
mod hash;

use std::collections::HashMap;
use std::fmt;

use subtle::ConstantTimeEq;

pub use argon2id::MAX_MEMORY_KIB as ARGON2_MAX_MEMORY_KIB;
pub use create::{
    hash_password, HashKind, ARGON2_LEN, ARGON2_M_COST, ARGON2_P_COST, ARGON2_T_COST,
    DEFAULT_ITERATIONS, MAX_ITERATIONS,
};
use file::LineKind;
pub use file::MAX_FIELD_LEN;
use hash::StoredHash;

/// A parsed password file: the usable entry of every user, and what Mosquitto would log while reading it.
#[derive(Clone, Debug)]
pub struct PasswordFile {
    path: String,
    users: HashMap<Vec<u8>, Entry>,
    usable: usize,
    warnings: Vec<PasswordWarning>,
}

/// What the file holds for one username.
#[derive(Clone, Debug)]
enum Entry {
    /// The line that counts, its hash, and the hash field's text (what a login cache checks it
    /// verified against).
    Usable {
        line: u32,
        hash: StoredHash,
        text: Box<[u8]>,
    },
    /// Only unusable lines; the last of them.
    Unusable { line: u32 },
}

impl Entry {
    fn line(&self) -> u32 {
        match self {
            Entry::Usable { line, .. } | Entry::Unusable { line } => *line,
        }
    }
}

/// Something in the file that Mosquitto drops or that may not be what was meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordWarning {
    /// 1-based line number.
    pub line: u32,
    /// What is wrong and what was expected (without the file name; see [`PasswordFile::warning_lines`]).
    pub message: String,
    /// What kind of problem it is, for tools that sort warnings (`mqtt-policy lint`).
    pub kind: PasswordWarningKind,
}

/// One user of a password file, as [`PasswordFile::users`] lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserLine {
    /// The username.
    pub name: String,
    /// The line that counts for the user.
    pub line: u32,
    /// Whether that entry is a usable hash (the user can log in).
    pub usable: bool,
}

/// The kinds of [`PasswordWarning`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PasswordWarningKind {
    /// A plaintext password (no `$`): no Mosquitto accepts it.
    Plaintext,
    /// Any other entry no Mosquitto can use (malformed hash, missing hash, over-long field).
    Unusable,
    /// An `$argon2id$` entry: accepted by us and by Mosquitto 2.1, dropped by Mosquitto 2.0.
    Argon2idNotIn20,
    /// A `$6$`/`$7$` entry with a 64-byte salt: accepted by us and by 2.1, dropped by 2.0.
    LongSaltNotIn20,
    /// A later line for a user already in the file.
    Duplicate,
    /// A line that is ignored without naming a user (over-long username, the file cut at a NUL).
    Ignored,
}

/// The outcome of a login attempt against the password file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// The password matches the user's entry.
    Accepted,
    /// No line of the file names this user.
    UnknownUser,
    /// The password does not match.
    WrongPassword,
    /// The client sent a username without a password (Mosquitto refuses it).
    NoPassword,
    /// The user's only lines are not usable hashes (plaintext, malformed): this user cannot log in.
    UnusableEntry {
        /// The last line for this user.
        line: u32,
    },
}

impl AuthResult {
    /// Whether the login is allowed.
    pub fn is_accepted(&self) -> bool {
        matches!(self, AuthResult::Accepted)
    }
}

impl fmt::Display for AuthResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthResult::Accepted => f.write_str("accepted"),
            AuthResult::UnknownUser => f.write_str("unknown user"),
            AuthResult::WrongPassword => f.write_str("wrong password"),
            AuthResult::NoPassword => f.write_str("a username was sent without a password"),
            AuthResult::UnusableEntry { line } => write!(
                f,
                "the password entry on line {line} is not a valid hash, so this user cannot log in"
            ),
        }
    }
}

/// A username for messages: lossy UTF-8, escaped.
fn show(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

impl PasswordFile {
    /// Parses the bytes of a password file, reporting lines as `path:line`. Never fails: unusable lines are
    /// dropped with a warning, as Mosquitto drops them; a file with no usable line gives an empty set.
    pub fn parse(path: &str, bytes: &[u8]) -> PasswordFile {
        let mut parsed = PasswordFile {
            path: path.to_owned(),
            users: HashMap::new(),
            usable: 0,
            warnings: Vec::new(),
        };
        let (lines, cut) = crate::policy::c_lines::mosquitto_lines(bytes);
        for line in &lines {
            parsed.add_line(line.number, file::classify(line.text));
        }
        if let Some(cut) = cut {
            parsed.warn(cut.line(), PasswordWarningKind::Ignored, cut.to_string());
        }
        parsed.warnings.sort_by_key(|w| w.line);
        parsed
    }

    fn warn(&mut self, line: u32, kind: PasswordWarningKind, message: String) {
        self.warnings.push(PasswordWarning {
            line,
            message,
            kind,
        });
    }

    fn add_line(&mut self, number: u32, kind: LineKind<'_>) {
        match kind {
            LineKind::Comment | LineKind::NoColon | LineKind::NoUsername => {}
            LineKind::UsernameTooLong => self.warn(
                number,
                PasswordWarningKind::Ignored,
                format!("the username is longer than {MAX_FIELD_LEN} bytes; line ignored"),
            ),
            LineKind::MissingHash { username } => {
                let message = format!(
                    "no password hash after the username {}; expected USERNAME:HASH",
                    show(username)
                );
                self.add_unusable(number, username, PasswordWarningKind::Unusable, message);
            }
            LineKind::HashTooLong { username } => {
                let message = format!(
                    "the password hash of {} is longer than {MAX_FIELD_LEN} bytes",
                    show(username)
                );
                self.add_unusable(number, username, PasswordWarningKind::Unusable, message);
            }
            LineKind::Entry { username, hash, .. } => match StoredHash::parse(hash) {
                Ok(stored) => self.add_usable(number, username, stored, hash),
                Err(e) => {
                    let kind = if matches!(e, hash::HashError::Plaintext) {
                        PasswordWarningKind::Plaintext
                    } else {
                        PasswordWarningKind::Unusable
                    };
                    let message = format!("user {}: {e}", show(username));
                    self.add_unusable(number, username, kind, message);
                }
            },
        }
    }

    fn add_usable(&mut self, number: u32, username: &[u8], stored: StoredHash, text: &[u8]) {
        if !stored.mosquitto_20_reads_it() {
            let (form, kind) = match stored {
                StoredHash::Argon2id(_) => {
                    ("an argon2id hash", PasswordWarningKind::Argon2idNotIn20)
                }
                _ => ("a 64-byte salt", PasswordWarningKind::LongSaltNotIn20),
            };
            self.warn(
                number,
                kind,
                format!(
                    "user {}: {form} (Mosquitto 2.1's format) is accepted here, but Mosquitto 2.0's own password_file would drop this entry",
                    show(username)
                ),
            );
        }
        let entry = Entry::Usable {
            line: number,
            hash: stored,
            text: text.into(),
        };
        match self.users.insert(username.to_vec(), entry) {
            Some(Entry::Usable { line, .. }) => self.warn(
                number,
                PasswordWarningKind::Duplicate,
                format!(
                    "user {} is also on line {line}; this later line is the one used, as in Mosquitto",
                    show(username)
                ),
            ),
            Some(Entry::Unusable { .. }) | None => self.usable += 1,
        }
    }

    fn add_unusable(
        &mut self,
        number: u32,
        username: &[u8],
        kind: PasswordWarningKind,
        message: String,
    ) {
        match self.users.get_mut(username) {
            Some(Entry::Usable { line, .. }) => {
                let line = *line;
                self.warn(
                    number,
                    kind,
                    format!(
                        "{message}. Line ignored; the entry on line {line} stays in force, as in Mosquitto"
                    ),
                );
            }
            Some(unusable) => {
                *unusable = Entry::Unusable { line: number };
                self.warn(number, kind, format!("{message}. This user cannot log in"));
            }
            None => {
                self.users
                    .insert(username.to_vec(), Entry::Unusable { line: number });
                self.warn(number, kind, format!("{message}. This user cannot log in"));
            }
        }
    }

    /// The name the file was parsed under.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What Mosquitto would drop or what looks wrong, in line order.
    pub fn warnings(&self) -> &[PasswordWarning] {
        &self.warnings
    }

    /// The warnings as `path:line: message`, ready to log.
    pub fn warning_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.warnings
            .iter()
            .map(move |w| format!("{}:{}: {}", self.path, w.line, w.message))
    }

    /// Checks a login. `password` is `None` when the client sent none; a password is used up to its first
    /// NUL byte, as Mosquitto does. Unknown users and unusable entries take as long as a wrong password.
    pub fn verify(&self, username: &str, password: Option<&[u8]>) -> AuthResult {
        let entry = if username.as_bytes().contains(&0) {
            None
        } else {
            self.users.get(username.as_bytes())
        };
        let result = match (entry, password) {
            (None, _) => AuthResult::UnknownUser,
            (Some(Entry::Unusable { line }), _) => AuthResult::UnusableEntry { line: *line },
            (Some(Entry::Usable { .. }), None) => AuthResult::NoPassword,
            (Some(Entry::Usable { hash, .. }), Some(password)) => {
                return if hash.verify(password) {
                    AuthResult::Accepted
                } else {
                    AuthResult::WrongPassword
                };
            }
        };
        if let Some(password) = password {
            burn_like_a_default_hash(password);
        }
        result
    }

    /// The number of users with a usable entry (the users Mosquitto's table would hold).
    pub fn len(&self) -> usize {
        self.usable
    }

    /// Whether no user can log in.
    pub fn is_empty(&self) -> bool {
        self.usable == 0
    }

    /// Whether `username` has a usable entry.
    pub fn contains(&self, username: &str) -> bool {
        matches!(
            self.users.get(username.as_bytes()),
            Some(Entry::Usable { .. })
        )
    }

    /// The hash field (as written in the file) of `username`'s usable entry: what a verified-credential
    /// cache compares against to know that the entry it verified against is still the one in force.
    /// `None` for an unknown user or one without a usable entry.
    pub fn entry_hash(&self, username: &str) -> Option<&[u8]> {
        match self.users.get(username.as_bytes()) {
            Some(Entry::Usable { text, .. }) if !username.as_bytes().contains(&0) => Some(text),
            _ => None,
        }
    }

    /// Every username the file names (with a usable entry or not) and the line that counts for it, in
    /// line order. Names that are not UTF-8 are shown lossily.
    pub fn users(&self) -> Vec<UserLine> {
        let mut users: Vec<UserLine> = self
            .users
            .iter()
            .map(|(name, entry)| UserLine {
                name: String::from_utf8_lossy(name).into_owned(),
                line: entry.line(),
                usable: matches!(entry, Entry::Usable { .. }),
            })
            .collect();
        users.sort_by_key(|u| u.line);
        users
    }

    /// The line that counts for `username` (usable or not), if the file names the user.
    pub fn line_of(&self, username: &str) -> Option<u32> {
        self.users.get(username.as_bytes()).map(Entry::line)
    }
}

/// Does the work of checking `password` against a default `$7$` entry and throws the answer away.
fn burn_like_a_default_hash(password: &[u8]) {
    const DUMMY_SALT: [u8; hash::SALT_LEN_20] = *b"mqtt-policy!";
    let computed = hash::pbkdf2(file::c_str(password), &DUMMY_SALT, DEFAULT_ITERATIONS);
    let matched = computed.ct_eq(&[0u8; hash::HASH_LEN]);
    std::hint::black_box(bool::from(matched));
}

#[cfg(test)]
mod tests;
