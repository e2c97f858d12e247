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

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::os::raw::c_int;
use std::sync::Arc;
use std::time::SystemTime;

use super::host::{Client, Host, LogLevel, Text};
use super::memo::{DecisionMemo, RawCheck};
use super::options::{trailing_space_hint, OptionError, PluginOptions};
use super::outcome::Outcome;
use super::sink::AuditSink;
use super::sys;
use crate::audit::{AuditRecord, LoginDenial, Peer, Withheld, WithheldDeliveries};
use crate::enforce::logins::{denial, LoginCache};
use crate::policy::acl::{parse_acl_as, Explanation, Policy, ReasonDetail};
use crate::policy::passwd::PasswordFile;
use crate::policy::{Access, ClientRef, Semantics, Verdict};
pub use delayed::Completion;
use delayed::DelayedLogins;

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
    /// (Mosquitto 2.1 only).
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
/// logging its warnings.
pub fn load_acl(path: &str, host: &dyn Host, semantics: Semantics) -> Result<Policy, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError {
        outcome: Outcome::Unavailable,
        message: format!(
            "cannot read the acl file {path:?} (plugin_opt_acl_file): {e}{}",
            trailing_space_hint(path)
        ),
    })?;
    let file = parse_acl_as(path, &bytes, semantics).map_err(|e| LoadError {
        outcome: Outcome::BadConfig,
        message: format!("invalid acl file (plugin_opt_acl_file): {e}"),
    })?;
    for w in &file.warnings {
        host.log(
            LogLevel::Warning,
            &format!("mqtt-policy: {path}:{}: warning: {}", w.line, w.message),
        );
    }
    Ok(Policy::compile(file))
}

/// Reads the password file named by `plugin_opt_password_file`, logging what Mosquitto would drop.
///
/// Only a missing or unreadable file is an error: like Mosquitto, unusable lines are dropped with a
/// warning (those users cannot log in), and the file still loads.
pub fn load_passwords(path: &str, host: &dyn Host) -> Result<PasswordFile, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError {
        outcome: Outcome::Unavailable,
        message: format!(
            "cannot read the password file {path:?} (plugin_opt_password_file): {e}{}",
            trailing_space_hint(path)
        ),
    })?;
    let file = PasswordFile::parse(path, &bytes);
    for line in file.warning_lines() {
        host.log(LogLevel::Warning, &format!("mqtt-policy: {line}"));
    }
    Ok(file)
}

