//! `mqtt-policy lint`'s analysis: findings over an acl file and a password file, each with the line it
//! is about, a stable [`Code`], a [`Severity`] and a hint. Pure, like the rest of the core: it takes
//! parsed files and returns findings; checks of the file system (modes of key and password files) are
//! made by the adapters and reported with the same [`Finding`] type.
//!
//! * `cover.rs`: when one rule provably matches every topic another can (with `%u`/`%c`).
//! * `shadow.rs`: rules shadowed inside their own list, by a deny or by an earlier broader allow.
//! * `overridden.rs`: pattern denies a user's own list always answers first.
//! * `placeholders.rs`: `%u`/`%c` where they do not do what they seem to, and `#` without `$SYS`.
//! * `accounts.rs`: the acl's users against the password file's, and entries Mosquitto drops.
//!
//! Only what is provable is reported: a rule is "shadowed" only when every topic it can match, for
//! every client it applies to, is already decided by the rule named as the cause.

mod accounts;
mod cover;
mod overridden;
mod placeholders;
mod shadow;

use std::fmt;

use serde::Serialize;

use crate::policy::acl::{AclFile, Rule, RuleList};
use crate::policy::passwd::PasswordFile;

pub use cover::{covers, covers_for_user};

/// How serious a finding is. Ordered: `Info < Warning < Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the policy does what it says.
    Info,
    /// Probably not what was meant: a rule that does nothing, or a policy that differs between releases.
    Warning,
    /// A client cannot do what the file says, or a secret is exposed.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses `info`, `warning` or `error`.
    pub fn from_word(word: &str) -> Option<Severity> {
        match word {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of finding. Their names ([`Code::as_str`]) are stable: scripts may match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// A rule every topic of which a deny rule of the same list already refuses.
    ShadowedByDeny,
    /// An allow rule every topic and access of which an earlier rule of the same list already grants.
    ShadowedByAllow,
    /// A `pattern ... deny` rule that some user's own list always answers first.
    DenyOverriddenByOwnAllow,
    /// `%u`/`%c` in a `topic` line: literal text, never substituted.
    PlaceholderInTopicLine,
    /// `%u`/`%c` inside a pattern level (`a%ub`): 2.0 substitutes it, 2.1 does not.
    PlaceholderInsideLevel,
    /// A readable rule starting with `#` or `+`, which matches no `$SYS` topic.
    WildcardExcludesSys,
    /// A `user` block for a user who cannot log in with the password file.
    AclUserCannotLogIn,
    /// A user of the password file with no rules of their own, governed by the patterns only.
    PasswordUserNotInAcl,
    /// A user of the password file to whom no rule at all applies.
    PasswordUserWithoutRules,
    /// A plaintext password: no Mosquitto accepts it.
    PasswordPlaintext,
    /// Another password entry no Mosquitto can use.
    PasswordUnusable,
    /// An entry Mosquitto 2.0 drops (argon2id, 64-byte salt) that 2.1 and mqtt-policy accept.
    PasswordDroppedBy20,
    /// A later password line for the same user.
    PasswordDuplicate,
    /// A password line ignored without naming a user.
    PasswordLineIgnored,
    /// A line for which Mosquitto 2.1 refuses the whole password file (reported with 2.1's reading).
    PasswordFileRefusedBy21,
    /// A line of the acl file that Mosquitto reads in a surprising way (NUL bytes).
    AclLineQuirk,
    /// An acl or password file with permissions for others (Mosquitto 2.0.22 and 2.1 warn about it).
    PolicyFileWorldAccessible,
    /// A TLS private key readable by others.
    KeyWorldReadable,
    /// A policy, key or certificate file writable by others (the tutorial's `chmod 777`).
    FileWorldWritable,
}

impl Code {
    /// Every code, in the order the documentation lists them.
    pub const ALL: [Code; 19] = [
        Code::ShadowedByDeny,
        Code::ShadowedByAllow,
        Code::DenyOverriddenByOwnAllow,
        Code::PlaceholderInTopicLine,
        Code::PlaceholderInsideLevel,
        Code::WildcardExcludesSys,
        Code::AclUserCannotLogIn,
        Code::PasswordUserNotInAcl,
        Code::PasswordUserWithoutRules,
        Code::PasswordPlaintext,
        Code::PasswordUnusable,
        Code::PasswordDroppedBy20,
        Code::PasswordDuplicate,
        Code::PasswordLineIgnored,
        Code::PasswordFileRefusedBy21,
        Code::AclLineQuirk,
        Code::PolicyFileWorldAccessible,
        Code::KeyWorldReadable,
        Code::FileWorldWritable,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ShadowedByDeny => "shadowed-by-deny",
            Code::ShadowedByAllow => "shadowed-by-allow",
            Code::DenyOverriddenByOwnAllow => "deny-overridden-by-own-allow",
            Code::PlaceholderInTopicLine => "placeholder-in-topic-line",
            Code::PlaceholderInsideLevel => "placeholder-inside-level",
            Code::WildcardExcludesSys => "wildcard-excludes-sys",
            Code::AclUserCannotLogIn => "acl-user-cannot-log-in",
            Code::PasswordUserNotInAcl => "password-user-not-in-acl",
            Code::PasswordUserWithoutRules => "password-user-without-rules",
            Code::PasswordPlaintext => "password-plaintext",
            Code::PasswordUnusable => "password-unusable",
            Code::PasswordDroppedBy20 => "password-dropped-by-mosquitto-2.0",
            Code::PasswordDuplicate => "password-duplicate",
            Code::PasswordLineIgnored => "password-line-ignored",
            Code::PasswordFileRefusedBy21 => "password-file-refused-by-mosquitto-2.1",
            Code::AclLineQuirk => "acl-line-quirk",
            Code::PolicyFileWorldAccessible => "policy-file-world-accessible",
            Code::KeyWorldReadable => "key-world-readable",
            Code::FileWorldWritable => "file-world-writable",
        }
    }

    /// The severity every finding of this code has.
    pub fn severity(self) -> Severity {
        match self {
            Code::ShadowedByAllow
            | Code::WildcardExcludesSys
            | Code::PasswordUserNotInAcl
            | Code::PasswordDuplicate => Severity::Info,
            Code::ShadowedByDeny
            | Code::DenyOverriddenByOwnAllow
            | Code::PlaceholderInTopicLine
            | Code::PlaceholderInsideLevel
            | Code::AclUserCannotLogIn
            | Code::PasswordUserWithoutRules
            | Code::PasswordDroppedBy20
            | Code::PasswordLineIgnored
            | Code::AclLineQuirk
            | Code::PolicyFileWorldAccessible => Severity::Warning,
            Code::PasswordPlaintext
            | Code::PasswordUnusable
            | Code::PasswordFileRefusedBy21
            | Code::KeyWorldReadable
            | Code::FileWorldWritable => Severity::Error,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A line a finding points at besides its own (the rule that shadows, the user's own rule).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Related {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// The line as written (or a short description).
    pub text: String,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file it is about.
    pub file: String,
    /// 1-based line (0 for the file as a whole).
    pub line: u32,
    /// What kind of finding.
    pub code: Code,
    /// How serious ([`Code::severity`]).
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it.
    pub hint: String,
    /// Other lines involved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
}

impl Finding {
    /// A finding of `code` at `file:line`.
    pub fn new(code: Code, file: &str, line: u32, message: String, hint: &str) -> Finding {
        Finding {
            file: file.to_owned(),
            line,
            code,
            severity: code.severity(),
            message,
            hint: hint.to_owned(),
            related: Vec::new(),
        }
    }

    /// The same finding, pointing at `rule` of acl file `file` too.
    pub fn with_rule(mut self, file: &str, rule: &Rule) -> Finding {
        self.related.push(Related {
            file: file.to_owned(),
            line: rule.line,
            text: rule.text.clone(),
        });
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}: {}[{}]: {}",
            self.file, self.line, self.severity, self.code, self.message
        )?;
        for related in &self.related {
            writeln!(
                f,
                "  see {}:{}: {}",
                related.file, related.line, related.text
            )?;
        }
        writeln!(f, "  hint: {}", self.hint)
    }
}

/// Everything the core can find in an acl file and, when given, the password file beside it. Sorted by
/// file, line and code.
pub fn lint(acl: &AclFile, passwords: Option<&PasswordFile>) -> Vec<Finding> {
    let mut findings = Vec::new();
    shadow::find(acl, &mut findings);
    overridden::find(acl, &mut findings);
    placeholders::find(acl, &mut findings);
    accounts::acl_quirks(acl, &mut findings);
    if let Some(passwords) = passwords {
        accounts::find(acl, passwords, &mut findings);
        accounts::password_entries(passwords, &mut findings);
    }
    sort(&mut findings);
    findings
}

/// The findings about a password file alone: entries Mosquitto drops or reads surprisingly.
pub fn lint_passwords(passwords: &PasswordFile) -> Vec<Finding> {
    let mut findings = Vec::new();
    accounts::password_entries(passwords, &mut findings);
    findings
}

/// Sorts findings by file, line and code name, the order they are printed in.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.file.as_str(), a.line, a.code.as_str()).cmp(&(b.file.as_str(), b.line, b.code.as_str()))
    });
}

/// The rule lists of an acl file: `(list, rules in file order)`, anonymous first, then users in the
/// order their first rule appears, then the patterns.
pub(crate) fn lists(acl: &AclFile) -> Vec<(&RuleList, Vec<&Rule>)> {
    let mut lists: Vec<(&RuleList, Vec<&Rule>)> = Vec::new();
    let mut index: std::collections::HashMap<&RuleList, usize> = std::collections::HashMap::new();
    for rule in &acl.rules {
        let slot = *index.entry(&rule.list).or_insert_with(|| {
            lists.push((&rule.list, Vec::new()));
            lists.len() - 1
        });
        lists[slot].1.push(rule);
    }
    lists.sort_by_key(|(list, _)| match list {
        RuleList::Anonymous => 0,
        RuleList::User(_) => 1,
        RuleList::Pattern => 2,
    });
    lists
}

/// How a list is named in messages.
pub(crate) fn list_name(list: &RuleList) -> String {
    match list {
        RuleList::Anonymous => "the anonymous list".to_owned(),
        RuleList::User(name) => format!("user {name}'s list"),
        RuleList::Pattern => "the pattern list".to_owned(),
    }
}

#[cfg(test)]
mod tests;
