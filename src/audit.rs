//! Audit records: one for every denied login, publish and subscription, and one per (client, topic) for
//! withheld deliveries. Shared by the Mosquitto plugin and the standalone broker so that both write the
//! same records. Passwords never reach this module.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::policy::acl::{Explanation, NearMiss, ReasonDetail};
use crate::policy::Semantics;

/// Why a login was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoginDenial {
    /// The client sent no username and anonymous access is off.
    AnonymousNotAllowed,
    /// The username is not in the password file.
    UnknownUser,
    /// The password does not verify.
    WrongPassword,
    /// A username without a password.
    NoPassword,
    /// The user's entry in the password file is not a usable hash (plaintext, malformed).
    UnusableEntry {
        /// `file:line` of the entry.
        entry: String,
    },
    /// No password file is configured, so no named user can log in.
    NoPasswordFile,
    /// The listener takes usernames from client certificates and this client's gives none (no
    /// certificate, no Common Name, ...).
    Certificate {
        /// What is wrong, as a sentence.
        problem: String,
    },
}

impl std::fmt::Display for LoginDenial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginDenial::AnonymousNotAllowed => write!(
                f,
                "anonymous clients are not allowed (allow_anonymous false)"
            ),
            LoginDenial::UnknownUser => write!(f, "unknown user"),
            LoginDenial::WrongPassword => write!(f, "wrong password"),
            LoginDenial::NoPassword => write!(f, "a username was sent without a password"),
            LoginDenial::UnusableEntry { entry } => {
                write!(
                    f,
                    "the password entry at {entry} is not a valid hash, so this user cannot log in"
                )
            }
            LoginDenial::NoPasswordFile => write!(f, "no password file is configured"),
            LoginDenial::Certificate { problem } => write!(
                f,
                "the listener takes usernames from client certificates and {problem}"
            ),
        }
    }
}

/// The reason in an audit record: an ACL reason or a login refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AuditReason {
    /// An ACL decision's reason.
    Acl(ReasonDetail),
    /// A refused login.
    Login(LoginDenial),
    /// An accepted login (only in `shadow` records, where one policy accepts what the other refuses).
    LoginAccepted(LoginAccepted),
}

/// Why a login was accepted (`shadow` records only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoginAccepted {
    /// The password verified against the user's entry.
    PasswordVerified,
}

/// What was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditAccess {
    /// CONNECT.
    Connect,
    /// PUBLISH (or a Will).
    Write,
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// A delivery withheld.
    Read,
}

impl From<crate::policy::Access> for AuditAccess {
    fn from(a: crate::policy::Access) -> Self {
        match a {
            crate::policy::Access::Read => AuditAccess::Read,
            crate::policy::Access::Write => AuditAccess::Write,
            crate::policy::Access::Subscribe => AuditAccess::Subscribe,
            crate::policy::Access::Unsubscribe => AuditAccess::Unsubscribe,
        }
    }
}

/// One audit record: one JSON object per line in the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// `shadow` for a disagreement of the shadow policy (then `verdict`, `rule`, `reason` and `message`
    /// are the live policy's, and `shadow` holds the candidate's); absent for a denial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// UTC time, RFC 3339 with milliseconds.
    pub time: String,
    /// `deny` for a denial (the only records but `shadow` ones); the live verdict in a `shadow` record.
    pub verdict: &'static str,
    /// What was denied.
    pub access: AuditAccess,
    /// The username (`null` when the client sent none).
    pub username: Option<String>,
    /// The client id.
    pub client_id: Option<String>,
    /// The client's address.
    pub address: Option<String>,
    /// The topic or filter (`null` for a login).
    pub topic: Option<String>,
    /// The deciding rule as `file:line`, if a rule decided.
    pub rule: Option<String>,
    /// Why, as data.
    pub reason: AuditReason,
    /// When no rule matched: the nearest rules and why each missed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub near_misses: Vec<NearMiss>,
    /// Why, as a sentence.
    pub message: String,
    /// Which Mosquitto's reading of the files applied (`mosquitto-2.0` or `mosquitto-2.1`).
    pub semantics: Semantics,
    /// In a `shadow` record: what the shadow policy would have decided, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowSide>,
}

