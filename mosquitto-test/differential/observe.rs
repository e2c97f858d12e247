//! Running a [`Scenario`] against a broker and recording what it allowed.
//!
//! Write access: the identity publishes every topic at QoS 1 (MQTT 5); PUBACK `0x87` is a denial,
//! `0x00`/`0x10` an allowance. Read access: the identity subscribes to `#` and to `$P/#` for every `$P`
//! first level in use, the writer (allowed to publish every such topic) publishes each topic with a
//! distinct payload, and a PINGREQ/PINGRESP round trip on the identity's connection marks the end:
//! what arrived was allowed. [`super::generate::SYS_VERSION`] is read from the broker's own retained
//! message. Reads are not observed in scenarios whose acl file has a NUL byte (see
//! [`Scenario::observes_reads`]).

use mqtt_policy::policy::{Access, Verdict};

use super::generate::{
    readable, writer_can_publish, Identity, Scenario, WRITER_CLIENT_ID, WRITER_USERNAME,
};
use super::RunningBroker;
use crate::support::wire::{Connect, Delivery, WireClient};

/// The broker's decision in one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Index into the scenario's identities.
    pub identity: usize,
    /// The client id the broker used (the assigned one when CONNECT's was empty).
    pub client_id: String,
    /// Index into the scenario's topics.
    pub topic: usize,
    /// Read or write.
    pub access: Access,
    /// What the broker did.
    pub verdict: Verdict,
}

/// Runs every case of `scenario` on `broker` (which enforces `scenario.acl()`). Panics, with the
/// broker's log, when the broker misbehaves in a way no acl decision explains.
pub fn observe(broker: &dyn RunningBroker, scenario: &Scenario) -> Vec<Observed> {
    let fail = |what: String| -> ! {
        panic!(
            "{what}\nscenario {}\nacl:\n{}\nbroker log:\n{}",
            scenario.label,
            scenario.acl(),
            broker.log()
        )
    };
    let writer = Identity {
        username: Some(WRITER_USERNAME.to_owned()),
        client_id: WRITER_CLIENT_ID.to_owned(),
    };
    let mut writer = connect(broker, &writer).unwrap_or_else(|e| fail(format!("writer: {e}")));
    let mut observed = Vec::new();
    for (index, identity) in scenario.identities.iter().enumerate() {
        let mut client =
            connect(broker, identity).unwrap_or_else(|e| fail(format!("{identity:?}: {e}")));
        let mut verdicts = writes(&mut client, scenario)
            .unwrap_or_else(|e| fail(format!("{identity:?} writing: {e}")));
        if scenario.observes_reads() {
            verdicts.extend(
                reads(&mut client, &mut writer, scenario)
                    .unwrap_or_else(|e| fail(format!("{identity:?} reading: {e}"))),
            );
        }
        observed.extend(
            verdicts
                .into_iter()
                .map(|(topic, access, verdict)| Observed {
                    identity: index,
                    client_id: client.client_id().to_owned(),
                    topic,
                    access,
                    verdict,
                }),
        );
        client.disconnect();
    }
    writer.disconnect();
    observed
}

/// (topic index, access, verdict) for some cases of one identity.
type Verdicts = Vec<(usize, Access, Verdict)>;

/// The client publishes every topic at QoS 1; the PUBACK reason codes are the write verdicts.
fn writes(client: &mut WireClient, scenario: &Scenario) -> Result<Verdicts, String> {
    let messages: Vec<(&str, &[u8])> = scenario
        .topics
        .iter()
        .map(|t| (t.as_str(), &b"w"[..]))
        .collect();
    let reasons = client.publish_qos1(&messages).map_err(|e| e.to_string())?;
    let mut verdicts = Vec::new();
    for (topic, reason) in reasons.into_iter().enumerate() {
        let verdict = match reason {
            0x00 | 0x10 => Verdict::Allow,
            0x87 => Verdict::Deny,
            other => {
                return Err(format!(
                    "PUBACK 0x{other:02x} on {:?}",
                    scenario.topics[topic]
                ))
            }
        };
        verdicts.push((topic, Access::Write, verdict));
    }
    Ok(verdicts)
}

