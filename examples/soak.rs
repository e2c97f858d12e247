//! The load of `benches/soak.sh`: many clients that connect, subscribe, publish at QoS 0, 1 and 2,
//! disconnect and come back, for a long time, with a maintained client library (rumqttc, MQTT 3.1.1).
//!
//! ```text
//! cargo build --release --example soak
//! target/release/examples/soak --port P [--clients 10000] [--secs 1800] [--interval-ms 2000]
//!                              [--ramp-secs 30] [--drain-secs 20]
//! ```
//!
//! Client `i` logs in as the tutorial's `user1` with client id `soak-i`; odd clients keep a persistent
//! session (Clean Session 0, subscription QoS 1), even ones a clean session (QoS 0). Each subscribes to
//! `soak/i/in/+` and, every `--interval-ms` (with jitter), publishes to its neighbour's topic
//! `soak/(i+1)/in/user1` at QoS 0, 1 or 2 in turn, allowed by the tutorial's `pattern readwrite
//! +/+/+/%u`; every 7th operation is a denied one instead (a publish to `soak/(i+1)/in/user2`, which must
//! never reach anyone). A session lasts 5–30 s, then the client disconnects cleanly and comes back after
//! up to 2 s; a session that would last past the load's end goes on through the drain. A probe client
//! publishes to itself every 100 ms and measures the round trip.
//!
//! What the QoS promises is checked: a QoS 1 or 2 message the broker acknowledged to its publisher (QoS 1:
//! PUBACK; QoS 2: PUBCOMP on the connection that had the PUBREC, see [`InFlight`]), for a receiver with a
//! persistent session, must reach that receiver (at least once) by the end, after a drain in which
//! everyone is connected. Every 10 s one line: `t= connected= published= acked= received=
//! outstanding= denied= leaked= errors= p50_ms= p99_ms=` (the probe's round trips in that interval);
//! at the end one `lost:` line per lost message (up to 50: payload, QoS, publisher, receiver, when its
//! publisher saw the acknowledgement), then `lost= leaked= errors=` and exit status 1 if any is above 0.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

/// The tutorial's user that every soak client logs in as.
const USER: (&str, &str) = ("user1", "123456");

struct Args {
    port: u16,
    clients: u64,
    secs: u64,
    interval_ms: u64,
    ramp_secs: u64,
    drain_secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        port: 1883,
        clients: 10_000,
        secs: 1800,
        interval_ms: 2000,
        ramp_secs: 30,
        drain_secs: 20,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{}: a number", pair[0]))
        };
        match pair[0].as_str() {
            "--port" => a.port = u16::try_from(number()).expect("a port"),
            "--clients" => a.clients = number(),
            "--secs" => a.secs = number(),
            "--interval-ms" => a.interval_ms = number(),
            "--ramp-secs" => a.ramp_secs = number(),
            "--drain-secs" => a.drain_secs = number(),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// What every client adds up.
#[derive(Default)]
struct Totals {
    connected: AtomicU64,
    published: AtomicU64,
    acked: AtomicU64,
    received: AtomicU64,
    denied: AtomicU64,
    leaked: AtomicU64,
    errors: AtomicU64,
    /// Which acknowledged messages have not arrived, and which arrived before their acknowledgement,
    /// under one lock: with a lock each, a delivery and its acknowledgement handled at the same moment
    /// on two threads could each miss the other and leave the message counted as lost.
    ledger: Mutex<Ledger>,
    /// When the run started.
    started: Option<Instant>,
    /// Per client: its persistent session exists at the broker (its first SUBACK came). Messages to a
    /// session that does not exist yet are not the broker's to keep.
    has_session: Vec<std::sync::atomic::AtomicBool>,
}

/// Messages for persistent receivers, by id.
#[derive(Default)]
struct Ledger {
    /// Acknowledged to the publisher, not yet received: when the acknowledgement came (since the
    /// start), so that a loss can be looked up in the broker's log.
    outstanding: HashMap<u64, Duration>,
    /// Received before its publisher saw the acknowledgement (or never will: it disconnected).
    early: HashSet<u64>,
}

impl Totals {
    fn new(clients: u64, started: Instant) -> Totals {
        Totals {
            started: Some(started),
            has_session: (0..clients)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
            ..Totals::default()
        }
    }

    /// Counts a delivery to client `i` (`keep`: its session is persistent).
    fn delivered(&self, keep: bool, p: &rumqttc::Publish) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if p.topic.ends_with("/user2") {
            self.leaked.fetch_add(1, Ordering::Relaxed);
        } else if keep && p.qos != QoS::AtMostOnce {
            if let Some((from, s)) = std::str::from_utf8(&p.payload)
                .ok()
                .and_then(|t| t.split_once(':'))
                .and_then(|(f, s)| Some((f.parse().ok()?, s.parse().ok()?)))
            {
                self.received_persistent(message_id(from, s));
            }
        }
    }

    fn acked_for_persistent(&self, id: u64) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        let mut ledger = self.ledger.lock().unwrap();
        if !ledger.early.remove(&id) {
            let at = self.started.map(|s| s.elapsed()).unwrap_or_default();
            ledger.outstanding.insert(id, at);
        }
    }

    fn received_persistent(&self, id: u64) {
        let mut ledger = self.ledger.lock().unwrap();
        if ledger.outstanding.remove(&id).is_none() {
            ledger.early.insert(id);
        }
    }
}

