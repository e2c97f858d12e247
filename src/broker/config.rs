//! The broker's typed configuration, read from the `mosquitto.conf` keys it understands.
//!
//! Built on [`MosquittoConf`] (raw `key value` lines with line numbers). Keys the broker implements are
//! honoured; harmless keys it does not implement (logging, ...) produce a warning naming the
//! key; security keys it cannot honour (`psk_file`, `use_username_as_clientid`, foreign plugins,
//! `per_listener_settings true`, ...) stop it at start with a message naming `file:line`, because
//! ignoring them would open access the operator meant to close.
//!
//! TLS listeners (`cafile`, `certfile`, `keyfile`, `tls_version`, `require_certificate`) may take
//! usernames from client certificates as Mosquitto 2.0 does: `use_identity_as_username true` (the
//! subject's Common Name) or `use_subject_as_username true` (the whole subject, RFC 2253 as OpenSSL
//! prints it); the CONNECT's username and password are then ignored and the password file is not
//! consulted (see [`super::identity`]). Mosquitto accepts both keys where they cannot work, and so
//! does this broker, with a warning: without `require_certificate true` no client certificate is
//! asked for, so every client of that listener is refused (CONNACK 4 / `0x86`); on a listener
//! without TLS the keys are ignored and the CONNECT's credentials are checked as usual. When both
//! are true, `use_identity_as_username` wins, as in Mosquitto.

use std::time::Duration;

use super::identity::CertUsername;
use crate::policy::conf::{ConfError, MosquittoConf};
use crate::policy::Semantics;

/// The lowest TLS version a listener accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMin {
    /// TLS 1.2 (also what `tlsv1.1` becomes: rustls has no TLS 1.1).
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// TLS settings of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// `cafile`: the CA that signs client certificates (with `require_certificate`).
    pub cafile: Option<String>,
    /// `certfile`: the server certificate chain (PEM).
    pub certfile: String,
    /// `keyfile`: the server private key (PEM).
    pub keyfile: String,
    /// `tls_version`: the minimum version.
    pub min_version: TlsMin,
    /// `require_certificate`: clients must present a certificate signed by `cafile`.
    pub require_certificate: bool,
    /// `use_identity_as_username` / `use_subject_as_username`: the username comes from the client
    /// certificate (`None`: from the CONNECT, checked against the password file).
    pub cert_username: Option<CertUsername>,
}

/// One listening socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The port.
    pub port: u16,
    /// The address to bind (`None`: all interfaces).
    pub bind: Option<String>,
    /// TLS, when `certfile`/`keyfile` are set.
    pub tls: Option<TlsSettings>,
    /// `max_connections` for this listener (`None`: unlimited).
    pub max_connections: Option<usize>,
    /// `protocol websockets`: MQTT over WebSocket (with TLS too when `certfile`/`keyfile` are set).
    pub websockets: bool,
    /// `websockets_origin`: the `Origin` headers a WebSocket upgrade may carry (empty: any).
    pub websockets_origins: Vec<String>,
    /// The config line that created it (0 for the implicit local listener).
    pub line: u32,
}

