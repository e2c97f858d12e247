//! The broker with a maintained Rust client (rumqttc 0.25, MQTT 5): QoS 1 and 2 both ways, reason
//! codes on denied publishes, properties passed through to subscribers.

mod broker_support;

use std::time::Duration;

use broker_support::Broker;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

fn client(b: &Broker, id: &str, user: &str, pass: &str) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "127.0.0.1", b.port);
    o.set_credentials(user, pass);
    o.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(o, 64)
}

/// Polls until `want` returns `Some`, bounded in time and count.
async fn until<T>(el: &mut EventLoop, mut want: impl FnMut(&Packet) -> Option<T>) -> T {
    let poll = async {
        for _ in 0..1000 {
            match el.poll().await {
                Ok(Event::Incoming(p)) => {
                    if let Some(t) = want(&p) {
                        return t;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => panic!("connection error: {e:?}"),
            }
        }
        panic!("nothing wanted in 1000 events");
    };
    tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("bounded wait")
}

#[tokio::test]
async fn qos_1_and_2_flow_both_ways_with_properties_passed_through() {
    let b = Broker::tutorial();
    let (admin, mut admin_el) = client(&b, "admin-sub", "admin", "admin1234");
    admin.subscribe("#", QoS::ExactlyOnce).await.unwrap();
    until(&mut admin_el, |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;

    let (user, mut user_el) = client(&b, "user1-pub", "user1", "123456");
    until(&mut user_el, |p| {
        matches!(p, Packet::ConnAck(_)).then_some(())
    })
    .await;
    let props = PublishProperties {
        user_properties: vec![("origin".into(), "test".into())],
        content_type: Some("text/plain".into()),
        ..PublishProperties::default()
    };
    user.publish_with_properties("co/st/city/user1", QoS::ExactlyOnce, false, "two", props)
        .await
        .unwrap();
    until(&mut user_el, |p| {
        matches!(p, Packet::PubComp(_)).then_some(())
    })
    .await;
    user.publish("co/st/city/user1", QoS::AtLeastOnce, false, "one")
        .await
        .unwrap();
    until(&mut user_el, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;

    let first = until(&mut admin_el, |p| match p {
        Packet::Publish(p) => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&first.payload[..], b"two");
    assert_eq!(first.qos, QoS::ExactlyOnce);
    let fp = first.properties.expect("properties");
    assert_eq!(
        fp.user_properties,
        vec![("origin".to_owned(), "test".to_owned())]
    );
    assert_eq!(fp.content_type.as_deref(), Some("text/plain"));
    let second = until(&mut admin_el, |p| match p {
        Packet::Publish(p) => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&second.payload[..], b"one");
    assert_eq!(second.qos, QoS::AtLeastOnce);
}

#[tokio::test]
async fn a_denied_qos_1_publish_gets_puback_0x87_with_a_reason_string() {
    let b = Broker::tutorial();
    let (user, mut el) = client(&b, "user1-denied", "user1", "123456");
    until(&mut el, |p| matches!(p, Packet::ConnAck(_)).then_some(())).await;
    user.publish("co/st/city/user2", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    let ack = until(&mut el, |p| match p {
        Packet::PubAck(a) => Some(a.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        ack.reason,
        rumqttc::v5::mqttbytes::v5::PubAckReason::NotAuthorized
    );
    assert!(ack.properties.and_then(|p| p.reason_string).is_some());
    let records = b.wait_audit(1);
    assert_eq!(records[0]["topic"], "co/st/city/user2");
}
