//! What a callback answers, in our words, and the one place where that becomes a `MOSQ_ERR_*` code.
//!
//! The broker reads a callback's return value differently per event (mosquitto-semantics §1.3); the
//! handlers in [`super::callbacks`] choose an [`Outcome`] with that table in mind, and
//! [`return_code`] is the only function that knows the numbers.

#![forbid(unsafe_code)]

use std::os::raw::c_int;

use super::sys;
use crate::policy::Verdict;

/// `MOSQ_ERR_AUTH_DELAYED` of Mosquitto 2.1's `include/mosquitto/defs.h` (2.0's headers, which the
/// bindings come from, lack it).
pub const MOSQ_ERR_AUTH_DELAYED: c_int = -5;

/// The answer of a plugin entry point or callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Login accepted, access granted, or an entry point succeeded (`MOSQ_ERR_SUCCESS`).
    Allow,
    /// Access refused: PUBLISH rejected (v5 PUBACK/PUBREC 0x87), SUBSCRIBE refused (SUBACK 0x87 / 0x80),
    /// delivery skipped (`MOSQ_ERR_ACL_DENIED`). The only denial an ACL check may return.
    DenyAccess,
    /// Login refused: CONNACK 5 / v5 0x87 (`MOSQ_ERR_AUTH`). Only for BASIC_AUTH.
    RefuseLogin,
    /// Login answered later, through `mosquitto_complete_basic_auth` (`MOSQ_ERR_AUTH_DELAYED`). Only
    /// for BASIC_AUTH, and only in Mosquitto 2.1: 2.0 does not know the code.
    Delayed,
    /// No opinion: the next callback in the chain decides (`MOSQ_ERR_PLUGIN_DEFER`). What RELOAD always
    /// returns, because in 2.0 anything else stops the reload chain.
    Defer,
    /// Initialisation failed because the configuration is wrong: an unknown or malformed option, a
    /// malformed file (`MOSQ_ERR_INVAL`, so the broker exits with 3, as it does for its own bad acl line).
    BadConfig,
    /// Initialisation failed for another reason: a missing or unreadable file, a broker without the
    /// functions we need, an internal error (`MOSQ_ERR_UNKNOWN`, so the broker exits with 13, as it does for
    /// its own missing acl file).
    Unavailable,
}

impl From<Verdict> for Outcome {
    /// An ACL verdict as a callback answer.
    fn from(verdict: Verdict) -> Outcome {
        match verdict {
            Verdict::Allow => Outcome::Allow,
            Verdict::Deny => Outcome::DenyAccess,
        }
    }
}

/// The `MOSQ_ERR_*` value the broker receives for `outcome`. The only mapping from our answers to the
/// broker's numbers.
pub fn return_code(outcome: Outcome) -> c_int {
    match outcome {
        Outcome::Allow => sys::MOSQ_ERR_SUCCESS,
        Outcome::DenyAccess => sys::MOSQ_ERR_ACL_DENIED,
        Outcome::RefuseLogin => sys::MOSQ_ERR_AUTH,
        Outcome::Delayed => MOSQ_ERR_AUTH_DELAYED,
        Outcome::Defer => sys::MOSQ_ERR_PLUGIN_DEFER,
        Outcome::BadConfig => sys::MOSQ_ERR_INVAL,
        Outcome::Unavailable => sys::MOSQ_ERR_UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_the_codes_mosquitto_2_0_defines() {
        assert_eq!(return_code(Outcome::Allow), 0);
        assert_eq!(return_code(Outcome::DenyAccess), 12);
        assert_eq!(return_code(Outcome::RefuseLogin), 11);
        assert_eq!(return_code(Outcome::Delayed), -5);
        assert_eq!(return_code(Outcome::Defer), 17);
        assert_eq!(return_code(Outcome::BadConfig), 3);
        assert_eq!(return_code(Outcome::Unavailable), 13);
    }

    #[test]
    fn verdicts_become_acl_answers() {
        assert_eq!(Outcome::from(Verdict::Allow), Outcome::Allow);
        assert_eq!(Outcome::from(Verdict::Deny), Outcome::DenyAccess);
    }
}
