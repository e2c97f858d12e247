#!/usr/bin/env bash
# The main job: the course tutorial end to end, on our standalone broker (`mqtt-policy broker`, no mosquitto
# broker needed) or, with `--broker mosquitto`, on Debian's mosquitto 2.0 with the mqtt-policy plugin.
#
# Follows the tutorial as a student does: its five openssl commands word for word
# (examples/tutorial/make-certs.sh: a version 1 server certificate, the IP address as its CN, the CA's
# subject), its users hashed with `mqtt-policy passwd -U`, the broker on TLS 1.2 (127.0.0.1 only) reading its
# users.txt and acl.txt, and its own kind of clients (examples/tutorial/subscriber.py and publisher.py:
# paho-mqtt as Debian packages it, TLS 1.2, cert_reqs=CERT_NONE). Then it shows what a student should see:
# scenario 1 delivered, scenario 2 refused ("bad user name or password" on our broker, as the tutorial
# expects), scenario 3 dropped *and explained* by the audit records, what mosquitto_pub makes of the
# tutorial's certificates, and what an MQTT 5 client is told (PUBACK 0x87). Everything it starts is stopped.
#
# Usage: bash scripts/tutorial.sh [--broker mqtt-policy|mosquitto] [--port N] [--keep]
#   --broker mosquitto    runs the same files on Debian's mosquitto with our plugin (libmqtt_policy.so)
#                         instead of our broker (installing mosquitto if it is missing)
#   --keep                leaves the work directory for a look
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

port=8082
keep=0
broker=mqtt-policy
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --broker) broker=$2; shift 2 ;;
        *) echo "usage: $0 [--broker mqtt-policy|mosquitto] [--port N] [--keep]" >&2; exit 2 ;;
    esac
done
case "$broker" in mosquitto|mqtt-policy) ;; *) echo "--broker: mosquitto or mqtt-policy" >&2; exit 2 ;; esac

if [ "$broker" = mosquitto ]; then bash scripts/install-deps.sh; else bash scripts/install-deps.sh --no-broker; fi
echo "== building mqtt-policy (release)"
cargo build --release --quiet
bin="$root/target/release/mqtt-policy"
plugin="$root/target/release/libmqtt_policy.so"

# If the tutorial's port is taken, use a free one.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi

