//! `mqtt-policy lint` as a user runs it: every finding code from a file the test builds, exit codes,
//! `--deny`, `--json`, `-c`, and bad input (exit 2 naming file and line).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn lint(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
        .arg("lint")
        .args(args)
        .output()
        .expect("run mqtt-policy");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `name` with `bytes` and mode `mode`; returns its path.
fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A `$7$` entry as Mosquitto 2.0 writes it (12-byte salt; never verified by lint).
const HASH_20: &str = "$7$101$cHJvcGVyc2FsdHhY$W7v6cHTs9ZWyhnBX+B/i1I0HKGmiG4QdH8zsOTuNMrzNwI3EW82QUnZaP7gEXZ9EyLy9SihglI5vh8S9CISLfQ==";

/// Lints `acl` alone (mode 0600) with `--json`; returns the exit code and `(line, code)` of each finding.
fn acl_findings(acl: &str) -> (i32, Vec<(u64, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", acl.as_bytes(), 0o600);
    json_findings(&["--acl-file", &acl, "--deny", "info"])
}

fn json_findings(args: &[&str]) -> (i32, Vec<(u64, String)>) {
    let mut all = vec!["--json"];
    all.extend(args);
    let (code, out, err) = lint(&all);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let findings = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (code, findings)
}

#[test]
fn a_clean_acl_exits_0_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\ntopic read $SYS/#\n",
        0o600,
    );
    let (code, out, _) = lint(&["--acl-file", &acl]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no findings"), "{out}");
}

#[test]
fn shadowed_by_deny_names_the_line_and_the_deny_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"user u\ntopic write a/b\ntopic deny a/#\n",
        0o600,
    );
    let (code, out, _) = lint(&["--acl-file", &acl]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("acl.txt:2: warning[shadowed-by-deny]"),
        "{out}"
    );
    assert!(
        out.contains("see ") && out.contains("acl.txt:3: topic deny a/#"),
        "{out}"
    );
    assert!(out.contains("hint: "), "{out}");
}

#[test]
fn shadowed_by_allow_is_info_and_fails_only_with_deny_info() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"user u\ntopic readwrite a/#\ntopic read a/b\n",
        0o600,
    );
    let (code, out, _) = lint(&["--acl-file", &acl]);
    assert_eq!(code, 0, "info is below the default --deny warning: {out}");
    assert!(out.contains("acl.txt:3: info[shadowed-by-allow]"), "{out}");
    let (code, _, _) = lint(&["--acl-file", &acl, "--deny", "info"]);
    assert_eq!(code, 1);
    let (code, _, _) = lint(&["--acl-file", &acl, "--deny", "error"]);
    assert_eq!(code, 0);
}

#[test]
fn a_pattern_deny_under_a_users_readwrite_hash_is_reported() {
    let (code, found) =
        acl_findings("pattern deny secret/%u\nuser admin\ntopic readwrite #\ntopic read $SYS/#\n");
    assert_eq!(code, 1);
    assert_eq!(found, [(1, "deny-overridden-by-own-allow".to_owned())]);
}

#[test]
fn placeholders_in_topic_lines_and_inside_levels_are_reported() {
    let (_, found) = acl_findings("topic read a/%u\npattern write x/a%ub\n");
    assert_eq!(
        found,
        [
            (1, "placeholder-in-topic-line".to_owned()),
            (2, "placeholder-inside-level".to_owned())
        ]
    );
}

#[test]
fn topic_readwrite_hash_is_noted_for_excluding_sys() {
    let (_, found) = acl_findings("user admin\ntopic readwrite #\n");
    assert_eq!(found, [(2, "wildcard-excludes-sys".to_owned())]);
}

#[test]
fn the_two_files_disagreeing_on_users_is_reported_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"user alice\ntopic read a\nuser ghost\ntopic read g\n",
        0o600,
    );
    let users = format!("alice:{HASH_20}\nbob:{HASH_20}\n");
    let pw = write(dir.path(), "users.txt", users.as_bytes(), 0o600);
    let (_, found) = json_findings(&["--acl-file", &acl, "--password-file", &pw]);
    assert_eq!(
        found,
        [
            (4, "acl-user-cannot-log-in".to_owned()),
            (2, "password-user-without-rules".to_owned())
        ]
    );
    // With a pattern, bob is governed by it: only a note.
    let acl = write(
        dir.path(),
        "acl.txt",
        b"pattern read p/%u\nuser alice\ntopic read a\n",
        0o600,
    );
    let (_, found) = json_findings(&["--acl-file", &acl, "--password-file", &pw]);
    assert_eq!(found, [(2, "password-user-not-in-acl".to_owned())]);
}

#[test]
fn password_entries_mosquitto_drops_are_reported_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let long_salt = format!("$7$101${}==${}==", "A".repeat(86), "A".repeat(86));
    let argon = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let text = format!(
        "plain:secret\nlong:{long_salt}\nargon:{argon}\nbroken:$7$101$\ndup:{HASH_20}\ndup:{HASH_20}\n{}:{HASH_20}\n",
        "x".repeat(70000)
    );
    let pw = write(dir.path(), "users.txt", text.as_bytes(), 0o600);
    let (code, found) = json_findings(&["--password-file", &pw]);
    assert_eq!(code, 1);
    assert_eq!(
        found,
        [
            (1, "password-plaintext".to_owned()),
            (2, "password-dropped-by-mosquitto-2.0".to_owned()),
            (3, "password-dropped-by-mosquitto-2.0".to_owned()),
            (4, "password-unusable".to_owned()),
            (6, "password-duplicate".to_owned()),
            (7, "password-line-ignored".to_owned()),
        ]
    );
}

