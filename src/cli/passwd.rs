//! `mqtt-policy passwd`: manage a password file like `mosquitto_passwd`, with the same flags.
//!
//! ```text
//! mqtt-policy passwd [-H sha512-pbkdf2|argon2id|sha512] [-I ITERATIONS] [-c] FILE USER     (prompts twice)
//! mqtt-policy passwd [-H …] [-I …] [-c] -b FILE USER PASSWORD
//! mqtt-policy passwd -D FILE USER
//! mqtt-policy passwd [-H …] [-I …] -U FILE
//! ```
//! Exit codes: 0 done; 1 failed (as `mosquitto_passwd`: bad username or password, unreadable file, user
//! not found for `-D`, passwords that do not match); 2 bad usage.
//!
//! The editing itself is [`crate::policy::passwd::edit`]; this file reads, prompts and writes.
//! Differences from `mosquitto_passwd` 2.0 (see `edit` for the details): comment and blank lines are kept,
//! `-U` does not re-hash hashes, `-I` also applies to `-U`, no `FILE.tmp` backup, new files are 0600,
//! and a password mismatch exits 1 (mosquitto_passwd: 2, which is our usage code).

mod atomic;
mod prompt;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use clap::{Args, ValueEnum};

use super::{EXIT_ERROR, EXIT_OK};
use crate::policy::passwd::edit::{self, Edited};
use crate::policy::passwd::{hash_password, HashKind, MAX_ITERATIONS};

/// Exit code for a failure (as `mosquitto_passwd`).
const EXIT_FAILED: u8 = 1;

/// The `-H` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HashArg {
    /// PBKDF2-HMAC-SHA512 (`$7$`), 12-byte salt: the default, read by Mosquitto 2.0 and later.
    #[value(name = "sha512-pbkdf2")]
    Sha512Pbkdf2,
    /// argon2id as Mosquitto 2.1 writes it: NOT readable by Mosquitto 2.0 (Debian 12).
    #[value(name = "argon2id")]
    Argon2id,
    /// One round of SHA-512 (`$6$`), Mosquitto 1.6's default. Weak.
    #[value(name = "sha512")]
    Sha512,
}

impl From<HashArg> for HashKind {
    fn from(arg: HashArg) -> HashKind {
        match arg {
            HashArg::Sha512Pbkdf2 => HashKind::Sha512Pbkdf2,
            HashArg::Argon2id => HashKind::Argon2id,
            HashArg::Sha512 => HashKind::Sha512,
        }
    }
}

/// Flags of `mqtt-policy passwd` (those of `mosquitto_passwd`).
#[derive(Debug, Args)]
#[command(
    override_usage = "mqtt-policy passwd [-c | -U | -D] [-b] [-H sha512-pbkdf2|argon2id|sha512] [-I ITERATIONS] FILE [USER [PASSWORD]]"
)]
#[command(after_help = "\
Files written here are read by Mosquitto 2.0 (unless -H argon2id), and files written by mosquitto_passwd \
are read here. Unlike mosquitto_passwd 2.0, comment and blank lines are kept, -U leaves lines that are \
already hashed alone, and the file is replaced atomically. New files get mode 0600: make sure the \
broker's user can read them (for example `chown mosquitto FILE`).")]
pub struct PasswdArgs {
    /// Create a new password file, overwriting an existing one.
    #[arg(short = 'c', conflicts_with_all = ["delete", "update"])]
    pub create: bool,
    /// Update a plain-text password file to use hashes (lines already hashed are left alone).
    #[arg(short = 'U', conflicts_with = "delete")]
    pub update: bool,
    /// Delete USER instead of setting a password.
    #[arg(short = 'D', conflicts_with = "batch")]
    pub delete: bool,
    /// Batch mode: take the password from the command line.
    #[arg(short = 'b')]
    pub batch: bool,
    /// The hash for new passwords.
    #[arg(
        short = 'H',
        value_enum,
        value_name = "HASH",
        default_value = "sha512-pbkdf2"
    )]
    pub hash: HashArg,
    /// PBKDF2 iterations for sha512-pbkdf2 (default 101, as mosquitto_passwd 2.0).
    #[arg(short = 'I', value_name = "ITERATIONS",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_ITERATIONS)))]
    pub iterations: Option<u32>,
    /// The password file.
    #[arg(value_name = "FILE")]
    pub file: OsString,
    /// The username.
    #[arg(value_name = "USER", allow_hyphen_values = true)]
    pub user: Option<String>,
    /// The password (with -b only).
    #[arg(value_name = "PASSWORD", allow_hyphen_values = true)]
    pub password: Option<OsString>,
}

