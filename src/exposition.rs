//! Serving the counters of [`crate::enforce::metrics`]: `GET /metrics` on a TCP listener
//! (`plugin_opt_metrics_listen`), and/or a textfile for node_exporter's textfile collector
//! (`plugin_opt_metrics_textfile`, rewritten every [`TEXTFILE_PERIOD`] through a rename so the collector
//! never reads half a file). Shared by the plugin and the broker.
//!
//! A thread of our own, with std's blocking sockets, not hyper: the plugin lives inside Mosquitto's
//! process, with no async runtime, and a scrape is one small GET answered with one string. It blocks in
//! `accept` between scrapes (no polling: an idle exposition costs the broker's process nothing), and the
//! textfile's thread is parked between writes. Both read only the [`Metrics`] registry (atomics): they
//! never call into Mosquitto and never touch its state. The address is bound before the plugin or broker says it started, so an address that cannot
//! be bound stops the start, naming it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::enforce::metrics::Metrics;

/// How often the textfile is rewritten.
pub const TEXTFILE_PERIOD: Duration = Duration::from_secs(5);

/// The running exposition; dropping it stops the threads (and writes the textfile a last time).
#[derive(Debug)]
pub struct Exposition {
    stop: Arc<AtomicBool>,
    /// The thread answering scrapes (blocked in `accept` between them: no polling).
    http: Option<JoinHandle<()>>,
    /// The thread writing the textfile (parked between writes).
    textfile: Option<JoinHandle<()>>,
    /// The address bound, if any.
    pub local_addr: Option<std::net::SocketAddr>,
}

impl Exposition {
    /// Binds `listen` (if any) and starts the threads. `Ok(None)` when neither a listener nor a
    /// textfile is asked for. The error names the address (or the textfile) and the option.
    pub fn start(
        listen: Option<&str>,
        textfile: Option<&str>,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Exposition>, String> {
        if listen.is_none() && textfile.is_none() {
            return Ok(None);
        }
        let listener = match listen {
            Some(addr) => Some(TcpListener::bind(addr).map_err(|e| {
                format!("cannot listen on {addr} for metrics (plugin_opt_metrics_listen): {e}")
            })?),
            None => None,
        };
        if let Some(path) = textfile {
            write_textfile(path, &metrics).map_err(|e| {
                format!(
                    "cannot write the metrics textfile {path:?} (plugin_opt_metrics_textfile): {e}"
                )
            })?;
        }
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let stop = Arc::new(AtomicBool::new(false));
        let mut exposition = Exposition {
            stop: Arc::clone(&stop),
            http: None,
            textfile: None,
            local_addr,
        };
        if let Some(listener) = listener {
            let (stop, metrics) = (Arc::clone(&stop), Arc::clone(&metrics));
            exposition.http = Some(
                std::thread::Builder::new()
                    .name("mqtt-policy-metrics".to_owned())
                    .spawn(move || serve(listener, &metrics, &stop))
                    .map_err(|e| format!("cannot start the metrics thread: {e}"))?,
            );
        }
        if let Some(path) = textfile {
            let path = path.to_owned();
            exposition.textfile = Some(
                std::thread::Builder::new()
                    .name("mqtt-policy-textfile".to_owned())
                    .spawn(move || loop {
                        // Woken early by the drop, which sets `stop`: one last write, then out.
                        std::thread::park_timeout(TEXTFILE_PERIOD);
                        let _ = write_textfile(&path, &metrics);
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                    })
                    .map_err(|e| format!("cannot start the metrics textfile thread: {e}"))?,
            );
        }
        Ok(Some(exposition))
    }
}

impl Drop for Exposition {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.http.take() {
            // Wakes the blocked accept, which then sees the flag.
            if let Some(addr) = self.local_addr {
                let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            }
            let _ = t.join();
        }
        if let Some(t) = self.textfile.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Answers scrapes one at a time until `stop`.
fn serve(listener: TcpListener, metrics: &Metrics, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match stream {
            // A scrape that misbehaves only loses its own answer.
            Ok(stream) => {
                let _ = answer(stream, metrics);
            }
            // Out of descriptors and the like: do not spin.
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Answers one HTTP/1.x request: `GET /metrics` (or `/`), else 404; then closes.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    // Read the request head (bounded: 4 KiB, 2 s).
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || buf[..len].ends_with(b"\n\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics" | "/") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is served here\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// Writes the exposition to `path` through a temporary file and a rename.
fn write_textfile(path: &str, metrics: &Metrics) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, metrics.render())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Access, Decision, Reason};

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_the_counters_at_metrics_and_404_elsewhere() {
        let m = Metrics::new();
        let hits = crate::enforce::metrics::RuleHits::new(None);
        m.decided(Access::Write, Decision::deny(Reason::NoRuleMatched), &hits);
        let e = Exposition::start(Some("127.0.0.1:0"), None, Arc::clone(&m))
            .unwrap()
            .unwrap();
        let addr = e.local_addr.unwrap();
        let body = get(addr, "/metrics");
        assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
        assert!(body.contains("mqtt_policy_decisions_total{access=\"write\",verdict=\"deny\"} 1\n"));
        assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));
        drop(e);
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    #[test]
    fn an_address_that_cannot_be_bound_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = Exposition::start(Some(&addr), None, Metrics::new()).unwrap_err();
        assert!(
            e.contains(&addr) && e.contains("plugin_opt_metrics_listen"),
            "{e}"
        );
        let e = Exposition::start(Some("not-an-address"), None, Metrics::new()).unwrap_err();
        assert!(e.contains("not-an-address"), "{e}");
    }

    #[test]
    fn writes_the_textfile_at_start_and_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mqtt_policy.prom");
        let path = path.to_str().unwrap();
        let m = Metrics::new();
        let e = Exposition::start(None, Some(path), Arc::clone(&m))
            .unwrap()
            .unwrap();
        assert!(std::fs::read_to_string(path)
            .unwrap()
            .contains("mqtt_policy_reloads_total"));
        m.reloaded(true);
        drop(e);
        assert!(std::fs::read_to_string(path)
            .unwrap()
            .contains("mqtt_policy_reloads_total{result=\"ok\"} 1\n"));
        assert!(Exposition::start(None, None, m).unwrap().is_none());
    }
}
