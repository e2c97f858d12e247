//! CONNECT: checks before the login, the login (see [`super::logins`]), then the session: takeover
//! (MQTT-3.1.4-2), CONNACK, and what a resumed persistent session had in flight or queued.

use super::*;
use std::net::{IpAddr, Ipv4Addr};

impl Router {
    pub(super) fn refuse(&mut self, conn: ConnId, version: Version, reason: ConnectReason) {
        if reason.code(version).is_some() {
            send(
                &mut self.out,
                conn,
                Packet::ConnAck(ConnAck {
                    session_present: false,
                    reason,
                    properties: Props::default(),
                }),
            );
        }
        self.out.push(Action::Close { conn });
    }

    pub(super) fn on_connect(
        &mut self,
        conn: ConnId,
        address: String,
        login: Login,
        mut c: Connect,
    ) {
        let version = c.version;
        // Kept while the client is connected (re-checked on SIGHUP), zeroed when dropped.
        let password = c.password.take().map(Secret::new);
        // Mosquitto 2.0 treats a zero-length username as none at all (checked against the real broker by
        // the differential test): the client is anonymous, for login and for the acl file alike.
        if c.username.as_deref() == Some("") {
            c.username = None;
        }
        if c.properties.auth_method.is_some() {
            self.log(format!(
                "{address}: enhanced authentication is not supported"
            ));
            return self.refuse(conn, version, ConnectReason::BadAuthMethod);
        }
        let mut assigned = None;
        if c.client_id.is_empty() {
            if (!c.clean_start && !version.is_v5()) || !self.limits.allow_zero_length_clientid {
                // MQTT-3.1.3-8: an empty client id needs Clean Session 1 in 3.1.1.
                return self.refuse(conn, version, ConnectReason::IdentifierRejected);
            }
            c.client_id = self.auto_id();
            assigned = Some(c.client_id.clone());
        }
        let mut prepared = Prepared {
            conn,
            address,
            connect: c,
            password,
            assigned,
            cert_login: false,
            shadow: None,
        };
        match login {
            // The password check may run on a worker: the CONNECT completes in `complete_connect`.
            Login::Credentials => self.start_login(prepared),
            // As Mosquitto: the CONNECT's username and password are dropped, the certificate's
            // username stands without a password check.
            Login::Certificate(from_cert) => {
                prepared.password = None;
                prepared.cert_login = true;
                prepared.connect.username = None;
                let verdict = from_cert
                    .map(|name| prepared.connect.username = Some(name))
                    .map_err(|problem| super::super::security::certificate_refusal(&problem));
                self.complete_connect(prepared, verdict);
            }
        }
    }

