//! Where audit records go, for every front door: a JSON-lines file (`plugin_opt_audit_log`, the
//! broker's `--audit-log`), or the front door's own log when there is none. A record the file cannot
//! take goes to that log instead, with the error, so that no denial goes unrecorded.

use crate::audit::{AuditRecord, JsonLinesFile};

/// A front door's own log (Mosquitto's log for the plugin, stderr for the broker).
pub trait AuditLog {
    /// Logs an error about the audit log (the message has no program prefix).
    fn error(&self, message: &str);
    /// Logs one audit record's JSON, where there is no file or the file failed.
    fn record(&self, json: &str);
}

/// The destination of audit records.
#[derive(Debug)]
pub enum AuditSink {
    /// One JSON object per line, appended to this file.
    File {
        /// The path, as configured (to reopen it after log rotation).
        path: String,
        /// The open file.
        file: JsonLinesFile,
    },
    /// The front door's log ([`AuditLog::record`]).
    Log,
}

impl AuditSink {
    /// Opens the audit log file at `path`, or chooses the front door's log when there is none.
    pub fn open(path: Option<&str>) -> std::io::Result<AuditSink> {
        match path {
            None => Ok(AuditSink::Log),
            Some(path) => Ok(AuditSink::File {
                path: path.to_owned(),
                file: JsonLinesFile::open(path)?,
            }),
        }
    }

    /// Reopens the file (after log rotation); on failure keeps writing to the old handle and says why.
    pub fn reopen<L: AuditLog + ?Sized>(&mut self, log: &L) {
        if let AuditSink::File { path, file } = self {
            match JsonLinesFile::open(path) {
                Ok(new) => *file = new,
                Err(e) => log.error(&format!(
                    "cannot reopen the audit log {path:?}: {e}; still writing to the file opened before"
                )),
            }
        }
    }

    /// Writes one record; if the file cannot take it, to the log, with the error.
    pub fn write<L: AuditLog + ?Sized>(&mut self, log: &L, record: &AuditRecord) {
        match self {
            AuditSink::Log => log.record(&record.to_json()),
            AuditSink::File { path, file } => {
                if let Err(e) = file.write(record) {
                    log.error(&format!("cannot write to the audit log {path:?}: {e}"));
                    log.record(&record.to_json());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::audit::{LoginDenial, Peer};

    #[derive(Default)]
    struct Lines(RefCell<Vec<String>>);

    impl AuditLog for Lines {
        fn error(&self, message: &str) {
            self.0.borrow_mut().push(format!("error: {message}"));
        }
        fn record(&self, json: &str) {
            self.0.borrow_mut().push(format!("record: {json}"));
        }
    }

    fn record() -> AuditRecord {
        let peer = Peer {
            username: Some("user1"),
            client_id: Some("c"),
            address: None,
        };
        AuditRecord::login(
            std::time::SystemTime::now(),
            peer,
            LoginDenial::WrongPassword,
        )
    }

    #[test]
    fn without_a_file_records_go_to_the_log() {
        let log = Lines::default();
        AuditSink::open(None).unwrap().write(&log, &record());
        let lines = log.0.borrow();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("record: {"), "{lines:?}");
    }

    #[test]
    fn records_go_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = Lines::default();
        let mut sink = AuditSink::open(path.to_str()).unwrap();
        sink.write(&log, &record());
        sink.reopen(&log);
        sink.write(&log, &record());
        assert!(log.0.borrow().is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }
}