/// Everything the broker takes from `mosquitto.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// The config file.
    pub path: String,
    /// The listeners, in file order.
    pub listeners: Vec<Listener>,
    /// `allow_anonymous`, with Mosquitto's default (true only in local-only mode).
    pub allow_anonymous: bool,
    /// `password_file` or our plugin's `plugin_opt_password_file`.
    pub password_file: Option<String>,
    /// `acl_file` or our plugin's `plugin_opt_acl_file`.
    pub acl_file: Option<String>,
    /// Our plugin's `plugin_opt_audit_log`.
    pub audit_log: Option<String>,
    /// Our plugin's `plugin_opt_mosquitto_version` (`2.0`, the default, or `2.1`): whose `acl_file`
    /// semantics the broker applies.
    pub semantics: Semantics,
    /// Our plugin's `plugin_opt_refuse_subscriptions` (default true): false grants every SUBSCRIBE
    /// unchecked, as Mosquitto's acl_file does.
    pub refuse_subscriptions: bool,
    /// Our plugin's `plugin_opt_metrics_listen`: where `/metrics` is served.
    pub metrics_listen: Option<String>,
    /// Our plugin's `plugin_opt_metrics_textfile`: a textfile for node_exporter.
    pub metrics_textfile: Option<String>,
    /// Our plugin's `plugin_opt_shadow_acl_file`: a candidate acl file, compared, never enforced.
    pub shadow_acl_file: Option<String>,
    /// Our plugin's `plugin_opt_shadow_password_file`: a candidate password file, likewise.
    pub shadow_password_file: Option<String>,
    /// Our plugin's `plugin_opt_listen_backlog` (default 4096, also when 0): the listen backlog of every
    /// listener, capped by `net.core.somaxconn`.
    pub listen_backlog: u32,
    /// `max_queued_messages` per client (0: no limit of its own; default 1000): QoS 1/2 messages
    /// queued beyond those in flight, and the packets that may wait for an online client's socket
    /// before its QoS 0 messages are dropped (Mosquitto's `out_packet_count` check).
    pub max_queued_messages: usize,
    /// `max_queued_bytes` per client (0: no limit of its own; default 0): the same queues, counted
    /// in payload bytes. When both are 0 the broker still applies [`QUEUE_LIMIT_WHEN_UNLIMITED`].
    pub max_queued_bytes: usize,
    /// `max_inflight_messages` per client (0: unlimited; default 20).
    pub max_inflight_messages: u16,
    /// `max_packet_size` (default 268,435,460: MQTT's own limit).
    pub max_packet_size: usize,
    /// `max_keepalive` (default 65535).
    pub max_keepalive: u16,
    /// `max_topic_alias` (default 10).
    pub max_topic_alias: u16,
    /// `retain_available` (default true).
    pub retain_available: bool,
    /// `allow_zero_length_clientid` (default true).
    pub allow_zero_length_clientid: bool,
    /// `auto_id_prefix` (default `auto-`).
    pub auto_id_prefix: String,
    /// `check_retain_source` (default false, as Mosquitto's code).
    pub check_retain_source: bool,
    /// `queue_qos0_messages` (default false): QoS 0 messages are queued, like QoS 1/2, for a persistent
    /// session while its client is disconnected, within the same queue limits.
    pub queue_qos0_messages: bool,
    /// `persistent_client_expiration` (`None`: never).
    pub persistent_client_expiration: Option<Duration>,
    /// `persistence true`: where the broker keeps its store (`None`: everything in memory).
    pub persistence: Option<Persistence>,
    /// Warnings about keys the broker ignores, as `file:line: ...`.
    pub warnings: Vec<String>,
}

/// The name of the store file when `persistence_file` is not set. Not Mosquitto's `mosquitto.db`: the
/// tutorial's `persistence_location /var/lib/mosquitto/` may hold the file of a Mosquitto that ran
/// there before, in Mosquitto's own format.
pub const DEFAULT_STORE_FILE: &str = "mqtt-policy.db";

/// `persistence true` and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// The store file: `persistence_location` joined with `persistence_file` (Mosquitto's rule), or
    /// [`DEFAULT_STORE_FILE`].
    pub path: std::path::PathBuf,
    /// The line of `persistence true`.
    pub line: u32,
}

/// The persistence keys as read, until the whole file is seen (their order does not matter).
#[derive(Default)]
struct PersistKeys {
    on: Option<(bool, u32)>,
    location: Option<String>,
    file: Option<String>,
    autosave: Vec<String>,
}

impl PersistKeys {
    fn finish(self, warnings: &mut Vec<String>) -> Option<Persistence> {
        let (true, line) = self.on? else {
            return None;
        };
        for key in self.autosave {
            warnings.push(format!(
                "{key} is not needed: every change is written to the store before the client is told it is done"
            ));
        }
        let file = self.file.unwrap_or_else(|| DEFAULT_STORE_FILE.to_owned());
        let path = match self.location.filter(|l| !l.is_empty()) {
            Some(location) => std::path::Path::new(&location).join(file),
            None => std::path::PathBuf::from(file),
        };
        Some(Persistence { path, line })
    }
}

/// The per-client queue bound (messages) when `max_queued_messages` and `max_queued_bytes` are both 0,
/// which Mosquitto takes as "no limit": memory stays bounded per client all the same.
pub const QUEUE_LIMIT_WHEN_UNLIMITED: usize = 1_000_000;

