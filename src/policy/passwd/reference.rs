//! The password file model as it was before the compact layout (a `HashMap` of parsed entries over the
//! whole file's lines), kept only to test that the compact model and its piecewise reading give the
//! same answers on any input.

#![allow(dead_code)]

use std::collections::HashMap;

use super::file::{self, LineKind};
use super::hash::{self, StoredHash};
use super::{show, AuthResult, PasswordWarning, PasswordWarningKind, UserLine, MAX_FIELD_LEN};

/// A parsed password file: the usable entry of every user, and what Mosquitto would log while reading it.
#[derive(Clone, Debug)]
pub struct Reference {
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

impl Reference {
    /// Parses the bytes of a password file, reporting lines as `path:line`. Never fails: unusable lines are
    /// dropped with a warning, as Mosquitto drops them; a file with no usable line gives an empty set.
    pub fn parse(path: &str, bytes: &[u8]) -> Reference {
        let mut parsed = Reference {
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
            let _ = password;
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
