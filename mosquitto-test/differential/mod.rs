//! The differential test: generated acl files and cases, where the engine
//! (`mqtt_policy::policy::acl::Policy`) must decide every read and write exactly as a real broker
//! enforcing the same file does.
//!
//! [`check`] takes the broker setup as a parameter ([`BrokerUnderTest`]), so the same scenarios check
//! mosquitto's built-in `acl_file` (here), our plugin inside mosquitto, and our own broker.
//!
//! Reproduce or explore: `MQTT_POLICY_DIFF_SEED=<n>|0x<hex>|random` picks the seed (printed by every
//! run), `MQTT_POLICY_DIFF_SCENARIOS=<n>` the number of acl files, and `MQTT_POLICY_DIFF_VERBOSE=1` prints
//! every scenario with the broker's answers (run with `--nocapture`).

pub mod compare;
pub mod generate;
pub mod observe;
mod quirks;
mod tally;
pub mod targets;

use std::time::Instant;

use crate::support::broker::MosquittoBroker;
use crate::support::rng::seed_from_env;
use crate::support::versions::Version;

/// The seed used when `MQTT_POLICY_DIFF_SEED` is unset, so that plain `cargo test` is deterministic.
pub const DEFAULT_SEED: u64 = 0x6d71_7474_2d70_6f6c;

/// The number of scenarios when `MQTT_POLICY_DIFF_SCENARIOS` is unset.
pub const DEFAULT_SCENARIOS: usize = 24;

/// At most this many disagreements are shrunk and described in detail (shrinking starts brokers).
const DESCRIBED: usize = 3;

/// At most this many further disagreements are listed, one line each.
const LISTED: usize = 40;

/// A way to start a broker that enforces a given acl file and accepts any login (any username and
/// password, and anonymous clients), listening on `127.0.0.1`.
pub trait BrokerUnderTest {
    /// A short name for reports, e.g. `mosquitto acl_file`.
    fn name(&self) -> String;
    /// Starts a broker enforcing the acl file `acl`. Panics (with the broker's log) if it cannot.
    fn start(&self, acl: &[u8]) -> Box<dyn RunningBroker>;
    /// The Mosquitto release whose `acl_file` the broker must decide as (the engine is compiled with
    /// that release's semantics).
    fn version(&self) -> Version {
        Version::Debian2011
    }
}

/// A broker started by a [`BrokerUnderTest`]; stops when dropped.
pub trait RunningBroker {
    /// Its loopback port.
    fn port(&self) -> u16;
    /// Its log so far, for failure messages.
    fn log(&self) -> String;
}

impl RunningBroker for MosquittoBroker {
    fn port(&self) -> u16 {
        MosquittoBroker::port(self)
    }

    fn log(&self) -> String {
        MosquittoBroker::log(self)
    }
}

/// Debian's mosquitto with its built-in `acl_file`, no password file and `allow_anonymous true`
/// (then any credentials are accepted: reference §1.4).
pub struct MosquittoAclFile;

impl BrokerUnderTest for MosquittoAclFile {
    fn name(&self) -> String {
        "mosquitto acl_file".to_owned()
    }

    fn start(&self, acl: &[u8]) -> Box<dyn RunningBroker> {
        let config = format!(
            "allow_anonymous true\nacl_file {{dir}}/{}\n",
            compare::ACL_NAME
        );
        Box::new(MosquittoBroker::start(&config, &[(compare::ACL_NAME, acl)]))
    }
}

/// A release's own built-in `acl_file` (on 2.1, its acl-file plugin, compiled into the broker and
/// loaded by the same `acl_file` key), no password file and `allow_anonymous true`.
pub struct AclFileOn(pub Version);

impl BrokerUnderTest for AclFileOn {
    fn name(&self) -> String {
        format!("{} acl_file", self.0)
    }

    fn start(&self, acl: &[u8]) -> Box<dyn RunningBroker> {
        let config = format!(
            "allow_anonymous true\nacl_file {{dir}}/{}\n",
            compare::ACL_NAME
        );
        Box::new(MosquittoBroker::start_on(
            self.0,
            &config,
            &[(compare::ACL_NAME, acl)],
        ))
    }

    fn version(&self) -> Version {
        self.0
    }
}

