//! Tests against the real Debian `mosquitto` binary: the harness (processes, certificates, configs,
//! clients) and the tests that use it.
//!
//! * [`support`]: the harness, for every test module here.
//! * [`tutorial_builtin`]: the tutorial's deployment (password file, acl file, TLS 1.2) on mosquitto's
//!   built-in checks, as the reference describes it.
//! * [`differential`]: generated acl files and cases; the engine must decide exactly as mosquitto does.

mod delayed_auth;
mod differential;
mod passwd_interop;
mod plugin;
mod support;
mod tutorial_builtin;
