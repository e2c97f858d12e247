//! The plugin's `plugin_opt_*` lines.
//!
//! The broker hands each `plugin_opt_<key> <value>` line that follows our `plugin` line as a
//! `(key, value)` pair, the prefix removed and trailing spaces of the value kept. We accept exactly the
//! keys in [`KNOWN_OPTIONS`]; anything else stops the broker, because a misspelt option would otherwise
//! silently weaken the policy.

#![forbid(unsafe_code)]

use std::fmt;

/// The option keys we accept, as they appear after `plugin_opt_`.
pub const KNOWN_OPTIONS: [&str; 10] = [
    "password_file",
    "acl_file",
    "audit_log",
    "refuse_subscriptions",
    "mosquitto_version",
    "metrics_listen",
    "metrics_textfile",
    "shadow_acl_file",
    "shadow_password_file",
    "listen_backlog",
];

pub use crate::policy::conf::DEFAULT_LISTEN_BACKLOG;

/// The plugin's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginOptions {
    /// `plugin_opt_password_file`: Mosquitto's password file format. Without it, logins are left to
    /// the rest of the chain (the plugin does not take part in authentication at all).
    pub password_file: Option<String>,
    /// `plugin_opt_acl_file`: Mosquitto's acl file format. Without it, ACL checks are left to the rest
    /// of the chain (the plugin does not take part in access control at all).
    pub acl_file: Option<String>,
    /// `plugin_opt_audit_log`: append one JSON object per line for every denial. Without it, audit
    /// records go to Mosquitto's log at NOTICE.
    pub audit_log: Option<String>,
    /// `plugin_opt_refuse_subscriptions` (default `true`): refuse a SUBSCRIBE whose filter can never
    /// deliver a message the client may read (SUBACK `0x87` / `0x80`). `false` grants every
    /// SUBSCRIBE, exactly as Mosquitto's own acl_file does (reads are still checked per message), for
    /// clients that treat a refused SUBACK as fatal.
    pub refuse_subscriptions: bool,
    /// `plugin_opt_mosquitto_version` (`2.0` or `2.1`): for configs shared with `mqtt-policy broker`,
    /// which reads it to choose its semantics. The plugin always decides as the broker it is loaded in
    /// and refuses to start when this names the other line.
    pub mosquitto_version: Option<String>,
    /// `plugin_opt_metrics_listen ADDRESS:PORT`: serve the counters as Prometheus text at `/metrics`
    /// (README.md, "Metrics"). An address that cannot be bound stops the broker.
    pub metrics_listen: Option<String>,
    /// `plugin_opt_metrics_textfile PATH`: write the same text to PATH for node_exporter's textfile
    /// collector, every few seconds.
    pub metrics_textfile: Option<String>,
    /// `plugin_opt_shadow_acl_file`: a candidate acl file whose decisions are compared with the live
    /// ones, never enforced (README.md, "Shadow policy").
    pub shadow_acl_file: Option<String>,
    /// `plugin_opt_shadow_password_file`: a candidate password file, compared likewise on logins.
    pub shadow_password_file: Option<String>,
    /// `plugin_opt_listen_backlog N` (default [`DEFAULT_LISTEN_BACKLOG`]; `0` leaves the broker's own):
    /// Mosquitto listens with a fixed backlog of 100, so in a reconnect storm the kernel's accept queue
    /// overflows and the overflowed clients wait for TCP's 1 s retransmission. Once the broker's
    /// listeners are open (its first tick), the plugin raises their backlog to N (capped by
    /// `net.core.somaxconn`). Nothing else about the sockets changes.
    pub listen_backlog: u32,
}

