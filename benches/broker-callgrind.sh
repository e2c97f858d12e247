#!/usr/bin/env bash
# Instructions our standalone broker (`mqtt-policy broker`) executes per delivery, counted by callgrind
# (deterministic, unlike the throughput of benches/broker-vs-mosquitto.sh on a shared machine). The
# broker reads the config of benches/broker-vs-mosquitto.sh: the tutorial's password and acl files
# (`pattern readwrite +/+/+/%u`, `user admin` / `topic readwrite #`) and default settings; the load is
# examples/loadgen.rs's `flow` (publisher user1, subscribers admin on `bench/#` and user1 on
# `bench/+/+/user1`). Each case runs twice, with SMALL and with LARGE messages per publisher, and the
# difference in instructions divided by the difference in deliveries is the cost of one delivery without
# start-up, connections and shutdown. A benchmark, not a test: it asserts nothing.
#
# Usage: bash benches/broker-callgrind.sh [CASE...]   (default: fanout-1to50 qos1-1to1; needs valgrind)
#   fanout-1to50  one publisher -> 50 subscribers, QoS 0 (SMALL=1000, LARGE=5000 messages)
#   qos1-1to1     one publisher -> one subscriber, QoS 1, window 100 (SMALL=5000, LARGE=20000)
#   qos0-1to1     one publisher -> one subscriber, QoS 0 (SMALL=5000, LARGE=20000)
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${*:-fanout-1to50 qos1-1to1}

command -v valgrind >/dev/null 2>&1 || {
    echo "valgrind is missing: apt-get install valgrind" >&2
    exit 1
}
cargo build --release --quiet --bin mqtt-policy
cargo build --release --quiet --example loadgen
broker="$(pwd)/target/release/mqtt-policy"
loadgen="$(pwd)/target/release/examples/loadgen"

work=$(mktemp -d /tmp/mqtt-policy-broker-callgrind.XXXXXX)
chmod 0755 "$work"
vg=""
cleanup() { [ -n "$vg" ] && kill "$vg" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$broker" passwd -c -b "$work/users.txt" admin admin1234
"$broker" passwd -b "$work/users.txt" user1 123456
printf 'pattern readwrite +/+/+/%%u\nuser admin\ntopic readwrite #\n' >"$work/acl.txt"
chmod 0644 "$work/users.txt" "$work/acl.txt"

# Prints the instructions callgrind counted for the broker under `loadgen flow ARGS...`.
count() {
    local port out="$work/callgrind.out"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf 'listener %s 127.0.0.1\nmax_connections -1\nallow_anonymous false\npassword_file %s\nacl_file %s\n' \
        "$port" "$work/users.txt" "$work/acl.txt" >"$work/broker.conf"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$broker" broker -c "$work/broker.conf" \
        2>"$work/vg.log" &
    vg=$!
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    local result
    result=$("$loadgen" flow --port "$port" --payload 32 --timeout 600 "$@" 2>&1)
    grep -q ' lost=0 ' <<<"$result" || echo "   not every message arrived: $result" >&2
    kill -TERM "$vg"
    wait "$vg" || true
    vg=""
    awk '/^totals:/ {print $2}' "$out"
}

for c in $cases; do
    case $c in
        fanout-1to50) args="--pubs 1 --subs 50 --qos 0" small=1000 large=5000 per=50 ;;
        qos1-1to1) args="--pubs 1 --subs 1 --qos 1 --window 100" small=5000 large=20000 per=1 ;;
        qos0-1to1) args="--pubs 1 --subs 1 --qos 0" small=5000 large=20000 per=1 ;;
        *) echo "unknown case $c" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    a=$(count $args --messages "$small")
    # shellcheck disable=SC2086
    b=$(count $args --messages "$large")
    printf '%-14s %s instructions per delivery  (%s messages: %s; %s messages: %s)\n' "$c" \
        "$(((b - a) / ((large - small) * per)))" "$small" "$a" "$large" "$b"
done
