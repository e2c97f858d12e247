//! The one point every ACL decision of the broker passes through: PUBLISH (write), SUBSCRIBE,
//! UNSUBSCRIBE, each delivery and each re-check of a queued one (read), Wills, retained messages'
//! sources, and the re-checks of stored subscriptions (on reconnect and on SIGHUP). It decides with
//! the policy in force, writes the audit record of a denial (a withheld delivery once per client and
//! topic, as the plugin does), counts it (with metrics on), and compares it with the shadow policy.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{who, Action};
use crate::audit::{AuditRecord, LoginDenial, Peer, Withheld, WithheldDeliveries};
use crate::broker::security::Security;
use crate::broker::session::{AddressText, Session};
use crate::enforce::metrics::Metrics;
use crate::policy::passwd::AuthResult;
use crate::policy::topic::TopicFilter;
use crate::policy::{Access, ClientRef, Decision, Reason};

/// How many (client, topic) pairs of withheld deliveries are remembered for the audit log.
const WITHHELD_CAPACITY: usize = 100_000;
/// How many usernames one message's [`Reads`] remembers.
const READS_REMEMBERED: usize = 4;

/// The usernames allowed to read the topic of the message being routed, while it is: another
/// subscriber with one of them is allowed without walking the policy again. Only when the policy's
/// read decisions do not depend on the client id ([`Security::reads_ignore_client_id`]) and for
/// clients whose id has no wildcard; only allows are remembered (a denial is decided and audited
/// each time), and only for one message, under one policy. Not with a shadow policy (which may read
/// client ids, and must see every decision); with metrics, each remembered allow is still counted, with
/// the rule that made it.
#[derive(Debug, Default)]
pub(super) struct Reads {
    active: bool,
    allowed: Vec<(Option<String>, Reason)>,
}

/// The policy in force and what its decisions have recorded.
#[derive(Debug)]
pub(super) struct Authorizer {
    /// The policy (replaced whole on SIGHUP).
    pub(super) security: Arc<Security>,
    /// Deliveries withheld, remembered so that each (client, topic) is audited once.
    pub(super) withheld: WithheldDeliveries,
    /// The counters, with metrics on.
    pub(super) metrics: Option<Arc<Metrics>>,
    /// Read decisions taken for the message being routed.
    reads: Reads,
}

impl Authorizer {
    pub(super) fn new(security: Arc<Security>) -> Authorizer {
        Authorizer {
            security,
            withheld: WithheldDeliveries::new(WITHHELD_CAPACITY),
            metrics: None,
            reads: Reads::default(),
        }
    }

    /// Decides with the policy in force, counting the decision and comparing it with the shadow
    /// policy (whose disagreement records go to `out`).
    fn decide(
        &self,
        client: ClientRef<'_>,
        topic: &str,
        access: Access,
        address: Option<IpAddr>,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) -> Decision {
        let security = &self.security;
        let decision = match &self.metrics {
            Some(m) => m.decide(access, security.hits(), || {
                security.decide(client, topic, access)
            }),
            None => security.decide(client, topic, access),
        };
        if let Some(shadow) = security.shadow() {
            let address = address.map(AddressText::new);
            let record = shadow
                .compare_acl(
                    client,
                    topic,
                    access,
                    decision,
                    || security.explain(client, topic, access, decision),
                    address.as_ref().map(AddressText::as_str),
                    wall,
                    self.metrics.as_deref(),
                )
                .record();
            if let Some(record) = record {
                out.push(Action::Audit(Box::new(
                    record.with_semantics(security.semantics()),
                )));
            }
        }
        if !decision.is_allowed() && access == Access::Read {
            if let Some(m) = &self.metrics {
                m.withheld();
            }
        }
        decision
    }

    /// A login was decided (`denial`: `None` when accepted): counted, and compared with the shadow
    /// password file (`password`: `None` when the password file does not apply, as for a
    /// certificate's username), whose verdict is `shadow` when a worker checked it, else checked now
    /// (through the shadow's caches: the router hands a login over when the shadow would need a hash).
    pub(super) fn login_decided(
        &self,
        peer: Peer<'_>,
        password: Option<&[u8]>,
        shadow: Option<AuthResult>,
        denial: Option<&LoginDenial>,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        if let Some(m) = &self.metrics {
            m.login(denial.map_or(Ok(()), Err));
        }
        let Some(candidate) = self.security.shadow() else {
            return;
        };
        let (Some(username), Some(_)) = (peer.username, password) else {
            return;
        };
        let verdict = shadow.or_else(|| candidate.verify_login(username, password));
        if let Some(record) = candidate.compare_login(
            peer,
            verdict.as_ref(),
            denial,
            wall,
            self.metrics.as_deref(),
        ) {
            out.push(Action::Audit(Box::new(
                record.with_semantics(self.security.semantics()),
            )));
        }
    }

    /// A message is being routed to `subscribers` clients: with more than one, remember the
    /// usernames allowed to read its topic until [`Authorizer::message_done`].
    pub(super) fn message_begins(&mut self, subscribers: usize) {
        self.reads.active = subscribers > 1
            && self.security.reads_ignore_client_id()
            && self.security.shadow().is_none();
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
        if remember {
            if let Some((_, reason)) = self
                .reads
                .allowed
                .iter()
                .find(|(u, _)| u.as_deref() == user)
            {
                if let Some(m) = &self.metrics {
                    m.decided(Access::Read, Decision::allow(*reason), self.security.hits());
                }
                return true;
            }
        }
        let decision = self.authorize_decision(s, topic, Access::Read, wall, out);
        let allowed = decision.is_allowed();
        if allowed && remember && self.reads.allowed.len() < READS_REMEMBERED {
            self.reads
                .allowed
                .push((user.map(str::to_owned), decision.reason));
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
        self.authorize_decision(s, topic, access, wall, out)
            .is_allowed()
    }

    /// [`Authorizer::authorize`], returning the decision.
    fn authorize_decision(
        &mut self,
        s: &Session,
        topic: &str,
        access: Access,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) -> Decision {
        let client = who(s);
        let decision = self.decide(client, topic, access, Some(s.address), wall, out);
        if decision.is_allowed() {
            return decision;
        }
        let first =
            access != Access::Read || self.withheld.note(&s.client_id, topic) == Withheld::First;
        if first {
            let explanation = self.security.explain(client, topic, access, decision);
            out.push(Action::Audit(Box::new(
                AuditRecord::acl(
                    wall,
                    Some(AddressText::new(s.address).as_str()),
                    explanation,
                )
                .with_semantics(self.security.semantics()),
            )));
        }
        decision
    }

    /// The stored subscriptions of `s` the policy now refuses (each audited), for the caller to
    /// remove: after SIGHUP, and when a persistent session resumes (CVE-2021-34434).
    pub(super) fn denied_subscriptions(
        &mut self,
        s: &Session,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) -> Vec<TopicFilter> {
        let mut denied = Vec::new();
        for f in s.subscriptions.keys() {
            if !self.authorize(s, f.as_str(), Access::Subscribe, wall, out) {
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
        let decision = self.decide(origin, topic, Access::Write, None, wall, out);
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
