//! A small MQTT load generator for `benches/broker-vs-mosquitto.sh`: a minimal MQTT 3.1.1 client over
//! tokio `TcpStream` (CONNECT with username/password, SUBSCRIBE, PUBLISH QoS 0/1, PUBACK), with no
//! client library in between, so that the load generator costs the same against every broker.
//!
//! ```text
//! cargo build --release --example loadgen
//! target/release/examples/loadgen flow --port P [--pubs 1] [--subs 1] [--messages 100000] [--qos 0|1]
//!                                      [--payload 32] [--window 100] [--timeout 60] [--idle 3]
//!                                      [--topics 1] [--persistent 0|1]
//! target/release/examples/loadgen idle --port P [--clients 10000] [--concurrency 50] [--hold 600]
//!                                      [--id-prefix idle-]
//! ```
//!
//! `flow`: `--subs` subscribers connect and subscribe, then `--pubs` publishers each publish
//! `--messages` messages as fast as the broker takes them (QoS 1: at most `--window` unacknowledged
//! per publisher). Publisher `i` is `user1` (password `123456`) publishing to `bench/load/p{i}/user1`
//! (with `--topics N`: message `k` to `bench/load/p{i}-{k % N}/user1`, so that no two messages in a row
//! share a topic),
//! allowed by the tutorial's `pattern readwrite +/+/+/%u`. Subscribers alternate between `admin`
//! (`topic readwrite #`) subscribing to `bench/#` and `user1` subscribing to `bench/+/+/user1` (read
//! through the pattern); a single subscriber is `admin`, as in the tutorial. The clock starts when every
//! client is connected and subscribed and stops at the last delivery (or when nothing arrived for
//! `--idle` seconds after the publishers finished, or at `--timeout`). It prints one line of
//! `key=value`: `expected`, `received`, `lost`, `secs`, `rate` (deliveries per second), `pub_secs`.
//! With `--persistent 1` the subscribers connect with Clean Session 0 (a session the broker keeps, and
//! with `persistence true` writes to its store); they start with a clean session first, so every run
//! starts from an empty one.
//!
//! `idle`: connects `--clients` clients (`user1`, client ids `{--id-prefix}N`, keep alive 60 s, PINGREQ every
//! 30 s), at most `--concurrency` handshakes at a time, prints `connected=... failed=... secs=...` and
//! `READY`, then `alive=N` once a second until killed or `--hold` seconds have passed.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

#[path = "support/wire.rs"]
mod wire;
use wire::{next_packet, put_publish, Client, Error};

const PUB_USER: (&str, &str) = ("user1", "123456");
const SUB_USERS: [(&str, &str); 2] = [("admin", "admin1234"), ("user1", "123456")];
const WRITE_BATCH: usize = 32 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Command-line options (`--key value`).
struct Args {
    mode: String,
    host: String,
    port: u16,
    pubs: usize,
    subs: usize,
    messages: u64,
    qos: u8,
    payload: usize,
    window: usize,
    timeout: f64,
    idle: f64,
    clients: usize,
    concurrency: usize,
    hold: f64,
    id_prefix: String,
    topics: usize,
    persistent: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen flow --port P [--host H] [--pubs N] [--subs N] [--messages N] [--qos 0|1] \
         [--payload BYTES] [--window N] [--timeout SECS] [--idle SECS] [--topics N]\n       \
         loadgen idle --port P [--host H] [--clients N] [--concurrency N] [--hold SECS] [--id-prefix P]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage());
    if mode != "flow" && mode != "idle" {
        usage();
    }
    let mut a = Args {
        mode,
        host: "127.0.0.1".to_owned(),
        port: 0,
        pubs: 1,
        subs: 1,
        messages: 100_000,
        qos: 0,
        payload: 32,
        window: 100,
        timeout: 60.0,
        idle: 3.0,
        clients: 10_000,
        concurrency: 50,
        hold: 600.0,
        id_prefix: "idle-".to_owned(),
        topics: 1,
        persistent: false,
    };
    while let Some(key) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> T {
            v.parse().unwrap_or_else(|_| {
                eprintln!("loadgen: {key}: not a number: {v:?}");
                std::process::exit(2)
            })
        }
        match key.as_str() {
            "--host" => a.host = value,
            "--port" => a.port = num(&key, &value),
            "--pubs" => a.pubs = num(&key, &value),
            "--subs" => a.subs = num(&key, &value),
            "--messages" => a.messages = num(&key, &value),
            "--qos" => a.qos = num(&key, &value),
            "--payload" => a.payload = num(&key, &value),
            "--window" => a.window = num(&key, &value),
            "--timeout" => a.timeout = num(&key, &value),
            "--idle" => a.idle = num(&key, &value),
            "--clients" => a.clients = num(&key, &value),
            "--concurrency" => a.concurrency = num(&key, &value),
            "--hold" => a.hold = num(&key, &value),
            "--id-prefix" => a.id_prefix = value,
            "--topics" => a.topics = num::<usize>(&key, &value).max(1),
            "--persistent" => a.persistent = num::<u8>(&key, &value) == 1,
            _ => usage(),
        }
    }
    if a.port == 0 || a.qos > 1 || a.window == 0 || a.payload < 8 || a.concurrency == 0 {
        usage();
    }
    a
}

