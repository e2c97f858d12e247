//! The policy as the broker uses it: logins against the password file and `allow_anonymous`, and
//! access decisions against the acl file (or, without one, only the fixed broker rules).
//!
//! Immutable once loaded: SIGHUP loads a new [`Security`] and swaps it in whole, keeping the old one if
//! any file fails.

use std::sync::Arc;

use crate::audit::LoginDenial;
use crate::enforce::metrics::RuleHits;
use crate::enforce::shadow::Shadow;
use crate::load::Fingerprint;
use crate::policy::acl::{broker_rules, Explanation, Policy};
use crate::policy::passwd::{AuthResult, PasswordFile};
use crate::policy::{Access, ClientRef, Decision, Reason};

use super::codec::ConnectReason;
use super::config::BrokerConfig;
use super::identity::CertProblem;

/// The loaded policy files.
#[derive(Debug)]
pub struct Security {
    acl: Option<Policy>,
    /// An empty policy, only to spell out decisions of the fixed rules when there is no acl file.
    none: Policy,
    passwords: Option<Arc<PasswordFile>>,
    allow_anonymous: bool,
    /// `plugin_opt_refuse_subscriptions` (default true); false grants every SUBSCRIBE unchecked.
    refuse_subscriptions: bool,
    /// What Mosquitto would warn about in the acl file, as `file:line: warning: ...`.
    acl_warnings: Vec<String>,
    /// Hit counters of the acl file's rules (counted with metrics on).
    hits: Arc<RuleHits>,
    /// The candidate policy (`plugin_opt_shadow_*`), when configured and loaded.
    shadow: Option<Arc<Shadow>>,
    /// Why the configured shadow policy did not load.
    shadow_error: Option<String>,
    /// The live files' fingerprint ([`Fingerprint`]), made as they were read; empty when the config
    /// has no metrics (nothing shows it then).
    fingerprint: String,
    /// No `pattern` mentions `%c`: see [`Security::reads_ignore_client_id`].
    reads_ignore_client_id: bool,
}

impl Security {
    /// Whose `acl_file` semantics the policy applies (`plugin_opt_mosquitto_version`; 2.0 without an
    /// acl file).
    pub fn semantics(&self) -> crate::policy::Semantics {
        self.acl.as_ref().map(Policy::semantics).unwrap_or_default()
    }
}

/// The first step of a login ([`Security::login_step`]).
#[derive(Debug)]
pub enum LoginStep {
    /// Decided without a password check.
    Done(Result<(), LoginRefusal>),
    /// The password must be checked against this file (then [`Security::login_verdict`]).
    Verify(Arc<PasswordFile>),
}

/// Why a login was refused: the CONNACK outcome and the audit reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRefusal {
    /// What the CONNACK says: bad credentials (4 / 0x86) or not authorised (5 / 0x87).
    pub connack: ConnectReason,
    /// Why, for the audit record.
    pub denial: LoginDenial,
}

