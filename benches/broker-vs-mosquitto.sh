#!/usr/bin/env bash
# Our standalone broker (`mqtt-policy broker -c CONF`) against Debian's mosquitto 2.0.11 and, when it is
# installed (`cargo install rumqttd --version 0.20.0`, not --locked: its lockfile fails on current rustc;
# or RUMQTTD=path), the Rust peer rumqttd 0.20, in one run on the same machine. Ours and mosquitto read
# the SAME mosquitto.conf: the tutorial's password file (users hashed `$7$`,
# 101 iterations, by `mqtt-policy passwd -c -b`) and acl file (`pattern readwrite +/+/+/%u`,
# `user admin` / `topic readwrite #`), plain TCP on 127.0.0.1 (a free port), `max_connections -1`, and
# otherwise each broker's DEFAULT settings (max_queued_messages 1000, max_inflight_messages 20): what a
# user meets. With SETTINGS="default tuned" (the default) every flow case runs a second time, as an extra
# column `CASE+tuned`, with `max_queued_messages 1000000` and `max_inflight_messages WINDOW`. Cases:
#   qos0-1to1     one publisher → one subscriber, QoS 0
#   qos1-1to1     one publisher → one subscriber, QoS 1 (publisher window WINDOW, subscriber PUBACKs each)
#   qos1-persist  the same with `persistence true` (a fresh store directory each run) and a persistent
#                 subscriber (Clean Session 0, `loadgen --persistent 1`): ours writes every QoS 1 delivery
#                 to its store before the PUBACK it answers; mosquitto 2.0 keeps them in memory until its
#                 next autosave (autosave_interval 1800 s by default). Ours and mosquitto only (rumqttd
#                 has no persistence of this kind); the store's size after the run is printed.
#   fanout-1to50  one publisher → 50 subscribers (QoS FAN_QOS), deliveries per second
#   fanin-50to1   50 publishers → one subscriber (QoS FAN_QOS)
#   latency       publish -> deliver latency at a fixed moderate rate (LAT_RATE msg/s, LAT_N messages,
#                 QoS 0, one publisher, one subscriber; examples/latency.rs): p50 and p99 in microseconds
#   idle-10k      broker RSS (/proc/PID/status VmRSS) before and after IDLE_CLIENTS clients CONNECT and
#                 stay idle: bytes per connection
# Publishers are `user1` on `bench/load/pN/user1` (the acl's pattern decides every write); a single
# subscriber is `admin` on `bench/#` (the tutorial's admin), the 50 fan-out subscribers alternate admin on
# `bench/#` and user1 on `bench/+/+/user1` (read through the pattern). The load comes from
# examples/loadgen.rs: a minimal MQTT 3.1.1 client over tokio, built with
# `cargo build --release --example loadgen` (binary: target/release/examples/loadgen). The clock of a
# flow case runs from the first publish (every client connected and subscribed) to the last delivery;
# what never arrives is reported as `lost` (a broker may drop messages under overload: mosquitto does
# at QoS 0 and 1 beyond max_queued_messages; ours paces the publishers instead).
#
# rumqttd has no password file or ACL: it runs the [router] and [v4.1] sections of its default config
# (`rumqttd generate-config`: max_connections 10010, max_outgoing_packet_count 200, segments 100 MiB x 10,
# max_payload_size 20480, max_inflight_count 100) on the chosen port; the default's other listeners (v5,
# websockets, console, prometheus) are left out, they bind fixed ports. Its column is a broker doing less
# work per message (no password check, no ACL).
#
# Every run gets a fresh broker; runs alternate between the brokers (ours first in odd rounds,
# mosquitto first in even rounds) because the machine is shared and noisy; every run is bounded in time
# (RUN_TIMEOUT). The script prints each run, the medians, and ours/mosquitto per case. A benchmark, not a
# test: it asserts nothing.
#
# Usage: bash benches/broker-vs-mosquitto.sh [ROUNDS]          (default 3 rounds)
# Sizes (environment): N_QOS0=500000 N_QOS1=100000 N_FANOUT=20000 (per subscriber) N_FANIN=5000 (per
#   publisher) FAN_CLIENTS=50 FAN_QOS=0 IDLE_CLIENTS=10000 PAYLOAD=32 WINDOW=100 RUN_TIMEOUT=60
#   CASES="qos0-1to1 qos1-1to1 qos1-persist fanout-1to50 fanin-50to1 latency idle-10k" SETTINGS="default tuned"
#   KEEP_WORK=1 (keep configs and logs)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-${ROUNDS:-3}}
n_qos0=${N_QOS0:-500000}
n_qos1=${N_QOS1:-100000}
n_fanout=${N_FANOUT:-20000}
n_fanin=${N_FANIN:-5000}
fan=${FAN_CLIENTS:-50}
fan_qos=${FAN_QOS:-0}
idle_clients=${IDLE_CLIENTS:-10000}
payload=${PAYLOAD:-32}
window=${WINDOW:-100}
run_timeout=${RUN_TIMEOUT:-60}
cases=${CASES:-qos0-1to1 qos1-1to1 qos1-persist fanout-1to50 fanin-50to1 latency idle-10k}
lat_rate=${LAT_RATE:-10000}
lat_n=${LAT_N:-50000}
settings=${SETTINGS:-default tuned}

