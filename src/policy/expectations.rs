//! Policy tests: expectation files (TOML) that say who may and may not do what, checked against a
//! compiled [`Policy`]. Parsing and deciding are pure; reading the files and printing the results are
//! `mqtt-policy test`'s.
//!
//! ```toml
//! acl_file = "acl.txt"            # or config = "mosquitto.conf"; relative to this file
//! password_file = "users.txt"     # optional
//! mosquitto = "2.0"               # optional: 2.0 or 2.1
//!
//! expect = [
//!   "user1 may write colombia/cundinamarca/cajica/user1",
//!   "user1 may not write panama/colon/user1",
//!   "anonymous may not subscribe #",
//!   "user1 with client id sensor-7 may read a/b/c/user1",
//! ]
//!
//! [[case]]                        # the same as a table, for names and topics the sentence cannot hold
//! user = "name with may in it"    # leave out for an anonymous client
//! client_id = "c1"                # optional; default: the username, or `anonymous`
//! access = "write"                # read, write or subscribe
//! topic = "a/b"
//! allow = false
//! ```
//!
//! A sentence is `WHO [with client id ID] may [not] ACCESS TOPIC`: `WHO` is `anonymous` or a
//! username, `ACCESS` is `read`, `write` or `subscribe`, and `TOPIC` is the rest of the line (it may
//! hold spaces). A case passes when the policy's verdict is the one expected, exactly as
//! `mqtt-policy check` would decide it.

use std::fmt;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::policy::acl::{Explanation, Policy};
use crate::policy::decision::{Access, ClientRef, Verdict};

/// An expectation file, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectationFile {
    /// The name the file was loaded under.
    pub path: String,
    /// `config`, as written (relative paths are the caller's to resolve).
    pub config: Option<String>,
    /// `acl_file`, as written.
    pub acl_file: Option<String>,
    /// `password_file`, as written.
    pub password_file: Option<String>,
    /// `mosquitto`: `2.0` or `2.1`, as written (checked by the caller with its other sources).
    pub mosquitto: Option<(String, u32)>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// 1-based line of the case in its file.
    pub line: u32,
    /// The username; `None` for an anonymous client.
    pub user: Option<String>,
    /// The client id, when given.
    pub client_id: Option<String>,
    /// What is asked.
    pub access: Access,
    /// The topic (read, write) or filter (subscribe).
    pub topic: String,
    /// The verdict expected.
    pub expect: Verdict,
}

impl Case {
    /// The client the case is about: the client id defaults to the username, or `anonymous`, as in
    /// `mqtt-policy check`.
    pub fn client(&self) -> ClientRef<'_> {
        ClientRef::from_names(self.user.as_deref(), self.client_id.as_deref())
    }

    /// Decides the case: whether it passed, and the explanation `check` would print.
    pub fn run(&self, policy: &Policy) -> (bool, Explanation) {
        let explanation = policy.explain(self.client(), &self.topic, self.access);
        (explanation.verdict == self.expect, explanation)
    }
}

impl fmt::Display for Case {
    /// The case as a sentence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "{user}")?,
            None => write!(f, "anonymous")?,
        }
        if let Some(id) = &self.client_id {
            write!(f, " with client id {id}")?;
        }
        let may = match self.expect {
            Verdict::Allow => "may",
            Verdict::Deny => "may not",
        };
        write!(f, " {may} {} {}", self.access.as_str(), self.topic)
    }
}

