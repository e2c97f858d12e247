//! The plugin's state and its answers to the broker's events, in safe Rust.
//!
//! [`super::ffi`] turns each C call into one method call here; everything here can be tested without a
//! broker (see the tests at the end, which use [`super::host::ClientValues`] and a recording [`Host`]).
//!
//! Which callbacks are registered follows from the options, so that the broker's chain comes out exactly
//! as with its built-in `password_file` / `acl_file` (mosquitto-semantics §1.4):
//! * BASIC_AUTH only with `plugin_opt_password_file`. Without a password file the built-in check does not
//!   exist either, and then `allow_anonymous` decides for *every* client; a registered callback that always
//!   defers would instead make the broker refuse every client that sends a username.
//! * ACL_CHECK (and DISCONNECT, to forget withheld-delivery counts) only with `plugin_opt_acl_file`, for the
//!   same reason: with no ACL callback at all the broker allows everything, with an all-deferring one it
//!   denies everything.
//! * RELOAD always (to re-read the files and reopen the audit log).
//! * TICK on 2.1 with a password file (delayed logins are answered there), and whenever
//!   `plugin_opt_listen_backlog` is not 0: the broker opens its listeners only after loading its
//!   plugins, so the first tick is the first moment their backlog can be raised.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::os::raw::c_int;
use std::sync::Arc;
use std::time::SystemTime;

use super::host::{Client, Host, LogLevel, Text};
use super::memo::{DecisionMemo, RawCheck};
use super::options::{trailing_space_hint, PluginOptions};
use super::outcome::Outcome;
use super::sink::AuditSink;
use super::sys;
use crate::audit::{AuditRecord, LoginDenial, Peer, Withheld, WithheldDeliveries};
use crate::enforce::logins::{denial, LoginCache};
use crate::enforce::metrics::Metrics;
use crate::enforce::shadow::Compared;
use crate::exposition::Exposition;
use crate::policy::acl::{Explanation, ReasonDetail};
use crate::policy::passwd::{AuthResult, PasswordFile};
use crate::policy::{Access, ClientRef, Decision, Reason, Semantics, Verdict};
pub use delayed::Completion;
use delayed::DelayedLogins;
use files::{describe, load_files, Files};
pub use files::{load_acl, load_passwords, LoadError};

/// How many (client, topic) pairs of withheld deliveries are remembered before further ones are only
/// counted.
pub const WITHHELD_CAPACITY: usize = 100_000;

/// The events the plugin can register for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `MOSQ_EVT_RELOAD`: SIGHUP.
    Reload,
    /// `MOSQ_EVT_ACL_CHECK`: publish, subscribe, unsubscribe, delivery.
    AclCheck,
    /// `MOSQ_EVT_BASIC_AUTH`: CONNECT with username and password.
    BasicAuth,
    /// `MOSQ_EVT_DISCONNECT`: a client went away.
    Disconnect,
    /// `MOSQ_EVT_TICK`: called often on the broker's thread; delayed logins are answered here
    /// (Mosquitto 2.1), and the first one raises the listeners' backlog (`plugin_opt_listen_backlog`).
    Tick,
}

impl Event {
    /// The `MOSQ_EVT_*` value.
    pub fn code(self) -> c_int {
        let code = match self {
            Event::Reload => sys::MOSQ_EVT_RELOAD,
            Event::AclCheck => sys::MOSQ_EVT_ACL_CHECK,
            Event::BasicAuth => sys::MOSQ_EVT_BASIC_AUTH,
            Event::Disconnect => sys::MOSQ_EVT_DISCONNECT,
            Event::Tick => sys::MOSQ_EVT_TICK,
        };
        // The event numbers are 1..=10: they fit.
        code as c_int
    }

