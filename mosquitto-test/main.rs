//! Tests against the real Debian `mosquitto` binary (and the vendored upstream 2.0.22 and 2.1.2): the
//! harness (processes, certificates, configs, clients, releases) and the tests that use it.
//!
//! * [`support`]: the harness, for every test module here.
//! * [`tutorial_builtin`]: the tutorial's deployment (password file, acl file, TLS 1.2) on mosquitto's
//!   built-in checks, as the reference describes it.
//! * [`differential`]: generated acl files and cases; the engine must decide exactly as mosquitto does.
//! * [`every_version`]: the plugin on every release (tutorial over TLS, reduced differential).
//! * [`password_versions`]: password files each release reads its own way (2.1 refuses what 2.0 drops).

mod delayed_auth;
mod differential;
mod every_version;
mod lint_claims;
mod metrics;
mod passwd_interop;
mod password_versions;
mod plugin;
mod support;
mod tutorial_builtin;
