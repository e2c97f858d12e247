//! Where the plugin's audit records go: a JSON-lines file (`plugin_opt_audit_log`) or Mosquitto's log
//! (the shared [`AuditSink`], with Mosquitto's log as its [`AuditLog`]).

#![forbid(unsafe_code)]

use crate::enforce::audit_sink::AuditLog;
pub use crate::enforce::audit_sink::AuditSink;

use super::host::{Host, LogLevel};

/// The prefix of audit records written to Mosquitto's log, so they can be found with grep.
pub const LOG_PREFIX: &str = "mqtt-policy audit: ";

/// Mosquitto's log: errors at ERR, records at NOTICE as `mqtt-policy audit: {json}`.
impl AuditLog for dyn Host + '_ {
    fn error(&self, message: &str) {
        self.log(LogLevel::Err, &format!("mqtt-policy: {message}"));
    }

    fn record(&self, json: &str) {
        self.log(LogLevel::Notice, &format!("{LOG_PREFIX}{json}"));
    }
}
