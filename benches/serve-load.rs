//! Load for `mqtt-policy serve`'s authorization answers (run by `benches/serve-load.sh`, which starts
//! the service): `POST /emqx/authz` publish checks of the tutorial's user1, alternately allowed and
//! denied, on keep-alive connections.
//!
//! For each case `CxD` in `SERVE_LOAD_CASES` (default `1x1 64x1 1x32 4x8`: C connections, each with D
//! requests written at once, HTTP/1.1 pipelining as EMQX's HTTP connector does by default): first as
//! fast as the answers come (closed loop: each connection sends its next D requests when the answers
//! to the last arrived), giving answers/s and latency percentiles; then paced at half that rate, or at
//! `SERVE_LOAD_PACE` answers/s when set (each connection sends on a fixed schedule, latency counted
//! from the scheduled time, so a stall is not hidden). `SERVE_ADDR` is the service's address,
//! `SERVE_LOAD_SECONDS` the length of each run (default 5).
//!
//! One blocking thread per connection, sleeping with the OS's microsecond timers: pacing stays exact
//! (an async runtime's millisecond timer wheel would add up to a millisecond to every paced latency),
//! at the price of context switches that cost the service CPU time with 64 connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn request(addr: &str, n: usize) -> Vec<u8> {
    let topic = if n.is_multiple_of(2) {
        "a/b/c/user1"
    } else {
        "a/b/c/admin"
    };
    let body = format!(
        r#"{{"username":"user1","clientid":"c1","topic":"{topic}","action":"publish","peerhost":"127.0.0.1"}}"#
    );
    format!(
        "POST /emqx/authz HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn answer(r: &mut BufReader<TcpStream>) {
    let mut line = String::new();
    let mut length = 0;
    r.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("body");
}

/// Runs `connections` clients for `seconds`; `interval` paces each (None: closed loop). Returns
/// (answers, elapsed, sorted latencies).
fn run(
    addr: &str,
    connections: usize,
    depth: usize,
    seconds: f64,
    interval: Option<Duration>,
) -> (usize, Duration, Vec<Duration>) {
    let barrier = Arc::new(Barrier::new(connections + 1));
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let addr = addr.to_owned();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let s = TcpStream::connect(&addr).expect("connect");
                s.set_nodelay(true).unwrap();
                let batch: Vec<u8> = (0..depth).flat_map(|i| request(&addr, i)).collect();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut lat = Vec::new();
                barrier.wait();
                let start = Instant::now();
                let end = start + Duration::from_secs_f64(seconds);
                let mut n = 0usize;
                loop {
                    let scheduled = match interval {
                        Some(i) => {
                            let at = start + i * n as u32;
                            let now = Instant::now();
                            if at > now {
                                std::thread::sleep(at - now);
                            }
                            at
                        }
                        None => Instant::now(),
                    };
                    if scheduled >= end {
                        break;
                    }
                    w.write_all(&batch).expect("send");
                    for _ in 0..depth {
                        answer(&mut r);
                        lat.push(scheduled.elapsed());
                    }
                    n += 1;
                }
                lat
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().expect("a client"));
    }
    let elapsed = start.elapsed();
    all.sort();
    (all.len(), elapsed, all)
}

fn pct(sorted: &[Duration], p: f64) -> String {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    format!("{:.0} µs", sorted[i].as_secs_f64() * 1e6)
}

fn main() {
    let addr = std::env::var("SERVE_ADDR").expect("SERVE_ADDR (run benches/serve-load.sh)");
    let seconds: f64 = std::env::var("SERVE_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let cases: Vec<(usize, usize)> = std::env::var("SERVE_LOAD_CASES")
        .unwrap_or_else(|_| "1x1 64x1 1x32 4x8".to_owned())
        .split_whitespace()
        .map(|case| {
            let (c, d) = case.split_once('x').expect("CxD");
            (c.parse().expect("a number"), d.parse().expect("a number"))
        })
        .collect();
    let pace: Option<f64> = std::env::var("SERVE_LOAD_PACE")
        .ok()
        .and_then(|p| p.parse().ok());
    println!("| connections | pipelined | load | answers/s | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for (c, d) in cases {
        let (n, elapsed, lat) = run(&addr, c, d, seconds, None);
        let rate = n as f64 / elapsed.as_secs_f64();
        println!(
            "| {c} | {d} | as fast as answered | {rate:.0} | {} | {} |",
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
        let paced = pace.unwrap_or(rate / 2.0);
        let interval = Duration::from_secs_f64((c * d) as f64 / paced);
        let (n, elapsed, lat) = run(&addr, c, d, seconds, Some(interval));
        let rate = n as f64 / elapsed.as_secs_f64();
        println!(
            "| {c} | {d} | paced at {paced:.0}/s | {rate:.0} | {} | {} |",
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
}