work=$(mktemp -d /tmp/mqtt-policy-tutorial.XXXXXX)
chmod 0755 "$work"
broker_pid=""
sub_pid=""
cleanup() {
    [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null || true
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$keep" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. Certificates: the tutorial's own five openssl commands (examples/tutorial/make-certs.sh), answers as in its example"
bash examples/tutorial/make-certs.sh "$work" 127.0.0.1
openssl x509 -in "$work/server.crt" -noout -subject | sed 's/^/   server.crt /'
echo "   server.crt is X.509 version $(openssl x509 -in "$work/server.crt" -noout -text | sed -n 's/.*Version: \([0-9]*\).*/\1/p'), no extensions, the CA's subject: what a student gets"

say "2. Users: the tutorial's users.txt, hashed in place with 'mqtt-policy passwd -U' (\$7\$, PBKDF2-SHA512)"
cp examples/tutorial/users.txt examples/tutorial/acl.txt "$work/"
"$bin" passwd -U "$work/users.txt"
sed 's/^\([^:]*\):\(.\{24\}\).*/   \1:\2.../' "$work/users.txt"
echo "   acl.txt:"; sed 's/^/     /' "$work/acl.txt"

touch "$work/policy.log"
chmod 0644 "$work"/*
if [ "$broker" = mosquitto ]; then
    say "3. mosquitto with the mqtt-policy plugin, TLS 1.2 on 127.0.0.1:$port"
    id mosquitto >/dev/null 2>&1 && chown mosquitto "$work/policy.log"
    cat > "$work/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous false
plugin $plugin
plugin_opt_password_file $work/users.txt
plugin_opt_acl_file $work/acl.txt
plugin_opt_audit_log $work/policy.log
cafile $work/ca.crt
keyfile $work/server.key
certfile $work/server.crt
tls_version tlsv1.2
log_dest stderr
CONF
    sed 's/^/     /' "$work/mosquitto.conf"
    mosquitto -c "$work/mosquitto.conf" 2>"$work/broker.log" &
else
    say "3. mqtt-policy broker (our standalone broker) with the tutorial's own config keys, TLS 1.2 on 127.0.0.1:$port"
    # The tutorial's persistence keys, with this run's directory for /var/lib/mosquitto/.
    cat > "$work/mosquitto.conf" <<CONF
persistence true
persistence_location $work/
listener $port 127.0.0.1
acl_file $work/acl.txt
allow_anonymous false
password_file $work/users.txt
cafile $work/ca.crt
keyfile $work/server.key
certfile $work/server.crt
tls_version tlsv1.2
CONF
    sed 's/^/     /' "$work/mosquitto.conf"
    "$bin" broker -c "$work/mosquitto.conf" --audit-log "$work/policy.log" 2>"$work/broker.log" &
fi
broker_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$work/broker.log"; echo "the broker did not start" >&2; exit 1; }
    sleep 0.1
done
if [ "$broker" = mqtt-policy ]; then
    echo "   what the broker says about the tutorial's certificate at start:"
    grep -i warning "$work/broker.log" | sed 's/^.*warning: [^ ]* /     /' | fold -s -w 110 | sed 's/^/     /' || true
    grep "persistence: " "$work/broker.log" | sed 's/^.*mqtt-policy: /   /' || true
fi
py=(/usr/bin/python3)
client_args=(--host 127.0.0.1 --port "$port" --ca "$work/ca.crt")
publisher() { "${py[@]}" examples/tutorial/publisher.py "${client_args[@]}" "$@"; }

say "The tutorial's subscriber (examples/tutorial/subscriber.py: paho-mqtt, TLS 1.2, CERT_NONE) listens on '#' as admin, QoS 1"
"${py[@]}" examples/tutorial/subscriber.py "${client_args[@]}" --user admin --passwd admin1234 --timeout 600 \
    >"$work/admin-received.txt" 2>&1 &
sub_pid=$!
for _ in $(seq 50); do grep -q "^Subscribed" "$work/admin-received.txt" && break; sleep 0.1; done
sed 's/^/   /' "$work/admin-received.txt"

received() { grep -c -F -- "Data received: MQTT Test ($1)" "$work/admin-received.txt" || true; }
status=0

say "Scenario 1 - valid user, own topic: publisher.py --user user1 --passwd 123456 --topic colombia/cundinamarca/cajica/user1"
echo "   (the tutorial's publisher sends every 2 s until Ctrl+C; here 3 messages, 0.5 s apart)"
publisher --user user1 --passwd 123456 --topic colombia/cundinamarca/cajica/user1 --count 3 --interval 0.5 | sed 's/^/   /'
sleep 0.5
n=$(received colombia/cundinamarca/cajica/user1)
echo "   the subscriber printed 'Data received: MQTT Test' $n time(s)"
[ "$n" -ge 3 ] && echo "   => DELIVERED, as expected" || { echo "   => NOT DELIVERED (unexpected)"; status=1; }

say "Scenario 2 - wrong password: publisher.py --user user1 --passwd ABCDEFG"
set +e
publisher --user user1 --passwd ABCDEFG --topic colombia/cundinamarca/cajica/user1 --count 1 --interval 0.5 | sed 's/^/   /'
rc=${PIPESTATUS[0]}
set -e
if [ "$broker" = mosquitto ]; then
    echo "   (the tutorial expects 'bad user name or password'; mosquitto 2.0 answers 5 'not authorised' and no plugin can change that;"
    echo "    run without --broker mosquitto to see our broker answer 4, 'bad user name or password')"
fi
[ "$rc" = 1 ] && echo "   => REFUSED, as expected" || { echo "   => ACCEPTED (unexpected)"; status=1; }

say "Scenario 3 - valid user, someone else's or a malformed topic"
for t in colombia/cundinamarca/bogota/user2 user1 panama/colon/user1; do
    echo "   publisher.py --user user1 --passwd 123456 --topic $t"
    publisher --user user1 --passwd 123456 --topic "$t" --count 1 --interval 0.3 | sed 's/^/     /'
done
echo "   (the publisher sees no error: MQTT 3.1.1 has no way to refuse a QoS 0 publish)"
sleep 1
for t in colombia/cundinamarca/bogota/user2 user1 panama/colon/user1; do
    n=$(received "$t")
    [ "$n" = 0 ] && echo "   the subscriber received nothing on $t => DROPPED, as expected" || { echo "   the subscriber received $t (unexpected)"; status=1; }
done

say "The same certificates with mosquitto_pub, and what an MQTT 5 client is told"
set +e
out=$(mosquitto_pub --cafile "$work/ca.crt" -h 127.0.0.1 -p "$port" -u user1 -P 123456 -t colombia/cundinamarca/cajica/user1 -m "MQTT Test" 2>&1)
set -e
echo "   mosquitto_pub --cafile ca.crt ...: ${out:-connected}"
echo "   (the tutorial gives the CA and the server the same subject, so OpenSSL takes server.crt for a self-signed"
echo "    certificate and refuses it - with mosquitto as with our broker; the tutorial's scripts do not verify)"
echo "   trusting the server's own certificate instead (--cafile server.crt), an MQTT 5 QoS 1 publish to panama/colon/user1:"
set +e
mosquitto_pub --cafile "$work/server.crt" -h 127.0.0.1 -p "$port" -V 5 -u user1 -P 123456 -t panama/colon/user1 \
    -m "MQTT Test" -q 1 -d 2>&1 | grep -i -E "PUBACK|fail|warn|error" | sed 's/^/     /'
set -e

say "...and why: the audit records ($work/policy.log)"
python3 - "$work/policy.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    where = f"topic={r['topic']} " if r.get('topic') else ""
    print(f"   {r['time']} {r['access']:<9} user={r['username']} {where}rule={r.get('rule') or '-'}")
    print(f"      {r['message']}")
PY

say "The same question without a broker: mqtt-policy check"
echo "   \$ mqtt-policy check --acl-file acl.txt --user user1 --write panama/colon/user1"
set +e
"$bin" check --acl-file "$work/acl.txt" --user user1 --write panama/colon/user1 | sed 's/^/   /'
set -e

say "Result"
if [ "$status" = 0 ]; then echo "   all three scenarios behaved as the tutorial describes, and every denial was explained"; fi
exit "$status"
