//! MQTT 3.1.1 sessions on `rumqttc`: CONNACK return codes; acknowledgements carry no reason codes.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS,
    SubscribeReasonCode,
};

use super::{bounded, Endpoint, Login, Message, WAIT};

/// A connected MQTT 3.1.1 client. The event loop is polled only inside its methods; messages that
/// arrive meanwhile are kept for [`Session::receive`].
pub struct Session {
    client: AsyncClient,
    events: EventLoop,
    inbox: VecDeque<Message>,
}

/// Connects; `Err(return code)` when the broker refuses (4 bad user name or password, 5 not authorised).
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
            Err(ConnectionError::ConnectionRefused(code)) => return Err(code as u8),
            Err(e) => panic!("MQTT 3.1.1 connect to port {} failed: {e}", endpoint.port),
        }
    }
}

impl Session {
    /// Publishes and waits until the flow is complete: sent (QoS 0), PUBACK (QoS 1) or PUBCOMP (QoS 2).
    /// MQTT 3.1.1 acknowledgements say nothing about denial.
    pub async fn publish(&mut self, topic: &str, qos: u8, payload: &[u8]) {
        self.client
            .publish(topic, to_qos(qos), false, payload.to_vec())
            .await
            .expect("queue PUBLISH");
        let mut pkid = None;
        loop {
            match self.poll("PUBLISH acknowledgement").await {
                Event::Outgoing(Outgoing::Publish(id)) if pkid.is_none() => {
                    if qos == 0 {
                        return;
                    }
                    pkid = Some(id);
                }
                Event::Incoming(Packet::PubAck(ack)) if qos == 1 && Some(ack.pkid) == pkid => {
                    return
                }
                Event::Incoming(Packet::PubComp(comp)) if Some(comp.pkid) == pkid => return,
                _ => {}
            }
        }
    }

    /// Subscribes to `filter` with `qos`; returns the SUBACK return codes (granted QoS or `0x80`).
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Vec<u8> {
        self.client
            .subscribe(filter, to_qos(qos))
            .await
            .expect("queue SUBSCRIBE");
        loop {
            if let Event::Incoming(Packet::SubAck(ack)) = self.poll("SUBACK").await {
                return ack
                    .return_codes
                    .iter()
                    .map(|code| match code {
                        SubscribeReasonCode::Success(qos) => *qos as u8,
                        SubscribeReasonCode::Failure => 0x80,
                    })
                    .collect();
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
                Ok(Err(e)) => panic!("MQTT 3.1.1 connection failed while receiving: {e}"),
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
            .unwrap_or_else(|e| {
                panic!("MQTT 3.1.1 connection failed while waiting for {what}: {e}")
            });
        self.keep(&event);
        event
    }

    fn keep(&mut self, event: &Event) {
        if let Event::Incoming(Packet::Publish(p)) = event {
            self.inbox
                .push_back(Message::new(p.topic.as_bytes(), &p.payload));
        }
    }
}

fn to_qos(qos: u8) -> QoS {
    rumqttc::mqttbytes::qos(qos).unwrap_or_else(|_| panic!("QoS {qos} does not exist"))
}
