//! The shadow policy: a candidate acl file and/or password file loaded beside the live ones
//! (`plugin_opt_shadow_acl_file`, `plugin_opt_shadow_password_file`). Every decision the live policy makes
//! is also taken by the candidate; only the live one decides. Each disagreement is counted, and written as
//! one `"kind":"shadow"` audit record with both reasons, at most [`RECORDS_PER_MINUTE`] a minute (the rest
//! only counted), so a candidate that differs on a busy topic cannot flood the log.
//!
//! A shadow file that does not load (at start or on reload) is logged by the front door and the shadow is
//! absent until a reload loads it: the live policy is never affected.
//!
//! A login is checked against the shadow password file where the live check runs: on a worker thread
//! when the front door hands the live check over ([`super::logins::VerifyPool`]), else on the deciding
//! thread. Either way through the shadow's own caches ([`Shadow::verify_login`]): one for the passwords
//! it accepted and, since the shadow decides nothing, one for those it refused, so that a login seen
//! before (agreeing or not) costs a keyed MAC instead of a hash. [`Shadow::answers_at_once`] tells a
//! front door whether the shadow would need a hash, so that it can hand the check over even when the
//! live cache knows the login.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::logins::{denial, LoginCache};
use super::metrics::Metrics;
use crate::audit::{AuditRecord, LoginDenial, Peer};
use crate::policy::acl::{Explanation, Policy};
use crate::policy::passwd::{AuthResult, PasswordFile};
use crate::policy::{Access, ClientRef, Decision, Reason, Semantics};

/// At most this many `shadow` audit records a minute; further disagreements are only counted.
pub const RECORDS_PER_MINUTE: u32 = 60;

/// A fixed-window rate limiter with an injected clock (the front door's audit clock: a clock set back
/// starts a new window).
#[derive(Debug)]
pub struct RateLimiter {
    per_window: u32,
    window: Duration,
    start: Option<SystemTime>,
    used: u32,
}

