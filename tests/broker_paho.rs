//! The tutorial's own client library, paho-mqtt (Python, Debian's `python3-paho-mqtt`), against our
//! broker over TLS 1.2 with the tutorial's files: scenario 1 delivered, scenario 2 refused with CONNACK 4 /
//! `0x86` as the tutorial expects, scenario 3 not delivered.

mod broker_support;

use std::process::Command;
use std::time::Duration;

use broker_support::{make_certs, tutorial_files, Broker};

/// Debian's own interpreter, where `python3-paho-mqtt` is installed.
const PYTHON: &str = "/usr/bin/python3";

#[test]
fn paho_clients_see_the_tutorial_scenarios_over_tls() {
    let broker = Broker::start(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n\
         cafile {dir}/ca.crt\ncertfile {dir}/server.crt\nkeyfile {dir}/server.key\ntls_version tlsv1.2\n",
        |dir| {
            tutorial_files(dir);
            make_certs(dir);
        },
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/paho/tutorial.py");
    let output = Command::new("timeout")
        .arg(Duration::from_secs(60).as_secs().to_string())
        .arg(PYTHON)
        .arg(script)
        .arg(broker.port.to_string())
        .arg(broker.path("ca.crt"))
        .output()
        .expect("run python3 (install python3-paho-mqtt: scripts/install-deps.sh does)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "paho script failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(
        seen["suback"],
        serde_json::json!([[1]]),
        "admin's `#` subscription granted at QoS 1"
    );
    assert_eq!(
        seen["received"],
        serde_json::json!(["colombia/cundinamarca/cajica/user1"]),
        "scenario 1 delivered, scenario 3's topics not"
    );
    assert_eq!(
        seen["wrong_password_v311"], 4,
        "CONNACK 4: bad user name or password"
    );
    assert_eq!(
        seen["wrong_password_v5"], 0x86,
        "MQTT 5: 0x86 bad user name or password"
    );
    assert_eq!(seen["right_password_v311"], 0);
    let denied: Vec<_> = broker
        .wait_audit(5)
        .into_iter()
        .filter(|r| r["access"] == "write")
        .map(|r| r["topic"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        denied,
        [
            "colombia/cundinamarca/bogota/user2",
            "user1",
            "panama/colon/user1"
        ]
    );
}
