//! One policy for a cluster, live: `scripts/rabbitmq-cluster.sh` starts a three-node RabbitMQ cluster
//! (Debian's rabbitmq-server with rabbitmq_mqtt and rabbitmq_auth_backend_http) on loopback pointed at
//! this build's `mqtt-policy serve`, runs the tutorial's three scenarios with mosquitto_pub/_sub on
//! different nodes and a SIGHUP of serve, and stops every process it started (see the script).
//!
//! It needs root (the nodes run as the rabbitmq user) and `/usr/lib/rabbitmq/bin/rabbitmq-server`
//! (`scripts/install-deps.sh`). Without them it is skipped, saying why — except under `CI=true`,
//! where that fails it.

use std::process::Command;

#[test]
fn a_three_node_rabbitmq_cluster_asks_serve_for_every_decision() {
    let server = std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
    let root = effective_uid() == 0;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !server.exists() || !root {
        let why = if !server.exists() {
            "no /usr/lib/rabbitmq/bin/rabbitmq-server (bash scripts/install-deps.sh installs it)"
        } else {
            "not root (the nodes run as the rabbitmq user)"
        };
        assert!(
            !ci,
            "CI=true: the RabbitMQ cluster test must run, but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let out = Command::new("timeout")
        .args(["240", "bash", "scripts/rabbitmq-cluster.sh"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MQTT_POLICY", env!("CARGO_BIN_EXE_mqtt-policy"))
        .output()
        .expect("run scripts/rabbitmq-cluster.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "{}: {text}", out.status);
    for line in [
        "1. user1 on node 1 -> admin on node 3: delivered",
        "2. a wrong password: refused on nodes 1, 2, 3",
        "3. user1 -> a/b/nodeN/admin: refused on nodes 1, 2, 3",
        "4. after SIGHUP",
        "PASS",
    ] {
        assert!(text.contains(line), "missing {line:?}: {text}");
    }
}

/// The effective user id, from `id -u` (no `unsafe` outside the plugin's FFI).
fn effective_uid() -> u32 {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}
