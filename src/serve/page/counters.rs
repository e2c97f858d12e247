//! The counters the page shows: this service's own registry ([`crate::enforce::metrics`]) and, when
//! the config names `plugin_opt_metrics_listen`, those of the broker or plugin that enforces the same
//! files, scraped from its `/metrics` (bounded: [`SCRAPE_TIMEOUT`], [`SCRAPE_MAX_BYTES`]). Both come
//! as samples parsed from the Prometheus text format; rule hits carry the rule's text when the rule
//! belongs to the acl file in force here.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::AppState;
use crate::enforce::live::Loaded;

/// How long a scrape of the broker's metrics may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest scrape read.
pub const SCRAPE_MAX_BYTES: u64 = 4 << 20;

/// One sample of the exposition.
#[derive(Debug, PartialEq, Serialize)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
    /// For a rule hit of the acl in force: the rule's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_text: Option<String>,
}

/// One source of counters.
#[derive(Debug, Serialize)]
pub struct Source {
    /// What they count.
    pub name: String,
    /// Where they were read (`http://ADDRESS/metrics`), for a scrape.
    pub url: Option<String>,
    /// The samples.
    pub samples: Vec<Sample>,
    /// Why there are none, if the scrape failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer of `/page/api/counters`.
#[derive(Debug, Serialize)]
pub struct Counters {
    /// The broker's (when configured) then this service's.
    pub sources: Vec<Source>,
}

/// `GET /page/api/counters`.
pub async fn counters(State(state): State<AppState>) -> Json<Counters> {
    let loaded = state.live().current();
    let mut sources = Vec::new();
    if let Some(addr) = loaded.metrics_listen.clone() {
        let url = format!("http://{addr}/metrics");
        let (samples, error) = match scrape(&addr).await {
            Ok(text) => (parse(&text, &loaded), None),
            Err(e) => (Vec::new(), Some(format!("cannot read {url}: {e}"))),
        };
        sources.push(Source {
            name: "the broker (plugin_opt_metrics_listen)".to_owned(),
            url: Some(url),
            samples,
            error,
        });
    }
    sources.push(Source {
        name: "this service".to_owned(),
        url: None,
        samples: parse(&state.metrics().render(), &loaded),
        error: None,
    });
    Json(Counters { sources })
}

/// `GET /metrics` from `addr`, bounded in time and size; the body of a 200 answer.
async fn scrape(addr: &str) -> Result<String, String> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let request =
            format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .take(SCRAPE_MAX_BYTES)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| "not an HTTP answer".to_owned())?;
        let status = head.lines().next().unwrap_or_default();
        if status.split(' ').nth(1) != Some("200") {
            return Err(format!("answered {status:?}"));
        }
        Ok(body.to_owned())
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {SCRAPE_TIMEOUT:?}"))?
}

/// The samples of a Prometheus text exposition (comments and malformed lines left out).
pub fn parse(text: &str, loaded: &Loaded) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .map(|mut s| {
            if s.name == "mqtt_policy_rule_hits_total" {
                s.rule_text = rule_text(&s.labels, loaded);
            }
            s
        })
        .collect()
}

fn rule_text(labels: &BTreeMap<String, String>, loaded: &Loaded) -> Option<String> {
    if labels.get("file")? != &loaded.acl_file {
        return None;
    }
    let line: u32 = labels.get("line")?.parse().ok()?;
    loaded
        .acl
        .rules()
        .iter()
        .find(|r| r.line == line)
        .map(|r| r.text.clone())
}

/// `name{k="v",...} value` or `name value`.
fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, value) = match line.split_once('{') {
        None => {
            let (name, value) = line.split_once(' ')?;
            (name, BTreeMap::new(), value)
        }
        Some((name, rest)) => {
            let (labels, value) = parse_labels(rest)?;
            (name, labels, value)
        }
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: value.trim().parse().ok()?,
        rule_text: None,
    })
}

/// The labels after `{`, and what follows the closing `}`.
fn parse_labels(mut rest: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i + 1,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                _ => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = &after[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_and_without_labels() {
        let s =
            parse_line(r#"mqtt_policy_decisions_total{access="write",verdict="deny"} 3"#).unwrap();
        assert_eq!(s.name, "mqtt_policy_decisions_total");
        assert_eq!(s.labels["access"], "write");
        assert_eq!(s.labels["verdict"], "deny");
        assert_eq!(s.value, 3.0);
        let s = parse_line("mqtt_policy_withheld_deliveries_total 7").unwrap();
        assert!(s.labels.is_empty() && s.value == 7.0);
        let s = parse_line(r#"x{file="a \"q\" \\ b",line="2"} 1"#).unwrap();
        assert_eq!(s.labels["file"], r#"a "q" \ b"#);
        let s = parse_line(r#"h_bucket{le="+Inf"} 12"#).unwrap();
        assert_eq!((s.labels["le"].as_str(), s.value), ("+Inf", 12.0));
        assert!(parse_line("broken{a=\"b\" ").is_none());
        assert!(parse_line("novalue").is_none());
    }
}
