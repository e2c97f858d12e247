//! `persistence true`: what the router tells the store, and a router started again from what the store
//! kept (through a real store file), behaving as if it had never stopped.

use super::*;
use crate::broker::store::{Change, Store};

/// The store changes among `actions`.
fn changes(actions: Vec<Action>) -> Vec<Change> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Store(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Writes `changes` to a store in `dir`, reopens it and starts a new router from it.
fn restart(dir: &std::path::Path, changes: Vec<Change>) -> T {
    let path = dir.join("mqtt-policy.db");
    {
        let (mut store, _) = Store::open(&path).unwrap();
        store.commit(changes).unwrap();
    }
    let (_store, restored) = Store::open(&path).unwrap();
    let mut t = T::new(&format!(
        "persistence true\npersistence_location {}\n",
        dir.display()
    ));
    t.r.restore(restored);
    t
}

fn will(topic: &str, delay: u32) -> Will {
    Will {
        topic: topic.try_into().unwrap(),
        payload: Arc::from(&b"gone"[..]),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay: Some(delay),
            ..Properties::default()
        },
    }
}

fn expiry(secs: u32) -> Properties {
    Properties {
        session_expiry: Some(secs),
        ..Properties::default()
    }
}

#[test]
fn clean_sessions_and_qos_0_tell_the_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = T::new(&format!(
        "persistence true\npersistence_location {}\n",
        dir.path().display()
    ));
    let mut all = t.connect(1, "c", Version::V311, true);
    all.extend(t.subscribe(1, "a", QoS::AtLeastOnce));
    all.extend(t.publish(1, "a", QoS::AtMostOnce, 0));
    all.extend(t.publish(1, "a", QoS::AtLeastOnce, 1));
    assert!(changes(all).is_empty());
}

#[test]
fn a_delayed_will_and_the_will_of_a_client_connected_at_the_crash_come_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = T::new(&format!(
        "persistence true\npersistence_location {}\n",
        dir.path().display()
    ));
    let mut all = Vec::new();
    // A persistent watcher, offline when the Wills come.
    all.extend(t.connect(1, "watcher", Version::V311, false));
    all.extend(t.subscribe(1, "status/#", QoS::AtLeastOnce));
    all.extend(t.ev(Event::Closed { conn: 1 }));
    // One client gone without DISCONNECT: its Will waits 5 s.
    all.extend(t.connect_with(
        2,
        "late",
        Version::V5,
        true,
        Some(will("status/late", 5)),
        expiry(3600),
    ));
    all.extend(t.ev(Event::Closed { conn: 2 }));
    // One still connected when the broker dies, its Will without delay.
    all.extend(t.connect_with(
        3,
        "up",
        Version::V5,
        true,
        Some(will("status/up", 0)),
        expiry(3600),
    ));
    let mut t = restart(dir.path(), changes(all));
    assert_eq!(t.r.session_count(), 3);
    // Right after the restart: the connected client's Will is due, the delayed one not yet.
    t.now = Instant::now() + Duration::from_secs(1);
    t.ev(Event::Tick);
    let got = publishes(&t.connect(4, "watcher", Version::V311, false), 4);
    let topics: Vec<_> = got.iter().filter_map(|p| p.topic.as_deref()).collect();
    assert_eq!(topics, ["status/up"]);
    t.now += Duration::from_secs(10);
    let got = publishes(&t.ev(Event::Tick), 4);
    let topics: Vec<_> = got.iter().filter_map(|p| p.topic.as_deref()).collect();
    assert_eq!(topics, ["status/late"]);
}

#[test]
fn in_flight_deliveries_are_sent_again_with_dup_and_the_same_packet_id_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = T::new(&format!(
        "persistence true\npersistence_location {}\n",
        dir.path().display()
    ));
    let mut all = Vec::new();
    all.extend(t.connect(1, "sub", Version::V311, false));
    all.extend(t.subscribe(1, "a", QoS::ExactlyOnce));
    all.extend(t.connect(2, "pub", Version::V311, false));
    let sent_before = t.publish(2, "a", QoS::AtLeastOnce, 7);
    let first = publishes(&sent_before, 1);
    assert_eq!(first.len(), 1);
    all.extend(sent_before);
    // A QoS 2 message received from the publisher (PUBREC sent) and not yet released.
    all.extend(t.publish(2, "a", QoS::ExactlyOnce, 8));
    let mut t = restart(dir.path(), changes(all));
    let again = publishes(&t.connect(3, "sub", Version::V311, false), 3);
    assert!(again.len() >= 2, "{again:?}");
    assert!(
        again[0].dup && again[0].pkid == first[0].pkid,
        "{:?}",
        again[0]
    );
    // The QoS 2 message resent by its publisher is acknowledged, not delivered again.
    t.connect(4, "pub", Version::V311, false);
    let resent = t.publish(4, "a", QoS::ExactlyOnce, 8);
    assert!(publishes(&resent, 3).is_empty());
    assert!(sent(&resent, 4)
        .iter()
        .any(|p| matches!(p, Packet::PubRec(a) if a.pkid == 8)));
}
