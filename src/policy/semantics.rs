//! [`Semantics`]: which Mosquitto's reading of an `acl_file` a policy follows. Mosquitto 2.0 and 2.1 read
//! the same file differently in a few places (found in their sources and by the differential test
//! against each release's built-in file):
//!
//! * **`%u` / `%c` in patterns.** 2.0 replaces every `%u`/`%c` in the pattern text by the value (a
//!   substring replacement: `a%ub` works, and a value with `/` spans levels). 2.1 substitutes only a level
//!   that is exactly `%u` or `%c`; elsewhere `%u` is literal text. On 2.1 such a level never matches
//!   when the value is empty or contains `/`, and a pattern whose first level is `%u`/`%c` never matches
//!   a topic starting with `$` (on 2.0 it does when the value starts with `$`).
//! * **A NUL byte in a line.** 2.0's line reader swallows the rest of the file after it (and reads the
//!   NUL line up to the NUL when the file does not end with a newline); 2.1's stops at the NUL line,
//!   which counts (up to the NUL) only if it is the last line and has no newline; a NUL first on a line
//!   empties only that line ([`crate::policy::c_lines`]). The 2.0 semantics follow Debian's 2.0.11 here:
//!   upstream 2.0.22 reads a line that starts with a NUL as 2.1 does.
//!
//! The semantics is chosen when a policy is parsed and compiled, never per message.

use serde::Serialize;

/// The Mosquitto release line whose built-in `acl_file` a policy decides as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum Semantics {
    /// Mosquitto 2.0.x (`src/security_default.c`). The default.
    #[default]
    #[serde(rename = "mosquitto-2.0")]
    Mosquitto20,
    /// Mosquitto 2.1.x (its acl-file plugin).
    #[serde(rename = "mosquitto-2.1")]
    Mosquitto21,
}

impl Semantics {
    /// `mosquitto-2.0` or `mosquitto-2.1`, as audit records and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::Mosquitto20 => "mosquitto-2.0",
            Semantics::Mosquitto21 => "mosquitto-2.1",
        }
    }

    /// Parses a release line as users write it: `2.0` or `2.1` (a full release such as `2.0.18` or
    /// `2.1.2`, or a `mosquitto-` prefix, is accepted too).
    pub fn from_version(text: &str) -> Option<Semantics> {
        let text = text.trim();
        let text = text.strip_prefix("mosquitto-").unwrap_or(text);
        let mut parts = text.split('.');
        let (major, minor) = (parts.next()?, parts.next()?);
        if parts
            .clone()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        match (major, minor) {
            ("2", "0") => Some(Semantics::Mosquitto20),
            ("2", "1") => Some(Semantics::Mosquitto21),
            _ => None,
        }
    }

    /// `true` for 2.1: only whole `%u`/`%c` levels are substituted.
    pub fn whole_level_substitution(self) -> bool {
        self == Semantics::Mosquitto21
    }
}

impl std::fmt::Display for Semantics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `pattern` with `%u`/`%c` substituted as Mosquitto 2.1 does into `out` (cleared first), or
/// returns `false` when no topic can match the pattern for this client (a substituted value that is
/// empty, contains `/`, or, in the first level, starts with `$`). `%u` with no username: `false`
/// (callers skip such patterns anyway). Allocates only by growing `out`.
pub fn substitute_whole_levels(
    out: &mut String,
    pattern: &str,
    username: Option<&str>,
    client_id: &str,
) -> bool {
    out.clear();
    for (index, level) in pattern.split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        let value = match level {
            "%u" => match username {
                Some(u) => u,
                None => return false,
            },
            "%c" => client_id,
            _ => {
                out.push_str(level);
                continue;
            }
        };
        if !identity_fits_level(value, index == 0) {
            return false;
        }
        out.push_str(value);
    }
    true
}

/// Whether a username or client id can stand for a whole `%u`/`%c` level on 2.1: not empty, no `/`,
/// and, in the first level, not starting with `$`.
pub(crate) fn identity_fits_level(value: &str, first_level: bool) -> bool {
    let leading_dollar = first_level && value.starts_with('$');
    !(value.is_empty() || value.contains('/') || leading_dollar)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(pattern: &str, username: Option<&str>, client_id: &str) -> Option<String> {
        let mut out = String::from("junk");
        substitute_whole_levels(&mut out, pattern, username, client_id).then_some(out)
    }

    #[test]
    fn only_whole_levels_are_substituted() {
        assert_eq!(
            sub("a/%u/%c", Some("bob"), "c1").as_deref(),
            Some("a/bob/c1")
        );
        assert_eq!(
            sub("a%ub/%c-x", Some("bob"), "c1").as_deref(),
            Some("a%ub/%c-x")
        );
        assert_eq!(
            sub("%%u/%u%c", Some("bob"), "c1").as_deref(),
            Some("%%u/%u%c")
        );
    }

    #[test]
    fn values_that_cannot_be_a_level_never_match() {
        assert_eq!(sub("a/%u", Some(""), "c1"), None);
        assert_eq!(sub("a/%u", Some("x/y"), "c1"), None);
        assert_eq!(sub("%c/a", Some("bob"), "$c"), None);
        assert_eq!(sub("a/%c", Some("bob"), "$c").as_deref(), Some("a/$c"));
        assert_eq!(sub("a/%u", None, "c1"), None);
    }

    #[test]
    fn on_2_1_a_nul_first_line_is_empty_and_warned_about() {
        let bytes = b"topic write a\n\0topic write x\ntopic write b\n";
        let v21 =
            crate::policy::acl::parse_acl_as("acl.txt", bytes, Semantics::Mosquitto21).unwrap();
        let filters: Vec<&str> = v21.rules.iter().map(|r| r.filter.as_str()).collect();
        assert_eq!(filters, ["a", "b"]);
        assert_eq!(v21.warnings.len(), 1);
        assert_eq!(v21.warnings[0].line, 2);
        let v20 = crate::policy::acl::parse_acl("acl.txt", bytes).unwrap();
        assert_eq!(v20.rules.len(), 1);
        assert_eq!(v20.warnings.len(), 1);
    }

    #[test]
    fn on_2_1_a_pattern_the_client_cannot_fill_is_a_near_miss_saying_why() {
        let policy = crate::policy::acl::Policy::from_acl_as(
            "acl.txt",
            b"pattern write x/%u/+\n",
            Semantics::Mosquitto21,
        )
        .unwrap();
        let client = crate::policy::ClientRef {
            username: Some("a/b"),
            client_id: "c1",
        };
        let explanation = policy.explain(client, "x/a/b/c", crate::policy::Access::Write);
        assert!(
            explanation.to_string().contains("has no `/`"),
            "{explanation}"
        );
    }

    #[test]
    fn versions_parse() {
        assert_eq!(Semantics::from_version("2.0"), Some(Semantics::Mosquitto20));
        assert_eq!(
            Semantics::from_version("2.1.2"),
            Some(Semantics::Mosquitto21)
        );
        assert_eq!(
            Semantics::from_version("mosquitto-2.1"),
            Some(Semantics::Mosquitto21)
        );
        assert_eq!(Semantics::from_version("2.0.x"), None);
        assert_eq!(Semantics::from_version("1.6"), None);
        assert_eq!(Semantics::from_version("2"), None);
        assert_eq!(Semantics::default().as_str(), "mosquitto-2.0");
    }
}
