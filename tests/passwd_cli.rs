//! `mqtt-policy passwd` run as a program, in temporary directories: mosquitto_passwd's behaviours, the
//! places where we keep data it loses, and interoperability with the real `/usr/bin/mosquitto_passwd`
//! in both directions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mqtt_policy::policy::passwd::{AuthResult, PasswordFile};

const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";

/// A line of reference §3.2 (password 123456).
const USER1: &str = "user1:$7$101$gyUWg1PAKh6oLPFM$ZRACxOfYG9SEkG993VKMGjAsJZZ0iSKfipVHC/OX+rjp7/JOEqzJ06xx6z9xkqxSyqZz0UltLO+dx2VHescOCw==";

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap()
    }

    fn parse(&self, name: &str) -> PasswordFile {
        let path = self.path(name);
        PasswordFile::parse(&path.to_string_lossy(), &fs::read(&path).unwrap())
    }

    /// Runs `mqtt-policy passwd ARGS` in this directory with `stdin` as standard input.
    fn ours(&self, args: &[&str], stdin: &str) -> Output {
        run(
            Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
                .arg("passwd")
                .args(args)
                .current_dir(self.dir.path()),
            stdin,
        )
    }

    /// Runs the real `mosquitto_passwd ARGS` in this directory.
    fn mosquitto(&self, args: &[&str]) -> Output {
        assert!(
            Path::new(MOSQUITTO_PASSWD).exists(),
            "{MOSQUITTO_PASSWD} is missing: run scripts/install-deps.sh"
        );
        run(
            Command::new(MOSQUITTO_PASSWD)
                .args(args)
                .current_dir(self.dir.path()),
            "",
        )
    }
}

