//! Logins: checking a username and password against the password file without stalling the thread
//! that serves every other client.
//!
//! * [`LoginCache`] (`cache.rs`): a client that logged in before costs a keyed MAC, not a hash.
//! * [`VerifyPool`] (`pool.rs`): worker threads that run the slow checks ($7$ with many iterations,
//!   `$argon2id$`) for front doors that can answer later (the broker, Mosquitto 2.1's delayed basic
//!   auth).
//! * [`denial`]: the one mapping from an [`AuthResult`] to the audited [`LoginDenial`].

mod cache;
mod pool;

pub use cache::{LoginCache, CAPACITY};
pub use pool::{Password, VerifyPool};

use crate::audit::LoginDenial;
use crate::policy::passwd::{AuthResult, PasswordFile};

/// Why `result` refuses the login, as an audit record says it; `None` when it is accepted.
pub fn denial(result: &AuthResult, passwords: &PasswordFile) -> Option<LoginDenial> {
    Some(match result {
        AuthResult::Accepted => return None,
        AuthResult::UnknownUser => LoginDenial::UnknownUser,
        AuthResult::WrongPassword => LoginDenial::WrongPassword,
        AuthResult::NoPassword => LoginDenial::NoPassword,
        AuthResult::UnusableEntry { line } => LoginDenial::UnusableEntry {
            entry: format!("{}:{line}", passwords.path()),
        },
    })
}
