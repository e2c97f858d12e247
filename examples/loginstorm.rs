//! The load of `benches/login-storm.sh`: many clients logging in at once while another client
//! measures its publish→receive round trip.
//!
//! ```text
//! cargo build --release --example loginstorm
//! target/release/examples/loginstorm passwd --clients 1000 > users.txt
//! target/release/examples/loginstorm storm --port P --clients 1000 [--timeout 600]
//! ```
//!
//! `passwd`: a password file with users `probe` and `u0`…`u{N-1}` (password `p{i}`), every one an
//! `$argon2id$` hash at Mosquitto 2.1's default cost, hashed on every core.
//!
//! `storm`: the `probe` client subscribes to `probe/#` and, every 20 ms, publishes to `probe/rt` and
//! waits for its own message (the round trip). Meanwhile `--clients` clients (`u{i}`, client id
//! `storm-{i}`) send their CONNECT at once (cold: nothing remembered); once all have their CONNACK,
//! they disconnect and all connect again (warm). A client whose TCP connection fails (a broker too
//! busy to accept) tries again after a second, as a device would. Prints one line of `key=value`:
//! for each phase the seconds until every CONNACK (`cold_secs`, `warm_secs`), the logins accepted
//! (`cold_ok`, `warm_ok`), the clients that never got an answer (`cold_never`, `warm_never`), and
//! the probe's worst round trip during the phase (`cold_worst_rt_ms`, `warm_worst_rt_ms`) and its
//! number of round trips (`cold_rts`, `warm_rts`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// An MQTT 3.1.1 CONNECT with username and password, clean session, keep alive 60 s.
fn connect_packet(id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.extend_from_slice(&[4, 0xC2, 0, 60]);
    put_str(&mut body, id.as_bytes());
    put_str(&mut body, user.as_bytes());
    put_str(&mut body, password.as_bytes());
    let mut out = vec![0x10];
    put_len(&mut out, body.len());
    out.extend(body);
    out
}

/// Reads one packet: first byte and body.
async fn read_packet(s: &mut TcpStream) -> Result<(u8, Vec<u8>), Error> {
    let first = s.read_u8().await?;
    let mut len = 0usize;
    for i in 0..4 {
        let b = s.read_u8().await?;
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok((first, body))
}

/// Connects and logs in; `Ok(true)` when accepted.
async fn login(
    port: u16,
    id: &str,
    user: &str,
    password: &str,
) -> Result<(TcpStream, bool), Error> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    s.write_all(&connect_packet(id, user, password)).await?;
    let (first, body) = read_packet(&mut s).await?;
    Ok((s, first == 0x20 && body.get(1) == Some(&0)))
}

