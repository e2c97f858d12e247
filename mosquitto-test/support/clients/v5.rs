//! MQTT 5 sessions on `rumqttc::v5`: CONNACK, PUBACK/PUBREC and SUBACK reason codes as numbers.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Packet, PubAckReason, PubRecReason, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;

use super::{bounded, Endpoint, Login, Message, WAIT};

/// A connected MQTT 5 client. The event loop is polled only inside its methods; messages that arrive
/// meanwhile are kept for [`Session::receive`].
pub struct Session {
    client: AsyncClient,
    events: EventLoop,
    inbox: VecDeque<Message>,
}

/// Connects; `Err(reason code)` when the broker refuses (for example `0x87` not authorised).
pub async fn connect(endpoint: &Endpoint, login: &Login) -> Result<Session, u8> {
    let mut options = MqttOptions::new(login.client_id.clone(), "127.0.0.1", endpoint.port);
    options.set_transport(endpoint.transport());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((username, password)) = &login.credentials {
        options.set_credentials(username.clone(), password.clone());
    }
    let (client, mut events) = AsyncClient::new(options, 100);
    loop {
        match bounded(WAIT, "CONNACK", events.poll()).await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                return Ok(Session {
                    client,
                    events,
                    inbox: VecDeque::new(),
                })
            }
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(connack_code(code)),
            Err(e) => panic!("MQTT 5 connect to port {} failed: {e}", endpoint.port),
        }
    }
}

impl Session {
    /// Publishes and waits for the broker's answer: `None` for QoS 0 (no answer exists), the PUBACK
    /// reason for QoS 1, the PUBREC reason for QoS 2 (after a successful PUBREC the flow is completed
    /// with PUBREL/PUBCOMP before returning).
    pub async fn publish(&mut self, topic: &str, qos: u8, payload: &[u8]) -> Option<u8> {
        self.client
            .publish(topic, to_qos(qos), false, payload.to_vec())
            .await
            .expect("queue PUBLISH");
        let mut pkid = None;
        loop {
            match self.poll("PUBLISH acknowledgement").await {
                Event::Outgoing(Outgoing::Publish(id)) if pkid.is_none() => {
                    if qos == 0 {
                        return None;
                    }
                    pkid = Some(id);
                }
                Event::Incoming(Packet::PubAck(ack)) if Some(ack.pkid) == pkid => {
                    return Some(puback_code(&ack.reason));
                }
                Event::Incoming(Packet::PubRec(rec)) if Some(rec.pkid) == pkid => {
                    let code = pubrec_code(&rec.reason);
                    if code >= 0x80 {
                        return Some(code);
                    }
                    loop {
                        if let Event::Incoming(Packet::PubComp(comp)) = self.poll("PUBCOMP").await {
                            if Some(comp.pkid) == pkid {
                                return Some(code);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Subscribes to `filter` with `qos`; returns the SUBACK reason codes (granted QoS, or `0x87`, ...).
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Vec<u8> {
        self.client
            .subscribe(filter, to_qos(qos))
            .await
            .expect("queue SUBSCRIBE");
        loop {
            if let Event::Incoming(Packet::SubAck(ack)) = self.poll("SUBACK").await {
                return ack.return_codes.iter().map(suback_code).collect();
            }
        }
    }

    /// Messages received until `count` have arrived or `within` has passed, whichever is first
    /// (including those that arrived during earlier calls).
    pub async fn receive(&mut self, count: usize, within: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + within;
        while self.inbox.len() < count {
            match tokio::time::timeout_at(deadline, self.events.poll()).await {
                Err(_) => break,
                Ok(Ok(event)) => self.keep(&event),
                Ok(Err(e)) => panic!("MQTT 5 connection failed while receiving: {e}"),
            }
        }
        let n = count.min(self.inbox.len());
        self.inbox.drain(..n).collect()
    }

    /// Sends DISCONNECT and polls until it is written (bounded).
    pub async fn disconnect(mut self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(WAIT, async {
            while let Ok(event) = self.events.poll().await {
                if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }

    async fn poll(&mut self, what: &str) -> Event {
        let event = bounded(WAIT, what, self.events.poll())
            .await
            .unwrap_or_else(|e| panic!("MQTT 5 connection failed while waiting for {what}: {e}"));
        self.keep(&event);
        event
    }

    fn keep(&mut self, event: &Event) {
        if let Event::Incoming(Packet::Publish(p)) = event {
            self.inbox.push_back(Message::new(&p.topic, &p.payload));
        }
    }
}

fn to_qos(qos: u8) -> QoS {
    rumqttc::v5::mqttbytes::qos(qos).unwrap_or_else(|| panic!("QoS {qos} does not exist"))
}

/// The MQTT 5 reason code on the wire for a CONNACK refusal.
pub fn connack_code(code: ConnectReturnCode) -> u8 {
    use ConnectReturnCode::*;
    match code {
        Success => 0x00,
        RefusedProtocolVersion | UnsupportedProtocolVersion => 0x84,
        BadClientId | ClientIdentifierNotValid => 0x85,
        ServiceUnavailable | ServerUnavailable => 0x88,
        UnspecifiedError => 0x80,
        MalformedPacket => 0x81,
        ProtocolError => 0x82,
        ImplementationSpecificError => 0x83,
        BadUserNamePassword => 0x86,
        NotAuthorized => 0x87,
        ServerBusy => 0x89,
        Banned => 0x8A,
        BadAuthenticationMethod => 0x8C,
        TopicNameInvalid => 0x90,
        PacketTooLarge => 0x95,
        QuotaExceeded => 0x97,
        PayloadFormatInvalid => 0x99,
        RetainNotSupported => 0x9A,
        QoSNotSupported => 0x9B,
        UseAnotherServer => 0x9C,
        ServerMoved => 0x9D,
        ConnectionRateExceeded => 0x9F,
    }
}

fn puback_code(reason: &PubAckReason) -> u8 {
    use PubAckReason::*;
    match reason {
        Success => 0x00,
        NoMatchingSubscribers => 0x10,
        UnspecifiedError => 0x80,
        ImplementationSpecificError => 0x83,
        NotAuthorized => 0x87,
        TopicNameInvalid => 0x90,
        PacketIdentifierInUse => 0x91,
        QuotaExceeded => 0x97,
        PayloadFormatInvalid => 0x99,
    }
}

fn pubrec_code(reason: &PubRecReason) -> u8 {
    use PubRecReason::*;
    match reason {
        Success => 0x00,
        NoMatchingSubscribers => 0x10,
        UnspecifiedError => 0x80,
        ImplementationSpecificError => 0x83,
        NotAuthorized => 0x87,
        TopicNameInvalid => 0x90,
        PacketIdentifierInUse => 0x91,
        QuotaExceeded => 0x97,
        PayloadFormatInvalid => 0x99,
    }
}

fn suback_code(code: &SubscribeReasonCode) -> u8 {
    use SubscribeReasonCode::*;
    match code {
        Success(qos) => *qos as u8,
        Failure | Unspecified => 0x80,
        ImplementationSpecific => 0x83,
        NotAuthorized => 0x87,
        TopicFilterInvalid => 0x8F,
        PkidInUse => 0x91,
        QuotaExceeded => 0x97,
        SharedSubscriptionsNotSupported => 0x9E,
        SubscriptionIdNotSupported => 0xA1,
        WildcardSubscriptionsNotSupported => 0xA2,
    }
}