impl Default for PluginOptions {
    fn default() -> PluginOptions {
        PluginOptions {
            password_file: None,
            acl_file: None,
            audit_log: None,
            refuse_subscriptions: true,
            mosquitto_version: None,
            metrics_listen: None,
            metrics_textfile: None,
            shadow_acl_file: None,
            shadow_password_file: None,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

/// A `plugin_opt_*` line we cannot accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionError {
    /// A key we do not know (probably misspelt).
    Unknown {
        /// The key, without `plugin_opt_`.
        key: String,
    },
    /// The same key twice: which one was meant is not clear.
    Repeated {
        /// The key, without `plugin_opt_`.
        key: String,
    },
    /// An empty value (the 2.0 broker refuses these itself; a defensive check).
    Empty {
        /// The key, without `plugin_opt_`.
        key: String,
    },
    /// A value that is not one the option takes.
    Invalid {
        /// The key, without `plugin_opt_`.
        key: String,
        /// The value given.
        value: String,
        /// What the option takes.
        expected: &'static str,
    },
    /// The broker passed a key or value that is missing or not UTF-8.
    Unreadable {
        /// Position of the option among the plugin's options (0-based).
        index: usize,
    },
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown { key } => write!(
                f,
                "unknown option plugin_opt_{key}: expected one of {}",
                KNOWN_OPTIONS.map(|k| format!("plugin_opt_{k}")).join(", ")
            ),
            OptionError::Repeated { key } => {
                write!(f, "option plugin_opt_{key} is given more than once")
            }
            OptionError::Empty { key } => write!(f, "option plugin_opt_{key} has an empty value"),
            OptionError::Invalid {
                key,
                value,
                expected,
            } => write!(f, "option plugin_opt_{key} {value:?}: expected {expected}"),
            OptionError::Unreadable { index } => write!(
                f,
                "plugin option number {} has a missing or non-UTF-8 key or value",
                index + 1
            ),
        }
    }
}

impl std::error::Error for OptionError {}

impl PluginOptions {
    /// Whether the counters are read by anything (`plugin_opt_metrics_listen` or
    /// `plugin_opt_metrics_textfile`): only then are they kept.
    pub fn has_metrics(&self) -> bool {
        self.metrics_listen.is_some() || self.metrics_textfile.is_some()
    }

    /// Reads the options in the order the broker passed them. A pair that could not be read as text is
    /// `None`.
    pub fn parse<'a, I>(options: I) -> Result<PluginOptions, OptionError>
    where
        I: IntoIterator<Item = Option<(&'a str, &'a str)>>,
    {
        let mut parsed = PluginOptions::default();
        let mut seen: Vec<&str> = Vec::new();
        for (index, option) in options.into_iter().enumerate() {
            let (key, value) = option.ok_or(OptionError::Unreadable { index })?;
            let Some(&known) = KNOWN_OPTIONS.iter().find(|k| **k == key) else {
                return Err(OptionError::Unknown {
                    key: key.to_owned(),
                });
            };
            if value.is_empty() {
                return Err(OptionError::Empty {
                    key: key.to_owned(),
                });
            }
            if seen.contains(&known) {
                return Err(OptionError::Repeated {
                    key: key.to_owned(),
                });
            }
            seen.push(known);
            match known {
                "password_file" => parsed.password_file = Some(value.to_owned()),
                "acl_file" => parsed.acl_file = Some(value.to_owned()),
                "audit_log" => parsed.audit_log = Some(value.to_owned()),
                "mosquitto_version" => parsed.mosquitto_version = Some(value.to_owned()),
                "metrics_listen" => parsed.metrics_listen = Some(value.to_owned()),
                "metrics_textfile" => parsed.metrics_textfile = Some(value.to_owned()),
                "shadow_acl_file" => parsed.shadow_acl_file = Some(value.to_owned()),
                "shadow_password_file" => parsed.shadow_password_file = Some(value.to_owned()),
                "listen_backlog" => parsed.listen_backlog = parse_backlog(key, value)?,
                _ => parsed.refuse_subscriptions = parse_bool(key, value)?,
            }
        }
        Ok(parsed)
    }
}

/// A listen backlog: a whole number from 0 (leave the broker's own) to 65535.
pub fn parse_backlog(key: &str, value: &str) -> Result<u32, OptionError> {
    value
        .parse::<u16>()
        .map(u32::from)
        .map_err(|_| OptionError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: "a whole number from 0 (leave the broker's own backlog) to 65535",
        })
}

/// A boolean as mosquitto.conf spells them (`true`/`false`, and Mosquitto's `1`/`0`).
fn parse_bool(key: &str, value: &str) -> Result<bool, OptionError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(OptionError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: "true or false",
        }),
    }
}

