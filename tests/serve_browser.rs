//! The page in a real browser: Debian's chromium, headless, driven through chromedriver (WebDriver) by
//! fantoccini. The tutorial's broker (`mqtt-policy broker`) runs with an audit log and metrics; a real
//! client (`mosquitto_pub`) is denied a publish; `mqtt-policy serve` reads the same mosquitto.conf. The
//! browser loads the page, asks which rules apply to user1 and whether user1 may write
//! `panama/colon/user1`, and sees the answers the page's script renders (the same text as
//! `mqtt-policy check`), the denial from the audit log with its explanation, and the broker's counter.
//!
//! Chromium is kept off the network: every host name but loopback is unresolvable, a dead loopback
//! proxy takes anything else, and its background services are off. The test is skipped (saying so)
//! only when chromium cannot start a session outside CI; with CI=true that is a failure. A missing
//! chromium or chromedriver is a failure everywhere (`scripts/install-deps.sh` installs them).

mod broker_support;
mod serve_support;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use broker_support::{mosquitto, tutorial_files, unused_port, wait_listening, Broker};
use fantoccini::{Client, ClientBuilder, Locator};
use serve_support::Serve;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver in a process group of its own, killed with its browsers on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // The group holds chromedriver and the chromium processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn capabilities(profile: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    let args = [
        "--headless=new".to_owned(),
        // Root (as in CI) cannot use chromium's sandbox.
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--no-first-run".to_owned(),
        "--window-size=1280,1600".to_owned(),
        // Nothing leaves the machine: no name resolves but loopback, anything else meets a dead proxy
        // (loopback bypasses proxies), and the background services that call home are off.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1".to_owned(),
        "--proxy-server=http://127.0.0.1:9".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-default-apps".to_owned(),
        "--disable-extensions".to_owned(),
        "--disable-domain-reliability".to_owned(),
        "--disable-client-side-phishing-detection".to_owned(),
        "--no-pings".to_owned(),
        "--metrics-recording-only".to_owned(),
        "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication"
            .to_owned(),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    caps
}

/// Waits (bounded, 10 s) until the element's rendered text contains every one of `needles`.
async fn wait_text(c: &Client, css: &str, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {needles:?}; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_page_answers_a_question_and_lists_a_real_denial_in_chromium() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: run scripts/install-deps.sh (Debian packages chromium, chromium-driver)"
        );
    }
    let started = Instant::now();
    // The tutorial's broker, with an audit log and metrics, and a real client it denies.
    let mport = unused_port();
    let b = Broker::start(
        &format!(
            "listener {{port}} 127.0.0.1\nallow_anonymous false\nplugin /usr/lib/libmqtt_policy.so\n\
             plugin_opt_password_file {{dir}}/users.txt\nplugin_opt_acl_file {{dir}}/acl.txt\n\
             plugin_opt_audit_log {{dir}}/audit.log\nplugin_opt_metrics_listen 127.0.0.1:{mport}\n"
        ),
        tutorial_files,
    );
    let port = b.port.to_string();
    let args = [
        "-p", &port, "-u", "user1", "-P", "123456", "-q", "1", "-V", "5", "-m", "22",
    ];
    mosquitto(
        "mosquitto_pub",
        &[&args[..], &["-t", "panama/colon/user1"]].concat(),
    );
    let audit = b.wait_audit(1);
    assert_eq!(audit.len(), 1, "the denial is audited: {audit:?}");
    assert_eq!(audit[0]["topic"], "panama/colon/user1");
    let s = Serve::start_in(
        b.dir.path(),
        &["-c", "{dir}/mosquitto.conf", "--listen", "127.0.0.1:0"],
    );

    let dport = unused_port();
    let log = std::fs::File::create(b.path("chromedriver.log")).unwrap();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={dport}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    if let Err(why) = wait_listening(&mut child, dport, Duration::from_secs(10)) {
        panic!(
            "chromedriver {why}: {}",
            std::fs::read_to_string(b.path("chromedriver.log")).unwrap_or_default()
        );
    }
    let _driver = Driver(child);
    let profile = tempfile::tempdir().unwrap();
    let session = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities(profile.path()))
        .connect(&format!("http://127.0.0.1:{dport}"))
        .await;
    let c = match session {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            // Straight to stderr, past the test harness's capture, so that the skip is seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: chromium cannot start a session on this machine (not a CI run): {e}"
            );
            return;
        }
        Err(e) => panic!("chromium cannot start a session: {e}"),
    };

    let url = format!("http://{}/", s.addr);
    c.goto(&url).await.expect("load the page");
    // The script ran: the status line was replaced by the policy in force.
    wait_text(&c, "#status", &["acl_file ", "(2 rules)", "mosquitto-2.0"]).await;

    // Which rules apply to user1, %u substituted.
    c.find(Locator::Id("who-user"))
        .await
        .unwrap()
        .send_keys("user1")
        .await
        .unwrap();
    c.find(Locator::Id("who-show"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let who = wait_text(
        &c,
        "#who-result",
        &["+/+/+/user1", "pattern readwrite +/+/+/%u"],
    )
    .await;
    assert!(
        !who.contains("topic readwrite #"),
        "admin's rule does not apply to user1: {who}"
    );

    // May user1 write panama/colon/user1, and why not.
    assert_eq!(
        c.find(Locator::Id("ask-answer"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        ""
    );
    c.find(Locator::Id("ask-user"))
        .await
        .unwrap()
        .send_keys("user1")
        .await
        .unwrap();
    c.find(Locator::Id("ask-access"))
        .await
        .unwrap()
        .select_by_value("write")
        .await
        .unwrap();
    c.find(Locator::Id("ask-topic"))
        .await
        .unwrap()
        .send_keys("panama/colon/user1")
        .await
        .unwrap();
    c.find(Locator::Id("ask-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let answer = wait_text(&c, "#ask-answer", &["DENY: user \"user1\""]).await;
    let check = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
        .args([
            "check",
            "-c",
            &s.path("mosquitto.conf").display().to_string(),
        ])
        .args(["--user", "user1", "--write", "panama/colon/user1"])
        .output()
        .unwrap();
    let check = String::from_utf8(check.stdout).unwrap();
    for line in check.lines() {
        assert!(
            answer.contains(line.trim()),
            "the page shows check's line {line:?}:\n{answer}"
        );
    }
    assert!(
        answer.contains("needs 4 levels and the topic has 3"),
        "{answer}"
    );

    // The real denial, with its explanation, and the broker's counter of it.
    let denials = wait_text(
        &c,
        "#denials-rows",
        &["panama/colon/user1", "no rule matched"],
    )
    .await;
    assert!(
        denials.contains("user1") && denials.contains("write"),
        "{denials}"
    );
    let counters = wait_text(&c, "#counters-sources", &[&format!("127.0.0.1:{mport}")]).await;
    let row = c
        .find(Locator::XPath(
            "//tr[@data-metric='mqtt_policy_decisions_total'][td[2][text()='access=write, verdict=deny']]",
        ))
        .await
        .unwrap_or_else(|e| panic!("no write/deny counter row ({e}):\n{counters}"));
    assert!(
        row.text().await.unwrap().ends_with(" 1"),
        "{}",
        row.text().await.unwrap()
    );

    if let Ok(path) = std::env::var("SERVE_SCREENSHOT") {
        std::fs::write(path, c.screenshot().await.unwrap()).unwrap();
    }
    c.close().await.unwrap();
    println!("browser test took {:?}", started.elapsed());
}
