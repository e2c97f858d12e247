//! Reading the files the policy core parses. The core takes bytes; this is where they come from.
//!
//! The `*_fingerprinted` loaders also hash the bytes they read into a [`Fingerprint`] (for the metrics
//! and the page), so that it is the fingerprint of exactly what was loaded, with no second read.

use crate::policy::acl::{parse_acl_as, AclError, AclErrorKind, AclFile, Policy};
use crate::policy::conf::{ConfError, MosquittoConf};
use crate::policy::passwd::{PasswordFile, PasswordFileBuilder};
use crate::policy::Semantics;
use sha2::{Digest, Sha256};

/// The fingerprint of a policy: `sha256:` and the hex SHA-256 of the acl file's bytes, a NUL, and the
/// password file's bytes (a file not configured counts as empty), so that `sha256sum` of that
/// concatenation gives the same. Started with the acl file ([`Fingerprint::of_acl`]), fed the password
/// file as it is read ([`load_passwords_fingerprinted`]), then [`Fingerprint::finish`]ed.
#[derive(Clone, Debug)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    /// Starts a fingerprint with the acl file's bytes (`None`: no acl file) and the NUL after them.
    pub fn of_acl(acl: Option<&[u8]>) -> Fingerprint {
        let mut hasher = Sha256::new();
        hasher.update(acl.unwrap_or_default());
        hasher.update([0u8]);
        Fingerprint(hasher)
    }

    /// The fingerprint, as the metrics show it.
    pub fn finish(self) -> String {
        use std::fmt::Write as _;
        let mut out = String::from("sha256:");
        for b in self.0.finalize() {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

/// [`load_acl_as`], with the [`Fingerprint`] started from the bytes read.
pub fn load_acl_fingerprinted(
    path: &str,
    semantics: Semantics,
) -> Result<(AclFile, Fingerprint), AclError> {
    let bytes = read_acl_bytes(path)?;
    let fingerprint = Fingerprint::of_acl(Some(&bytes));
    Ok((parse_acl_as(path, &bytes, semantics)?, fingerprint))
}

/// [`load_passwords_as`], feeding the bytes read into `fingerprint` when there is one (callers
/// without metrics pass `None` and hash nothing).
pub fn load_passwords_fingerprinted(
    path: &str,
    semantics: Semantics,
    fingerprint: Option<&mut Fingerprint>,
) -> Result<PasswordFile, PasswordLoadError> {
    let file = read_password_pieces(path, PasswordFile::builder_as(path, semantics), fingerprint)?;
    refuse_as_21(path, file)
}

/// Reads and compiles the acl file at `path` (Mosquitto 2.0 semantics). A missing or unreadable file is
/// an [`AclError`] on line 0.
pub fn load_policy(path: &str) -> Result<Policy, AclError> {
    load_policy_as(path, Semantics::Mosquitto20)
}

/// [`load_policy`], deciding as Mosquitto `semantics`.
pub fn load_policy_as(path: &str, semantics: Semantics) -> Result<Policy, AclError> {
    Ok(Policy::compile(load_acl_as(path, semantics)?))
}

/// [`load_policy_as`], compiled only for clients with `username` ([`Policy::compile_for`]): one
/// client's answer from a large file, without building every user's rules.
pub fn load_policy_for(
    path: &str,
    semantics: Semantics,
    username: Option<&str>,
) -> Result<Policy, AclError> {
    Ok(Policy::compile_for(load_acl_as(path, semantics)?, username))
}

/// Reads and parses the acl file at `path` for Mosquitto `semantics`, keeping the warnings Mosquitto
/// would log ([`AclFile::warnings`]) for the caller to log; [`Policy::compile`] makes it a policy. A
/// missing or unreadable file is an [`AclError`] on line 0 ([`AclErrorKind::Unreadable`]).
pub fn load_acl_as(path: &str, semantics: Semantics) -> Result<AclFile, AclError> {
    parse_acl_as(path, &read_acl_bytes(path)?, semantics)
}

fn read_acl_bytes(path: &str) -> Result<Vec<u8>, AclError> {
    std::fs::read(path).map_err(|e| AclError {
        path: path.to_owned(),
        line: 0,
        kind: AclErrorKind::Unreadable(e.to_string()),
    })
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

/// Why a password file could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordLoadError {
    /// The file could not be opened or read.
    #[error("Unable to open password file \"{path}\": {reason}")]
    Unreadable {
        /// The file name as given.
        path: String,
        /// What the operating system said.
        reason: String,
    },
    /// Mosquitto 2.1's reading of the file refuses it as a whole ([`PasswordFile::refusal`]).
    #[error("{path}:{line}: {message}{REFUSED_WHOLE}")]
    Refused {
        /// The file name as given.
        path: String,
        /// The first line 2.1 refuses.
        line: u32,
        /// What is wrong there and what was expected.
        message: String,
    },
}

/// What follows the reason of a [`PasswordLoadError::Refused`], in its message and in its
/// [`PasswordLoadError::reason`].
const REFUSED_WHOLE: &str =
    "; Mosquitto 2.1 refuses the whole file, and so do we with its semantics";

impl PasswordLoadError {
    /// What is wrong, without the file name (for callers that name the file themselves).
    pub fn reason(&self) -> String {
        match self {
            PasswordLoadError::Unreadable { reason, .. } => reason.clone(),
            PasswordLoadError::Refused { line, message, .. } => {
                format!("line {line}: {message}{REFUSED_WHOLE}")
            }
        }
    }
}

/// Reads and parses the password file at `path` as Mosquitto 2.0 does. A missing or unreadable file is an
/// error naming it; the contents never are (unusable lines become [`PasswordFile::warnings`], as
/// Mosquitto drops them).
///
/// The file is read in pieces, so that only the parsed entries are ever in memory, never the file whole.
pub fn load_passwords(path: &str) -> Result<PasswordFile, PasswordLoadError> {
    load_passwords_as(path, Semantics::Mosquitto20)
}

/// [`load_passwords`] as Mosquitto `semantics` reads the file: with 2.1's, a file that 2.1's password-file
/// plugin refuses as a whole is an error naming the first line it refuses.
pub fn load_passwords_as(
    path: &str,
    semantics: Semantics,
) -> Result<PasswordFile, PasswordLoadError> {
    read_passwords(path, PasswordFile::builder_as(path, semantics))
}

/// Reads the password file as Mosquitto `semantics` does without turning 2.1's refusal of the whole file
/// into an error: the [`PasswordFile::refusal`] is left for the caller to report (`lint` does).
pub fn read_passwords_as(
    path: &str,
    semantics: Semantics,
) -> Result<PasswordFile, PasswordLoadError> {
    read_password_pieces(path, PasswordFile::builder_as(path, semantics), None)
}

/// [`load_passwords`], keeping only the lines of `username`: what answering for one user needs, in
/// little memory however large the file is.
pub fn load_passwords_of(path: &str, username: &str) -> Result<PasswordFile, PasswordLoadError> {
    load_passwords_of_as(path, username, Semantics::Mosquitto20)
}

/// [`load_passwords_of`] as Mosquitto `semantics` reads the file (see [`load_passwords_as`]).
pub fn load_passwords_of_as(
    path: &str,
    username: &str,
    semantics: Semantics,
) -> Result<PasswordFile, PasswordLoadError> {
    read_passwords(
        path,
        PasswordFile::builder_as(path, semantics).only_user(username),
    )
}

fn read_passwords(
    path: &str,
    builder: PasswordFileBuilder,
) -> Result<PasswordFile, PasswordLoadError> {
    refuse_as_21(path, read_password_pieces(path, builder, None)?)
}

/// `file`, or the error of Mosquitto 2.1's refusal of it as a whole.
fn refuse_as_21(path: &str, file: PasswordFile) -> Result<PasswordFile, PasswordLoadError> {
    match file.refusal() {
        Some(refusal) => Err(PasswordLoadError::Refused {
            path: path.to_owned(),
            line: refusal.line,
            message: refusal.message.clone(),
        }),
        None => Ok(file),
    }
}

/// Reads the file in pieces into `builder` (and `fingerprint`).
fn read_password_pieces(
    path: &str,
    mut builder: PasswordFileBuilder,
    mut fingerprint: Option<&mut Fingerprint>,
) -> Result<PasswordFile, PasswordLoadError> {
    use std::io::Read;
    const PIECE: usize = 1 << 20;
    let error = |e: std::io::Error| PasswordLoadError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(error)?;
    if let Ok(meta) = file.metadata() {
        builder.reserve(usize::try_from(meta.len()).unwrap_or(0));
    }
    let mut piece = vec![0u8; PIECE];
    loop {
        match file.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(f) = fingerprint.as_deref_mut() {
                    f.0.update(&piece[..n]);
                }
                builder.feed(&piece[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(error(e)),
        }
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_bytes_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let acl = dir.path().join("acl");
        let users = dir.path().join("users");
        std::fs::write(&acl, "topic a\n").unwrap();
        std::fs::write(&users, "").unwrap();
        let (acl, users) = (acl.to_str().unwrap(), users.to_str().unwrap());
        let fingerprint = || {
            let (_, mut f) = load_acl_fingerprinted(acl, Semantics::Mosquitto20).unwrap();
            load_passwords_fingerprinted(users, Semantics::Mosquitto20, Some(&mut f)).unwrap();
            f.finish()
        };
        // sha256sum of "topic a\n", a NUL and the empty password file.
        let expected = format!("sha256:{:x}", Sha256::digest(b"topic a\n\0"));
        assert_eq!(fingerprint(), expected);
        assert_eq!(Fingerprint::of_acl(Some(b"topic a\n")).finish(), expected);
        std::fs::write(users, "user1:x\n").unwrap();
        let with_user = fingerprint();
        assert_eq!(
            with_user,
            format!("sha256:{:x}", Sha256::digest(b"topic a\n\0user1:x\n"))
        );
        // No acl file counts as an empty one.
        assert_eq!(
            Fingerprint::of_acl(None).finish(),
            format!("sha256:{:x}", Sha256::digest(b"\0"))
        );
    }
}
