//! `mqtt-policy broker` under a service manager (`Type=notify`): the real program with `NOTIFY_SOCKET`
//! pointing at a datagram socket the test reads, as systemd's would be.

mod broker_support;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use broker_support::ports::accepts_connections;
use broker_support::{tutorial_files, unused_port};

/// The service manager's end of `NOTIFY_SOCKET`.
struct Manager {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl Manager {
    fn new(dir: &std::path::Path) -> Manager {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager { socket, path }
    }

    /// The next notification (its lines joined by spaces), waiting at most `limit`.
    fn next(&self, limit: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(limit))
            .expect("set a read timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(
                String::from_utf8_lossy(&buf[..n])
                    .trim_end()
                    .replace('\n', " "),
            ),
            Err(_) => None,
        }
    }
}

/// Starts the broker with `conf` and `NOTIFY_SOCKET`; the log goes to `dir/broker.log`.
fn start(dir: &std::path::Path, conf: &str, manager: &Manager) -> Child {
    let conf_path = dir.join("mosquitto.conf");
    std::fs::write(&conf_path, conf).expect("write the config");
    let log = std::fs::File::create(dir.join("broker.log")).expect("create the log");
    Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
        .arg("broker")
        .arg("-c")
        .arg(&conf_path)
        .env("NOTIFY_SOCKET", &manager.path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the broker")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name}");
}

/// Waits (10 s at most) for the child to end; kills it if it does not.
fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn ready_after_binding_reloading_then_ready_on_sighup_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    tutorial_files(dir.path());
    let manager = Manager::new(dir.path());
    let port = unused_port();
    let d = dir.path().display();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {d}/users.txt\nacl_file {d}/acl.txt\n"
    );
    let mut child = start(dir.path(), &conf, &manager);
    let log = || std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default();

    let ready = manager.next(Duration::from_secs(20));
    let ready = ready.unwrap_or_else(|| panic!("no READY=1 within 20 s; log: {}", log()));
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(
        ready.contains("STATUS=acl_file:") && ready.contains("acl.txt (2 rules)"),
        "the status says which policy is in force: {ready}"
    );
    // READY=1 comes after the listener is bound: a client can connect at once.
    assert!(
        accepts_connections(port, Duration::from_secs(1)),
        "READY=1 was sent before 127.0.0.1:{port} accepted connections"
    );

    signal(&child, "HUP");
    let reloading = manager.next(Duration::from_secs(10)).expect("RELOADING=1");
    assert!(reloading.contains("RELOADING=1"), "{reloading}");
    assert!(
        reloading.contains("MONOTONIC_USEC="),
        "sd_notify(3) asks for MONOTONIC_USEC with RELOADING=1: {reloading}"
    );
    let ready = manager.next(Duration::from_secs(10)).expect("READY=1");
    assert!(ready.contains("READY=1"), "{ready}");

    // A reload that fails keeps the previous policy, and the service is ready again all the same.
    std::fs::write(dir.path().join("acl.txt"), "topic readwrite a/#/b\n").expect("break the acl");
    signal(&child, "HUP");
    let reloading = manager.next(Duration::from_secs(10)).expect("RELOADING=1");
    assert!(reloading.contains("RELOADING=1"), "{reloading}");
    let ready = manager.next(Duration::from_secs(10)).expect("READY=1");
    assert!(
        ready.contains("READY=1") && ready.contains("reload failed"),
        "{ready}"
    );

    signal(&child, "TERM");
    let stopping = manager.next(Duration::from_secs(10)).expect("STOPPING=1");
    assert_eq!(stopping, "STOPPING=1");
    assert_eq!(wait_exit(&mut child), Some(0), "log: {}", log());
    assert_eq!(manager.next(Duration::from_millis(200)), None);
}

#[test]
fn a_broker_that_cannot_start_never_says_ready() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = Manager::new(dir.path());
    let port = unused_port();
    let conf = format!(
        "listener {port} 127.0.0.1\nacl_file {}/missing-acl.txt\n",
        dir.path().display()
    );
    let mut child = start(dir.path(), &conf, &manager);
    assert_eq!(
        wait_exit(&mut child),
        Some(2),
        "a missing acl file stops the broker with status 2"
    );
    assert_eq!(manager.next(Duration::from_millis(200)), None);
}