// ---------------------------------------------------------------------------------------------
// flow: publishers → broker → subscribers.

/// One subscriber's counters, shared with the main task.
#[derive(Default)]
struct SubStats {
    received: AtomicU64,
    /// Nanoseconds after the start of the last read that carried a PUBLISH.
    last_ns: AtomicU64,
}

async fn run_subscriber(
    mut c: Client,
    start: Arc<tokio::sync::OnceCell<Instant>>,
    stats: Arc<SubStats>,
) -> Result<(), Error> {
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut acks = Vec::with_capacity(4096);
    let mut count = 0u64;
    loop {
        // Parse what is buffered (the first round: whatever arrived with the SUBACK).
        let mut pos = 0;
        let mut got = false;
        while let Some((h, body, end)) = next_packet(&c.buf, pos) {
            if h >> 4 == 3 {
                count += 1;
                got = true;
                if (h >> 1) & 3 == 1 {
                    let tlen = usize::from(u16::from_be_bytes([c.buf[body], c.buf[body + 1]]));
                    let p = body + 2 + tlen;
                    acks.extend_from_slice(&[0x40, 0x02, c.buf[p], c.buf[p + 1]]);
                }
            }
            pos = end;
        }
        c.buf.drain(..pos);
        if got {
            let t0 = *start.get().unwrap_or(&Instant::now());
            stats
                .last_ns
                .store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            stats.received.store(count, Ordering::Relaxed);
        }
        if !acks.is_empty() {
            c.stream.write_all(&acks).await?;
            acks.clear();
        }
        let n = c.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("subscriber: connection closed by the broker".into());
        }
        c.buf.extend_from_slice(&chunk[..n]);
    }
}

async fn run_publisher(
    c: Client,
    topics: Vec<String>,
    qos: u8,
    messages: u64,
    payload_len: usize,
    window: usize,
) -> Result<(), Error> {
    let mut payload = vec![b'x'; payload_len];
    let (mut rd, mut wr) = c.stream.into_split();
    let mut batch = Vec::with_capacity(WRITE_BATCH + 1024);
    if qos == 0 {
        for seq in 0..messages {
            payload[..8].copy_from_slice(&seq.to_be_bytes());
            let topic = &topics[(seq % topics.len() as u64) as usize];
            put_publish(&mut batch, topic, 0, 0, &payload);
            if batch.len() >= WRITE_BATCH {
                wr.write_all(&batch).await?;
                batch.clear();
            }
        }
        wr.write_all(&batch).await?;
        wr.flush().await?;
        // Keep the socket open until the run ends: closing it early is not what is measured.
        tokio::spawn(async move {
            let _keep = (rd, wr);
            std::future::pending::<()>().await
        });
        return Ok(());
    }
    let window_sem = Arc::new(Semaphore::new(window));
    let sem = Arc::clone(&window_sem);
    let mut leftover = c.buf;
    let reader = tokio::spawn(async move {
        let mut acked = 0u64;
        let mut chunk = vec![0u8; READ_CHUNK];
        while acked < messages {
            let mut pos = 0;
            while let Some((h, _, end)) = next_packet(&leftover, pos) {
                if h >> 4 == 4 {
                    acked += 1;
                    sem.add_permits(1);
                }
                pos = end;
            }
            leftover.drain(..pos);
            if acked >= messages {
                break;
            }
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                return Err::<_, Error>(
                    format!("publisher: connection closed after {acked} PUBACKs").into(),
                );
            }
            leftover.extend_from_slice(&chunk[..n]);
        }
        Ok(rd)
    });
    let mut pkid: u16 = 0;
    for seq in 0..messages {
        match window_sem.try_acquire() {
            Ok(p) => p.forget(),
            Err(_) => {
                if !batch.is_empty() {
                    wr.write_all(&batch).await?;
                    batch.clear();
                }
                window_sem.acquire().await?.forget();
            }
        }
        pkid = if pkid == u16::MAX { 1 } else { pkid + 1 };
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        let topic = &topics[(seq % topics.len() as u64) as usize];
        put_publish(&mut batch, topic, 1, pkid, &payload);
        if batch.len() >= WRITE_BATCH {
            wr.write_all(&batch).await?;
            batch.clear();
        }
    }
    wr.write_all(&batch).await?;
    let rd = reader.await??;
    tokio::spawn(async move {
        let _keep = (rd, wr);
        std::future::pending::<()>().await
    });
    Ok(())
}

