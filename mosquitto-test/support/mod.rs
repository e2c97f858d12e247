//! The harness around the real Debian mosquitto, shared by every test module of this test binary.
//!
//! * [`broker`]: start `/usr/sbin/mosquitto` with a generated config on a free port ([`broker::MosquittoBroker`]).
//! * [`certs`]: a private CA and a server certificate for TLS listeners ([`certs::TestPki`]).
//! * [`clients`]: MQTT 5 and 3.1.1 clients on rumqttc, TCP or TLS, with reason codes.
//! * [`wire`]: a minimal synchronous MQTT 5 client for exact, pipelined, differential checks.
//! * [`tools`]: `mosquitto_pub`, `mosquitto_sub`, `mosquitto_passwd`.
//! * [`process`]: child processes that are always killed and reaped.
//! * [`rng`]: a seeded generator for reproducible generated cases.
//! * [`small_disk`]: a small tmpfs to fill a file system on purpose.
//! * [`versions`]: the releases tests run on (Debian's 2.0.11, the vendored 2.0.22 and 2.1.2), and
//!   [`per_version!`](crate::per_version) for one test body per release.
//!
//! Nothing here skips a test when mosquitto is missing: the harness fails, saying what to install.

// Helpers are shared with test modules that other parts of the project add; not every one is used by
// every build of this binary.
#![allow(dead_code)]

pub mod broker;
pub mod certs;
pub mod clients;
pub mod ports;
pub mod process;
pub mod rng;
pub mod small_disk;
pub mod tools;
pub mod versions;
pub mod wire;
