//! What the safe part of the plugin needs from the broker, as safe Rust: a log, and a view of one client
//! for the duration of one callback. [`super::ffi`] implements these over Mosquitto's helpers; the tests
//! implement them over plain values.

#![forbid(unsafe_code)]

use super::sys;

/// Mosquitto's log levels (`MOSQ_LOG_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `MOSQ_LOG_INFO`.
    Info,
    /// `MOSQ_LOG_NOTICE`: audit records go here when there is no audit log file.
    Notice,
    /// `MOSQ_LOG_WARNING`.
    Warning,
    /// `MOSQ_LOG_ERR`: why the plugin refuses to start, why a reload was not applied.
    Err,
    /// `MOSQ_LOG_DEBUG`.
    Debug,
}

impl LogLevel {
    /// The `MOSQ_LOG_*` value.
    pub fn code(self) -> i32 {
        match self {
            LogLevel::Info => sys::MOSQ_LOG_INFO,
            LogLevel::Notice => sys::MOSQ_LOG_NOTICE,
            LogLevel::Warning => sys::MOSQ_LOG_WARNING,
            LogLevel::Err => sys::MOSQ_LOG_ERR,
            LogLevel::Debug => sys::MOSQ_LOG_DEBUG,
        }
    }
}

/// The broker's log.
pub trait Host {
    /// Writes `message` (plain text, never a format string) at `level`.
    fn log(&self, level: LogLevel, message: &str);
}

/// A C string from the broker, borrowed for one callback and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text<'a> {
    /// A NULL pointer: no username, no client id yet, no address.
    Absent,
    /// Valid UTF-8.
    Utf8(&'a str),
    /// Not UTF-8 (the broker validates MQTT strings, so this should not happen): always denied.
    NotUtf8(&'a [u8]),
}

impl<'a> Text<'a> {
    /// Checks borrowed bytes. No copy, no allocation.
    pub fn from_bytes(bytes: &'a [u8]) -> Text<'a> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Text::Utf8(s),
            Err(_) => Text::NotUtf8(bytes),
        }
    }

    /// The text, replacing invalid UTF-8, for messages and audit records (allocates).
    pub fn lossy(self) -> Option<String> {
        match self {
            Text::Absent => None,
            Text::Utf8(s) => Some(s.to_owned()),
            Text::NotUtf8(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }
    }
}

/// One connected (or connecting) client, as the broker's helpers show it. Valid for one callback.
pub trait Client {
    /// `mosquitto_client_username`.
    fn username(&self) -> Text<'_>;
    /// `mosquitto_client_id`.
    fn id(&self) -> Text<'_>;
    /// `mosquitto_client_address`.
    fn address(&self) -> Text<'_>;
}

/// A client made of plain values, for tests and for code that already copied a client's identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientValues<'a> {
    /// The username.
    pub username: Option<&'a str>,
    /// The client id.
    pub id: Option<&'a str>,
    /// The peer address.
    pub address: Option<&'a str>,
}

fn text(s: Option<&str>) -> Text<'_> {
    s.map_or(Text::Absent, Text::Utf8)
}

impl Client for ClientValues<'_> {
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
