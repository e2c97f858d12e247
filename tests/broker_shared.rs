//! Shared subscriptions (`$share/GROUP/FILTER`) on the real `mqtt-policy broker` with real clients
//! (rumqttc, MQTT 5 and 3.1.1), the tutorial's password and acl files. Every scenario also runs
//! against Debian's mosquitto 2.0.11 with the same files, which settles what the reference does; the
//! outcomes must be the same, except where the README lists a deliberate difference (a retained
//! message on subscribe, invalid share names), asserted here for each broker.

mod broker_support;

// The real-mosquitto harness of `mosquitto-test/`, borrowed: `/usr/sbin/mosquitto` started on a
// free port, killed on drop (`broker.rs` finds `process` and `versions` as its siblings, here at the crate root).
#[allow(dead_code)]
#[path = "../mosquitto-test/support/process.rs"]
mod process;

#[allow(dead_code)]
#[path = "../mosquitto-test/support/versions.rs"]
mod versions;

// `broker.rs` finds its `ports` sibling here too.
use broker_support::ports;

#[allow(dead_code)]
#[path = "../mosquitto-test/support/broker.rs"]
mod mosquitto_broker;

use std::time::{Duration, Instant};

use broker_support::{Broker, RawClient, TUTORIAL_ACL, TUTORIAL_USERS};
use mosquitto_broker::MosquittoBroker;
use mqtt_policy::broker::codec::{encode_subscribe_unchecked, QoS as RawQoS, SubOptions, Version};
use mqtt_policy::policy::passwd::{hash_password, HashKind};
use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, SubscribeReasonCode as Code5};
use rumqttc::v5::mqttbytes::QoS as Qos5;
use rumqttc::{Packet as Packet4, QoS, SubscribeReasonCode as Code4};
use tokio::sync::mpsc;

/// The group every scenario uses.
const GROUP: &str = "$share/g/bench/#";
/// How long any one wait may last.
const LIMIT: Duration = Duration::from_secs(15);

/// One of the two brokers, with the tutorial's files.
enum Target {
    Ours(Broker),
    Mosquitto(MosquittoBroker),
}

impl Target {
    fn ours() -> Target {
        Target::Ours(Broker::tutorial())
    }

    fn mosquitto() -> Target {
        let mut users = String::new();
        for (u, p) in TUTORIAL_USERS {
            let h = hash_password(p.as_bytes(), HashKind::Sha512Pbkdf2, Some(101));
            users.push_str(&format!("{u}:{h}\n"));
        }
        Target::Mosquitto(MosquittoBroker::start(
            "allow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n",
            &[
                ("users.txt", users.as_bytes()),
                ("acl.txt", TUTORIAL_ACL.as_bytes()),
            ],
        ))
    }

    fn port(&self) -> u16 {
        match self {
            Target::Ours(b) => b.port,
            Target::Mosquitto(m) => m.port(),
        }
    }

