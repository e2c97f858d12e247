//! `mqtt-policy serve`: the HTTP service over the policy (src/serve/).

use clap::{ArgGroup, Args};

use super::{EXIT_ERROR, EXIT_OK};
use crate::enforce::authorize::SubscribeMode;
use crate::enforce::live::PolicySource;
use crate::policy::Semantics;
use crate::serve::{serve, Options};

/// Flags of `mqtt-policy serve`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["acl_file", "config"])))]
pub struct ServeArgs {
    /// Take acl_file and password_file (and plugin_opt_audit_log, plugin_opt_metrics_listen) from this
    /// mosquitto.conf; SIGHUP reads it again.
    #[arg(short = 'c', long = "config", value_name = "mosquitto.conf")]
    pub config: Option<String>,
    /// The acl file (Mosquitto's acl_file format), instead of a config.
    #[arg(long, value_name = "ACL", conflicts_with = "config")]
    pub acl_file: Option<String>,
    /// The password file (Mosquitto's password_file format), with --acl-file.
    #[arg(long, value_name = "PW", requires = "acl_file")]
    pub password_file: Option<String>,
    /// The address to listen on. Only loopback addresses may be served without --credential-file.
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:9884")]
    pub listen: String,
    /// A file holding the token every request must carry (as `Authorization: Bearer TOKEN`, or as the
    /// password of HTTP Basic authentication); required to listen on a non-loopback address.
    #[arg(long, value_name = "FILE")]
    pub credential_file: Option<String>,
    /// The audit log whose denials the page lists (default: the config's plugin_opt_audit_log).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<String>,
    /// Decide as the acl_file of this Mosquitto release line: 2.0 or 2.1. Default: the config's
    /// plugin_opt_mosquitto_version with -c, else 2.0.
    #[arg(long, value_name = "2.0|2.1", value_parser = super::check::parse_semantics)]
    pub mosquitto: Option<Semantics>,
    /// How the cluster contracts (EMQX, VerneMQ, RabbitMQ), whose brokers authorize a SUBSCRIBE once
    /// instead of checking every delivered message, answer a filter only partly readable: strict
    /// refuses it, lenient grants it (the broker then delivers every matching message).
    #[arg(long, value_name = "strict|lenient", default_value = "strict", value_parser = parse_subscribe)]
    pub subscribe: SubscribeMode,
    /// Let VerneMQ cache positive answers for this many seconds (`Cache-Control: max-age`); by default
    /// nothing is cached, so a SIGHUP changes every next decision.
    #[arg(long, value_name = "SECONDS")]
    pub cache_max_age: Option<u32>,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = crate::serve::bounded::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Close a connection on which nothing is read or written for this many seconds (slow clients,
    /// idle keep-alive connections).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::serve::bounded::IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,
    /// Serve HTTPS with this certificate chain (PEM, X.509 version 3, first the server's own), with
    /// --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<String>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<String>,
}

fn parse_subscribe(word: &str) -> Result<SubscribeMode, String> {
    SubscribeMode::parse(word).ok_or_else(|| format!("{word:?}: expected strict or lenient"))
}

/// Runs the service until SIGINT or SIGTERM; exit code 2 when it cannot start.
pub fn run(args: &ServeArgs) -> u8 {
    let source = match (&args.config, &args.acl_file) {
        (Some(path), _) => PolicySource::Config {
            path: path.clone(),
            semantics: args.mosquitto,
        },
        (None, Some(acl)) => PolicySource::Files {
            acl_file: acl.clone(),
            password_file: args.password_file.clone(),
            semantics: args.mosquitto.unwrap_or_default(),
        },
        (None, None) => unreachable!("clap requires --config or --acl-file"),
    };
    let options = Options {
        source,
        listen: args.listen.clone(),
        credential_file: args.credential_file.clone(),
        audit_log: args.audit_log.clone(),
        subscribe: args.subscribe,
        cache_max_age: args.cache_max_age,
        max_connections: args.max_connections.max(1),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout.max(1)),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mqtt-policy-serve")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mqtt-policy serve: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("mqtt-policy serve: {e}");
            EXIT_ERROR
        }
    }
}
