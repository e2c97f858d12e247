//! The Mosquitto plugin fed arbitrary C strings and access codes.
//!
//! The callbacks (`on_acl_check`, `on_basic_auth`, `on_disconnect`, `on_reload`) need a live Mosquitto:
//! they read the client's strings through the broker's helper functions, resolved from the host process.
//! So this target drives the layer right below the FFI, exactly as `src/plugin/ffi.rs` calls it: the
//! C strings as borrowed bytes (NULL, ASCII, UTF-8 or not), the ACL check's fast path
//! ([`Plugin::remembered`]) first and then [`Plugin::acl_check`] with the raw access code, logins with
//! a password cut at its NUL. The one entry point that needs no broker, `mosquitto_plugin_version`,
//! is called itself with arbitrary arrays of versions (that offer 5: a refusal is logged to standard
//! error outside a broker, and would drown the fuzzer's output); the plugin's options are read from arbitrary
//! pairs as `mosquitto_plugin_init` hands them over.
//!
//! The plugin is started once per process (for Mosquitto 2.0's and 2.1's semantics) on an `acl_file`
//! and a `password_file` of cheap hashes written to a temporary directory.
//!
//! Input: C strings separated by NUL bytes (a string that is exactly `\xff` is a NULL pointer), read as
//! calls: the first byte of a call's first string picks the call, the rest of it carries the access
//! code, and the strings after it are the call's arguments.

#![no_main]

use std::ffi::c_int;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use mqtt_policy::plugin::callbacks::{access_from_code, Plugin};
use mqtt_policy::plugin::ffi::mosquitto_plugin_version;
use mqtt_policy::plugin::host::{Client, Host, LogLevel, Text};
use mqtt_policy::plugin::memo::RawCheck;
use mqtt_policy::plugin::options::PluginOptions;
use mqtt_policy::policy::passwd::{hash_password, HashKind};
use mqtt_policy::policy::Semantics;

/// A broker log that formats nothing and keeps nothing.
struct Quiet;

impl Host for Quiet {
    fn log(&self, level: LogLevel, message: &str) {
        std::hint::black_box((level.code(), message.len()));
    }
}

/// A client as the broker's helpers show it: each string NULL or any bytes.
struct FuzzClient<'a> {
    username: Option<&'a [u8]>,
    id: Option<&'a [u8]>,
    address: Option<&'a [u8]>,
}

/// As `text_of` in `src/plugin/ffi.rs`: ASCII is UTF-8 without a check.
fn text(bytes: Option<&[u8]>) -> Text<'_> {
    match bytes {
        None => Text::Absent,
        Some(b) => Text::from_bytes(b),
    }
}

impl Client for FuzzClient<'_> {
    fn username(&self) -> Text<'_> {
        text(self.username)
    }
    fn id(&self) -> Text<'_> {
        text(self.id)
    }
    fn address(&self) -> Text<'_> {
        text(self.address)
    }
}

const ACL: &str = "topic readwrite public/#\ntopic read $SYS/#\n\
    pattern readwrite clients/%c/#\npattern read users/%u/#\n\
    user u1\ntopic readwrite a/#\ntopic deny a/secret\ntopic write w/+\n\
    user admin\ntopic readwrite #\n";

fn start(semantics: Semantics) -> Plugin {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("mqtt-policy-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let acl = dir.join("acl");
    std::fs::write(&acl, ACL).expect("the acl file");
    let passwd = dir.join("passwd");
    let sha = hash_password(b"pw1", HashKind::Sha512, None);
    let pbkdf2 = hash_password(b"pw", HashKind::Sha512Pbkdf2, Some(1));
    std::fs::write(&passwd, format!("u1:{sha}\nadmin:{pbkdf2}\n")).expect("the password file");
    let (acl, passwd) = (acl.to_str().unwrap(), passwd.to_str().unwrap());
    Plugin::start_as(
        [Some(("acl_file", acl)), Some(("password_file", passwd))],
        &Quiet,
        semantics,
    )
    .expect("the plugin starts")
}

thread_local! {
    static PLUGINS: [Plugin; 2] = [start(Semantics::Mosquitto20), start(Semantics::Mosquitto21)];
}

/// The next C string (`None` for NULL); an exhausted input gives NULL.
fn next<'a>(strings: &mut impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    match strings.next() {
        Some([0xff]) | None => None,
        Some(s) => Some(s),
    }
}

