#!/usr/bin/env python3
"""The course tutorial's subscriber: listens on '#' (every topic) at QoS 1 as the tutorial's admin user,
over TLS 1.2 with the tutorial's client settings (paho-mqtt 1.6, as Debian 12's python3-paho-mqtt; the
server certificate is not verified: cert_reqs=CERT_NONE), and prints every message it receives.

    python3 subscriber.py --host 127.0.0.1 --user admin --passwd admin1234

--count N stops after N messages and --timeout S after S seconds (default: run until Ctrl+C).
"""
import argparse
import ssl
import sys
import time

import paho.mqtt.client as mqtt

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--host", required=True)
parser.add_argument("--port", type=int, default=8082)
parser.add_argument("--user", default="admin")
parser.add_argument("--passwd", default="admin1234")
parser.add_argument("--topic", default="#")
parser.add_argument("--ca", default="ca.crt")
parser.add_argument("--count", type=int, default=0, help="messages to receive, then stop")
parser.add_argument("--timeout", type=float, default=0, help="seconds, then stop")
args = parser.parse_args()

state = {"received": 0, "connack": None}


def on_connect(client, userdata, flags, rc):
    state["connack"] = rc
    print(f"Connected: {mqtt.connack_string(rc)}", flush=True)
    if rc == 0:
        client.subscribe(args.topic, qos=1)


def on_subscribe(client, userdata, mid, granted_qos):
    print(f"Subscribed to {args.topic}: granted QoS {list(granted_qos)}", flush=True)


def on_message(client, userdata, msg):
    state["received"] += 1
    print(f"Data received: {msg.payload.decode(errors='replace')} ({msg.topic})", flush=True)


client = mqtt.Client()
client.username_pw_set(args.user, args.passwd)
client.tls_set(ca_certs=args.ca, cert_reqs=ssl.CERT_NONE, tls_version=ssl.PROTOCOL_TLSv1_2)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
try:
    client.connect(args.host, args.port)
except OSError as e:
    print(f"Cannot reach {args.host}:{args.port}: {e}", flush=True)
    sys.exit(2)
client.loop_start()
deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
try:
    while args.count == 0 or state["received"] < args.count:
        if deadline is not None and time.monotonic() >= deadline:
            break
        time.sleep(0.05)
except KeyboardInterrupt:
    pass
client.disconnect()
client.loop_stop()
sys.exit(0 if state["connack"] == 0 else 1)
