//! The acl_file grammar, exactly as Mosquitto reads it (2.0's `aclfile__parse`; 2.1's acl-file plugin
//! has the same grammar and differs only in its line reader, see [`crate::policy::semantics`]).
//!
//! * Trailing whitespace (C `isspace`, so CR too) is removed; a line whose first byte is `#` is a comment.
//!   An indented `#` is not a comment but an invalid line.
//! * Tokens are separated by spaces only; leading spaces are skipped; a tab is part of a token.
//! * `topic|pattern [read|write|readwrite|deny] FILTER`: the rest of the line, trimmed, is the filter (it may
//!   contain spaces). With a single word after the keyword, that word is the filter and the access is
//!   `readwrite`. The filter must be a valid subscription filter.
//! * `user NAME`: the rest of the line, trimmed. Blocks of the same name merge.
//! * Lines are read as Mosquitto's line reader reads them, quirks included ([`crate::policy::c_lines`]).
//! * Parsing stops at the first bad line: one error, nothing half-applied.

use thiserror::Error;

use super::rule::{Permission, Rule, RuleList};
use crate::policy::c_lines::{is_c_space, mosquitto_lines_as};
use crate::policy::semantics::Semantics;
use crate::policy::topic::{self, FilterError};

/// A parsed acl file: its rules in file order and the warnings Mosquitto would log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFile {
    /// The name the file was loaded under (shown in reasons as `path:line`).
    pub path: String,
    /// Every `topic` and `pattern` line, in file order.
    pub rules: Vec<Rule>,
    /// Lines Mosquitto accepts with a warning.
    pub warnings: Vec<AclWarning>,
    /// Which Mosquitto's reading the file was parsed with, and its policy decides as.
    pub semantics: Semantics,
}

/// A line that is accepted but probably not what was meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclWarning {
    /// 1-based line number.
    pub line: u32,
    /// What is odd about it.
    pub message: String,
}

/// Why an acl file was rejected, and where.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path}:{line}: {kind}")]
pub struct AclError {
    /// The file name.
    pub path: String,
    /// 1-based line number (0 when the problem is not on a line, such as an unreadable file).
    pub line: u32,
    /// What was wrong.
    pub kind: AclErrorKind,
}

/// The ways an acl line can be wrong. Each names what was expected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AclErrorKind {
    /// The first word is not `topic`, `pattern` or `user` (an indented `#` lands here too).
    #[error("invalid line {line:?}: expected `topic`, `pattern`, `user` or a `#` comment in column 1{hint}")]
    InvalidLine {
        /// The offending line.
        line: String,
        /// Extra advice (tabs, indented comments).
        hint: &'static str,
    },
    /// `topic` or `pattern` with nothing after it.
    #[error("empty topic: expected `{keyword} [read|write|readwrite|deny] FILTER`")]
    EmptyTopic {
        /// `topic` or `pattern`.
        keyword: &'static str,
    },
    /// The word after `topic`/`pattern` is not an access word.
    #[error(
        "invalid topic access type {word:?}: expected read, write, readwrite or deny (lower case)"
    )]
    InvalidAccess {
        /// The word found.
        word: String,
    },
    /// The filter is not a valid subscription filter.
    #[error("invalid ACL topic {filter:?}: {reason}")]
    InvalidFilter {
        /// The filter found.
        filter: String,
        /// What is wrong with it.
        reason: FilterError,
    },
    /// `user` with no name.
    #[error("missing username: expected `user NAME`")]
    MissingUsername,
    /// The file is not UTF-8.
    #[error("the line is not valid UTF-8: acl files must be UTF-8 text")]
    NotUtf8,
    /// The file could not be read (set by the adapter that reads it).
    #[error("cannot read the acl file: {0}")]
    Unreadable(String),
}

fn trim_c(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_c_space(c as u8))
}

fn trim_end_c(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_ascii() && is_c_space(c as u8))
}

/// Splits off the next space-separated token the way `strtok_r(s, " ")` does: leading spaces are
/// skipped; returns the token and the rest after the single space that ended it.
fn next_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    match s.find(' ') {
        Some(i) => Some((&s[..i], &s[i + 1..])),
        None => Some((s, "")),
    }
}