    /// The event's name in Mosquitto's header, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Event::Reload => "MOSQ_EVT_RELOAD",
            Event::AclCheck => "MOSQ_EVT_ACL_CHECK",
            Event::BasicAuth => "MOSQ_EVT_BASIC_AUTH",
            Event::Disconnect => "MOSQ_EVT_DISCONNECT",
            Event::Tick => "MOSQ_EVT_TICK",
        }
    }
}

/// The access an ACL check asks about, from its `MOSQ_ACL_*` bit. `None` for anything else.
pub fn access_from_code(code: c_int) -> Option<Access> {
    match code {
        sys::MOSQ_ACL_READ => Some(Access::Read),
        sys::MOSQ_ACL_WRITE => Some(Access::Write),
        sys::MOSQ_ACL_SUBSCRIBE => Some(Access::Subscribe),
        sys::MOSQ_ACL_UNSUBSCRIBE => Some(Access::Unsubscribe),
        _ => None,
    }
}

/// One instance of the plugin (one per `plugin` line; with `per_listener_settings true`, one per listener).
///
/// All callbacks run on the broker's single thread, one at a time, so the state sits in `RefCell`s; no
/// borrow is held across a call back into the broker that could re-enter us.
#[derive(Debug)]
pub struct Plugin {
    options: PluginOptions,
    files: RefCell<Files>,
    audit: RefCell<AuditSink>,
    withheld: RefCell<WithheldDeliveries>,
    /// Recently allowed reads and writes (emptied when the files are reloaded).
    memo: RefCell<DecisionMemo>,
    /// Logins that verified before (emptied when the files are reloaded).
    logins: RefCell<LoginCache>,
    /// Password checks on worker threads, answered later (Mosquitto 2.1's delayed basic auth).
    delayed: Option<DelayedLogins>,
    clock: fn() -> SystemTime,
    /// Whose `acl_file` the plugin decides as: the Mosquitto it is loaded in.
    semantics: Semantics,
    /// The counters, with `plugin_opt_metrics_listen` or `plugin_opt_metrics_textfile` (nothing is
    /// counted without them).
    metrics: Option<Arc<Metrics>>,
    /// The thread serving them; stopped when the plugin is dropped (cleanup).
    exposition: Option<Exposition>,
}

impl Plugin {
    /// Starts the plugin from its `(key, value)` options: reads the options and every file. On error,
    /// the error is logged at ERR (naming the option, the file and the line) and returned; init then
    /// fails and the broker refuses to start.
    pub fn start<'a, I>(options: I, host: &dyn Host) -> Result<Plugin, Outcome>
    where
        I: IntoIterator<Item = Option<(&'a str, &'a str)>>,
    {
        Plugin::start_as(options, host, Semantics::Mosquitto20)
    }