/// The shadow policy's side of a `shadow` audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShadowSide {
    /// `allow` or `deny`.
    pub verdict: &'static str,
    /// The deciding rule of the shadow acl file as `file:line`, if a rule decided.
    pub rule: Option<String>,
    /// Why, as data.
    pub reason: AuditReason,
    /// Why, as a sentence.
    pub message: String,
}

/// `allow` or `deny`, as records spell verdicts.
pub fn verdict_word(verdict: crate::policy::Verdict) -> &'static str {
    match verdict {
        crate::policy::Verdict::Allow => "allow",
        crate::policy::Verdict::Deny => "deny",
    }
}

/// Who a record is about.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer<'a> {
    /// Username, if any.
    pub username: Option<&'a str>,
    /// Client id, if known.
    pub client_id: Option<&'a str>,
    /// Address, if known.
    pub address: Option<&'a str>,
}

impl AuditRecord {
    /// A record for a denied ACL decision.
    pub fn acl(time: SystemTime, address: Option<&str>, explanation: Explanation) -> AuditRecord {
        let rule = explanation.reason.rule().map(|r| r.location());
        let message = one_line(&explanation.to_string());
        AuditRecord {
            kind: None,
            time: rfc3339(time),
            verdict: "deny",
            access: explanation.access.into(),
            username: explanation.username,
            client_id: Some(explanation.client_id),
            address: address.map(str::to_owned),
            topic: Some(explanation.topic),
            rule,
            reason: AuditReason::Acl(explanation.reason),
            near_misses: explanation.near_misses,
            message,
            semantics: Semantics::default(),
            shadow: None,
        }
    }

    /// A record for a refused login.
    pub fn login(time: SystemTime, peer: Peer<'_>, denial: LoginDenial) -> AuditRecord {
        let message = format!(
            "DENY: connect by {} (client id {:?}) because {denial}",
            peer.username.map_or_else(
                || match denial {
                    // The CONNECT's username is not what counts: the certificate gave none.
                    LoginDenial::Certificate { .. } => "a client".to_owned(),
                    _ => "an anonymous client".to_owned(),
                },
                |u| format!("user {u:?}")
            ),
            peer.client_id.unwrap_or("")
        );
        AuditRecord {
            kind: None,
            time: rfc3339(time),
            verdict: "deny",
            access: AuditAccess::Connect,
            username: peer.username.map(str::to_owned),
            client_id: peer.client_id.map(str::to_owned),
            address: peer.address.map(str::to_owned),
            topic: None,
            rule: None,
            reason: AuditReason::Login(denial),
            near_misses: Vec::new(),
            message,
            semantics: Semantics::default(),
            shadow: None,
        }
    }

    /// A `shadow` record: the live policy decided as `live` explains, the shadow policy as `shadow`.
    pub fn shadow_acl(
        time: SystemTime,
        address: Option<&str>,
        live: Explanation,
        shadow: Explanation,
    ) -> AuditRecord {
        let side = ShadowSide {
            verdict: verdict_word(shadow.verdict),
            rule: shadow.reason.rule().map(|r| r.location()),
            message: format!("shadow policy: {}", one_line(&shadow.to_string())),
            reason: AuditReason::Acl(shadow.reason),
        };
        let verdict = verdict_word(live.verdict);
        let mut record = AuditRecord::acl(time, address, live);
        record.kind = Some("shadow");
        record.verdict = verdict;
        record.shadow = Some(side);
        record
    }

    /// A `shadow` record of a login: the live policy's outcome and the shadow policy's.
    pub fn shadow_login(
        time: SystemTime,
        peer: Peer<'_>,
        live: Option<LoginDenial>,
        shadow: Option<LoginDenial>,
    ) -> AuditRecord {
        let side = |d: Option<LoginDenial>, who: &str| match d {
            None => (
                "allow",
                AuditReason::LoginAccepted(LoginAccepted::PasswordVerified),
                format!("{who}: the login is accepted"),
            ),
            Some(d) => (
                "deny",
                AuditReason::Login(d.clone()),
                format!("{who}: refused because {d}"),
            ),
        };
        let (live_verdict, live_reason, live_message) = side(live, "live policy");
        let (verdict, reason, message) = side(shadow, "shadow policy");
        AuditRecord {
            kind: Some("shadow"),
            time: rfc3339(time),
            verdict: live_verdict,
            access: AuditAccess::Connect,
            username: peer.username.map(str::to_owned),
            client_id: peer.client_id.map(str::to_owned),
            address: peer.address.map(str::to_owned),
            topic: None,
            rule: None,
            reason: live_reason,
            near_misses: Vec::new(),
            message: live_message,
            semantics: Semantics::default(),
            shadow: Some(ShadowSide {
                verdict,
                rule: None,
                reason,
                message,
            }),
        }
    }

