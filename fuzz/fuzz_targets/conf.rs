//! The `mosquitto.conf` reader: any bytes as a config, read as the policy reads it (which files) and as
//! the broker reads it (listeners, limits, persistence); the `plugin_opt_*` lines as the plugin reads
//! its options. Errors must name the file and the line.
//!
//! Input: the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_policy::broker::config::BrokerConfig;
use mqtt_policy::plugin::options::PluginOptions;
use mqtt_policy::policy::conf::MosquittoConf;

fuzz_target!(|data: &[u8]| {
    let conf = match MosquittoConf::parse("m.conf", data) {
        Ok(conf) => conf,
        Err(e) => {
            assert!(e.line >= 1, "{e}");
            return;
        }
    };
    let lines = data.split(|&b| b == b'\n').count();
    for l in &conf.lines {
        assert!(l.line >= 1 && l.line as usize <= lines);
        // (` #x` is a key `#x`: only a `#` in the first byte makes a comment, as in Mosquitto.)
        assert!(!l.key.is_empty() && !l.key.contains(' '), "{l:?}");
    }
    match conf.policy_files() {
        Ok(files) => {
            let _ = files.acl_file.as_deref().map(str::len);
        }
        Err(e) => assert!(e.to_string().starts_with("m.conf:"), "{e}"),
    }
    match BrokerConfig::from_conf(&conf) {
        Ok(config) => {
            let (messages, bytes) = config.queue_limits();
            let _ = (
                messages,
                bytes,
                config.listeners.len(),
                config.warnings.len(),
            );
        }
        Err(e) => assert!(e.to_string().starts_with("m.conf:"), "{e}"),
    }
    let options = conf.lines.iter().filter_map(|l| {
        let key = l
            .key
            .strip_prefix("plugin_opt_")
            .or_else(|| l.key.strip_prefix("auth_opt_"))?;
        Some(Some((key, l.value.as_str())))
    });
    if let Err(e) = PluginOptions::parse(options) {
        let _ = e.to_string();
    }
});