/// A publisher's books of its messages between `try_publish` and their acknowledgement: those handed
/// to rumqttc and not yet out, and the QoS 1 and 2 ones out and not yet acknowledged, by packet id,
/// with the message id when it is counted.
///
/// Three things of rumqttc 0.25 shape them:
/// - It frees a packet id at PUBREC, not at PUBCOMP as MQTT 3.1.1 §2.3.1 says, so a new PUBLISH may
///   carry the id of a QoS 2 message still awaiting its PUBCOMP: the messages awaiting PUBACK or
///   PUBREC are kept apart from those awaiting PUBCOMP, or the new one would be taken for a resend.
/// - At a reconnection it sends again what was unacknowledged, with the same packet ids, but only
///   when the CONNACK says the session is still there; otherwise it drops all of it, and also
///   every request still waiting in its channel ([`InFlight::session_started`]).
/// - Its `Outgoing::Publish` events are the only place a message's packet id shows, so every loop
///   that polls the event loop must book them ([`InFlight::went_out`]), the one that drains a session
///   before its DISCONNECT too.
#[derive(Default)]
struct InFlight {
    /// Handed to rumqttc and not yet out, in order: (message id, QoS, counted).
    queued: VecDeque<(u64, u8, bool)>,
    /// PUBLISH sent, awaiting PUBACK (QoS 1) or PUBREC (QoS 2).
    published: HashMap<u16, Option<u64>>,
    /// PUBREC received and PUBREL sent on this connection, awaiting PUBCOMP.
    released: HashMap<u16, Option<u64>>,
}

impl InFlight {
    /// A publish was handed to rumqttc (`try_publish` succeeded).
    fn handed(&mut self, mid: u64, qos: u8, counted: bool) {
        self.queued.push_back((mid, qos, counted));
    }

    /// rumqttc wrote a PUBLISH with `pkid` (0 for QoS 0): one sent before and not yet acknowledged,
    /// sent again on a new connection, or else the oldest one handed to it.
    fn went_out(&mut self, pkid: u16) {
        if pkid != 0 && self.published.contains_key(&pkid) {
            return;
        }
        if let Some((mid, qos, counted)) = self.queued.pop_front() {
            if qos > 0 {
                self.published.insert(pkid, counted.then_some(mid));
            }
        }
    }

    /// Books an acknowledgement. QoS 1: PUBACK, the broker owns the message. QoS 2: only PUBCOMP on
    /// the connection that had the PUBREC. A broker may keep a QoS 2 message back until PUBREL
    /// (MQTT 3.1.1 §4.3.3, "method B", as Mosquitto does), and a clean session that ends before then
    /// takes the message with it; see [`InFlight::connection_lost`].
    fn acknowledged(&mut self, packet: &Packet, totals: &Totals) {
        let counted = match packet {
            Packet::PubAck(ack) => self.published.remove(&ack.pkid).flatten(),
            Packet::PubRec(rec) => {
                if let Some(mid) = self.published.remove(&rec.pkid) {
                    self.released.insert(rec.pkid, mid);
                }
                None
            }
            Packet::PubComp(comp) => self.released.remove(&comp.pkid).flatten(),
            _ => None,
        };
        if let Some(mid) = counted {
            totals.acked_for_persistent(mid);
        }
    }

    /// The connection ended. A clean session ends with it: a QoS 2 message between its PUBREC and its
    /// PUBCOMP is the broker's to discard, so it is no longer counted (the PUBREL rumqttc sends on the
    /// next connection gets a PUBCOMP from a new session).
    fn connection_lost(&mut self, clean: bool) {
        if clean {
            for mid in self.released.values_mut() {
                *mid = None;
            }
        }
    }

