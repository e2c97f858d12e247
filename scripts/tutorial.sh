#!/usr/bin/env bash
# The main job: the course tutorial end to end, on our standalone broker (`mqtt-policy broker`, no mosquitto
# broker needed) or, with `--broker mosquitto`, on Debian's mosquitto 2.0 with the mqtt-policy plugin.
#
# Makes a private CA and a server certificate, hashes the tutorial's users with `mqtt-policy passwd -U`,
# starts the broker on TLS 1.2 (127.0.0.1 only) reading the tutorial's users.txt and acl.txt, runs the three
# scenarios with real clients (mosquitto_pub/mosquitto_sub) and shows what a student should see: scenario 1
# delivered, scenario 2 refused (CONNACK 4 on our broker, as the tutorial expects), scenario 3 refused *and
# explained* by the audit records, and what an MQTT 5 client is told (PUBACK 0x87). Everything it starts is
# stopped at the end.
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

say "1. Certificates: a private CA and a server certificate for 127.0.0.1 (TLS 1.2)"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mqtt-policy tutorial CA" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 30 -extfile "$work/san.ext" -out "$work/server.crt" 2>/dev/null
echo "   $work/ca.crt, server.crt, server.key"

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
    cat > "$work/mosquitto.conf" <<CONF
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
tls=(--cafile "$work/ca.crt" -h 127.0.0.1 -p "$port")

say "An admin subscriber listens on '#' (QoS 1)"
mosquitto_sub "${tls[@]}" -u admin -P admin1234 -t '#' -q 1 -v >"$work/admin-received.txt" 2>&1 &
sub_pid=$!
sleep 1

pub() { mosquitto_pub "${tls[@]}" "$@"; }
received() { grep -c -- "^$1 MQTT Test" "$work/admin-received.txt" || true; }
status=0

say "Scenario 1 - valid user, own topic: user1 publishes 'MQTT Test' to colombia/cundinamarca/cajica/user1"
for _ in 1 2 3; do pub -u user1 -P 123456 -t colombia/cundinamarca/cajica/user1 -m "MQTT Test" -q 1; sleep 0.5; done
sleep 0.5
n=$(received colombia/cundinamarca/cajica/user1)
echo "   admin received it $n time(s)"
[ "$n" -ge 3 ] && echo "   => DELIVERED, as expected" || { echo "   => NOT DELIVERED (unexpected)"; status=1; }

say "Scenario 2 - wrong password: user1 / ABCDEFG"
set +e
out=$(pub -u user1 -P ABCDEFG -t colombia/cundinamarca/cajica/user1 -m "MQTT Test" 2>&1); rc=$?
out5=$(pub -V 5 -u user1 -P ABCDEFG -t colombia/cundinamarca/cajica/user1 -m "MQTT Test" 2>&1)
set -e
echo "   MQTT 3.1.1: $out (exit $rc)"
echo "   MQTT 5:     $out5"
if [ "$broker" = mosquitto ]; then
    echo "   (the tutorial expects CONNACK 4; mosquitto 2.0 answers 5 / 0x87 'not authorised' and no plugin can change that;"
    echo "    run without --broker mosquitto to see our broker answer 4 / 0x86 'bad user name or password')"
fi
[ "$rc" -ne 0 ] && echo "   => REFUSED, as expected" || { echo "   => ACCEPTED (unexpected)"; status=1; }

say "Scenario 3 - valid user, someone else's or a malformed topic"
for t in colombia/cundinamarca/bogota/user2 user1 panama/colon/user1; do
    pub -u user1 -P 123456 -t "$t" -m "MQTT Test" -q 0
    echo "   user1 -> $t: mosquitto_pub says nothing (MQTT 3.1.1 cannot refuse a publish)"
done
echo "   what an MQTT 5 client is told for a QoS 1 publish:"
set +e
pub -V 5 -u user1 -P 123456 -t panama/colon/user1 -m "MQTT Test" -q 1 -d 2>&1 | grep -i -E "PUBACK|fail|warn" | sed 's/^/     /'
set -e
sleep 1
for t in colombia/cundinamarca/bogota/user2 user1 panama/colon/user1; do
    n=$(received "$t")
    [ "$n" = 0 ] && echo "   admin received nothing on $t => DROPPED, as expected" || { echo "   admin received $t (unexpected)"; status=1; }
done

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