fn access_code(op: &[u8]) -> c_int {
    match op.get(1..5) {
        Some(&[a, b, c, d]) => c_int::from_le_bytes([a, b, c, d]),
        // Mostly the codes the broker passes: 1 read, 2 write, 4 subscribe, 8 unsubscribe.
        _ => 1 << (op.get(1).copied().unwrap_or(0) % 5),
    }
}

fuzz_target!(|data: &[u8]| {
    PLUGINS.with(|plugins| {
        let mut strings = data.split(|&b| b == 0);
        // Bounded: every call consumes at least one string.
        while let Some(op) = strings.next() {
            let Some(&kind) = op.first() else {
                continue;
            };
            let plugin = &plugins[usize::from(kind >> 7)];
            match kind & 7 {
                0 | 1 => {
                    // on_acl_check
                    let client = FuzzClient {
                        username: next(&mut strings),
                        id: next(&mut strings),
                        address: Some(b"127.0.0.1"),
                    };
                    let topic = next(&mut strings);
                    let code = access_code(op);
                    if let (Some(access), Some(client_id), Some(topic)) =
                        (access_from_code(code), client.id, topic)
                    {
                        let check = RawCheck {
                            username: client.username,
                            client_id,
                            topic,
                            access,
                        };
                        if plugin.remembered(&check) {
                            continue;
                        }
                    }
                    let _ = plugin.acl_check(&Quiet, &client, text(topic), code);
                }
                2 | 3 => {
                    // on_basic_auth
                    let username = next(&mut strings);
                    let client = FuzzClient {
                        username,
                        id: next(&mut strings),
                        address: next(&mut strings),
                    };
                    let password = next(&mut strings);
                    let _ = plugin.basic_auth(&Quiet, &client, text(username), password);
                }
                4 => {
                    // on_disconnect
                    let client = FuzzClient {
                        username: next(&mut strings),
                        id: next(&mut strings),
                        address: None,
                    };
                    let _ = plugin.disconnect(&Quiet, &client);
                }
                5 => {
                    // mosquitto_plugin_version(count, versions): the versions are the call's own bytes.
                    // Arrays without 5 are left out but for the empty one: the refusal is written to
                    // standard error outside a broker, which would drown the fuzzer's output.
                    let versions: Vec<c_int> =
                        op[1..].iter().map(|&b| c_int::from(b) - 1).collect();
                    if !versions.is_empty() && !versions.contains(&5) {
                        continue;
                    }
                    let count = c_int::try_from(versions.len()).unwrap_or(0);
                    // SAFETY: `versions` holds `count` ints and outlives the call.
                    let v = unsafe { mosquitto_plugin_version(count, versions.as_ptr()) };
                    assert_eq!(v == 5, versions.contains(&5));
                    // SAFETY: NULL is allowed.
                    let v = unsafe { mosquitto_plugin_version(count, std::ptr::null()) };
                    assert_eq!(v, -1);
                }
                6 => {
                    // The options of mosquitto_plugin_init: pairs of strings, a NULL key or value is a
                    // pair that could not be read.
                    let n = usize::from(op.get(1).copied().unwrap_or(1) % 8);
                    let pairs: Vec<Option<(&str, &str)>> = (0..n)
                        .map(|_| {
                            let key = next(&mut strings).and_then(|b| std::str::from_utf8(b).ok());
                            let value =
                                next(&mut strings).and_then(|b| std::str::from_utf8(b).ok());
                            key.zip(value)
                        })
                        .collect();
                    if let Err(e) = PluginOptions::parse(pairs) {
                        let _ = e.to_string();
                    }
                }
                _ => {
                    // on_reload: the files are read again (they did not change).
                    if op.get(1) == Some(&b'R') {
                        let _ = plugin.reload(&Quiet);
                    }
                }
            }
        }
    });
});
