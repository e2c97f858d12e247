//! Password files written by `mqtt-policy passwd` let clients log in to the real mosquitto 2.0 with its
//! built-in `password_file` (and the wrong password is still refused): hash interop in the direction the
//! engine's own tests cannot show.

use std::process::Command;

use crate::support::broker::MosquittoBroker;
use crate::support::process::run_checked;
use crate::support::tools::{mosquitto_pub, TOOL_LIMIT};

/// Runs our `passwd` with `args` and returns the file it wrote.
fn our_passwd(dir: &std::path::Path, steps: &[&[&str]]) -> Vec<u8> {
    let file = dir.join("users.txt");
    let file = file.to_str().expect("UTF-8 path");
    for args in steps {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mqtt-policy"));
        command
            .arg("passwd")
            .args(args.iter().map(|a| if *a == "FILE" { file } else { a }));
        run_checked(&mut command, TOOL_LIMIT);
    }
    std::fs::read(file).expect("read the password file")
}

fn login(port: u16, user: &str, password: &str) -> bool {
    mosquitto_pub(
        port,
        &["-u", user, "-P", password, "-t", "t", "-m", "x", "-q", "1"],
    )
    .status
    .success()
}

#[test]
fn users_written_by_mqtt_policy_passwd_log_in_to_mosquitto_and_wrong_passwords_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let users = our_passwd(
        dir.path(),
        &[
            &["-c", "-b", "FILE", "user1", "123456"],
            &["-b", "-H", "sha512", "FILE", "user3", "secret3"],
            &["-b", "-I", "1000", "FILE", "user4", "secret4"],
            &["-b", "-H", "sha512-pbkdf2", "FILE", "pe.perez", "abc123"],
        ],
    );
    let text = String::from_utf8_lossy(&users);
    assert!(
        text.contains("user1:$7$101$"),
        "default is $7$ with 101 iterations:\n{text}"
    );
    assert!(text.contains("user3:$6$"), "{text}");
    assert!(text.contains("user4:$7$1000$"), "{text}");

    let broker = MosquittoBroker::start(
        "allow_anonymous false\npassword_file {dir}/users.txt\n",
        &[("users.txt", &users)],
    );
    for (user, password) in [
        ("user1", "123456"),
        ("user3", "secret3"),
        ("user4", "secret4"),
        ("pe.perez", "abc123"),
    ] {
        assert!(
            login(broker.port(), user, password),
            "{user} should log in\n{}",
            broker.log()
        );
        assert!(
            !login(broker.port(), user, "wrong"),
            "{user} with a wrong password must be refused"
        );
    }
}

#[test]
fn a_tutorial_users_file_hashed_in_place_by_mqtt_policy_passwd_works_in_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.txt"),
        "admin:admin1234\nuser1:123456\npe.perez:abc123\nironman:jarvis123\nJfkennedy:apolo11\n",
    )
    .unwrap();
    let users = our_passwd(dir.path(), &[&["-U", "FILE"]]);
    let broker = MosquittoBroker::start(
        "allow_anonymous false\npassword_file {dir}/users.txt\n",
        &[("users.txt", &users)],
    );
    for (user, password) in [
        ("admin", "admin1234"),
        ("Jfkennedy", "apolo11"),
        ("ironman", "jarvis123"),
    ] {
        assert!(
            login(broker.port(), user, password),
            "{user} should log in\n{}",
            broker.log()
        );
    }
    assert!(
        !login(broker.port(), "user1", "ABCDEFG"),
        "the tutorial's scenario 2 is refused"
    );
}
