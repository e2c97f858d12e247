//! Recent denials from the audit log (`plugin_opt_audit_log`, or `serve --audit-log`): the JSON lines
//! at the end of the file, newest first, each with the explanation it was written with and the answer
//! the policy in force gives now. Bounded: at most the last [`TAIL_BYTES`] of the file are read, and at
//! most [`MAX_RECORDS`] records returned.

use std::io::{Read, Seek, SeekFrom};

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::super::AppState;
use crate::enforce::live::Loaded;
use crate::policy::{Access, ClientRef};

/// How much of the end of the audit log is read.
pub const TAIL_BYTES: u64 = 1 << 20;
/// The most records one answer lists.
pub const MAX_RECORDS: usize = 500;

/// `?limit=N` (default 50).
#[derive(Debug, Deserialize)]
pub struct Limit {
    #[serde(default)]
    limit: Option<usize>,
}

/// One denial, as the page lists it.
#[derive(Debug, Serialize)]
pub struct Denial {
    time: Option<String>,
    access: Option<String>,
    username: Option<String>,
    client_id: Option<String>,
    address: Option<String>,
    topic: Option<String>,
    /// The deciding rule as `file:line`, if a rule decided.
    rule: Option<String>,
    /// The explanation written with the record.
    message: String,
    /// For a read, write or subscribe: the verdict the policy in force gives now.
    now: Option<&'static str>,
}

/// The answer of `/page/api/denials`.
#[derive(Debug, Serialize)]
pub struct Denials {
    /// The audit log read, if one is configured.
    file: Option<String>,
    /// Newest first.
    records: Vec<Denial>,
    /// Why there are none to show, when that is not simply "no denial yet".
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// `GET /page/api/denials?limit=N`.
pub async fn denials(State(state): State<AppState>, Query(limit): Query<Limit>) -> Json<Denials> {
    let limit = limit.limit.unwrap_or(50).min(MAX_RECORDS);
    let Some(path) = state.audit_log() else {
        return Json(Denials {
            file: None,
            records: Vec::new(),
            note: Some(
                "no audit log is configured (plugin_opt_audit_log, or serve --audit-log): the \
                 broker writes its records to its own log"
                    .to_owned(),
            ),
        });
    };
    let loaded = state.live().current();
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || tail(&path, TAIL_BYTES)).await
    };
    let (records, note) = match read {
        Ok(Ok(text)) => (recent(&text, limit, &loaded), None),
        Ok(Err(e)) => (
            Vec::new(),
            Some(format!("cannot read the audit log {path:?}: {e}")),
        ),
        Err(e) => (
            Vec::new(),
            Some(format!("cannot read the audit log {path:?}: {e}")),
        ),
    };
    Json(Denials {
        file: Some(path),
        records,
        note,
    })
}

/// The last `bytes` of the file at `path`, from the first whole line on.
pub fn tail(path: &str, bytes: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    file.take(bytes).read_to_end(&mut buf)?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        // The first line is cut: drop it.
        let cut = text.find('\n').map_or(text.len(), |i| i + 1);
        text.drain(..cut);
    }
    Ok(text)
}

/// The denial records of `text` (JSON lines), newest first, at most `limit`. Lines that are not JSON
/// objects, and records of another kind (`shadow`), are left out.
pub fn recent(text: &str, limit: usize, loaded: &Loaded) -> Vec<Denial> {
    let mut out = Vec::new();
    for line in text.lines().rev() {
        if out.len() >= limit {
            break;
        }
        let Ok(serde_json::Value::Object(r)) = serde_json::from_str::<serde_json::Value>(line)
        else {
            continue;
        };
        if r.contains_key("kind") || r.get("verdict").and_then(|v| v.as_str()) != Some("deny") {
            continue;
        }
        let field = |k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let access = field("access");
        let (username, client_id, topic) = (field("username"), field("client_id"), field("topic"));
        let asked = match access.as_deref() {
            Some("read") => Some(Access::Read),
            Some("write") => Some(Access::Write),
            Some("subscribe") => Some(Access::Subscribe),
            _ => None,
        };
        let now = match (asked, &topic) {
            (Some(access), Some(topic)) => {
                let client = ClientRef::from_names(username.as_deref(), client_id.as_deref());
                Some(crate::audit::verdict_word(
                    loaded.acl.decide(client, topic, access).verdict,
                ))
            }
            _ => None,
        };
        out.push(Denial {
            time: field("time"),
            message: field("message").unwrap_or_default(),
            rule: field("rule"),
            address: field("address"),
            access,
            username,
            client_id,
            topic,
            now,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_drops_the_cut_line_and_keeps_whole_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "first line\nsecond\nthird\n").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(tail(p, 1000).unwrap(), "first line\nsecond\nthird\n");
        assert_eq!(tail(p, 10).unwrap(), "third\n");
        assert!(tail("/nonexistent/audit.log", 10).is_err());
    }
}
