//! The policy in force for a front door that loads its files from a mosquitto.conf or from flags
//! (`mqtt-policy serve`): loaded all or nothing, swapped whole on a reload, and kept as it was when a
//! reload fails. Readers take the current [`Loaded`] without a lock ([`Live::current`]); a reload
//! builds the next one beside it and publishes it in one store.
//!
//! With a config, each load reads the config again (as the broker does on SIGHUP), so a changed
//! `acl_file` or `password_file` line counts as well as a changed file.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::metrics::{Metrics, RuleHits};
use crate::policy::acl::Policy;
use crate::policy::passwd::PasswordFile;
use crate::policy::Semantics;

/// Where the policy's files come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// The files a mosquitto.conf names (built-in keys or our plugin's options), read again on reload.
    Config {
        /// The config file.
        path: String,
        /// `--mosquitto`, overriding the config's `plugin_opt_mosquitto_version`.
        semantics: Option<Semantics>,
    },
    /// Files named directly.
    Files {
        /// The acl file.
        acl_file: String,
        /// The password file, if any.
        password_file: Option<String>,
        /// Whose reading of the acl file applies (default 2.0).
        semantics: Semantics,
    },
}

/// One load of the policy: every file read and compiled, with what the front door shows about it.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled acl file.
    pub acl: Policy,
    /// The password file, when one is configured.
    pub passwords: Option<Arc<PasswordFile>>,
    /// The acl file's path.
    pub acl_file: String,
    /// The password file's path, when one is configured.
    pub password_file: Option<String>,
    /// Whose reading of the acl file applies.
    pub semantics: Semantics,
    /// The config's `plugin_opt_audit_log` (the broker's or plugin's audit records).
    pub audit_log: Option<String>,
    /// The config's `plugin_opt_metrics_listen` (where the broker or plugin serves its counters).
    pub metrics_listen: Option<String>,
    /// Hit counters of the acl's rules, made with it.
    pub hits: Arc<RuleHits>,
    /// [`fingerprint`] of the files, as the metrics say it.
    pub fingerprint: String,
    /// What Mosquitto would warn about in the files, as `file:line: ...` lines.
    pub warnings: Vec<String>,
    /// When this load was made.
    pub loaded_at: SystemTime,
}

impl Loaded {
    /// Reads and compiles every file `source` names. The error names the config or file (and the line),
    /// ready to print after a program prefix.
    pub fn load(source: &PolicySource) -> Result<Loaded, String> {
        let (acl_file, password_file, semantics, audit_log, metrics_listen) = match source {
            PolicySource::Files {
                acl_file,
                password_file,
                semantics,
            } => (
                acl_file.clone(),
                password_file.clone(),
                *semantics,
                None,
                None,
            ),
            PolicySource::Config { path, semantics } => {
                let conf = crate::load::load_conf(path).map_err(|e| e.to_string())?;
                let files = conf.policy_files().map_err(|e| e.to_string())?;
                let semantics = match (semantics, files.mosquitto_version.as_deref()) {
                    (Some(s), _) => *s,
                    (None, None) => Semantics::default(),
                    (None, Some(v)) => Semantics::from_version(v).ok_or_else(|| {
                        format!("{path}: plugin_opt_mosquitto_version {v:?}: expected 2.0 or 2.1")
                    })?,
                };
                let acl_file = files.acl_file.ok_or_else(|| {
                    format!("{path}: no acl_file (or plugin_opt_acl_file) in the config")
                })?;
                (
                    acl_file,
                    files.password_file,
                    semantics,
                    files.audit_log,
                    files.metrics_listen,
                )
            }
        };
        // The acl file is read (and fingerprinted) first; then, on two cores, a large password file
        // loads (and is fingerprinted as it is read) while the acl compiles.
        let (file, mut fingerprint) =
            crate::load::load_acl_fingerprinted(&acl_file, semantics).map_err(|e| e.to_string())?;
        let (acl, passwords) = std::thread::scope(|s| {
            let passwords = s.spawn(|| {
                password_file
                    .as_deref()
                    .map(|path| {
                        crate::load::load_passwords_fingerprinted(
                            path,
                            semantics,
                            Some(&mut fingerprint),
                        )
                    })
                    .transpose()
            });
            let warnings: Vec<String> = file
                .warnings
                .iter()
                .map(|w| format!("{acl_file}:{}: warning: {}", w.line, w.message))
                .collect();
            ((Policy::compile(file), warnings), joined(passwords.join()))
        });
        let (acl, mut warnings) = acl;
        let passwords = passwords.map_err(|e| e.to_string())?;
        let fingerprint = fingerprint.finish();
        if let Some(p) = &passwords {
            warnings.extend(p.warning_lines());
        }
        let passwords = passwords.map(Arc::new);
        Ok(Loaded {
            hits: Arc::new(RuleHits::new(Some(&acl))),
            fingerprint,
            acl,
            passwords,
            acl_file,
            password_file,
            semantics,
            audit_log,
            metrics_listen,
            warnings,
            loaded_at: SystemTime::now(),
        })
    }