/// A hint for a path that ends in whitespace: Mosquitto keeps trailing spaces of option values, so
/// `plugin_opt_acl_file /etc/acl.txt ` names a file whose name ends in a space.
pub fn trailing_space_hint(path: &str) -> &'static str {
    if path.ends_with(|c: char| c.is_ascii_whitespace()) {
        " (note: the value ends in whitespace, which Mosquitto keeps as part of the file name)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<PluginOptions, OptionError> {
        PluginOptions::parse(pairs.iter().map(|&(k, v)| Some((k, v))))
    }

    #[test]
    fn reads_the_three_known_options() {
        let o = parse(&[
            ("password_file", "/p"),
            ("acl_file", "/a"),
            ("audit_log", "/l"),
        ])
        .unwrap();
        assert_eq!(o.password_file.as_deref(), Some("/p"));
        assert_eq!(o.acl_file.as_deref(), Some("/a"));
        assert_eq!(o.audit_log.as_deref(), Some("/l"));
        assert_eq!(parse(&[]).unwrap(), PluginOptions::default());
    }

    #[test]
    fn refuses_unknown_repeated_empty_and_unreadable_options() {
        let e = parse(&[("acl_flie", "/a")]).unwrap_err();
        assert_eq!(
            e,
            OptionError::Unknown {
                key: "acl_flie".into()
            }
        );
        assert!(e.to_string().contains("plugin_opt_acl_flie"));
        assert!(e.to_string().contains("plugin_opt_acl_file"));
        assert!(matches!(
            parse(&[("acl_file", "/a"), ("acl_file", "/b")]),
            Err(OptionError::Repeated { .. })
        ));
        assert!(matches!(
            parse(&[("audit_log", "")]),
            Err(OptionError::Empty { .. })
        ));
        assert_eq!(
            PluginOptions::parse([Some(("acl_file", "/a")), None]),
            Err(OptionError::Unreadable { index: 1 })
        );
    }

    #[test]
    fn listen_backlog_defaults_to_4096_and_takes_0_to_65535() {
        assert_eq!(parse(&[]).unwrap().listen_backlog, 4096);
        assert_eq!(parse(&[("listen_backlog", "0")]).unwrap().listen_backlog, 0);
        assert_eq!(
            parse(&[("listen_backlog", "65535")])
                .unwrap()
                .listen_backlog,
            65535
        );
        for bad in ["65536", "-1", "many", "1e3"] {
            let e = parse(&[("listen_backlog", bad)]).unwrap_err();
            assert!(e.to_string().contains("0 (leave"), "{bad}: {e}");
        }
    }

    #[test]
    fn refuse_subscriptions_defaults_to_true_and_takes_only_booleans() {
        assert!(parse(&[]).unwrap().refuse_subscriptions);
        assert!(
            !parse(&[("refuse_subscriptions", "false")])
                .unwrap()
                .refuse_subscriptions
        );
        assert!(
            parse(&[("refuse_subscriptions", "true")])
                .unwrap()
                .refuse_subscriptions
        );
        assert!(
            !parse(&[("refuse_subscriptions", "0")])
                .unwrap()
                .refuse_subscriptions
        );
        let e = parse(&[("refuse_subscriptions", "no")]).unwrap_err();
        assert!(matches!(e, OptionError::Invalid { .. }));
        assert!(e
            .to_string()
            .contains("plugin_opt_refuse_subscriptions \"no\": expected true or false"));
        assert!(matches!(
            parse(&[
                ("refuse_subscriptions", "false"),
                ("refuse_subscriptions", "true")
            ]),
            Err(OptionError::Repeated { .. })
        ));
    }

    #[test]
    fn keeps_trailing_spaces_like_mosquitto_and_says_so() {
        let o = parse(&[("acl_file", "/etc/acl.txt ")]).unwrap();
        assert_eq!(o.acl_file.as_deref(), Some("/etc/acl.txt "));
        assert!(!trailing_space_hint("/etc/acl.txt ").is_empty());
        assert!(trailing_space_hint("/etc/acl.txt").is_empty());
    }
}
