//! The standalone broker (`mqtt-policy broker`): MQTT 3.1, 3.1.1 and 5.0 over TCP and TLS, deciding
//! every login, publish, subscription and delivery with the same policy engine and audit records as
//! the Mosquitto plugin.
//!
//! ```text
//!   net (mio, rustls)   ──bytes──► codec ──Packet──► router (sessions, subs trie, retained) ──Action──► net
//!                                                       │
//!                                              security (policy::acl, policy::passwd) ──► audit
//! ```
//! * [`config`]: the mosquitto.conf keys the broker reads.
//! * [`codec`]: the wire format, strict and bounded.
//! * [`router`], [`session`], [`subs`], [`shared`], [`retained`]: the core state machine, free of I/O
//!   ([`shared`]: the groups of `$share/GROUP/FILTER` subscriptions and their round-robin).
//! * [`security`]: logins and access decisions.
//! * [`identity`]: usernames taken from client certificates (`use_identity_as_username`,
//!   `use_subject_as_username`).
//! * [`outbox`]: each connection's outgoing queue and its bounds (`max_queued_messages`/`_bytes`);
//!   [`fanout`]: the PUBLISH that all deliveries of a message share in it.
//! * [`net`]: listeners, connection threads, signals, and the core (behind a lock) — the only I/O.

#![forbid(unsafe_code)]

pub mod codec;
pub mod config;
pub mod fanout;
pub mod identity;
pub mod net;
pub mod outbox;
pub mod pacing;
pub mod retained;
pub mod router;
pub mod security;
pub mod session;
pub mod shared;
pub mod store;
pub mod subs;
