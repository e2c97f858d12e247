//! Decisions and their reasons.
//!
//! Every decision the engine makes is a [`Decision`]: a [`Verdict`] and the [`Reason`] behind it. The
//! reason is a small `Copy` value (a rule index or a fixed cause) so that the per-message path allocates
//! nothing; [`crate::policy::acl::Policy::explain`] expands it into a full [`Explanation`] (rule text, near
//! misses) when somebody needs to read it: the audit log, `mqtt-policy check`.

use serde::Serialize;

/// What a client asks to do with a topic or filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Receive a message published on a concrete topic (a delivery).
    Read,
    /// Publish a message on a concrete topic.
    Write,
    /// Subscribe with a topic filter.
    Subscribe,
    /// Unsubscribe a topic filter.
    Unsubscribe,
}

impl Access {
    /// The word used in audit records and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Subscribe => "subscribe",
            Access::Unsubscribe => "unsubscribe",
        }
    }
}

/// The identity an ACL decision is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientRef<'a> {
    /// The username from CONNECT; `None` for an anonymous client.
    ///
    /// Mosquitto 2.0 turns a zero-length username into no username (the real broker shows it: the
    /// anonymous list applies and `%u` patterns are skipped), so adapters pass `None` for it. The engine
    /// itself takes `Some("")` literally (`%u` becomes an empty string), as the acl algorithm would.
    pub username: Option<&'a str>,
    /// The client id (the broker-assigned one when the client sent an empty id).
    pub client_id: &'a str,
}

impl<'a> ClientRef<'a> {
    /// The client a question names, as `mqtt-policy check` and policy tests read it: a zero-length
    /// username is none (as Mosquitto treats it), and the client id defaults to the username, or
    /// `anonymous`.
    pub fn from_names(user: Option<&'a str>, client_id: Option<&'a str>) -> ClientRef<'a> {
        let username = user.filter(|u| !u.is_empty());
        ClientRef {
            username,
            client_id: client_id.or(username).unwrap_or("anonymous"),
        }
    }
}

/// Allowed or denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The access is granted.
    Allow,
    /// The access is refused.
    Deny,
}

/// Index of a rule in [`crate::policy::acl::Policy::rules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RuleId(pub u32);

impl RuleId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why a decision came out the way it did. Cheap to copy; see [`Explanation`] for the long form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// This rule matched and decided (a `deny` rule, or a rule granting the access).
    Rule(RuleId),
    /// Rules exist for this client but none matched with the access asked for.
    NoRuleMatched,
    /// The acl file gives this client nothing at all: no rules of its own and no patterns
    /// (an empty acl file denies everything, the CVE-2018-12550 rule).
    NoRulesForClient,
    /// Patterns exist and the username contains `+` or `#` (CVE-2017-7650): denied before patterns.
    DangerousUsername,
    /// Patterns exist and the client id contains `+` or `#` (CVE-2017-7650): denied before patterns.
    DangerousClientId,
    /// Writing under `$SYS` is always denied (except `$SYS/broker/connection/+/state`).
    SysWrite,
    /// Reading or writing a topic that starts with `$share` is always denied.
    SharedTopic,
    /// The topic is not a valid concrete topic (empty, or contains `+`/`#`): nothing matches it.
    InvalidTopic,
    /// The filter is not a valid subscription filter.
    InvalidFilter,
    /// Mosquitto's acl_file never checks UNSUBSCRIBE.
    UnsubscribeUnchecked,
    /// Mosquitto's acl_file never checks SUBSCRIBE either: granted unchecked when asked to
    /// (`plugin_opt_refuse_subscriptions false`); reads are still checked per message.
    SubscribeUnchecked,
    /// A subscription is granted because this rule could let some matching message through
    /// (reads are still checked per message).
    SubscriptionMayDeliver(RuleId),
    /// A subscription is refused: no rule lets this client read any topic the filter matches.
    SubscriptionNeverDelivers,
    /// A subscription is refused: this deny rule covers every topic the filter matches.
    SubscriptionDeniedBy(RuleId),
    /// A subscription is refused by the strict check of a broker that authorizes a SUBSCRIBE once
    /// instead of every delivery (`mqtt-policy serve --subscribe strict`): some topic the filter
    /// matches is denied to this client, or granted by no rule that can be shown to cover it.
    SubscriptionNotWhollyReadable,
}

/// A verdict and its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Allowed or denied.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// An allowing decision.
    pub const fn allow(reason: Reason) -> Self {
        Decision {
            verdict: Verdict::Allow,
            reason,
        }
    }
    /// A denying decision.
    pub const fn deny(reason: Reason) -> Self {
        Decision {
            verdict: Verdict::Deny,
            reason,
        }
    }
    /// `true` when the verdict is [`Verdict::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}