async fn flow(a: &Args) -> Result<(), Error> {
    let addr = format!("{}:{}", a.host, a.port);
    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout);
    let start = Arc::new(tokio::sync::OnceCell::new());

    let mut sub_stats = Vec::new();
    let mut sub_tasks = Vec::new();
    for j in 0..a.subs {
        let (user, password) = SUB_USERS[j % SUB_USERS.len()];
        let filter = if user == "admin" {
            "bench/#".to_owned()
        } else {
            format!("bench/+/+/{user}")
        };
        let id = format!("lg-sub-{j}");
        if a.persistent {
            // Whatever an earlier run left in this session goes first.
            drop(Client::connect(&addr, &id, user, password, 60).await?);
        }
        let mut c = Client::connect_as(&addr, &id, user, password, 60, !a.persistent).await?;
        c.subscribe(&filter, a.qos).await?;
        let stats = Arc::new(SubStats::default());
        sub_stats.push(Arc::clone(&stats));
        sub_tasks.push(tokio::spawn(run_subscriber(c, Arc::clone(&start), stats)));
    }
    let mut pubs = Vec::new();
    for i in 0..a.pubs {
        let c = Client::connect(&addr, &format!("lg-pub-{i}"), PUB_USER.0, PUB_USER.1, 60).await?;
        // With `--topics N`, message `k` goes to `bench/load/p{i}-{k % N}/user1`.
        let topics: Vec<String> = if a.topics == 1 {
            vec![format!("bench/load/p{i}/{}", PUB_USER.0)]
        } else {
            (0..a.topics)
                .map(|k| format!("bench/load/p{i}-{k}/{}", PUB_USER.0))
                .collect()
        };
        pubs.push((c, topics));
    }

    let t0 = Instant::now();
    let _ = start.set(t0);
    let mut pub_tasks = Vec::new();
    for (c, topics) in pubs {
        pub_tasks.push(tokio::spawn(run_publisher(
            c, topics, a.qos, a.messages, a.payload, a.window,
        )));
    }
    let expected = a.messages * a.pubs as u64 * a.subs as u64;
    let total = || {
        sub_stats
            .iter()
            .map(|s| s.received.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let mut errors = Vec::new();
    for t in pub_tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => errors.push(e.to_string()),
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(_) => errors.push("publisher did not finish before --timeout".to_owned()),
        }
    }
    let pub_secs = t0.elapsed().as_secs_f64();
    let mut last = total();
    let mut last_change = Instant::now();
    loop {
        let now_total = total();
        if now_total >= expected {
            break;
        }
        if now_total != last {
            last = now_total;
            last_change = Instant::now();
        }
        if last_change.elapsed().as_secs_f64() >= a.idle || Instant::now() >= deadline {
            break;
        }
        if sub_tasks.iter().any(|t| t.is_finished()) {
            errors.push("a subscriber's connection ended".to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let received = total();
    let end_ns = sub_stats
        .iter()
        .map(|s| s.last_ns.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let secs = (end_ns as f64 / 1e9).max(1e-9);
    for t in &sub_tasks {
        t.abort();
    }
    println!(
        "expected={expected} received={received} lost={} secs={secs:.3} rate={:.0} pub_secs={pub_secs:.3}{}",
        expected.saturating_sub(received),
        received as f64 / secs,
        if errors.is_empty() {
            String::new()
        } else {
            format!(" errors={:?}", errors.join("; "))
        }
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// idle: many connected clients doing nothing.

async fn idle(a: &Args) -> Result<(), Error> {
    let addr = Arc::new(format!("{}:{}", a.host, a.port));
    let prefix = Arc::new(a.id_prefix.clone());
    let sem = Arc::new(Semaphore::new(a.concurrency));
    let connected = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let alive = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let t0 = Instant::now();
    for i in 0..a.clients {
        let (addr, prefix, sem, connected, failed, alive, first_error) = (
            Arc::clone(&addr),
            Arc::clone(&prefix),
            Arc::clone(&sem),
            Arc::clone(&connected),
            Arc::clone(&failed),
            Arc::clone(&alive),
            Arc::clone(&first_error),
        );
        tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let c =
                Client::connect(&addr, &format!("{prefix}{i}"), PUB_USER.0, PUB_USER.1, 60).await;
            drop(permit);
            let mut c = match c {
                Ok(c) => c,
                Err(e) => {
                    first_error.lock().unwrap().get_or_insert(e.to_string());
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            connected.fetch_add(1, Ordering::Relaxed);
            alive.fetch_add(1, Ordering::Relaxed);
            let mut ping = tokio::time::interval(Duration::from_secs(30));
            ping.tick().await;
            let mut chunk = [0u8; 64];
            loop {
                tokio::select! {
                    r = c.stream.read(&mut chunk) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    },
                    _ = ping.tick() => {
                        if c.stream.write_all(&[0xC0, 0x00]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            alive.fetch_sub(1, Ordering::Relaxed);
        });
    }
    let hold_until = Instant::now() + Duration::from_secs_f64(a.hold);
    while connected.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < a.clients {
        if Instant::now() >= hold_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "connected={} failed={} secs={:.3}{}",
        connected.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
        match first_error.lock().unwrap().as_deref() {
            Some(e) => format!(" first_error={e:?}"),
            None => String::new(),
        }
    );
    println!("READY");
    while Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("alive={}", alive.load(Ordering::Relaxed));
    }
    Ok(())
}

fn main() {
    let a = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(async {
        if a.mode == "flow" {
            flow(&a).await
        } else {
            idle(&a).await
        }
    });
    // Exit without waiting for the tasks that hold sockets open.
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1)
        }
    }
}
