//! The acl's users against the password file's, and password and acl lines Mosquitto drops or reads
//! surprisingly.

use std::collections::HashSet;

use super::{Code, Finding};
use crate::policy::acl::{AclFile, RuleList};
use crate::policy::passwd::{PasswordFile, PasswordWarningKind};

/// Adds the findings that need both files: users one file names and the other does not.
pub(super) fn find(acl: &AclFile, passwords: &PasswordFile, out: &mut Vec<Finding>) {
    let users = passwords.users();
    let mut acl_users: Vec<&str> = Vec::new();
    for rule in &acl.rules {
        if let RuleList::User(name) = &rule.list {
            if !acl_users.contains(&name.as_str()) {
                acl_users.push(name);
            }
        }
    }
    for name in &acl_users {
        if passwords.contains(name) {
            continue;
        }
        let lines: Vec<String> = acl
            .rules
            .iter()
            .filter(|r| matches!(&r.list, RuleList::User(n) if n == name))
            .map(|r| r.line.to_string())
            .collect();
        let first = lines[0].parse().unwrap_or(0);
        let why = match passwords.line_of(name) {
            Some(line) => format!(
                "their entry at {}:{line} is not a usable hash",
                passwords.path()
            ),
            None => format!("{} has no entry for them", passwords.path()),
        };
        out.push(Finding::new(
            Code::AclUserCannotLogIn,
            &acl.path,
            first,
            format!(
                "the rules of user {name} (line{} {}) can never match: {name} cannot log in, {why}",
                if lines.len() == 1 { "" } else { "s" },
                lines.join(", ")
            ),
            "add the user with `mqtt-policy passwd FILE USER`, or remove the block (unless another authentication, such as certificates, logs them in)",
        ));
    }
    let has_patterns = acl.rules.iter().any(|r| r.list == RuleList::Pattern);
    let in_acl: HashSet<&str> = acl_users.iter().copied().collect();
    for user in users
        .iter()
        .filter(|u| u.usable && !in_acl.contains(u.name.as_str()))
    {
        let finding = if has_patterns {
            Finding::new(
                Code::PasswordUserNotInAcl,
                passwords.path(),
                user.line,
                format!(
                    "user {} has no `user` block in {}: only the pattern rules apply to them",
                    user.name, acl.path
                ),
                "nothing to do if the patterns are meant for them; add a `user` block otherwise",
            )
        } else {
            Finding::new(
                Code::PasswordUserWithoutRules,
                passwords.path(),
                user.line,
                format!(
                    "user {} can log in but no rule of {} applies to them: every publish and every delivery is denied",
                    user.name, acl.path
                ),
                "add a `user` block for them, or remove them from the password file",
            )
        };
        out.push(finding);
    }
}

/// Adds the findings about the password file's own lines.
pub(super) fn password_entries(passwords: &PasswordFile, out: &mut Vec<Finding>) {
    if let Some(refusal) = passwords.refusal() {
        out.push(Finding::new(
            Code::PasswordFileRefusedBy21,
            passwords.path(),
            refusal.line,
            format!(
                "{}: Mosquitto 2.1 refuses the whole file at this line (its broker does not start, a reload fails)",
                refusal.message
            ),
            "fix or remove the line; with Mosquitto 2.1, every line must be USERNAME:HASH with a hash it decodes, each user once",
        ));
    }
    for warning in passwords.warnings() {
        let (code, extra, hint) = match warning.kind {
            PasswordWarningKind::Plaintext => (
                Code::PasswordPlaintext,
                " (Mosquitto 2.0 drops the line; Mosquitto 2.1.2 refuses to start with it)",
                "hash the file: `mqtt-policy passwd -U FILE` (or `mosquitto_passwd -U FILE`)",
            ),
            PasswordWarningKind::Unusable => (
                Code::PasswordUnusable,
                "",
                "set the password again: `mqtt-policy passwd FILE USER`",
            ),
            PasswordWarningKind::Argon2idNotIn20 => (
                Code::PasswordDroppedBy20,
                " (and Mosquitto 2.1.2 as built by default, without WITH_ARGON2, refuses to start with it)",
                "for Mosquitto's own password_file, set the password again with `mqtt-policy passwd -H sha512-pbkdf2 FILE USER`",
            ),
            PasswordWarningKind::LongSaltNotIn20 => (
                Code::PasswordDroppedBy20,
                "",
                "if Mosquitto 2.0's own password_file reads this file, set the password again with `mqtt-policy passwd -H sha512-pbkdf2 FILE USER`",
            ),
            PasswordWarningKind::Duplicate => (Code::PasswordDuplicate, "", "remove the earlier line"),
            _ => (Code::PasswordLineIgnored, "", "fix or remove the line"),
        };
        out.push(Finding::new(
            code,
            passwords.path(),
            warning.line,
            format!("{}{extra}", warning.message),
            hint,
        ));
    }
}

/// Adds the acl parser's warnings other than "a pattern without `%u`/`%c`" (which is how patterns
/// for everyone are written on purpose).
pub(super) fn acl_quirks(acl: &AclFile, out: &mut Vec<Finding>) {
    for warning in &acl.warnings {
        let on_pattern = acl
            .rules
            .iter()
            .any(|r| r.line == warning.line && r.list == RuleList::Pattern);
        if on_pattern {
            continue;
        }
        out.push(Finding::new(
            Code::AclLineQuirk,
            &acl.path,
            warning.line,
            warning.message.clone(),
            "remove the NUL byte: the releases read this file differently",
        ));
    }
}
