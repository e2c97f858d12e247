"""paho-mqtt's websocket transport (Debian's python3-paho-mqtt), for tests/broker_websockets.rs.

Usage: python3 ws_client.py ws|wss PORT USER PASSWORD [--ca FILE] [--sub FILTER] [--pub TOPIC=PAYLOAD]...
                           [--wait MS]
Prints one line per event, as tests/js/ws_client.js does: `connected`, `refused CODE`, `subscribed`,
`got TOPIC PAYLOAD`, `done`. Every wait is bounded.
"""
import ssl
import sys
import time

import paho.mqtt.client as mqtt

LIMIT = 10.0


def wait(predicate, limit=LIMIT):
    deadline = time.time() + limit
    while time.time() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def main():
    scheme, port, username, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rest = sys.argv[5:]
    ca, sub, pubs, linger = None, None, [], 0.5
    for flag, value in zip(rest[::2], rest[1::2]):
        if flag == "--ca":
            ca = value
        elif flag == "--sub":
            sub = value
        elif flag == "--wait":
            linger = int(value) / 1000
        elif flag == "--pub":
            topic, _, payload = value.partition("=")
            pubs.append((topic, payload))
        else:
            raise SystemExit(f"unknown flag {flag}")

    state = {}
    client = mqtt.Client(client_id=f"paho-{username}", transport="websockets")
    if scheme == "wss":
        client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLSv1_2)
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, rc: state.__setitem__("rc", rc)
    client.on_subscribe = lambda c, u, mid, q: state.__setitem__("subscribed", True)
    client.on_message = lambda c, u, m: print(f"got {m.topic} {m.payload.decode()}", flush=True)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        if not wait(lambda: "rc" in state):
            print("error timeout", flush=True)
            return 2
        if state["rc"] != 0:
            print(f"refused {state['rc']}", flush=True)
            return 1
        print("connected", flush=True)
        if sub is not None:
            client.subscribe(sub, qos=1)
            if wait(lambda: state.get("subscribed")):
                print("subscribed", flush=True)
        for topic, payload in pubs:
            client.publish(topic, payload, qos=1).wait_for_publish(LIMIT)
        time.sleep(linger)
        return 0
    finally:
        print("done", flush=True)
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
