//! The policy core: parsing Mosquitto's files, compiled matching, and decisions with reasons.
//!
//! # What the core never does
//! * No I/O: functions take the bytes of a file and the name to report it under; adapters read files.
//! * No FFI, no `unsafe`, no async, no global state, no clock.
//! * No allocation on the per-message path ([`acl::Policy::decide`] for reads and writes).
//!
//! ```text
//!   acl file bytes ──parse_acl──► AclFile ──compile──► Policy ──decide──► Decision ──explain──► Explanation
//!   password file  ──parse──────► PasswordFile ──────────────verify──► AuthResult
//! ```
//! Adapters (the Mosquitto plugin, the broker, the CLI) depend on this module; it depends on none of them.

#![forbid(unsafe_code)]

pub mod acl;
pub(crate) mod bytes;
pub mod c_lines;
pub mod conf;
pub mod decision;
pub mod expectations;
pub mod lint;
pub mod passwd;
pub mod semantics;
pub mod topic;

pub use decision::{Access, ClientRef, Decision, Reason, RuleId, Verdict};
pub use semantics::Semantics;