    /// A CONNACK came. Without a session present, rumqttc has dropped everything from before: what
    /// was unacknowledged is never sent again (and never acknowledged), and what was handed to it
    /// and not yet out is never sent at all.
    fn session_started(&mut self, session_present: bool) {
        if !session_present {
            *self = InFlight::default();
        }
    }
}

/// A message id: the publisher's number and its sequence number, in the payload as `from:seq`.
fn message_id(from: u64, seq: u64) -> u64 {
    (from << 32) | (seq & 0xffff_ffff)
}

fn persistent(i: u64) -> bool {
    i % 2 == 1
}

/// A small deterministic generator (xorshift) per client, for jitter and session lengths.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

fn options(id: &str, port: u16, clean: bool) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_credentials(USER.0, USER.1);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_clean_session(clean);
    o.set_max_packet_size(64 * 1024, 64 * 1024);
    o
}

/// One client's life until `stop`, then connected through the drain until `end`. One rumqttc event loop
/// serves every session of the client, so that what a persistent session has in flight (unacknowledged
/// publishes, PUBRELs) is sent again on the next connection with its packet id, as MQTT requires.
async fn client(i: u64, a: Arc<Args>, totals: Arc<Totals>, stop: Instant, end: Instant) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    tokio::time::sleep(Duration::from_millis(rng.next(a.ramp_secs * 1000 + 1))).await;
    let neighbour = (i + 1) % a.clients;
    let mut seq: u64 = 0;
    let id = format!("soak-{i}");
    let keep = persistent(i);
    let (client, mut events) = AsyncClient::new(options(&id, a.port, !keep), 64);
    // Deliveries at QoS 1 at most: rumqttc forgets the packet ids of incoming QoS 2 messages when it
    // reconnects, and then refuses the broker's PUBREL for them as unsolicited.
    let sub_qos = if keep {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let mut in_flight = InFlight::default();
    while Instant::now() < end {
        if client
            .try_subscribe(format!("soak/{i}/in/+"), sub_qos)
            .is_err()
        {
            totals.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A session that would reach `stop` lasts through the drain instead: ending every session at
        // `stop` would make all clients reconnect in the same instant, a login storm rather than
        // churn (benches/login-storm.sh measures those).
        let planned = Instant::now() + Duration::from_secs(5 + rng.next(26));
        let session_end = if planned >= stop { end } else { planned };
        let mut connected = false;
        let mut next_op = Instant::now() + Duration::from_millis(rng.next(a.interval_ms) + 1);
        loop {
            if Instant::now() >= session_end {
                break;
            }
            let wake = next_op.min(session_end);
            tokio::select! {
                event = events.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                        in_flight.session_started(connack.session_present);
                        connected = true;
                        totals.connected.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => totals.delivered(keep, &p),
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        totals.has_session[i as usize].store(true, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => in_flight.went_out(pkid),
                    Ok(Event::Incoming(packet)) => in_flight.acknowledged(&packet, &totals),
                    Ok(_) => {}
                    Err(e) => {
                        // rumqttc keeps the session's state and connects again at the next poll.
                        in_flight.connection_lost(!keep);
                        if connected {
                            connected = false;
                            totals.connected.fetch_sub(1, Ordering::Relaxed);
                        }
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("soak-{i}: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                // Not while connecting: a poll cancelled then drops the connection it is making
                // after its CONNECT went out, and the next poll connects again, so the broker sees
                // two connections of one client at once and may close the one that is kept.
                _ = tokio::time::sleep_until(wake.into()), if connected => {
                    if Instant::now() < next_op || Instant::now() >= stop {
                        next_op = Instant::now() + Duration::from_millis(a.interval_ms);
                        continue;
                    }
                    seq += 1;
                    next_op = Instant::now()
                        + Duration::from_millis(a.interval_ms / 2 + rng.next(a.interval_ms));
                    if seq.is_multiple_of(7) {
                        let topic = format!("soak/{neighbour}/in/user2");
                        if client.try_publish(topic, QoS::AtLeastOnce, false, "denied").is_ok() {
                            in_flight.handed(0, 1, false);
                            totals.denied.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let qos = (seq % 3) as u8;
                    let level = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][qos as usize];
                    let payload = format!("{i}:{seq}");
                    let topic = format!("soak/{neighbour}/in/user1");
                    // Counted only for a receiver whose persistent session exists already.
                    let counted = persistent(neighbour)
                        && totals.has_session[neighbour as usize].load(Ordering::Relaxed);
                    if client.try_publish(topic, level, false, payload).is_ok() {
                        in_flight.handed(message_id(i, seq), qos, counted);
                        totals.published.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if connected {
            totals.connected.fetch_sub(1, Ordering::Relaxed);
            let _ = client.try_disconnect();
            // Let the DISCONNECT go out (bounded), counting what still arrives.
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while let Ok(event) = events.poll().await {
                    match event {
                        Event::Outgoing(Outgoing::Disconnect) => break,
                        Event::Outgoing(Outgoing::Publish(pkid)) => in_flight.went_out(pkid),
                        // Acknowledged to the broker as it arrived: it counts as received.
                        Event::Incoming(Packet::Publish(p)) => totals.delivered(keep, &p),
                        Event::Incoming(packet) => in_flight.acknowledged(&packet, &totals),
                        _ => {}
                    }
                }
            })
            .await;
            // Drop the connection, keep the session's state: the next poll connects again.
            in_flight.connection_lost(!keep);
            events.clean();
        }
        if Instant::now() >= end {
            break;
        }
        if Instant::now() < stop {
            tokio::time::sleep(Duration::from_millis(rng.next(2000))).await;
        }
    }
}

/// Publishes to itself every 100 ms and records each round trip (ms) until `end`.
async fn probe(port: u16, round_trips: Arc<Mutex<Vec<f64>>>, errors: Arc<Totals>, end: Instant) {
    let (client, mut events) = AsyncClient::new(options("soak-probe", port, true), 16);
    let topic = "soak/probe/in/user1";
    if client.subscribe(topic, QoS::AtMostOnce).await.is_err() {
        return;
    }
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut connected = false;
    while Instant::now() < end {
        tokio::select! {
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => connected = true,
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(sent) = std::str::from_utf8(&p.payload).ok().and_then(|t| t.parse::<u128>().ok()) {
                        let now = started.elapsed().as_micros();
                        round_trips.lock().unwrap().push(now.saturating_sub(sent) as f64 / 1000.0);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    connected = false;
                    errors.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            // Not while connecting, as in `client`.
            _ = tick.tick(), if connected => {
                let _ = client.try_publish(topic, QoS::AtMostOnce, false, started.elapsed().as_micros().to_string());
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let a = Arc::new(args());
    let start = Instant::now();
    let totals = Arc::new(Totals::new(a.clients, start));
    let round_trips = Arc::new(Mutex::new(Vec::new()));
    let stop = start + Duration::from_secs(a.secs);
    let end = stop + Duration::from_secs(a.drain_secs);
    let mut tasks = Vec::new();
    for i in 0..a.clients {
        tasks.push(tokio::spawn(client(
            i,
            a.clone(),
            totals.clone(),
            stop,
            end,
        )));
    }
    tokio::spawn(probe(a.port, round_trips.clone(), totals.clone(), end));
    let mut report = tokio::time::interval(Duration::from_secs(10));
    report.tick().await;
    while Instant::now() < end {
        report.tick().await;
        let mut rts = std::mem::take(&mut *round_trips.lock().unwrap());
        rts.sort_by(f64::total_cmp);
        let t = &totals;
        println!(
            "t={} connected={} published={} acked={} received={} outstanding={} denied={} leaked={} errors={} p50_ms={:.2} p99_ms={:.2}",
            start.elapsed().as_secs(),
            t.connected.load(Ordering::Relaxed),
            t.published.load(Ordering::Relaxed),
            t.acked.load(Ordering::Relaxed),
            t.received.load(Ordering::Relaxed),
            t.ledger.lock().unwrap().outstanding.len(),
            t.denied.load(Ordering::Relaxed),
            t.leaked.load(Ordering::Relaxed),
            t.errors.load(Ordering::Relaxed),
            percentile(&rts, 50.0),
            percentile(&rts, 99.0),
        );
    }
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let lost = {
        let ledger = totals.ledger.lock().unwrap();
        let outstanding = &ledger.outstanding;
        let mut by_time: Vec<_> = outstanding.iter().collect();
        by_time.sort_by_key(|(_, at)| **at);
        // Enough to look each one up in the broker's log (soak.sh keeps it; SOAK_VERBOSE=1 for detail).
        for (id, at) in by_time.iter().take(50) {
            let (from, seq) = (*id >> 32, *id & 0xffff_ffff);
            println!(
                "lost: payload \"{from}:{seq}\" QoS {} from soak-{from} to soak-{}, acknowledged at t={:.3}s",
                seq % 3,
                (from + 1) % a.clients,
                at.as_secs_f64()
            );
        }
        outstanding.len()
    };
    let leaked = totals.leaked.load(Ordering::Relaxed);
    let errors = totals.errors.load(Ordering::Relaxed);
    println!("lost={lost} leaked={leaked} errors={errors}");
    if lost > 0 || leaked > 0 || errors > 0 {
        std::process::exit(1);
    }
}
