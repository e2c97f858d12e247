//! Logins of the broker's CONNECTs without stalling the router.
//!
//! A login that needs a password check is answered from the verified-credential cache when it can
//! (a keyed MAC: microseconds, on the router's thread). Otherwise the router emits
//! [`Action::Verify`], keeps serving every other client, and completes the CONNECT (audit record,
//! CONNACK, session takeover) when [`Event::Verified`] comes back from a worker:
//! * the client disconnected meanwhile: the verdict is dropped;
//! * packets the client sent after its CONNECT wait (up to [`MAX_EARLY_PACKETS`]) and are handled
//!   once it is accepted;
//! * a SIGHUP reload happened meanwhile: the verdict, reached under the old policy, is dropped and
//!   the login starts again under the new one (cache, then a new check if needed), so that a client
//!   is never let in by a policy that is no longer in force.
//!
//! The cache is emptied on every reload ([`Router::set_security`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::AuditRecord;
use crate::audit::Peer;
use crate::enforce::logins::{LoginCache, Password};
use crate::policy::passwd::{AuthResult, PasswordFile};

use super::super::codec::{reason, Connect, Packet};
use super::super::security::{LoginRefusal, LoginStep, Security};
use super::super::session::{AddressText, ConnId, Secret};
use super::{Action, Router};

/// How many packets a client may send after its CONNECT while its password is checked.
pub const MAX_EARLY_PACKETS: usize = 64;

/// A CONNECT whose checks other than the login passed.
#[derive(Debug)]
pub(super) struct Prepared {
    pub conn: ConnId,
    pub address: String,
    pub connect: Connect,
    pub password: Option<Secret>,
    /// The client id the broker assigned, if the client sent none.
    pub assigned: Option<String>,
    pub cert_login: bool,
    /// The shadow password file's verdict, when a worker checked it with the live one.
    pub shadow: Option<AuthResult>,
}

/// A CONNECT waiting for its password check.
#[derive(Debug)]
struct Pending {
    ticket: u64,
    prepared: Prepared,
    /// The policy the check was asked under.
    security: Arc<Security>,
    passwords: Arc<PasswordFile>,
    /// Packets received after the CONNECT.
    early: Vec<Packet>,
}

/// The router's login state.
#[derive(Debug, Default)]
pub(super) struct Logins {
    pub cache: LoginCache,
    pending: HashMap<ConnId, Pending>,
    next_ticket: u64,
}

/// A login decided now, on this thread (the reload's re-check), through the cache.
pub(super) fn login_now(
    security: &Security,
    cache: &mut LoginCache,
    username: Option<&str>,
    password: Option<&[u8]>,
) -> Result<(), LoginRefusal> {
    match security.login_step(username, password) {
        LoginStep::Done(verdict) => verdict,
        LoginStep::Verify(passwords) => {
            let result = cache.verify(&passwords, username.unwrap_or_default(), password);
            security.login_verdict(&passwords, &result)
        }
    }
}

impl Router {
    /// Starts the login of a CONNECT: completes it now, or asks for a password check.
    pub(super) fn start_login(&mut self, prepared: Prepared) {
        let username = prepared.connect.username.as_deref();
        let password = prepared.password.as_ref().map(Secret::expose);
        let passwords = match self.authz.security.login_step(username, password) {
            LoginStep::Done(verdict) => return self.complete_connect(prepared, verdict),
            LoginStep::Verify(passwords) => passwords,
        };
        let name = username.unwrap_or_default();
        let bytes = password.unwrap_or_default();
        let shadow = self.authz.security.shadow().cloned();
        // A login the live cache knows completes now, unless the shadow would need a hash for it.
        if shadow
            .as_ref()
            .is_none_or(|s| s.answers_at_once(name, password))
            && self.logins.cache.accepts(&passwords, name, bytes)
        {
            return self.complete_connect(prepared, Ok(()));
        }
        self.logins.next_ticket += 1;
        let ticket = self.logins.next_ticket;
        let conn = prepared.conn;
        self.out.push(Action::Verify {
            conn,
            ticket,
            passwords: Arc::clone(&passwords),
            username: name.to_owned(),
            password: Password::new(bytes.to_vec()),
            shadow,
        });
        self.log(format!(
            "connection {conn}: checking the password of {name:?} off the router"
        ));
        let pending = Pending {
            ticket,
            prepared,
            security: Arc::clone(&self.authz.security),
            passwords,
            early: Vec::new(),
        };
        self.logins.pending.insert(conn, pending);
    }

