//! The subset of `mosquitto.conf` syntax the policy needs: which files hold the users and the rules.
//!
//! Mosquitto's rules: a line is a comment only when `#` is its first byte; the key is the first
//! space-separated word; the value is the rest of the line after the spaces that follow the key.
//! `plugin_opt_*` (alias `auth_opt_*`) options attach to the most recent `plugin` (alias `auth_plugin`)
//! line. Trailing whitespace is removed from every line (and kept inside plugin option values only
//! up to the last non-space, since the line itself is trimmed first).

use thiserror::Error;

use crate::policy::c_lines::is_c_space;

/// The listen backlog given to every listener unless `plugin_opt_listen_backlog` says otherwise: by
/// the broker to its own, by the plugin to Mosquitto's. Linux's default `net.core.somaxconn`, which
/// caps it anyway.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// One `key value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfLine {
    /// 1-based line number.
    pub line: u32,
    /// The key (first word).
    pub key: String,
    /// The rest of the line (may be empty).
    pub value: String,
}

/// A parsed config file: its lines in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MosquittoConf {
    /// The file name (for messages).
    pub path: String,
    /// Every non-comment, non-blank line.
    pub lines: Vec<ConfLine>,
}

/// Why a config file could not be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path}:{line}: {message}")]
pub struct ConfError {
    /// The file.
    pub path: String,
    /// 1-based line (0 for the whole file).
    pub line: u32,
    /// What was wrong and what was expected.
    pub message: String,
}

/// What the policy needs from a config: where its files are, from the built-in keys or our plugin's options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyFiles {
    /// `acl_file` or `plugin_opt_acl_file`.
    pub acl_file: Option<String>,
    /// `password_file` or `plugin_opt_password_file`.
    pub password_file: Option<String>,
    /// `plugin_opt_audit_log`.
    pub audit_log: Option<String>,
    /// `plugin_opt_mosquitto_version` (`2.0` or `2.1`), as written.
    pub mosquitto_version: Option<String>,
    /// `plugin_opt_metrics_listen`: where the broker or plugin serves its counters (`mqtt-policy
    /// serve`'s page shows them).
    pub metrics_listen: Option<String>,
}

impl MosquittoConf {
    /// Parses `bytes` loaded under the name `path`.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<MosquittoConf, ConfError> {
        let mut lines = Vec::new();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let text = std::str::from_utf8(raw).map_err(|_| ConfError {
                path: path.to_owned(),
                line: line_no,
                message: "the line is not valid UTF-8".to_owned(),
            })?;
            let text = text.trim_end_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
            if text.starts_with('#') {
                continue;
            }
            let trimmed = text.trim_start_matches(' ');
            if trimmed.is_empty() {
                continue;
            }
            let (key, value) = match trimmed.split_once(' ') {
                Some((k, v)) => (k, v.trim_start_matches([' ', '\t'])),
                None => (trimmed, ""),
            };
            lines.push(ConfLine {
                line: line_no,
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
        Ok(MosquittoConf {
            path: path.to_owned(),
            lines,
        })
    }

    /// The value of the last line with `key`, if any.
    pub fn last(&self, key: &str) -> Option<&ConfLine> {
        self.lines.iter().rev().find(|l| l.key == key)
    }

    /// The files a policy is made of: the built-in `acl_file`/`password_file`, else the options of a
    /// `plugin` line whose library is ours (`libmqtt_policy`).
    pub fn policy_files(&self) -> Result<PolicyFiles, ConfError> {
        let mut files = PolicyFiles::default();
        let mut in_our_plugin = false;
        let mut saw_plugin = false;
        for line in &self.lines {
            match line.key.as_str() {
                "acl_file" => files.acl_file = Some(line.value.clone()),
                "password_file" => files.password_file = Some(line.value.clone()),
                "plugin" | "auth_plugin" => {
                    saw_plugin = true;
                    in_our_plugin = line.value.contains("mqtt_policy");
                }
                key if key.starts_with("plugin_opt_") || key.starts_with("auth_opt_") => {
                    if !saw_plugin {
                        return Err(ConfError {
                            path: self.path.clone(),
                            line: line.line,
                            message: format!("`{key}` appears before any `plugin` line; expected it after `plugin PATH`"),
                        });
                    }
                    if !in_our_plugin {
                        continue;
                    }
                    let name = key
                        .trim_start_matches("plugin_opt_")
                        .trim_start_matches("auth_opt_");
                    let value = Some(line.value.clone());
                    match name {
                        "acl_file" if files.acl_file.is_none() => files.acl_file = value,
                        "password_file" if files.password_file.is_none() => {
                            files.password_file = value
                        }
                        "audit_log" => files.audit_log = value,
                        "mosquitto_version" => files.mosquitto_version = value,
                        "metrics_listen" => files.metrics_listen = value,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tutorial_config_and_plugin_options() {
        let text = b"port 8082\nacl_file /etc/mosquitto/acl.txt\n# comment\nallow_anonymous false\npassword_file /etc/mosquitto/users.txt\n";
        let conf = MosquittoConf::parse("m.conf", text).unwrap();
        let files = conf.policy_files().unwrap();
        assert_eq!(files.acl_file.as_deref(), Some("/etc/mosquitto/acl.txt"));
        assert_eq!(
            files.password_file.as_deref(),
            Some("/etc/mosquitto/users.txt")
        );

        let text = b"plugin /usr/lib/libmqtt_policy.so\nplugin_opt_acl_file /a b \nplugin_opt_password_file  /p\n";
        let files = MosquittoConf::parse("m.conf", text)
            .unwrap()
            .policy_files()
            .unwrap();
        assert_eq!(files.acl_file.as_deref(), Some("/a b"));
        assert_eq!(files.password_file.as_deref(), Some("/p"));

        let err = MosquittoConf::parse("m.conf", b"plugin_opt_acl_file /a\n")
            .unwrap()
            .policy_files()
            .unwrap_err();
        assert_eq!(err.line, 1);
    }
}
