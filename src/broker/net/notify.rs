//! Telling the service manager (systemd, `Type=notify`) where the broker is: `READY=1` once every
//! listener is bound and the policy is loaded, `RELOADING=1` then `READY=1` around a SIGHUP reload,
//! `STOPPING=1` on the way out. Nothing is sent when `NOTIFY_SOCKET` is unset (started by hand).

use sd_notify::NotifyState;

/// Listeners bound, policy loaded, signals handled: systemd may report the unit started.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A SIGHUP reload begins (`MONOTONIC_USEC` as sd_notify(3) asks with `RELOADING=1`).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The broker is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Sends `states`; a failure is logged, never fatal (the broker serves clients either way).
fn send(states: &[NotifyState]) {
    // `false`: keep NOTIFY_SOCKET for the next notification.
    if let Err(e) = sd_notify::notify(false, states) {
        super::log(&format!("warning: cannot notify the service manager: {e}"));
    }
}
