//! PUBLISH from a client: topic aliases, the write decision, then routing: retained messages,
//! every matching subscription and shared group, and each delivery's read decision.

use super::durable;
use super::*;
use crate::broker::codec::Props;

/// The most matches whose room [`Router::publish`] keeps between messages.
const TARGETS_KEPT: usize = 1024;
impl Router {
    pub(super) fn on_publish(&mut self, conn: ConnId, client_id: &str, mut p: Publish) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let version = s.version;
        // Through `get_mut`: taking through `DerefMut` would allocate the properties' box.
        let alias = p.properties.get_mut().and_then(|p| p.topic_alias.take());
        if let Some(alias) = alias {
            if alias == 0 || alias > self.limits.max_topic_alias {
                return self.kick(
                    conn,
                    reason::TOPIC_ALIAS_INVALID,
                    "topic alias outside 1..=Topic Alias Maximum (MQTT-3.3.2-9)",
                );
            }
            match &p.topic {
                None => match s.t().aliases.get(&alias) {
                    Some(t) => p.topic = Some(t.clone()),
                    None => return self.kick(conn, reason::PROTOCOL_ERROR, "unknown topic alias"),
                },
                Some(t) => {
                    s.t_mut().aliases.insert(alias, t.clone());
                }
            }
        }
        let Some(topic) = p.topic else {
            return self.kick(
                conn,
                reason::PROTOCOL_ERROR,
                "empty topic name without a topic alias",
            );
        };
        if p.retain && !self.limits.retain_available {
            return self.kick(conn, 0x9A, "retain is not supported");
        }
        if p.qos == QoS::ExactlyOnce && s.t().incoming_qos2.contains(&p.pkid) {
            // A resent QoS 2 message already received: acknowledge, do not deliver again.
            return send(&mut self.out, conn, Packet::PubRec(Ack::new(p.pkid)));
        }
        if p.properties.payload_format == Some(1)
            && !crate::broker::codec::properties::check_utf8_payload(&p.payload)
        {
            let ack = Ack {
                pkid: p.pkid,
                reason: reason::PAYLOAD_FORMAT_INVALID,
                properties: reason_string("the payload is not UTF-8").into(),
            };
            match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => send(&mut self.out, conn, Packet::PubAck(ack)),
                QoS::ExactlyOnce => send(&mut self.out, conn, Packet::PubRec(ack)),
            }
            return;
        }
        if !self
            .authz
            .authorize(s, topic.as_str(), Access::Write, self.wall, &mut self.out)
        {
            let ack = Ack {
                pkid: p.pkid,
                reason: reason::NOT_AUTHORIZED,
                properties: reason_string("not authorised to publish to this topic").into(),
            };
            match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => send(&mut self.out, conn, Packet::PubAck(ack)),
                QoS::ExactlyOnce => {
                    if !version.is_v5() {
                        // 3.1.1 cannot refuse: the flow completes as if accepted.
                        s.t_mut().incoming_qos2.insert(p.pkid);
                        durable::received(s, p.pkid, true, &mut self.out);
                    }
                    send(&mut self.out, conn, Packet::PubRec(ack))
                }
            }
            return;
        }
        let origin = Origin {
            username: s.username.clone(),
            client_id: Arc::clone(&s.client_id),
        };
        let (qos, pkid) = (p.qos, p.pkid);
        let msg = self.message(topic, p.payload, qos, p.retain, p.properties, origin);
        let matched = self.publish(msg);
        let code = if matched == 0 {
            reason::NO_MATCHING_SUBSCRIBERS
        } else {
            reason::SUCCESS
        };
        let ack = Ack {
            pkid,
            reason: code,
            properties: crate::broker::codec::Props::default(),
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => send(&mut self.out, conn, Packet::PubAck(ack)),
            QoS::ExactlyOnce => {
                if let Some(s) = self.sessions.get_mut(client_id) {
                    s.t_mut().incoming_qos2.insert(pkid);
                    durable::received(s, pkid, true, &mut self.out);
                }
                send(&mut self.out, conn, Packet::PubRec(ack));
            }
        }
    }

    pub(super) fn message(
        &self,
        topic: TopicName,
        payload: Arc<[u8]>,
        qos: QoS,
        retain: bool,
        p: Props,
        origin: Origin,
    ) -> Arc<Message> {
        let expires_at = p
            .message_expiry
            .and_then(|secs| self.now.checked_add(Duration::from_secs(u64::from(secs))));
        Arc::new(Message {
            topic,
            payload,
            qos,
            retain,
            properties: passed_on(p),
            expires_at,
            origin,
            encoded: Default::default(),
        })
    }

    /// Stores a retained message and delivers `msg` to every matching subscription, and to one
    /// member of every matching shared group. Returns the number of subscribed clients and groups
    /// that matched.
    pub(super) fn publish(&mut self, msg: Arc<Message>) -> usize {
        if msg.retain {
            self.retained.set(&msg);
            self.save_retained(&msg);
        }
        // Every matching subscription. A client's several matching subscriptions are merged into
        // one delivery: when some client has several subscriptions, the matches are sorted by
        // client (by the address of its id, which all its subscriptions share), so that its
        // entries are next to each other. No allocation per client, no hashing of client ids.
        let mut targets = std::mem::take(&mut self.targets);
        self.subs.for_each_client(&msg.topic, |client, entry| {
            targets.push((Arc::clone(client), entry));
        });
        if self.subs.has_overlaps() {
            targets.sort_unstable_by_key(|(c, _)| Arc::as_ptr(c).cast::<u8>() as usize);
        }
        self.authz.message_begins(targets.len());
        let mut matched = 0;
        let mut rest = &targets[..];
        while let Some((client, _)) = rest.first() {
            let n = rest
                .iter()
                .take_while(|(c, _)| Arc::ptr_eq(c, client))
                .count();
            let mut merged = None;
            for (_, entry) in &rest[..n] {
                Session::merge(&mut merged, *entry);
            }
            rest = &rest[n..];
            matched += 1;
            if let Some((options, ids)) = merged {
                if options.no_local && **client == *msg.origin.client_id {
                    continue;
                }
                let retain = options.retain_as_published && msg.retain;
                self.deliver(client, &msg, options.qos, retain, ids);
            }
        }
        // One member of each matching shared group, in turn (No Local cannot be set on these).
        let mut chosen: Vec<(Box<str>, SubEntry)> = Vec::new();
        matched += self.shared.choose(&msg.topic, |client, entry| {
            chosen.push((client.into(), entry))
        });
        for (client, entry) in chosen {
            let retain = entry.options.retain_as_published && msg.retain;
            let ids = entry.id.into_iter().collect();
            self.deliver(&client, &msg, entry.options.qos, retain, ids);
        }
        targets.clear();
        if targets.capacity() > TARGETS_KEPT {
            // A large fan-out's list is not kept for the small ones after it.
            targets.shrink_to(TARGETS_KEPT);
        }
        self.targets = targets;
        self.authz.message_done();
        matched
    }

    /// Delivers `msg` to one client, checking its read access first.
    pub(super) fn deliver(
        &mut self,
        client_id: &str,
        msg: &Arc<Message>,
        max_qos: QoS,
        retain: bool,
        sub_ids: Vec<u32>,
    ) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if !self
            .authz
            .authorize_delivery(s, msg.topic.as_str(), self.wall, &mut self.out)
        {
            return;
        }
        let delivery = Delivery {
            msg: Arc::clone(msg),
            qos: msg.qos.min(max_qos),
            retain,
            sub_ids,
            seq: 0,
        };
        if !push(s, delivery, &self.limits, &mut self.out, self.now) {
            self.queue_drops += 1;
        }
    }
}

/// The properties of a PUBLISH that its deliveries carry on: none (no allocation) when it had none.
fn passed_on(p: Props) -> Props {
    if p.is_empty() {
        return Props::default();
    }
    let p = p.into_inner();
    Properties {
        payload_format: p.payload_format,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data,
        user: p.user,
        ..Properties::default()
    }
    .into()
}
