//! Faults around the plugin inside Debian's mosquitto 2.0.11 (issue 13; the broker's own are in
//! `tests/broker_faults.rs`): the audit log rotated under it (logrotate's copytruncate, and create with
//! SIGHUP), the audit log's disk full, and the acl file turned into a directory or cut mid-write during a
//! reload. Each checks that mosquitto keeps serving, that no denial goes unrecorded, and that the old
//! policy decides until a good file comes.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::plugin::{acl_broker_on, audit_records};
use crate::support::broker::MosquittoBroker;
use crate::support::clients::{v5, Endpoint, Login};
use crate::support::small_disk::SmallDisk;
use crate::support::versions::Version;

/// The tutorial's acl file.
const TUTORIAL_ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";
/// user1's own topic, allowed by the tutorial's pattern.
const OWN: &str = "colombia/cundinamarca/cajica/user1";

fn user1() -> Login {
    Login::user("u1", "user1", "any password")
}

/// Waits (bounded, 10 s) until `path` holds at least `n` audit records, and returns them.
fn wait_records(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records: Vec<Value> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect();
        if records.len() >= n || Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn audit_records_go_on_after_logrotate_copytruncate_and_after_create_with_sighup() {
    let mut broker = acl_broker_on(Version::Debian2011, TUTORIAL_ACL);
    let endpoint = Endpoint::tcp(broker.port());
    let mut client = v5::connect(&endpoint, &user1()).await.unwrap();
    let log = broker.path("audit.log");
    assert_eq!(
        client.publish("panama/colon/user1", 1, b"").await,
        Some(0x87)
    );
    assert_eq!(wait_records(&log, 1).len(), 1);

    // copytruncate: copied away, then cut to 0 under mosquitto's open file.
    std::fs::copy(&log, broker.path("audit.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert_eq!(
        client.publish("panama/colon/user2", 1, b"").await,
        Some(0x87)
    );
    let after = wait_records(&log, 1);
    assert_eq!(after.len(), 1, "one record, from the start of the file");
    assert_eq!(after[0]["topic"], "panama/colon/user2");
    assert_eq!(
        std::fs::read(&log).unwrap().first(),
        Some(&b'{'),
        "no hole of zeros"
    );

    // create: renamed away, then SIGHUP reopens the path.
    std::fs::rename(&log, broker.path("audit.log.2")).unwrap();
    broker.reload();
    assert_eq!(
        client.publish("panama/colon/user3", 1, b"").await,
        Some(0x87)
    );
    let new = wait_records(&log, 1);
    assert_eq!(new.len(), 1, "{}", broker.log());
    assert_eq!(new[0]["topic"], "panama/colon/user3");
    assert_eq!(
        wait_records(&broker.path("audit.log.2"), 1).len(),
        1,
        "old file untouched"
    );
    assert_eq!(
        client.publish(OWN, 1, b"").await,
        Some(0x10),
        "still deciding"
    );
    client.disconnect().await;
}

/// Fills the file system under `dir` with a file `name` until it is full (bounded by `limit` bytes).
fn fill(dir: &Path, name: &str, limit: usize) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join(name)).unwrap();
    let block = vec![0u8; 4096];
    let mut written = 0;
    while written < limit {
        match file.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n,
        }
    }
    let _ = file.sync_all();
}

#[tokio::test]
async fn on_a_full_disk_audit_records_go_to_mosquittos_log_and_the_file_resumes_when_space_returns()
{
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(scratch.path().join("audit"), "256k") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI: cannot mount a tmpfs (needs root with CAP_SYS_ADMIN)");
        }
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)");
        return;
    };
    let audit = disk.path.join("audit.log");
    let body = format!(
        "plugin {}\nallow_anonymous true\nplugin_opt_acl_file {{dir}}/acl.txt\nplugin_opt_audit_log {}\n",
        crate::plugin::plugin_path(),
        audit.display()
    );
    let broker = MosquittoBroker::start_on(
        Version::Debian2011,
        &body,
        &[("acl.txt", TUTORIAL_ACL.as_bytes())],
    );
    let endpoint = Endpoint::tcp(broker.port());
    let mut client = v5::connect(&endpoint, &user1()).await.unwrap();
    assert_eq!(
        client.publish("panama/colon/user1", 1, b"").await,
        Some(0x87)
    );
    assert_eq!(wait_records(&audit, 1).len(), 1);

    fill(&disk.path, "filler", 1 << 20);
    // Denials go on being refused. The file's last page still has room for a few records; once it is
    // full, each record reaches mosquitto's log instead, with the error.
    let mut sent = 0;
    while !broker.log().contains("cannot write to the audit log") {
        assert!(
            sent < 100,
            "no write error after {sent} denials:\n{}",
            broker.log()
        );
        let topic = format!("panama/full/{sent}");
        assert_eq!(client.publish(&topic, 1, b"").await, Some(0x87));
        sent += 1;
    }
    let last = format!("panama/full/{}", sent - 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker
        .log()
        .lines()
        .any(|l| l.contains("mqtt-policy audit: ") && l.contains(&last))
    {
        assert!(
            Instant::now() < deadline,
            "{last} in the log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        client.publish(OWN, 1, b"").await,
        Some(0x10),
        "still deciding"
    );

    // Space again: records go to the file again.
    std::fs::remove_file(disk.path.join("filler")).unwrap();
    assert_eq!(
        client.publish("panama/after/space", 1, b"").await,
        Some(0x87)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        if text.contains("panama/after/space") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no record after space returned:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    client.disconnect().await;
    drop(broker);
}

#[tokio::test]
async fn a_reload_with_the_acl_file_a_directory_or_cut_mid_line_keeps_the_old_policy() {
    let mut broker = acl_broker_on(Version::Debian2011, TUTORIAL_ACL);
    let endpoint = Endpoint::tcp(broker.port());
    let mut client = v5::connect(&endpoint, &user1()).await.unwrap();
    let acl = broker.path("acl.txt");
    let mut failures = 0;
    for what in ["a directory", "cut in the middle of a line"] {
        match what {
            "a directory" => {
                std::fs::remove_file(&acl).unwrap();
                std::fs::create_dir(&acl).unwrap();
            }
            _ => {
                std::fs::remove_dir(&acl).unwrap();
                // Cut right after a keyword (a cut after `topic readwr` is a valid rule for `readwr`).
                std::fs::write(&acl, "pattern readwrite +/+/+/%u\nuser admin\ntopic").unwrap();
            }
        }
        broker.reload();
        failures += 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while broker
            .log()
            .matches("reload failed, the previous policy stays in force")
            .count()
            < failures
        {
            assert!(
                Instant::now() < deadline,
                "{what}: no failed reload:\n{}",
                broker.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            client.publish(OWN, 1, b"").await,
            Some(0x10),
            "{what}: own topic"
        );
        assert_eq!(
            client.publish("panama/colon/user1", 1, b"").await,
            Some(0x87),
            "{what}: no fail-open"
        );
    }
    let denials = audit_records(&broker).len();
    assert_eq!(denials, 2, "one record per denial");
    client.disconnect().await;
}
