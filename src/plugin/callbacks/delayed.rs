//! Mosquitto 2.1's delayed basic auth: a password check that is not answered from the cache runs
//! on a worker thread ([`VerifyPool`], one per core); BASIC_AUTH answers `MOSQ_ERR_AUTH_DELAYED`,
//! and the verdict is given to the broker from its own thread, in the TICK callback, through
//! `mosquitto_complete_basic_auth(client_id, result)` (its header requires the broker's thread).
//!
//! Only when the broker has that function (the FFI layer finds it at run time): on 2.0 the check
//! stays inline, with the cache in front.
//!
//! Safety of the hand-over, as Mosquitto 2.1 behaves (`handle_connect.c`, `plugin_public.c`):
//! * Mosquitto keeps delayed clients by client id and refuses a second CONNECT with an id that is
//!   waiting, so when BASIC_AUTH comes for an id we still wait for, that earlier client is gone: its
//!   check is forgotten and a late verdict for it is dropped (tickets).
//! * A verdict for a client that disconnected is given anyway: Mosquitto finds no waiting client
//!   with that id and does nothing.
//! * A reload (SIGHUP) while a check runs: the verdict, reached against the old password file, is
//!   dropped and the login is checked again against the new one (cache first), so that a client is
//!   never let in by a file no longer in force.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Client, Host, LogLevel, Outcome, Plugin, Text};
use crate::audit::Peer;
use crate::enforce::logins::{denial, Password, VerifyPool};
use crate::enforce::shadow::Shadow;
use crate::policy::passwd::{AuthResult, PasswordFile};

/// A verdict for the broker: give it with `mosquitto_complete_basic_auth`.
#[derive(Debug, PartialEq, Eq)]
pub struct Completion {
    /// The client id the login was delayed under.
    pub client_id: String,
    /// Accepted (`MOSQ_ERR_SUCCESS`) or refused (`MOSQ_ERR_AUTH`, after an audit record).
    pub outcome: Outcome,
}

/// A worker's answer.
struct Verdict {
    client_id: String,
    ticket: u64,
    result: AuthResult,
    /// The shadow password file's verdict, checked on the worker too.
    shadow: Option<AuthResult>,
}

/// A login the broker waits for.
struct Waiting {
    ticket: u64,
    username: String,
    address: Option<String>,
    /// For the cache, once accepted (zeroed when dropped).
    password: Password,
    /// The file the check runs against.
    passwords: Arc<PasswordFile>,
}

/// The delayed logins of one plugin instance.
pub(super) struct DelayedLogins {
    pool: VerifyPool,
    done: Arc<Mutex<Vec<Verdict>>>,
    waiting: RefCell<HashMap<String, Waiting>>,
    next_ticket: Cell<u64>,
}