/// What to do, once the arguments make sense.
enum Action<'a> {
    Create { user: &'a str },
    Set { user: &'a str },
    Delete { user: &'a str },
    Update,
}

/// Checks the positional arguments the way `mosquitto_passwd` does.
fn action(args: &PasswdArgs) -> Result<Action<'_>, &'static str> {
    let user = args.user.as_deref();
    let password = args.password.is_some();
    if args.update {
        return match user {
            None => Ok(Action::Update),
            Some(_) => Err("-U takes only the password file"),
        };
    }
    let Some(user) = user else {
        return Err("a username is required");
    };
    if args.delete {
        return if password {
            Err("-D takes the password file and a username, no password")
        } else {
            Ok(Action::Delete { user })
        };
    }
    match (args.batch, password) {
        (true, false) => Err("-b needs the password file, a username and a password"),
        (false, true) => Err("a password on the command line needs -b"),
        _ if args.create => Ok(Action::Create { user }),
        _ => Ok(Action::Set { user }),
    }
}

/// Runs `passwd`; returns the exit code.
pub fn run(args: &PasswdArgs) -> u8 {
    let action = match action(args) {
        Ok(action) => action,
        Err(message) => {
            eprintln!("error: {message}\n\nUsage: mqtt-policy passwd [-c | -U | -D] [-b] [-H sha512-pbkdf2|argon2id|sha512] [-I ITERATIONS] FILE [USER [PASSWORD]]\n\nFor more information, try 'mqtt-policy passwd --help'.");
            return EXIT_ERROR;
        }
    };
    match execute(args, &action) {
        Ok(()) => EXIT_OK,
        Err(message) => {
            eprintln!("{message}");
            EXIT_FAILED
        }
    }
}

/// An error line as `mosquitto_passwd` prints it.
fn error(message: impl std::fmt::Display) -> String {
    format!("Error: {message}")
}

/// Does the work; the error is the line to print.
fn execute(args: &PasswdArgs, action: &Action<'_>) -> Result<(), String> {
    let path = Path::new(&args.file);
    let shown = path.display();
    let kind = HashKind::from(args.hash);
    if let Action::Create { user } | Action::Set { user } | Action::Delete { user } = action {
        edit::validate_username(user).map_err(error)?;
    }
    if let Some(password) = &args.password {
        edit::validate_password(password.as_bytes()).map_err(error)?;
    }
    if kind == HashKind::Argon2id && !matches!(action, Action::Delete { .. }) {
        eprintln!("Note: argon2id lines are read by Mosquitto 2.1 and mqtt-policy, not by Mosquitto 2.0 (Debian 12).");
    }
    let new_text = match action {
        Action::Create { user } => {
            let password = obtain_password(args)?;
            edit::new_file(user, &hash_password(&password, kind, args.iterations))
        }
        Action::Set { user } => {
            let old = read_existing(path)?;
            let password = obtain_password(args)?;
            let edited =
                edit::set_user(&old, user, &hash_password(&password, kind, args.iterations));
            print_notes(&edited);
            edited.text
        }
        Action::Delete { user } => {
            let old = read_existing(path)?;
            // mosquitto_passwd calls a missing user a warning, and fails.
            let edited = edit::delete_user(&old, user).map_err(|e| format!("Warning: {e}"))?;
            edited.text
        }
        Action::Update => {
            let old = read_existing(path)?;
            let progress = hashing_progress(edit::plaintext_lines(&old));
            let upgraded = edit::upgrade_plaintext(&old, |pw| {
                progress.inc(1);
                hash_password(pw, kind, args.iterations)
            });
            progress.finish_and_clear();
            print_notes(&upgraded.edited);
            if upgraded.already_hashed > 0 {
                eprintln!(
                    "Note: {} line(s) already hashed were left unchanged (mosquitto_passwd -U would hash the hashes, locking those users out).",
                    upgraded.already_hashed
                );
            }
            if upgraded.hashed == 0 {
                return Ok(());
            }
            upgraded.edited.text
        }
    };
    let warnings = atomic::write(path, &new_text).map_err(|e| match action {
        Action::Create { .. } => error(format!(
            "Unable to open file {shown} for writing. {}.",
            io_reason(&e)
        )),
        _ => error(format!(
            "Unable to write password file {shown}. {}.",
            io_reason(&e)
        )),
    })?;
    for warning in &warnings {
        eprintln!("Warning: {shown}: {warning}");
    }
    Ok(())
}

/// The password from the command line (`-b`) or from two prompts.
fn obtain_password(args: &PasswdArgs) -> Result<Vec<u8>, String> {
    match &args.password {
        Some(password) => Ok(password.as_bytes().to_vec()),
        None => prompt::read_password_twice().map_err(error),
    }
}

/// A progress bar for `-U` over `total` passwords to hash, drawn only when stderr is a terminal (a file of
/// a million plaintext passwords takes minutes to hash).
fn hashing_progress(total: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "hashing {pos}/{len} passwords [{bar:40}] {percent}% {per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn read_existing(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(atomic::resolve(path)).map_err(|e| {
        error(format!(
            "Unable to open password file {}. {}.",
            path.display(),
            io_reason(&e)
        ))
    })
}

