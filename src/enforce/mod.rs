//! The enforcement layer every front door shares (the plugin and the broker): no wire format, no C,
//! no sockets. Today: logins ([`logins`]: the verified-credential cache, verification off the hot
//! thread, and the one mapping from a password check to an audited refusal), where audit records go
//! ([`audit_sink`]), the file-system checks of `mqtt-policy lint` ([`file_modes`]), the counters and
//! their Prometheus exposition ([`metrics`]), the shadow policy ([`shadow`]), the policy in force with
//! its reload ([`live`], for `serve`), the text of an answer as `check` gives it ([`answer`]), and the decisions of `serve`'s authorization
//! contracts ([`authorize`]).

pub mod answer;
pub mod audit_sink;
pub mod authorize;
pub mod file_modes;
pub mod live;
pub mod logins;
pub mod metrics;
pub mod shadow;