    /// One line saying what is in force.
    pub fn describe(&self) -> String {
        let passwords = match (&self.password_file, &self.passwords) {
            (Some(path), Some(p)) => format!("{path} ({})", count(p.len(), "user")),
            _ => "none".to_owned(),
        };
        format!(
            "acl_file: {} ({}); password_file: {passwords}; deciding as {}'s acl_file",
            self.acl_file,
            count(self.acl.rules().len(), "rule"),
            self.semantics
        )
    }
}

/// A scoped thread's result; its panic, if it panicked, goes on in the caller.
fn joined<T>(result: std::thread::Result<T>) -> T {
    result.unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// `1 rule`, `2 rules`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The policy in force and how to load it again (see the module documentation).
#[derive(Debug)]
pub struct Live {
    source: PolicySource,
    current: ArcSwap<Loaded>,
    metrics: Arc<Metrics>,
}

impl Live {
    /// Loads the policy for the first time and registers it with `metrics`. The error names the
    /// file that failed.
    pub fn start(source: PolicySource, metrics: Arc<Metrics>) -> Result<Live, String> {
        let loaded = Loaded::load(&source)?;
        metrics.policy_loaded(loaded.fingerprint.clone(), Arc::clone(&loaded.hits));
        Ok(Live {
            source,
            current: ArcSwap::from_pointee(loaded),
            metrics,
        })
    }

    /// The policy in force now (a reload does not change what the caller holds).
    pub fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    /// The counters this policy is registered with.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Where the files come from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// Loads every file again. On success the new policy is in force and returned; on failure the
    /// previous one stays in force, untouched, and the error names the file. Either way the reload is
    /// counted.
    pub fn reload(&self) -> Result<Arc<Loaded>, String> {
        match Loaded::load(&self.source) {
            Ok(loaded) => {
                let loaded = Arc::new(loaded);
                self.metrics
                    .policy_loaded(loaded.fingerprint.clone(), Arc::clone(&loaded.hits));
                self.current.store(Arc::clone(&loaded));
                self.metrics.reloaded(true);
                Ok(loaded)
            }
            Err(e) => {
                self.metrics.reloaded(false);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Access, ClientRef, Verdict};

    #[test]
    fn a_reload_with_a_bad_file_keeps_the_policy_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let acl = dir.path().join("acl.txt");
        std::fs::write(&acl, "pattern readwrite +/+/+/%u\n").unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, format!("acl_file {}\n", acl.display())).unwrap();
        let metrics = Metrics::new();
        let live = Live::start(
            PolicySource::Config {
                path: conf.to_str().unwrap().to_owned(),
                semantics: None,
            },
            Arc::clone(&metrics),
        )
        .unwrap();
        let user1 = ClientRef::from_names(Some("user1"), None);
        let allowed = |l: &Loaded| l.acl.decide(user1, "a/b/c/user1", Access::Write).verdict;
        assert_eq!(allowed(&live.current()), Verdict::Allow);

        std::fs::write(&acl, "topic bogus-access a/b\n").unwrap();
        let e = live.reload().unwrap_err();
        assert!(e.contains(acl.to_str().unwrap()), "{e}");
        assert_eq!(
            allowed(&live.current()),
            Verdict::Allow,
            "the old policy stays"
        );

        std::fs::write(&acl, "pattern read +/+/+/%u\n").unwrap();
        live.reload().unwrap();
        assert_eq!(
            allowed(&live.current()),
            Verdict::Deny,
            "the new policy is in force"
        );
        let text = metrics.render();
        assert!(
            text.contains("mqtt_policy_reloads_total{result=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("mqtt_policy_reloads_total{result=\"failed\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_file_at_start_is_named() {
        let e = Live::start(
            PolicySource::Files {
                acl_file: "/nonexistent/acl.txt".to_owned(),
                password_file: None,
                semantics: Semantics::default(),
            },
            Metrics::new(),
        )
        .unwrap_err();
        assert!(e.contains("/nonexistent/acl.txt"), "{e}");
    }
}
