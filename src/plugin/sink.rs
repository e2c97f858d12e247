//! Where the plugin's audit records go: a JSON-lines file (`plugin_opt_audit_log`) or Mosquitto's log.

#![forbid(unsafe_code)]

use crate::audit::{AuditRecord, JsonLinesFile};

use super::host::{Host, LogLevel};

/// The prefix of audit records written to Mosquitto's log, so they can be found with grep.
pub const LOG_PREFIX: &str = "mqtt-policy audit: ";

/// The destination of audit records.
#[derive(Debug)]
pub enum AuditSink {
    /// One JSON object per line, appended to this file.
    File {
        /// The path, as configured (to reopen it on reload).
        path: String,
        /// The open file.
        file: JsonLinesFile,
    },
    /// Mosquitto's log, at NOTICE, as `mqtt-policy audit: {json}`.
    BrokerLog,
}

impl AuditSink {
    /// Opens the audit log file at `path`, or chooses the broker log when there is none.
    pub fn open(path: Option<&str>) -> std::io::Result<AuditSink> {
        match path {
            None => Ok(AuditSink::BrokerLog),
            Some(path) => Ok(AuditSink::File {
                path: path.to_owned(),
                file: JsonLinesFile::open(path)?,
            }),
        }
    }

    /// Reopens the file (after log rotation); on failure keeps writing to the old handle and says why.
    pub fn reopen(&mut self, host: &dyn Host) {
        if let AuditSink::File { path, file } = self {
            match JsonLinesFile::open(path) {
                Ok(new) => *file = new,
                Err(e) => host.log(
                    LogLevel::Err,
                    &format!(
                        "mqtt-policy: cannot reopen the audit log {path:?} (plugin_opt_audit_log): {e}; \
                         still writing to the file opened before"
                    ),
                ),
            }
        }
    }

    /// Writes one record. If the file cannot be written, the record goes to the broker log instead, with
    /// the error, so that no denial goes unrecorded.
    pub fn write(&mut self, host: &dyn Host, record: &AuditRecord) {
        match self {
            AuditSink::BrokerLog => {
                host.log(
                    LogLevel::Notice,
                    &format!("{LOG_PREFIX}{}", record.to_json()),
                );
            }
            AuditSink::File { path, file } => {
                if let Err(e) = file.write(record) {
                    host.log(
                        LogLevel::Err,
                        &format!("mqtt-policy: cannot write to the audit log {path:?}: {e}"),
                    );
                    host.log(
                        LogLevel::Notice,
                        &format!("{LOG_PREFIX}{}", record.to_json()),
                    );
                }
            }
        }
    }
}
