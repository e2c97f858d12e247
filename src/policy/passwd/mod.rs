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
mod strict21;

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use subtle::ConstantTimeEq;

pub use argon2id::MAX_MEMORY_KIB as ARGON2_MAX_MEMORY_KIB;
pub use create::{
    hash_password, HashKind, ARGON2_LEN, ARGON2_M_COST, ARGON2_P_COST, ARGON2_T_COST,
    DEFAULT_ITERATIONS, MAX_ITERATIONS,
};
use file::LineKind;
pub use file::MAX_FIELD_LEN;
use hash::StoredHash;

use crate::policy::Semantics;

/// A parsed password file: the usable entry of every user, and what Mosquitto would log while reading it.
///
/// # Layout
/// Sized for files of millions of users: every username and hash field is kept as the file's bytes,
/// back to back in one buffer (`text`); a user is a fixed-size [`Slot`] pointing into it, found through
/// a table of slot numbers. Hash fields are checked when the file is read (so unusable lines are
/// dropped and warned about as Mosquitto does) and decoded again when a login is verified, which costs
/// little beside the hash computation itself. A million `$7$` entries take about 150 MB.
#[derive(Clone)]
pub struct PasswordFile {
    path: String,
    /// Usernames and hash fields, as written in the file.
    text: Vec<u8>,
    /// One per username the file names.
    slots: Vec<Slot>,
    /// Slot numbers, by username.
    index: HashTable<u32>,
    usable: usize,
    warnings: Vec<PasswordWarning>,
    /// Whose reading of the file this is.
    semantics: Semantics,
    /// Why Mosquitto 2.1 would refuse the whole file (only with [`Semantics::Mosquitto21`]).
    refusal: Option<PasswordRefusal>,
}

/// The first line for which Mosquitto 2.1's password-file plugin refuses the whole file (see
/// [`PasswordFile::refusal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordRefusal {
    /// 1-based line number.
    pub line: u32,
    /// What is wrong and what was expected (without the file name).
    pub message: String,
}

impl fmt::Debug for PasswordFile {
    /// Never shows hash fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("path", &self.path)
            .field("usernames", &self.slots.len())
            .field("usable", &self.usable)
            .field("warnings", &self.warnings)
            .field("semantics", &self.semantics)
            .field("refusal", &self.refusal)
            .finish()
    }
}

/// `hash_len` of a user with no usable line.
const UNUSABLE: u32 = u32::MAX;

/// What the file holds for one username: where its name (and, when usable, the hash field right after
/// it) sits in [`PasswordFile::text`], and the line that counts.
#[derive(Clone, Copy, Debug)]
struct Slot {
    at: usize,
    name_len: u32,
    /// The hash field's length, or [`UNUSABLE`] when the user has only unusable lines.
    hash_len: u32,
    /// The usable line, or the last unusable one.
    line: u32,
}

impl Slot {
    fn usable(&self) -> bool {
        self.hash_len != UNUSABLE
    }

    fn name<'a>(&self, text: &'a [u8]) -> &'a [u8] {
        &text[self.at..self.at + self.name_len as usize]
    }

    /// The hash field of a usable entry.
    fn hash<'a>(&self, text: &'a [u8]) -> Option<&'a [u8]> {
        let start = self.at + self.name_len as usize;
        self.usable()
            .then(|| &text[start..start + self.hash_len as usize])
    }
}

