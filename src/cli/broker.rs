//! `mqtt-policy broker`: the standalone broker.

use clap::Args;

use super::{EXIT_ERROR, EXIT_OK};
use crate::broker::config::BrokerConfig;
use crate::broker::net::{serve, Options};

/// Flags of `mqtt-policy broker`.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// The mosquitto.conf to read (listeners, TLS, password_file, acl_file, allow_anonymous, ...).
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    config: String,
    /// Write audit records (one JSON object per line) to FILE; overrides plugin_opt_audit_log.
    #[arg(long = "audit-log", value_name = "FILE")]
    audit_log: Option<String>,
    /// Log connections, disconnections and refusals to stderr.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

/// Runs the broker until it is stopped; exit code 2 when it cannot start.
pub fn run(args: &BrokerArgs) -> u8 {
    let config = match BrokerConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mqtt-policy broker: {e}");
            return EXIT_ERROR;
        }
    };
    eprintln!(
        "mqtt-policy broker: deciding as {}'s acl_file (plugin_opt_mosquitto_version 2.0|2.1 to choose)",
        config.semantics
    );
    // The runtime runs one task: signals, ticks, password verdicts and commits for the core, which
    // otherwise runs in the connection threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mqtt-policy broker: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let options = Options {
        audit_log: args.audit_log.clone(),
        verbose: args.verbose,
    };
    match runtime.block_on(serve(config, options)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("mqtt-policy broker: {e}");
            EXIT_ERROR
        }
    }
}
