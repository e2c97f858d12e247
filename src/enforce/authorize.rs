//! Decisions for a front door that answers other brokers over a network (`mqtt-policy serve`'s
//! authorization contracts): each answer decided by the policy in force, counted in [`Metrics`] and,
//! when it refuses, written to the audit log as the plugin and the broker write it. Logins go through
//! the same [`LoginCache`] and [`VerifyPool`] as the broker's, so a slow hash never holds up the
//! threads that answer everyone else.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::audit_sink::{AuditLog, AuditSink};
use super::live::Loaded;
use super::logins::{denial, LoginCache, Password, VerifyPool};
use super::metrics::Metrics;
use crate::audit::{AuditRecord, LoginDenial, Peer};
use crate::policy::passwd::AuthResult;
use crate::policy::{Access, ClientRef, Decision};

/// How a SUBSCRIBE is answered for a broker that authorizes it once instead of checking every
/// delivered message as Mosquitto does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubscribeMode {
    /// Granted only when every topic the filter matches is readable (the default): a `#` subscriber
    /// with any denied topic is refused.
    #[default]
    Strict,
    /// Granted when some topic the filter matches is readable (what Mosquitto's per-message check
    /// would let through is then more than the client may read: the broker delivers everything).
    Lenient,
}

impl SubscribeMode {
    /// `strict` or `lenient`.
    pub fn parse(word: &str) -> Option<SubscribeMode> {
        match word {
            "strict" => Some(SubscribeMode::Strict),
            "lenient" => Some(SubscribeMode::Lenient),
            _ => None,
        }
    }
}

/// Where audit records go when there is no audit file: stderr, with the service's prefix.
struct Stderr;

impl AuditLog for Stderr {
    fn error(&self, message: &str) {
        eprintln!("mqtt-policy serve: {message}");
    }
    fn record(&self, json: &str) {
        eprintln!("mqtt-policy serve: audit: {json}");
    }
}

/// The shared decision state of the service (see the module documentation).
pub struct Authorizer {
    metrics: Arc<Metrics>,
    /// The audit log's path (`None`: stderr), opened at the first record: a service that refused
    /// nothing leaves no file behind (the page says "no audit log yet").
    audit_path: Option<String>,
    audit: Mutex<Option<AuditSink>>,
    logins: Mutex<LoginCache>,
    pool: VerifyPool,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("pool", &self.pool)
            .finish()
    }
}