bash scripts/install-deps.sh
cargo build --release --quiet
cargo build --release --quiet --example loadgen --example latency
latency_bin="$(pwd)/target/release/examples/latency"
broker_bin="$(pwd)/target/release/mqtt-policy"
rumqttd_bin=${RUMQTTD:-$(command -v rumqttd || true)}
[ -z "$rumqttd_bin" ] && [ -x "$HOME/.cargo/bin/rumqttd" ] && rumqttd_bin="$HOME/.cargo/bin/rumqttd"
brokers="ours mosquitto"
if [ -n "$rumqttd_bin" ]; then brokers="ours mosquitto rumqttd"; else echo "rumqttd not found: its column is left out" >&2; fi
loadgen="$(pwd)/target/release/examples/loadgen"

# File descriptors: each side holds IDLE_CLIENTS sockets (the brokers inherit this limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((idle_clients + 200)) ]; then
    echo "open-file limit $(ulimit -n) is too low for $idle_clients idle clients; using $(($(ulimit -n) - 200))" >&2
    idle_clients=$(($(ulimit -n) - 200))
fi

work=$(mktemp -d /tmp/mqtt-policy-vs-mosquitto.XXXXXX)
chmod 0755 "$work"
bpid=""
lpid=""
cleanup() {
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null
    [ -n "$bpid" ] && kill "$bpid" 2>/dev/null
    wait 2>/dev/null || true
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tutorial's users and acl.
"$broker_bin" passwd -c -b "$work/users.txt" admin admin1234
"$broker_bin" passwd -b "$work/users.txt" user1 123456
"$broker_bin" passwd -b "$work/users.txt" pe.perez abc123
"$broker_bin" passwd -b "$work/users.txt" ironman jarvis123
"$broker_bin" passwd -b "$work/users.txt" Jfkennedy apolo11
printf 'pattern readwrite +/+/+/%%u\nuser admin\ntopic readwrite #\n' >"$work/acl.txt"
chmod 0644 "$work/users.txt" "$work/acl.txt"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# One config for both brokers (ours warns that it ignores `user` and `log_type`).
cat >"$work/mosquitto.conf" <<EOF
listener $port 127.0.0.1
max_connections -1
allow_anonymous false
password_file $work/users.txt
acl_file $work/acl.txt
log_type error
log_type warning
user root
EOF
# The same, with the queue limits raised (the extra `+tuned` column).
cp "$work/mosquitto.conf" "$work/tuned.conf"
printf 'max_queued_messages 1000000\nmax_inflight_messages %s\n' "$window" >>"$work/tuned.conf"
# The same, with persistence on (the qos1-persist case).
cp "$work/mosquitto.conf" "$work/persist.conf"
printf 'persistence true\npersistence_location %s/store/\n' "$work" >>"$work/persist.conf"
conf="$work/mosquitto.conf"
cat >"$work/rumqttd.toml" <<EOF
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "127.0.0.1:$port"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 20480
max_inflight_count = 100
dynamic_filters = true
EOF

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_secs() { # utime + stime of a process, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

start_broker() { # broker log
    local which=$1 log=$2
    if [ "$which" = ours ]; then
        "$broker_bin" broker -c "$conf" 2>>"$log" &
    elif [ "$which" = rumqttd ]; then
        "$rumqttd_bin" -c "$work/rumqttd.toml" >>"$log" 2>&1 &
    else
        mosquitto -c "$conf" 2>>"$log" &
    fi
    bpid=$!
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$bpid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "   $which did not start listening on 127.0.0.1:$port; its log:" >&2
    tail -5 "$log" >&2
    return 1
}

stop_broker() { # which log
    local which=$1 log=$2
    if ! kill -0 "$bpid" 2>/dev/null; then
        echo "   $which DIED during the run; its log:" >&2
        tail -5 "$log" >&2
    else
        kill "$bpid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
        if kill -0 "$bpid" 2>/dev/null; then
            echo "   $which did not stop within 5 s of SIGTERM; killed" >&2
            kill -9 "$bpid" 2>/dev/null || true
        fi
    fi
    wait "$bpid" 2>/dev/null || true
    bpid=""
}

flow_args() { # case -> loadgen flow arguments
    case $1 in
        qos0-1to1) echo "--pubs 1 --subs 1 --qos 0 --messages $n_qos0" ;;
        qos1-1to1) echo "--pubs 1 --subs 1 --qos 1 --messages $n_qos1" ;;
        qos1-persist) echo "--pubs 1 --subs 1 --qos 1 --messages $n_qos1 --persistent 1" ;;
        fanout-1to50) echo "--pubs 1 --subs $fan --qos $fan_qos --messages $n_fanout" ;;
        fanin-50to1) echo "--pubs $fan --subs 1 --qos $fan_qos --messages $n_fanin" ;;
    esac
}

