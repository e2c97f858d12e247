//! The rules an acl file is made of, each with the place it came from.

use serde::Serialize;

use crate::policy::decision::Access;

/// What a rule grants: Mosquitto's access words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// `deny`: matching topics are refused, whatever else matches (deny rules are checked first).
    Deny,
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `readwrite`, or a `topic`/`pattern` line with no access word.
    ReadWrite,
}

impl Permission {
    /// Parses one of Mosquitto's access words (case-sensitive, as Mosquitto).
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "deny" => Some(Permission::Deny),
            "read" => Some(Permission::Read),
            "write" => Some(Permission::Write),
            "readwrite" => Some(Permission::ReadWrite),
            _ => None,
        }
    }

    /// The access word.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Deny => "deny",
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::ReadWrite => "readwrite",
        }
    }

    /// `true` for `deny`.
    pub fn is_deny(self) -> bool {
        self == Permission::Deny
    }

    /// `true` when this permission grants `access` (only `Read` and `Write` are ever granted by rules).
    pub fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Permission::Read | Permission::ReadWrite, Access::Read)
                | (Permission::Write | Permission::ReadWrite, Access::Write)
        )
    }
}

/// Which list a rule belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "list", content = "user", rename_all = "lowercase")]
pub enum RuleList {
    /// A `topic` line before the first `user` line: applies only to clients without a username.
    Anonymous,
    /// A `topic` line after `user NAME`: applies only to the client whose username is exactly `NAME`.
    User(String),
    /// A `pattern` line, wherever it stands: applies to every client, with `%u`/`%c` substituted.
    Pattern,
}

/// One `topic` or `pattern` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// 1-based line number in the acl file.
    pub line: u32,
    /// The line as written (trailing whitespace removed).
    pub text: String,
    /// The list the rule belongs to.
    pub list: RuleList,
    /// What it grants.
    pub permission: Permission,
    /// The topic filter (for patterns, before `%u`/`%c` substitution).
    pub filter: String,
}

impl Rule {
    /// `true` for a `pattern` line.
    pub fn is_pattern(&self) -> bool {
        self.list == RuleList::Pattern
    }
    /// For patterns: does the filter contain `%u`?
    pub fn uses_username(&self) -> bool {
        self.is_pattern() && self.filter.contains("%u")
    }
    /// For patterns: does the filter contain `%c`?
    pub fn uses_client_id(&self) -> bool {
        self.is_pattern() && self.filter.contains("%c")
    }
}

/// Substitutes `%c` and `%u` in a pattern the way Mosquitto 2.0 does: one left-to-right pass, plain
/// substring replacement (the value may contain `/` and so span levels), `%u` left as is when there is
/// no username (callers skip such patterns). Allocates: used by explanations and the reference
/// implementation, never on the per-message path.
pub fn substitute(pattern: &str, username: Option<&str>, client_id: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + client_id.len());
    substitute_into(&mut out, pattern, username, client_id);
    out
}

/// [`substitute`], appending to `out` (so that a caller can reuse one buffer).
pub fn substitute_into(out: &mut String, pattern: &str, username: Option<&str>, client_id: &str) {
    let bytes = pattern.as_bytes();
    let mut i = 0;
    let mut copied_from = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'%' {
            let value = match bytes[i + 1] {
                b'c' => Some(client_id),
                b'u' => username,
                _ => None,
            };
            if let Some(value) = value {
                out.push_str(&pattern[copied_from..i]);
                out.push_str(value);
                i += 2;
                copied_from = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&pattern[copied_from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_is_plain_substring_replacement() {
        assert_eq!(substitute("d/%u-x", Some("alice"), "c1"), "d/alice-x");
        assert_eq!(substitute("clients/%c/#", None, "a/b"), "clients/a/b/#");
        assert_eq!(substitute("%u%c", Some("%c"), "id"), "%cid");
        assert_eq!(substitute("%%u", Some("u"), "id"), "%u");
        assert_eq!(substitute("a/%", Some("u"), "id"), "a/%");
        assert_eq!(substitute("+/+/+/%u", Some(""), "id"), "+/+/+/");
    }
}