/// Keys accepted and ignored with a warning: they change logging, persistence or performance, not who
/// may do what.
const IGNORED: &[&str] = &[
    "log_dest",
    "log_type",
    "log_timestamp",
    "log_timestamp_format",
    "log_facility",
    "connection_messages",
    "pid_file",
    "user",
    "sys_interval",
    "set_tcp_nodelay",
    "upgrade_outgoing_qos",
    "max_inflight_bytes",
    "memory_limit",
    "message_size_limit",
    "ciphers",
    "ciphers_tls1.3",
    "socket_domain",
    "websockets_log_level",
    "websockets_headers_size",
    "http_dir",
    "allow_duplicate_messages",
    "retry_interval",
    "store_clean_interval",
];

/// Keys the broker refuses to start with: they change who may connect or what they may do, and the
/// broker does not implement them.
const UNSUPPORTED_SECURITY: &[&str] = &[
    "use_username_as_clientid",
    "psk_file",
    "psk_hint",
    "crlfile",
    "capath",
    "clientid_prefixes",
    "mount_point",
    "include_dir",
    "auth_plugin",
    "acl_file_per_listener",
    "bridge_cafile",
    "connection",
    "address",
    "dhparamfile",
    "auth_plugin_deny_special_chars",
];

fn err(conf: &MosquittoConf, line: u32, message: String) -> ConfError {
    ConfError {
        path: conf.path.clone(),
        line,
        message,
    }
}