results="$work/results.tsv"
: >"$results"

run_flow() { # round case which [label]
    local r=$1 c=$2 which=$3 log="$work/$3.log" out label=${4:-$2}
    rm -rf "$work/store" && mkdir "$work/store"
    start_broker "$which" "$log" || { echo -e "$label\t$which\t$r\tFAIL\t0\t0" >>"$results"; return 0; }
    # shellcheck disable=SC2046
    out=$(timeout $((run_timeout + 30)) "$loadgen" flow --port "$port" --payload "$payload" \
        --window "$window" --timeout "$run_timeout" $(flow_args "$c") 2>&1) || out="$out (loadgen exit $?)"
    local cpu hwm
    cpu=$(cpu_secs "$bpid")
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$bpid/status" 2>/dev/null || echo 0)
    stop_broker "$which" "$log"
    local store=""
    [ "$c" = qos1-persist ] && store=", store $(du -sk "$work/store" | cut -f1) KiB after it stopped ($(ls "$work/store" | tr '\n' ' '))"
    local rate lost secs received expected
    rate=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$out")
    lost=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' <<<"$out")
    secs=$(sed -n 's/.*secs=\([0-9.]*\) .*/\1/p' <<<"$out" | head -1)
    received=$(sed -n 's/.*received=\([0-9]*\).*/\1/p' <<<"$out")
    expected=$(sed -n 's/.*expected=\([0-9]*\).*/\1/p' <<<"$out")
    if [ -z "$rate" ]; then
        printf 'round %d  %-20s %-9s FAILED: %s\n' "$r" "$label" "$which" "$out"
        echo -e "$label\t$which\t$r\tFAIL\t0\t$cpu" >>"$results"
        return 0
    fi
    printf 'round %d  %-20s %-9s %9s deliveries/s  %s/%s received, lost %s, %s s, broker cpu %s s, peak RSS %s KiB%s\n' \
        "$r" "$label" "$which" "$rate" "$received" "$expected" "$lost" "$secs" "$cpu" "$hwm" \
        "$(grep -o ' errors=.*' <<<"$out" || true)$store"
    echo -e "$label\t$which\t$r\t$rate\t$lost\t$cpu" >>"$results"
}

