//! The Mosquitto 2.0 plugin (plugin API v5): `target/release/libmqtt_policy.so`.
//!
//! ```text
//! plugin /usr/lib/libmqtt_policy.so
//! plugin_opt_password_file /etc/mosquitto/users.txt
//! plugin_opt_acl_file /etc/mosquitto/acl.txt
//! plugin_opt_audit_log /var/log/mosquitto/policy.log
//! ```
//!
//! Layers, each using only the one below it (after sqlite-loadable's `sys` / `ext` / `api` split):
//! * [`sys`]: bindgen's declarations of Mosquitto's headers (`build.rs`, `include/mqtt_policy.h`).
//! * [`ffi`]: the entry points and callbacks; the only `unsafe` code of the crate. Checks pointers,
//!   borrows C strings for one call, catches panics, and calls into the safe layer.
//! * the safe layer: [`options`] (the `plugin_opt_*` lines), [`callbacks`] (state and decisions), [`memo`] (recently allowed checks),
//!   [`outcome`] (the one mapping to `MOSQ_ERR_*`), [`sink`] (audit records), [`host`] (what the safe
//!   layer needs from the broker, as traits).
//!
//! The behaviour is the contract's (`CONTRACT.md`): with these options and no built-in
//! `password_file`/`acl_file`, the broker enforces exactly what it would enforce with them, plus audit
//! records, refused never-deliverable subscriptions, and a reload that keeps the old policy when a file is
//! broken.

pub mod callbacks;
pub mod ffi;
pub mod host;
pub mod memo;
pub mod options;
pub mod outcome;
pub mod sink;
pub mod sys;
