//! The enforcement layer every front door shares (the plugin and the broker): no wire format, no C,
//! no sockets. Today: logins ([`logins`]: the verified-credential cache, verification off the hot
//! thread, and the one mapping from a password check to an audited refusal), and the file-system
//! checks of `mqtt-policy lint` ([`file_modes`]).

pub mod file_modes;
pub mod logins;