/// The table's hash of a username. Fast and unkeyed: the keys come from the file, so a client can only
/// look names up, never add colliding ones.
fn hash_name(name: &[u8]) -> u64 {
    FxBuildHasher.hash_one(name)
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
        PasswordFile::parse_as(path, bytes, Semantics::Mosquitto20)
    }

    /// [`PasswordFile::parse`] as the password file reader of Mosquitto `semantics` reads it. With
    /// [`Semantics::Mosquitto21`], a file that 2.1 refuses as a whole has a [`PasswordFile::refusal`]
    /// (the entries are still parsed, so that `check` and `lint` can say more).
    pub fn parse_as(path: &str, bytes: &[u8], semantics: Semantics) -> PasswordFile {
        let mut builder = PasswordFile::builder_as(path, semantics);
        builder.reserve(bytes.len());
        builder.feed(bytes);
        builder.finish()
    }

    /// A parser that is handed the file in pieces ([`PasswordFileBuilder::feed`]), so that a large file
    /// need not be in memory whole.
    pub fn builder(path: &str) -> PasswordFileBuilder {
        PasswordFile::builder_as(path, Semantics::Mosquitto20)
    }

    /// [`PasswordFile::builder`] for the reader of Mosquitto `semantics` (see [`PasswordFile::parse_as`]).
    pub fn builder_as(path: &str, semantics: Semantics) -> PasswordFileBuilder {
        PasswordFileBuilder {
            file: PasswordFile {
                path: path.to_owned(),
                text: Vec::new(),
                slots: Vec::new(),
                index: HashTable::new(),
                usable: 0,
                warnings: Vec::new(),
                semantics,
                refusal: None,
            },
            names_21: None,
            only: None,
            carry: Vec::new(),
            next_line: 1,
            buffer: crate::policy::c_lines::INITIAL_BUFFER,
            nul_seen: false,
        }
    }

    fn slot(&self, username: &[u8]) -> Option<&Slot> {
        let (text, slots) = (&self.text, &self.slots);
        self.index
            .find(hash_name(username), |&i| {
                slots[i as usize].name(text) == username
            })
            .map(|&i| &slots[i as usize])
    }

    /// The slot number of `username`, adding an empty one if the file had not named it yet.
    fn slot_of(&mut self, username: &[u8]) -> (usize, bool) {
        let (text, slots) = (&self.text, &self.slots);
        let entry = self.index.entry(
            hash_name(username),
            |&i| slots[i as usize].name(text) == username,
            |&i| hash_name(slots[i as usize].name(text)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(o) => (*o.get() as usize, false),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let number = self.slots.len();
                v.insert(u32::try_from(number).expect("fewer than 2^32 users"));
                let at = self.text.len();
                self.text.extend_from_slice(username);
                self.slots.push(Slot {
                    at,
                    name_len: field_len(username),
                    hash_len: UNUSABLE,
                    line: 0,
                });
                (number, true)
            }
        }
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
        let argon2id = matches!(stored, StoredHash::Argon2id(_));
        if self.semantics == Semantics::Mosquitto21 && argon2id {
            self.warn(
                number,
                PasswordWarningKind::Argon2idNotIn20,
                format!(
                    "user {}: an argon2id hash is accepted here, but Mosquitto 2.1.2's own password_file reads it only when built with WITH_ARGON2, which its default build leaves off (that build refuses this file)",
                    show(username)
                ),
            );
        } else if self.semantics == Semantics::Mosquitto20 && !stored.mosquitto_20_reads_it() {
            let (form, kind) = if argon2id {
                ("an argon2id hash", PasswordWarningKind::Argon2idNotIn20)
            } else {
                ("a 64-byte salt", PasswordWarningKind::LongSaltNotIn20)
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
        let (slot, _) = self.slot_of(username);
        let previous = self.slots[slot];
        let at = if previous.usable() {
            // The name again, then this hash field; the earlier copy is left unused.
            let at = self.text.len();
            self.text.extend_from_slice(username);
            at
        } else {
            // The name was the last thing added for this user: append the hash after it. An
            // unusable user's name may be followed by other users' names, so copy it when it is not.
            let name_end = previous.at + previous.name_len as usize;
            if name_end == self.text.len() {
                previous.at
            } else {
                let at = self.text.len();
                self.text.extend_from_slice(username);
                at
            }
        };
        self.text.extend_from_slice(text);
        self.slots[slot] = Slot {
            at,
            name_len: field_len(username),
            hash_len: field_len(text),
            line: number,
        };
        match previous.usable().then_some(previous.line) {
            Some(line) => self.warn(
                number,
                PasswordWarningKind::Duplicate,
                format!(
                    "user {} is also on line {line}; this later line is the one used, as in Mosquitto",
                    show(username)
                ),
            ),
            None => self.usable += 1,
        }
    }

    fn add_unusable(
        &mut self,
        number: u32,
        username: &[u8],
        kind: PasswordWarningKind,
        message: String,
    ) {
        let (slot, _) = self.slot_of(username);
        let slot = &mut self.slots[slot];
        if slot.usable() {
            let line = slot.line;
            self.warn(
                number,
                kind,
                format!(
                    "{message}. Line ignored; the entry on line {line} stays in force, as in Mosquitto"
                ),
            );
        } else {
            slot.line = number;
            self.warn(number, kind, format!("{message}. This user cannot log in"));
        }
    }

    /// The name the file was parsed under.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whose reading of the file this is.
    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    /// Why Mosquitto 2.1's password-file plugin refuses this whole file (the broker does not start, and a
    /// reload fails), if it does: the first such line. Always `None` with [`Semantics::Mosquitto20`],
    /// whose reader drops such lines with a warning instead.
    pub fn refusal(&self) -> Option<&PasswordRefusal> {
        self.refusal.as_ref()
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
        let slot = if username.as_bytes().contains(&0) {
            None
        } else {
            self.slot(username.as_bytes())
        };
        let result = match (slot, password) {
            (None, _) => AuthResult::UnknownUser,
            (Some(slot), _) if !slot.usable() => AuthResult::UnusableEntry { line: slot.line },
            (Some(_), None) => AuthResult::NoPassword,
            (Some(slot), Some(password)) => {
                // Checked when the file was read; decoded again only now.
                match slot.hash(&self.text).map(StoredHash::parse) {
                    Some(Ok(hash)) if hash.verify(password) => return AuthResult::Accepted,
                    Some(Ok(_)) => return AuthResult::WrongPassword,
                    _ => AuthResult::UnusableEntry { line: slot.line },
                }
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
        self.slot(username.as_bytes()).is_some_and(Slot::usable)
    }

    /// The hash field (as written in the file) of `username`'s usable entry: what a verified-credential
    /// cache compares against to know that the entry it verified against is still the one in force.
    /// `None` for an unknown user or one without a usable entry.
    pub fn entry_hash(&self, username: &str) -> Option<&[u8]> {
        if username.as_bytes().contains(&0) {
            return None;
        }
        self.slot(username.as_bytes())?.hash(&self.text)
    }

    /// Every username the file names (with a usable entry or not) and the line that counts for it, in
    /// line order. Names that are not UTF-8 are shown lossily.
    pub fn users(&self) -> Vec<UserLine> {
        let mut users: Vec<UserLine> = self
            .slots
            .iter()
            .map(|slot| UserLine {
                name: String::from_utf8_lossy(slot.name(&self.text)).into_owned(),
                line: slot.line,
                usable: slot.usable(),
            })
            .collect();
        users.sort_by_key(|u| u.line);
        users
    }

    /// The line that counts for `username` (usable or not), if the file names the user.
    pub fn line_of(&self, username: &str) -> Option<u32> {
        self.slot(username.as_bytes()).map(|slot| slot.line)
    }
}

/// A field's length; fields are at most [`MAX_FIELD_LEN`] bytes.
fn field_len(field: &[u8]) -> u32 {
    u32::try_from(field.len()).expect("fields are at most MAX_FIELD_LEN bytes")
}

/// Parses a password file handed over in pieces of any size, exactly as [`PasswordFile::parse`] parses
/// the whole: [`PasswordFile::builder`], then [`feed`](Self::feed) each piece in order, then
/// [`finish`](Self::finish). Only the bytes of an unfinished last line are kept between pieces (and,
/// once a NUL byte is seen, the rest of the file, which Mosquitto's reader treats specially).
#[derive(Debug)]
pub struct PasswordFileBuilder {
    file: PasswordFile,
    /// Keep only this user's lines ([`only_user`](Self::only_user)).
    only: Option<Box<[u8]>>,
    /// With only one user kept and 2.1's reading: a 64-bit hash of every other username seen, so that
    /// a user named twice is found without keeping the names (a collision, about 1 in 10^7 for a
    /// million users, would be reported as a duplicate).
    names_21:
        Option<hashbrown::HashSet<u64, std::hash::BuildHasherDefault<std::hash::DefaultHasher>>>,
    /// Bytes fed after the last complete line (from the NUL line on, once `nul_seen`).
    carry: Vec<u8>,
    /// The number of the next line to read.
    next_line: u32,
    /// The size Mosquitto's line buffer has grown to.
    buffer: usize,
    /// A NUL byte was seen: from `carry`'s start to the end, lines are read by
    /// [`crate::policy::c_lines::mosquitto_lines_from`] at the end.
    nul_seen: bool,
}

impl PasswordFileBuilder {
    /// Makes room for a file of about `bytes` bytes (its size, when known), so that the tables do not
    /// grow by copying while they fill.
    pub fn reserve(&mut self, bytes: usize) {
        if self.only.is_some() {
            return;
        }
        // About 120 bytes a line for `$7$` entries with short names; `text` holds less than the file.
        let lines = bytes / 100;
        self.file.text.reserve(bytes);
        self.file.slots.reserve(lines);
        let (text, slots) = (&self.file.text, &self.file.slots);
        self.file
            .index
            .reserve(lines, |&i| hash_name(slots[i as usize].name(text)));
    }

    /// Keeps only the lines that name `username` (and the warnings about them, and where the reader
    /// stops short): what `mqtt-policy check` needs to answer for one user, in little memory.
    pub fn only_user(mut self, username: &str) -> PasswordFileBuilder {
        self.only = Some(username.as_bytes().into());
        if self.file.semantics == Semantics::Mosquitto21 {
            self.names_21 = Some(Default::default());
        }
        self
    }

    /// Reads the next piece of the file.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.nul_seen {
            self.carry.extend_from_slice(bytes);
            return;
        }
        if !self.carry.is_empty() {
            // Finish the line begun in an earlier piece.
            let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                self.carry.extend_from_slice(bytes);
                self.nul_seen = bytes.contains(&0);
                return;
            };
            self.carry.extend_from_slice(&bytes[..=end]);
            bytes = &bytes[end + 1..];
            if self.carry.contains(&0) {
                self.nul_seen = true;
                self.carry.extend_from_slice(bytes);
                return;
            }
            let line = std::mem::take(&mut self.carry);
            self.read_clean_lines(&line);
            self.carry = line;
            self.carry.clear();
        }
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let (lines, rest) = bytes.split_at(complete);
        match lines.iter().position(|&b| b == 0) {
            None => {
                self.read_clean_lines(lines);
                self.carry.extend_from_slice(rest);
            }
            Some(nul) => {
                let line_start = lines[..nul]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                self.read_clean_lines(&lines[..line_start]);
                self.nul_seen = true;
                self.carry.extend_from_slice(&bytes[line_start..]);
            }
        }
    }

    /// Reads lines that each end in `\n` and hold no NUL byte: Mosquitto's reader returns each whole.
    fn read_clean_lines(&mut self, bytes: &[u8]) {
        // With one user asked for, only the lines that contain the name at all are looked at (with 2.1's
        // reading every line is, for what would make 2.1 refuse the file).
        let only = self.only.clone().filter(|_| self.names_21.is_none());
        let finder = only.as_deref().map(memchr::memmem::Finder::new);
        let mut next_candidate = match &finder {
            Some(f) => f.find(bytes).unwrap_or(usize::MAX),
            None => 0,
        };
        let mut start = 0;
        let mut longest = 0;
        for end in memchr::memchr_iter(b'\n', bytes) {
            let line = &bytes[start..=end];
            longest = longest.max(line.len());
            let number = self.next_line;
            self.next_line = self.next_line.saturating_add(1);
            if next_candidate <= end {
                self.read_line(number, line);
                if let Some(f) = &finder {
                    next_candidate = f
                        .find(&bytes[end + 1..])
                        .map_or(usize::MAX, |i| end + 1 + i);
                }
            }
            start = end + 1;
        }
        // The buffer grows with the longest line, whatever the order of lines.
        self.buffer = crate::policy::c_lines::grown_buffer(self.buffer, longest);
    }

    fn read_line(&mut self, number: u32, text: &[u8]) {
        let kind = file::classify(text);
        if self.file.semantics == Semantics::Mosquitto21 && self.file.refusal.is_none() {
            self.check_21(number, &kind);
        }
        if let Some(only) = self.only.as_deref() {
            let username = match kind {
                LineKind::MissingHash { username }
                | LineKind::HashTooLong { username }
                | LineKind::Entry { username, .. } => Some(username),
                _ => None,
            };
            if username != Some(only) {
                return;
            }
        }
        self.file.add_line(number, kind);
    }

    /// Records why 2.1 refuses the file, if this line makes it.
    fn check_21(&mut self, number: u32, kind: &LineKind<'_>) {
        let (file, only, names) = (&self.file, self.only.as_deref(), &mut self.names_21);
        let earlier = |name: &[u8]| match (only, names) {
            (Some(only), Some(names)) if name != only => {
                let hash = names.hasher().hash_one(name);
                if names.insert(hash) {
                    strict21::Earlier::No
                } else {
                    strict21::Earlier::Unknown
                }
            }
            _ => file.slot(name).map_or(strict21::Earlier::No, |slot| {
                strict21::Earlier::Line(slot.line)
            }),
        };
        if let Some(message) = strict21::refusal(kind, earlier) {
            self.file.refusal = Some(PasswordRefusal {
                line: number,
                message,
            });
        }
    }

    /// Reads what is left (a last line without `\n`, or everything from a NUL byte on) and returns the
    /// parsed file.
    pub fn finish(mut self) -> PasswordFile {
        let carry = std::mem::take(&mut self.carry);
        let (lines, skipped, cut) = match self.file.semantics {
            Semantics::Mosquitto20 => {
                let (lines, cut) = crate::policy::c_lines::mosquitto_lines_from(
                    &carry,
                    Semantics::Mosquitto20,
                    self.buffer,
                    self.next_line,
                );
                (lines, Vec::new(), cut)
            }
            Semantics::Mosquitto21 => {
                crate::policy::c_lines::password_lines_21(&carry, self.buffer, self.next_line)
            }
        };
        for line in &lines {
            self.read_line(line.number, line.text);
        }
        for line in skipped {
            self.file.warn(
                line,
                PasswordWarningKind::Ignored,
                format!("line {line} contains a NUL byte: Mosquitto 2.1 skips that line and reads on, and so do we"),
            );
        }
        let mut file = self.file;
        if let Some(cut) = cut {
            file.warn(cut.line(), PasswordWarningKind::Ignored, cut.to_string());
        }
        file.warnings.sort_by_key(|w| w.line);
        file.text.shrink_to_fit();
        file.slots.shrink_to_fit();
        file
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
mod reference;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests21;