/// The files in force: swapped together, as a whole, on a successful reload.
#[derive(Debug, Default)]
struct Files {
    acl: Option<Arc<Policy>>,
    passwords: Option<Arc<PasswordFile>>,
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
        if self.delayed.is_some() {
            events.push(Event::Tick);
        }
        events
    }

    /// Was exactly this read or write allowed by [`Plugin::acl_check`] since the policy was last loaded?
    /// The fast path for repeated checks: bytes compared, nothing decoded. `false` means "ask
    /// [`Plugin::acl_check`]", never "denied".
    #[inline]
    pub fn remembered(&self, check: &RawCheck<'_>) -> bool {
        self.memo.borrow().allowed(check)
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
        let decision = policy.decide(who, topic_name, access);
        if decision.verdict == Verdict::Allow {
            if matches!(access, Access::Read | Access::Write) {
                self.memo
                    .borrow_mut()
                    .remember(&RawCheck::new(who, topic_name, access));
            }
            return Outcome::Allow;
        }
        if access == Access::Read
            && self.withheld.borrow_mut().note(client_id, topic_name) != Withheld::First
        {
            return Outcome::DenyAccess;
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
        self.record(host, client, explanation);
        Outcome::DenyAccess
    }

    fn record(&self, host: &dyn Host, client: &impl Client, explanation: Explanation) {
        let address = client.address().lossy();
        let record = AuditRecord::acl((self.clock)(), address.as_deref(), explanation)
            .with_semantics(self.semantics);
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
        let denial = match username {
            Text::Absent => return Outcome::Defer,
            // Not a name the file can hold (the broker validates UTF-8, so this should not happen).
            Text::NotUtf8(_) => LoginDenial::UnknownUser,
            Text::Utf8(name) => {
                if let Some(password) = password {
                    if self.logins.borrow_mut().accepts(passwords, name, password) {
                        return Outcome::Allow;
                    }
                    if self.delay(host, client, name, password, shared) {
                        return Outcome::Delayed;
                    }
                }
                let result = passwords.verify(name, password);
                if let Some(password) = password {
                    let mut logins = self.logins.borrow_mut();
                    logins.record(passwords, name, password, &result);
                }
                match denial(&result, passwords) {
                    None => return Outcome::Allow,
                    Some(denial) => denial,
                }
            }
        };
        let username = username.lossy();
        let client_id = client.id().lossy();
        let address = client.address().lossy();
        let peer = Peer {
            username: username.as_deref(),
            client_id: client_id.as_deref(),
            address: address.as_deref(),
        };
        self.refuse_login(host, peer, denial)
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
                *self.files.borrow_mut() = files;
                self.memo.borrow_mut().clear();
                self.logins.borrow_mut().clear();
            }
            Err(e) => host.log(
                LogLevel::Err,
                &format!(
                    "mqtt-policy: reload failed, the previous policy stays in force: {}",
                    e.message
                ),
            ),
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

/// Loads every configured file; all or nothing.
fn load_files(
    options: &PluginOptions,
    host: &dyn Host,
    semantics: Semantics,
) -> Result<Files, LoadError> {
    let passwords = match options.password_file.as_deref() {
        Some(path) => Some(Arc::new(load_passwords(path, host)?)),
        None => None,
    };
    let acl = match options.acl_file.as_deref() {
        Some(path) => Some(Arc::new(load_acl(path, host, semantics)?)),
        None => None,
    };
    Ok(Files { acl, passwords })
}

fn describe(options: &PluginOptions, files: &Files, semantics: Semantics) -> String {
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
    match options.audit_log.as_deref() {
        Some(path) => parts.push(format!("audit log {path:?}")),
        None => parts.push("audit records to the broker log".to_owned()),
    }
    format!(
        "mqtt-policy: using {}; deciding as {semantics}'s acl_file",
        parts.join(", ")
    )
}

mod delayed;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::host::ClientValues;
    use std::cell::RefCell;
    use std::time::{Duration, UNIX_EPOCH};

    #[derive(Default)]
    struct Log(RefCell<Vec<(LogLevel, String)>>);

    impl Host for Log {
        fn log(&self, level: LogLevel, message: &str) {
            self.0.borrow_mut().push((level, message.to_owned()));
        }
    }

    impl Log {
        fn take(&self) -> Vec<(LogLevel, String)> {
            std::mem::take(&mut self.0.borrow_mut())
        }
        fn audit(&self) -> Vec<serde_json::Value> {
            self.take()
                .into_iter()
                .filter_map(|(_, m)| {
                    m.strip_prefix(super::super::sink::LOG_PREFIX)
                        .map(str::to_owned)
                })
                .map(|j| serde_json::from_str(&j).unwrap())
                .collect()
        }
    }

    fn fixed_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    const TUTORIAL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn start(acl: &str, log: &Log) -> Plugin {
        Plugin::start_with_clock([Some(("acl_file", acl))], log, fixed_clock).unwrap()
    }

    const USER1: ClientValues<'static> = ClientValues {
        username: Some("user1"),
        id: Some("c1"),
        address: Some("127.0.0.1"),
    };

    fn t(s: &str) -> Text<'_> {
        Text::Utf8(s)
    }

    #[test]
    fn acl_checks_follow_the_acl_file_and_deny_with_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", TUTORIAL);
        let log = Log::default();
        let plugin = start(&acl, &log);
        log.take();
        let w = sys::MOSQ_ACL_WRITE;
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("a/b/c/user1"), w),
            Outcome::Allow
        );
        assert!(log.take().is_empty(), "an allowed write logs nothing");
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("panama/colon/user1"), w),
            Outcome::DenyAccess
        );
        let records = log.audit();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r["access"], "write");
        assert_eq!(r["username"], "user1");
        assert_eq!(r["client_id"], "c1");
        assert_eq!(r["address"], "127.0.0.1");
        assert_eq!(r["topic"], "panama/colon/user1");
        assert_eq!(r["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(r["reason"]["kind"], "no_rule_matched");
    }

    #[test]
    fn subscriptions_that_never_deliver_are_refused_and_unsubscribe_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", TUTORIAL);
        let log = Log::default();
        let plugin = start(&acl, &log);
        log.take();
        let s = sys::MOSQ_ACL_SUBSCRIBE;
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("a/b"), s),
            Outcome::DenyAccess
        );
        assert_eq!(log.audit()[0]["access"], "subscribe");
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("+/+/+/user1"), s),
            Outcome::Allow
        );
        assert_eq!(plugin.acl_check(&log, &USER1, t("#"), s), Outcome::Allow);
        let u = sys::MOSQ_ACL_UNSUBSCRIBE;
        assert_eq!(plugin.acl_check(&log, &USER1, t("a/b"), u), Outcome::Allow);
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("x"), 0x40),
            Outcome::DenyAccess
        );
    }

    #[test]
    fn withheld_deliveries_are_recorded_once_per_client_and_topic() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", TUTORIAL);
        let log = Log::default();
        let plugin = start(&acl, &log);
        log.take();
        let r = sys::MOSQ_ACL_READ;
        for _ in 0..3 {
            assert_eq!(
                plugin.acl_check(&log, &USER1, t("x/y/z/user2"), r),
                Outcome::DenyAccess
            );
        }
        assert_eq!(log.audit().len(), 1);
        assert_eq!(plugin.disconnect(&log, &USER1), Outcome::Allow);
        assert!(log.take()[0].1.contains("3 deliveries"));
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("x/y/z/user2"), r),
            Outcome::DenyAccess
        );
        assert_eq!(
            log.audit().len(),
            1,
            "recorded again after the client reconnects"
        );
    }

    #[test]
    fn dangerous_usernames_are_denied_by_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", TUTORIAL);
        let log = Log::default();
        let plugin = start(&acl, &log);
        let evil = ClientValues {
            username: Some("+"),
            id: Some("c"),
            address: None,
        };
        let w = sys::MOSQ_ACL_WRITE;
        assert_eq!(
            plugin.acl_check(&log, &evil, t("a/b/c/+"), w),
            Outcome::DenyAccess
        );
    }

    #[test]
    fn non_utf8_identities_are_denied() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", "topic readwrite #\n");
        let log = Log::default();
        let plugin = start(&acl, &log);
        log.take();
        let anon = ClientValues {
            id: Some("c"),
            ..Default::default()
        };
        let w = sys::MOSQ_ACL_WRITE;
        assert_eq!(plugin.acl_check(&log, &anon, t("a"), w), Outcome::Allow);
        assert_eq!(
            plugin.acl_check(&log, &anon, Text::NotUtf8(b"\xff"), w),
            Outcome::DenyAccess
        );
        assert_eq!(log.audit()[0]["reason"]["kind"], "invalid_topic");
        let no_id = ClientValues::default();
        assert_eq!(
            plugin.acl_check(&log, &no_id, t("a"), w),
            Outcome::DenyAccess
        );
    }

    #[test]
    fn mosquitto_version_must_name_the_broker_the_plugin_is_loaded_in() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", "pattern write a%ub/#\n");
        let log = Log::default();
        let start = |version: &str, semantics| {
            let opts = [("acl_file", acl.as_str()), ("mosquitto_version", version)];
            Plugin::start_as(opts.iter().map(|&(k, v)| Some((k, v))), &log, semantics)
        };
        assert!(start("2.1", Semantics::Mosquitto21).is_ok());
        assert!(log
            .take()
            .iter()
            .any(|(_, m)| m.contains("mosquitto-2.1's acl_file")));
        assert_eq!(
            start("2.1", Semantics::Mosquitto20).unwrap_err(),
            Outcome::BadConfig
        );
        assert!(log.take()[0].1.contains("but this broker is mosquitto-2.0"));
        assert_eq!(
            start("3.0", Semantics::Mosquitto20).unwrap_err(),
            Outcome::BadConfig
        );
        assert!(log.take()[0].1.contains("expected 2.0 or 2.1"));
    }

    #[test]
    fn on_2_1_percent_u_inside_a_level_is_literal_and_records_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", "pattern write a%ub/#\n");
        let log = Log::default();
        let opts = [("acl_file", acl.as_str())];
        let v21 = Plugin::start_as(
            opts.iter().map(|&(k, v)| Some((k, v))),
            &log,
            Semantics::Mosquitto21,
        )
        .unwrap();
        let bob = ClientValues {
            username: Some("bob"),
            id: Some("c1"),
            address: Some("127.0.0.1"),
        };
        let write_code = sys::MOSQ_ACL_WRITE;
        assert_eq!(
            v21.acl_check(&log, &bob, Text::Utf8("a%ub/x"), write_code),
            Outcome::Allow
        );
        log.take();
        assert_eq!(
            v21.acl_check(&log, &bob, Text::Utf8("abobb/x"), write_code),
            Outcome::DenyAccess
        );
        let records = log.audit();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["semantics"], "mosquitto-2.1");
    }

    #[test]
    fn start_refuses_bad_options_and_files_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::default();
        let bad = |opts: &[(&str, &str)]| {
            Plugin::start(opts.iter().map(|&(k, v)| Some((k, v))), &log).unwrap_err()
        };
        assert_eq!(bad(&[("acl_fiel", "/x")]), Outcome::BadConfig);
        assert!(log.take()[0].1.contains("plugin_opt_acl_fiel"));
        let missing = dir.path().join("missing.txt");
        assert_eq!(
            bad(&[("acl_file", missing.to_str().unwrap())]),
            Outcome::Unavailable
        );
        let m = &log.take()[0];
        assert_eq!(m.0, LogLevel::Err);
        assert!(
            m.1.contains("missing.txt") && m.1.contains("plugin_opt_acl_file"),
            "{}",
            m.1
        );
        let malformed = write(&dir, "bad.txt", "topic read a\n  # indented\n");
        assert_eq!(bad(&[("acl_file", &malformed)]), Outcome::BadConfig);
        let m = &log.take()[0].1;
        assert!(m.contains(&format!("{malformed}:2")), "{m}");
        let audit_dir = dir.path().join("no/such/dir/audit.log");
        let acl = write(&dir, "acl.txt", TUTORIAL);
        assert_eq!(
            bad(&[
                ("acl_file", &acl),
                ("audit_log", audit_dir.to_str().unwrap())
            ]),
            Outcome::Unavailable
        );
        assert!(log
            .take()
            .last()
            .unwrap()
            .1
            .contains("plugin_opt_audit_log"));
    }

    #[test]
    fn events_follow_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", TUTORIAL);
        let log = Log::default();
        let plugin = start(&acl, &log);
        assert_eq!(
            plugin.events(),
            [Event::Reload, Event::AclCheck, Event::Disconnect]
        );
        let none = Plugin::start([], &log).unwrap();
        assert_eq!(none.events(), [Event::Reload]);
        let s = sys::MOSQ_ACL_SUBSCRIBE;
        assert_eq!(none.acl_check(&log, &USER1, t("a"), s), Outcome::Defer);
    }

    #[test]
    fn reload_swaps_a_good_file_keeps_the_old_one_on_errors_and_always_defers() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", TUTORIAL);
        let log = Log::default();
        let plugin = start(&acl, &log);
        let w = sys::MOSQ_ACL_WRITE;
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("x"), w),
            Outcome::DenyAccess
        );
        write(&dir, "acl.txt", "user user1\ntopic write x\n");
        assert_eq!(plugin.reload(&log), Outcome::Defer);
        assert_eq!(plugin.acl_check(&log, &USER1, t("x"), w), Outcome::Allow);
        log.take();
        write(&dir, "acl.txt", "user user1\ntopic wrte x y\n");
        assert_eq!(plugin.reload(&log), Outcome::Defer);
        let messages = log.take();
        assert!(
            messages.iter().any(|(l, m)| *l == LogLevel::Err
                && m.contains("acl.txt:2")
                && m.contains("previous policy")),
            "{messages:?}"
        );
        assert_eq!(plugin.acl_check(&log, &USER1, t("x"), w), Outcome::Allow);
        std::fs::remove_file(&acl).unwrap();
        assert_eq!(plugin.reload(&log), Outcome::Defer);
        assert_eq!(plugin.acl_check(&log, &USER1, t("x"), w), Outcome::Allow);
    }

    #[test]
    fn a_remembered_allow_does_not_survive_a_reload_that_denies() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", "user user1\ntopic readwrite x\n");
        let log = Log::default();
        let plugin = start(&acl, &log);
        let raw = |access| RawCheck {
            username: Some(b"user1"),
            client_id: b"c1",
            topic: b"x",
            access,
        };
        let both = [
            (sys::MOSQ_ACL_WRITE, Access::Write),
            (sys::MOSQ_ACL_READ, Access::Read),
        ];
        for (code, access) in both {
            assert!(!plugin.remembered(&raw(access)));
            assert_eq!(plugin.acl_check(&log, &USER1, t("x"), code), Outcome::Allow);
            assert!(plugin.remembered(&raw(access)));
        }
        write(
            &dir,
            "acl.txt",
            "user user1\ntopic readwrite x\ntopic deny x\n",
        );
        assert_eq!(plugin.reload(&log), Outcome::Defer);
        for (code, access) in both {
            assert!(!plugin.remembered(&raw(access)));
            assert_eq!(
                plugin.acl_check(&log, &USER1, t("x"), code),
                Outcome::DenyAccess
            );
            assert!(!plugin.remembered(&raw(access)));
        }
        // Another client on the same topic is decided on its own.
        let other = ClientValues {
            username: Some("user2"),
            id: Some("c1"),
            address: None,
        };
        assert_eq!(
            plugin.acl_check(&log, &other, t("x"), sys::MOSQ_ACL_WRITE),
            Outcome::DenyAccess
        );
    }

    #[test]
    fn audit_records_go_to_the_audit_log_file_when_configured() {
        let dir = tempfile::tempdir().unwrap();
        let acl = write(&dir, "acl.txt", TUTORIAL);
        let audit = dir.path().join("audit.log");
        let log = Log::default();
        let plugin = Plugin::start(
            [
                Some(("acl_file", acl.as_str())),
                Some(("audit_log", audit.to_str().unwrap())),
            ],
            &log,
        )
        .unwrap();
        log.take();
        let w = sys::MOSQ_ACL_WRITE;
        assert_eq!(
            plugin.acl_check(&log, &USER1, t("nope"), w),
            Outcome::DenyAccess
        );
        assert!(log.audit().is_empty());
        let text = std::fs::read_to_string(&audit).unwrap();
        assert_eq!(text.lines().count(), 1);
        let r: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(r["topic"], "nope");
    }

    const USERS: &str = "user1:$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==\nplain:secret\n";

    #[test]
    fn logins_are_checked_against_the_password_file_and_denials_recorded_without_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let users = write(&dir, "users.txt", USERS);
        let log = Log::default();
        let plugin =
            Plugin::start_with_clock([Some(("password_file", users.as_str()))], &log, fixed_clock)
                .unwrap();
        let messages = log.take();
        assert!(
            messages
                .iter()
                .any(|(l, m)| *l == LogLevel::Warning && m.contains("users.txt:2")),
            "the plaintext line is reported: {messages:?}"
        );
        assert_eq!(plugin.events(), [Event::Reload, Event::BasicAuth]);
        let c = USER1;
        let name = t("user1");
        assert_eq!(
            plugin.basic_auth(&log, &c, name, Some(b"123456")),
            Outcome::Allow
        );
        assert_eq!(
            plugin.basic_auth(&log, &c, Text::Absent, None),
            Outcome::Defer
        );
        assert!(log.take().is_empty());
        let refused = [
            (name, Some(&b"1234567"[..]), "wrong_password"),
            (name, None, "no_password"),
            (t("nobody"), Some(&b"x"[..]), "unknown_user"),
            (t(""), Some(&b"x"[..]), "unknown_user"),
            (t("plain"), Some(&b"secret"[..]), "unusable_entry"),
        ];
        for (username, password, kind) in refused {
            assert_eq!(
                plugin.basic_auth(&log, &c, username, password),
                Outcome::RefuseLogin
            );
            let messages = log.take();
            assert!(messages
                .iter()
                .all(|(_, m)| !m.contains("1234567") && !m.contains("secret\"")));
            let json: Vec<serde_json::Value> = messages
                .iter()
                .filter_map(|(_, m)| m.strip_prefix(super::super::sink::LOG_PREFIX))
                .map(|j| serde_json::from_str(j).unwrap())
                .collect();
            assert_eq!(json.len(), 1);
            assert_eq!(json[0]["access"], "connect");
            assert_eq!(json[0]["reason"]["kind"], kind);
            assert_eq!(json[0]["client_id"], "c1");
            assert_eq!(json[0]["address"], "127.0.0.1");
        }
        // The ACL side is not configured: no opinion.
        assert_eq!(
            plugin.acl_check(&log, &c, t("x"), sys::MOSQ_ACL_WRITE),
            Outcome::Defer
        );
    }

    #[test]
    fn reload_keeps_the_password_file_when_it_disappears() {
        let dir = tempfile::tempdir().unwrap();
        let users = write(&dir, "users.txt", USERS);
        let log = Log::default();
        let plugin = Plugin::start([Some(("password_file", users.as_str()))], &log).unwrap();
        std::fs::remove_file(&users).unwrap();
        assert_eq!(plugin.reload(&log), Outcome::Defer);
        assert!(log.take().iter().any(|(l, m)| *l == LogLevel::Err
            && m.contains("cannot read the password file")
            && m.contains("previous policy")));
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
            Outcome::Allow
        );
    }

    #[test]
    fn a_repeated_login_comes_from_the_cache_which_a_reload_empties() {
        let dir = tempfile::tempdir().unwrap();
        let users = write(&dir, "users.txt", USERS);
        let log = Log::default();
        let plugin = Plugin::start([Some(("password_file", users.as_str()))], &log).unwrap();
        for _ in 0..2 {
            assert_eq!(
                plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
                Outcome::Allow
            );
        }
        assert_eq!(plugin.logins.borrow().hits(), 1);
        // The password changes: the remembered login does not survive the reload.
        let changed = crate::policy::passwd::hash_password(
            b"654321",
            crate::policy::passwd::HashKind::Sha512,
            None,
        );
        std::fs::write(&users, format!("user1:{changed}\n")).unwrap();
        assert_eq!(plugin.reload(&log), Outcome::Defer);
        assert!(plugin.logins.borrow().is_empty());
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
            Outcome::RefuseLogin
        );
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"654321")),
            Outcome::Allow
        );
    }

    /// Ticks (bounded: 20 s) until the delayed logins have given `n` verdicts.
    fn completions(plugin: &Plugin, log: &Log, n: usize) -> Vec<Completion> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut got = Vec::new();
        while got.len() < n && std::time::Instant::now() < deadline {
            got.extend(plugin.tick(log).0);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        got
    }

    fn delayed_plugin(dir: &tempfile::TempDir, log: &Log) -> (Plugin, String) {
        let users = write(dir, "users.txt", USERS);
        let mut plugin = Plugin::start([Some(("password_file", users.as_str()))], log).unwrap();
        assert!(!plugin.events().contains(&Event::Tick));
        plugin.enable_delayed_auth(log);
        assert!(plugin.delays_logins());
        assert!(plugin.events().contains(&Event::Tick));
        (plugin, users)
    }

    #[test]
    fn with_delayed_auth_checks_run_on_workers_and_verdicts_come_from_tick() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::default();
        let (plugin, _) = delayed_plugin(&dir, &log);
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
            Outcome::Delayed
        );
        let got = completions(&plugin, &log, 1);
        assert_eq!(
            got,
            [Completion {
                client_id: "c1".into(),
                outcome: Outcome::Allow
            }]
        );
        assert_eq!(plugin.tick(&log), (Vec::new(), false));
        // Remembered: the same login is answered at once.
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
            Outcome::Allow
        );
        // A wrong password: refused from tick, with an audit record.
        log.take();
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"654321")),
            Outcome::Delayed
        );
        let got = completions(&plugin, &log, 1);
        assert_eq!(got[0].outcome, Outcome::RefuseLogin);
        let audit = log.audit();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0]["reason"]["kind"], "wrong_password");
        assert_eq!(audit[0]["client_id"], "c1");
        // No password: answered at once, never delayed.
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), None),
            Outcome::RefuseLogin
        );
    }

    #[test]
    fn a_verdict_for_a_client_replaced_under_the_same_id_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::default();
        let (plugin, _) = delayed_plugin(&dir, &log);
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
            Outcome::Delayed
        );
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"wrong")),
            Outcome::Delayed
        );
        let mut got = completions(&plugin, &log, 1);
        // Give the other verdict time to come back (and be dropped).
        std::thread::sleep(std::time::Duration::from_millis(300));
        got.extend(plugin.tick(&log).0);
        assert_eq!(
            got,
            [Completion {
                client_id: "c1".into(),
                outcome: Outcome::RefuseLogin
            }]
        );
    }

    #[test]
    fn a_reload_during_a_delayed_check_checks_the_login_again_against_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::default();
        let (plugin, users) = delayed_plugin(&dir, &log);
        assert_eq!(
            plugin.basic_auth(&log, &USER1, t("user1"), Some(b"123456")),
            Outcome::Delayed
        );
        let changed = crate::policy::passwd::hash_password(
            b"654321",
            crate::policy::passwd::HashKind::Sha512,
            None,
        );
        std::fs::write(&users, format!("user1:{changed}\n")).unwrap();
        assert_eq!(plugin.reload(&log), Outcome::Defer);
        let got = completions(&plugin, &log, 1);
        assert_eq!(
            got,
            [Completion {
                client_id: "c1".into(),
                outcome: Outcome::RefuseLogin
            }]
        );
        assert!(log
            .take()
            .iter()
            .any(|(_, m)| m.contains("checking it again")));
    }
}