    fn log(&self) -> String {
        match self {
            Target::Ours(b) => b.log(),
            Target::Mosquitto(m) => m.log(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Target::Ours(_) => "mqtt-policy broker",
            Target::Mosquitto(_) => "mosquitto 2.0.11",
        }
    }

    /// Waits (bounded) until the broker has logged `text` more often than `before` times.
    fn wait_log(&self, text: &str, before: usize) {
        let deadline = Instant::now() + LIMIT;
        while self.log().matches(text).count() <= before {
            assert!(
                Instant::now() < deadline,
                "{}: no {text:?} in the log:\n{}",
                self.name(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn qos5(q: QoS) -> Qos5 {
    match q {
        QoS::AtMostOnce => Qos5::AtMostOnce,
        QoS::AtLeastOnce => Qos5::AtLeastOnce,
        QoS::ExactlyOnce => Qos5::ExactlyOnce,
    }
}

/// A message a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Got {
    topic: String,
    payload: String,
    retain: bool,
}

/// What a client's event loop reports.
enum Note {
    SubAck(bool),
    PubAck,
    Publish(Got),
}

enum Handle {
    V5(rumqttc::v5::AsyncClient),
    V311(rumqttc::AsyncClient),
}

/// A connected rumqttc client whose event loop runs in a task (aborted on drop).
struct Client {
    handle: Handle,
    notes: mpsc::UnboundedReceiver<Note>,
    task: tokio::task::JoinHandle<()>,
    /// Messages received so far.
    got: Vec<Got>,
    pubacks: usize,
    /// QoS 1 messages published so far (each gets a PUBACK).
    acks_due: usize,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Connects as `user` (the tutorial's password), MQTT 5 or 3.1.1; `persistent` (3.1.1 only):
    /// Clean Session 0.
    async fn connect(t: &Target, v5: bool, id: &str, user: &str, persistent: bool) -> Client {
        let password = TUTORIAL_USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, p)| *p)
            .expect("a tutorial user");
        let (tx, notes) = mpsc::unbounded_channel();
        let (handle, task) = if v5 {
            let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", t.port());
            o.set_credentials(user, password);
            o.set_keep_alive(Duration::from_secs(30));
            let (client, mut el) = rumqttc::v5::AsyncClient::new(o, 64);
            let task = tokio::spawn(async move {
                // Bounded: a scenario sees far fewer events.
                for _ in 0..100_000 {
                    let note = match el.poll().await {
                        Ok(rumqttc::v5::Event::Incoming(p)) => match p {
                            Packet5::SubAck(a) => {
                                Note::SubAck(matches!(a.return_codes[..], [Code5::Success(_)]))
                            }
                            Packet5::PubAck(_) => Note::PubAck,
                            Packet5::Publish(p) => Note::Publish(Got {
                                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                payload: String::from_utf8_lossy(&p.payload).into_owned(),
                                retain: p.retain,
                            }),
                            _ => continue,
                        },
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    if tx.send(note).is_err() {
                        break;
                    }
                }
            });
            (Handle::V5(client), task)
        } else {
            let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", t.port());
            o.set_credentials(user, password);
            o.set_keep_alive(Duration::from_secs(30));
            o.set_clean_session(!persistent);
            let (client, mut el) = rumqttc::AsyncClient::new(o, 64);
            let task = tokio::spawn(async move {
                for _ in 0..100_000 {
                    let note = match el.poll().await {
                        Ok(rumqttc::Event::Incoming(p)) => match p {
                            Packet4::SubAck(a) => {
                                Note::SubAck(matches!(a.return_codes[..], [Code4::Success(_)]))
                            }
                            Packet4::PubAck(_) => Note::PubAck,
                            Packet4::Publish(p) => Note::Publish(Got {
                                topic: p.topic.clone(),
                                payload: String::from_utf8_lossy(&p.payload).into_owned(),
                                retain: p.retain,
                            }),
                            _ => continue,
                        },
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    if tx.send(note).is_err() {
                        break;
                    }
                }
            });
            (Handle::V311(client), task)
        };
        Client {
            handle,
            notes,
            task,
            got: Vec::new(),
            pubacks: 0,
            acks_due: 0,
        }
    }

    fn note(&mut self, note: Note) -> Option<bool> {
        match note {
            Note::SubAck(ok) => return Some(ok),
            Note::PubAck => self.pubacks += 1,
            Note::Publish(g) => self.got.push(g),
        }
        None
    }

    /// Subscribes with QoS 1 and waits for the SUBACK; `true` if granted.
    async fn subscribe(&mut self, filter: &str) -> bool {
        match &self.handle {
            Handle::V5(c) => c.subscribe(filter, Qos5::AtLeastOnce).await.unwrap(),
            Handle::V311(c) => c.subscribe(filter, QoS::AtLeastOnce).await.unwrap(),
        }
        let wait = async {
            while let Some(note) = self.notes.recv().await {
                if let Some(ok) = self.note(note) {
                    return ok;
                }
            }
            panic!("the connection ended before the SUBACK");
        };
        tokio::time::timeout(LIMIT, wait).await.expect("a SUBACK")
    }

    async fn publish(&mut self, topic: &str, payload: &str, qos: QoS, retain: bool) {
        if qos != QoS::AtMostOnce {
            self.acks_due += 1;
        }
        match &self.handle {
            Handle::V5(c) => c
                .publish(topic, qos5(qos), retain, payload.to_owned())
                .await
                .unwrap(),
            Handle::V311(c) => c
                .publish(topic, qos, retain, payload.to_owned())
                .await
                .unwrap(),
        }
    }

    /// Publishes `n` messages to `topic` (payloads `prefix0`, `prefix1`, ...), then a QoS 1 message
    /// to a topic outside the group, and waits for every PUBACK: the broker has routed them all.
    async fn publish_n(&mut self, topic: &str, prefix: &str, n: usize, qos: QoS) {
        for i in 0..n {
            self.publish(topic, &format!("{prefix}{i}"), qos, false)
                .await;
        }
        self.publish("sync/x/y/z", "sync", QoS::AtLeastOnce, false)
            .await;
        let wait = async {
            while self.pubacks < self.acks_due {
                let note = self.notes.recv().await.expect("the publisher is connected");
                self.note(note);
            }
        };
        tokio::time::timeout(LIMIT, wait)
            .await
            .expect("every PUBACK");
    }

    /// Takes what arrived so far.
    fn drain(&mut self) {
        while let Ok(note) = self.notes.try_recv() {
            self.note(note);
        }
    }

    fn payloads(&self) -> Vec<&str> {
        self.got.iter().map(|g| g.payload.as_str()).collect()
    }
}

/// Waits (bounded) until the clients received `total` messages between them, then a little
/// longer for any extra (duplicate) delivery.
async fn settle(clients: &mut [&mut Client], total: usize) {
    let deadline = Instant::now() + LIMIT;
    loop {
        clients.iter_mut().for_each(|c| c.drain());
        let have: usize = clients.iter().map(|c| c.got.len()).sum();
        if have >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    clients.iter_mut().for_each(|c| c.drain());
}

/// N messages, two members (MQTT 5 and 3.1.1) who may read them all: each message reaches
/// exactly one member, and the members take turns.
async fn each_message_reaches_one_member(t: Target) {
    const N: usize = 40;
    let mut m5 = Client::connect(&t, true, "member-v5", "admin", false).await;
    let mut m3 = Client::connect(&t, false, "member-v311", "admin", false).await;
    assert!(m5.subscribe(GROUP).await, "{}: SUBACK", t.name());
    assert!(m3.subscribe(GROUP).await, "{}: SUBACK", t.name());
    let mut publisher = Client::connect(&t, true, "publisher", "admin", false).await;
    publisher
        .publish_n("bench/load", "m", N, QoS::AtLeastOnce)
        .await;
    settle(&mut [&mut m5, &mut m3], N).await;
    let mut all: Vec<&str> = m5.payloads();
    all.extend(m3.payloads());
    all.sort_unstable();
    let mut want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    want.sort_unstable();
    assert_eq!(all, want, "{}: each message exactly once", t.name());
    // Round-robin: with one publisher, strict alternation.
    assert_eq!(m5.got.len(), N / 2, "{}: {:?}", t.name(), m5.payloads());
    assert_eq!(m3.got.len(), N / 2, "{}: {:?}", t.name(), m3.payloads());

    // A member that unsubscribes gets nothing more; the other gets everything.
    let (before5, before3) = (m5.got.len(), m3.got.len());
    match &m5.handle {
        Handle::V5(c) => c.unsubscribe(GROUP).await.unwrap(),
        Handle::V311(_) => unreachable!(),
    }
    // The UNSUBACK is not reported; a SUBSCRIBE on the same connection is handled after it.
    assert!(m5.subscribe("elsewhere/x").await);
    publisher
        .publish_n("bench/load", "after", 6, QoS::AtLeastOnce)
        .await;
    settle(&mut [&mut m5, &mut m3], before5 + before3 + 6).await;
    assert_eq!(m5.got.len(), before5, "{}: unsubscribed", t.name());
    assert_eq!(m3.got.len(), before3 + 6, "{}", t.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_reaches_exactly_one_member_in_turn() {
    each_message_reaches_one_member(Target::ours()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_each_message_reaches_exactly_one_member_in_turn() {
    each_message_reaches_one_member(Target::mosquitto()).await;
}

/// The tutorial's `pattern readwrite +/+/+/%u`: user1 and pe.perez share a group; each may read
/// only its own topics. The member whose turn it is but who may not read the topic does not get
/// the message, and it is not passed on to the other member either (Mosquitto's `subs.c`).
async fn a_member_never_receives_what_it_may_not_read(t: Target) {
    const N: usize = 10;
    let mut u1 = Client::connect(&t, true, "member-user1", "user1", false).await;
    let mut pp = Client::connect(&t, false, "member-pe", "pe.perez", false).await;
    assert!(u1.subscribe(GROUP).await, "{}: SUBACK", t.name());
    assert!(pp.subscribe(GROUP).await, "{}: SUBACK", t.name());
    let mut admin = Client::connect(&t, true, "publisher", "admin", false).await;
    admin
        .publish_n("bench/x/y/user1", "u", N, QoS::AtLeastOnce)
        .await;
    admin
        .publish_n("bench/x/y/pe.perez", "p", N, QoS::AtMostOnce)
        .await;
    settle(&mut [&mut u1, &mut pp], N).await;
    assert!(
        u1.got.iter().all(|g| g.topic == "bench/x/y/user1"),
        "{}: {:?}",
        t.name(),
        u1.got
    );
    assert!(
        pp.got.iter().all(|g| g.topic == "bench/x/y/pe.perez"),
        "{}: {:?}",
        t.name(),
        pp.got
    );
    // Half of each batch: the other member's turns were lost, not redirected.
    assert_eq!(u1.got.len(), N / 2, "{}: {:?}", t.name(), u1.payloads());
    assert_eq!(pp.got.len(), N / 2, "{}: {:?}", t.name(), pp.payloads());
    if let Target::Ours(b) = &t {
        // Withheld deliveries are audited once per client and topic, as for any subscription.
        let records = b.wait_audit(2);
        let read = |client: &str, topic: &str| {
            records
                .iter()
                .any(|r| r["access"] == "read" && r["client_id"] == client && r["topic"] == topic)
        };
        assert!(read("member-pe", "bench/x/y/user1"), "{records:?}");
        assert!(read("member-user1", "bench/x/y/pe.perez"), "{records:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_never_receives_a_topic_its_user_may_not_read() {
    a_member_never_receives_what_it_may_not_read(Target::ours()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_a_member_never_receives_a_topic_its_user_may_not_read() {
    a_member_never_receives_what_it_may_not_read(Target::mosquitto()).await;
}

/// A persistent (Clean Session 0) member that goes offline keeps its turn: QoS 1 messages are
/// queued for it and arrive when it comes back, QoS 0 ones are lost; it is still a member after.
async fn an_offline_member_keeps_its_turn(t: Target) {
    let mut on = Client::connect(&t, true, "member-on", "admin", false).await;
    let mut off = Client::connect(&t, false, "member-off", "admin", true).await;
    assert!(on.subscribe(GROUP).await);
    assert!(off.subscribe(GROUP).await);
    let before = t.log().matches("Client member-off disconnected").count();
    match &off.handle {
        Handle::V311(c) => c.disconnect().await.unwrap(),
        Handle::V5(_) => unreachable!(),
    }
    t.wait_log("Client member-off disconnected", before);
    drop(off);
    let mut publisher = Client::connect(&t, true, "publisher", "admin", false).await;
    publisher
        .publish_n("bench/q1", "q1-", 4, QoS::AtLeastOnce)
        .await;
    publisher
        .publish_n("bench/q0", "q0-", 4, QoS::AtMostOnce)
        .await;
    settle(&mut [&mut on], 4).await;
    assert_eq!(
        on.payloads(),
        ["q1-0", "q1-2", "q0-0", "q0-2"],
        "{}",
        t.name()
    );
    let mut back = Client::connect(&t, false, "member-off", "admin", true).await;
    settle(&mut [&mut back], 2).await;
    assert_eq!(back.payloads(), ["q1-1", "q1-3"], "{}", t.name());
    publisher
        .publish_n("bench/later", "l", 2, QoS::AtLeastOnce)
        .await;
    settle(&mut [&mut on, &mut back], 6 + 2).await;
    assert_eq!(back.payloads(), ["q1-1", "q1-3", "l1"], "{}", t.name());
    assert_eq!(on.got.len(), 5, "{}: {:?}", t.name(), on.payloads());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_member_keeps_its_turn_and_its_membership() {
    an_offline_member_keeps_its_turn(Target::ours()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_an_offline_member_keeps_its_turn_and_its_membership() {
    an_offline_member_keeps_its_turn(Target::mosquitto()).await;
}

/// A retained message is not sent to a new shared subscription (MQTT 5 §3.3.1.3 sends them to
/// non-shared subscriptions; Mosquitto since 2.0.13). Debian's 2.0.11 still sends it.
async fn retained_on_subscribe(t: &Target) -> Vec<Got> {
    let mut publisher = Client::connect(t, true, "publisher", "admin", false).await;
    publisher
        .publish("bench/r", "kept", QoS::AtLeastOnce, true)
        .await;
    publisher
        .publish_n("bench/r", "x", 0, QoS::AtLeastOnce)
        .await;
    let mut m = Client::connect(t, true, "member", "admin", false).await;
    assert!(m.subscribe(GROUP).await);
    publisher
        .publish_n("bench/live", "live", 1, QoS::AtLeastOnce)
        .await;
    settle(&mut [&mut m], 2).await;
    m.got.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_not_sent_to_a_new_shared_subscription() {
    let got = retained_on_subscribe(&Target::ours()).await;
    let live = Got {
        topic: "bench/live".into(),
        payload: "live0".into(),
        retain: false,
    };
    assert_eq!(got, [live]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_2_0_11_sends_retained_messages_to_a_new_shared_subscription() {
    let got = retained_on_subscribe(&Target::mosquitto()).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].retain && got[0].payload == "kept", "{got:?}");
}

/// SUBSCRIBEs with an invalid share name or No Local, from MQTT 5 (`v5`) or 3.1.1: the answer,
/// as `"granted"`, `"DISCONNECT 0xNN"` or `"closed"`.
fn answer(t: &Target, v5: bool, filter: &str, no_local: bool) -> String {
    let version = if v5 { Version::V5 } else { Version::V311 };
    let (mut c, _) = RawClient::login_at(t.port(), version, "raw", Some(("admin", "admin1234")));
    let mut options = SubOptions::qos(RawQoS::AtMostOnce);
    options.no_local = no_local;
    // As it is, valid or not (a `Subscribe` holds only filters the grammar accepted).
    let mut bytes = Vec::new();
    encode_subscribe_unchecked(1, filter, options, version, &mut bytes);
    c.send_bytes(&bytes);
    match c.read() {
        Ok((0x90, _)) => "granted".into(),
        Ok((0xe0, body)) => format!("DISCONNECT {:#04x}", body.first().copied().unwrap_or(0)),
        Ok((first, body)) => format!("{first:#x} {body:?}"),
        Err(_) => "closed".into(),
    }
}

#[test]
fn invalid_share_names_and_no_local_are_refused_where_mosquitto_2_0_11_accepts_some() {
    // (filter, No Local, ours for MQTT 5, mosquitto 2.0.11 for MQTT 5)
    let cases = [
        ("$share", false, "DISCONNECT 0x82", "DISCONNECT 0x82"),
        ("$share/a+/x", false, "DISCONNECT 0x81", "DISCONNECT 0x81"),
        ("$share/", false, "DISCONNECT 0x82", "granted"),
        ("$share//x", false, "DISCONNECT 0x82", "granted"),
        ("$share/+/x", false, "DISCONNECT 0x82", "granted"),
        ("$share/#", false, "DISCONNECT 0x82", "granted"),
        ("$share/g", false, "DISCONNECT 0x82", "granted"),
        ("$share/g/", false, "DISCONNECT 0x82", "granted"),
        ("$share/g/x", true, "DISCONNECT 0x82", "granted"),
        ("$share/g/x", false, "granted", "granted"),
    ];
    let ours = Target::ours();
    let mosquitto = Target::mosquitto();
    for (filter, no_local, want_ours, want_mosquitto) in cases {
        assert_eq!(answer(&ours, true, filter, no_local), want_ours, "{filter}");
        assert_eq!(
            answer(&mosquitto, true, filter, no_local),
            want_mosquitto,
            "{filter}"
        );
        if !no_local {
            // MQTT 3.1.1 clients: the same, a refusal closing the connection without a packet.
            let closed_or = |v5_answer: &str| {
                if v5_answer == "granted" {
                    "granted".to_owned()
                } else {
                    "closed".to_owned()
                }
            };
            assert_eq!(answer(&ours, false, filter, false), closed_or(want_ours));
            assert_eq!(
                answer(&mosquitto, false, filter, false),
                closed_or(want_mosquitto)
            );
        }
    }
}
