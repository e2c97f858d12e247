//! `mqtt-policy lint`: what in an acl file, a password file and the TLS files of a config is probably
//! not what was meant. The analysis is the core's ([`crate::policy::lint`]) and the file modes are
//! [`crate::enforce::file_modes`]'; this only gathers the files, prints and picks the exit code.

use clap::{ArgGroup, Args};
use serde::Serialize;

use super::check::{resolve_sources, Sources};
use super::{EXIT_DENIED, EXIT_ERROR, EXIT_OK};
use crate::enforce::file_modes::{self, FileRole, NamedFile};
use crate::load;
use crate::policy::conf::MosquittoConf;
use crate::policy::lint::{self, Finding, Severity};
use crate::policy::Semantics;

/// Flags of `mqtt-policy lint`.
#[derive(Debug, Args)]
#[command(after_long_help = LINT_CODES)]
#[command(group(ArgGroup::new("source").required(true).multiple(true).args(["acl_file", "password_file", "config"])))]
pub struct LintArgs {
    /// The acl file (Mosquitto's acl_file format).
    #[arg(long, value_name = "ACL")]
    pub acl_file: Option<String>,
    /// The password file (Mosquitto's password_file format).
    #[arg(long, value_name = "PW")]
    pub password_file: Option<String>,
    /// Take acl_file, password_file and the TLS keyfile/certfile/cafile from this mosquitto.conf (or
    /// our plugin's options in it). --acl-file and --password-file override the config's.
    #[arg(short = 'c', long = "config", value_name = "mosquitto.conf")]
    pub config: Option<String>,
    /// Print one JSON object (`findings`, `counts`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a finding of this severity or worse is found: info, warning or error.
    #[arg(long, value_name = "LEVEL", default_value = "warning", value_parser = parse_severity)]
    pub deny: Severity,
    /// Read the acl file as this Mosquitto release line does: 2.0 or 2.1. Default: the config's
    /// plugin_opt_mosquitto_version with -c, else 2.0.
    #[arg(long, value_name = "2.0|2.1", value_parser = parse_semantics)]
    pub mosquitto: Option<Semantics>,
}

/// The finding codes, for `--help` and the man page.
const LINT_CODES: &str = "\
Findings (code: severity, what):
  shadowed-by-deny: warning, a rule every topic of which a deny rule of its list matches
  shadowed-by-allow: info, an allow an earlier rule of its list already grants in full
  deny-overridden-by-own-allow: warning, a pattern deny some users' own rules always answer first
  placeholder-in-topic-line: warning, %u/%c in a topic line (literal text)
  placeholder-inside-level: warning, %u/%c inside a level: 2.0 substitutes, 2.1 does not
  wildcard-excludes-sys: info, a list reading # (which reads no $SYS topic) and no $ filter
  acl-user-cannot-log-in: warning, a user block for a user the password file cannot log in
  password-user-not-in-acl: info, a password user without a user block (patterns only)
  password-user-without-rules: warning, a password user to whom no rule applies
  password-plaintext: error, a plaintext password (2.0 drops it, 2.1.2 refuses to start)
  password-unusable: error, another entry no Mosquitto reads
  password-dropped-by-mosquitto-2.0: warning, argon2id or a 64-byte salt
  password-duplicate: info, a later line for the same user
  password-line-ignored: warning, a password line ignored without naming a user
  acl-line-quirk: warning, an acl line the releases read differently (NUL byte)
  policy-file-world-accessible: warning, an acl or password file with permissions for others
  key-world-readable: error, a TLS private key readable by others
  file-world-writable: error, a policy, key or certificate file writable by others

Exit status: 0 no finding at or above --deny, 1 one is, 2 bad usage or a malformed or unreadable file.";

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::from_word(text)
        .ok_or_else(|| format!("expected info, warning or error, got {text:?}"))
}

fn parse_semantics(text: &str) -> Result<Semantics, String> {
    Semantics::from_version(text)
        .ok_or_else(|| format!("expected 2.0 or 2.1 (the Mosquitto release line), got {text:?}"))
}

/// How many findings of each severity.
#[derive(Debug, Default, Serialize)]
struct Counts {
    error: usize,
    warning: usize,
    info: usize,
}

/// What `lint --json` prints.
#[derive(Debug, Serialize)]
struct LintOutput<'a> {
    findings: &'a [Finding],
    counts: Counts,
    semantics: Semantics,
}