/// The client subscribes, the writer publishes every topic it may, and what reaches the client
/// (or, for [`super::generate::SYS_VERSION`], what the broker sent as retained) are the read verdicts.
fn reads(
    client: &mut WireClient,
    writer: &mut WireClient,
    scenario: &Scenario,
) -> Result<Verdicts, String> {
    let filters = subscription_filters(&scenario.topics);
    let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
    // SUBACK codes are not checked: a broker may refuse a filter that can deliver nothing (our
    // plugin does), which the read cases then observe as denials, as they should.
    client.subscribe(&filters).map_err(|e| e.to_string())?;
    let retained = client.sync().map_err(|e| e.to_string())?;

    let published: Vec<usize> = (0..scenario.topics.len())
        .filter(|&i| writer_can_publish(&scenario.topics[i]))
        .collect();
    let payloads: Vec<String> = published.iter().map(|i| format!("r{i}")).collect();
    let messages: Vec<(&str, &[u8])> = published
        .iter()
        .zip(&payloads)
        .map(|(&i, payload)| (scenario.topics[i].as_str(), payload.as_bytes()))
        .collect();
    let reasons = writer
        .publish_qos1(&messages)
        .map_err(|e| format!("writer: {e}"))?;
    if let Some((n, reason)) = reasons
        .iter()
        .enumerate()
        .find(|(_, r)| !matches!(r, 0x00 | 0x10))
    {
        return Err(format!(
            "the writer was refused (0x{reason:02x}) on {:?}: its `user` block must allow every topic",
            messages[n].0
        ));
    }
    let delivered = client.sync().map_err(|e| e.to_string())?;

    let mut verdicts = Vec::new();
    for (topic, name) in scenario.topics.iter().enumerate() {
        if !readable(name) {
            continue;
        }
        let arrived = if writer_can_publish(name) {
            arrived(&delivered, name, Some(format!("r{topic}").as_bytes()))
        } else {
            arrived(&retained, name, None)
        };
        let verdict = if arrived {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        verdicts.push((topic, Access::Read, verdict));
    }
    Ok(verdicts)
}

fn connect(broker: &dyn RunningBroker, identity: &Identity) -> Result<WireClient, String> {
    let connect = Connect {
        client_id: &identity.client_id,
        username: identity.username.as_deref(),
        password: identity.username.as_ref().map(|_| &b"any password"[..]),
    };
    match WireClient::connect(broker.port(), &connect) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(code)) => Err(format!(
            "CONNACK 0x{code:02x}: the broker under test must accept any login"
        )),
        Err(e) => Err(format!("connect: {e}")),
    }
}

/// `#`, plus `$P/#` for each `$P` first level of a readable topic.
fn subscription_filters(topics: &[String]) -> Vec<String> {
    let mut filters = vec!["#".to_owned()];
    for topic in topics.iter().filter(|t| t.starts_with('$') && readable(t)) {
        let first = topic.split('/').next().unwrap_or(topic);
        let filter = format!("{first}/#");
        if !filters.contains(&filter) {
            filters.push(filter);
        }
    }
    filters
}

fn arrived(deliveries: &[Delivery], topic: &str, payload: Option<&[u8]>) -> bool {
    deliveries
        .iter()
        .any(|d| d.topic == topic && payload.is_none_or(|p| d.payload == p))
}

/// The scenario's acl file and a table of the broker's answers: one row per identity, `R`/`W` where
/// allowed, `.` where denied, blank where not observed.
pub fn render(scenario: &Scenario, observed: &[Observed]) -> String {
    let mut out = format!("--- {} ---\n{}", scenario.label, scenario.acl());
    for (i, identity) in scenario.identities.iter().enumerate() {
        out.push_str(&format!(
            "{:?} {:?}:\n",
            identity.username, identity.client_id
        ));
        for (t, topic) in scenario.topics.iter().enumerate() {
            let mark = |access: Access, yes: char| {
                observed
                    .iter()
                    .find(|o| o.identity == i && o.topic == t && o.access == access)
                    .map_or(' ', |o| {
                        if o.verdict == Verdict::Allow {
                            yes
                        } else {
                            '.'
                        }
                    })
            };
            out.push_str(&format!(
                "  {}{} {topic:?}\n",
                mark(Access::Read, 'R'),
                mark(Access::Write, 'W')
            ));
        }
    }
    out
}