    /// [`Plugin::start`], deciding as the `acl_file` of Mosquitto `semantics` (the broker's release).
    pub fn start_as<'a, I>(
        options: I,
        host: &dyn Host,
        semantics: Semantics,
    ) -> Result<Plugin, Outcome>
    where
        I: IntoIterator<Item = Option<(&'a str, &'a str)>>,
    {
        Plugin::start_full(options, host, SystemTime::now, semantics)
    }

    /// [`Plugin::start`] with an injected clock for audit timestamps.
    pub fn start_with_clock<'a, I>(
        options: I,
        host: &dyn Host,
        clock: fn() -> SystemTime,
    ) -> Result<Plugin, Outcome>
    where
        I: IntoIterator<Item = Option<(&'a str, &'a str)>>,
    {
        Plugin::start_full(options, host, clock, Semantics::Mosquitto20)
    }

    /// [`Plugin::start_as`] with an injected clock.
    pub fn start_full<'a, I>(
        options: I,
        host: &dyn Host,
        clock: fn() -> SystemTime,
        semantics: Semantics,
    ) -> Result<Plugin, Outcome>
    where
        I: IntoIterator<Item = Option<(&'a str, &'a str)>>,
    {
        Plugin::try_start(options, host, clock, semantics).map_err(|e| {
            host.log(
                LogLevel::Err,
                &format!("mqtt-policy: {}; the plugin refuses to start", e.message),
            );
            e.outcome
        })
    }

    fn try_start<'a, I>(
        options: I,
        host: &dyn Host,
        clock: fn() -> SystemTime,
        semantics: Semantics,
    ) -> Result<Plugin, LoadError>
    where
        I: IntoIterator<Item = Option<(&'a str, &'a str)>>,
    {
        let options = PluginOptions::parse(options)?;
        if let Some(version) = options.mosquitto_version.as_deref() {
            let wanted = Semantics::from_version(version).ok_or_else(|| LoadError {
                outcome: Outcome::BadConfig,
                message: format!("plugin_opt_mosquitto_version {version:?}: expected 2.0 or 2.1"),
            })?;
            if wanted != semantics {
                return Err(LoadError {
                    outcome: Outcome::BadConfig,
                    message: format!(
                        "plugin_opt_mosquitto_version {version} asks for {wanted}'s acl_file semantics, \
                         but this broker is {semantics} (the plugin always decides as the broker it is \
                         loaded in: remove the option or correct it)"
                    ),
                });
            }
        }
        let files = load_files(&options, host, semantics)?;
        let audit = AuditSink::open(options.audit_log.as_deref()).map_err(|e| {
            let path = options.audit_log.as_deref().unwrap_or_default();
            LoadError {
                outcome: Outcome::Unavailable,
                message: format!(
                    "cannot open the audit log {path:?} (plugin_opt_audit_log): {e}{}",
                    trailing_space_hint(path)
                ),
            }
        })?;
        if options.acl_file.is_none() && options.password_file.is_none() {
            host.log(
                LogLevel::Warning,
                "mqtt-policy: neither plugin_opt_acl_file nor plugin_opt_password_file is set: \
                 the plugin checks nothing",
            );
        }
        let (metrics, exposition) = if options.has_metrics() {
            let metrics = Metrics::new();
            metrics.policy_loaded(
                files.fingerprint.clone().unwrap_or_default(),
                Arc::clone(&files.hits),
            );
            metrics.set_shadow_loaded(files.shadow.is_some());
            let exposition = Exposition::start(
                options.metrics_listen.as_deref(),
                options.metrics_textfile.as_deref(),
                Arc::clone(&metrics),
            )
            .map_err(|message| LoadError {
                outcome: Outcome::Unavailable,
                message,
            })?;
            if let Some(addr) = exposition.as_ref().and_then(|e| e.local_addr) {
                host.log(
                    LogLevel::Info,
                    &format!("mqtt-policy: serving metrics at http://{addr}/metrics"),
                );
            }
            (Some(metrics), exposition)
        } else {
            (None, None)
        };
        host.log(LogLevel::Info, &describe(&options, &files, semantics));
        Ok(Plugin {
            options,
            files: RefCell::new(files),
            audit: RefCell::new(audit),
            withheld: RefCell::new(WithheldDeliveries::new(WITHHELD_CAPACITY)),
            memo: RefCell::new(DecisionMemo::new()),
            logins: RefCell::new(LoginCache::new()),
            delayed: None,
            clock,
            semantics,
            metrics,
            exposition,
        })
    }

    /// The options the plugin was started with.
    pub fn options(&self) -> &PluginOptions {
        &self.options
    }

    /// The events to register, in order (see the module documentation for why these).
    pub fn events(&self) -> Vec<Event> {
        let mut events = vec![Event::Reload];
        if self.options.password_file.is_some() {
            events.push(Event::BasicAuth);
        }
        if self.options.acl_file.is_some() {
            events.push(Event::AclCheck);
            events.push(Event::Disconnect);
        }
        if self.delayed.is_some() || self.options.listen_backlog > 0 {
            events.push(Event::Tick);
        }
        events
    }

    /// Was exactly this read or write allowed by [`Plugin::acl_check`] since the policy was last loaded?
    /// The fast path for repeated checks: bytes compared, nothing decoded. `false` means "ask
    /// [`Plugin::acl_check`]", never "denied".
    #[inline]
    pub fn remembered(&self, check: &RawCheck<'_>) -> bool {
        let Some(reason) = self.memo.borrow().allowed(check) else {
            return false;
        };
        if let Some(m) = &self.metrics {
            m.decided(
                check.access,
                Decision::allow(reason),
                &self.files.borrow().hits,
            );
        }
        true
    }

    /// The counters, if metrics are on.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// The address `/metrics` is served at, if any.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.exposition.as_ref().and_then(|e| e.local_addr)
    }

    /// `MOSQ_EVT_ACL_CHECK`: may `client` do `access` (a `MOSQ_ACL_*` bit) on `topic`?
    ///
    /// Allowed reads and writes allocate nothing: the identity is borrowed from the broker for the call.
    pub fn acl_check(
        &self,
        host: &dyn Host,
        client: &impl Client,
        topic: Text<'_>,
        access: c_int,
    ) -> Outcome {
        let files = self.files.borrow();
        let Some(policy) = files.acl.as_deref() else {
            return Outcome::Defer;
        };
        let Some(access) = access_from_code(access) else {
            host.log(
                LogLevel::Warning,
                &format!("mqtt-policy: ACL check with unknown access {access}: denied"),
            );
            return Outcome::DenyAccess;
        };
        if access == Access::Unsubscribe
            || (access == Access::Subscribe && !self.options.refuse_subscriptions)
        {
            // Mosquitto's acl_file never checks unsubscribing, nor (2.0 and 2.1 alike) subscribing:
            // neither do we, unsubscribing always, subscribing with `refuse_subscriptions false`.
            if let Some(m) = &self.metrics {
                m.decided(
                    access,
                    Decision::allow(Reason::SubscribeUnchecked),
                    &files.hits,
                );
            }
            return Outcome::Allow;
        }
        let username = match client.username() {
            Text::Absent => None,
            Text::Utf8(name) => Some(name),
            Text::NotUtf8(_) => return self.deny_unreadable(host, client, topic, access),
        };
        let Text::Utf8(client_id) = client.id() else {
            return self.deny_unreadable(host, client, topic, access);
        };
        let Text::Utf8(topic_name) = topic else {
            return self.deny_unreadable(host, client, topic, access);
        };
        let who = ClientRef {
            username,
            client_id,
        };
        let decision = match &self.metrics {
            Some(m) => m.decide(access, &files.hits, || {
                policy.decide(who, topic_name, access)
            }),
            None => policy.decide(who, topic_name, access),
        };
        // With a shadow policy, only checks it agrees with are remembered: a remembered check then
        // needs no comparison.
        let agreed = match &files.shadow {
            None => true,
            Some(shadow) => {
                let record = shadow.compare_acl(
                    who,
                    topic_name,
                    access,
                    decision,
                    || policy.explain_decision(who, topic_name, access, decision),
                    client.address().lossy().as_deref(),
                    (self.clock)(),
                    self.metrics.as_deref(),
                );
                match record {
                    Compared::Agree => true,
                    Compared::Disagree(record) => {
                        if let Some(record) = record {
                            self.write_audit(host, record.with_semantics(self.semantics));
                        }
                        false
                    }
                }
            }
        };
        if decision.verdict == Verdict::Allow {
            if agreed && matches!(access, Access::Read | Access::Write) {
                self.memo
                    .borrow_mut()
                    .remember(&RawCheck::new(who, topic_name, access), decision.reason);
            }
            return Outcome::Allow;
        }
        if access == Access::Read {
            if let Some(m) = &self.metrics {
                m.withheld();
            }
            if self.withheld.borrow_mut().note(client_id, topic_name) != Withheld::First {
                return Outcome::DenyAccess;
            }
        }
        let explanation = policy.explain_decision(who, topic_name, access, decision);
        self.record(host, client, explanation);
        Outcome::from(decision.verdict)
    }

    /// Denies a check whose username, client id or topic is missing or not UTF-8 (the broker should never
    /// pass one), with an audit record that shows what could be shown.
    fn deny_unreadable(
        &self,
        host: &dyn Host,
        client: &impl Client,
        topic: Text<'_>,
        access: Access,
    ) -> Outcome {
        let reason = match access {
            Access::Subscribe | Access::Unsubscribe => ReasonDetail::InvalidFilter,
            Access::Read | Access::Write => ReasonDetail::InvalidTopic,
        };
        let explanation = Explanation {
            verdict: Verdict::Deny,
            access,
            topic: topic.lossy().unwrap_or_default(),
            username: client.username().lossy(),
            client_id: client.id().lossy().unwrap_or_default(),
            reason,
            near_misses: Vec::new(),
        };
        host.log(
            LogLevel::Notice,
            "mqtt-policy: denied an ACL check whose username, client id or topic is missing or not UTF-8",
        );
        if let Some(m) = &self.metrics {
            m.decided(
                access,
                Decision::deny(Reason::InvalidTopic),
                &self.files.borrow().hits,
            );
        }
        self.record(host, client, explanation);
        Outcome::DenyAccess
    }

    fn record(&self, host: &dyn Host, client: &impl Client, explanation: Explanation) {
        let address = client.address().lossy();
        let record = AuditRecord::acl((self.clock)(), address.as_deref(), explanation)
            .with_semantics(self.semantics);
        self.write_audit(host, record);
    }

    fn write_audit(&self, host: &dyn Host, record: AuditRecord) {
        self.audit.borrow_mut().write(host, &record);
    }

    /// `MOSQ_EVT_BASIC_AUTH`: CONNECT with a username (and maybe a password).
    ///
    /// As Mosquitto's own password file: no username defers (so `allow_anonymous` decides), a good
    /// password is accepted, anything else is refused (CONNACK 5 / 0x87) with an audit record. The
    /// password is borrowed for the call and never copied, logged or recorded.
    pub fn basic_auth(
        &self,
        host: &dyn Host,
        client: &impl Client,
        username: Text<'_>,
        password: Option<&[u8]>,
    ) -> Outcome {
        let files = self.files.borrow();
        let Some(shared) = files.passwords.as_ref() else {
            return Outcome::Defer;
        };
        let passwords: &PasswordFile = shared;
        let shadow = files.shadow.clone();
        let (denial, shadow) = match username {
            Text::Absent => return Outcome::Defer,
            // Not a name the file can hold (the broker validates UTF-8, so this should not happen).
            Text::NotUtf8(_) => (Some(LoginDenial::UnknownUser), None),
            Text::Utf8(name) => 'verdict: {
                // Checked here, through its caches, unless a worker checks it with the live one.
                let shadow_now = || shadow.as_ref().and_then(|s| s.verify_login(name, password));
                if let Some(password) = password {
                    // A login the live cache knows is answered now, unless the shadow would need
                    // a hash for it and a worker can take it.
                    let at_once = self.delayed.is_none()
                        || shadow
                            .as_ref()
                            .is_none_or(|s| s.answers_at_once(name, Some(password)));
                    if at_once && self.logins.borrow_mut().accepts(passwords, name, password) {
                        break 'verdict (None, shadow_now());
                    }
                    if self.delay(host, client, name, password, shared, shadow.as_ref()) {
                        return Outcome::Delayed;
                    }
                }
                let result = passwords.verify(name, password);
                if let Some(password) = password {
                    let mut logins = self.logins.borrow_mut();
                    logins.record(passwords, name, password, &result);
                }
                (denial(&result, passwords), shadow_now())
            }
        };
        drop(files);
        let username = username.lossy();
        let client_id = client.id().lossy();
        let address = client.address().lossy();
        let peer = Peer {
            username: username.as_deref(),
            client_id: client_id.as_deref(),
            address: address.as_deref(),
        };
        self.login_outcome(host, peer, shadow, denial)
    }

    /// A login the live password file decided (`None`: accepted): counted, compared with the shadow
    /// password file's verdict `shadow` ([`crate::enforce::shadow::Shadow::verify_login`]), and a
    /// refusal audited.
    fn login_outcome(
        &self,
        host: &dyn Host,
        peer: Peer<'_>,
        shadow: Option<AuthResult>,
        denial: Option<LoginDenial>,
    ) -> Outcome {
        if let Some(m) = &self.metrics {
            m.login(denial.as_ref().map_or(Ok(()), Err));
        }
        if let Some(candidate) = &self.files.borrow().shadow {
            let now = (self.clock)();
            if let Some(record) = candidate.compare_login(
                peer,
                shadow.as_ref(),
                denial.as_ref(),
                now,
                self.metrics.as_deref(),
            ) {
                self.write_audit(host, record.with_semantics(self.semantics));
            }
        }
        match denial {
            None => Outcome::Allow,
            Some(denial) => self.refuse_login(host, peer, denial),
        }
    }

    /// Writes the audit record of a refused login.
    fn refuse_login(&self, host: &dyn Host, peer: Peer<'_>, denial: LoginDenial) -> Outcome {
        let record =
            AuditRecord::login((self.clock)(), peer, denial).with_semantics(self.semantics);
        self.audit.borrow_mut().write(host, &record);
        Outcome::RefuseLogin
    }

    /// `MOSQ_EVT_RELOAD` (SIGHUP): re-reads every file. If any file is missing or malformed, nothing
    /// changes and the log says why. Always [`Outcome::Defer`]: in 2.0 any other answer stops the reload
    /// chain, and an error also stops the broker from reloading its own files. (On 2.1 the C layer
    /// answers SUCCESS instead: there any non-zero answer shuts the broker down.)
    pub fn reload(&self, host: &dyn Host) -> Outcome {
        match load_files(&self.options, host, self.semantics) {
            Ok(files) => {
                host.log(
                    LogLevel::Info,
                    &format!(
                        "{} (reloaded)",
                        describe(&self.options, &files, self.semantics)
                    ),
                );
                if let Some(m) = &self.metrics {
                    m.reloaded(true);
                    m.policy_loaded(
                        files.fingerprint.clone().unwrap_or_default(),
                        Arc::clone(&files.hits),
                    );
                    m.set_shadow_loaded(files.shadow.is_some());
                }
                *self.files.borrow_mut() = files;
                self.memo.borrow_mut().clear();
                self.logins.borrow_mut().clear();
            }
            Err(e) => {
                if let Some(m) = &self.metrics {
                    m.reloaded(false);
                }
                host.log(
                    LogLevel::Err,
                    &format!(
                        "mqtt-policy: reload failed, the previous policy stays in force: {}",
                        e.message
                    ),
                )
            }
        }
        self.audit.borrow_mut().reopen(host);
        Outcome::Defer
    }

    /// `MOSQ_EVT_DISCONNECT`: forgets the client's withheld-delivery counts, logging the total.
    pub fn disconnect(&self, host: &dyn Host, client: &impl Client) -> Outcome {
        if let Text::Utf8(id) = client.id() {
            let withheld = self.withheld.borrow_mut().forget_client(id);
            if withheld > 1 {
                host.log(
                    LogLevel::Info,
                    &format!(
                        "mqtt-policy: {withheld} deliveries to client {id:?} were withheld \
                         (the audit log records each topic once)"
                    ),
                );
            }
        }
        Outcome::Allow
    }
}

mod delayed;
mod files;

#[cfg(test)]
mod tests;
