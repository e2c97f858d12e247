//! Reading the files the policy core parses. The core takes bytes; this is where they come from.

use crate::policy::acl::{parse_acl_as, AclError, AclErrorKind, AclFile, Policy};
use crate::policy::conf::{ConfError, MosquittoConf};
use crate::policy::passwd::PasswordFile;
use crate::policy::Semantics;

/// Reads and compiles the acl file at `path` (Mosquitto 2.0 semantics). A missing or unreadable file is
/// an [`AclError`] on line 0.
pub fn load_policy(path: &str) -> Result<Policy, AclError> {
    load_policy_as(path, Semantics::Mosquitto20)
}

/// [`load_policy`], deciding as Mosquitto `semantics`.
pub fn load_policy_as(path: &str, semantics: Semantics) -> Result<Policy, AclError> {
    let bytes = std::fs::read(path).map_err(|e| AclError {
        path: path.to_owned(),
        line: 0,
        kind: AclErrorKind::Unreadable(e.to_string()),
    })?;
    Policy::from_acl_as(path, &bytes, semantics)
}

/// Reads and parses (without compiling) the acl file at `path` as Mosquitto `semantics` reads it.
pub fn load_acl_as(path: &str, semantics: Semantics) -> Result<AclFile, AclError> {
    let bytes = std::fs::read(path).map_err(|e| AclError {
        path: path.to_owned(),
        line: 0,
        kind: AclErrorKind::Unreadable(e.to_string()),
    })?;
    parse_acl_as(path, &bytes, semantics)
}

/// Reads and parses the mosquitto.conf at `path`.
pub fn load_conf(path: &str) -> Result<MosquittoConf, ConfError> {
    let bytes = std::fs::read(path).map_err(|e| ConfError {
        path: path.to_owned(),
        line: 0,
        message: format!("cannot read the config file: {e}"),
    })?;
    MosquittoConf::parse(path, &bytes)
}

/// Why a password file could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Unable to open password file \"{path}\": {reason}")]
pub struct PasswordLoadError {
    /// The file name as given.
    pub path: String,
    /// What the operating system said.
    pub reason: String,
}

/// Reads and parses the password file at `path`. A missing or unreadable file is an error naming it; the
/// contents never are (unusable lines become [`PasswordFile::warnings`], as Mosquitto drops them).
pub fn load_passwords(path: &str) -> Result<PasswordFile, PasswordLoadError> {
    let bytes = std::fs::read(path).map_err(|e| PasswordLoadError {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(PasswordFile::parse(path, &bytes))
}
