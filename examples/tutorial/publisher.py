#!/usr/bin/env python3
"""The course tutorial's publisher: sends "MQTT Test" to one topic every 2 seconds (QoS 0) over TLS 1.2,
with the tutorial's client settings (paho-mqtt 1.6, as Debian 12's python3-paho-mqtt; the server
certificate is not verified: cert_reqs=CERT_NONE). After every message it prints the connection's state,
so a refused login shows as "Connection Refused: bad user name or password".

    python3 publisher.py --host 127.0.0.1 --user user1 --passwd 123456 --topic colombia/cundinamarca/cajica/user1

--count N stops after N messages (default: run until Ctrl+C); the exit status is then 0 if the broker
accepted the login, 1 if it refused it, 2 if it could not be reached.
"""
import argparse
import ssl
import sys
import time

import paho.mqtt.client as mqtt

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--host", required=True)
parser.add_argument("--port", type=int, default=8082)
parser.add_argument("--user", required=True)
parser.add_argument("--passwd", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--ca", default="ca.crt", help="the CA certificate (default: ca.crt beside the script's caller)")
parser.add_argument("--count", type=int, default=0, help="messages to send, then stop (default: until Ctrl+C)")
parser.add_argument("--interval", type=float, default=2.0, help="seconds between messages (default: 2)")
args = parser.parse_args()

state = {"connack": None}


def on_connect(client, userdata, flags, rc):
    state["connack"] = rc


client = mqtt.Client()
client.username_pw_set(args.user, args.passwd)
client.tls_set(ca_certs=args.ca, cert_reqs=ssl.CERT_NONE, tls_version=ssl.PROTOCOL_TLSv1_2)
client.on_connect = on_connect
try:
    client.connect(args.host, args.port)
except OSError as e:
    print(f"Cannot reach {args.host}:{args.port}: {e}", flush=True)
    sys.exit(2)
client.loop_start()
sent = 0
try:
    while args.count == 0 or sent < args.count:
        info = client.publish(args.topic, "MQTT Test", qos=0)
        sent += 1
        print(f"Sent: MQTT Test -> {args.topic} ({mqtt.error_string(info.rc)})", flush=True)
        time.sleep(args.interval)
        rc = state["connack"]
        status = "no answer yet" if rc is None else mqtt.connack_string(rc)
        print(f"Msg: {status}", flush=True)
except KeyboardInterrupt:
    pass
client.disconnect()
client.loop_stop()
sys.exit(0 if state["connack"] == 0 else 1)