fn parse_bool(conf: &MosquittoConf, line: u32, key: &str, value: &str) -> Result<bool, ConfError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(err(
            conf,
            line,
            format!("`{key}` expects true or false, found {value:?}"),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(
    conf: &MosquittoConf,
    line: u32,
    key: &str,
    value: &str,
) -> Result<T, ConfError> {
    value.parse().map_err(|_| {
        err(
            conf,
            line,
            format!("`{key}` expects a number in range, found {value:?}"),
        )
    })
}

pub use crate::policy::conf::DEFAULT_LISTEN_BACKLOG;

/// Settings collected for the listener being read.
#[derive(Default)]
struct Pending {
    port: Option<u16>,
    bind: Option<String>,
    cafile: Option<String>,
    certfile: Option<(String, u32)>,
    keyfile: Option<(String, u32)>,
    tls_version: Option<TlsMin>,
    require_certificate: bool,
    /// `use_identity_as_username true` and its line.
    use_identity: Option<u32>,
    /// `use_subject_as_username true` and its line.
    use_subject: Option<u32>,
    max_connections: Option<usize>,
    websockets: bool,
    websockets_origins: Vec<String>,
    line: u32,
    touched: bool,
}

impl Pending {
    fn finish(
        self,
        conf: &MosquittoConf,
        default_port: u16,
        warnings: &mut Vec<String>,
    ) -> Result<Listener, ConfError> {
        let cert_username = match (self.use_identity, self.use_subject) {
            (Some(line), _) => Some((CertUsername::CommonName, line, "use_identity_as_username")),
            (None, Some(line)) => Some((CertUsername::Subject, line, "use_subject_as_username")),
            (None, None) => None,
        };
        let tls = match (self.certfile, self.keyfile) {
            (Some((certfile, _)), Some((keyfile, _))) => {
                if let Some((_, line, key)) = cert_username {
                    if !self.require_certificate {
                        warnings.push(format!(
                            "{}:{line}: `{key} true` without `require_certificate true`: no client certificate is asked for, so every client of this listener is refused (CONNACK 4 / 0x86), as Mosquitto does",
                            conf.path
                        ));
                    }
                }
                Some(TlsSettings {
                    cafile: self.cafile,
                    certfile,
                    keyfile,
                    min_version: self.tls_version.unwrap_or(TlsMin::Tls12),
                    require_certificate: self.require_certificate,
                    cert_username: cert_username.map(|(from, _, _)| from),
                })
            }
            (Some((_, line)), None) | (None, Some((_, line))) => {
                return Err(err(
                    conf,
                    line,
                    "TLS needs both `certfile` and `keyfile` on the same listener".to_owned(),
                ))
            }
            (None, None) => {
                if self.require_certificate {
                    return Err(err(
                        conf,
                        self.line,
                        "`require_certificate` without `certfile`/`keyfile`: TLS is not enabled on this listener"
                            .to_owned(),
                    ));
                }
                if let Some((_, line, key)) = cert_username {
                    warnings.push(format!(
                        "{}:{line}: `{key} true` on a listener without TLS (`certfile`/`keyfile`) is ignored, as Mosquitto ignores it: the CONNECT's username and password are checked",
                        conf.path
                    ));
                }
                None
            }
        };
        Ok(Listener {
            port: self.port.unwrap_or(default_port),
            bind: self.bind,
            tls,
            max_connections: self.max_connections,
            websockets: self.websockets,
            websockets_origins: self.websockets_origins,
            line: self.line,
        })
    }
}

impl BrokerConfig {
    /// Whether the counters are read by anything (`plugin_opt_metrics_listen` or
    /// `plugin_opt_metrics_textfile`): only then are they kept.
    pub fn has_metrics(&self) -> bool {
        self.metrics_listen.is_some() || self.metrics_textfile.is_some()
    }

    /// Reads the broker's settings from a parsed config.
    pub fn from_conf(conf: &MosquittoConf) -> Result<BrokerConfig, ConfError> {
        let files = conf.policy_files()?;
        let mut cfg = BrokerConfig {
            path: conf.path.clone(),
            listeners: Vec::new(),
            allow_anonymous: false,
            password_file: files.password_file,
            acl_file: files.acl_file,
            audit_log: files.audit_log,
            semantics: Semantics::default(),
            refuse_subscriptions: true,
            metrics_listen: None,
            metrics_textfile: None,
            shadow_acl_file: None,
            shadow_password_file: None,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            max_inflight_messages: 20,
            max_packet_size: super::codec::MAX_REMAINING_LENGTH + 5,
            max_keepalive: 65535,
            max_topic_alias: 10,
            retain_available: true,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_owned(),
            check_retain_source: false,
            queue_qos0_messages: false,
            persistent_client_expiration: None,
            persistence: None,
            warnings: Vec::new(),
        };
        let mut anonymous: Option<bool> = None;
        let mut default = Pending::default();
        let mut current: Option<Pending> = None;
        let mut network_keys = false;
        let mut persist = PersistKeys::default();
        for l in &conf.lines {
            let (key, value, line) = (l.key.as_str(), l.value.as_str(), l.line);
            let target = current.as_mut().unwrap_or(&mut default);
            match key {
                "listener" => {
                    network_keys = true;
                    let mut words = value.split_whitespace();
                    let port: u16 = parse_num(conf, line, key, words.next().unwrap_or(""))?;
                    let bind = words.next().map(str::to_owned);
                    if let Some(done) = current.take() {
                        cfg.listeners.push(done.finish(conf, 1883, &mut cfg.warnings)?);
                    }
                    current = Some(Pending {
                        port: Some(port),
                        bind,
                        line,
                        touched: true,
                        ..Pending::default()
                    });
                }
                "port" => {
                    network_keys = true;
                    default.port = Some(parse_num(conf, line, key, value)?);
                    default.touched = true;
                    default.line = line;
                }
                "bind_address" => {
                    network_keys = true;
                    default.bind = Some(value.to_owned());
                    default.touched = true;
                    default.line = line;
                }
                "cafile" => {
                    target.cafile = Some(value.to_owned());
                    target.touched = true;
                }
                "certfile" => {
                    target.certfile = Some((value.to_owned(), line));
                    target.touched = true;
                }
                "keyfile" => {
                    target.keyfile = Some((value.to_owned(), line));
                    target.touched = true;
                }
                "tls_version" => {
                    target.tls_version = Some(match value {
                        "tlsv1.3" => TlsMin::Tls13,
                        "tlsv1.2" => TlsMin::Tls12,
                        "tlsv1.1" => {
                            cfg.warnings.push(format!(
                                "{}:{line}: tls_version tlsv1.1: TLS 1.1 is not available, TLS 1.2 is the minimum",
                                conf.path
                            ));
                            TlsMin::Tls12
                        }
                        _ => {
                            return Err(err(
                                conf,
                                line,
                                format!("`tls_version` expects tlsv1.3, tlsv1.2 or tlsv1.1, found {value:?}"),
                            ))
                        }
                    });
                }
                "require_certificate" => {
                    target.require_certificate = parse_bool(conf, line, key, value)?;
                }
                "use_identity_as_username" => {
                    // Like Mosquitto, `true` on the default listener makes it a listener.
                    target.use_identity = parse_bool(conf, line, key, value)?.then_some(line);
                    target.touched |= target.use_identity.is_some();
                }
                "use_subject_as_username" => {
                    // Like Mosquitto, `true` on the default listener makes it a listener.
                    target.use_subject = parse_bool(conf, line, key, value)?.then_some(line);
                    target.touched |= target.use_subject.is_some();
                }
                "max_connections" => {
                    let n: i64 = parse_num(conf, line, key, value)?;
                    target.max_connections = usize::try_from(n).ok();
                }
                "protocol" => {
                    target.websockets = match value {
                        "mqtt" => false,
                        "websockets" => true,
                        _ => {
                            return Err(err(
                                conf,
                                line,
                                format!("`protocol {value}` is not supported by this broker (mqtt or websockets)"),
                            ))
                        }
                    };
                    target.touched = true;
                }
                "websockets_origin" => {
                    let Some(listener) = current.as_mut() else {
                        return Err(err(
                            conf,
                            line,
                            "`websockets_origin` belongs to a `listener`".to_owned(),
                        ));
                    };
                    listener.websockets_origins.push(value.to_owned());
                }
                "allow_anonymous" => anonymous = Some(parse_bool(conf, line, key, value)?),
                "password_file" | "acl_file" => {}
                "plugin" => {
                    if !value.contains("mqtt_policy") {
                        return Err(err(
                            conf,
                            line,
                            format!("`plugin {value}`: this broker cannot load Mosquitto plugins (only mqtt-policy's own options are read)"),
                        ));
                    }
                }
                k if k.starts_with("plugin_opt_") || k.starts_with("auth_opt_") => {
                    let name = k
                        .trim_start_matches("plugin_opt_")
                        .trim_start_matches("auth_opt_");
                    if name == "mosquitto_version" {
                        cfg.semantics = Semantics::from_version(value).ok_or_else(|| {
                            err(
                                conf,
                                line,
                                format!("`{k} {value}`: expected 2.0 or 2.1 (the Mosquitto release line whose acl_file semantics to apply)"),
                            )
                        })?;
                    } else if name == "refuse_subscriptions" {
                        cfg.refuse_subscriptions = parse_bool(conf, line, k, value)?;
                    } else if name == "metrics_listen" {
                        cfg.metrics_listen = Some(value.to_owned());
                    } else if name == "metrics_textfile" {
                        cfg.metrics_textfile = Some(value.to_owned());
                    } else if name == "shadow_acl_file" {
                        cfg.shadow_acl_file = Some(value.to_owned());
                    } else if name == "shadow_password_file" {
                        cfg.shadow_password_file = Some(value.to_owned());
                    } else if name == "listen_backlog" {
                        let n: u16 = parse_num(conf, line, k, value)?;
                        cfg.listen_backlog = match n {
                            0 => DEFAULT_LISTEN_BACKLOG,
                            n => u32::from(n),
                        };
                    } else if !matches!(name, "acl_file" | "password_file" | "audit_log") {
                        return Err(err(
                            conf,
                            line,
                            format!("`{k}`: unknown option of the mqtt-policy plugin"),
                        ));
                    }
                }
                "per_listener_settings" => {
                    if parse_bool(conf, line, key, value)? {
                        return Err(err(
                            conf,
                            line,
                            "`per_listener_settings true` is not supported by this broker: the same policy applies to every listener".to_owned(),
                        ));
                    }
                }
                "max_queued_messages" => {
                    let n: i64 = parse_num(conf, line, key, value)?;
                    cfg.max_queued_messages = usize::try_from(n).unwrap_or(0);
                }
                "max_queued_bytes" => {
                    let n: i64 = parse_num(conf, line, key, value)?;
                    cfg.max_queued_bytes = usize::try_from(n).unwrap_or(0);
                }
                "max_inflight_messages" => {
                    cfg.max_inflight_messages = parse_num(conf, line, key, value)?
                }
                "max_packet_size" => {
                    let n: usize = parse_num(conf, line, key, value)?;
                    if n < 20 {
                        return Err(err(conf, line, "`max_packet_size` below 20 bytes".to_owned()));
                    }
                    cfg.max_packet_size = n.min(super::codec::MAX_REMAINING_LENGTH + 5);
                }
                "max_keepalive" => cfg.max_keepalive = parse_num(conf, line, key, value)?,
                "max_topic_alias" => cfg.max_topic_alias = parse_num(conf, line, key, value)?,
                "retain_available" => cfg.retain_available = parse_bool(conf, line, key, value)?,
                "allow_zero_length_clientid" => {
                    cfg.allow_zero_length_clientid = parse_bool(conf, line, key, value)?
                }
                "auto_id_prefix" => cfg.auto_id_prefix = value.to_owned(),
                "check_retain_source" => {
                    cfg.check_retain_source = parse_bool(conf, line, key, value)?
                }
                "queue_qos0_messages" => {
                    cfg.queue_qos0_messages = parse_bool(conf, line, key, value)?
                }
                "persistent_client_expiration" => {
                    cfg.persistent_client_expiration = Some(parse_duration(conf, line, value)?)
                }
                "persistence" => persist.on = Some((parse_bool(conf, line, key, value)?, line)),
                "persistence_location" => persist.location = Some(value.to_owned()),
                "persistence_file" => persist.file = Some(value.to_owned()),
                "autosave_interval" | "autosave_on_changes" => {
                    let _: u64 = parse_num(conf, line, key, value)?;
                    persist.autosave.push(format!("{}:{line}: `{key}`", conf.path));
                }
                k if UNSUPPORTED_SECURITY.contains(&k) => {
                    return Err(err(
                        conf,
                        line,
                        format!("`{k}` is not supported by this broker, and ignoring it could let in clients the configuration means to keep out"),
                    ))
                }
                k if IGNORED.contains(&k) => cfg.warnings.push(format!(
                    "{}:{line}: `{k}` is not implemented by this broker and is ignored",
                    conf.path
                )),
                k => cfg
                    .warnings
                    .push(format!("{}:{line}: unknown key `{k}` ignored", conf.path)),
            }
        }
        cfg.persistence = persist.finish(&mut cfg.warnings);
        if let Some(done) = current.take() {
            cfg.listeners
                .push(done.finish(conf, 1883, &mut cfg.warnings)?);
        }
        if cfg.max_queued_messages == 0 && cfg.max_queued_bytes == 0 {
            cfg.warnings.push(format!(
                "{}: `max_queued_messages 0` without `max_queued_bytes` means no limit in Mosquitto; this broker still bounds each client's queues at {QUEUE_LIMIT_WHEN_UNLIMITED} messages",
                conf.path
            ));
        }
        if default.touched {
            let listener = default.finish(conf, 1883, &mut cfg.warnings)?;
            cfg.listeners.insert(0, listener);
        }
        if !network_keys && cfg.listeners.is_empty() {
            // Local-only mode (mosquitto-semantics §4.1).
            cfg.listeners.push(Listener {
                port: 1883,
                bind: Some("127.0.0.1".to_owned()),
                tls: None,
                max_connections: None,
                websockets: false,
                websockets_origins: Vec::new(),
                line: 0,
            });
            cfg.allow_anonymous = anonymous.unwrap_or(true);
        } else {
            cfg.allow_anonymous = anonymous.unwrap_or(false);
        }
        Ok(cfg)
    }

    /// The per-client queue bounds in force, `(messages, payload bytes)`, 0 meaning no bound of that
    /// kind; never both 0 (see [`QUEUE_LIMIT_WHEN_UNLIMITED`]).
    pub fn queue_limits(&self) -> (usize, usize) {
        if self.max_queued_messages == 0 && self.max_queued_bytes == 0 {
            (QUEUE_LIMIT_WHEN_UNLIMITED, 0)
        } else {
            (self.max_queued_messages, self.max_queued_bytes)
        }
    }

    /// Reads and parses the config file at `path`.
    pub fn load(path: &str) -> Result<BrokerConfig, ConfError> {
        let conf = crate::load::load_conf(path)?;
        BrokerConfig::from_conf(&conf)
    }
}

/// Mosquitto's `persistent_client_expiration` syntax: a number and one of h, d, w, m, y.
fn parse_duration(conf: &MosquittoConf, line: u32, value: &str) -> Result<Duration, ConfError> {
    let bad = || {
        err(
            conf,
            line,
            format!(
                "`persistent_client_expiration` expects a number and h/d/w/m/y, found {value:?}"
            ),
        )
    };
    let (num, unit) = value.split_at(value.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "m" => 2_592_000,
        "y" => 31_536_000,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<BrokerConfig, ConfError> {
        BrokerConfig::from_conf(&MosquittoConf::parse("m.conf", text.as_bytes()).unwrap())
    }

    #[test]
    fn the_tutorial_config_gives_one_tls_listener_without_anonymous_access() {
        let c = cfg("port 8082\nacl_file /a\nallow_anonymous false\npassword_file /p\ncafile /ca\nkeyfile /k\ncertfile /c\ntls_version tlsv1.2\n").unwrap();
        assert_eq!(c.listeners.len(), 1);
        let l = &c.listeners[0];
        assert_eq!(l.port, 8082);
        let tls = l.tls.as_ref().unwrap();
        assert_eq!(tls.min_version, TlsMin::Tls12);
        assert_eq!(tls.cafile.as_deref(), Some("/ca"));
        assert!(!c.allow_anonymous);
        assert_eq!(c.acl_file.as_deref(), Some("/a"));
        assert_eq!(c.password_file.as_deref(), Some("/p"));
    }

    #[test]
    fn allow_anonymous_defaults_to_true_only_in_local_only_mode() {
        let c = cfg("").unwrap();
        assert!(c.allow_anonymous);
        assert_eq!(c.listeners[0].bind.as_deref(), Some("127.0.0.1"));
        assert!(!cfg("listener 1884\n").unwrap().allow_anonymous);
        assert!(!cfg("port 1884\n").unwrap().allow_anonymous);
        assert!(
            cfg("listener 1884\nallow_anonymous true\n")
                .unwrap()
                .allow_anonymous
        );
    }

    #[test]
    fn settings_after_listener_apply_to_that_listener() {
        let c = cfg("listener 1883\nlistener 8883 127.0.0.1\ncertfile /c\nkeyfile /k\nrequire_certificate true\n").unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert!(c.listeners[0].tls.is_none());
        assert_eq!(c.listeners[1].bind.as_deref(), Some("127.0.0.1"));
        assert!(c.listeners[1].tls.as_ref().unwrap().require_certificate);
    }

    #[test]
    fn plugin_opt_mosquitto_version_chooses_the_semantics() {
        let base = "listener 1\nplugin /usr/lib/libmqtt_policy.so\n";
        assert_eq!(cfg(base).unwrap().semantics, Semantics::Mosquitto20);
        let c = cfg(&format!("{base}plugin_opt_mosquitto_version 2.1\n")).unwrap();
        assert_eq!(c.semantics, Semantics::Mosquitto21);
        let e = cfg(&format!("{base}plugin_opt_mosquitto_version 1.6\n")).unwrap_err();
        assert!(e.to_string().contains("expected 2.0 or 2.1"), "{e}");
    }

    #[test]
    fn plugin_opt_listen_backlog_sets_the_listeners_backlog() {
        let base = "listener 1\nplugin /usr/lib/libmqtt_policy.so\n";
        assert_eq!(cfg(base).unwrap().listen_backlog, 4096);
        let c = cfg(&format!("{base}plugin_opt_listen_backlog 512\n")).unwrap();
        assert_eq!(c.listen_backlog, 512);
        let c = cfg(&format!("{base}plugin_opt_listen_backlog 0\n")).unwrap();
        assert_eq!(c.listen_backlog, 4096, "0 leaves the broker's own");
        let e = cfg(&format!("{base}plugin_opt_listen_backlog 70000\n")).unwrap_err();
        assert!(e.to_string().contains("plugin_opt_listen_backlog"), "{e}");
    }

    #[test]
    fn our_plugin_options_are_read() {
        let c = cfg("listener 1\nplugin /usr/lib/libmqtt_policy.so\nplugin_opt_acl_file /a\nplugin_opt_audit_log /log\n").unwrap();
        assert_eq!(c.acl_file.as_deref(), Some("/a"));
        assert_eq!(c.audit_log.as_deref(), Some("/log"));
    }

    #[test]
    fn security_keys_it_cannot_honour_stop_it_naming_the_line() {
        let e = cfg("listener 1\nuse_username_as_clientid true\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("use_username_as_clientid"));
        assert_eq!(cfg("plugin /usr/lib/other.so\n").unwrap_err().line, 1);
        assert_eq!(cfg("per_listener_settings true\n").unwrap_err().line, 1);
        assert!(cfg("per_listener_settings false\n").is_ok());
    }

    #[test]
    fn usernames_from_certificates_are_a_tls_listener_setting() {
        let tls = "certfile /c\nkeyfile /k\ncafile /ca\n";
        let c = cfg(&format!(
            "listener 1\n{tls}require_certificate true\nuse_identity_as_username true\nlistener 2\n{tls}require_certificate true\nuse_subject_as_username true\n"
        ))
        .unwrap();
        assert_eq!(from_listener(&c, 0), Some(CertUsername::CommonName));
        assert_eq!(from_listener(&c, 1), Some(CertUsername::Subject));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // Both: the identity (CN) wins, as in Mosquitto. `false` is the default.
        let c = cfg(&format!("listener 1\n{tls}require_certificate true\nuse_subject_as_username true\nuse_identity_as_username true\nlistener 2\n{tls}use_identity_as_username false\n")).unwrap();
        assert_eq!(from_listener(&c, 0), Some(CertUsername::CommonName));
        assert_eq!(from_listener(&c, 1), None);
    }

    fn from_listener(c: &BrokerConfig, i: usize) -> Option<CertUsername> {
        c.listeners[i].tls.as_ref().unwrap().cert_username
    }

    #[test]
    fn usernames_from_certificates_where_they_cannot_work_are_warned_about() {
        // TLS without require_certificate: accepted, every client will be refused.
        let c =
            cfg("listener 1\ncertfile /c\nkeyfile /k\nuse_identity_as_username true\n").unwrap();
        assert_eq!(from_listener(&c, 0), Some(CertUsername::CommonName));
        assert!(c.warnings[0].starts_with("m.conf:4:"), "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("require_certificate"),
            "{:?}",
            c.warnings
        );
        // No TLS: ignored.
        let c = cfg("listener 1\nuse_subject_as_username true\n").unwrap();
        assert!(c.listeners[0].tls.is_none());
        assert!(c.warnings[0].starts_with("m.conf:2:"), "{:?}", c.warnings);
        assert!(c.warnings[0].contains("ignored"), "{:?}", c.warnings);
    }

    #[test]
    fn protocol_websockets_is_a_listener_setting_with_or_without_tls() {
        let c = cfg("listener 1\nlistener 2\nprotocol websockets\nwebsockets_origin http://a\nlistener 3\nprotocol websockets\ncertfile /c\nkeyfile /k\nhttp_dir /w\nwebsockets_headers_size 4096\n").unwrap();
        let ws: Vec<_> = c
            .listeners
            .iter()
            .map(|l| (l.port, l.websockets, l.tls.is_some()))
            .collect();
        assert_eq!(ws, [(1, false, false), (2, true, false), (3, true, true)]);
        assert_eq!(c.listeners[1].websockets_origins, ["http://a"]);
        assert!(c.listeners[2].websockets_origins.is_empty());
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[0].starts_with("m.conf:9:") && c.warnings[0].contains("`http_dir`"));
        assert!(c.warnings[1].contains("`websockets_headers_size`"));
        let e = cfg("listener 1\nprotocol mqttsn\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.conf:2") && e.contains("mqttsn"), "{e}");
        let e = cfg("websockets_origin http://a\n").unwrap_err().to_string();
        assert!(e.contains("m.conf:1") && e.contains("listener"), "{e}");
    }

    #[test]
    fn unknown_keys_are_warned_by_name() {
        let c = cfg("listener 1\nfrobnicate yes\nlog_dest stdout\n").unwrap();
        assert_eq!(c.warnings.len(), 2);
        assert!(c.warnings[0].contains("frobnicate"));
        assert!(c.warnings[0].starts_with("m.conf:2"));
    }

    #[test]
    fn queue_limits_follow_max_queued_messages_and_bytes_and_stay_bounded() {
        let c = cfg("listener 1\n").unwrap();
        assert_eq!(c.queue_limits(), (1000, 0));
        let c = cfg("listener 1\nmax_queued_messages 0\nmax_queued_bytes 4096\n").unwrap();
        assert_eq!(c.queue_limits(), (0, 4096));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = cfg("listener 1\nmax_queued_messages 0\n").unwrap();
        assert_eq!(c.queue_limits(), (QUEUE_LIMIT_WHEN_UNLIMITED, 0));
        assert!(c.warnings[0].contains("no limit"), "{:?}", c.warnings);
    }
}
