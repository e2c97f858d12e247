//! `mqtt-policy serve`, the real program: it starts on a mosquitto.conf or on files, answers
//! `/healthz`, refuses to start naming the address it cannot bind or the file it cannot load, refuses a
//! non-loopback address without a credential, asks for the credential when it has one, reloads on
//! SIGHUP and keeps the old policy when the new file is bad, and stops on SIGTERM.

mod serve_support;

use serve_support::{serve_fails, tutorial_files, Serve};

#[test]
fn answers_healthz_and_stops_on_sigterm() {
    let s = Serve::start(tutorial_files, &[]);
    let (status, _, body) = s.get("/healthz", &[]);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, _) = s.get("/no-such-path", &[]);
    assert_eq!(status, 404);
    let log = s.log();
    assert!(
        log.contains("acl_file: ") && log.contains("(2 rules)"),
        "{log}"
    );
    assert!(s.stop(), "exits 0 on SIGTERM");
}

#[test]
fn starts_on_files_named_directly() {
    let dir = tempfile::tempdir().unwrap();
    tutorial_files(dir.path());
    let s = Serve::start_in(
        dir.path(),
        &[
            "--acl-file",
            "{dir}/acl.txt",
            "--listen",
            "127.0.0.1:0",
            "--mosquitto",
            "2.1",
        ],
    );
    assert_eq!(s.get("/healthz", &[]).0, 200);
    assert!(
        s.log().contains("deciding as mosquitto-2.1's acl_file"),
        "{}",
        s.log()
    );
}

#[test]
fn an_address_that_cannot_be_bound_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    tutorial_files(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = serve_fails(
        dir.path(),
        &["-c", "{dir}/mosquitto.conf", "--listen", &addr],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}: ")), "{err}");
}

#[test]
fn a_file_that_cannot_be_loaded_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    tutorial_files(dir.path());
    let d = dir.path().display().to_string();
    // A missing acl file named by the config.
    std::fs::remove_file(dir.path().join("acl.txt")).unwrap();
    let (code, err) = serve_fails(
        dir.path(),
        &["-c", "{dir}/mosquitto.conf", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{d}/acl.txt")), "{err}");
    // A malformed one: file and line.
    std::fs::write(
        dir.path().join("acl.txt"),
        "user admin\ntopic sometimes #\n",
    )
    .unwrap();
    let (code, err) = serve_fails(
        dir.path(),
        &["-c", "{dir}/mosquitto.conf", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{d}/acl.txt:2")), "{err}");
    // A missing password file.
    std::fs::write(dir.path().join("acl.txt"), "topic #\n").unwrap();
    let (code, err) = serve_fails(
        dir.path(),
        &[
            "--acl-file",
            "{dir}/acl.txt",
            "--password-file",
            "{dir}/nope.txt",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{d}/nope.txt")), "{err}");
    // A password file Mosquitto 2.1 refuses as a whole (a plaintext entry), with 2.1's semantics;
    // 2.0 drops the line and starts.
    std::fs::write(dir.path().join("users.txt"), "user1:plaintext\n").unwrap();
    let files = [
        "--acl-file",
        "{dir}/acl.txt",
        "--password-file",
        "{dir}/users.txt",
    ];
    let (code, err) = serve_fails(
        dir.path(),
        &[
            &files[..],
            &["--listen", "127.0.0.1:0", "--mosquitto", "2.1"],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{d}/users.txt:1")), "{err}");
    let s = Serve::start_in(
        dir.path(),
        &[&files[..], &["--listen", "127.0.0.1:0"]].concat(),
    );
    assert_eq!(s.get("/healthz", &[]).0, 200);
    drop(s);
    // A missing config.
    let (code, err) = serve_fails(
        dir.path(),
        &["-c", "{dir}/none.conf", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{d}/none.conf")), "{err}");
}

#[test]
fn a_non_loopback_address_needs_a_credential_and_then_every_request_does() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    tutorial_files(dir.path());
    let (code, err) = serve_fails(
        dir.path(),
        &["-c", "{dir}/mosquitto.conf", "--listen", "0.0.0.0:0"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("0.0.0.0:0") && err.contains("--credential-file"),
        "{err}"
    );

    let token = "s3cret-token-for-the-test-0123";
    let cred = dir.path().join("token");
    std::fs::write(&cred, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o640)).unwrap();
    // With a credential it binds; the test still talks to it only over loopback, and binds a
    // loopback address itself (a test binds only to 127.0.0.1): what is checked is the credential.
    let s = Serve::start_in(
        dir.path(),
        &[
            "-c",
            "{dir}/mosquitto.conf",
            "--listen",
            "127.0.0.1:0",
            "--credential-file",
            "{dir}/token",
        ],
    );
    let (status, head, _) = s.get("/", &[]);
    assert_eq!(status, 401);
    assert!(
        head.contains("www-authenticate: Basic realm=\"mqtt-policy\""),
        "{head}"
    );
    assert_eq!(
        s.get("/", &["Authorization: Bearer wrong-token-wrong-token"])
            .0,
        401
    );
    assert_eq!(
        s.get("/", &[&format!("Authorization: Bearer {token}")]).0,
        200
    );
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("operator:{token}"));
    assert_eq!(
        s.get("/", &[&format!("Authorization: Basic {basic}")]).0,
        200
    );
    assert_eq!(s.get("/healthz", &[]).0, 200, "healthz is open");
    drop(s);

    // A credential file others can read is refused, naming it.
    std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = serve_fails(
        dir.path(),
        &[
            "-c",
            "{dir}/mosquitto.conf",
            "--listen",
            "127.0.0.1:0",
            "--credential-file",
            "{dir}/token",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&cred.display().to_string()), "{err}");
}

#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_old_policy() {
    let mut s = Serve::start(tutorial_files, &[]);
    std::fs::write(s.path("acl.txt"), "user admin\ntopic sometimes #\n").unwrap();
    s.hup();
    let log = s.wait_log("reload failed, the previous policy stays in force", 1);
    assert!(
        log.contains("SIGHUP: reload failed, the previous policy stays in force: ")
            && log.contains(&format!("{}:2", s.path("acl.txt").display())),
        "{log}"
    );
    assert_eq!(s.get("/healthz", &[]).0, 200, "still serving");
    std::fs::write(s.path("acl.txt"), "topic read #\n").unwrap();
    s.hup();
    let log = s.wait_log("SIGHUP: reloaded; ", 1);
    assert!(
        log.contains("SIGHUP: reloaded; acl_file: ") && log.contains("(1 rule)"),
        "{log}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    use std::io::{Read, Write};
    let s = Serve::start(tutorial_files, &[]);
    let check = |topic: &str| {
        let body = format!(
            r#"{{"username":"user1","clientid":"c1","topic":"{topic}","action":"publish"}}"#
        );
        format!(
            "POST /emqx/authz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Three requests in one write, as EMQX's HTTP connector pipelines them; the last closes.
    let batch = check("a/b/c/user1")
        + &check("a/b/c/admin")
        + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut c = std::net::TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    c.write_all(batch.as_bytes()).unwrap();
    let mut answers = String::new();
    c.read_to_string(&mut answers).unwrap();
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 3, "{answers}");
    let allow = answers.find(r#"{"result":"allow"}"#).expect("allow");
    let deny = answers.find(r#"{"result":"deny"}"#).expect("deny");
    let ok = answers.find("\r\n\r\nok\n").expect("healthz");
    assert!(allow < deny && deny < ok, "in order: {answers}");
}
