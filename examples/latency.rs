//! Publish → deliver latency at a fixed, moderate rate, for `benches/broker-vs-mosquitto.sh`.
//!
//! ```text
//! cargo build --release --example latency
//! target/release/examples/latency --port P [--host H] [--rate 10000] [--messages 50000] [--qos 0|1]
//!                                 [--payload 32] [--timeout 60]
//! ```
//!
//! One subscriber (`admin` on `bench/#`, the tutorial's admin) and one publisher (`user1` on
//! `bench/lat/p0/user1`, allowed by `pattern readwrite +/+/+/%u`) in this process. The publisher
//! sends `--messages` messages at `--rate` per second (a batch each millisecond, so the rate holds
//! without a timer per message), each carrying the nanoseconds since the run's start at which it was
//! written; the subscriber notes when each arrives. Prints one line of `key=value`: `sent`,
//! `received`, `p50_us`, `p99_us`, `max_us` (over the messages received), and `secs`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/wire.rs"]
mod wire;
use wire::{next_packet, put_publish, Client, Error};

struct Args {
    host: String,
    port: u16,
    rate: u64,
    messages: u64,
    qos: u8,
    payload: usize,
    timeout: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: latency --port P [--host H] [--rate N] [--messages N] [--qos 0|1] [--payload BYTES] [--timeout SECS]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 0,
        rate: 10_000,
        messages: 50_000,
        qos: 0,
        payload: 32,
        timeout: 60.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let num = |v: &str| v.parse::<u64>().unwrap_or_else(|_| usage());
        match key.as_str() {
            "--host" => a.host = value,
            "--port" => a.port = u16::try_from(num(&value)).unwrap_or_else(|_| usage()),
            "--rate" => a.rate = num(&value).max(1),
            "--messages" => a.messages = num(&value),
            "--qos" => a.qos = u8::try_from(num(&value).min(1)).unwrap_or(0),
            "--payload" => a.payload = usize::try_from(num(&value)).unwrap_or(32).max(8),
            "--timeout" => a.timeout = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.port == 0 {
        usage();
    }
    a
}

/// Receives until `expected` PUBLISH packets arrived or `deadline`; returns each one's latency in
/// nanoseconds (acknowledging QoS 1).
async fn receive(mut c: Client, expected: u64, start: Instant, deadline: Instant) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    let mut chunk = vec![0u8; 64 * 1024];
    let mut acks = Vec::new();
    while (latencies.len() as u64) < expected {
        let mut pos = 0;
        while let Some((h, body, end)) = next_packet(&c.buf, pos) {
            if h >> 4 == 3 {
                let now = start.elapsed().as_nanos() as u64;
                let tlen = usize::from(u16::from_be_bytes([c.buf[body], c.buf[body + 1]]));
                let mut p = body + 2 + tlen;
                if (h >> 1) & 3 == 1 {
                    acks.extend_from_slice(&[0x40, 0x02, c.buf[p], c.buf[p + 1]]);
                    p += 2;
                }
                let mut sent = [0u8; 8];
                sent.copy_from_slice(&c.buf[p..p + 8]);
                latencies.push(now.saturating_sub(u64::from_be_bytes(sent)));
            }
            pos = end;
        }
        c.buf.drain(..pos);
        if !acks.is_empty() {
            if c.stream.write_all(&acks).await.is_err() {
                break;
            }
            acks.clear();
        }
        if latencies.len() as u64 >= expected {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => c.buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    latencies
}

/// Sends `a.messages` messages at `a.rate` per second; PUBACKs (QoS 1) are read and ignored.
async fn publish(c: Client, a: &Args, start: Instant) -> Result<u64, Error> {
    let (mut rd, mut wr) = c.stream.into_split();
    if a.qos == 1 {
        tokio::spawn(async move {
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        });
    }
    let per_ms = (a.rate as f64 / 1000.0).max(0.001);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut payload = vec![b'x'; a.payload];
    let mut batch = Vec::new();
    let (mut sent, mut pkid) = (0u64, 0u16);
    let mut due = 0.0f64;
    while sent < a.messages {
        tick.tick().await;
        due += per_ms;
        batch.clear();
        while (sent as f64) < due.floor() && sent < a.messages {
            payload[..8].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_be_bytes());
            pkid = if pkid == u16::MAX { 1 } else { pkid + 1 };
            put_publish(&mut batch, "bench/lat/p0/user1", a.qos, pkid, &payload);
            sent += 1;
        }
        wr.write_all(&batch).await?;
    }
    // Kept open until the process ends.
    tokio::spawn(async move {
        let _keep = wr;
        std::future::pending::<()>().await
    });
    Ok(sent)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(a: Args) -> Result<(), Error> {
    let addr = format!("{}:{}", a.host, a.port);
    let mut sub = Client::connect(&addr, "lat-sub", "admin", "admin1234", 60).await?;
    sub.subscribe("bench/#", a.qos).await?;
    let publisher = Client::connect(&addr, "lat-pub", "user1", "123456", 60).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.timeout);
    let receiver = tokio::spawn(receive(sub, a.messages, start, deadline));
    let sent = publish(publisher, &a, start).await?;
    let mut latencies = receiver.await?;
    latencies.sort_unstable();
    let us = |ns: u64| ns / 1000;
    println!(
        "sent={sent} received={} p50_us={} p99_us={} max_us={} secs={:.3}",
        latencies.len(),
        us(percentile(&latencies, 0.50)),
        us(percentile(&latencies, 0.99)),
        us(latencies.last().copied().unwrap_or(0)),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() {
    let a = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(a)) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("latency: {e}");
            std::process::exit(1)
        }
    }
}