impl Security {
    /// Loads the files `config` names. Errors name the file and line.
    pub fn load(config: &BrokerConfig) -> Result<Security, String> {
        let mut acl_warnings = Vec::new();
        let (acl, fingerprint) = match &config.acl_file {
            Some(path) => {
                let (file, fingerprint) =
                    crate::load::load_acl_fingerprinted(path, config.semantics)
                        .map_err(|e| e.to_string())?;
                for w in &file.warnings {
                    acl_warnings.push(format!("{path}:{}: warning: {}", w.line, w.message));
                }
                (Some(Policy::compile(file)), fingerprint)
            }
            None => (None, Fingerprint::of_acl(None)),
        };
        // The password file is hashed as it is read only when the counters show the fingerprint.
        let mut fingerprint = config.has_metrics().then_some(fingerprint);
        let passwords = match &config.password_file {
            Some(path) => Some(
                crate::load::load_passwords_fingerprinted(
                    path,
                    config.semantics,
                    fingerprint.as_mut(),
                )
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let mut security = Security::new(acl, passwords, config.allow_anonymous);
        security.fingerprint = fingerprint.map(Fingerprint::finish).unwrap_or_default();
        security.refuse_subscriptions = config.refuse_subscriptions;
        security.acl_warnings = acl_warnings;
        match Shadow::load(
            config.shadow_acl_file.as_deref(),
            config.shadow_password_file.as_deref(),
            config.semantics,
        ) {
            Ok(shadow) => security.shadow = shadow.map(Arc::new),
            Err(e) => security.shadow_error = Some(e),
        }
        Ok(security)
    }

    /// The live files' fingerprint, as the metrics show it (empty without metrics).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// This policy with `shadow` as its candidate policy.
    pub fn with_shadow(mut self, shadow: Shadow) -> Self {
        self.shadow = Some(Arc::new(shadow));
        self
    }

    /// A policy from already loaded parts.
    pub fn new(
        acl: Option<Policy>,
        passwords: Option<PasswordFile>,
        allow_anonymous: bool,
    ) -> Self {
        let passwords = passwords.map(Arc::new);
        let reads_ignore_client_id = acl
            .as_ref()
            .is_none_or(|p| !p.rules().iter().any(|r| r.uses_client_id()));
        Security {
            hits: Arc::new(RuleHits::new(acl.as_ref())),
            shadow: None,
            shadow_error: None,
            fingerprint: String::new(),
            reads_ignore_client_id,
            acl,
            none: Policy::compile(crate::policy::acl::AclFile {
                path: "(no acl_file)".to_owned(),
                rules: Vec::new(),
                warnings: Vec::new(),
                semantics: Default::default(),
            }),
            passwords,
            allow_anonymous,
            refuse_subscriptions: true,
            acl_warnings: Vec::new(),
        }
    }

    /// Warnings from loading (acl lines Mosquitto would warn about, unusable password lines), as
    /// `file:line: ...` lines.
    pub fn warnings(&self) -> Vec<String> {
        let mut all = self.acl_warnings.clone();
        if let Some(p) = &self.passwords {
            all.extend(p.warning_lines());
        }
        all
    }

    /// The hit counters of the acl file's rules.
    pub fn hits(&self) -> &Arc<RuleHits> {
        &self.hits
    }

    /// The shadow policy, if one is loaded.
    pub fn shadow(&self) -> Option<&Arc<Shadow>> {
        self.shadow.as_ref()
    }

    /// Why the configured shadow policy did not load (it is then absent; the live policy is not
    /// affected).
    pub fn shadow_error(&self) -> Option<&str> {
        self.shadow_error.as_deref()
    }

    /// One line describing what is in force.
    pub fn describe(&self) -> String {
        let shadow = self
            .shadow
            .as_ref()
            .map_or(String::new(), |s| format!("; {}", s.describe()));
        format!(
            "acl_file: {}; password_file: {}; allow_anonymous {}{shadow}",
            self.acl.as_ref().map_or(
                "none (everything allowed but the fixed rules)".to_owned(),
                |p| { format!("{} ({} rules)", p.path(), p.rules().len()) }
            ),
            self.passwords
                .as_ref()
                .map_or("none".to_owned(), |p| format!(
                    "{} ({} users)",
                    p.path(),
                    p.len()
                )),
            self.allow_anonymous
        )
    }

    /// Decides a login as Mosquitto 2.0 does, except that bad credentials answer 4 / 0x86. The password
    /// is checked now, on the calling thread ([`Security::login_step`] hands the check over instead).
    pub fn login(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<(), LoginRefusal> {
        match self.login_step(username, password) {
            LoginStep::Done(verdict) => verdict,
            LoginStep::Verify(passwords) => {
                let name = username.unwrap_or_default();
                self.login_verdict(&passwords, &passwords.verify(name, password))
            }
        }
    }

    /// The first step of a login: decided at once (anonymous, no password file, no password), or a
    /// password to check against the returned file (slow: off the router's thread).
    pub fn login_step(&self, username: Option<&str>, password: Option<&[u8]>) -> LoginStep {
        let refuse = |connack, denial| LoginStep::Done(Err(LoginRefusal { connack, denial }));
        let Some(name) = username else {
            if self.allow_anonymous {
                return LoginStep::Done(Ok(()));
            }
            return refuse(
                ConnectReason::NotAuthorized,
                LoginDenial::AnonymousNotAllowed,
            );
        };
        let Some(passwords) = &self.passwords else {
            if self.allow_anonymous {
                return LoginStep::Done(Ok(()));
            }
            return refuse(ConnectReason::NotAuthorized, LoginDenial::NoPasswordFile);
        };
        if password.is_none() {
            // Answered without hashing.
            let verdict = self.login_verdict(passwords, &passwords.verify(name, None));
            return LoginStep::Done(verdict);
        }
        LoginStep::Verify(Arc::clone(passwords))
    }

    /// The verdict on a login whose password check against `passwords` gave `result`.
    pub fn login_verdict(
        &self,
        passwords: &PasswordFile,
        result: &AuthResult,
    ) -> Result<(), LoginRefusal> {
        match crate::enforce::logins::denial(result, passwords) {
            None => Ok(()),
            Some(denial) => Err(LoginRefusal {
                connack: ConnectReason::BadCredentials,
                denial,
            }),
        }
    }

    /// `true` when a read decision is the same for two clients with the same username whose client
    /// ids contain no wildcard: no `pattern` mentions `%c`, and the client id is otherwise only
    /// checked for wildcards (Mosquitto refuses the patterns to such a client).
    pub fn reads_ignore_client_id(&self) -> bool {
        self.reads_ignore_client_id
    }

    /// Decides `access` to `topic` for `client`. Without an acl file only the fixed rules deny.
    pub fn decide(&self, client: ClientRef<'_>, topic: &str, access: Access) -> Decision {
        if access == Access::Subscribe && !self.refuse_subscriptions {
            return Decision::allow(Reason::SubscribeUnchecked);
        }
        match &self.acl {
            Some(policy) => policy.decide(client, topic, access),
            None => {
                broker_rules(topic, access).unwrap_or(Decision::allow(Reason::UnsubscribeUnchecked))
            }
        }
    }

    /// Spells out a decision for an audit record.
    pub fn explain(
        &self,
        client: ClientRef<'_>,
        topic: &str,
        access: Access,
        decision: Decision,
    ) -> Explanation {
        self.acl
            .as_ref()
            .unwrap_or(&self.none)
            .explain_decision(client, topic, access, decision)
    }
}

/// The refusal of a client whose certificate gives no username on a listener that takes usernames
/// from certificates: CONNACK 4 / `0x86` ("bad user name or password"), as Mosquitto answers it.
pub fn certificate_refusal(problem: &CertProblem) -> LoginRefusal {
    LoginRefusal {
        connack: ConnectReason::BadCredentials,
        denial: LoginDenial::Certificate {
            problem: problem.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(allow_anonymous: bool) -> Security {
        let line = crate::policy::passwd::hash_password(
            b"123456",
            crate::policy::passwd::HashKind::Sha512Pbkdf2,
            Some(101),
        );
        let pw = PasswordFile::parse("users.txt", format!("user1:{line}\n").as_bytes());
        let acl = Policy::from_acl("acl.txt", b"pattern readwrite +/+/+/%u\n").unwrap();
        Security::new(Some(acl), Some(pw), allow_anonymous)
    }

    #[test]
    fn bad_credentials_answer_4_and_other_refusals_5() {
        let s = security(false);
        assert!(s.login(Some("user1"), Some(b"123456")).is_ok());
        let e = s.login(Some("user1"), Some(b"ABCDEFG")).unwrap_err();
        assert_eq!(e.connack, ConnectReason::BadCredentials);
        assert_eq!(e.denial, LoginDenial::WrongPassword);
        let e = s.login(Some("nobody"), Some(b"x")).unwrap_err();
        assert_eq!(e.denial, LoginDenial::UnknownUser);
        let e = s.login(None, None).unwrap_err();
        assert_eq!(e.connack, ConnectReason::NotAuthorized);
        assert!(security(true).login(None, None).is_ok());
    }

    #[test]
    fn without_an_acl_file_only_the_fixed_rules_deny() {
        let s = Security::new(None, None, true);
        let c = ClientRef {
            username: None,
            client_id: "c",
        };
        assert!(s.decide(c, "a/b", Access::Write).is_allowed());
        assert!(!s.decide(c, "$SYS/x", Access::Write).is_allowed());
    }
}