run_latency() { # round which
    local r=$1 which=$2 log="$work/$2.log" out
    conf="$work/mosquitto.conf"
    start_broker "$which" "$log" || { echo -e "latency-p50-us\t$which\t$r\tFAIL\t0\t0" >>"$results"; return 0; }
    out=$(timeout $((run_timeout + 30)) "$latency_bin" --port "$port" --rate "$lat_rate" --messages "$lat_n" \
        --payload "$payload" --timeout "$run_timeout" 2>&1) || out="$out (latency exit $?)"
    stop_broker "$which" "$log"
    local p50 p99 max received
    p50=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$out")
    p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
    max=$(sed -n 's/.*max_us=\([0-9]*\).*/\1/p' <<<"$out")
    received=$(sed -n 's/.*received=\([0-9]*\).*/\1/p' <<<"$out")
    if [ -z "$p50" ]; then
        printf 'round %d  %-20s %-9s FAILED: %s\n' "$r" latency "$which" "$out"
        echo -e "latency-p50-us\t$which\t$r\tFAIL\t0\t0" >>"$results"
        return 0
    fi
    printf 'round %d  %-20s %-9s p50 %s us, p99 %s us, max %s us (%s/%s received at %s msg/s)\n' \
        "$r" latency "$which" "$p50" "$p99" "$max" "$received" "$lat_n" "$lat_rate"
    echo -e "latency-p50-us\t$which\t$r\t$p50\t$((lat_n - received))\t0" >>"$results"
    echo -e "latency-p99-us\t$which\t$r\t$p99\t$((lat_n - received))\t0" >>"$results"
}

run_idle() { # round which
    local r=$1 which=$2 log="$work/$2.log" out="$work/idle.out"
    conf="$work/mosquitto.conf"
    start_broker "$which" "$log" || { echo -e "idle-10k\t$which\t$r\tFAIL\t0\t0" >>"$results"; return 0; }
    sleep 0.5
    local before after closed
    before=$(rss_kb "$bpid")
    : >"$out"
    timeout $((run_timeout + 30)) "$loadgen" idle --port "$port" --clients "$idle_clients" \
        --hold "$run_timeout" >"$out" 2>&1 &
    lpid=$!
    for _ in $(seq $((run_timeout * 10))); do
        grep -q READY "$out" && break
        kill -0 "$lpid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 3 # let the broker settle
    after=$(rss_kb "$bpid")
    local status alive
    status=$(head -1 "$out")
    alive=$(grep -o 'alive=[0-9]*' "$out" | tail -1 | cut -d= -f2)
    kill "$lpid" 2>/dev/null || true
    wait "$lpid" 2>/dev/null || true
    lpid=""
    sleep 1
    closed=$(rss_kb "$bpid")
    stop_broker "$which" "$log"
    local connected
    connected=$(sed -n 's/.*connected=\([0-9]*\).*/\1/p' <<<"$status")
    if [ -z "$connected" ] || [ "$connected" = 0 ]; then
        printf 'round %d  %-13s %-9s FAILED: %s\n' "$r" idle-10k "$which" "$(head -3 "$out")"
        echo -e "idle-10k\t$which\t$r\tFAIL\t0\t0" >>"$results"
        return 0
    fi
    local per=$(((after - before) * 1024 / connected))
    printf 'round %d  %-13s %-9s %9s bytes/conn  RSS %d KiB -> %d KiB with %s clients (%s still connected), %d KiB after they left  [%s]\n' \
        "$r" idle-10k "$which" "$per" "$before" "$after" "$connected" "${alive:-?}" "$closed" "$status"
    echo -e "idle-10k\t$which\t$r\t$per\t$((idle_clients - ${alive:-0}))\t0" >>"$results"
}

