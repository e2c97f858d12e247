//! `mqtt-policy test FILE…`: runs expectation files (TOML, [`crate::policy::expectations`]) against the
//! policy their config names and prints one line per case, like a test runner; a failure carries the
//! explanation `mqtt-policy check` would print for the same question.

use std::path::Path;

use clap::Args;

use super::check::{render, resolve_sources, LoginStatus};
use super::{EXIT_DENIED, EXIT_ERROR, EXIT_OK};
use crate::load;
use crate::policy::expectations::{self, ExpectationFile};
use crate::policy::{Semantics, Verdict};

/// Flags of `mqtt-policy test`.
#[derive(Debug, Args)]
#[command(after_long_help = FORMAT)]
pub struct TestArgs {
    /// Expectation files (TOML): `expect = ["user1 may write a/b", "anonymous may not subscribe #"]`.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Test against the files of this mosquitto.conf instead of those the expectation files name.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "mosquitto.conf",
        conflicts_with = "acl_file"
    )]
    pub config: Option<String>,
    /// Test against this acl file instead of the one the expectation files name.
    #[arg(long, value_name = "ACL")]
    pub acl_file: Option<String>,
    /// The password file, for the login status shown with a failure.
    #[arg(long, value_name = "PW")]
    pub password_file: Option<String>,
    /// Decide as this Mosquitto release line: 2.0 or 2.1 (default: the expectation file's `mosquitto`,
    /// else the config's plugin_opt_mosquitto_version, else 2.0).
    #[arg(long, value_name = "2.0|2.1", value_parser = parse_semantics)]
    pub mosquitto: Option<Semantics>,
}

/// The expectation file format, for `--help` and the man page.
const FORMAT: &str = "\
Expectation files are TOML:

  acl_file = \"acl.txt\"          # or config = \"mosquitto.conf\"; relative to this file
  password_file = \"users.txt\"   # optional: login status shown with failures
  mosquitto = \"2.0\"             # optional: 2.0 or 2.1
  expect = [
    \"user1 may write colombia/cundinamarca/cajica/user1\",
    \"user1 may not write panama/colon/user1\",
    \"anonymous may not subscribe #\",
    \"bob with client id c7 may read clients/c7\",
  ]
  [[case]]                      # the same as a table
  user = \"bob\"                  # leave out for an anonymous client
  client_id = \"c7\"              # optional (default: the username, or anonymous)
  access = \"write\"              # read, write or subscribe
  topic = \"a/b\"
  allow = false

A sentence is WHO [with client id ID] may [not] read|write|subscribe TOPIC; the topic is the rest of
the line. Each case decides as mqtt-policy check does; a failure shows check's explanation.

Exit status: 0 every case passed, 1 a case failed, 2 a malformed or unreadable file (file:line).";

fn parse_semantics(text: &str) -> Result<Semantics, String> {
    Semantics::from_version(text)
        .ok_or_else(|| format!("expected 2.0 or 2.1 (the Mosquitto release line), got {text:?}"))
}

/// Runs `test`; returns the exit code (0 every case passed, 1 a case failed, 2 bad input).
pub fn run(args: &TestArgs) -> u8 {
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, false);
    for path in &args.files {
        match run_file(args, path) {
            Ok((p, f)) => {
                passed += p;
                failed += f;
            }
            Err(e) => {
                eprintln!("mqtt-policy: {e}");
                broken = true;
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if broken {
        EXIT_ERROR
    } else if failed > 0 {
        EXIT_DENIED
    } else {
        EXIT_OK
    }
}

/// A path from an expectation file, relative to that file's folder.
fn beside(file: &str, path: &str) -> String {
    match Path::new(file).parent() {
        Some(dir) if Path::new(path).is_relative() && !dir.as_os_str().is_empty() => {
            dir.join(path).to_string_lossy().into_owned()
        }
        _ => path.to_owned(),
    }
}

fn run_file(args: &TestArgs, path: &str) -> Result<(usize, usize), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: cannot read: {e}"))?;
    let file: ExpectationFile = expectations::parse(path, &text).map_err(|e| e.to_string())?;
    let mosquitto = match (args.mosquitto, &file.mosquitto) {
        (Some(s), _) => Some(s),
        (None, Some((version, line))) => {
            Some(Semantics::from_version(version).ok_or_else(|| {
                format!("{path}:{line}: mosquitto = {version:?}: expected \"2.0\" or \"2.1\"")
            })?)
        }
        (None, None) => None,
    };
    let from_flags = args.config.is_some() || args.acl_file.is_some();
    let sources = if from_flags {
        resolve_sources(
            args.acl_file.as_deref(),
            args.password_file.as_deref(),
            args.config.as_deref(),
            mosquitto,
        )?
    } else {
        let own = |p: &Option<String>| p.as_deref().map(|p| beside(path, p));
        resolve_sources(
            own(&file.acl_file).as_deref(),
            args.password_file
                .clone()
                .or(own(&file.password_file))
                .as_deref(),
            own(&file.config).as_deref(),
            mosquitto,
        )?
    };
    let Some(acl_path) = sources.acl_file else {
        return Err(format!(
            "{path}: no acl file: expected `acl_file = \"...\"` or `config = \"...\"` in the file (or -c / --acl-file)"
        ));
    };
    let policy = load::load_policy_as(&acl_path, sources.semantics).map_err(|e| e.to_string())?;
    let passwords = match &sources.password_file {
        Some(p) => Some(load::load_passwords_as(p, sources.semantics).map_err(|e| e.to_string())?),
        None => None,
    };
    println!(
        "running {} cases from {path} against {acl_path} ({}'s acl_file)",
        file.cases.len(),
        sources.semantics
    );
    let (mut passed, mut failed) = (0, 0);
    for case in &file.cases {
        let (ok, explanation) = case.run(&policy);
        if ok {
            passed += 1;
            println!("ok      {path}:{}: {case}", case.line);
            continue;
        }
        failed += 1;
        println!("FAILED  {path}:{}: {case}", case.line);
        let expected = match case.expect {
            Verdict::Allow => "ALLOW",
            Verdict::Deny => "DENY",
        };
        println!("  expected {expected}, but check says:");
        let login = passwords
            .as_ref()
            .map(|p| LoginStatus::new(p, case.client().username));
        for line in render(&explanation, login.as_ref(), sources.semantics).lines() {
            println!("    {line}");
        }
    }
    Ok((passed, failed))
}
