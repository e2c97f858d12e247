//! The counters every front door keeps, and their Prometheus text exposition.
//!
//! One [`Metrics`] registry per process (the plugin's, the broker's), shared by `Arc` between the thread
//! that decides and the thread that serves `/metrics` or writes the textfile. Every counter is a relaxed
//! atomic: counting a decision is an add to a cache line nobody else writes, and reading them for a scrape
//! never blocks the decider. Label values are bounded: an access (4), a verdict (2), a login outcome (8), a
//! rule of the policy in force (its file and line: at most one series per acl line), never a username,
//! a client id or a topic.
//!
//! The decision latency histogram times one decision in [`LATENCY_SAMPLE`]: two clock reads cost more than
//! the counters themselves, and a sample is enough to draw the distribution.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::audit::LoginDenial;
use crate::policy::acl::Policy;
use crate::policy::{Access, Decision, Reason, Verdict};

/// One decision in this many is timed for the latency histogram (a power of two).
pub const LATENCY_SAMPLE: u64 = 64;

/// The histogram's upper bounds, in nanoseconds (the last bucket, `+Inf`, is implicit).
pub const LATENCY_BUCKETS_NS: [u64; 10] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000,
];

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The login outcomes counted, in label order: `ok`, then each [`LoginDenial`] kind.
pub const LOGIN_OUTCOMES: [&str; 8] = [
    "ok",
    "anonymous_not_allowed",
    "unknown_user",
    "wrong_password",
    "no_password",
    "unusable_entry",
    "no_password_file",
    "certificate",
];

fn login_index(outcome: Result<(), &LoginDenial>) -> usize {
    match outcome {
        Ok(()) => 0,
        Err(LoginDenial::AnonymousNotAllowed) => 1,
        Err(LoginDenial::UnknownUser) => 2,
        Err(LoginDenial::WrongPassword) => 3,
        Err(LoginDenial::NoPassword) => 4,
        Err(LoginDenial::UnusableEntry { .. }) => 5,
        Err(LoginDenial::NoPasswordFile) => 6,
        Err(LoginDenial::Certificate { .. }) => 7,
    }
}

const ACCESSES: [Access; 4] = [
    Access::Read,
    Access::Write,
    Access::Subscribe,
    Access::Unsubscribe,
];

fn access_index(access: Access) -> usize {
    match access {
        Access::Read => 0,
        Access::Write => 1,
        Access::Subscribe => 2,
        Access::Unsubscribe => 3,
    }
}

/// Hits of each rule of one compiled policy, by rule index. Made with the policy, kept beside it by the
/// front door (so counting a hit is an index, not a lookup) and registered with [`Metrics::policy_loaded`]
/// for the exposition.
#[derive(Debug)]
pub struct RuleHits {
    /// `(file, line)` of each rule, in the policy's order.
    rules: Vec<(Arc<str>, u32)>,
    hits: Box<[Counter]>,
}

impl Default for RuleHits {
    fn default() -> RuleHits {
        RuleHits::new(None)
    }
}

impl RuleHits {
    /// Counters for every rule of `policy` (none without an acl file).
    pub fn new(policy: Option<&Policy>) -> RuleHits {
        let rules: Vec<(Arc<str>, u32)> = match policy {
            Some(p) => {
                let file: Arc<str> = Arc::from(p.path());
                p.rules()
                    .iter()
                    .map(|r| (Arc::clone(&file), r.line))
                    .collect()
            }
            None => Vec::new(),
        };
        let hits = rules.iter().map(|_| Counter::default()).collect();
        RuleHits { rules, hits }
    }

    /// Counts the rule that made `decision`, if a rule made it.
    #[inline]
    pub fn hit(&self, reason: Reason) {
        let id = match reason {
            Reason::Rule(id)
            | Reason::SubscriptionMayDeliver(id)
            | Reason::SubscriptionDeniedBy(id) => id,
            _ => return,
        };
        if let Some(c) = self.hits.get(id.index()) {
            c.inc();
        }
    }

    /// The hits of rule `index` (for tests).
    pub fn get(&self, index: usize) -> u64 {
        self.hits.get(index).map_or(0, Counter::get)
    }
}

