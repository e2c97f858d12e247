use std::time::Duration;

use super::*;
use crate::broker::codec::{QoS, Version};
use crate::broker::session::{Delivery, Expiry, Message};

fn image(id: &str) -> SessionImage {
    SessionImage {
        client_id: id.into(),
        username: Some("user1".to_owned()),
        version: Version::V311,
        expiry: Expiry::Never,
        disconnected_at: None,
        subscriptions: Vec::new(),
        will: None,
        will_due: None,
    }
}

fn delivery(msg: &Arc<Message>) -> Delivery {
    Delivery {
        msg: Arc::clone(msg),
        qos: QoS::AtLeastOnce,
        retain: false,
        sub_ids: Vec::new(),
        seq: 0,
    }
}

fn queued(id: &str, seq: u64, msg: &Arc<Message>) -> Change {
    Change::Delivery {
        client_id: id.into(),
        seq,
        state: DeliveryState::Queued(delivery(msg)),
    }
}

fn count(store: &Store, t: TableDefinition<u64, &[u8]>) -> u64 {
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let tx = store.db.begin_read().unwrap();
    tx.open_table(t).unwrap().len().unwrap()
}

#[test]
fn what_was_committed_is_back_after_a_reopen_and_a_message_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mqtt-policy.db");
    let msg = Arc::new(Message::for_tests("a/b", b"hello"));
    {
        let (mut store, restored) = Store::open(&path).unwrap();
        assert!(restored.sessions.is_empty() && restored.retained.is_empty());
        let mut batch = Vec::new();
        for id in ["s1", "s2"] {
            batch.push(Change::Session(Box::new(image(id))));
        }
        // One message to two sessions, three deliveries.
        batch.push(queued("s1", 1, &msg));
        batch.push(queued("s2", 1, &msg));
        batch.push(Change::Delivery {
            client_id: "s2".into(),
            seq: 2,
            state: DeliveryState::Sent(7, delivery(&msg)),
        });
        batch.push(Change::Received {
            client_id: "s1".into(),
            pkid: 9,
            held: true,
        });
        batch.push(Change::Retained {
            topic: "a/b".try_into().unwrap(),
            msg: Some(Arc::clone(&msg)),
        });
        assert_eq!(store.commit(batch).unwrap(), 7);
        assert_eq!(count(&store, MESSAGES), 1, "one row for the message");
        // s1's delivery is acknowledged: the message stays for s2.
        store
            .commit(vec![Change::Delivered {
                client_id: "s1".into(),
                seq: 1,
            }])
            .unwrap();
        assert_eq!(count(&store, MESSAGES), 1);
    }
    let (mut store, restored) = Store::open(&path).unwrap();
    assert_eq!(restored.retained.len(), 1);
    assert_eq!(&*restored.retained[0].payload, b"hello");
    let by_id = |id: &str| {
        restored
            .sessions
            .iter()
            .find(|s| &*s.image.client_id == id)
            .unwrap()
    };
    assert!(by_id("s1").deliveries.is_empty());
    assert_eq!(by_id("s1").incoming, vec![9]);
    let s2 = &by_id("s2").deliveries;
    assert_eq!(s2.len(), 2);
    assert!(matches!(&s2[0], (1, DeliveryState::Queued(d)) if &*d.msg.payload == b"hello"));
    assert!(matches!(&s2[1], (2, DeliveryState::Sent(7, _))));
    // The two deliveries share one message in memory too.
    if let ((_, DeliveryState::Queued(a)), (_, DeliveryState::Sent(_, b))) = (&s2[0], &s2[1]) {
        assert!(Arc::ptr_eq(&a.msg, &b.msg));
    }
    // The session ends: its deliveries and then its message go.
    store
        .commit(vec![Change::SessionEnded("s2".into())])
        .unwrap();
    assert_eq!(count(&store, MESSAGES), 0);
    assert_eq!(store.messages.len(), 0);
}

#[test]
fn an_expired_retained_message_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let (mut store, _) = Store::open(&path).unwrap();
        let mut m = Message::for_tests("t", b"x");
        m.expires_at = Some(std::time::Instant::now() + Duration::from_millis(50));
        store
            .commit(vec![Change::Retained {
                topic: "t".try_into().unwrap(),
                msg: Some(Arc::new(m)),
            }])
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let (_, restored) = Store::open(&path).unwrap();
    assert!(restored.retained.is_empty());
}

#[test]
fn a_rewrite_replaces_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (mut store, _) = Store::open(&path).unwrap();
    store
        .commit(vec![Change::Session(Box::new(image("old")))])
        .unwrap();
    store
        .rewrite(vec![Change::Session(Box::new(image("new")))])
        .unwrap();
    drop(store);
    let (_, restored) = Store::open(&path).unwrap();
    let ids: Vec<_> = restored
        .sessions
        .iter()
        .map(|s| s.image.client_id.to_string())
        .collect();
    assert_eq!(ids, ["new"]);
}

