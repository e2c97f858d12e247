//! What `mqtt-policy lint` says Mosquitto does, checked on every release: each test builds a file,
//! asks lint for its finding, and shows the real broker's built-in `acl_file`/`password_file`
//! behaving as the finding says (and `mqtt-policy check` deciding as the broker did).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::support::broker::MosquittoBroker;
use crate::support::process::run_limited;
use crate::support::tools::{hashed_password_file, mosquitto_pub, MosquittoSub, TOOL_LIMIT};
use crate::support::versions::Version;

/// How long to wait for messages that must not arrive (after the last one that must).
const QUIET: Duration = Duration::from_millis(1500);

/// One acl file with a line for each claim about the acl's semantics:
/// * line 4 (`topic write a/b`) is shadowed by the deny on line 5, which stands after it;
/// * line 6 (`topic write c/%u`) is a `topic` line: `%u` is literal;
/// * line 10 (`pattern deny secret/%u`) never applies to `owner`, whose own `topic readwrite #` (line 9)
///   answers first, but does apply to `v`, who has no block;
/// * line 11 (`pattern write x/a%ub`) is substituted by 2.0 and read literally by 2.1;
/// * line 9 (`topic readwrite #`) lets `owner` read no `$SYS` topic, while `mon` (line 14) can.
const ACL: &str = "\
user admin
topic read #
user u
topic write a/b
topic deny a/#
topic write c/%u
topic write done
user owner
topic readwrite #
pattern deny secret/%u
pattern write x/a%ub
pattern write y/%u
user mon
topic read $SYS/#
";

const USERS: &[(&str, &str)] = &[
    ("admin", "pa"),
    ("u", "pu"),
    ("v", "pv"),
    ("owner", "po"),
    ("mon", "pm"),
];

fn ours(args: &[&str]) -> (i32, String) {
    let out = run_limited(
        Command::new(env!("CARGO_BIN_EXE_mqtt-policy")).args(args),
        TOOL_LIMIT,
    );
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn password(user: &str) -> &'static str {
    USERS.iter().find(|(u, _)| *u == user).expect("a user").1
}

crate::per_version!(the_acl_findings_hold_on_the_real_broker);
fn the_acl_findings_hold_on_the_real_broker(version: Version) {
    let broker = MosquittoBroker::start_on(
        version,
        "allow_anonymous false\npassword_file {dir}/users.txt\nacl_file {dir}/acl.txt\n",
        &[
            ("users.txt", &hashed_password_file(USERS)),
            ("acl.txt", ACL.as_bytes()),
        ],
    );
    let acl = broker.path("acl.txt");
    let acl = acl.to_str().expect("UTF-8 path");

    // What lint says about the file, read as this release reads it.
    let (_, out) = ours(&[
        "lint",
        "--acl-file",
        acl,
        "--mosquitto",
        version.semantics(),
        "--deny",
        "info",
    ]);
    for expected in [
        ":4: warning[shadowed-by-deny]",
        ":6: warning[placeholder-in-topic-line]",
        ":10: warning[deny-overridden-by-own-allow]",
        ":11: warning[placeholder-inside-level]",
        ":9: info[wildcard-excludes-sys]",
    ] {
        assert!(
            out.contains(expected),
            "{version}: {expected} missing:\n{out}"
        );
    }
    assert!(out.contains("user owner (reads and writes)"), "{out}");
    assert!(!out.contains("user v "), "v has no block: {out}");

    // What the broker does: admin reads everything not under `$`; each publish is QoS 1, one after
    // another, so admin receives them in order, and `done` comes last.
    let port = broker.port();
    let admin = MosquittoSub::start(
        port,
        &[
            "-i",
            "admin-sub",
            "-u",
            "admin",
            "-P",
            "pa",
            "-t",
            "#",
            "-q",
            "1",
        ],
    );
    let cases: &[(&str, &str)] = &[
        ("u", "a/b"),
        ("u", "c/u"),
        ("u", "c/%u"),
        ("owner", "secret/owner"),
        ("v", "secret/v"),
        ("u", "x/aub"),
        ("u", "x/a%ub"),
        ("u", "done"),
    ];
    let mut expected = Vec::new();
    for (user, topic) in cases {
        let out = mosquitto_pub(
            port,
            &[
                "-u",
                user,
                "-P",
                password(user),
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                "m",
            ],
        );
        assert!(out.status.success(), "{version}: {user} {topic}: {out:?}");
        // Our check, as this release: its verdict must be what the broker does.
        let (code, _) = ours(&[
            "check",
            "--acl-file",
            acl,
            "--mosquitto",
            version.semantics(),
            "--user",
            user,
            "--write",
            topic,
        ]);
        if code == 0 {
            expected.push(topic.to_string());
        }
    }
    let got: Vec<String> = admin
        .receive(cases.len(), QUIET)
        .into_iter()
        .map(|m| m.topic)
        .collect();
    assert_eq!(
        got,
        expected,
        "{version}: check and the broker disagree; log:\n{}",
        broker.log()
    );
    let (within_level, literal) = if version.is_2_1() {
        ("x/a%ub", "x/aub")
    } else {
        ("x/aub", "x/a%ub")
    };
    assert_eq!(
        got,
        ["c/%u", "secret/owner", within_level, "done"],
        "{version}: a/b is shadowed by the deny after it, c/u is not substituted, secret/v is denied by the pattern, {literal} is not what this release substitutes"
    );

    // `topic readwrite #` reads no `$SYS` topic; `topic read $SYS/#` does (the version is retained).
    let owner = MosquittoSub::start(
        port,
        &[
            "-i",
            "owner-sub",
            "-u",
            "owner",
            "-P",
            "po",
            "-t",
            "$SYS/broker/version",
        ],
    );
    let mon = MosquittoSub::start(
        port,
        &[
            "-i",
            "mon-sub",
            "-u",
            "mon",
            "-P",
            "pm",
            "-t",
            "$SYS/broker/version",
        ],
    );
    let seen = mon.receive(1, Duration::from_secs(5));
    assert_eq!(
        seen.len(),
        1,
        "{version}: mon must read $SYS/broker/version; log:\n{}",
        broker.log()
    );
    assert!(
        owner.receive(1, QUIET).is_empty(),
        "{version}: `topic readwrite #` must not read $SYS"
    );
}

