//! mqtt-policy: one policy engine that decides who may connect to an MQTT broker and which topics they may
//! read, write and subscribe to — exactly as Mosquitto 2.0 does with its `password_file` and `acl_file` —
//! and says why.
//!
//! Layers (data flows one way, top to bottom):
//! * [`policy`]: the pure core (no I/O, no FFI, no async).
//! * [`audit`]: audit records for denials, shared by the plugin and the broker.
//! * [`enforce`]: the enforcement layer the plugin and the broker share (logins).
//! * [`load`]: reading the files the core parses.
//! * [`broker`]: the standalone MQTT broker (`mqtt-policy broker`).
//! * [`serve`]: the HTTP service over the policy (`mqtt-policy serve`).
//! * [`cli`]: the `mqtt-policy` command line.
//! * `plugin`: the Mosquitto plugin (the only place with `unsafe`).

pub mod audit;
pub mod broker;
pub mod cli;
pub mod enforce;
pub mod exposition;
pub mod load;
pub mod plugin;
pub mod policy;
pub mod serve;