fn run(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("program runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert_eq!(code(out), 0, "stderr: {}", stderr(out));
}

#[track_caller]
fn accepted(file: &PasswordFile, user: &str, password: &str) {
    assert_eq!(
        file.verify(user, Some(password.as_bytes())),
        AuthResult::Accepted,
        "{user} with {password:?}; warnings: {:?}",
        file.warnings()
    );
}

// ---------------------------------------------------------------------------------------------------
// mosquitto_passwd's behaviours

#[test]
fn create_in_batch_mode_writes_one_default_line_with_mode_0600() {
    let d = Dir::new();
    assert_ok(&d.ours(&["-c", "-b", "users.txt", "alice", "secret"], ""));
    let text = d.read("users.txt");
    assert!(text.starts_with("alice:$7$101$"), "{text}");
    assert_eq!(text.lines().count(), 1);
    assert!(text.ends_with('\n'));
    let mode = fs::metadata(d.path("users.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let file = d.parse("users.txt");
    accepted(&file, "alice", "secret");
    assert_eq!(
        file.verify("alice", Some(b"Secret")),
        AuthResult::WrongPassword
    );
}

#[test]
fn create_overwrites_an_existing_file_and_keeps_its_mode() {
    let d = Dir::new();
    let path = d.write("users.txt", &format!("{USER1}\nbob:x\n"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    assert_ok(&d.ours(&["-c", "-b", "users.txt", "alice", "pw"], ""));
    let file = d.parse("users.txt");
    assert_eq!(file.len(), 1);
    accepted(&file, "alice", "pw");
    assert!(!file.contains("user1"));
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn batch_mode_adds_a_user_and_replaces_an_existing_one_in_place() {
    let d = Dir::new();
    d.write("users.txt", &format!("{USER1}\nbob:$6$x$y\n"));
    assert_ok(&d.ours(&["-b", "users.txt", "carol", "pw3"], ""));
    assert_ok(&d.ours(&["-b", "users.txt", "user1", "new1"], ""));
    let text = d.read("users.txt");
    let names: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(names, vec!["user1", "bob", "carol"]);
    let file = d.parse("users.txt");
    accepted(&file, "carol", "pw3");
    accepted(&file, "user1", "new1");
    assert_eq!(
        file.verify("user1", Some(b"123456")),
        AuthResult::WrongPassword
    );
}

#[test]
fn the_password_is_prompted_twice_when_not_in_batch_mode() {
    let d = Dir::new();
    let out = d.ours(&["-c", "users.txt", "alice"], "pw1\npw1\n");
    assert_ok(&out);
    let prompts = String::from_utf8_lossy(&out.stdout);
    assert!(
        prompts.contains("Password:") && prompts.contains("Reenter password:"),
        "{prompts}"
    );
    accepted(&d.parse("users.txt"), "alice", "pw1");

    let out = d.ours(&["users.txt", "bob"], "pw2\r\npw2\r\n");
    assert_ok(&out);
    accepted(&d.parse("users.txt"), "bob", "pw2");
}

#[test]
fn prompted_passwords_must_match_and_not_be_empty() {
    let d = Dir::new();
    d.write("users.txt", &format!("{USER1}\n"));
    let out = d.ours(&["users.txt", "bob"], "one\ntwo\n");
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Error: Passwords do not match."),
        "{}",
        stderr(&out)
    );
    let out = d.ours(&["users.txt", "bob"], "\n\n");
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Error: Empty password."),
        "{}",
        stderr(&out)
    );
    let out = d.ours(&["users.txt", "bob"], "");
    assert_eq!(code(&out), 1);
    assert_eq!(d.read("users.txt"), format!("{USER1}\n"), "file untouched");
}

#[test]
fn delete_removes_the_user() {
    let d = Dir::new();
    d.write("users.txt", &format!("{USER1}\nbob:x\n"));
    assert_ok(&d.ours(&["-D", "users.txt", "bob"], ""));
    assert_eq!(d.read("users.txt"), format!("{USER1}\n"));
}

#[test]
fn delete_of_a_missing_user_warns_and_fails_without_touching_the_file() {
    let d = Dir::new();
    d.write("users.txt", &format!("{USER1}\n"));
    let out = d.ours(&["-D", "users.txt", "nobody"], "");
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Warning: User nobody not found in password file."),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.read("users.txt"), format!("{USER1}\n"));
}

#[test]
fn update_hashes_every_plaintext_line_in_place() {
    let d = Dir::new();
    d.write("users.txt", "alice:secret\n bob : pw2 \ncarol:pw3\n");
    assert_ok(&d.ours(&["-U", "users.txt"], ""));
    let text = d.read("users.txt");
    assert!(text.lines().all(|l| l.contains(":$7$101$")), "{text}");
    let file = d.parse("users.txt");
    accepted(&file, "alice", "secret");
    accepted(&file, "bob", "pw2");
    accepted(&file, "carol", "pw3");
}

#[test]
fn update_honours_hash_and_iterations() {
    let d = Dir::new();
    d.write("users.txt", "alice:secret\n");
    assert_ok(&d.ours(&["-U", "-I", "1000", "users.txt"], ""));
    assert!(d.read("users.txt").starts_with("alice:$7$1000$"));
    d.write("users.txt", "alice:secret\n");
    assert_ok(&d.ours(&["-U", "-H", "sha512", "users.txt"], ""));
    assert!(d.read("users.txt").starts_with("alice:$6$"));
    accepted(&d.parse("users.txt"), "alice", "secret");
}

#[test]
fn hash_and_iteration_flags_choose_the_format() {
    let d = Dir::new();
    assert_ok(&d.ours(&["-c", "-b", "-H", "sha512", "u.txt", "a", "pw"], ""));
    assert!(d.read("u.txt").starts_with("a:$6$"));
    assert_ok(&d.ours(&["-b", "-I", "1000", "u.txt", "b", "pw"], ""));
    assert!(d.read("u.txt").contains("\nb:$7$1000$"));
    let out = d.ours(&["-b", "-H", "argon2id", "u.txt", "c", "pw"], "");
    assert_ok(&out);
    assert!(
        stderr(&out).contains("not by Mosquitto 2.0"),
        "{}",
        stderr(&out)
    );
    assert!(d
        .read("u.txt")
        .contains("\nc:$argon2id$v=19$m=47104,t=1,p=1$"));
    let file = d.parse("u.txt");
    for user in ["a", "b", "c"] {
        accepted(&file, user, "pw");
    }
}

#[test]
fn usernames_and_passwords_are_checked() {
    let d = Dir::new();
    let out = d.ours(&["-c", "-b", "u.txt", "a:b", "pw"], "");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("Username must not contain the ':' character."));
    let out = d.ours(&["-c", "-b", "u.txt", "a\tb", "pw"], "");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("control characters"));
    let long = "x".repeat(65536);
    let out = d.ours(&["-c", "-b", "u.txt", "a", &long], "");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("Password must be less than 65536 characters long."));
    assert!(!d.path("u.txt").exists(), "nothing written");
    assert_ok(&d.ours(&["-c", "-b", "u.txt", "a+b#c/d", "-pw"], ""));
    accepted(&d.parse("u.txt"), "a+b#c/d", "-pw");
}

#[test]
fn bad_usage_exits_2() {
    let d = Dir::new();
    d.write("u.txt", &format!("{USER1}\n"));
    for args in [
        &["-c", "-D", "u.txt", "a"][..],
        &["-c", "-U", "u.txt"],
        &["-D", "-U", "u.txt", "a"],
        &["-D", "-b", "u.txt", "a"],
        &["u.txt"],
        &["u.txt", "a", "pw"],
        &["-b", "u.txt", "a"],
        &["-U", "u.txt", "a"],
        &["-H", "md5", "u.txt", "a"],
        &["-I", "0", "u.txt", "a"],
    ] {
        let out = d.ours(args, "");
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    assert_eq!(d.read("u.txt"), format!("{USER1}\n"));
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let d = Dir::new();
    for args in [
        &["-b", "nope.txt", "a", "pw"][..],
        &["-D", "nope.txt", "a"],
        &["-U", "nope.txt"],
    ] {
        let out = d.ours(args, "");
        assert_eq!(code(&out), 1, "{args:?}");
        assert!(stderr(&out).contains("nope.txt"), "{}", stderr(&out));
    }
}

#[test]
fn a_symbolic_link_is_followed() {
    let d = Dir::new();
    d.write("real.txt", &format!("{USER1}\n"));
    std::os::unix::fs::symlink(d.path("real.txt"), d.path("link.txt")).unwrap();
    assert_ok(&d.ours(&["-b", "link.txt", "bob", "pw"], ""));
    assert!(fs::symlink_metadata(d.path("link.txt"))
        .unwrap()
        .file_type()
        .is_symlink());
    accepted(&d.parse("real.txt"), "bob", "pw");
}

#[test]
fn no_temporary_or_backup_file_is_left_behind() {
    let d = Dir::new();
    d.write("users.txt", &format!("{USER1}\n"));
    assert_ok(&d.ours(&["-b", "users.txt", "bob", "pw"], ""));
    assert_ok(&d.ours(&["-D", "users.txt", "bob"], ""));
    let names: Vec<String> = fs::read_dir(d.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["users.txt"]);
}

// ---------------------------------------------------------------------------------------------------
// Where mosquitto_passwd 2.0 loses data and we do not

#[test]
fn batch_mode_keeps_comments_and_blank_lines_where_mosquitto_passwd_drops_the_rest_of_the_file() {
    let original = format!("# our users\n{USER1}\n\n# staff\nbob:x\n");

    let theirs = Dir::new();
    theirs.write("users.txt", &original);
    assert_ok(&theirs.mosquitto(&["-b", "users.txt", "carol", "pw"]));
    let text = theirs.read("users.txt");
    assert!(
        !text.contains("user1") && !text.contains("bob"),
        "mosquitto_passwd lost them: {text}"
    );

    let ours = Dir::new();
    ours.write("users.txt", &original);
    assert_ok(&ours.ours(&["-b", "users.txt", "carol", "pw"], ""));
    let text = ours.read("users.txt");
    assert!(text.starts_with(&original), "{text}");
    let file = ours.parse("users.txt");
    accepted(&file, "user1", "123456");
    accepted(&file, "carol", "pw");
}

#[test]
fn update_leaves_hashed_lines_alone_where_mosquitto_passwd_rehashes_them() {
    let original = format!("{USER1}\nalice:secret\n");

    let theirs = Dir::new();
    theirs.write("users.txt", &original);
    assert_ok(&theirs.mosquitto(&["-U", "users.txt"]));
    let file = theirs.parse("users.txt");
    assert_eq!(
        file.verify("user1", Some(b"123456")),
        AuthResult::WrongPassword,
        "mosquitto_passwd -U hashed the hash"
    );

    let ours = Dir::new();
    ours.write("users.txt", &format!("# c\n{original}"));
    let out = ours.ours(&["-U", "users.txt"], "");
    assert_ok(&out);
    assert!(
        stderr(&out).contains("1 line(s) already hashed were left unchanged"),
        "{}",
        stderr(&out)
    );
    let text = ours.read("users.txt");
    assert!(text.starts_with(&format!("# c\n{USER1}\n")), "{text}");
    let file = ours.parse("users.txt");
    accepted(&file, "user1", "123456");
    accepted(&file, "alice", "secret");
}

#[test]
fn a_missing_final_newline_is_added_before_appending() {
    let d = Dir::new();
    d.write("users.txt", USER1);
    assert_ok(&d.ours(&["-b", "users.txt", "bob", "pw"], ""));
    let file = d.parse("users.txt");
    accepted(&file, "user1", "123456");
    accepted(&file, "bob", "pw");
}

// ---------------------------------------------------------------------------------------------------
// Interoperability with the real mosquitto_passwd

#[test]
fn lines_mosquitto_passwd_writes_verify_here() {
    let d = Dir::new();
    assert_ok(&d.mosquitto(&["-c", "-b", "u.txt", "plain", "pw-default"]));
    assert_ok(&d.mosquitto(&["-b", "-H", "sha512", "u.txt", "sha", "pw-sha512"]));
    assert_ok(&d.mosquitto(&["-b", "-I", "1000", "u.txt", "iter", "pw-1000"]));
    assert_ok(&d.mosquitto(&[
        "-b",
        "-H",
        "sha512-pbkdf2",
        "u.txt",
        "odd+user/#",
        "p@ss:word",
    ]));
    let text = d.read("u.txt");
    assert!(
        text.contains("sha:$6$") && text.contains("iter:$7$1000$"),
        "{text}"
    );
    let file = d.parse("u.txt");
    assert!(file.warnings().is_empty(), "{:?}", file.warnings());
    accepted(&file, "plain", "pw-default");
    accepted(&file, "sha", "pw-sha512");
    accepted(&file, "iter", "pw-1000");
    accepted(&file, "odd+user/#", "p@ss:word");
    assert_eq!(
        file.verify("plain", Some(b"pw-defaulT")),
        AuthResult::WrongPassword
    );
}

#[test]
fn a_file_hashed_by_mosquitto_passwd_update_verifies_here() {
    let d = Dir::new();
    d.write("u.txt", "alice:secret\nbob:123456\n");
    assert_ok(&d.mosquitto(&["-U", "u.txt"]));
    let file = d.parse("u.txt");
    accepted(&file, "alice", "secret");
    accepted(&file, "bob", "123456");
}

#[test]
fn mosquitto_passwd_accepts_files_we_write() {
    let d = Dir::new();
    assert_ok(&d.ours(&["-c", "-b", "u.txt", "alice", "pw1"], ""));
    assert_ok(&d.ours(&["-b", "-H", "sha512", "u.txt", "bob", "pw2"], ""));
    assert_ok(&d.ours(&["-b", "-I", "1000", "u.txt", "carol", "pw3"], ""));
    let ours = d.read("u.txt");

    // Its -D reads our file line by line and rewrites it: no "Corrupt password file", nothing lost.
    let out = d.mosquitto(&["-D", "u.txt", "bob"]);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let after = d.read("u.txt");
    let kept: Vec<&str> = ours.lines().filter(|l| !l.starts_with("bob:")).collect();
    assert_eq!(after.lines().collect::<Vec<_>>(), kept);

    // Its -b adds to our file without complaint; we read the result.
    assert_ok(&d.mosquitto(&["-b", "u.txt", "dave", "pw4"]));
    let file = d.parse("u.txt");
    accepted(&file, "alice", "pw1");
    accepted(&file, "carol", "pw3");
    accepted(&file, "dave", "pw4");
    assert!(!file.contains("bob"));
}

#[test]
fn our_lines_have_the_exact_shape_mosquitto_passwd_writes() {
    let d = Dir::new();
    assert_ok(&d.mosquitto(&["-c", "-b", "theirs.txt", "u", "pw"]));
    assert_ok(&d.ours(&["-c", "-b", "ours.txt", "u", "pw"], ""));
    let shape = |text: String| -> Vec<usize> { text.trim_end().split('$').map(str::len).collect() };
    assert_eq!(shape(d.read("theirs.txt")), shape(d.read("ours.txt")));
    assert_ok(&d.mosquitto(&["-c", "-b", "-H", "sha512", "theirs.txt", "u", "pw"]));
    assert_ok(&d.ours(&["-c", "-b", "-H", "sha512", "ours.txt", "u", "pw"], ""));
    assert_eq!(shape(d.read("theirs.txt")), shape(d.read("ours.txt")));
}