impl Authorizer {
    /// Checks that the audit log (`None`: stderr) can be written where it is, and starts the password
    /// workers. The error names the file.
    pub fn start(metrics: Arc<Metrics>, audit_log: Option<&str>) -> Result<Authorizer, String> {
        if let Some(path) = audit_log {
            let p = std::path::Path::new(path);
            let writable = if p.exists() {
                std::fs::OpenOptions::new().append(true).open(p).map(drop)
            } else {
                match p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    Some(dir) if !dir.is_dir() => Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no directory {}", dir.display()),
                    )),
                    _ => Ok(()),
                }
            };
            writable.map_err(|e| format!("cannot write the audit log {path}: {e}"))?;
        }
        let pool = VerifyPool::per_core("mqtt-policy-serve-verify")
            .map_err(|e| format!("cannot start the password workers: {e}"))?;
        Ok(Authorizer {
            metrics,
            audit_path: audit_log.map(str::to_owned),
            audit: Mutex::new(None),
            logins: Mutex::new(LoginCache::new()),
            pool,
        })
    }

    /// Reopens the audit log (after a SIGHUP, for log rotation).
    pub fn reopen_audit(&self) {
        if let Some(sink) = self.lock_audit().as_mut() {
            sink.reopen(&Stderr);
        }
    }

    fn lock_audit(&self) -> std::sync::MutexGuard<'_, Option<AuditSink>> {
        self.audit.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, record: AuditRecord) {
        let mut sink = self.lock_audit();
        if sink.is_none() {
            match AuditSink::open(self.audit_path.as_deref()) {
                Ok(opened) => *sink = Some(opened),
                Err(e) => {
                    // Not lost: to stderr, with why (the next record tries the file again).
                    Stderr.error(&format!(
                        "cannot open the audit log {}: {e}",
                        self.audit_path.as_deref().unwrap_or_default()
                    ));
                    Stderr.record(&record.to_json());
                    return;
                }
            }
        }
        if let Some(sink) = sink.as_mut() {
            sink.write(&Stderr, &record);
        }
    }

    /// Decides `access` (read or write) to `topic`, as the plugin does: counted, and audited when
    /// denied.
    pub fn decide(
        &self,
        loaded: &Loaded,
        client: ClientRef<'_>,
        topic: &str,
        access: Access,
        address: Option<&str>,
    ) -> Decision {
        let decision = self.metrics.decide(access, &loaded.hits, || {
            loaded.acl.decide(client, topic, access)
        });
        self.audit_denial(loaded, client, topic, access, decision, address);
        decision
    }

    /// Decides a SUBSCRIBE to `filter` that the asking broker will not check per delivery, as `mode`
    /// says: counted, and audited when denied.
    pub fn subscribe(
        &self,
        loaded: &Loaded,
        client: ClientRef<'_>,
        filter: &str,
        mode: SubscribeMode,
        address: Option<&str>,
    ) -> Decision {
        let decision = self
            .metrics
            .decide(Access::Subscribe, &loaded.hits, || match mode {
                SubscribeMode::Strict => loaded.acl.decide_subscribe_strict(client, filter),
                SubscribeMode::Lenient => loaded.acl.decide(client, filter, Access::Subscribe),
            });
        self.audit_denial(loaded, client, filter, Access::Subscribe, decision, address);
        decision
    }

    fn audit_denial(
        &self,
        loaded: &Loaded,
        client: ClientRef<'_>,
        topic: &str,
        access: Access,
        decision: Decision,
        address: Option<&str>,
    ) {
        if decision.is_allowed() {
            return;
        }
        let explanation = loaded.acl.explain_decision(client, topic, access, decision);
        self.write(
            AuditRecord::acl(SystemTime::now(), address, explanation)
                .with_semantics(loaded.semantics),
        );
    }

    /// Checks a login against the password file in force, off the caller's thread: a login seen
    /// before is answered from the cache, any other by a password worker. `None`: accepted. Counted,
    /// and audited when refused. An unknown user costs a hash like a known one (the password file's
    /// verification does that), and the refusal says nothing to the caller about which it was.
    pub async fn login(
        &self,
        loaded: &Arc<Loaded>,
        peer: Peer<'_>,
        password: Option<&[u8]>,
    ) -> Option<LoginDenial> {
        let refusal = self.check_login(loaded, peer.username, password).await;
        self.metrics.login(refusal.as_ref().map_or(Ok(()), Err));
        if let Some(d) = &refusal {
            self.write(
                AuditRecord::login(SystemTime::now(), peer, d.clone())
                    .with_semantics(loaded.semantics),
            );
        }
        refusal
    }

    async fn check_login(
        &self,
        loaded: &Arc<Loaded>,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Option<LoginDenial> {
        let Some(username) = username else {
            return Some(LoginDenial::AnonymousNotAllowed);
        };
        let Some(passwords) = loaded.passwords.clone() else {
            return Some(LoginDenial::NoPasswordFile);
        };
        let Some(password) = password else {
            return denial(&passwords.verify(username, None), &passwords);
        };
        let cached = {
            let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
            logins.accepts(&passwords, username, password)
        };
        if cached {
            return None;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.submit(
            Arc::clone(&passwords),
            username.to_owned(),
            Password::new(password.to_vec()),
            move |result, _, _| {
                let _ = tx.send(result);
            },
        );
        // A worker that never answers (it cannot happen while the pool lives) counts as a refusal.
        let result = rx.await.unwrap_or(AuthResult::WrongPassword);
        self.logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(&passwords, username, password, &result);
        denial(&result, &passwords)
    }
}
