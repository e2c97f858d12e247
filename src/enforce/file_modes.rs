//! Who else may read or change the files a policy is made of: the file-system half of
//! `mqtt-policy lint` (the pure half is [`crate::policy::lint`]), reported as the same findings.
//!
//! * An acl or password file with any permission for others: Mosquitto 2.0.22 and 2.1 log "Warning:
//!   File … has world readable permissions. Future versions will refuse to load this file." for both
//!   (`mosquitto__fopen(…, restrict_read=true)` tests `S_IRWXO`).
//! * A TLS private key readable by others: anyone on the machine can impersonate the broker.
//! * Any of these files, or a certificate, writable by others (the tutorial's `chmod 777`): anyone on
//!   the machine can change the policy or the broker's identity.

use std::os::unix::fs::PermissionsExt;

use crate::policy::lint::{Code, Finding};

/// What a file is to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    /// `acl_file`.
    AclFile,
    /// `password_file`.
    PasswordFile,
    /// `keyfile`: a TLS private key.
    KeyFile,
    /// `certfile` or `cafile`.
    Certificate,
}

impl FileRole {
    fn noun(self) -> &'static str {
        match self {
            FileRole::AclFile => "the acl file",
            FileRole::PasswordFile => "the password file",
            FileRole::KeyFile => "the TLS private key",
            FileRole::Certificate => "the certificate",
        }
    }
}

/// A file to check and where it was named: `(file, line)` of the config line, or the file itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedFile {
    /// The path.
    pub path: String,
    /// What it is.
    pub role: FileRole,
    /// The config file and line that named it, if it came from a config.
    pub named_at: Option<(String, u32)>,
}

/// Checks the permission bits of each file; a file that cannot be examined is skipped (loading it
/// reports that). Returns the findings, unsorted.
pub fn check(files: &[NamedFile]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in files {
        let Ok(meta) = std::fs::metadata(&file.path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let (at, line) = match &file.named_at {
            Some((conf, line)) => (conf.as_str(), *line),
            None => (file.path.as_str(), 0),
        };
        let what = format!("{} {} has mode {mode:04o}", file.role.noun(), file.path);
        let chmod = match file.role {
            FileRole::Certificate => "0644",
            _ => "0600",
        };
        if mode & 0o002 != 0 {
            findings.push(Finding::new(
                Code::FileWorldWritable,
                at,
                line,
                format!("{what}: every user of the machine can change it"),
                &format!(
                    "chmod {chmod} {} (and own it by the broker's user)",
                    file.path
                ),
            ));
        }
        if file.role == FileRole::KeyFile && mode & 0o004 != 0 {
            findings.push(Finding::new(
                Code::KeyWorldReadable,
                at,
                line,
                format!("{what}: every user of the machine can read the broker's private key"),
                &format!("chmod 0600 {} and own it by the broker's user", file.path),
            ));
        }
        if matches!(file.role, FileRole::AclFile | FileRole::PasswordFile) && mode & 0o007 != 0 {
            findings.push(Finding::new(
                Code::PolicyFileWorldAccessible,
                at,
                line,
                format!(
                    "{what}: others have permissions on it; Mosquitto 2.0.22 and 2.1 warn that future versions will refuse to load it"
                ),
                &format!("chmod 0600 {} (or 0640 with the broker's group)", file.path),
            ));
        }
    }
    findings
}