    /// The record, saying that `semantics` applied.
    pub fn with_semantics(mut self, semantics: Semantics) -> AuditRecord {
        self.semantics = semantics;
        self
    }

    /// The record as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise audit record: {e}\"}}"))
    }
}

/// Joins the lines of a multi-line explanation into one: `; ` between sentences, a space after a `:`.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}

/// Formats a time as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T20:00:46.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// An append-only JSON-lines audit file.
#[derive(Debug)]
pub struct JsonLinesFile {
    file: File,
}

impl JsonLinesFile {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &str) -> io::Result<JsonLinesFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLinesFile { file })
    }

    /// Appends one record as one line, in a single write.
    pub fn write(&mut self, record: &AuditRecord) -> io::Result<()> {
        let mut line = record.to_json();
        line.push('\n');
        self.file.write_all(line.as_bytes())
    }
}

/// What [`WithheldDeliveries::note`] says about a withheld delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withheld {
    /// First time for this client and topic: write a record.
    First,
    /// Seen before (this many times in all, this one included): only counted.
    Repeat(u64),
}

/// Remembers which (client, topic) deliveries were already recorded, so that a busy `#` subscriber
/// produces one record per topic, then only counts. Bounded: past `capacity` pairs, further pairs are
/// counted in [`WithheldDeliveries::overflow`] without a record.
#[derive(Debug)]
pub struct WithheldDeliveries {
    seen: HashMap<String, HashMap<String, u64>>,
    pairs: usize,
    capacity: usize,
    overflow: u64,
}

impl WithheldDeliveries {
    /// A tracker remembering at most `capacity` pairs.
    pub fn new(capacity: usize) -> Self {
        WithheldDeliveries {
            seen: HashMap::new(),
            pairs: 0,
            capacity,
            overflow: 0,
        }
    }

    /// Notes a withheld delivery of `topic` to `client_id`. Allocates only for a new pair.
    pub fn note(&mut self, client_id: &str, topic: &str) -> Withheld {
        if let Some(count) = self
            .seen
            .get_mut(client_id)
            .and_then(|topics| topics.get_mut(topic))
        {
            *count += 1;
            return Withheld::Repeat(*count);
        }
        if self.pairs >= self.capacity {
            self.overflow += 1;
            return Withheld::Repeat(self.overflow);
        }
        self.pairs += 1;
        self.seen
            .entry(client_id.to_owned())
            .or_default()
            .insert(topic.to_owned(), 1);
        Withheld::First
    }

    /// Forgets a client (when it disconnects), returning how many deliveries to it were withheld in all.
    pub fn forget_client(&mut self, client_id: &str) -> u64 {
        let topics = self.seen.remove(client_id).unwrap_or_default();
        self.pairs -= topics.len();
        topics.values().sum()
    }

    /// Withheld deliveries not recorded because the tracker was full.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn explanations_become_one_readable_line() {
        let text =
            "DENY: x\n  because no rule matched\n  nearest rules:\n    a:1 `r`: needs 4 levels\n";
        assert_eq!(
            one_line(text),
            "DENY: x; because no rule matched; nearest rules: a:1 `r`: needs 4 levels"
        );
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_982_446_123);
        assert_eq!(rfc3339(t), "2026-11-29T20:00:46.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn withheld_deliveries_are_recorded_once_then_counted() {
        let mut w = WithheldDeliveries::new(2);
        assert_eq!(w.note("c1", "a/b"), Withheld::First);
        assert_eq!(w.note("c1", "a/b"), Withheld::Repeat(2));
        assert_eq!(w.note("c2", "a/b"), Withheld::First);
        assert_eq!(w.note("c3", "a/b"), Withheld::Repeat(1));
        assert_eq!(w.overflow(), 1);
        assert_eq!(w.forget_client("c1"), 2);
        assert_eq!(w.note("c3", "a/b"), Withheld::First);
    }
}