/// Runs `lint`; returns the exit code (0 clean, 1 findings at or above `--deny`, 2 error).
pub fn run(args: &LintArgs) -> u8 {
    match findings(args) {
        Ok((findings, semantics)) => report(args, &findings, semantics),
        Err(e) => {
            eprintln!("mqtt-policy: {e}");
            EXIT_ERROR
        }
    }
}

fn findings(args: &LintArgs) -> Result<(Vec<Finding>, Semantics), String> {
    let sources = resolve_sources(
        args.acl_file.as_deref(),
        args.password_file.as_deref(),
        args.config.as_deref(),
        args.mosquitto,
    )?;
    if sources.acl_file.is_none() && sources.password_file.is_none() {
        return Err(format!(
            "{}: no acl_file or password_file (nor our plugin's options for them): nothing to lint",
            args.config.as_deref().unwrap_or_default()
        ));
    }
    let passwords = match &sources.password_file {
        Some(path) => {
            Some(load::read_passwords_as(path, sources.semantics).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let mut found = match &sources.acl_file {
        Some(path) => {
            let acl = load::load_acl_as(path, sources.semantics).map_err(|e| e.to_string())?;
            lint::lint(&acl, passwords.as_ref())
        }
        None => Vec::new(),
    };
    if let (None, Some(passwords)) = (&sources.acl_file, &passwords) {
        // Without an acl file only the password file's own findings apply.
        found.extend(lint::lint_passwords(passwords));
    }
    found.extend(file_modes::check(&named_files(&sources)?));
    lint::sort(&mut found);
    Ok((found, sources.semantics))
}

/// The files whose modes matter, with the config line that named each (when from a config).
fn named_files(sources: &Sources) -> Result<Vec<NamedFile>, String> {
    let conf = sources.conf.as_ref();
    let named = |path: &str, keys: &[&str]| -> Option<(String, u32)> {
        let conf = conf?;
        conf.lines
            .iter()
            .rev()
            .find(|l| l.value == path && keys.iter().any(|k| l.key == *k))
            .map(|l| (conf.path.clone(), l.line))
    };
    let mut files = Vec::new();
    if let Some(path) = &sources.acl_file {
        files.push(NamedFile {
            path: path.clone(),
            role: FileRole::AclFile,
            named_at: named(
                path,
                &["acl_file", "plugin_opt_acl_file", "auth_opt_acl_file"],
            ),
        });
    }
    if let Some(path) = &sources.password_file {
        files.push(NamedFile {
            path: path.clone(),
            role: FileRole::PasswordFile,
            named_at: named(
                path,
                &[
                    "password_file",
                    "plugin_opt_password_file",
                    "auth_opt_password_file",
                ],
            ),
        });
    }
    if let Some(conf) = conf {
        files.extend(tls_files(conf)?);
    }
    Ok(files)
}

/// `keyfile`, `certfile` and `cafile` lines of a config; a key without a value is an error naming
/// the line.
fn tls_files(conf: &MosquittoConf) -> Result<Vec<NamedFile>, String> {
    let mut files = Vec::new();
    for line in &conf.lines {
        let role = match line.key.as_str() {
            "keyfile" => FileRole::KeyFile,
            "certfile" | "cafile" => FileRole::Certificate,
            _ => continue,
        };
        if line.value.is_empty() {
            return Err(format!(
                "{}:{}: `{}` without a value; expected `{} PATH`",
                conf.path, line.line, line.key, line.key
            ));
        }
        files.push(NamedFile {
            path: line.value.clone(),
            role,
            named_at: Some((conf.path.clone(), line.line)),
        });
    }
    Ok(files)
}

fn report(args: &LintArgs, findings: &[Finding], semantics: Semantics) -> u8 {
    let mut counts = Counts::default();
    for finding in findings {
        match finding.severity {
            Severity::Error => counts.error += 1,
            Severity::Warning => counts.warning += 1,
            Severity::Info => counts.info += 1,
        }
    }
    let failing = findings.iter().any(|f| f.severity >= args.deny);
    if args.json {
        let output = LintOutput {
            findings,
            counts,
            semantics,
        };
        match serde_json::to_string_pretty(&output) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("mqtt-policy: cannot print JSON: {e}");
                return EXIT_ERROR;
            }
        }
    } else {
        for finding in findings {
            print!("{finding}");
        }
        if findings.is_empty() {
            println!("no findings ({semantics}'s reading)");
        } else {
            println!(
                "{} findings: {} errors, {} warnings, {} info ({semantics}'s reading)",
                findings.len(),
                counts.error,
                counts.warning,
                counts.info
            );
        }
    }
    if failing {
        EXIT_DENIED
    } else {
        EXIT_OK
    }
}