#[test]
fn a_nul_byte_in_the_acl_is_a_quirk() {
    let (_, found) = acl_findings("topic read a\n\0topic read b\n");
    assert_eq!(found, [(2, "acl-line-quirk".to_owned())]);
}

#[test]
fn with_a_config_file_modes_point_at_the_line_that_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"user admin\ntopic readwrite #\ntopic read $SYS/#\n",
        0o644,
    );
    let pw = write(
        dir.path(),
        "users.txt",
        format!("admin:{HASH_20}\n").as_bytes(),
        0o600,
    );
    // The tutorial's `chmod 777` on the server key.
    let key = write(
        dir.path(),
        "server.key",
        b"-----BEGIN PRIVATE KEY-----\n",
        0o777,
    );
    let cert = write(
        dir.path(),
        "server.crt",
        b"-----BEGIN CERTIFICATE-----\n",
        0o644,
    );
    let conf =
        format!("port 8883\nacl_file {acl}\npassword_file {pw}\nkeyfile {key}\ncertfile {cert}\n");
    let conf = write(dir.path(), "mosquitto.conf", conf.as_bytes(), 0o600);
    let (code, out, _) = lint(&["-c", &conf]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mosquitto.conf:2: warning[policy-file-world-accessible]: the acl file"),
        "{out}"
    );
    assert!(
        out.contains("mosquitto.conf:4: error[file-world-writable]: the TLS private key"),
        "{out}"
    );
    assert!(
        out.contains("mosquitto.conf:4: error[key-world-readable]"),
        "{out}"
    );
    assert!(out.contains("has mode 0777"), "{out}");
    assert!(
        !out.contains("mosquitto.conf:5:"),
        "a 0644 certificate is fine: {out}"
    );
    assert!(
        !out.contains("mosquitto.conf:3:"),
        "a 0600 password file is fine: {out}"
    );
}

#[test]
fn the_plugins_options_in_a_config_are_linted_too() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"user u\ntopic write a/b\ntopic deny a/#\n",
        0o600,
    );
    let conf = format!("plugin /usr/lib/libmqtt_policy.so\nplugin_opt_acl_file {acl}\n");
    let conf = write(dir.path(), "mosquitto.conf", conf.as_bytes(), 0o600);
    let (code, found) = json_findings(&["-c", &conf]);
    assert_eq!(code, 1);
    assert_eq!(found, [(2, "shadowed-by-deny".to_owned())]);
}

#[test]
fn malformed_input_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"user u\ntopic readwrite a/#/b\n",
        0o600,
    );
    let (code, out, err) = lint(&["--acl-file", &acl]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("acl.txt:2: invalid ACL topic"), "{err}");

    let conf = write(dir.path(), "bad.conf", b"plugin_opt_acl_file /x\n", 0o600);
    let (code, _, err) = lint(&["-c", &conf]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.conf:1:") && err.contains("expected it after `plugin PATH`"),
        "{err}"
    );

    let conf = write(
        dir.path(),
        "key.conf",
        b"acl_file /dev/null\nkeyfile\n",
        0o600,
    );
    let (code, _, err) = lint(&["-c", &conf]);
    assert_eq!(code, 2);
    assert!(
        err.contains("key.conf:2: `keyfile` without a value; expected `keyfile PATH`"),
        "{err}"
    );

    let conf = write(dir.path(), "empty.conf", b"port 1883\n", 0o600);
    let (code, _, err) = lint(&["-c", &conf]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to lint"), "{err}");

    let (code, _, err) = lint(&["--acl-file", &acl, "--deny", "fatal"]);
    assert_eq!(code, 2);
    assert!(err.contains("expected info, warning or error"), "{err}");
}

#[test]
fn json_carries_code_severity_message_hint_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(
        dir.path(),
        "acl.txt",
        b"user u\ntopic write a/b\ntopic deny a/#\n",
        0o600,
    );
    let (_, out, _) = lint(&["--acl-file", &acl, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["code"], "shadowed-by-deny");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["line"], 2);
    assert!(f["message"].as_str().unwrap().contains("never grants"));
    assert!(f["hint"].as_str().unwrap().starts_with("remove"));
    assert_eq!(f["related"][0]["line"], 3);
    assert_eq!(v["counts"]["warning"], 1);
    assert_eq!(v["semantics"], "mosquitto-2.0");
}

#[test]
fn with_mosquitto_2_1_the_line_that_makes_2_1_refuse_the_password_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let pw = write(
        dir.path(),
        "users.txt",
        format!("user1:{HASH_20}\nuser2:{HASH_20}\nuser1:{HASH_20}\n").as_bytes(),
        0o600,
    );
    let (code, findings) = json_findings(&["--password-file", &pw, "--mosquitto", "2.1"]);
    assert_eq!(code, 1);
    assert!(
        findings.contains(&(3, "password-file-refused-by-mosquitto-2.1".to_owned())),
        "{findings:?}"
    );
    // With 2.0's reading the same file only has a duplicate (the later line counts).
    let (_, findings) = json_findings(&["--password-file", &pw, "--deny", "info"]);
    assert_eq!(findings, [(3, "password-duplicate".to_owned())]);
}