/// Why an expectation file was rejected, and where.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path}:{line}: {message}")]
pub struct ExpectationError {
    /// The file.
    pub path: String,
    /// 1-based line (0 when not on a line).
    pub line: u32,
    /// What was wrong and what was expected.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    config: Option<String>,
    acl_file: Option<String>,
    password_file: Option<String>,
    mosquitto: Option<Spanned<String>>,
    #[serde(default)]
    expect: Vec<Spanned<String>>,
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    user: Option<String>,
    client_id: Option<String>,
    access: Spanned<String>,
    topic: String,
    allow: bool,
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> u32 {
    let before = &text.as_bytes()[..offset.min(text.len())];
    u32::try_from(before.iter().filter(|&&b| b == b'\n').count() + 1).unwrap_or(u32::MAX)
}

fn parse_access(word: &str) -> Option<Access> {
    match word {
        "read" => Some(Access::Read),
        "write" => Some(Access::Write),
        "subscribe" => Some(Access::Subscribe),
        _ => None,
    }
}

const SENTENCE: &str = "expected `WHO [with client id ID] may [not] read|write|subscribe TOPIC`";

/// Parses one sentence found on `line`.
fn parse_sentence(sentence: &str, line: u32) -> Result<Case, String> {
    let Some((who, rest)) = sentence.split_once(" may ") else {
        return Err(format!("{SENTENCE}, found {sentence:?} (no ` may `)"));
    };
    let (expect, rest) = match rest.strip_prefix("not ") {
        Some(rest) => (Verdict::Deny, rest),
        None => (Verdict::Allow, rest),
    };
    let Some((word, topic)) = rest.split_once(' ') else {
        return Err(format!(
            "{SENTENCE}, found {sentence:?} (no topic after the access)"
        ));
    };
    let access = parse_access(word).ok_or_else(|| {
        format!("{SENTENCE}: the access {word:?} is not read, write or subscribe")
    })?;
    if topic.is_empty() {
        return Err(format!("{SENTENCE}, found {sentence:?} (empty topic)"));
    }
    let (who, client_id) = match who.split_once(" with client id ") {
        Some((who, id)) if !id.is_empty() => (who, Some(id.to_owned())),
        Some(_) => return Err(format!("{SENTENCE}: empty client id in {sentence:?}")),
        None => (who, None),
    };
    let user = match who {
        "" => return Err(format!("{SENTENCE}: nobody before ` may ` in {sentence:?}")),
        "anonymous" => None,
        name => Some(name.to_owned()),
    };
    Ok(Case {
        line,
        user,
        client_id,
        access,
        topic: topic.to_owned(),
        expect,
    })
}

/// Parses expectation file `text`, loaded under the name `path`.
pub fn parse(path: &str, text: &str) -> Result<ExpectationFile, ExpectationError> {
    let err = |line: u32, message: String| ExpectationError {
        path: path.to_owned(),
        line,
        message,
    };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_at(text, s.start));
        err(line, e.message().trim_end().to_owned())
    })?;
    let mut cases = Vec::new();
    for sentence in &raw.expect {
        let line = line_at(text, sentence.span().start);
        cases.push(parse_sentence(sentence.get_ref(), line).map_err(|m| err(line, m))?);
    }
    for case in &raw.case {
        let line = line_at(text, case.span().start);
        let case = case.get_ref();
        let access = parse_access(case.access.get_ref()).ok_or_else(|| {
            err(
                line_at(text, case.access.span().start),
                format!(
                    "access {:?}: expected read, write or subscribe",
                    case.access.get_ref()
                ),
            )
        })?;
        cases.push(Case {
            line,
            user: case.user.clone(),
            client_id: case.client_id.clone(),
            access,
            topic: case.topic.clone(),
            expect: if case.allow {
                Verdict::Allow
            } else {
                Verdict::Deny
            },
        });
    }
    cases.sort_by_key(|c| c.line);
    if cases.is_empty() {
        return Err(err(
            0,
            "no cases: expected `expect = [\"WHO may ACCESS TOPIC\", ...]` or `[[case]]` tables"
                .to_owned(),
        ));
    }
    Ok(ExpectationFile {
        path: path.to_owned(),
        config: raw.config,
        acl_file: raw.acl_file,
        password_file: raw.password_file,
        mosquitto: raw
            .mosquitto
            .map(|m| (m.get_ref().clone(), line_at(text, m.span().start))),
        cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TUTORIAL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

    #[test]
    fn sentences_and_tables_parse_with_their_lines() {
        let file = parse(
            "t.toml",
            "acl_file = \"acl.txt\"\nexpect = [\n  \"user1 may write a/b/c/user1\",\n  \"anonymous may not subscribe #\",\n  \"u with client id c 1 may read x y/z\",\n]\n\n[[case]]\nuser = \"a may b\"\naccess = \"write\"\ntopic = \"t\"\nallow = false\n",
        )
        .unwrap();
        assert_eq!(file.acl_file.as_deref(), Some("acl.txt"));
        let lines: Vec<u32> = file.cases.iter().map(|c| c.line).collect();
        assert_eq!(lines, [3, 4, 5, 8]);
        let c = &file.cases[2];
        assert_eq!(c.user.as_deref(), Some("u"));
        assert_eq!(c.client_id.as_deref(), Some("c 1"));
        assert_eq!(c.topic, "x y/z");
        assert_eq!(file.cases[1].user, None);
        assert_eq!(file.cases[1].expect, Verdict::Deny);
        assert_eq!(file.cases[3].user.as_deref(), Some("a may b"));
        assert_eq!(file.cases[0].to_string(), "user1 may write a/b/c/user1");
    }

    #[test]
    fn bad_files_name_the_line_and_what_was_expected() {
        let e = parse(
            "t.toml",
            "expect = [\n  \"user1 may write a\",\n  \"user1 can write b\",\n]\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("expected `WHO"), "{e}");
        let e = parse("t.toml", "expect = [\"u may publish a\"]\n").unwrap_err();
        assert!(e.message.contains("not read, write or subscribe"), "{e}");
        let e = parse("t.toml", "acl_file = \"a\"\nexpect = [\"u may read a\"\n").unwrap_err();
        assert!(e.line >= 2, "{e}");
        let e = parse("t.toml", "acl = \"a\"\nexpect = [\"u may read a\"]\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
        let e = parse("t.toml", "acl_file = \"a\"\n").unwrap_err();
        assert!(e.message.contains("no cases"), "{e}");
        let e = parse("t.toml", "[[case]]\naccess = \"read\"\ntopic = \"t\"\n").unwrap_err();
        assert!(e.message.contains("allow"), "{e}");
    }

    #[test]
    fn the_tutorials_cases_decide_as_check() {
        let policy = Policy::from_acl("acl.txt", TUTORIAL.as_bytes()).unwrap();
        let file = parse(
            "t.toml",
            "expect = [\n\"user1 may write colombia/cundinamarca/cajica/user1\",\n\"user1 may not write panama/colon/user1\",\n\"anonymous may not subscribe #\",\n\"user1 may write panama/colon/user1\",\n]\n",
        )
        .unwrap();
        let passed: Vec<bool> = file.cases.iter().map(|c| c.run(&policy).0).collect();
        assert_eq!(passed, [true, true, true, false]);
        let (_, explanation) = file.cases[3].run(&policy);
        assert!(
            explanation.to_string().contains("needs 4 levels"),
            "{explanation}"
        );
    }
}
