//! Reading the files the policy core parses. The core takes bytes; this is where they come from.

use crate::policy::acl::{AclError, AclErrorKind, Policy};
use crate::policy::conf::{ConfError, MosquittoConf};

/// Reads and compiles the acl file at `path`. A missing or unreadable file is an [`AclError`] on line 0.
pub fn load_policy(path: &str) -> Result<Policy, AclError> {
    let bytes = std::fs::read(path).map_err(|e| AclError {
        path: path.to_owned(),
        line: 0,
        kind: AclErrorKind::Unreadable(e.to_string()),
    })?;
    Policy::from_acl(path, &bytes)
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
