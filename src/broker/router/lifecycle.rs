//! A client's end: DISCONNECT, a closed connection, its Will (now or delayed), the end of its
//! session, and what the clock ends (Will delays, session expiry, retained message expiry).

use super::*;

impl Router {
    pub(super) fn on_disconnect(&mut self, conn: ConnId, client_id: &str, d: Disconnect) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if let Some(secs) = d.properties.session_expiry {
            if s.expiry == Expiry::OnClose && secs != 0 {
                // MQTT-3.14.2-2.
                return self.kick(
                    conn,
                    reason::PROTOCOL_ERROR,
                    "session expiry set on DISCONNECT after 0 on CONNECT",
                );
            }
            s.expiry = Expiry::from_interval(secs);
        }
        if d.reason != reason::DISCONNECT_WITH_WILL {
            // MQTT-3.1.2-10: a normal DISCONNECT discards the Will.
            s.will = None;
        }
        self.out.push(Action::Close { conn });
        self.detach(conn);
    }

    // ----- disconnection, Wills, expiry -----

    /// The connection is gone: detach it from its session, send or schedule the Will, end the
    /// session if it expires on close.
    pub(super) fn detach(&mut self, conn: ConnId) {
        let Some(client_id) = self.conns.remove(&conn) else {
            return;
        };
        let total = self.authz.withheld.forget_client(&client_id);
        if total > 1 {
            self.log(format!(
                "{total} deliveries to client {client_id:?} were withheld (the audit log records each topic once)"
            ));
        }
        let Some(s) = self.sessions.get_mut(&client_id) else {
            return;
        };
        if s.conn != Some(conn) {
            return;
        }
        s.conn = None;
        s.password = None;
        if let Some(t) = s.traffic.as_deref_mut() {
            t.backlog_since = None;
        }
        s.clear_aliases();
        s.disconnected_at = Some(self.now);
        let mut will_now = None;
        if let Some(w) = s.will.take() {
            let delay = w.properties.will_delay.unwrap_or(0);
            if delay == 0 || s.expiry == Expiry::OnClose {
                will_now = Some(w);
            } else {
                s.will_due = self.now.checked_add(Duration::from_secs(u64::from(delay)));
                s.will = Some(w);
            }
        }
        let ends = s.expiry == Expiry::OnClose;
        let line = format!("Client {client_id} disconnected.");
        self.log(line);
        if let Some(w) = will_now {
            self.send_will(&client_id, w);
        }
        if ends {
            self.end_session(&client_id);
        } else {
            self.save_session(&client_id);
        }
    }

    /// Publishes a Will, if its client may write its topic.
    pub(super) fn send_will(&mut self, client_id: &str, w: Box<Will>) {
        let Some(s) = self.sessions.get(client_id) else {
            return;
        };
        if !self
            .authz
            .authorize(s, w.topic.as_str(), Access::Write, self.wall, &mut self.out)
        {
            return;
        }
        let origin = Origin {
            username: s.username.clone(),
            client_id: Arc::clone(&s.client_id),
        };
        let msg = self.message(
            w.topic,
            w.payload,
            w.qos,
            w.retain,
            w.properties.into(),
            origin,
        );
        self.publish(msg);
    }

    /// Ends a session: sends a pending delayed Will, removes its subscriptions and queue.
    pub(super) fn end_session(&mut self, client_id: &str) {
        let will = self.sessions.get_mut(client_id).and_then(|s| {
            // A disconnected session still holding a Will has a delayed Will pending.
            s.will_due = None;
            if s.conn.is_none() {
                s.will.take()
            } else {
                None
            }
        });
        if let Some(w) = will {
            self.send_will(client_id, w);
        }
        if let Some(s) = self.sessions.remove(client_id) {
            self.forget_session(&s);
            for filter in s.subscriptions.keys() {
                unindex(&mut self.subs, &mut self.shared, filter, client_id);
            }
            if s.t().dropped > 0 {
                self.out.push(Action::Notice(format!(
                    "client {client_id}: {} messages dropped because its queue was full",
                    s.t().dropped
                )));
            }
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.now;
        let mut wills = Vec::new();
        let mut ended = Vec::new();
        for (id, s) in &self.sessions {
            if s.conn.is_some() {
                continue;
            }
            if s.will_due.is_some_and(|t| t <= now) {
                wills.push(id.clone());
            }
            let after = match s.expiry {
                Expiry::OnClose => Some(Duration::ZERO),
                Expiry::After(secs) => Some(Duration::from_secs(u64::from(secs))),
                Expiry::Never => self.limits.persistent_expiration,
            };
            if let (Some(after), Some(at)) = (after, s.disconnected_at) {
                if at.checked_add(after).is_some_and(|end| end <= now) {
                    ended.push(id.clone());
                }
            }
        }
        for id in wills {
            let will = self.sessions.get_mut(&id).and_then(|s| {
                s.will_due = None;
                s.will.take()
            });
            if let Some(w) = will {
                self.send_will(&id, w);
            }
            self.save_session(&id);
        }
        for id in ended {
            self.end_session(&id);
        }
        self.retained.expire(now);
    }
}