/// The decision latency histogram.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [Counter; LATENCY_BUCKETS_NS.len()],
    count: Counter,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, ns: u64) {
        if let Some(i) = LATENCY_BUCKETS_NS.iter().position(|&b| ns <= b) {
            self.buckets[i].inc();
        }
        self.count.inc();
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// What the exposition says about the policy in force; replaced on each load (cold path).
#[derive(Debug, Default)]
struct InForce {
    fingerprint: String,
    hits: Option<Arc<RuleHits>>,
}

/// The registry (see the module documentation).
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: [[Counter; 2]; 4],
    logins: [Counter; LOGIN_OUTCOMES.len()],
    withheld: Counter,
    shadow_disagreements: [Counter; 5],
    shadow_records_suppressed: Counter,
    shadow_loaded: AtomicBool,
    reloads_ok: Counter,
    reloads_failed: Counter,
    latency: Histogram,
    in_force: Mutex<InForce>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts one ACL decision, and the rule that made it in `hits`.
    #[inline]
    pub fn decided(&self, access: Access, decision: Decision, hits: &RuleHits) {
        let verdict = usize::from(decision.verdict == Verdict::Deny);
        self.decisions[access_index(access)][verdict].inc();
        hits.hit(decision.reason);
    }

    /// Decides with `decide`, timing one call in [`LATENCY_SAMPLE`], and counts the decision.
    #[inline]
    pub fn decide(
        &self,
        access: Access,
        hits: &RuleHits,
        decide: impl FnOnce() -> Decision,
    ) -> Decision {
        let sampled = self.latency_due(access);
        let decision = if sampled {
            let start = Instant::now();
            let d = decide();
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.latency.observe(ns);
            d
        } else {
            decide()
        };
        self.decided(access, decision, hits);
        decision
    }

    #[inline]
    fn latency_due(&self, access: Access) -> bool {
        let [allowed, denied] = &self.decisions[access_index(access)];
        (allowed.get() + denied.get()) % LATENCY_SAMPLE == 0
    }

    /// Counts one login.
    pub fn login(&self, outcome: Result<(), &LoginDenial>) {
        self.logins[login_index(outcome)].inc();
    }

    /// Counts one delivery withheld because the subscriber may not read the topic.
    #[inline]
    pub fn withheld(&self) {
        self.withheld.inc();
    }

    /// Counts a disagreement of the shadow policy (`None`: a login).
    pub fn shadow_disagreement(&self, access: Option<Access>) {
        let i = access.map_or(4, access_index);
        self.shadow_disagreements[i].inc();
    }

    /// Counts a shadow disagreement not written to the audit log (rate limit).
    pub fn shadow_record_suppressed(&self) {
        self.shadow_records_suppressed.inc();
    }

    /// Says whether a shadow policy is loaded.
    pub fn set_shadow_loaded(&self, loaded: bool) {
        self.shadow_loaded.store(loaded, Ordering::Relaxed);
    }

    /// A policy was loaded (at start, or by a successful reload): its fingerprint and rule counters.
    pub fn policy_loaded(&self, fingerprint: String, hits: Arc<RuleHits>) {
        let mut in_force = self.in_force.lock().unwrap_or_else(|e| e.into_inner());
        in_force.fingerprint = fingerprint;
        in_force.hits = Some(hits);
    }

    /// Counts a reload.
    pub fn reloaded(&self, ok: bool) {
        if ok {
            self.reloads_ok.inc()
        } else {
            self.reloads_failed.inc()
        }
    }

    /// The decisions counted for `access` and `verdict` (for tests and the page).
    pub fn decisions(&self, access: Access, verdict: Verdict) -> u64 {
        self.decisions[access_index(access)][usize::from(verdict == Verdict::Deny)].get()
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        header(
            &mut o,
            "mqtt_policy_decisions_total",
            "ACL decisions by access and verdict.",
            "counter",
        );
        for access in ACCESSES {
            for verdict in [Verdict::Allow, Verdict::Deny] {
                let _ = writeln!(
                    o,
                    "mqtt_policy_decisions_total{{access=\"{}\",verdict=\"{}\"}} {}",
                    access.as_str(),
                    verdict_str(verdict),
                    self.decisions(access, verdict)
                );
            }
        }
        header(
            &mut o,
            "mqtt_policy_logins_total",
            "Logins by outcome (ok, or why refused).",
            "counter",
        );
        for (i, outcome) in LOGIN_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                o,
                "mqtt_policy_logins_total{{outcome=\"{outcome}\"}} {}",
                self.logins[i].get()
            );
        }
        header(
            &mut o,
            "mqtt_policy_withheld_deliveries_total",
            "Deliveries withheld because the subscriber may not read the topic.",
            "counter",
        );
        let _ = writeln!(
            o,
            "mqtt_policy_withheld_deliveries_total {}",
            self.withheld.get()
        );
        let in_force = self.in_force.lock().unwrap_or_else(|e| e.into_inner());
        header(
            &mut o,
            "mqtt_policy_rule_hits_total",
            "Decisions made by each rule of the acl file in force (rules with hits only).",
            "counter",
        );
        if let Some(hits) = &in_force.hits {
            for (i, (file, line)) in hits.rules.iter().enumerate() {
                let n = hits.hits[i].get();
                if n > 0 {
                    let _ = writeln!(
                        o,
                        "mqtt_policy_rule_hits_total{{file=\"{}\",line=\"{line}\"}} {n}",
                        escape(file)
                    );
                }
            }
        }
        header(
            &mut o,
            "mqtt_policy_policy_info",
            "The policy in force: the SHA-256 of its files (acl file, then password file).",
            "gauge",
        );
        let _ = writeln!(
            o,
            "mqtt_policy_policy_info{{fingerprint=\"{}\"}} 1",
            escape(&in_force.fingerprint)
        );
        drop(in_force);
        header(
            &mut o,
            "mqtt_policy_reloads_total",
            "SIGHUP reloads by result (a failed one keeps the previous policy).",
            "counter",
        );
        let _ = writeln!(
            o,
            "mqtt_policy_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.get()
        );
        let _ = writeln!(
            o,
            "mqtt_policy_reloads_total{{result=\"failed\"}} {}",
            self.reloads_failed.get()
        );
        header(
            &mut o,
            "mqtt_policy_shadow_loaded",
            "1 when a shadow policy is loaded and compared, 0 when absent or failed to load.",
            "gauge",
        );
        let _ = writeln!(
            o,
            "mqtt_policy_shadow_loaded {}",
            u8::from(self.shadow_loaded.load(Ordering::Relaxed))
        );
        header(
            &mut o,
            "mqtt_policy_shadow_disagreements_total",
            "Decisions the shadow policy would have made differently, by access.",
            "counter",
        );
        for (i, access) in ["read", "write", "subscribe", "unsubscribe", "connect"]
            .iter()
            .enumerate()
        {
            let _ = writeln!(
                o,
                "mqtt_policy_shadow_disagreements_total{{access=\"{access}\"}} {}",
                self.shadow_disagreements[i].get()
            );
        }
        header(
            &mut o,
            "mqtt_policy_shadow_records_suppressed_total",
            "Shadow disagreements counted but not written to the audit log (rate limit).",
            "counter",
        );
        let _ = writeln!(
            o,
            "mqtt_policy_shadow_records_suppressed_total {}",
            self.shadow_records_suppressed.get()
        );
        header(
            &mut o,
            "mqtt_policy_decision_duration_seconds",
            "Time of one ACL decision by the engine (one decision in 64 is timed).",
            "histogram",
        );
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS_NS.iter().enumerate() {
            cumulative += self.latency.buckets[i].get();
            let _ = writeln!(
                o,
                "mqtt_policy_decision_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                seconds(*bound)
            );
        }
        let count = self.latency.count.get();
        let _ = writeln!(
            o,
            "mqtt_policy_decision_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "mqtt_policy_decision_duration_seconds_sum {}",
            seconds(self.latency.sum_ns.load(Ordering::Relaxed))
        );
        let _ = writeln!(o, "mqtt_policy_decision_duration_seconds_count {count}");
        o
    }
}

fn header(o: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
    }
}

/// Nanoseconds as seconds, exactly (`250` → `0.00000025`).
fn seconds(ns: u64) -> String {
    let s = format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_owned()
}

/// A label value escaped as the exposition format asks (`\`, `"`, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
