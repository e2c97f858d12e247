//! Load for `mqtt-policy serve`'s authorization answers (run by `benches/serve-load.sh`, which starts
//! the service): `POST /emqx/authz` publish checks of the tutorial's user1, alternately allowed and
//! denied (so half the answers are audited), on keep-alive connections.
//!
//! For each case `CxD` in `SERVE_LOAD_CASES` (default `1x1 64x1 1x32 4x8`: C connections, each with D
//! requests written at once, HTTP/1.1 pipelining as EMQX's HTTP connector does by default): first as
//! fast as the answers come (closed loop: each connection sends its next D requests when the answers
//! to the last arrived), giving answers/s and latency percentiles; then paced at half that rate, or at
//! `SERVE_LOAD_PACE` answers/s when set (open loop: each connection has a fixed schedule, staggered
//! against the others; a batch that falls due while the last is unanswered goes as soon as it is
//! answered, and latency is counted from the scheduled time, so a stall is not hidden).
//! `SERVE_ADDR` is the service's address, `SERVE_LOAD_SECONDS` the length of each run (default 5).
//!
//! All connections are driven by one thread waiting on epoll (mio), as wrk drives its connections: a
//! thread per connection would make every answer wake a thread of its own, and those wake-ups, on the
//! same two cores, cost the service as much CPU time as answering. A wait of under a millisecond (the
//! resolution of epoll's timeout) is slept with the OS's microsecond timer instead.

use std::io::{ErrorKind, Read, Write};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

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

/// The length of the first complete answer in `buf` (status 200 asserted), if one is complete.
fn answer_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).expect("an ASCII head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().expect("a length"))
        })
        .expect("Content-Length");
    (buf.len() >= head_end + length).then_some(head_end + length)
}

/// One keep-alive connection and the requests it has in flight.
struct Conn {
    stream: TcpStream,
    /// Bytes received and not yet taken as answers.
    inbox: Vec<u8>,
    /// Bytes to send that the socket has not taken yet.
    outbox: Vec<u8>,
    /// The scheduled time of each request in flight, oldest first.
    in_flight: std::collections::VecDeque<Instant>,
    /// Paced: when the next batch is due.
    due: Instant,
    /// Batches sent (which of the two batches goes next).
    sent: usize,
}

impl Conn {
    fn send(&mut self, batches: &[Vec<u8>; 2], depth: usize, scheduled: Instant) {
        self.outbox.extend_from_slice(&batches[self.sent % 2]);
        self.sent += 1;
        self.in_flight.extend(std::iter::repeat_n(scheduled, depth));
        self.flush();
    }

    fn flush(&mut self) {
        while !self.outbox.is_empty() {
            match self.stream.write(&self.outbox) {
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("send: {e}"),
            }
        }
    }

    /// Reads what arrived; returns the latency of each answer completed.
    fn receive(&mut self, now: Instant, lat: &mut Vec<Duration>) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the service closed a connection"),
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("receive: {e}"),
            }
        }
        // Complete answers are taken from the front, and the inbox is shifted once for all of them.
        let mut taken = 0;
        while let Some(n) = answer_len(&self.inbox[taken..]) {
            taken += n;
            let scheduled = self.in_flight.pop_front().expect("an answer to a request");
            lat.push(now - scheduled);
        }
        self.inbox.drain(..taken);
    }
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
    let socket = addr
        .to_socket_addrs()
        .expect("an address")
        .next()
        .expect("an address");
    // Two batches taken in turn, so that one request at a time alternates too.
    let batches: [Vec<u8>; 2] = [0, 1].map(|k| {
        (k * depth..(k + 1) * depth)
            .flat_map(|i| request(addr, i))
            .collect()
    });
    let mut poll = Poll::new().expect("epoll");
    let mut conns: Vec<Conn> = (0..connections)
        .map(|i| {
            let std = std::net::TcpStream::connect(socket).expect("connect");
            std.set_nodelay(true).unwrap();
            std.set_nonblocking(true).unwrap();
            let mut stream = TcpStream::from_std(std);
            poll.registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .expect("register");
            Conn {
                stream,
                inbox: Vec::new(),
                outbox: Vec::new(),
                in_flight: Default::default(),
                due: Instant::now(),
                sent: 0,
            }
        })
        .collect();
    let mut events = Events::with_capacity(1024);
    let mut lat = Vec::new();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    for (i, c) in conns.iter_mut().enumerate() {
        match interval {
            // Staggered, so that the connections' batches do not fall due together.
            Some(every) => c.due = start + every.mul_f64(i as f64 / connections as f64),
            None => c.send(&batches, depth, start),
        }
    }
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut wait = end - now;
        if let Some(every) = interval {
            for c in conns.iter_mut().filter(|c| c.in_flight.is_empty()) {
                if c.due <= now {
                    let scheduled = c.due;
                    c.due += every;
                    c.send(&batches, depth, scheduled);
                } else {
                    wait = wait.min(c.due - now);
                }
            }
        }
        if wait < Duration::from_millis(1) {
            // epoll waits whole milliseconds: sleep the rest, then take what arrived meanwhile.
            std::thread::sleep(wait);
            wait = Duration::ZERO;
        }
        poll.poll(&mut events, Some(wait)).expect("epoll_wait");
        let now = Instant::now();
        for event in events.iter() {
            let c = &mut conns[event.token().0];
            if event.is_writable() {
                c.flush();
            }
            if event.is_readable() {
                c.receive(now, &mut lat);
                if c.in_flight.is_empty() && now < end {
                    match interval {
                        // Due while the last batch was unanswered: sent now, late from its schedule.
                        Some(every) if c.due <= now => {
                            let scheduled = c.due;
                            c.due += every;
                            c.send(&batches, depth, scheduled);
                        }
                        Some(_) => {}
                        None => c.send(&batches, depth, now),
                    }
                }
            }
        }
    }
    let elapsed = start.elapsed();
    lat.sort();
    (lat.len(), elapsed, lat)
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
        if paced > rate {
            // The schedule would only measure a queue growing for the whole run.
            println!("| {c} | {d} | paced at {paced:.0}/s | beyond this case's capacity | | |");
            continue;
        }
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