echo "ours: $("$broker_bin" --version 2>/dev/null || echo mqtt-policy) vs mosquitto $(mosquitto -h | head -1 | awk '{print $3}'); $(nproc) cores; port $port"
echo "settings: $settings (tuned: max_queued_messages 1000000, max_inflight_messages $window)"
echo "sizes: qos0 $n_qos0, qos1 $n_qos1 (window $window), fan-out $n_fanout x $fan subscribers, fan-in $fan x $n_fanin (QoS $fan_qos), $idle_clients idle clients, payload $payload B, $rounds rounds"
for r in $(seq "$rounds"); do
    # Alternated: forwards in odd rounds, backwards in even ones.
    if [ $((r % 2)) = 1 ]; then order=$brokers; else order=$(tr ' ' '\n' <<<"$brokers" | tac | tr '\n' ' '); fi
    for c in $cases; do
        for which in $order; do
            if [ "$c" = idle-10k ]; then run_idle "$r" "$which"; continue; fi
            if [ "$c" = latency ]; then run_latency "$r" "$which"; continue; fi
            for set in $settings; do
                # rumqttd has its own config: one column.
                if [ "$which" = rumqttd ] && [ "$set" = tuned ]; then continue; fi
                if [ "$c" = qos1-persist ]; then
                    # Default settings only; rumqttd has no persistence of this kind.
                    if [ "$which" = rumqttd ] || [ "$set" = tuned ]; then continue; fi
                    conf="$work/persist.conf"; label=$c
                elif [ "$set" = tuned ]; then conf="$work/tuned.conf"; label="$c+tuned"; else conf="$work/mosquitto.conf"; label=$c; fi
                run_flow "$r" "$c" "$which" "$label"
            done
        done
    done
done

echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cases = []
for c, *_ in rows:
    if c not in cases:
        cases.append(c)
print(f"{'case':<21}{'ours (median)':>16}{'mosquitto':>14}{'rumqttd':>14}{'ours/mosq':>11}{'ours/rumq':>11}   lost (ours / mosquitto / rumqttd, all rounds)   broker cpu s (median)")
for c in cases:
    med, lost, cpu = {}, {}, {}
    for b in ("ours", "mosquitto", "rumqttd"):
        vals = [float(r[3]) for r in rows if r[0] == c and r[1] == b and r[3] != "FAIL"]
        fails = sum(1 for r in rows if r[0] == c and r[1] == b and r[3] == "FAIL")
        med[b] = statistics.median(vals) if vals else None
        lost[b] = f"{sum(int(r[4]) for r in rows if r[0] == c and r[1] == b)}" + (f" ({fails} failed)" if fails else "")
        cpus = [float(r[5]) for r in rows if r[0] == c and r[1] == b and r[3] != "FAIL"]
        cpu[b] = f"{statistics.median(cpus):.2f}" if cpus else "-"
    unit = "B/conn" if c.startswith("idle") else "us" if c.startswith("latency") else "/s"
    fmt = lambda v: "-" if v is None else f"{v:,.0f} {unit}"
    ratio = f"{med['ours'] / med['mosquitto']:.2f}" if med["ours"] and med["mosquitto"] else "-"
    ratio_r = f"{med['ours'] / med['rumqttd']:.2f}" if med["ours"] and med["rumqttd"] else "-"
    idle_note = "   (idle: 'lost' = clients not connected at the end)" if c.startswith("idle") else ""
    cpu_col = "" if c.startswith("idle") else f"{cpu['ours']} / {cpu['mosquitto']} / {cpu['rumqttd']}"
    lost_col = " / ".join(lost[b] for b in ("ours", "mosquitto", "rumqttd"))
    print(f"{c:<21}{fmt(med['ours']):>16}{fmt(med['mosquitto']):>14}{fmt(med['rumqttd']):>14}{ratio:>11}{ratio_r:>11}   {lost_col:<48}{cpu_col}{idle_note}")
print("ratios: throughput higher is better for ours; latency (microseconds) and idle-10k (bytes per connection) lower is better for ours")
PY

# What the brokers said beyond start-up and shutdown lines (timestamps stripped).
for which in $brokers; do
    log="$work/$which.log"
    [ -f "$log" ] || continue
    other=$(sed -E -e 's/^[0-9]+: //' -e 's/^[0-9TZ:.+-]+ mqtt-policy: //' "$log" |
        grep -v -e 'is not implemented by this broker and is ignored' -e '^listening on ' \
            -e '^SIGTERM: stopping' -e '^acl_file: .* rules' -e 'should not be run as root' |
        sort | uniq -c | sort -rn | head -10 || true)
    if [ -n "$other" ]; then
        echo
        echo "$which's log, other lines (count, line):"
        echo "$other"
    fi
done