fn arg(args: &[String], key: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn passwd(clients: usize) {
    use mqtt_policy::policy::passwd::{hash_password, HashKind};
    let mut names: Vec<(String, String)> = vec![("probe".into(), "probe-pw".into())];
    names.extend((0..clients).map(|i| (format!("u{i}"), format!("p{i}"))));
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let chunk = names.len().div_ceil(threads);
    let lines: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(u, p)| {
                            format!(
                                "{u}:{}",
                                hash_password(p.as_bytes(), HashKind::Argon2id, None)
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a hashing thread"))
            .collect()
    });
    for line in lines {
        println!("{line}");
    }
}

/// The probe: round trips every 20 ms until `stop`; the worst one (µs) and the count go to `worst`
/// and `count` (reset by the caller between phases).
async fn probe(
    port: u16,
    stop: Arc<AtomicBool>,
    worst: Arc<AtomicU64>,
    count: Arc<AtomicU64>,
) -> Result<(), Error> {
    let (mut s, ok) = login(port, "probe", "probe", "probe-pw").await?;
    if !ok {
        return Err("the probe's login was refused".into());
    }
    let mut sub = vec![0x82];
    let mut body = vec![0, 1];
    put_str(&mut body, b"probe/#");
    body.push(0);
    put_len(&mut sub, body.len());
    sub.extend(body);
    s.write_all(&sub).await?;
    let (first, _) = read_packet(&mut s).await?;
    if first != 0x90 {
        return Err("no SUBACK for the probe".into());
    }
    let mut seq: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        seq += 1;
        let mut publish = vec![0x30];
        let mut body = Vec::new();
        put_str(&mut body, b"probe/rt");
        body.extend_from_slice(&seq.to_be_bytes());
        put_len(&mut publish, body.len());
        publish.extend(body);
        let sent = Instant::now();
        s.write_all(&publish).await?;
        loop {
            let (first, body) = read_packet(&mut s).await?;
            if first & 0xF0 == 0x30 && body.ends_with(&seq.to_be_bytes()) {
                break;
            }
        }
        let rt = sent.elapsed().as_micros() as u64;
        worst.fetch_max(rt, Ordering::Relaxed);
        count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Every client sends its CONNECT at once; a client whose connection fails (a broker too busy to
/// accept: the kernel's queue overflows and connects time out) tries again after a second, as a
/// device would, until `timeout`. Returns (seconds until the last CONNACK, accepted, connections that
/// never got in, the open connections).
async fn phase(
    port: u16,
    clients: usize,
    timeout: Duration,
) -> (f64, usize, usize, usize, Vec<TcpStream>) {
    let start = Instant::now();
    let retries = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let retries = Arc::clone(&retries);
            tokio::spawn(async move {
                let id = format!("storm-{i}");
                let (user, password) = (format!("u{i}"), format!("p{i}"));
                loop {
                    let left = timeout.saturating_sub(start.elapsed());
                    match tokio::time::timeout(left, login(port, &id, &user, &password)).await {
                        Ok(Ok(done)) => return Some(done),
                        Ok(Err(_)) if start.elapsed() + Duration::from_secs(1) < timeout => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        _ => return None,
                    }
                }
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    let mut open = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Some((s, accepted))) => {
                if accepted {
                    ok += 1;
                }
                open.push(s);
            }
            _ => failed += 1,
        }
    }
    let retried = retries.load(Ordering::Relaxed) as usize;
    (start.elapsed().as_secs_f64(), ok, failed, retried, open)
}

async fn storm(port: u16, clients: usize, timeout: Duration) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    let prober = tokio::spawn(probe(
        port,
        Arc::clone(&stop),
        Arc::clone(&worst),
        Arc::clone(&count),
    ));
    // Let the probe log in and settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut line = String::new();
    for name in ["cold", "warm"] {
        worst.store(0, Ordering::Relaxed);
        count.store(0, Ordering::Relaxed);
        let (secs, ok, failed, retried, open) = phase(port, clients, timeout).await;
        // One more probe period, so that a stall at the very end is seen.
        tokio::time::sleep(Duration::from_millis(40)).await;
        let worst_ms = worst.load(Ordering::Relaxed) as f64 / 1000.0;
        line.push_str(&format!(
            "{name}_secs={secs:.3} {name}_ok={ok} {name}_never={failed} {name}_retried={retried} {name}_worst_rt_ms={worst_ms:.1} {name}_rts={} ",
            count.load(Ordering::Relaxed)
        ));
        for mut s in open {
            let _ = s.write_all(&[0xE0, 0]).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    if prober.is_finished() {
        if let Ok(Err(e)) = prober.await {
            return Err(e);
        }
    }
    println!("{}", line.trim_end());
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = arg(&args, "--clients", "1000").parse()?;
    match args.get(1).map(String::as_str) {
        Some("passwd") => {
            passwd(clients);
            Ok(())
        }
        Some("storm") => {
            let port: u16 = arg(&args, "--port", "1883").parse()?;
            let timeout = Duration::from_secs(arg(&args, "--timeout", "600").parse()?);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(storm(port, clients, timeout))
        }
        _ => {
            eprintln!(
                "usage: loginstorm passwd --clients N | storm --port P --clients N [--timeout S]"
            );
            std::process::exit(2)
        }
    }
}
