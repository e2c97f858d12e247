//! The one point every ACL decision of the broker passes through: PUBLISH (write), SUBSCRIBE,
//! UNSUBSCRIBE, each delivery and each re-check of a queued one (read), Wills, retained messages'
//! sources, and the re-checks of stored subscriptions (on reconnect and on SIGHUP). It decides with
//! the policy in force, writes the audit record of a denial (a withheld delivery once per client and
//! topic, as the plugin does), and is where a counter of decisions would go.

use std::sync::Arc;
use std::time::SystemTime;

use super::{who, Action};
use crate::audit::{AuditRecord, Withheld, WithheldDeliveries};
use crate::broker::security::Security;
use crate::broker::session::Session;
use crate::policy::{Access, ClientRef};

/// How many (client, topic) pairs of withheld deliveries are remembered for the audit log.
const WITHHELD_CAPACITY: usize = 100_000;
/// How many usernames one message's [`Reads`] remembers.
const READS_REMEMBERED: usize = 4;

/// The usernames allowed to read the topic of the message being routed, while it is: another
/// subscriber with one of them is allowed without walking the policy again. Only when the policy's
/// read decisions do not depend on the client id ([`Security::reads_ignore_client_id`]) and for
/// clients whose id has no wildcard; only allows are remembered (a denial is decided and audited
/// each time), and only for one message, under one policy.
#[derive(Debug, Default)]
pub(super) struct Reads {
    active: bool,
    allowed: Vec<Option<String>>,
}

/// The policy in force and what its decisions have recorded.
#[derive(Debug)]
pub(super) struct Authorizer {
    /// The policy (replaced whole on SIGHUP).
    pub(super) security: Arc<Security>,
    /// Deliveries withheld, remembered so that each (client, topic) is audited once.
    pub(super) withheld: WithheldDeliveries,
    /// Read decisions taken for the message being routed.
    reads: Reads,
}

impl Authorizer {
    pub(super) fn new(security: Arc<Security>) -> Authorizer {
        Authorizer {
            security,
            withheld: WithheldDeliveries::new(WITHHELD_CAPACITY),
            reads: Reads::default(),
        }
    }

    /// A message is being routed to `subscribers` clients: with more than one, remember the
    /// usernames allowed to read its topic until [`Authorizer::message_done`].
    pub(super) fn message_begins(&mut self, subscribers: usize) {
        self.reads.active = subscribers > 1 && self.security.reads_ignore_client_id();
    }

    /// The message is routed: forget its read decisions.
    pub(super) fn message_done(&mut self) {
        self.reads.active = false;
        self.reads.allowed.clear();
    }

    /// [`Authorizer::authorize`] for reading `topic`, the topic of the message being routed (see
    /// [`Authorizer::message_begins`]).
    pub(super) fn authorize_delivery(
        &mut self,
        s: &Session,
        topic: &str,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) -> bool {
        let remember = self.reads.active && !crate::policy::topic::has_wildcard(&s.client_id);
        let user = s.username.as_deref();
        if remember && self.reads.allowed.iter().any(|u| u.as_deref() == user) {
            return true;
        }
        let allowed = self.authorize(s, topic, Access::Read, wall, out);
        if allowed && remember && self.reads.allowed.len() < READS_REMEMBERED {
            self.reads.allowed.push(user.map(str::to_owned));
        }
        allowed
    }

    /// May session `s`'s client have `access` to `topic` (a topic name, or a filter for
    /// subscribe and unsubscribe)? A denial is audited; a denied read once per client and topic.
    pub(super) fn authorize(
        &mut self,
        s: &Session,
        topic: &str,
        access: Access,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) -> bool {
        let client = who(s);
        let decision = self.security.decide(client, topic, access);
        if decision.is_allowed() {
            return true;
        }
        let first =
            access != Access::Read || self.withheld.note(&s.client_id, topic) == Withheld::First;
        if first {
            let explanation = self.security.explain(client, topic, access, decision);
            out.push(Action::Audit(Box::new(
                AuditRecord::acl(wall, Some(&s.address), explanation)
                    .with_semantics(self.security.semantics()),
            )));
        }
        false
    }

    /// The stored subscriptions of `s` the policy now refuses (each audited), for the caller to
    /// remove: after SIGHUP, and when a persistent session resumes (CVE-2021-34434).
    pub(super) fn denied_subscriptions(
        &mut self,
        s: &Session,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) -> Vec<String> {
        let mut denied = Vec::new();
        for f in s.subscriptions.keys() {
            if !self.authorize(s, f, Access::Subscribe, wall, out) {
                denied.push(f.clone());
            }
        }
        denied
    }

    /// May `origin`, a client that may be gone (a retained message's publisher, under
    /// `check_retain_source`), still write `topic`? A denial is audited without an address, once
    /// per origin and topic.
    pub(super) fn authorize_origin(
        &mut self,
        origin: ClientRef<'_>,
        topic: &str,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) -> bool {
        let decision = self.security.decide(origin, topic, Access::Write);
        if decision.is_allowed() {
            return true;
        }
        if self.withheld.note(origin.client_id, topic) == Withheld::First {
            let explanation = self
                .security
                .explain(origin, topic, Access::Write, decision);
            out.push(Action::Audit(Box::new(
                AuditRecord::acl(wall, None, explanation).with_semantics(self.security.semantics()),
            )));
        }
        false
    }
}