    /// A password check is done: completes its CONNECT (see the module documentation).
    pub(super) fn on_verified(
        &mut self,
        conn: ConnId,
        ticket: u64,
        result: AuthResult,
        shadow: Option<AuthResult>,
    ) {
        match self.logins.pending.get(&conn) {
            Some(p) if p.ticket == ticket => {}
            // The client left (or this is an older check of the same connection).
            _ => return,
        }
        let Some(pending) = self.logins.pending.remove(&conn) else {
            return;
        };
        let Pending {
            mut prepared,
            security,
            passwords,
            early,
            ..
        } = pending;
        if !Arc::ptr_eq(&security, &self.authz.security) {
            self.log(format!(
                "connection {conn}: the policy was reloaded during its password check; checking again"
            ));
            self.start_login(prepared);
            match self.logins.pending.get_mut(&conn) {
                Some(again) => again.early.extend(early),
                None => self.replay(conn, early),
            }
            return;
        }
        let username = prepared.connect.username.as_deref().unwrap_or_default();
        let password = prepared.password.as_ref().map_or(&[][..], Secret::expose);
        self.logins
            .cache
            .record(&passwords, username, password, &result);
        let verdict = security.login_verdict(&passwords, &result);
        prepared.shadow = shadow;
        self.complete_connect(prepared, verdict);
        self.replay(conn, early);
    }

    /// Handles the packets a client sent while its login was checked (nothing if it was refused).
    fn replay(&mut self, conn: ConnId, early: Vec<Packet>) {
        for packet in early {
            self.on_packet(conn, packet);
        }
    }

    /// Keeps a packet of a connection whose login is being checked; gives it back otherwise.
    pub(super) fn hold_if_pending(&mut self, conn: ConnId, packet: Packet) -> Option<Packet> {
        let Some(pending) = self.logins.pending.get_mut(&conn) else {
            return Some(packet);
        };
        if pending.early.len() < MAX_EARLY_PACKETS {
            pending.early.push(packet);
        } else {
            self.logins.pending.remove(&conn);
            self.log(format!(
                "connection {conn}: more than {MAX_EARLY_PACKETS} packets before its CONNACK: closing"
            ));
            self.out.push(Action::Close { conn });
        }
        None
    }

    /// Forgets a connection's waiting CONNECT (it closed); whether there was one.
    pub(super) fn forget_pending(&mut self, conn: ConnId) -> bool {
        self.logins.pending.remove(&conn).is_some()
    }

    /// How many CONNECTs wait for a password check.
    pub fn pending_logins(&self) -> usize {
        self.logins.pending.len()
    }

    /// Re-runs the login of every connected client against the current policy; disconnects those
    /// it refuses.
    pub(super) fn recheck_logins(&mut self) {
        let security = Arc::clone(&self.authz.security);
        let cache = &mut self.logins.cache;
        let mut refused = Vec::new();
        {
            // Many clients share credentials: each distinct pair is verified once.
            type Key<'a> = (Option<&'a str>, Option<&'a [u8]>);
            let mut verdicts: HashMap<Key<'_>, Result<(), LoginRefusal>> = HashMap::new();
            for s in self.sessions.values() {
                let Some(conn) = s.conn else { continue };
                if s.cert_login {
                    // Its username comes from its certificate, which a reload does not change, and
                    // the password file does not apply to it (as in Mosquitto).
                    continue;
                }
                let key = (
                    s.username.as_deref(),
                    s.password.as_ref().map(Secret::expose),
                );
                let verdict = verdicts
                    .entry(key)
                    .or_insert_with(|| login_now(&security, cache, key.0, key.1));
                if let Err(refusal) = verdict {
                    let text = AddressText::new(s.address);
                    let peer = Peer {
                        username: s.username.as_deref(),
                        client_id: Some(&s.client_id),
                        address: Some(text.as_str()),
                    };
                    let mut record = AuditRecord::login(self.wall, peer, refusal.denial.clone())
                        .with_semantics(self.authz.security.semantics());
                    record
                        .message
                        .push_str(" (credentials checked again on reload; client disconnected)");
                    refused.push((conn, record));
                }
            }
        }
        for (conn, record) in refused {
            self.log(record.message.clone());
            self.out.push(Action::Audit(Box::new(record)));
            self.kick(
                conn,
                reason::NOT_AUTHORIZED,
                "the credentials are no longer accepted after a policy reload",
            );
        }
    }
}