/// Parses acl file `bytes` loaded under the name `path`, as Mosquitto 2.0 reads it.
pub fn parse_acl(path: &str, bytes: &[u8]) -> Result<AclFile, AclError> {
    parse_acl_as(path, bytes, Semantics::Mosquitto20)
}

/// Parses acl file `bytes` loaded under the name `path`, as Mosquitto `semantics` reads it.
pub fn parse_acl_as(path: &str, bytes: &[u8], semantics: Semantics) -> Result<AclFile, AclError> {
    let err = |line: u32, kind| AclError {
        path: path.to_owned(),
        line,
        kind,
    };
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    let mut user: Option<String> = None;

    let (lines, cut) = mosquitto_lines_as(bytes, semantics);
    if let Some(cut) = cut {
        warnings.push(AclWarning {
            line: cut.line(),
            message: cut.to_string(),
        });
    }
    for c_line in lines {
        let line_no = c_line.number;
        if c_line.text.is_empty() {
            // Only a NUL as the first byte gives an empty C string (a blank line still has its `\n`).
            warnings.push(AclWarning {
                line: line_no,
                message: "the line starts with a NUL byte: Mosquitto 2.1 (and 2.0.22) read it as an empty \
                          line, Debian's 2.0.11 ignores the rest of the file from it"
                    .to_owned(),
            });
            continue;
        }
        let line =
            std::str::from_utf8(c_line.text).map_err(|_| err(line_no, AclErrorKind::NotUtf8))?;
        let line = trim_end_c(line);
        if line.starts_with('#') {
            continue;
        }
        let Some((keyword, rest)) = next_token(line) else {
            continue;
        };
        match keyword {
            "topic" | "pattern" => {
                let keyword: &'static str = if keyword == "topic" {
                    "topic"
                } else {
                    "pattern"
                };
                let Some((first, after)) = next_token(rest) else {
                    return Err(err(line_no, AclErrorKind::EmptyTopic { keyword }));
                };
                // strtok_r(NULL, "") returns NULL once the string is used up.
                let (permission, filter) = if after.is_empty() {
                    (Permission::ReadWrite, first)
                } else {
                    let permission = Permission::from_word(first).ok_or_else(|| {
                        err(
                            line_no,
                            AclErrorKind::InvalidAccess {
                                word: first.to_owned(),
                            },
                        )
                    })?;
                    (permission, trim_c(after))
                };
                if let Err(reason) = topic::validate_filter(filter) {
                    return Err(err(
                        line_no,
                        AclErrorKind::InvalidFilter {
                            filter: filter.to_owned(),
                            reason,
                        },
                    ));
                }
                let list = if keyword == "pattern" {
                    if !filter.contains("%u") && !filter.contains("%c") {
                        warnings.push(AclWarning {
                            line: line_no,
                            message: format!(
                                "ACL pattern '{filter}' does not contain '%c' or '%u'"
                            ),
                        });
                    }
                    RuleList::Pattern
                } else {
                    match &user {
                        Some(name) => RuleList::User(name.clone()),
                        None => RuleList::Anonymous,
                    }
                };
                rules.push(Rule {
                    line: line_no,
                    text: line.to_owned(),
                    list,
                    permission,
                    filter: filter.to_owned(),
                });
            }
            "user" => {
                let name = trim_c(rest);
                if name.is_empty() {
                    return Err(err(line_no, AclErrorKind::MissingUsername));
                }
                user = Some(name.to_owned());
            }
            _ => {
                let hint = if keyword.contains('\t') {
                    " (words must be separated by spaces, not tabs)"
                } else if keyword.starts_with('#') {
                    " (a comment's `#` must be the first character of the line)"
                } else {
                    ""
                };
                return Err(err(
                    line_no,
                    AclErrorKind::InvalidLine {
                        line: line.to_owned(),
                        hint,
                    },
                ));
            }
        }
    }
    Ok(AclFile {
        path: path.to_owned(),
        rules,
        warnings,
        semantics,
    })
}
