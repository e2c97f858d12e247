"""The tutorial's own client library, paho-mqtt (Debian's python3-paho-mqtt), against a broker.

Usage: python3 tutorial.py PORT CAFILE
Prints one JSON object with what paho saw: CONNACK codes and which messages the admin subscriber received.
Every wait is bounded.
"""
import json
import ssl
import sys
import time

import paho.mqtt.client as mqtt

PORT = int(sys.argv[1])
CAFILE = sys.argv[2]
LIMIT = 10.0


def tls(client):
    client.tls_set(ca_certs=CAFILE, tls_version=ssl.PROTOCOL_TLSv1_2)


def wait(predicate, limit=LIMIT):
    deadline = time.time() + limit
    while time.time() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def connack(username, password, protocol):
    """Connects once and returns the CONNACK code paho reports (rc for 3.1.1, reason code value for v5)."""
    got = {}
    client = mqtt.Client(client_id="", protocol=protocol) if protocol == mqtt.MQTTv5 else mqtt.Client(protocol=protocol)
    tls(client)
    client.username_pw_set(username, password)

    def on_connect(c, userdata, flags, rc, properties=None):
        got["rc"] = rc.value if hasattr(rc, "value") else rc

    client.on_connect = on_connect
    client.connect("127.0.0.1", PORT, keepalive=10)
    client.loop_start()
    wait(lambda: "rc" in got)
    client.loop_stop()
    client.disconnect()
    return got.get("rc")


received = []
subscribed = []
admin = mqtt.Client(client_id="paho-admin", protocol=mqtt.MQTTv311)
tls(admin)
admin.username_pw_set("admin", "admin1234")
admin.on_message = lambda c, u, m: received.append((m.topic, m.payload.decode()))
admin.on_subscribe = lambda c, u, mid, granted: subscribed.append(list(granted))
admin.connect("127.0.0.1", PORT, keepalive=10)
admin.loop_start()
admin.subscribe("#", qos=1)
wait(lambda: subscribed)

user1 = mqtt.Client(client_id="paho-user1", protocol=mqtt.MQTTv311)
tls(user1)
user1.username_pw_set("user1", "123456")
user1.connect("127.0.0.1", PORT, keepalive=10)
user1.loop_start()
topics = [
    "colombia/cundinamarca/cajica/user1",
    "colombia/cundinamarca/bogota/user2",
    "user1",
    "panama/colon/user1",
]
for topic in topics:
    user1.publish(topic, "MQTT Test", qos=1).wait_for_publish()
wait(lambda: any(t == topics[0] for t, _ in received))
time.sleep(0.5)  # give a wrongly delivered message the time to arrive
user1.loop_stop()
user1.disconnect()
admin.loop_stop()
admin.disconnect()

print(json.dumps({
    "suback": subscribed,
    "received": sorted({t for t, _ in received}),
    "wrong_password_v311": connack("user1", "ABCDEFG", mqtt.MQTTv311),
    "wrong_password_v5": connack("user1", "ABCDEFG", mqtt.MQTTv5),
    "right_password_v311": connack("user1", "123456", mqtt.MQTTv311),
}))
