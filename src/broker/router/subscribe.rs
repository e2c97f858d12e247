//! SUBSCRIBE and UNSUBSCRIBE: each filter decided, indexed (ordinary or shared), and retained
//! messages sent on subscribe.

use super::*;

impl Router {
    pub(super) fn on_subscribe(&mut self, conn: ConnId, client_id: &str, sub: Subscribe) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let id = sub.properties.subscription_ids.first().copied();
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut send_retained = Vec::new();
        for f in sub.filters {
            // `$share/GROUP/FILTER` (the codec refused the malformed ones and, from MQTT 5 clients,
            // No Local with them: MQTT-3.8.3-4). The policy strips `$share/GROUP/`.
            let is_shared = f.filter.is_shared();
            if !self.authz.authorize(
                s,
                f.filter.as_str(),
                Access::Subscribe,
                self.wall,
                &mut self.out,
            ) {
                codes.push(reason::NOT_AUTHORIZED);
                continue;
            }
            let entry = SubEntry {
                options: f.options,
                id,
            };
            let new = index(
                &mut self.subs,
                &mut self.shared,
                &f.filter,
                client_id,
                entry,
            );
            s.subscriptions.insert(f.filter.clone(), entry);
            codes.push(f.options.qos as u8);
            // Mosquitto's `log_type subscribe` line: client id, QoS, filter.
            self.out.push(Action::Log(format!(
                "{client_id} {} {}",
                f.options.qos as u8, f.filter
            )));
            let rh = f.options.retain_handling;
            // A shared subscription gets no retained messages (MQTT 5 §3.3.1.3 sends them when a
            // new non-shared subscription is made; Mosquitto from 2.0.13 on, 2.0.11 still does).
            if !is_shared && (rh == 0 || (rh == 1 && new)) {
                send_retained.push((f.filter, f.options.qos, id));
            }
        }
        self.save_session(client_id);
        send(
            &mut self.out,
            conn,
            Packet::SubAck(SubAck {
                pkid: sub.pkid,
                codes,
                properties: Props::default(),
            }),
        );
        for (filter, qos, id) in send_retained {
            for msg in self.retained.matching(filter.view(), self.now) {
                if self.limits.check_retain_source {
                    let origin = ClientRef {
                        username: msg.origin.username.as_deref(),
                        client_id: &msg.origin.client_id,
                    };
                    if !self.authz.authorize_origin(
                        origin,
                        msg.topic.as_str(),
                        self.wall,
                        &mut self.out,
                    ) {
                        continue;
                    }
                }
                // Retained messages sent on subscribe keep RETAIN 1 (MQTT-3.3.1-8).
                self.deliver(client_id, &msg, qos, true, id.into_iter().collect());
            }
        }
    }

    pub(super) fn on_unsubscribe(&mut self, conn: ConnId, client_id: &str, u: Unsubscribe) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let mut codes = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            if !self
                .authz
                .authorize(s, f.as_str(), Access::Unsubscribe, self.wall, &mut self.out)
            {
                codes.push(reason::NOT_AUTHORIZED);
                continue;
            }
            let existed = s.subscriptions.remove(f).is_some();
            unindex(&mut self.subs, &mut self.shared, f, client_id);
            codes.push(if existed {
                reason::SUCCESS
            } else {
                reason::NO_SUBSCRIPTION_EXISTED
            });
        }
        self.save_session(client_id);
        send(
            &mut self.out,
            conn,
            Packet::UnsubAck(UnsubAck {
                pkid: u.pkid,
                codes,
                properties: Props::default(),
            }),
        );
    }
}

/// Adds `client`'s subscription `filter` to the index that holds it: the shared groups for
/// `$share/GROUP/FILTER`, the trie otherwise. `true` if it is new.
pub(super) fn index(
    subs: &mut SubTree,
    shared: &mut SharedSubs,
    filter: &TopicFilter,
    client: &str,
    entry: SubEntry,
) -> bool {
    if filter.is_shared() {
        shared.insert(filter, client, entry)
    } else {
        subs.insert(filter.view(), client, entry)
    }
}

/// Removes `client`'s subscription `filter` from the index that holds it: the shared groups for
/// `$share/GROUP/FILTER`, the trie otherwise. `true` if it was there.
pub(super) fn unindex(
    subs: &mut SubTree,
    shared: &mut SharedSubs,
    filter: &TopicFilter,
    client: &str,
) -> bool {
    if filter.is_shared() {
        shared.remove(filter, client)
    } else {
        subs.remove(filter.view(), client)
    }
}
