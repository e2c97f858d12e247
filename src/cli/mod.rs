//! The `mqtt-policy` command line: thin wrappers that parse flags, call the core and print.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod broker;
pub mod check;
pub mod generate;
pub mod lint;
pub mod passwd;
pub mod policy_test;
pub mod serve;

/// Exit code for an allowed decision or a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code for a denied decision.
pub const EXIT_DENIED: u8 = 1;
/// Exit code for bad usage or an unreadable or malformed file.
pub const EXIT_ERROR: u8 = 2;

/// Who may connect to an MQTT broker and what they may read, write and subscribe to — and why.
#[derive(Debug, Parser)]
#[command(name = "mqtt-policy", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Would this client be allowed to read, write or subscribe to this topic, and why (not)?
    Check(check::CheckArgs),
    /// Find rules that never match or are shadowed, users the two files disagree on, password
    /// entries Mosquitto drops and exposed key or password files.
    Lint(lint::LintArgs),
    /// Run policy tests: expectation files (TOML) saying who may and may not read, write or
    /// subscribe to what.
    Test(policy_test::TestArgs),
    /// Manage a password file like mosquitto_passwd (same flags, no data loss).
    Passwd(passwd::PasswdArgs),
    /// Run the standalone MQTT broker with a mosquitto.conf.
    Broker(broker::BrokerArgs),
    /// Serve the policy over HTTP: a read-only page (who may read and write what, and why; recent
    /// denials; counters).
    Serve(serve::ServeArgs),
}

/// Runs the program with the process's arguments.
pub fn main() -> ExitCode {
    // `generate` (man pages, completions) is parsed apart so that it appears in neither of them.
    if std::env::args_os().nth(1).is_some_and(|a| a == "generate") {
        return ExitCode::from(generate::main(std::env::args_os().skip(1)));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Passwd(args) => passwd::run(&args),
        Command::Test(args) => policy_test::run(&args),
        Command::Broker(args) => broker::run(&args),
        Command::Serve(args) => serve::run(&args),
    };
    ExitCode::from(code)
}
