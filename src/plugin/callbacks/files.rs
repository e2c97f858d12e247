//! The plugin's files: the acl file and the password file named by its options, loaded all or nothing
//! (a reload that fails keeps the previous ones), and the line that says what is in force.

use std::sync::Arc;

use super::super::host::{Host, LogLevel};
use super::super::options::{trailing_space_hint, OptionError, PluginOptions};
use super::super::outcome::Outcome;
use crate::enforce::metrics::RuleHits;
use crate::enforce::shadow::Shadow;
use crate::load::{load_acl_fingerprinted, load_passwords_fingerprinted, Fingerprint};
use crate::policy::acl::{AclErrorKind, Policy};
use crate::policy::passwd::PasswordFile;
use crate::policy::Semantics;

/// Why a file could not be loaded, ready to log, and what init answers because of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// [`Outcome::Unavailable`] for a missing or unreadable file, [`Outcome::BadConfig`] for a malformed
    /// one or a bad option.
    pub outcome: Outcome,
    /// What went wrong, naming the option, the file and the line.
    pub message: String,
}

impl From<OptionError> for LoadError {
    fn from(e: OptionError) -> LoadError {
        LoadError {
            outcome: Outcome::BadConfig,
            message: e.to_string(),
        }
    }
}

/// Reads and compiles the acl file named by `plugin_opt_acl_file` to decide as Mosquitto `semantics`,
/// logging its warnings. The [`Fingerprint`] is started from the bytes read.
pub fn load_acl(
    path: &str,
    host: &dyn Host,
    semantics: Semantics,
) -> Result<(Policy, Fingerprint), LoadError> {
    let (file, fingerprint) =
        load_acl_fingerprinted(path, semantics).map_err(|e| match e.kind {
            AclErrorKind::Unreadable(reason) => LoadError {
                outcome: Outcome::Unavailable,
                message: format!(
                    "cannot read the acl file {path:?} (plugin_opt_acl_file): {reason}{}",
                    trailing_space_hint(path)
                ),
            },
            _ => LoadError {
                outcome: Outcome::BadConfig,
                message: format!("invalid acl file (plugin_opt_acl_file): {e}"),
            },
        })?;
    for w in &file.warnings {
        host.log(
            LogLevel::Warning,
            &format!("mqtt-policy: {path}:{}: warning: {}", w.line, w.message),
        );
    }
    Ok((Policy::compile(file), fingerprint))
}

/// Reads the password file named by `plugin_opt_password_file`, logging what Mosquitto would drop.
///
/// A missing or unreadable file is an error, and so is, with Mosquitto 2.1's `semantics`, a file that
/// 2.1's own password-file plugin refuses as a whole. Otherwise, like Mosquitto 2.0, unusable lines are
/// dropped with a warning (those users cannot log in), and the file still loads. The bytes read are fed
/// into `fingerprint` when there is one.
pub fn load_passwords(
    path: &str,
    host: &dyn Host,
    semantics: Semantics,
    fingerprint: Option<&mut Fingerprint>,
) -> Result<PasswordFile, LoadError> {
    let file =
        load_passwords_fingerprinted(path, semantics, fingerprint).map_err(|e| LoadError {
            outcome: Outcome::Unavailable,
            message: match e {
                crate::load::PasswordLoadError::Unreadable { reason, .. } => format!(
                    "cannot read the password file {path:?} (plugin_opt_password_file): {reason}{}",
                    trailing_space_hint(path)
                ),
                refused @ crate::load::PasswordLoadError::Refused { .. } => {
                    format!("password file (plugin_opt_password_file) {refused}")
                }
            },
        })?;
    for line in file.warning_lines() {
        host.log(LogLevel::Warning, &format!("mqtt-policy: {line}"));
    }
    Ok(file)
}

/// The files in force: swapped together, as a whole, on a successful reload.
#[derive(Debug, Default)]
pub(super) struct Files {
    pub(super) acl: Option<Arc<Policy>>,
    pub(super) passwords: Option<Arc<PasswordFile>>,
    /// The hit counters of the acl's rules (counted only with metrics on).
    pub(super) hits: Arc<RuleHits>,
    /// The candidate policy, if one is configured and loaded.
    pub(super) shadow: Option<Arc<Shadow>>,
    /// The live files' fingerprint, made as they were read (only with metrics on).
    pub(super) fingerprint: Option<String>,
}

/// Loads every configured file; all or nothing for the live ones. A shadow file that does not load is
/// logged and left out (the shadow is then absent); it never stops the live policy.
pub(super) fn load_files(
    options: &PluginOptions,
    host: &dyn Host,
    semantics: Semantics,
) -> Result<Files, LoadError> {
    // The acl file first: the fingerprint hashes it before the password file.
    let (acl, fingerprint) = match options.acl_file.as_deref() {
        Some(path) => {
            let (policy, fingerprint) = load_acl(path, host, semantics)?;
            (Some(Arc::new(policy)), fingerprint)
        }
        None => (None, Fingerprint::of_acl(None)),
    };
    let mut fingerprint = options.has_metrics().then_some(fingerprint);
    let passwords = match options.password_file.as_deref() {
        Some(path) => Some(Arc::new(load_passwords(
            path,
            host,
            semantics,
            fingerprint.as_mut(),
        )?)),
        None => None,
    };
    let shadow = match Shadow::load(
        options.shadow_acl_file.as_deref(),
        options.shadow_password_file.as_deref(),
        semantics,
    ) {
        Ok(shadow) => shadow.map(Arc::new),
        Err(e) => {
            host.log(
                LogLevel::Err,
                &format!(
                    "mqtt-policy: {e}; the shadow policy is absent until a reload loads it \
                     (the live policy is not affected)"
                ),
            );
            None
        }
    };
    let hits = Arc::new(RuleHits::new(acl.as_deref()));
    Ok(Files {
        acl,
        passwords,
        hits,
        shadow,
        fingerprint: fingerprint.map(Fingerprint::finish),
    })
}

/// The line logged at start and after a reload: what is in force.
pub(super) fn describe(options: &PluginOptions, files: &Files, semantics: Semantics) -> String {
    let mut parts = Vec::new();
    if let (Some(path), Some(passwords)) =
        (options.password_file.as_deref(), files.passwords.as_deref())
    {
        parts.push(format!(
            "password file {path:?} ({} users)",
            passwords.len()
        ));
    }
    if let (Some(path), Some(policy)) = (options.acl_file.as_deref(), files.acl.as_deref()) {
        parts.push(format!(
            "acl file {path:?} ({} rules)",
            policy.rules().len()
        ));
    }
    if let Some(shadow) = &files.shadow {
        parts.push(shadow.describe());
    }
    match options.audit_log.as_deref() {
        Some(path) => parts.push(format!("audit log {path:?}")),
        None => parts.push("audit records to the broker log".to_owned()),
    }
    format!(
        "mqtt-policy: using {}; deciding as {semantics}'s acl_file",
        parts.join(", ")
    )
}