fn refusal(path: &std::path::Path) -> String {
    Store::open(path).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn a_file_that_is_not_a_store_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mosquitto.db");
    let mut mosquitto = b"\x00\xB5\x00mosquitto db".to_vec();
    mosquitto.extend_from_slice(&[0, 0, 0, 6]);
    std::fs::write(&path, &mosquitto).unwrap();
    let e = refusal(&path);
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains("Mosquitto persistence file"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), mosquitto, "left as it was");

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5A; 10_000]).unwrap();
    let e = refusal(&junk);
    assert!(
        e.contains(&junk.display().to_string()) && e.contains("move it away"),
        "{e}"
    );
}

#[test]
fn a_truncated_or_flipped_store_is_refused_not_opened_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let (mut store, _) = Store::open(&path).unwrap();
        let mut batch = Vec::new();
        for i in 0..200u64 {
            let id = format!("c{i}");
            batch.push(Change::Session(Box::new(image(&id))));
            let msg = Arc::new(Message::for_tests("a/b", &[7u8; 100]));
            batch.push(queued(&id, 1, &msg));
        }
        store.commit(batch).unwrap();
    }
    let good = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.db");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let e = refusal(&cut);
    assert!(e.contains("cut.db") && e.contains("move it away"), "{e}");
    // Flips over the file: each copy either opens with all 200 sessions intact or is refused.
    let mut refused = 0;
    for k in 1..16 {
        let mut b = good.clone();
        let at = good.len() * k / 16;
        for x in &mut b[at..(at + 64).min(good.len())] {
            *x ^= 0xA5;
        }
        let flipped = dir.path().join(format!("flip{k}.db"));
        std::fs::write(&flipped, &b).unwrap();
        match Store::open(&flipped) {
            Ok((_, r)) => {
                assert_eq!(r.sessions.len(), 200, "flip at {at}");
                assert!(r.sessions.iter().all(|s| s.deliveries.len() == 1));
            }
            Err(e) => {
                refused += 1;
                assert!(e.to_string().contains(&format!("flip{k}.db")), "{e}");
            }
        }
    }
    assert!(refused > 0, "some flip must land on live data");
}

#[test]
fn a_missing_directory_and_a_second_opener_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/s.db");
    let e = refusal(&path);
    assert!(e.contains("persistence_location exists"), "{e}");
    let path = dir.path().join("s.db");
    let _first = Store::open(&path).unwrap();
    let e = refusal(&path);
    assert!(e.contains("in use"), "{e}");
}

/// Rewrites, in the store at `path`, the row `key` of `table` with `from` replaced by `to` in its
/// value (as a damaged or hand-edited file would have it).
fn rewrite(
    path: &std::path::Path,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    from: &[u8],
    to: &[u8],
) {
    use redb::ReadableTable;
    let db = Database::open(path).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(table).unwrap();
        let mut value = t.get(key).unwrap().expect("the row").value().to_vec();
        let at = value
            .windows(from.len())
            .position(|w| w == from)
            .expect("the bytes to replace");
        value.splice(at..at + from.len(), to.iter().copied());
        t.insert(key, &value[..]).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn a_stored_topic_the_grammar_refuses_is_an_error_naming_the_store_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A retained message whose topic became a filter.
    let path = dir.path().join("retained.db");
    {
        let (mut store, _) = Store::open(&path).unwrap();
        let m = Arc::new(Message::for_tests("a/b", b"kept"));
        let change = Change::Retained {
            topic: m.topic.clone(),
            msg: Some(m),
        };
        store.commit(vec![change]).unwrap();
    }
    rewrite(&path, RETAINED, "a/b", b"a/b", b"a/#");
    let e = refusal(&path);
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains("\"a/#\" is not valid"), "{e}");
    // A session's subscription whose filter has a wildcard inside a level.
    let path = dir.path().join("session.db");
    {
        let (mut store, _) = Store::open(&path).unwrap();
        let mut s = image("c1");
        let entry = crate::broker::subs::SubEntry {
            options: crate::broker::codec::SubOptions::qos(QoS::AtLeastOnce),
            id: None,
        };
        s.subscriptions.push(("x/+/y".try_into().unwrap(), entry));
        store.commit(vec![Change::Session(Box::new(s))]).unwrap();
    }
    rewrite(&path, SESSIONS, "c1", b"x/+/y", b"x/y+/");
    let e = refusal(&path);
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains("\"x/y+/\" is not valid"), "{e}");
}
