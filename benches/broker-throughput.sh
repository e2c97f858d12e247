#!/usr/bin/env bash
# Publish throughput through Debian's mosquitto, one publisher to one subscriber, QoS 0, on loopback,
# with an acl of 10,000 `pattern` lines and 10,000 `user` blocks (plus the tutorial's lines):
#   none     - no acl at all (the ceiling)
#   builtin  - mosquitto's own acl_file
#   plugin   - the same file through libmqtt_policy.so (plugin_opt_acl_file)
# Runs are alternated (none, builtin, plugin, none, ...) because the machine is shared and noisy; the
# script prints every run, the median of each mode and the ratios. A benchmark, not a test: it asserts nothing.
#
# The plugin remembers recently allowed checks (src/plugin/memo.rs): a publisher repeating one topic, as
# `mosquitto_pub -l` does, is answered from that memo after its first message. So a second part measures
# the engine itself: examples/loadgen publishes every message to another of 1,000 topics
# (bench/load/p0-K/user1, allowed by the pattern +/+/+/%u, read by `admin` through `topic readwrite #`),
# none against plugin, alternated. VARIED=0 skips it.
#
# Usage: bash benches/broker-throughput.sh [ROUNDS] [MESSAGES] [MESSAGES_FOR_BUILTIN]
#   defaults: 5 rounds, 200000 messages (none, plugin), 20000 messages (builtin, which is far slower)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
n_fast=${2:-200000}
n_slow=${3:-20000}

bash scripts/install-deps.sh
cargo build --release --quiet
cargo build --release --quiet --example loadgen
plugin="$(pwd)/target/release/libmqtt_policy.so"

work=$(mktemp -d /tmp/mqtt-policy-bench.XXXXXX)
chmod 0755 "$work"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The acl: the tutorial's pattern comes last, so a client allowed by it makes Mosquitto's built-in
# check walk every pattern before it (substituting %u/%c into a fresh string for each).
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

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
topic="bench/load/room1/bench"

config() {
    local mode=$1
    echo "listener $port 127.0.0.1"
    echo "allow_anonymous true"
    echo "user root"
    echo "max_queued_messages 1000000"
    echo "log_type error"
    case $mode in
        builtin) echo "acl_file $work/acl.txt" ;;
        plugin) echo "plugin $plugin"; echo "plugin_opt_acl_file $work/acl.txt" ;;
        none) ;;
    esac
}

run_once() {
    local mode=$1 n=$2
    config "$mode" > "$work/$mode.conf"
    mosquitto -c "$work/$mode.conf" 2>"$work/$mode.log" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    timeout 300 mosquitto_sub -h 127.0.0.1 -p "$port" -u bench -i bench-sub -t "$topic" -C "$n" -q 0 >/dev/null &
    local sub=$!
    sleep 0.3
    local start end
    start=$(date +%s.%N)
    seq "$n" | mosquitto_pub -h 127.0.0.1 -p "$port" -u bench -i bench-pub -t "$topic" -l -q 0
    if ! wait "$sub"; then
        echo "   $mode: subscriber did not receive $n messages within 300 s" >&2
    fi
    end=$(date +%s.%N)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    python3 -c "print(round($n / ($end - $start)))"
}

# The same flood from examples/loadgen, each message on another of 1,000 topics; prints msg/s.
run_varied() {
    local mode=$1 n=$2 out
    config "$mode" > "$work/$mode-varied.conf"
    mosquitto -c "$work/$mode-varied.conf" 2>"$work/$mode-varied.log" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    out=$(target/release/examples/loadgen flow --port "$port" --messages "$n" --qos 0 --topics 1000 --timeout 300)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    if [[ "$out" != *"lost=0"* ]]; then echo "   $mode-varied: $out" >&2; fi
    sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$out" | cut -d. -f1
}

declare -A rates
echo "mosquitto $(mosquitto -h | head -1 | awk '{print $3}'), $(nproc) cores; acl: 10,001 patterns + 10,001 users"
for r in $(seq "$rounds"); do
    for mode in none builtin plugin; do
        n=$n_fast; [ "$mode" = builtin ] && n=$n_slow
        rate=$(run_once "$mode" "$n")
        rates[$mode]="${rates[$mode]:-} $rate"
        printf 'round %d  %-8s %8s msg/s (%d messages)\n' "$r" "$mode" "$rate" "$n"
    done
done

if [ "${VARIED:-1}" != 0 ]; then
    for r in $(seq "$rounds"); do
        for mode in none plugin; do
            rate=$(run_varied "$mode" "$n_fast")
            rates[$mode-varied]="${rates[$mode-varied]:-} $rate"
            printf 'round %d  %-14s %8s msg/s (%d messages, 1,000 topics)\n' "$r" "$mode-varied" "$rate" "$n_fast"
        done
    done
fi

python3 - "${rates[none]}" "${rates[builtin]}" "${rates[plugin]}" "${rates[none-varied]:-}" "${rates[plugin-varied]:-}" <<'PY'
import statistics, sys
none, builtin, plugin = ([int(x) for x in a.split()] for a in sys.argv[1:4])
nv, pv = ([int(x) for x in a.split()] for a in sys.argv[4:6])
m = {k: statistics.median(v) for k, v in (("none", none), ("builtin", builtin), ("plugin", plugin))}
print()
for k in ("none", "builtin", "plugin"):
    print(f"median {k:<8} {m[k]:>9.0f} msg/s")
print(f"plugin / none    = {m['plugin'] / m['none']:.2f}")
print(f"plugin / builtin = {m['plugin'] / m['builtin']:.1f}x")
print(f"builtin / none   = {m['builtin'] / m['none']:.3f}")
if nv and pv:
    mn, mp = statistics.median(nv), statistics.median(pv)
    print()
    print(f"1,000 topics (examples/loadgen): median none {mn:.0f}, plugin {mp:.0f} msg/s")
    print(f"plugin / none, 1,000 topics = {mp / mn:.2f}")
PY