impl std::fmt::Debug for DelayedLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelayedLogins")
            .field("pool", &self.pool)
            .field("waiting", &self.waiting.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Turns delayed basic auth on (the broker has `mosquitto_complete_basic_auth`): starts one
    /// worker per core. Only with a password file; a failure to start threads is logged and logins
    /// stay inline.
    pub fn enable_delayed_auth(&mut self, host: &dyn Host) {
        if self.options.password_file.is_none() || self.delayed.is_some() {
            return;
        }
        match VerifyPool::per_core("mqtt-policy-verify") {
            Ok(pool) => {
                self.delayed = Some(DelayedLogins {
                    pool,
                    done: Arc::default(),
                    waiting: RefCell::default(),
                    next_ticket: Cell::new(0),
                });
            }
            Err(e) => host.log(
                LogLevel::Warning,
                &format!(
                    "mqtt-policy: cannot start password-check threads ({e}); passwords are checked on the broker's thread"
                ),
            ),
        }
    }

    /// Whether logins may be answered later.
    pub fn delays_logins(&self) -> bool {
        self.delayed.is_some()
    }

    /// Hands the check of `password` over to a worker, if delayed auth is on and the client has a
    /// client id; `false`: check it now.
    pub(super) fn delay(
        &self,
        host: &dyn Host,
        client: &impl Client,
        username: &str,
        password: &[u8],
        passwords: &Arc<PasswordFile>,
        shadow: Option<&Arc<Shadow>>,
    ) -> bool {
        let Some(delayed) = &self.delayed else {
            return false;
        };
        let Text::Utf8(client_id) = client.id() else {
            return false;
        };
        let ticket = delayed.next_ticket.get() + 1;
        delayed.next_ticket.set(ticket);
        let waiting = Waiting {
            ticket,
            username: username.to_owned(),
            address: client.address().lossy(),
            password: Password::new(password.to_vec()),
            passwords: Arc::clone(passwords),
        };
        // An earlier client with this id is gone (see the module documentation): replaced.
        delayed
            .waiting
            .borrow_mut()
            .insert(client_id.to_owned(), waiting);
        submit(
            delayed, client_id, ticket, username, password, passwords, shadow,
        );
        host.log(
            LogLevel::Debug,
            &format!(
                "mqtt-policy: checking the password of client {client_id:?} on a worker thread"
            ),
        );
        true
    }

    /// `MOSQ_EVT_TICK`: the verdicts that came back, to give to the broker (after this returns: no
    /// state of ours is borrowed while the broker runs them). `true` in the second place while
    /// logins are still waiting (the broker should tick again soon).
    pub fn tick(&self, host: &dyn Host) -> (Vec<Completion>, bool) {
        let Some(delayed) = &self.delayed else {
            return (Vec::new(), false);
        };
        let verdicts = match delayed.done.lock() {
            Ok(mut done) => std::mem::take(&mut *done),
            Err(_) => Vec::new(),
        };
        let mut completions = Vec::new();
        for verdict in verdicts {
            if let Some(completion) = self.complete(delayed, verdict, host) {
                completions.push(completion);
            }
        }
        let pending = !delayed.waiting.borrow().is_empty();
        (completions, pending)
    }

    fn complete(
        &self,
        delayed: &DelayedLogins,
        verdict: Verdict,
        host: &dyn Host,
    ) -> Option<Completion> {
        let mut waiting = delayed.waiting.borrow_mut();
        match waiting.get(&verdict.client_id) {
            Some(w) if w.ticket == verdict.ticket => {}
            // A verdict for a client that was replaced: dropped.
            _ => return None,
        }
        let w = waiting.remove(&verdict.client_id)?;
        drop(waiting);
        let current = self.files.borrow().passwords.clone();
        let Some(current) = current.filter(|c| Arc::ptr_eq(c, &w.passwords)) else {
            return self.check_again(delayed, verdict.client_id, w, host);
        };
        self.logins.borrow_mut().record(
            &current,
            &w.username,
            w.password.expose(),
            &verdict.result,
        );
        let peer = Peer {
            username: Some(&w.username),
            client_id: Some(&verdict.client_id),
            address: w.address.as_deref(),
        };
        let outcome = self.login_outcome(
            host,
            peer,
            verdict.shadow,
            denial(&verdict.result, &current),
        );
        Some(Completion {
            client_id: verdict.client_id,
            outcome,
        })
    }

    /// The password file changed during the check: checks the login again against the new one.
    fn check_again(
        &self,
        delayed: &DelayedLogins,
        client_id: String,
        w: Waiting,
        host: &dyn Host,
    ) -> Option<Completion> {
        let passwords = self.files.borrow().passwords.clone();
        let Some(passwords) = passwords else {
            // No password file any more: refused, as a check against nothing.
            return Some(Completion {
                client_id,
                outcome: Outcome::RefuseLogin,
            });
        };
        if self
            .logins
            .borrow_mut()
            .accepts(&passwords, &w.username, w.password.expose())
        {
            let peer = Peer {
                username: Some(&w.username),
                client_id: Some(&client_id),
                address: w.address.as_deref(),
            };
            let shadow = self.files.borrow().shadow.clone();
            let shadow =
                shadow.and_then(|s| s.verify_login(&w.username, Some(w.password.expose())));
            let outcome = self.login_outcome(host, peer, shadow, None);
            return Some(Completion { client_id, outcome });
        }
        host.log(
            LogLevel::Info,
            &format!(
                "mqtt-policy: the password file was reloaded while the login of client {client_id:?} was checked; checking it again"
            ),
        );
        let ticket = delayed.next_ticket.get() + 1;
        delayed.next_ticket.set(ticket);
        let shadow = self.files.borrow().shadow.clone();
        submit(
            delayed,
            &client_id,
            ticket,
            &w.username,
            w.password.expose(),
            &passwords,
            shadow.as_ref(),
        );
        let again = Waiting {
            ticket,
            passwords,
            ..w
        };
        delayed.waiting.borrow_mut().insert(client_id, again);
        None
    }
}

fn submit(
    delayed: &DelayedLogins,
    client_id: &str,
    ticket: u64,
    username: &str,
    password: &[u8],
    passwords: &Arc<PasswordFile>,
    shadow: Option<&Arc<Shadow>>,
) {
    let done = Arc::clone(&delayed.done);
    let client_id = client_id.to_owned();
    let shadow = shadow.cloned();
    delayed.pool.submit(
        Arc::clone(passwords),
        username.to_owned(),
        Password::new(password.to_vec()),
        move |result, username, password| {
            let shadow = shadow.and_then(|s| s.verify_login(username, Some(password)));
            if let Ok(mut done) = done.lock() {
                done.push(Verdict {
                    client_id,
                    ticket,
                    result,
                    shadow,
                });
            }
        },
    );
}
