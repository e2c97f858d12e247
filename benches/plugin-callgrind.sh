#!/usr/bin/env bash
# Instructions mosquitto executes per message, without an ACL and with the plugin, counted by callgrind
# (deterministic, unlike the throughput of benches/broker-throughput.sh on a shared machine). Same acl:
# 10,000 `pattern` lines and 10,000 `user` blocks; one publisher (`mosquitto_pub -l`, one topic) to one
# subscriber, QoS 0. Each mode runs twice, with 1 and with N messages, and the difference divided by N - 1
# is the cost of a message without start-up and shutdown. A benchmark, not a test: it asserts nothing.
# The whole process's count includes mosquitto's own loop, whose batching varies from run to run (and with
# an extra thread of the plugin under valgrind), so each plugin mode also reports the instructions spent
# inside the plugin's ACL callback per check, which is exact.
# Modes: `none` (no plugin), `plugin`, `metrics` (the plugin counting, with plugin_opt_metrics_listen) and
# `shadow` (the plugin with a shadow acl file, a copy of the live one: every decision compared).
#
# Usage: bash benches/plugin-callgrind.sh [MESSAGES] [MODES...]   (default 20000, all modes; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
shift || true
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(none plugin metrics shadow)

bash scripts/install-deps.sh
command -v valgrind >/dev/null 2>&1 || {
    echo "valgrind is missing: apt-get install valgrind" >&2
    exit 1
}
cargo build --release --quiet
plugin="$(pwd)/target/release/libmqtt_policy.so"

work=$(mktemp -d /tmp/mqtt-policy-callgrind.XXXXXX)
chmod 0755 "$work"
vg=""
cleanup() { [ -n "$vg" ] && kill "$vg" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work/acl.txt" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write(f"pattern readwrite site{i}/+/%u/#\n")
    f.write("pattern readwrite +/+/+/%u\n")
    f.write("user admin\ntopic readwrite #\n")
    for i in range(10000):
        f.write(f"user u{i}\ntopic readwrite home/u{i}/#\ntopic deny home/u{i}/locked\n")
PY
chmod 0644 "$work/acl.txt"
topic="bench/load/room1/bench"

# Prints the instructions callgrind counted for mosquitto in MODE passing COUNT messages.
count() {
    local mode=$1 messages=$2 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "user root"
        echo "max_queued_messages 1000000"
        echo "log_type error"
        if [ "$mode" != none ]; then echo "plugin $plugin"; echo "plugin_opt_acl_file $work/acl.txt"; fi
        if [ "$mode" = metrics ]; then echo "plugin_opt_metrics_listen 127.0.0.1:0"; fi
        if [ "$mode" = shadow ]; then echo "plugin_opt_shadow_acl_file $work/acl.txt"; fi
    } > "$work/$mode.conf"
    valgrind --tool=callgrind --callgrind-out-file="$work/$mode-$messages.out" mosquitto -c "$work/$mode.conf" 2>"$work/vg.log" &
    vg=$!
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    timeout 300 mosquitto_sub -p "$port" -u bench -i bench-sub -t "$topic" -C "$messages" >/dev/null &
    local sub=$!
    sleep 1
    seq "$messages" | mosquitto_pub -p "$port" -u bench -i bench-pub -t "$topic" -l
    wait "$sub" || echo "   $mode: the subscriber did not receive $messages messages" >&2
    sleep 0.5
    kill -INT "$vg"; wait "$vg" 2>/dev/null || true; vg=""
    sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' "$work/vg.log" | tr -d ,
}

# Prints the instructions spent inside the plugin's ACL callback (inclusive) in MODE with COUNT messages.
in_callback() {
    callgrind_annotate --inclusive=yes --threshold=100 "$work/$1-$2.out" 2>/dev/null \
        | sed -n 's/^ *\([0-9,]*\) .*plugin::ffi::on_acl_check.*/\1/p' | tr -d , | sort -n | tail -1 | grep . || echo 0
}

declare -A per
for mode in "${modes[@]}"; do
    one=$(count "$mode" 1)
    many=$(count "$mode" "$n")
    per[$mode]=$(( (many - one) / (n - 1) ))
    printf '%-7s %9d instructions per message (%d messages)' "$mode" "${per[$mode]}" "$n"
    if [ "$mode" != none ]; then
        # Two checks per message: the publisher's write and the subscriber's read.
        cb=$(( ($(in_callback "$mode" "$n") - $(in_callback "$mode" 1)) / (2 * (n - 1)) ))
        printf ', %d of them per check inside the plugin'"'"'s ACL callback' "$cb"
    fi
    echo
done
if [ -n "${per[none]:-}" ] && [ -n "${per[plugin]:-}" ]; then
    python3 -c "print(f'none / plugin = {${per[none]} / ${per[plugin]}:.3f}')"
fi
