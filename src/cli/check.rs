//! `mqtt-policy check`: answers "would this client be allowed to …, and why (not)?" without a broker.

use clap::{ArgGroup, Args};

use super::{EXIT_DENIED, EXIT_ERROR, EXIT_OK};
use crate::load;
use crate::policy::{Access, ClientRef, Verdict};

/// Flags of `mqtt-policy check`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("access").required(true).args(["read", "write", "subscribe"])))]
#[command(group(ArgGroup::new("source").required(true).args(["acl_file", "config"])))]
#[command(group(ArgGroup::new("who").required(true).args(["user", "anonymous"])))]
pub struct CheckArgs {
    /// The acl file (Mosquitto's acl_file format).
    #[arg(long, value_name = "ACL")]
    pub acl_file: Option<String>,
    /// The password file (Mosquitto's password_file format): also tells whether the user can log in.
    #[arg(long, value_name = "PW")]
    pub password_file: Option<String>,
    /// Take acl_file and password_file from this mosquitto.conf (or our plugin's options in it).
    #[arg(short = 'c', long = "config", value_name = "mosquitto.conf")]
    pub config: Option<String>,
    /// The username the client connects with.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The client connects without a username.
    #[arg(long)]
    pub anonymous: bool,
    /// The client id (default: the username, or `anonymous`).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Check receiving a message published on TOPIC.
    #[arg(long, value_name = "TOPIC")]
    pub read: Option<String>,
    /// Check publishing to TOPIC.
    #[arg(long, value_name = "TOPIC")]
    pub write: Option<String>,
    /// Check subscribing with the filter TOPIC.
    #[arg(long, value_name = "TOPIC")]
    pub subscribe: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `check`; returns the exit code (0 allow, 1 deny, 2 error).
pub fn run(args: &CheckArgs) -> u8 {
    let acl_path = match (&args.acl_file, &args.config) {
        (Some(path), _) => path.clone(),
        (None, Some(conf_path)) => {
            let files = load::load_conf(conf_path).and_then(|conf| conf.policy_files());
            match files {
                Ok(files) => match files.acl_file {
                    Some(path) => path,
                    None => {
                        eprintln!("mqtt-policy: {conf_path}: no acl_file (or plugin_opt_acl_file) in the config");
                        return EXIT_ERROR;
                    }
                },
                Err(e) => {
                    eprintln!("mqtt-policy: {e}");
                    return EXIT_ERROR;
                }
            }
        }
        (None, None) => unreachable!("clap requires --acl-file or -c"),
    };
    let policy = match load::load_policy(&acl_path) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("mqtt-policy: {e}");
            return EXIT_ERROR;
        }
    };
    let (access, topic) = match (&args.read, &args.write, &args.subscribe) {
        (Some(t), _, _) => (Access::Read, t),
        (_, Some(t), _) => (Access::Write, t),
        (_, _, Some(t)) => (Access::Subscribe, t),
        _ => unreachable!("clap requires one of --read, --write, --subscribe"),
    };
    let username = args.user.as_deref();
    let client_id = args
        .client_id
        .as_deref()
        .or(username)
        .unwrap_or("anonymous");
    let explanation = policy.explain(
        ClientRef {
            username,
            client_id,
        },
        topic,
        access,
    );
    if args.json {
        match serde_json::to_string_pretty(&explanation) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("mqtt-policy: cannot print JSON: {e}");
                return EXIT_ERROR;
            }
        }
    } else {
        print!("{explanation}");
    }
    match explanation.verdict {
        Verdict::Allow => EXIT_OK,
        Verdict::Deny => EXIT_DENIED,
    }
}