    /// Ends a CONNECT whose login is decided: refused (audit record, CONNACK, close) or accepted
    /// (session takeover, CONNACK, queued messages).
    pub(super) fn complete_connect(
        &mut self,
        prepared: Prepared,
        verdict: Result<(), LoginRefusal>,
    ) {
        let Prepared {
            conn,
            address,
            connect: mut c,
            password,
            assigned,
            cert_login,
            shadow,
        } = prepared;
        let version = c.version;
        self.authz.login_decided(
            Peer {
                username: c.username.as_deref(),
                client_id: Some(&c.client_id),
                address: Some(&address),
            },
            password
                .as_ref()
                .map(Secret::expose)
                .filter(|_| !cert_login),
            shadow,
            verdict.as_ref().err().map(|r| &r.denial),
            self.wall,
            &mut self.out,
        );
        if let Err(refusal) = verdict {
            let peer = Peer {
                username: c.username.as_deref(),
                client_id: Some(&c.client_id),
                address: Some(&address),
            };
            let record = AuditRecord::login(self.wall, peer, refusal.denial)
                .with_semantics(self.authz.security.semantics());
            self.log(record.message.clone());
            self.out.push(Action::Audit(Box::new(record)));
            return self.refuse(conn, version, refusal.connack);
        }
        // Session takeover (MQTT-3.1.4-2), by the newer connection. Connections are numbered in the
        // order they were accepted, and their CONNECTs reach the router through different connection
        // threads: a client that gave up on a connection (its CONNECT already sent) and opened another
        // can see the new one's CONNECT handled first. The older connection's CONNECT is then the stale
        // one: it is refused instead of closing the client's live connection (a single-threaded
        // broker such as Mosquitto handles the two in the order they came).
        let old_conn = self.sessions.get(c.client_id.as_str()).and_then(|s| s.conn);
        if let Some(old) = old_conn.filter(|&old| old > conn) {
            self.log(format!(
                "connection {conn}: client {:?} is already connected on connection {old}, accepted later; refusing this older connection",
                c.client_id
            ));
            return self.refuse(conn, version, ConnectReason::IdentifierRejected);
        }
        if let Some(old) = old_conn {
            let old_version = self
                .sessions
                .get(c.client_id.as_str())
                .map_or(version, |s| s.version);
            if old_version.is_v5() {
                send(
                    &mut self.out,
                    old,
                    Packet::Disconnect(Disconnect::with_reason(
                        reason::SESSION_TAKEN_OVER,
                        "another connection took over this session",
                    )),
                );
            }
            self.out.push(Action::Close { conn: old });
            self.detach(old);
        }
        let expiry = if version.is_v5() {
            Expiry::from_interval(c.properties.session_expiry.unwrap_or(0))
        } else if c.clean_start {
            Expiry::OnClose
        } else {
            Expiry::Never
        };
        let mut session_present = false;
        if c.clean_start {
            self.end_session(c.client_id.as_str());
        } else if let Some(s) = self.sessions.get_mut(c.client_id.as_str()) {
            session_present = true;
            // Reconnected within the Will Delay: the old Will is not sent (MQTT-3.1.3-9).
            s.will = None;
            s.will_due = None;
        }
        let s = match self.sessions.get_mut(c.client_id.as_str()) {
            Some(s) => s,
            None => {
                let id: Arc<str> = Arc::from(c.client_id.as_str());
                self.sessions
                    .entry(Arc::clone(&id))
                    .or_insert_with(|| Box::new(Session::new(id, version)))
            }
        };
        let client_id = Arc::clone(&s.client_id);
        s.version = version;
        s.username = c.username.take().map(Arc::from);
        s.password = password;
        s.cert_login = cert_login;
        // The text came from the connection's `IpAddr`.
        s.address = address.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        s.conn = Some(conn);
        s.expiry = expiry;
        s.disconnected_at = None;
        s.receive_maximum = c.properties.receive_maximum;
        s.max_packet_size = c.properties.maximum_packet_size;
        s.clear_aliases();
        s.will = c.will.take().map(Box::new);
        self.conns.insert(conn, client_id.clone());

        let mut keep_alive = c.keep_alive;
        let mut properties = Properties::default();
        if version.is_v5() {
            properties.assigned_client_id = assigned;
            properties.topic_alias_maximum = Some(self.limits.max_topic_alias);
            if self.limits.max_packet_size < super::super::codec::MAX_REMAINING_LENGTH + 5 {
                properties.maximum_packet_size = u32::try_from(self.limits.max_packet_size).ok();
            }
            if !self.limits.retain_available {
                properties.retain_available = Some(0);
            }
            if keep_alive > self.limits.max_keepalive
                || (keep_alive == 0 && self.limits.max_keepalive < u16::MAX)
            {
                keep_alive = self.limits.max_keepalive;
                properties.server_keep_alive = Some(keep_alive);
            }
        }
        send(
            &mut self.out,
            conn,
            Packet::ConnAck(ConnAck {
                session_present,
                reason: ConnectReason::Success,
                properties: properties.into(),
            }),
        );
        self.out.push(Action::Accepted { conn, keep_alive });
        let line = format!(
            "New client connected as {client_id} (p{}, c{}, k{keep_alive}, u'{}').",
            match version {
                Version::V31 => 1,
                Version::V311 => 2,
                Version::V5 => 5,
            },
            u8::from(c.clean_start),
            self.sessions
                .get(&client_id)
                .and_then(|s| s.username.clone())
                .unwrap_or_default()
        );
        self.log(line);
        self.save_session(&client_id);
        if session_present {
            self.resume(&client_id);
        }
    }

    /// Resends what was in flight to a reconnected persistent session and drains its queue,
    /// re-checking read access for each message (the 2.0.12 / CVE-2021-34434 fixes).
    pub(super) fn resume(&mut self, client_id: &str) {
        // Re-check stored subscriptions against the current identity.
        let Some(s) = self.sessions.get(client_id) else {
            return;
        };
        let denied = self.authz.denied_subscriptions(s, self.wall, &mut self.out);
        for f in &denied {
            unindex(&mut self.subs, &mut self.shared, f, client_id);
            if let Some(s) = self.sessions.get_mut(client_id) {
                s.subscriptions.remove(f);
            }
        }
        if !denied.is_empty() {
            self.save_session(client_id);
        }
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let Some(conn) = s.conn else {
            return;
        };
        let ids: Vec<u16> = s.t().inflight.keys().copied().collect();
        for id in ids {
            let packet = match s.t().inflight.get(&id) {
                Some(InFlight::Publish(d)) => {
                    if !self.authz.authorize(
                        s,
                        d.msg.topic.as_str(),
                        Access::Read,
                        self.wall,
                        &mut self.out,
                    ) {
                        let seq = d.seq;
                        s.t_mut().inflight.remove(&id);
                        super::durable::done(s, seq, &mut self.out);
                        continue;
                    }
                    Packet::Publish(d.to_publish(id, true, self.now))
                }
                Some(InFlight::Release(_)) => Packet::PubRel(Ack::new(id)),
                None => continue,
            };
            send(&mut self.out, conn, packet);
        }
        pump(
            s,
            &self.limits,
            &mut self.authz,
            self.wall,
            &mut self.out,
            self.now,
        );
    }

    pub(super) fn auto_id(&mut self) -> String {
        let mut random = [0u8; 8];
        // Without randomness the counter alone keeps ids unique within this process.
        let _ = getrandom::getrandom(&mut random);
        self.next_auto_id += 1;
        let mut id = self.limits.auto_id_prefix.clone();
        for b in random {
            id.push_str(&format!("{b:02X}"));
        }
        id.push_str(&format!("-{}", self.next_auto_id));
        id
    }
}
