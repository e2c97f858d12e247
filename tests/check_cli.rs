//! `mqtt-policy check` as a user runs it: exit codes, the tutorial's explanation, JSON, `-c`.

use std::path::Path;
use std::process::Command;

const TUTORIAL_ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
        .arg("check")
        .args(args)
        .output()
        .expect("run mqtt-policy");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_three_level_topic_is_denied_with_exit_1_and_the_level_count_explained() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let (code, out, _) = check(&[
        "--acl-file",
        &acl,
        "--user",
        "user1",
        "--write",
        "panama/colon/user1",
    ]);
    assert_eq!(code, 1);
    assert!(out.starts_with("DENY"), "{out}");
    assert!(
        out.contains("acl.txt:1 `pattern readwrite +/+/+/%u`"),
        "{out}"
    );
    assert!(out.contains("needs 4 levels and the topic has 3"), "{out}");
}

#[test]
fn an_allowed_write_exits_0_and_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let (code, out, _) = check(&[
        "--acl-file",
        &acl,
        "--user",
        "user1",
        "--write",
        "colombia/cundinamarca/cajica/user1",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("because rule"), "{out}");
    let (code, _, _) = check(&["--acl-file", &acl, "--user", "admin", "--read", "any/topic"]);
    assert_eq!(code, 0);
}

#[test]
fn json_output_is_one_object_with_the_reason_and_near_misses() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let (code, out, _) = check(&[
        "--acl-file",
        &acl,
        "--user",
        "user1",
        "--write",
        "colombia/cundinamarca/bogota/user2",
        "--json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["reason"]["kind"], "no_rule_matched");
    assert_eq!(v["near_misses"][0]["rule"]["line"], 1);
    assert_eq!(v["near_misses"][0]["effective_filter"], "+/+/+/user1");
    assert_eq!(v["near_misses"][0]["why"]["kind"], "level_differs");
    assert_eq!(v["near_misses"][0]["why"]["level"], 4);
}

#[test]
fn files_come_from_a_mosquitto_conf_with_the_plugin_options() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let conf = write(
        dir.path(),
        "mosquitto.conf",
        &format!("port 8082\nplugin /usr/lib/libmqtt_policy.so\nplugin_opt_acl_file {acl}\n"),
    );
    let (code, out, _) = check(&["-c", &conf, "--user", "user1", "--write", "a/b/c/user1"]);
    assert_eq!(code, 0, "{out}");
    let builtin = write(dir.path(), "builtin.conf", &format!("acl_file {acl}\n"));
    let (code, _, _) = check(&["-c", &builtin, "--user", "user1", "--write", "a/b/user1"]);
    assert_eq!(code, 1);
}

#[test]
fn the_password_file_tells_whether_the_user_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let pw = write(
        dir.path(),
        "users.txt",
        "user1:$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==\nbob:plain\n",
    );
    let (_, out, _) = check(&[
        "--acl-file",
        &acl,
        "--password-file",
        &pw,
        "--user",
        "user1",
        "--write",
        "a/b/c/user1",
    ]);
    assert!(out.contains("usable password entry"), "{out}");
    let (_, out, err) = check(&[
        "--acl-file",
        &acl,
        "--password-file",
        &pw,
        "--user",
        "bob",
        "--write",
        "a/b/c/bob",
    ]);
    assert!(
        out.contains("cannot log in: the entry at") && out.contains("users.txt:2"),
        "{out}"
    );
    assert!(err.contains("users.txt:2"), "{err}");
    let (_, out, _) = check(&[
        "--acl-file",
        &acl,
        "--password-file",
        &pw,
        "--user",
        "eve",
        "--write",
        "a/b/c/eve",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["login"]["can_log_in"], false);
}

#[test]
fn bad_files_and_bad_usage_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.txt", "topic read a\ntopic READ b\n");
    let (code, _, err) = check(&["--acl-file", &bad, "--user", "u", "--write", "a"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.txt:2") && err.contains("READ"), "{err}");
    let (code, _, err) = check(&[
        "--acl-file",
        "/nonexistent/acl.txt",
        "--user",
        "u",
        "--write",
        "a",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/acl.txt"), "{err}");
    let (code, _, _) = check(&["--acl-file", &bad, "--user", "u"]);
    assert_eq!(code, 2, "an access flag is required");
}

/// `--mosquitto 2.0|2.1`: the two releases read `%u` inside a level differently, and say which applied.
#[test]
fn mosquitto_2_0_and_2_1_read_percent_u_inside_a_level_differently() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", "pattern write a%ub/#\n");
    let run = |release: &[&str], topic: &str| {
        let mut args = vec!["--acl-file", &acl, "--user", "bob", "--write", topic];
        args.extend_from_slice(release);
        check(&args)
    };
    // 2.0 (the default) substitutes inside the level; 2.1 only whole levels, so `a%ub` is literal.
    let (code, out, _) = run(&[], "abobb/x");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("semantics: mosquitto-2.0"), "{out}");
    assert_eq!(run(&["--mosquitto", "2.0"], "a%ub/x").0, 1);
    let (code, out, _) = run(&["--mosquitto", "2.1"], "abobb/x");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("semantics: mosquitto-2.1"), "{out}");
    let (code, out, _) = run(&["--mosquitto", "2.1", "--json"], "a%ub/x");
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["semantics"], "mosquitto-2.1");
    let (code, _, err) = run(&["--mosquitto", "1.6"], "a/x");
    assert_eq!(code, 2);
    assert!(err.contains("expected 2.0 or 2.1"), "{err}");
}

/// `-c mosquitto.conf` takes the semantics from `plugin_opt_mosquitto_version`, as the broker does;
/// `--mosquitto` overrides it.
#[test]
fn a_config_chooses_the_semantics_with_plugin_opt_mosquitto_version() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", "pattern write a%ub/#\n");
    let conf = write(
        dir.path(),
        "mosquitto.conf",
        &format!(
            "listener 1883\nplugin /usr/lib/libmqtt_policy.so\nplugin_opt_acl_file {acl}\n\
             plugin_opt_mosquitto_version 2.1\n"
        ),
    );
    let (code, out, _) = check(&["-c", &conf, "--user", "bob", "--write", "a%ub/x"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("semantics: mosquitto-2.1"), "{out}");
    let (code, out, _) = check(&[
        "-c",
        &conf,
        "--mosquitto",
        "2.0",
        "--user",
        "bob",
        "--write",
        "a%ub/x",
    ]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn with_mosquitto_2_1_a_password_file_2_1_refuses_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let pw = write(
        dir.path(),
        "users.txt",
        "user1:$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==\nbob:plain\n",
    );
    let args = |version: &'static str| {
        check(&[
            "--acl-file",
            &acl,
            "--password-file",
            &pw,
            "--user",
            "user1",
            "--write",
            "a/b/c/user1",
            "--mosquitto",
            version,
        ])
    };
    // 2.0 drops the plaintext line and answers.
    let (code, out, err) = args("2.0");
    assert_eq!(code, 0, "{out}{err}");
    // 2.1 refuses the whole file: exit 2, the file and line named.
    let (code, out, err) = args("2.1");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&format!("{pw}:2:")), "{err}");
    assert!(err.contains("not hashed"), "{err}");
}
