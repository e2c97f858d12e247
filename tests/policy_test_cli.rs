//! `mqtt-policy test` as a user runs it: one line per case, the summary, exit codes, the explanation
//! `check` gives on a failure, where the files come from, and bad expectation files (exit 2, line).

use std::path::Path;
use std::process::Command;

const TUTORIAL_ACL: &str = "pattern readwrite +/+/+/%u\nuser admin\ntopic readwrite #\n";

fn run(program: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
        .arg(program)
        .args(args)
        .output()
        .expect("run mqtt-policy");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn test(args: &[&str]) -> (i32, String, String) {
    run("test", args)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn passing_cases_print_ok_lines_and_the_summary_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let t = write(
        dir.path(),
        "t.toml",
        "acl_file = \"acl.txt\"\nexpect = [\n  \"user1 may write colombia/cundinamarca/cajica/user1\",\n  \"user1 may not write panama/colon/user1\",\n  \"anonymous may not subscribe #\",\n]\n",
    );
    let (code, out, err) = test(&[&t]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("t.toml:3: user1 may write colombia/cundinamarca/cajica/user1"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{out}"
    );
    assert!(out.trim_end().ends_with("3 passed, 0 failed"), "{out}");
}

#[test]
fn a_failing_case_exits_1_with_the_explanation_check_gives() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let t = write(
        dir.path(),
        "t.toml",
        "acl_file = \"acl.txt\"\nexpect = [\"user1 may write panama/colon/user1\", \"admin may read a/b\"]\n",
    );
    let (code, out, _) = test(&[&t]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED  ") && out.contains("t.toml:2: user1 may write panama/colon/user1"),
        "{out}"
    );
    assert!(out.contains("expected ALLOW, but check says:"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");
    // The explanation is check's, line for line.
    let (_, check_out, _) = run(
        "check",
        &[
            "--acl-file",
            &acl,
            "--user",
            "user1",
            "--write",
            "panama/colon/user1",
        ],
    );
    for line in check_out.lines() {
        assert!(
            out.contains(&format!("    {line}")),
            "missing {line:?} in\n{out}"
        );
    }
    assert!(out.contains("needs 4 levels and the topic has 3"), "{out}");
}

#[test]
fn tables_and_client_ids_are_cases_too() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "acl.txt", "pattern write clients/%c\n");
    let t = write(
        dir.path(),
        "t.toml",
        "acl_file = \"acl.txt\"\nexpect = [\"bob with client id c7 may write clients/c7\", \"bob may not write clients/c7\"]\n[[case]]\nuser = \"x\"\nclient_id = \"c7\"\naccess = \"write\"\ntopic = \"clients/c7\"\nallow = true\n",
    );
    let (code, out, _) = test(&[&t]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 passed, 0 failed"), "{out}");
}

#[test]
fn a_config_named_on_the_command_line_or_in_the_file_supplies_the_acl() {
    let dir = tempfile::tempdir().unwrap();
    let acl = write(dir.path(), "acl.txt", TUTORIAL_ACL);
    let conf = write(
        dir.path(),
        "mosquitto.conf",
        &format!("plugin /usr/lib/libmqtt_policy.so\nplugin_opt_acl_file {acl}\n"),
    );
    let t = write(dir.path(), "t.toml", "expect = [\"admin may write x\"]\n");
    let (code, out, err) = test(&["-c", &conf, &t]);
    assert_eq!(code, 0, "{out}{err}");
    let t2 = write(
        dir.path(),
        "t2.toml",
        "config = \"mosquitto.conf\"\nexpect = [\"user1 may not write x\"]\n",
    );
    let (code, out, err) = test(&[&t, &t2]);
    assert_eq!(code, 2, "t.toml names no acl: {out}{err}");
    assert!(err.contains("t.toml: no acl file"), "{err}");
    assert!(
        out.contains("1 passed, 0 failed"),
        "t2.toml still ran: {out}"
    );
}

#[test]
fn the_acl_can_be_read_as_mosquitto_2_1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "acl.txt", "pattern write x/a%ub\n");
    let t = write(
        dir.path(),
        "t.toml",
        "acl_file = \"acl.txt\"\nmosquitto = \"2.1\"\nexpect = [\"u may not write x/aub\", \"u may write x/a%ub\"]\n",
    );
    let (code, out, _) = test(&[&t]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = test(&["--mosquitto", "2.0", &t]);
    assert_eq!(code, 1, "2.0 substitutes inside the level: {out}");
}

#[test]
fn malformed_expectation_files_exit_2_naming_the_line_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "acl.txt", TUTORIAL_ACL);
    for (text, line, wanted) in [
        ("acl_file = \"acl.txt\"\nexpect = [\n  \"user1 may write a\",\n  \"user1 can write b\",\n]\n", 4, "expected `WHO [with client id ID] may [not] read|write|subscribe TOPIC`"),
        ("acl_file = \"acl.txt\"\nexpect = [\"u may publish a\"]\n", 2, "is not read, write or subscribe"),
        ("acl_file = \"acl.txt\"\nexpects = [\"u may read a\"]\n", 2, "unknown field"),
        ("acl_file = \"acl.txt\"\nmosquitto = \"3.0\"\nexpect = [\"u may read a\"]\n", 2, "expected \"2.0\" or \"2.1\""),
        ("acl_file = \"acl.txt\"\n[[case]]\nuser = \"u\"\naccess = \"delete\"\ntopic = \"a\"\nallow = true\n", 4, "expected read, write or subscribe"),
    ] {
        let t = write(dir.path(), "bad.toml", text);
        let (code, _, err) = test(&[&t]);
        assert_eq!(code, 2, "{text}");
        assert!(err.contains(&format!("bad.toml:{line}: ")), "{text}\n{err}");
        assert!(err.contains(wanted), "{text}\n{err}");
    }
    let (code, _, err) = test(&[&dir.path().join("missing.toml").to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml: cannot read"), "{err}");
}

#[test]
fn the_tutorials_expectations_shipped_in_examples_pass() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tutorial/policy-tests.toml"
    );
    let (code, out, err) = test(&[file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}