/// A `$7$` entry with a 64-byte salt, as Mosquitto 2.1 writes them.
fn pbkdf2_64_byte_salt(password: &str) -> String {
    use base64::Engine;
    let salt = [7u8; 64];
    let mut hash = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), &salt, 101, &mut hash);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("$7$101${}${}", b64.encode(salt), b64.encode(hash))
}

crate::per_version!(password_entries_lint_flags_are_not_read_as_the_finding_says);
fn password_entries_lint_flags_are_not_read_as_the_finding_says(version: Version) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("argon.txt");
    let file_str = file.to_str().expect("UTF-8 path");
    let (code, _) = ours(&[
        "passwd", "-c", "-b", "-H", "argon2id", file_str, "argon", "pa",
    ]);
    assert_eq!(code, 0);
    let argon = std::fs::read_to_string(&file).expect("the argon2id entry");
    let users = format!(
        "{}plain:pp\nlong:{}\n{}",
        argon,
        pbkdf2_64_byte_salt("pl"),
        String::from_utf8(hashed_password_file(&[("good", "pg")])).expect("text")
    );
    let pw = dir.path().join("users.txt");
    std::fs::write(&pw, &users).expect("write the password file");
    let (_, out) = ours(&["lint", "--password-file", pw.to_str().expect("UTF-8 path")]);
    assert!(
        out.contains(":1: warning[password-dropped-by-mosquitto-2.0]"),
        "{out}"
    );
    assert!(out.contains(":2: error[password-plaintext]"), "{out}");
    assert!(
        out.contains(":3: warning[password-dropped-by-mosquitto-2.0]"),
        "{out}"
    );
    assert!(!out.contains(":4:"), "a 2.0 entry is fine: {out}");

    let config = "allow_anonymous false\npassword_file {dir}/users.txt\n";
    let line = |prefix: &str| -> String {
        users
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    if version.is_2_1() {
        // 2.1.2 drops neither a plaintext line nor (built, as by default, without WITH_ARGON2) an
        // argon2id one: it refuses to start.
        for bad in ["plain:", "argon:"] {
            let file = line(bad) + &line("good:");
            let exited = MosquittoBroker::start_expect_exit_on(
                version,
                config,
                &[("users.txt", file.as_bytes())],
            );
            assert!(
                exited
                    .log
                    .contains("Unable to decode line in password file"),
                "{version}: {bad} {}",
                exited.log
            );
        }
    }
    // 2.0 starts with every line and drops the three; 2.1 starts with the 64-byte salt and reads it.
    let file = if version.is_2_1() {
        line("long:") + &line("good:")
    } else {
        users.clone()
    };
    let broker = MosquittoBroker::start_on(version, config, &[("users.txt", file.as_bytes())]);
    let login = |user: &str, password: &str| {
        mosquitto_pub(
            broker.port(),
            &["-u", user, "-P", password, "-t", "t", "-m", "x", "-q", "1"],
        )
        .status
        .success()
    };
    assert!(login("good", "pg"), "{version}: the control user logs in");
    assert!(
        !login("plain", "pp"),
        "{version}: no release lets a plaintext password in"
    );
    assert!(!login("argon", "pa"), "{version}: argon2id is not read");
    assert_eq!(
        login("long", "pl"),
        version.is_2_1(),
        "{version}: 64-byte salt; log:\n{}",
        broker.log()
    );
}

crate::per_version!(world_accessible_policy_files_are_what_mosquitto_warns_about);
fn world_accessible_policy_files_are_what_mosquitto_warns_about(version: Version) {
    let private = tempfile::tempdir().expect("a temporary directory");
    let acl = private.path().join("acl.txt");
    std::fs::write(&acl, "user admin\ntopic read $SYS/#\n").expect("write the acl");
    let conf_for = |mode: u32| {
        std::fs::set_permissions(&acl, std::fs::Permissions::from_mode(mode)).expect("chmod");
        format!("allow_anonymous true\nacl_file {}\n", acl.display())
    };
    let lint_says = |mode: u32| {
        conf_for(mode);
        let (_, out) = ours(&["lint", "--acl-file", acl.to_str().expect("UTF-8 path")]);
        out.contains("warning[policy-file-world-accessible]")
    };
    assert!(lint_says(0o644));
    assert!(!lint_says(0o600));

    let warned = |mode: u32| {
        let broker = MosquittoBroker::start_on(version, &conf_for(mode), &[]);
        broker.log().contains("has world readable permissions")
    };
    // Debian's 2.0.11 predates the warning; 2.0.22 and 2.1.2 give it, for 0644 and not for 0600.
    let warns = version != Version::Debian2011;
    assert_eq!(warned(0o644), warns, "{version}");
    assert!(!warned(0o600), "{version}");
}
