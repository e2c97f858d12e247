//! Password files that Mosquitto 2.0 and 2.1 read differently: 2.0 drops a line it cannot use and reads
//! on, 2.1.2's password-file plugin refuses the whole file (the broker does not start); a NUL byte ends
//! 2.0's reading but only skips its line in 2.1. On every release, the plugin must load a file exactly
//! when the release's own `password_file` does, and then let in exactly whom it lets in.

use crate::plugin::plugin_path;
use crate::support::broker::{Exited, MosquittoBroker};
use crate::support::tools::{hashed_password_file, mosquitto_pub};
use crate::support::versions::Version;

/// The logins tried on every file that loads: the two users' right and wrong passwords, and `bob`, whom
/// the broken lines name.
const LOGINS: [(&str, &str); 5] = [
    ("user1", "123456"),
    ("user2", "secret2"),
    ("user1", "wrong"),
    ("bob", "plain"),
    ("carol", "argon"),
];

fn login(port: u16, user: &str, password: &str) -> bool {
    mosquitto_pub(
        port,
        &["-u", user, "-P", password, "-t", "t", "-m", "x", "-q", "1"],
    )
    .status
    .success()
}

/// Starts `version` with the file as its own `password_file`, or with our plugin reading it.
fn start(version: Version, plugin: bool, users: &[u8]) -> Result<MosquittoBroker, Exited> {
    let body = if plugin {
        format!(
            "plugin {}\nallow_anonymous false\nplugin_opt_password_file {{dir}}/users.txt\n",
            plugin_path()
        )
    } else {
        "allow_anonymous false\npassword_file {dir}/users.txt\n".to_owned()
    };
    MosquittoBroker::try_start_on(version, &body, &[("users.txt", users)])
}

/// What a release does with a file: refuses to start, or starts and lets in these logins.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Refused,
    Started(Vec<bool>),
}

fn outcome(started: &Result<MosquittoBroker, Exited>) -> Outcome {
    match started {
        Err(_) => Outcome::Refused,
        Ok(broker) => Outcome::Started(
            LOGINS
                .iter()
                .map(|(user, password)| login(broker.port(), user, password))
                .collect(),
        ),
    }
}

crate::per_version!(the_plugin_loads_a_password_file_exactly_when_the_release_does);
fn the_plugin_loads_a_password_file_exactly_when_the_release_does(version: Version) {
    let good = hashed_password_file(&[("user1", "123456"), ("user2", "secret2")]);
    let good = String::from_utf8(good).expect("UTF-8");
    let mut lines = good.lines();
    let (user1, user2) = (lines.next().expect("user1"), lines.next().expect("user2"));
    let hash1 = user1.split_once(':').expect("user:hash").1;
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        ("plaintext", format!("{good}bob:plain\n").into_bytes(), 3),
        (
            "empty username",
            format!("{good} :{hash1}\n").into_bytes(),
            3,
        ),
        (
            "only colons",
            format!("{user1}\n:::\n{user2}\n").into_bytes(),
            2,
        ),
        (
            "duplicate user",
            format!("{user1}\n{user2}\n{user1}\n").into_bytes(),
            3,
        ),
        (
            "missing hash",
            format!("{user1}\nbob:\n{user2}\n").into_bytes(),
            2,
        ),
        (
            "unknown hash type",
            format!("{good}bob:$9$aa\n").into_bytes(),
            3,
        ),
        (
            "bad iterations",
            format!("{user1}\nbob:$7$0$aaaa$bbbb\n{user2}\n").into_bytes(),
            2,
        ),
        (
            "NUL line",
            format!("{user1}\nbad\0x:y\n{user2}\n").into_bytes(),
            0,
        ),
        ("a good file", good.clone().into_bytes(), 0),
    ];
    for (name, users, refused_line) in cases {
        let own = start(version, false, &users);
        let ours = start(version, true, &users);
        let (own_outcome, our_outcome) = (outcome(&own), outcome(&ours));
        assert_eq!(
            our_outcome,
            own_outcome,
            "{version}, {name}: the plugin must do what the release's own password_file does\n\
             own log:\n{}\nplugin log:\n{}",
            log_of(&own),
            log_of(&ours)
        );
        let expected_refusal = version.is_2_1() && refused_line > 0;
        assert_eq!(
            own_outcome == Outcome::Refused,
            expected_refusal,
            "{version}, {name}: {own_outcome:?}\n{}",
            log_of(&own)
        );
        if expected_refusal {
            let log = log_of(&ours);
            assert!(
                log.contains(&format!("users.txt:{refused_line}"))
                    || log.contains(&format!("line {refused_line}:")),
                "{version}, {name}: the plugin's refusal names the line {refused_line}:\n{log}"
            );
        }
        if name == "NUL line" {
            // 2.0 stops reading at the NUL; 2.1 skips the line and reads user2.
            let Outcome::Started(logins) = own_outcome else {
                unreachable!()
            };
            assert_eq!(
                logins[1],
                version.is_2_1(),
                "{version}: user2 after a NUL line"
            );
        }
    }
}

crate::per_version!(an_argon2id_entry_is_accepted_by_the_plugin_with_a_warning);
/// The one place where the plugin differs on purpose: an `$argon2id$` entry, which 2.0 drops and which
/// 2.1.2's default build (without `WITH_ARGON2`) refuses the whole file for. The plugin lets that user
/// in, on every release, and says in its log that the release's own file would not.
fn an_argon2id_entry_is_accepted_by_the_plugin_with_a_warning(version: Version) {
    let good = hashed_password_file(&[("user1", "123456")]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("argon.txt");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
        .args(["passwd", "-c", "-b", "-H", "argon2id"])
        .arg(&file)
        .args(["carol", "argon"])
        .status()
        .expect("run mqtt-policy passwd");
    assert!(status.success());
    let mut users = good;
    users.extend(std::fs::read(&file).expect("read the argon2id line"));
    let own = start(version, false, &users);
    let ours = start(version, true, &users);
    let Outcome::Started(logins) = outcome(&ours) else {
        panic!("{version}: the plugin must start\n{}", log_of(&ours));
    };
    assert_eq!(logins, [true, false, false, false, true], "{version}");
    assert!(
        log_of(&ours).contains(if version.is_2_1() {
            "WITH_ARGON2"
        } else {
            "would drop this entry"
        }),
        "{version}: the plugin warns\n{}",
        log_of(&ours)
    );
    match outcome(&own) {
        Outcome::Refused => assert!(version.is_2_1(), "{version} refused"),
        Outcome::Started(logins) => {
            assert!(!version.is_2_1(), "{version} started");
            assert_eq!(
                logins,
                [true, false, false, false, false],
                "{version} drops carol"
            );
        }
    }
}

fn log_of(started: &Result<MosquittoBroker, Exited>) -> String {
    match started {
        Ok(broker) => broker.log(),
        Err(exited) => exited.log.clone(),
    }
}
