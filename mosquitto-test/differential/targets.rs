//! The other enforcement points, run through the same generated acl files and cases as mosquitto's
//! built-in `acl_file`: our plugin inside mosquitto, and our standalone broker. Since the engine is checked
//! against the built-in file with the same seed and scenarios, every case equal here means the plugin
//! and the broker decide exactly as mosquitto's built-in acl_file does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{check, compare, BrokerUnderTest, RunningBroker};
use crate::plugin::plugin_path;
use crate::support::broker::MosquittoBroker;
use crate::support::ports::{unused_port, wait_accepting, NotAccepting};
use crate::support::process::ChildGuard;
use crate::support::versions::Version;

/// Debian's mosquitto with our plugin enforcing the acl file (`plugin_opt_acl_file`), no password file
/// and `allow_anonymous true`, like [`super::MosquittoAclFile`].
pub struct MosquittoWithPlugin;

impl BrokerUnderTest for MosquittoWithPlugin {
    fn name(&self) -> String {
        "mosquitto + libmqtt_policy.so".to_owned()
    }

    fn start(&self, acl: &[u8]) -> Box<dyn RunningBroker> {
        let config = format!(
            "allow_anonymous true\nplugin {}\nplugin_opt_acl_file {{dir}}/{}\n",
            plugin_path(),
            compare::ACL_NAME
        );
        Box::new(MosquittoBroker::start(&config, &[(compare::ACL_NAME, acl)]))
    }
}

/// [`MosquittoWithPlugin`] on any release: the plugin must decide as that release's own `acl_file`.
pub struct PluginOn(pub Version);

impl BrokerUnderTest for PluginOn {
    fn name(&self) -> String {
        format!("{} + libmqtt_policy.so", self.0)
    }

    fn start(&self, acl: &[u8]) -> Box<dyn RunningBroker> {
        let config = format!(
            "allow_anonymous true\nplugin {}\nplugin_opt_acl_file {{dir}}/{}\n",
            plugin_path(),
            compare::ACL_NAME
        );
        Box::new(MosquittoBroker::start_on(
            self.0,
            &config,
            &[(compare::ACL_NAME, acl)],
        ))
    }

    fn version(&self) -> Version {
        self.0
    }
}

/// Our standalone broker, `mqtt-policy broker`, with the same configuration keys.
pub struct OurBroker;

/// A running `mqtt-policy broker`; killed and reaped when dropped.
struct RunningOurBroker {
    _child: ChildGuard,
    port: u16,
    dir: tempfile::TempDir,
}

impl RunningBroker for RunningOurBroker {
    fn port(&self) -> u16 {
        self.port
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.dir.path().join("broker.log")).unwrap_or_default())
            .into_owned()
    }
}

impl BrokerUnderTest for OurBroker {
    fn name(&self) -> String {
        "mqtt-policy broker".to_owned()
    }

    fn start(&self, acl: &[u8]) -> Box<dyn RunningBroker> {
        let dir = tempfile::tempdir().expect("temporary directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let acl_path = dir.path().join(compare::ACL_NAME);
        fs::write(&acl_path, acl).expect("write the acl file");
        for _ in 0..5 {
            let port = unused_port();
            let conf = dir.path().join("mosquitto.conf");
            fs::write(
                &conf,
                format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\nmax_queued_messages 100000\n",
                    acl_path.display()
                ),
            )
            .expect("write the config");
            let log = fs::File::create(dir.path().join("broker.log")).expect("log file");
            let mut child = ChildGuard::spawn(
                Command::new(env!("CARGO_BIN_EXE_mqtt-policy"))
                    .args(["broker", "-c"])
                    .arg(&conf)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().expect("log file"))
                    .stderr(log),
                "mqtt-policy broker",
            );
            match wait_accepting(port, Duration::from_secs(10), || child.try_wait()) {
                Ok(()) => {
                    return Box::new(RunningOurBroker {
                        _child: child,
                        port,
                        dir,
                    })
                }
                // Exited (port taken?): try another port.
                Err(NotAccepting::Exited(_)) => continue,
                Err(NotAccepting::TimedOut) => {
                    panic!("mqtt-policy broker did not listen on {port} within 10 s")
                }
            }
        }
        let log = fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default();
        panic!("mqtt-policy broker could not start:\n{log}");
    }
}

#[test]
fn the_plugin_inside_mosquitto_decides_every_generated_case_as_mosquitto_acl_file_does() {
    check(&MosquittoWithPlugin);
}

#[test]
fn our_broker_decides_every_generated_case_as_mosquitto_acl_file_does() {
    check(&OurBroker);
}
