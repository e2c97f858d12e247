//! A small HTTP/1.1 client on one keep-alive connection, for the contract tests: `POST`/`GET` with a
//! body, the answer read by its `Content-Length`. Every read is bounded by 10 s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer: status, header lines (lower-cased names), body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// `name: value` lines, names lower-cased.
    pub headers: Vec<String>,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            h.split_once(':')
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.trim())
        })
    }
}

/// One keep-alive connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s),
            addr,
        }
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&mut self, path: &str, body: &serde_json::Value, headers: &[&str]) -> Answer {
        let mut h = vec!["Content-Type: application/json"];
        h.extend_from_slice(headers);
        self.request("POST", path, &h, body.to_string().as_bytes())
    }

    /// `POST path` with a form-encoded body.
    pub fn post_form(&mut self, path: &str, pairs: &[(&str, &str)]) -> Answer {
        let body = form(pairs);
        self.request(
            "POST",
            path,
            &["Content-Type: application/x-www-form-urlencoded"],
            body.as_bytes(),
        )
    }

    /// Sends one request and reads its answer.
    pub fn request(&mut self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Answer {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for h in headers {
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let s = self.reader.get_mut();
        s.write_all(request.as_bytes()).expect("send");
        s.write_all(body).expect("send the body");
        self.read_answer()
    }

    fn read_answer(&mut self) -> Answer {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).expect("header line");
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((h, ""));
            headers.push(format!("{}:{value}", name.to_ascii_lowercase()));
        }
        let length: usize = headers
            .iter()
            .find_map(|h| h.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("a length"));
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("the body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// `pairs` form-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", super::encode(k), super::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
