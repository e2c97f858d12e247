//! The answer to "may this client do this on that topic, and why?" as `mqtt-policy check` prints it:
//! shared by `check`, `test` (its failures) and `serve` (the page), so that all three say the same words.

use serde::Serialize;

use crate::policy::acl::Explanation;
use crate::policy::passwd::PasswordFile;
use crate::policy::Semantics;

/// Whether the user could log in at all, from the password file (when one is given).
#[derive(Debug, Serialize)]
pub struct LoginStatus {
    /// The password file.
    pub file: String,
    /// `true` when the user has a usable hash (the password itself is not checked).
    pub can_log_in: bool,
    /// The line that counts for the user, if the file names them.
    pub line: Option<u32>,
    /// The same, as a sentence.
    pub message: String,
}

impl LoginStatus {
    /// The login status of `username` (`None`: an anonymous client) in `file`.
    pub fn new(file: &PasswordFile, username: Option<&str>) -> LoginStatus {
        let path = file.path().to_owned();
        let (can_log_in, line, message) = match username {
            None => (
                true,
                None,
                "an anonymous client is not looked up in the password file (allow_anonymous decides)".to_owned(),
            ),
            Some(user) => match (file.contains(user), file.line_of(user)) {
                (true, line) => (
                    true,
                    line,
                    format!("{user:?} has a usable password entry at {path}:{}", line.unwrap_or(0)),
                ),
                (false, Some(line)) => (
                    false,
                    Some(line),
                    format!("{user:?} cannot log in: the entry at {path}:{line} is not a valid hash"),
                ),
                (false, None) => (false, None, format!("{user:?} cannot log in: not in {path}")),
            },
        };
        LoginStatus {
            file: path,
            can_log_in,
            line,
            message,
        }
    }
}

/// `check`'s text for a decision: the explanation, the login status when known, and the semantics.
pub fn render(
    explanation: &Explanation,
    login: Option<&LoginStatus>,
    semantics: Semantics,
) -> String {
    let mut text = explanation.to_string();
    if let Some(login) = login {
        text.push_str(&format!("  login: {}\n", login.message));
    }
    text.push_str(&format!("  semantics: {semantics}'s acl_file\n"));
    text
}
