//! `mqtt-policy check`: answers "would this client be allowed to …, and why (not)?" without a broker.

use clap::{ArgGroup, Args};
use serde::Serialize;

use super::{EXIT_DENIED, EXIT_ERROR, EXIT_OK};
pub use crate::enforce::answer::{render, LoginStatus};
use crate::load;
use crate::policy::acl::Explanation;
use crate::policy::conf::MosquittoConf;
use crate::policy::{Access, ClientRef, Semantics, Verdict};

/// What `check --json` prints: the decision, and the login status when a password file was given.
#[derive(Debug, Serialize)]
struct CheckOutput<'a> {
    #[serde(flatten)]
    explanation: &'a Explanation,
    /// Whose reading of the files applied: `mosquitto-2.0` or `mosquitto-2.1`.
    semantics: Semantics,
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<LoginStatus>,
}

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
    /// Decide as the acl_file of this Mosquitto release line: 2.0 or 2.1 (they read `%u`/`%c` inside a
    /// level, and a few other things, differently). Default: the config's plugin_opt_mosquitto_version
    /// with -c, else 2.0.
    #[arg(long, value_name = "2.0|2.1", value_parser = parse_semantics)]
    pub mosquitto: Option<Semantics>,
}

/// `--mosquitto`: `2.0` or `2.1`.
pub(crate) fn parse_semantics(text: &str) -> Result<Semantics, String> {
    Semantics::from_version(text)
        .ok_or_else(|| format!("expected 2.0 or 2.1 (the Mosquitto release line), got {text:?}"))
}

/// The files a command works on, from its flags or from a mosquitto.conf, and whose reading of them
/// applies. Shared by `check`, `lint` and `test`, so that `-c` means the same to all of them.
#[derive(Debug)]
pub(crate) struct Sources {
    /// The acl file: the flag, else the config's.
    pub acl_file: Option<String>,
    /// The password file: the flag, else the config's.
    pub password_file: Option<String>,
    /// `--mosquitto`, else the config's `plugin_opt_mosquitto_version`, else 2.0.
    pub semantics: Semantics,
    /// The config, when one was given.
    pub conf: Option<MosquittoConf>,
}

/// Resolves the files from flags and an optional config. The error is a message ready to print after
/// `mqtt-policy: ` (with `file:line` when the config is at fault).
pub(crate) fn resolve_sources(
    acl_file: Option<&str>,
    password_file: Option<&str>,
    config: Option<&str>,
    mosquitto: Option<Semantics>,
) -> Result<Sources, String> {
    let mut sources = Sources {
        acl_file: acl_file.map(str::to_owned),
        password_file: password_file.map(str::to_owned),
        semantics: mosquitto.unwrap_or_default(),
        conf: None,
    };
    let Some(conf_path) = config else {
        return Ok(sources);
    };
    let conf = load::load_conf(conf_path).map_err(|e| e.to_string())?;
    let files = conf.policy_files().map_err(|e| e.to_string())?;
    if let (None, Some(version)) = (mosquitto, files.mosquitto_version.as_deref()) {
        sources.semantics = Semantics::from_version(version).ok_or_else(|| {
            format!("{conf_path}: plugin_opt_mosquitto_version {version:?}: expected 2.0 or 2.1")
        })?;
    }
    sources.acl_file = sources.acl_file.or(files.acl_file);
    sources.password_file = sources.password_file.or(files.password_file);
    sources.conf = Some(conf);
    Ok(sources)
}

/// Runs `check`; returns the exit code (0 allow, 1 deny, 2 error).
pub fn run(args: &CheckArgs) -> u8 {
    let sources = match resolve_sources(
        args.acl_file.as_deref(),
        args.password_file.as_deref(),
        args.config.as_deref(),
        args.mosquitto,
    ) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("mqtt-policy: {e}");
            return EXIT_ERROR;
        }
    };
    let semantics = sources.semantics;
    let Some(acl_path) = sources.acl_file else {
        let conf_path = args.config.as_deref().unwrap_or_default();
        eprintln!("mqtt-policy: {conf_path}: no acl_file (or plugin_opt_acl_file) in the config");
        return EXIT_ERROR;
    };
    let password_path = sources.password_file;
    // Only the asked user's lines are kept: a file of millions of users is read, never held.
    let user = args.user.as_deref().filter(|u| !u.is_empty());
    let login = match password_path
        .as_deref()
        .map(|path| load::load_passwords_of_as(path, user.unwrap_or_default(), semantics))
    {
        None => None,
        Some(Ok(file)) => {
            for warning in file.warning_lines() {
                eprintln!("mqtt-policy: warning: {warning}");
            }
            Some(LoginStatus::new(&file, user))
        }
        Some(Err(e)) => {
            eprintln!("mqtt-policy: {e}");
            return EXIT_ERROR;
        }
    };
    // Only this client's own list and the patterns are compiled: the rest never decides for it.
    let policy = match load::load_policy_for(&acl_path, semantics, user) {
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
    let explanation = policy.explain(
        ClientRef::from_names(args.user.as_deref(), args.client_id.as_deref()),
        topic,
        access,
    );
    if args.json {
        let output = CheckOutput {
            explanation: &explanation,
            semantics,
            login,
        };
        match serde_json::to_string_pretty(&output) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("mqtt-policy: cannot print JSON: {e}");
                return EXIT_ERROR;
            }
        }
    } else {
        print!("{}", render(&explanation, login.as_ref(), semantics));
    }
    match explanation.verdict {
        Verdict::Allow => EXIT_OK,
        Verdict::Deny => EXIT_DENIED,
    }
}
