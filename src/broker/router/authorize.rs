//! The one point every ACL decision of the broker passes through: PUBLISH (write), SUBSCRIBE,
//! UNSUBSCRIBE, each delivery and each re-check of a queued one (read), Wills, retained messages'
//! sources, and the re-checks of stored subscriptions (on reconnect and on SIGHUP). It decides with
//! the policy in force, writes the audit record of a denial (a withheld delivery once per client and
//! topic, as the plugin does), counts it (with metrics on), and compares it with the shadow policy.

use std::sync::Arc;
use std::time::SystemTime;

use super::{who, Action};
use crate::audit::{AuditRecord, LoginDenial, Peer, Withheld, WithheldDeliveries};
use crate::broker::security::Security;
use crate::broker::session::Session;
use crate::enforce::metrics::Metrics;
use crate::policy::{Access, ClientRef, Decision};

/// How many (client, topic) pairs of withheld deliveries are remembered for the audit log.
const WITHHELD_CAPACITY: usize = 100_000;

/// The policy in force and what its decisions have recorded.
#[derive(Debug)]
pub(super) struct Authorizer {
    /// The policy (replaced whole on SIGHUP).
    pub(super) security: Arc<Security>,
    /// Deliveries withheld, remembered so that each (client, topic) is audited once.
    pub(super) withheld: WithheldDeliveries,
    /// The counters, with metrics on.
    pub(super) metrics: Option<Arc<Metrics>>,
}

impl Authorizer {
    pub(super) fn new(security: Arc<Security>) -> Authorizer {
        Authorizer {
            security,
            withheld: WithheldDeliveries::new(WITHHELD_CAPACITY),
            metrics: None,
        }
    }

    /// Decides with the policy in force, counting the decision and comparing it with the shadow
    /// policy (whose disagreement records go to `out`).
    fn decide(
        &self,
        client: ClientRef<'_>,
        topic: &str,
        access: Access,
        address: Option<&str>,
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
            let record = shadow
                .compare_acl(
                    client,
                    topic,
                    access,
                    decision,
                    || security.explain(client, topic, access, decision),
                    address,
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
    /// certificate's username).
    pub(super) fn login_decided(
        &self,
        peer: Peer<'_>,
        password: Option<&[u8]>,
        denial: Option<&LoginDenial>,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        if let Some(m) = &self.metrics {
            m.login(denial.map_or(Ok(()), Err));
        }
        let Some(shadow) = self.security.shadow() else {
            return;
        };
        if password.is_none() {
            return;
        }
        if let Some(record) =
            shadow.compare_login(peer, password, denial, wall, self.metrics.as_deref())
        {
            out.push(Action::Audit(Box::new(
                record.with_semantics(self.security.semantics()),
            )));
        }
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
        let decision = self.decide(client, topic, access, Some(&s.address), wall, out);
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
