#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*) from the tests.

* acl, acl_differential: every string literal of the acl tests that looks like an acl file, and the
  tutorial's acl.txt; the differential's questions are the identities and topics of the property tests.
* passwd: the string literals of the password tests that look like password lines, the tutorial's
  users.txt, and the passwords the tests log in with.
* conf: the config files of the examples and the literals of the tests that look like mosquitto.conf.
* codec, router: every packet type of MQTT 3.1, 3.1.1 and 5 as the codec tests build them (CONNECT with
  and without Will, username and password; PUBLISH at QoS 0-2; the four acks; SUBSCRIBE; UNSUBSCRIBE;
  PINGREQ; DISCONNECT; AUTH), the malformed packets of tests/broker_malformed.rs, and for the router the
  conversations of src/broker/router/tests.rs: connect, subscribe, publish, acknowledge, disconnect,
  reconnect to a persistent session, reload.
* plugin: the calls of src/plugin/callbacks/tests.rs.

Run from anywhere: `python3 fuzz/seeds.py`. It replaces the files named seed-* and leaves the others
(inputs a fuzzing run found and that were kept on purpose) alone.
"""

import hashlib
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def literals(path):
    """The string literals of a Rust file, unescaped (plain and raw strings)."""
    text = read(path).decode()
    out = []
    for m in re.finditer(r'r(#+)"(.*?)"\1|"((?:[^"\\]|\\.)*)"', text, re.S):
        if m.group(2) is not None:
            out.append(m.group(2).encode())
            continue
        s = m.group(3)
        s = re.sub(r"\\\n\s*", "", s)
        b = bytearray()
        i = 0
        while i < len(s):
            c = s[i]
            if c != "\\":
                b += c.encode()
                i += 1
                continue
            e = s[i + 1]
            if e == "x":
                b.append(int(s[i + 2 : i + 4], 16))
                i += 4
                continue
            if e == "u":
                end = s.index("}", i)
                b += chr(int(s[i + 3 : end], 16)).encode()
                i = end + 1
                continue
            b += {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}.get(
                e, ("\\" + e).encode())
            i += 2
        out.append(bytes(b))
    return out


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.startswith("seed-"):
            os.remove(os.path.join(d, name))
    unique = {hashlib.sha1(s).hexdigest()[:16]: s for s in seeds}
    for h, s in sorted(unique.items()):
        with open(os.path.join(d, "seed-" + h), "wb") as f:
            f.write(s)
    print(f"{target}: {len(unique)} seeds", file=sys.stderr)


# ---------------------------------------------------------------- acl


def acl_files():
    files = [read("examples/tutorial/acl.txt")]
    for path in ["tests/acl_semantics.rs", "tests/acl_properties.rs", "tests/check_cli.rs",
                 "tests/lint_cli.rs", "src/policy/acl/explain.rs", "src/policy/acl/policy.rs",
                 "src/policy/acl/parse.rs", "src/policy/lint/tests.rs"]:
        if not os.path.exists(os.path.join(ROOT, path)):
            continue
        for lit in literals(path):
            if re.search(rb"(^|\n)\s*(topic|pattern|user)\s", lit) and len(lit) < 2000:
                files.append(lit)
    return files


QUESTIONS = b"".join(
    b"%s\t%s\t%s\n" % q
    for q in [
        (b"u1", b"c1", b"a/b"),
        (b"u1", b"u1", b"a/u1/c1"),
        (b"admin", b"c", b"$SYS/broker/load"),
        (b"e+v", b"c1", b"x-u1/b"),
        (b"a/b", b"k#1", b"a/b/k#1"),
        (b"", b"a", b"$x/a"),
    ]
) + b"c1\ta/b\nu1\tc1/u1\nc1\ta/+\nc1\t#\n"

# ---------------------------------------------------------------- passwd


def passwd_files():
    files = [read("examples/tutorial/users.txt")]
    for path in ["src/policy/passwd/tests.rs", "src/policy/passwd/argon2id.rs",
                 "src/policy/passwd/hash.rs", "src/policy/passwd/edit.rs", "tests/passwd_cli.rs"]:
        lits = literals(path)
        hashes = [l for l in lits if re.match(rb"^\$(6|7|argon2id)\$", l)]
        lines = [l for l in lits if re.search(rb"^[^\s:]*:", l) and len(l) < 3000]
        files += lines
        files += [b"user%d:%s\n" % (i, h) for i, h in enumerate(hashes)]
        files.append(b"".join(b"u%d:%s\n" % (i, h) for i, h in enumerate(hashes)))
    return files


PASSWORDS = b"123456\nsecret\n"

# ---------------------------------------------------------------- conf


def conf_files():
    files = [read("examples/tutorial/mosquitto.conf"), read("examples/tutorial/mosquitto-builtin.conf"),
             read("debian/examples/broker/mosquitto.conf"), read("debian/examples/conf.d/mqtt-policy.conf")]
    for path in ["src/broker/config.rs", "src/policy/conf.rs", "tests/broker_persistence.rs",
                 "tests/broker_queues.rs", "tests/broker_identity.rs", "tests/check_cli.rs"]:
        if not os.path.exists(os.path.join(ROOT, path)):
            continue
        for lit in literals(path):
            if re.search(rb"(^|\n)(listener|plugin|password_file|acl_file|allow_anonymous|max_\w+|persistence)\b", lit) \
                    and len(lit) < 3000:
                files.append(lit)
    return files


# ---------------------------------------------------------------- MQTT packets


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


def p_u32(pid, v):
    return bytes([pid]) + struct.pack(">I", v)


def p_u16(pid, v):
    return bytes([pid]) + struct.pack(">H", v)


def p_str(pid, s):
    return bytes([pid]) + s16(s)


def p_user(k, v):
    return b"\x26" + s16(k) + s16(v)


V31, V311, V5 = 3, 4, 5


def connect(level, client_id="c1", clean=True, user=None, password=None, will=None, keep_alive=60,
            connect_props=b"", will_props=b""):
    name = b"MQIsdp" if level == V31 else b"MQTT"
    flags = 0x02 if clean else 0
    payload = s16(client_id)
    if will:
        topic, msg, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        if level == V5:
            payload += props(will_props)
        payload += s16(topic) + s16(msg)
    if user is not None:
        flags |= 0x80
        payload += s16(user)
    if password is not None:
        flags |= 0x40
        payload += s16(password)
    body = s16(name) + bytes([level, flags]) + struct.pack(">H", keep_alive)
    if level == V5:
        body += props(connect_props)
    return packet(0x10, body + payload)


def publish(level, topic, payload=b"x", qos=0, pkid=1, retain=False, dup=False, pprops=b""):
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = s16(topic)
    if qos:
        body += struct.pack(">H", pkid)
    if level == V5:
        body += props(pprops)
    return packet(first, body + payload)


def ack(level, first, pkid, reason=None, aprops=b""):
    body = struct.pack(">H", pkid)
    if level == V5 and reason is not None:
        body += bytes([reason])
        if aprops:
            body += props(aprops)
    return packet(first, body)


def subscribe(level, pkid, filters, sprops=b""):
    body = struct.pack(">H", pkid)
    if level == V5:
        body += props(sprops)
    for f, opts in filters:
        body += s16(f) + bytes([opts])
    return packet(0x82, body)


def unsubscribe(level, pkid, filters):
    body = struct.pack(">H", pkid)
    if level == V5:
        body += props(b"")
    for f in filters:
        body += s16(f)
    return packet(0xA2, body)


PINGREQ = b"\xc0\x00"


def disconnect(level, reason=None, dprops=b""):
    if level == V5 and reason is not None:
        return packet(0xE0, bytes([reason]) + props(dprops))
    return b"\xe0\x00"


def auth(reason=0x18, method="SCRAM"):
    return packet(0xF0, bytes([reason]) + props(p_str(0x15, method)))


def every_packet(level):
    """Every client-to-server packet type, as the codec tests build them."""
    v5 = level == V5
    return [
        publish(level, "a/b", b"hello", 0),
        publish(level, "a/b", b"hello", 1, 7, retain=True,
                pprops=(p_u32(0x02, 60) + b"\x01\x01" + p_str(0x03, "text/plain") + p_str(0x08, "r/t")
                        + p_str(0x09, "corr") + p_user("a", "b") + p_u16(0x23, 1)) if v5 else b""),
        publish(level, "a/b", b"", 2, 8, dup=True),
        ack(level, 0x40, 7, 0x00 if v5 else None),
        ack(level, 0x50, 8, 0x10 if v5 else None, p_str(0x1F, "why") if v5 else b""),
        ack(level, 0x62, 8, 0x00 if v5 else None),
        ack(level, 0x70, 8, 0x92 if v5 else None),
        subscribe(level, 1, [("a/#", 0x01), ("+/b", 0x02 | (0x04 | 0x08 | 0x10 if v5 else 0))],
                  (b"\x0b" + varint(5) + p_user("k", "v")) if v5 else b""),
        subscribe(level, 2, [("$share/g/t/#", 1)]),
        unsubscribe(level, 3, ["a/#", "$share/g/t/#"]),
        PINGREQ,
        disconnect(level, 0x04 if v5 else None, p_u32(0x11, 30) + p_str(0x1F, "bye") if v5 else b""),
    ] + ([auth()] if v5 else [])


def connects(level):
    v5 = level == V5
    return [
        connect(level, "c1"),
        connect(level, "", clean=True),
        connect(level, "c2", clean=False, user="u1", password="pw1",
                will=("clients/c2/will", b"gone", 1, True),
                connect_props=(p_u32(0x11, 60) + p_u16(0x21, 10) + p_u32(0x27, 1000) + p_u16(0x22, 5)
                               + b"\x19\x01" + b"\x17\x00" + p_user("k", "v")) if v5 else b"",
                will_props=(p_u32(0x18, 5) + p_u32(0x02, 10) + b"\x01\x01") if v5 else b""),
        connect(level, "adm", user="admin", password="pw"),
    ]


MALFORMED = [
    bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([9, 2, 0, 60, 0, 0]),  # unknown protocol level
    bytes([0x36, 6, 0, 1, ord("a"), 0, 1, 0]),  # QoS 3
    bytes([0x36, 5, 0, 1, ord("a"), 0, 1]),
    bytes([0x30, 0xA0, 0x8D, 0x06]),  # a remaining length past the limit
    bytes([0x30, 5, 0, 2, ord("a"), 0, 0]),  # U+0000 in a topic
    bytes([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),  # a 5-byte remaining length
    publish(V311, "a/+", b"x"),  # a wildcard in a topic name
    publish(V311, "/".join(["a"] * 202)),  # CVE-2019-11779
    subscribe(V311, 0, [("a", 0)]),  # packet identifier 0
    subscribe(V311, 1, []),  # no filter
    subscribe(V311, 1, [("a/#/b", 0)]),
    subscribe(V5, 1, [("$share/+/a", 0)]),
    packet(0x30, s16("a") + props(b"\x01\x01\x01\x01")),  # a property twice (as MQTT 5)
    packet(0x30, s16("a") + props(p_user("k", "v") * 129)),  # CVE-2021-41039
    packet(0x32, s16("a") + b"\x00\x01" + props(b"\x0b\x01")),  # a property not allowed there
    b"\xc1\x00",  # reserved flags
    b"\x00\x00",  # reserved type
    b"\x20\x02\x00\x00",  # CONNACK from a client
]


def codec_seeds():
    seeds = []
    for level, mode in [(V31, 1), (V311, 2), (V5, 3)]:
        for c in connects(level):
            seeds.append(b"\x00" + c + b"".join(every_packet(level)))
        for p in every_packet(level):
            seeds.append(bytes([mode]) + p)
        for m in MALFORMED:
            seeds.append(bytes([mode]) + m)
            seeds.append(bytes([mode | 4]) + m)
    seeds.append(b"\x00" + connect(V311, "c1") + connect(V311, "c1"))  # a second CONNECT
    seeds.append(b"\x00" + PINGREQ)  # the first packet is not a CONNECT
    seeds.append(b"\x00" + MALFORMED[0])
    return seeds


# ---------------------------------------------------------------- router


def send(slot, data):
    """Router operation: the client in `slot` sends `data` (in pieces of at most 255 bytes)."""
    out = b""
    while data:
        piece, data = data[:255], data[255:]
        out += bytes([slot, len(piece)]) + piece
    return out


def close(slot):
    return bytes([slot | (7 << 2)])


def tick(secs):
    return bytes([8 << 2, secs])


RELOAD = bytes([9 << 2])


def answer():
    return bytes([11 << 2])


def router_seeds():
    seeds = []
    for level in (V311, V5, V31):
        sub = send(0, connect(level, "c0", user="admin", password="pw")) + answer() \
            + send(0, subscribe(level, 1, [("a/#", 2), ("public/#", 1), ("clients/#", 0)]))
        pub = send(1, connect(level, "c1", user="u1", password="pw1", clean=False,
                              will=("clients/c1/will", b"gone", 1, False))) + answer()
        talk = b"".join(send(1, p) for p in [
            publish(level, "a/b", b"m0", 0),
            publish(level, "a/b", b"m1", 1, 1),
            publish(level, "a/b", b"m2", 2, 2, retain=True),
            ack(level, 0x62, 2, 0 if level == V5 else None),
            publish(level, "a/secret", b"no", 1, 3),
            publish(level, "public/x", b"p", 0, retain=True),
        ]) + send(0, ack(level, 0x40, 1)) + send(0, ack(level, 0x50, 2)) + send(0, ack(level, 0x70, 2))
        seeds.append(b"\x00" + sub + pub + talk)
        seeds.append(b"\x01" + sub + pub + talk + close(0) + tick(30)
                     + send(0, connect(level, "c0", user="admin", password="pw", clean=False)) + answer())
        seeds.append(b"\x02" + sub + pub + talk + close(1) + tick(10) + RELOAD + tick(100))
        seeds.append(b"\x03" + pub + send(1, disconnect(level, 0x04 if level == V5 else None))
                     + send(2, connect(level, "c2")) + send(2, subscribe(level, 1, [("#", 1)])))
        seeds.append(b"\x00" + sub + send(0, unsubscribe(level, 2, ["a/#"])) + send(0, PINGREQ)
                     + send(0, disconnect(level)))
        seeds.append(b"\x00" + sub + send(0, MALFORMED[1]) + send(3, connect(level, "")))
    # The shortcuts: ready-made CONNECTs (operation 10), then packets.
    seeds.append(b"\x00" + bytes([10 << 2, 0x05]) + bytes([(10 << 2) | 1, 0x25]) + answer()
                 + send(0, subscribe(V5, 1, [("#", 2)])) + send(1, publish(V5, "a/b", b"x", 2, 5))
                 + close(1) + tick(5))
    return seeds


# ---------------------------------------------------------------- plugin


def plugin_seeds():
    NULL = b"\xff"

    def call(*strings):
        return b"\0".join(strings) + b"\0"

    acl = lambda op, user, cid, topic: call(bytes([op]), user, cid, topic)
    seeds = [
        acl(0, b"u1", b"c1", b"a/b") + acl(0, b"u1", b"c1", b"a/b"),
        call(bytes([0, 2]), b"u1", b"c1", b"a/secret"),
        call(bytes([0x80, 4]), b"admin", b"c", b"$SYS/#"),
        acl(0, NULL, b"c1", b"public/x") + acl(0, NULL, NULL, b"public/x") + acl(0, b"u1", b"c1", NULL),
        call(bytes([0, 0x10, 0, 0, 0]), b"u1", b"c1", b"a/b"),
        acl(0, b"\xc3\x28", b"c1", b"a/b"),
        call(b"\x02", b"u1", b"c1", b"127.0.0.1", b"pw1") + call(b"\x02", b"u1", b"c1", b"1.2.3.4", b"bad"),
        call(b"\x82", b"admin", b"c", NULL, b"pw") + call(b"\x02", NULL, b"c", NULL, NULL),
        call(b"\x04", b"u1", b"c1"),
        call(b"\x05\x06\x05"),
        call(b"\x06\x03", b"acl_file", b"/x", b"audit_log", b"/y", b"refuse_subscriptions", b"false"),
        call(b"\x06\x02", b"acl_file", b"a", b"acl_file", b"b"),
        call(b"\x07R") + acl(0, b"u1", b"c1", b"a/b"),
    ]
    return seeds


def main():
    write("acl", [bytes([f]) + a for a in acl_files() for f in (0, 1)])
    write("acl_differential", [bytes([f]) + a.replace(b"\0", b"") + b"\0" + QUESTIONS
                               for a in acl_files() for f in (0, 1)])
    write("passwd", [bytes([7]) + p + b"\0\0" + PASSWORDS for p in passwd_files()])
    write("conf", conf_files())
    write("codec", codec_seeds())
    write("router", router_seeds())
    write("plugin", plugin_seeds())


if __name__ == "__main__":
    main()