/// Runs the generated scenarios (seed and count from the environment, else the defaults) on `broker`
/// and panics with a report if the engine decides any case differently.
pub fn check(broker: &dyn BrokerUnderTest) {
    let count = std::env::var("MQTT_POLICY_DIFF_SCENARIOS")
        .map(|n| n.parse().expect("MQTT_POLICY_DIFF_SCENARIOS is a number"))
        .unwrap_or(DEFAULT_SCENARIOS);
    check_count(broker, count);
}

/// [`check`] with `count` scenarios (the seed still from `MQTT_POLICY_DIFF_SEED`, else the default).
pub fn check_count(broker: &dyn BrokerUnderTest, count: usize) {
    let seed = seed_from_env("MQTT_POLICY_DIFF_SEED", DEFAULT_SEED);
    eprintln!(
        "differential vs {}: seed {seed:#x} ({count} scenarios; MQTT_POLICY_DIFF_SEED to change)",
        broker.name()
    );
    check_scenarios(
        broker,
        &generate::scenarios(seed, count),
        &format!("seed {seed:#x}; rerun with MQTT_POLICY_DIFF_SEED={seed:#x}"),
    );
}

/// Runs `scenarios` on `broker` and panics with a report (mentioning `origin`) if the engine decides
/// any case differently.
pub fn check_scenarios(
    broker: &dyn BrokerUnderTest,
    scenarios: &[generate::Scenario],
    origin: &str,
) {
    let verbose = std::env::var_os("MQTT_POLICY_DIFF_VERBOSE").is_some();
    let name = broker.name();
    let started = Instant::now();
    let (mut found, mut tally) = (Vec::new(), tally::Tally::default());
    for scenario in scenarios {
        let policy = compile_or_fail(&name, broker.version(), scenario);
        let running = broker.start(scenario.acl().as_bytes());
        let observed = observe::observe(running.as_ref(), scenario);
        drop(running);
        let decisions = compare::engine_decisions(scenario, &policy, &observed);
        tally.add(&observed, &decisions);
        if verbose {
            eprintln!("{}", observe::render(scenario, &observed));
        }
        found.extend(compare::disagreements(scenario, &observed, &decisions));
    }
    let cases = tally.cases();
    eprintln!(
        "differential vs {name}: {cases} cases ({tally}), {} disagreements, {:.1?}",
        found.len(),
        started.elapsed()
    );
    if found.is_empty() {
        return;
    }
    let mut report = format!(
        "the engine and {name} disagree on {} of {cases} cases ({origin}). The first of up to \
         {DESCRIBED} scenarios, shrunk:\n",
        found.len()
    );
    // Describe the first disagreement of each of the first few scenarios, shrunk; list the rest.
    let mut described: Vec<&str> = Vec::new();
    let mut listed = 0;
    for (index, d) in found.iter().enumerate() {
        let label = d.scenario.label.as_str();
        if described.len() < DESCRIBED && !described.contains(&label) {
            described.push(label);
            report.push_str(&compare::describe(
                &name,
                compare::semantics_of(broker.version()),
                &compare::shrink(broker, d.clone()),
            ));
            continue;
        }
        if listed == LISTED {
            report.push_str(&format!("... and {} more\n", found.len() - index));
            break;
        }
        listed += 1;
        report.push_str(&format!(
            "also: {}: username {:?}, client id {:?}, topic {:?}, {}: {name} {:?}, engine {:?}\n",
            d.scenario.label,
            d.scenario.identities[0].username,
            d.client_id,
            d.scenario.topics[0],
            d.access.as_str(),
            d.broker,
            d.engine
        ));
    }
    panic!("{report}");
}

fn compile_or_fail(
    name: &str,
    version: Version,
    scenario: &generate::Scenario,
) -> mqtt_policy::policy::acl::Policy {
    compare::compile(scenario, compare::semantics_of(version)).unwrap_or_else(|e| {
        panic!(
            "the engine rejects an acl file that {name} is asked to load ({}): {e}\n{}",
            scenario.label,
            scenario.acl()
        )
    })
}

#[test]
fn engine_decides_every_generated_read_and_write_as_mosquitto_acl_file_does() {
    check(&MosquittoAclFile);
}
