//! The engine's side of the comparison: its verdict for each observed case, the disagreements, a
//! shrinker that reduces a disagreement to a minimal acl file and case, and the report.

use std::fmt::Write as _;

use mqtt_policy::policy::acl::{parse_acl_as, reference::reference_verdict, Policy};
use mqtt_policy::policy::{Access, ClientRef, Decision, Semantics, Verdict};

use super::generate::{Identity, Scenario};
use super::observe::{observe, Observed};
use super::BrokerUnderTest;
use crate::support::versions::Version;

/// The name the acl file is loaded under, by the broker and by the engine.
pub const ACL_NAME: &str = "acl.txt";

/// A case where the engine and the broker disagree.
#[derive(Clone, Debug)]
pub struct Disagreement {
    /// The scenario, reduced to this case.
    pub scenario: Scenario,
    /// The client id the broker used.
    pub client_id: String,
    /// Read or write.
    pub access: Access,
    /// What the broker did.
    pub broker: Verdict,
    /// What the engine decided.
    pub engine: Verdict,
}

/// The identity the engine is asked about for a wire identity. Mosquitto 2.0 reads a zero-length
/// CONNECT username as no username at all (`packet__read_binary` returns NULL for length 0), so such a
/// client is anonymous; the adapters must hand the engine `None` for it.
pub fn client_ref<'a>(identity: &'a Identity, client_id: &'a str) -> ClientRef<'a> {
    ClientRef {
        username: identity.username.as_deref().filter(|u| !u.is_empty()),
        client_id,
    }
}

/// The engine's semantics for a broker of release `version`.
pub fn semantics_of(version: Version) -> Semantics {
    Semantics::from_version(version.semantics()).expect("2.0 or 2.1")
}

/// Compiles the scenario's acl file with `semantics`; `Err` with the engine's message if it rejects what
/// the broker accepted.
pub fn compile(scenario: &Scenario, semantics: Semantics) -> Result<Policy, String> {
    Policy::from_acl_as(ACL_NAME, scenario.acl().as_bytes(), semantics).map_err(|e| e.to_string())
}

/// The engine's decision for each observed case, in the same order.
pub fn engine_decisions(
    scenario: &Scenario,
    policy: &Policy,
    observed: &[Observed],
) -> Vec<Decision> {
    observed
        .iter()
        .map(|o| {
            let identity = &scenario.identities[o.identity];
            policy.decide(
                client_ref(identity, &o.client_id),
                &scenario.topics[o.topic],
                o.access,
            )
        })
        .collect()
}

/// The observed cases where the engine's `decisions` differ, each reduced to a one-case scenario.
pub fn disagreements(
    scenario: &Scenario,
    observed: &[Observed],
    decisions: &[Decision],
) -> Vec<Disagreement> {
    observed
        .iter()
        .zip(decisions)
        .filter(|(o, d)| o.verdict != d.verdict)
        .map(|(o, d)| Disagreement {
            scenario: Scenario {
                identities: vec![scenario.identities[o.identity].clone()],
                topics: vec![scenario.topics[o.topic].clone()],
                ..scenario.clone()
            },
            client_id: o.client_id.clone(),
            access: o.access,
            broker: o.verdict,
            engine: d.verdict,
        })
        .collect()
}

/// Removes acl lines one at a time while the disagreement persists (each attempt starts a broker).
pub fn shrink(broker: &dyn BrokerUnderTest, found: Disagreement) -> Disagreement {
    let mut best = found;
    let mut line = best.scenario.lines.len();
    while line > 0 {
        line -= 1;
        let mut candidate = best.scenario.clone();
        candidate.lines.remove(line);
        if let Some(smaller) = rerun(broker, &candidate, best.access) {
            best = smaller;
        }
    }
    best
}

/// Runs a one-identity, one-topic scenario; `Some` if the engine still disagrees on `access`.
fn rerun(
    broker: &dyn BrokerUnderTest,
    scenario: &Scenario,
    access: Access,
) -> Option<Disagreement> {
    let policy = compile(scenario, semantics_of(broker.version())).ok()?;
    let running = broker.start(scenario.acl().as_bytes());
    let observed: Vec<Observed> = observe(running.as_ref(), scenario)
        .into_iter()
        .filter(|o| o.access == access)
        .collect();
    let decisions = engine_decisions(scenario, &policy, &observed);
    disagreements(scenario, &observed, &decisions)
        .into_iter()
        .next()
}

/// A readable account of one disagreement: the acl file, the case, both answers, the engine's
/// explanation and the plain reference implementation's verdict.
pub fn describe(broker_name: &str, semantics: Semantics, d: &Disagreement) -> String {
    let scenario = &d.scenario;
    let identity = &scenario.identities[0];
    let topic = &scenario.topics[0];
    let acl = scenario.acl();
    let client = client_ref(identity, &d.client_id);
    let mut out = String::new();
    let _ = writeln!(out, "--- {} ---", scenario.label);
    let _ = writeln!(out, "{ACL_NAME}:");
    for (n, line) in acl.lines().enumerate() {
        let _ = writeln!(out, "  {:>3}| {line:?}", n + 1);
    }
    let _ = writeln!(
        out,
        "case: username {:?} (engine: {:?}), client id {:?}, topic {topic:?}, {}",
        identity.username,
        client.username,
        d.client_id,
        d.access.as_str()
    );
    let _ = writeln!(out, "{broker_name}: {:?}; engine: {:?}", d.broker, d.engine);
    if let Ok(policy) = Policy::from_acl_as(ACL_NAME, acl.as_bytes(), semantics) {
        let _ = writeln!(
            out,
            "engine explanation: {}",
            policy.explain(client, topic, d.access)
        );
    }
    if let Ok(file) = parse_acl_as(ACL_NAME, acl.as_bytes(), semantics) {
        let _ = writeln!(
            out,
            "reference implementation: {:?}",
            reference_verdict(&file, client, topic, d.access)
        );
    }
    out
}