impl RateLimiter {
    /// At most `per_window` in each `window`.
    pub fn new(per_window: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            per_window,
            window,
            start: None,
            used: 0,
        }
    }

    /// May one more go out at `now`?
    pub fn admit(&mut self, now: SystemTime) -> bool {
        match self.start.map(|start| now.duration_since(start)) {
            Some(Ok(since)) if since < self.window => {}
            _ => {
                self.start = Some(now);
                self.used = 0;
            }
        }
        if self.used < self.per_window {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

/// What comparing one ACL decision with the shadow policy found.
#[derive(Debug)]
pub enum Compared {
    /// Both agree (or the shadow has no acl file, or the decision is not the acl file's).
    Agree,
    /// They disagree (counted): the record to write, or `None` when the rate limit holds it back.
    Disagree(Option<Box<AuditRecord>>),
}

impl Compared {
    /// The record to write, if any.
    pub fn record(self) -> Option<AuditRecord> {
        match self {
            Compared::Agree | Compared::Disagree(None) => None,
            Compared::Disagree(Some(r)) => Some(*r),
        }
    }
}

/// The candidate policy (see the module documentation).
#[derive(Debug)]
pub struct Shadow {
    acl: Option<Policy>,
    passwords: Option<Arc<PasswordFile>>,
    /// Logins the shadow password file accepted, and those it refused (wrong password).
    logins: Mutex<ShadowLogins>,
    limiter: Mutex<RateLimiter>,
}

/// The shadow's two login caches (see the module documentation).
#[derive(Debug, Default)]
struct ShadowLogins {
    accepted: LoginCache,
    refused: LoginCache,
}

impl ShadowLogins {
    /// The verdict remembered for this login, if any.
    fn recall(
        &mut self,
        passwords: &PasswordFile,
        name: &str,
        password: &[u8],
    ) -> Option<AuthResult> {
        if self.accepted.remembers(passwords, name, password) {
            Some(AuthResult::Accepted)
        } else if self.refused.remembers(passwords, name, password) {
            Some(AuthResult::WrongPassword)
        } else {
            None
        }
    }
}

impl Shadow {
    /// Loads the shadow files that are named (deciding as Mosquitto `semantics`). `Ok(None)` when neither
    /// is named. The error names the option and the file.
    pub fn load(
        acl_file: Option<&str>,
        password_file: Option<&str>,
        semantics: Semantics,
    ) -> Result<Option<Shadow>, String> {
        if acl_file.is_none() && password_file.is_none() {
            return Ok(None);
        }
        let acl = match acl_file {
            Some(path) => Some(
                crate::load::load_policy_as(path, semantics)
                    .map_err(|e| format!("shadow acl file (plugin_opt_shadow_acl_file): {e}"))?,
            ),
            None => None,
        };
        let passwords = match password_file {
            Some(path) => Some(Arc::new(crate::load::load_passwords_as(path, semantics).map_err(|e| {
                format!(
                    "cannot read the shadow password file {path:?} (plugin_opt_shadow_password_file): {}",
                    e.reason()
                )
            })?)),
            None => None,
        };
        Ok(Some(Shadow::new(acl, passwords)))
    }

    /// A shadow of already loaded parts.
    pub fn new(acl: Option<Policy>, passwords: Option<Arc<PasswordFile>>) -> Shadow {
        Shadow {
            acl,
            passwords,
            logins: Mutex::default(),
            limiter: Mutex::new(RateLimiter::new(
                RECORDS_PER_MINUTE,
                Duration::from_secs(60),
            )),
        }
    }

    /// One line for the log: what the shadow compares.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.acl {
            parts.push(format!(
                "acl file {:?} ({} rules)",
                p.path(),
                p.rules().len()
            ));
        }
        if let Some(p) = &self.passwords {
            parts.push(format!("password file {:?} ({} users)", p.path(), p.len()));
        }
        format!("shadow policy: {}", parts.join(", "))
    }

    /// Does the shadow have an acl file to compare ACL decisions with?
    pub fn has_acl(&self) -> bool {
        self.acl.is_some()
    }

    /// Does the shadow have a password file to compare logins with?
    pub fn has_passwords(&self) -> bool {
        self.passwords.is_some()
    }

    /// Takes the decision the live policy took as `live` with the candidate too. [`Compared::Agree`] is
    /// the common case (allocation-free); a disagreement is counted, with the audit record to write
    /// unless the rate limit holds it back (counted as suppressed). `explain_live` spells out the live
    /// decision (called only for a record).
    #[allow(clippy::too_many_arguments)] // the decision's parts, the clock and the two sinks
    pub fn compare_acl(
        &self,
        who: ClientRef<'_>,
        topic: &str,
        access: Access,
        live: Decision,
        explain_live: impl FnOnce() -> Explanation,
        address: Option<&str>,
        now: SystemTime,
        metrics: Option<&Metrics>,
    ) -> Compared {
        let Some(policy) = self.acl.as_ref() else {
            return Compared::Agree;
        };
        if matches!(
            live.reason,
            Reason::SubscribeUnchecked | Reason::UnsubscribeUnchecked
        ) {
            // Not a decision of the acl file: nothing to compare.
            return Compared::Agree;
        }
        let shadow = policy.decide(who, topic, access);
        if shadow.verdict == live.verdict {
            return Compared::Agree;
        }
        if let Some(m) = metrics {
            m.shadow_disagreement(Some(access));
        }
        if !self.admit(now, metrics) {
            return Compared::Disagree(None);
        }
        let shadow = policy.explain_decision(who, topic, access, shadow);
        Compared::Disagree(Some(Box::new(AuditRecord::shadow_acl(
            now,
            address,
            explain_live(),
            shadow,
        ))))
    }

    /// Whether [`Shadow::verify_login`] would answer for this login without a password hash: there is
    /// no shadow password file, no password, no usable entry for the user, or the login was seen
    /// before. A front door that hands slow checks to workers asks this before answering a login from
    /// its live cache.
    pub fn answers_at_once(&self, username: &str, password: Option<&[u8]>) -> bool {
        let (Some(passwords), Some(password)) = (self.passwords.as_deref(), password) else {
            return true;
        };
        passwords.entry_hash(username).is_none()
            || self
                .logins()
                .recall(passwords, username, password)
                .is_some()
    }

    /// Checks a login against the shadow password file (`None` when there is none), through the
    /// shadow's caches: a hash only for a login not seen before. Any thread; the caches are not held
    /// during a hash.
    pub fn verify_login(&self, username: &str, password: Option<&[u8]>) -> Option<AuthResult> {
        let passwords = self.passwords.as_deref()?;
        let Some(password) = password else {
            return Some(passwords.verify(username, None));
        };
        if let Some(known) = self.logins().recall(passwords, username, password) {
            return Some(known);
        }
        let result = passwords.verify(username, Some(password));
        let mut logins = self.logins();
        match result {
            AuthResult::Accepted => logins.accepted.remember(passwords, username, password),
            AuthResult::WrongPassword => logins.refused.remember(passwords, username, password),
            _ => {}
        }
        Some(result)
    }

    fn logins(&self) -> std::sync::MutexGuard<'_, ShadowLogins> {
        self.logins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Compares a login the live policy decided as `live` (`None`: accepted) with the shadow password
    /// file's verdict `shadow` ([`Shadow::verify_login`], taken wherever the live check ran; `None`:
    /// nothing to compare). Returns the record of a disagreement, as [`Shadow::compare_acl`].
    pub fn compare_login(
        &self,
        peer: Peer<'_>,
        shadow: Option<&AuthResult>,
        live: Option<&LoginDenial>,
        now: SystemTime,
        metrics: Option<&Metrics>,
    ) -> Option<AuditRecord> {
        let passwords = self.passwords.as_deref()?;
        peer.username?;
        let shadow = denial(shadow?, passwords);
        if shadow.is_none() == live.is_none() {
            return None;
        }
        if let Some(m) = metrics {
            m.shadow_disagreement(None);
        }
        if !self.admit(now, metrics) {
            return None;
        }
        Some(AuditRecord::shadow_login(now, peer, live.cloned(), shadow))
    }

    fn admit(&self, now: SystemTime, metrics: Option<&Metrics>) -> bool {
        let admitted = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(now);
        if !admitted {
            if let Some(m) = metrics {
                m.shadow_record_suppressed();
            }
        }
        admitted
    }
}

#[cfg(test)]
mod tests;