/// The OS message without Rust's "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn print_notes(edited: &Edited) {
    for note in &edited.notes {
        eprintln!("Note: {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: PasswdArgs,
    }

    fn parse(argv: &[&str]) -> Result<PasswdArgs, clap::Error> {
        let mut full = vec!["passwd"];
        full.extend_from_slice(argv);
        Wrapper::try_parse_from(full).map(|w| w.args)
    }

    fn kind_of(argv: &[&str]) -> Result<&'static str, &'static str> {
        let args = parse(argv).map_err(|_| "clap")?;
        action(&args).map(|a| match a {
            Action::Create { .. } => "create",
            Action::Set { .. } => "set",
            Action::Delete { .. } => "delete",
            Action::Update => "update",
        })
    }

    #[test]
    fn argument_combinations_follow_mosquitto_passwd() {
        assert_eq!(kind_of(&["f", "u"]), Ok("set"));
        assert_eq!(kind_of(&["-b", "f", "u", "p"]), Ok("set"));
        assert_eq!(kind_of(&["-c", "f", "u"]), Ok("create"));
        assert_eq!(kind_of(&["-c", "-b", "f", "u", "p"]), Ok("create"));
        assert_eq!(kind_of(&["-D", "f", "u"]), Ok("delete"));
        assert_eq!(kind_of(&["-U", "f"]), Ok("update"));
        assert_eq!(kind_of(&["-U", "-b", "f"]), Ok("update"));
        assert!(kind_of(&["f"]).is_err());
        assert!(kind_of(&["f", "u", "p"]).is_err());
        assert!(kind_of(&["-b", "f", "u"]).is_err());
        assert!(kind_of(&["-U", "f", "u"]).is_err());
        assert_eq!(kind_of(&["-c", "-D", "f", "u"]), Err("clap"));
        assert_eq!(kind_of(&["-c", "-U", "f"]), Err("clap"));
        assert_eq!(kind_of(&["-D", "-U", "f", "u"]), Err("clap"));
        assert_eq!(kind_of(&["-D", "-b", "f", "u"]), Err("clap"));
    }

    #[test]
    fn hash_and_iteration_flags() {
        let args = parse(&["-H", "sha512", "-I", "1000", "-b", "f", "u", "p"]).unwrap();
        assert_eq!(args.hash, HashArg::Sha512);
        assert_eq!(args.iterations, Some(1000));
        assert_eq!(parse(&["f", "u"]).unwrap().hash, HashArg::Sha512Pbkdf2);
        assert!(parse(&["-H", "argon2id", "f", "u"]).is_ok());
        assert!(parse(&["-H", "md5", "f", "u"]).is_err());
        assert!(parse(&["-I", "0", "f", "u"]).is_err());
        assert!(parse(&["-I", "2147483648", "f", "u"]).is_err());
        assert!(parse(&["-I", "2147483647", "f", "u"]).is_ok());
    }

    #[test]
    fn passwords_may_start_with_a_dash() {
        let args = parse(&["-b", "f", "u", "-secret"]).unwrap();
        assert_eq!(
            args.password.as_deref(),
            Some(std::ffi::OsStr::new("-secret"))
        );
    }
}
