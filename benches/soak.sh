#!/usr/bin/env bash
# A soak (issue 13): each broker runs MINUTES under a mixed load (examples/soak.rs: CLIENTS clients
# connecting, subscribing, publishing at QoS 0/1/2, disconnecting and coming back with clean and
# persistent sessions, some denied publishes, a probe measuring its round trip) on the tutorial's files
# with `persistence true`, while this script sends SIGHUP every minute and samples the broker's RSS and
# open file descriptors every 10 s. Brokers, one after the other (the machine has 2 cores):
#   mqtt-policy-broker        `mqtt-policy broker`
#   mosquitto-2.0.11+plugin   Debian's /usr/sbin/mosquitto with libmqtt_policy.so
#   mosquitto-2.0.11-builtin  a control, not in the default list: the same mosquitto on its built-in
#                             password_file and acl_file, no plugin
#   mosquitto-2.0.22-builtin, mosquitto-2.1.2-builtin
#                             the same control on a vendored release (built by scripts/build-mosquitto.sh)
# It fails (exit 1) on a message lost that the QoS promised, a denied publish delivered, a client error,
# the broker dying, or memory that does not level off (RSS at the end more than 10% + 8 MiB above RSS at
# half time). Not part of the test suite.
#
# Usage: bash benches/soak.sh [MINUTES]        (default 30)
# Environment: CLIENTS=10000 BROKERS="mqtt-policy-broker mosquitto-2.0.11+plugin" INTERVAL_MS=2000
# Samples are kept in target/soak/<broker>.csv (seconds,rss_kib,fds), the load's report in
# <broker>.load.log (and its client errors in .load.err), the broker's log in <broker>.log
# (mosquitto: its errors and warnings; SOAK_VERBOSE=1: our broker with -v, which logs every
# connection's end and why; SOAK_MOSQUITTO_LOG_ALL=1: mosquitto with `log_type all`, every packet).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
clients=${CLIENTS:-10000}
brokers=${BROKERS:-"mqtt-policy-broker mosquitto-2.0.11+plugin"}
interval_ms=${INTERVAL_MS:-2000}
secs=$((minutes * 60))
if [ -n "${SOAK_MOSQUITTO_LOG_ALL:-}" ]; then
    mosquitto_log_types='log_type all\n'
else
    mosquitto_log_types='log_type error\nlog_type warning\n'
fi

cargo build --release --quiet
cargo build --release --quiet --example soak
plugin="$(pwd)/target/release/libmqtt_policy.so"
mqtt_policy="$(pwd)/target/release/mqtt-policy"
soak="$(pwd)/target/release/examples/soak"
out=target/soak
mkdir -p "$out"

# Each client is a socket on both sides.
ulimit -n $((clients * 3 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/mqtt-policy-soak.XXXXXX)
chmod 0755 "$work"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

printf 'user1:123456\nadmin:admin1234\n' > "$work/users.txt"
mosquitto_passwd -U "$work/users.txt"
printf 'pattern readwrite +/+/+/%%u\nuser admin\ntopic readwrite #\n' > "$work/acl.txt"
chmod 0644 "$work/users.txt" "$work/acl.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_broker() { # name port -> sets pid
    local name=$1 port=$2 conf="$work/$1.conf" store="$work/$1-store"
    mkdir -p "$store"
    case "$name" in
        mosquitto-2.0.11+plugin)
            printf 'user root\nlistener %s 127.0.0.1\nmax_connections -1\nallow_anonymous false\npersistence true\npersistence_location %s/\nplugin %s\nplugin_opt_password_file %s\nplugin_opt_acl_file %s\nplugin_opt_audit_log %s\nlog_dest stderr\n%b' \
                "$port" "$store" "$plugin" "$work/users.txt" "$work/acl.txt" "$work/$name-audit.log" "$mosquitto_log_types" > "$conf"
            /usr/sbin/mosquitto -c "$conf" > "$work/$name.log" 2>&1 &
            pid=$! ;;
        mosquitto-*-builtin)
            # Debian's 2.0.11, or a vendored release built by scripts/build-mosquitto.sh.
            local version=${name#mosquitto-} bin=/usr/sbin/mosquitto
            version=${version%-builtin}
            if [ "$version" != 2.0.11 ]; then bin="$(bash scripts/build-mosquitto.sh "$version")/mosquitto"; fi
            printf 'user root\nlistener %s 127.0.0.1\nmax_connections -1\nallow_anonymous false\npersistence true\npersistence_location %s/\npassword_file %s\nacl_file %s\nlog_dest stderr\n%b' \
                "$port" "$store" "$work/users.txt" "$work/acl.txt" "$mosquitto_log_types" > "$conf"
            "$bin" -c "$conf" > "$work/$name.log" 2>&1 &
            pid=$! ;;
        mqtt-policy-broker)
            # The same file as for mosquitto with the plugin (the broker reads the plugin's options).
            printf 'listener %s 127.0.0.1\nmax_connections -1\nallow_anonymous false\npersistence true\npersistence_location %s/\nplugin %s\nplugin_opt_password_file %s\nplugin_opt_acl_file %s\nplugin_opt_audit_log %s\n' \
                "$port" "$store" "$plugin" "$work/users.txt" "$work/acl.txt" "$work/$name-audit.log" > "$conf"
            "$mqtt_policy" broker -c "$conf" ${SOAK_VERBOSE:+-v} > "$work/$name.log" 2>&1 &
            pid=$! ;;
        *) echo "unknown broker $name" >&2; return 1 ;;
    esac
    for _ in $(seq 1 200); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "broker $name did not start:" >&2; cat "$work/$name.log" >&2; return 1
}

status=0
echo "soak: $minutes min, $clients clients, one operation per client every ~${interval_ms} ms, $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for name in $brokers; do
    port=$(free_port)
    start_broker "$name" "$port"
    csv="$out/$name.csv"
    echo "seconds,rss_kib,fds" > "$csv"
    "$soak" --port "$port" --clients "$clients" --secs "$secs" --interval-ms "$interval_ms" \
        > "$out/$name.load.log" 2> "$out/$name.load.err" &
    load=$!
    t0=$(date +%s)
    last_hup=$t0
    broker_died=0
    while kill -0 "$load" 2>/dev/null; do
        sleep 10
        now=$(date +%s)
        if ! kill -0 "$pid" 2>/dev/null; then broker_died=1; break; fi
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
        fds=$(ls "/proc/$pid/fd" | wc -l)
        echo "$((now - t0)),$rss,$fds" >> "$csv"
        if [ $((now - last_hup)) -ge "${SOAK_HUP_SECS:-60}" ]; then kill -HUP "$pid"; last_hup=$now; fi
    done
    load_status=0
    wait "$load" || load_status=$?
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""
    cp "$work/$name.log" "$out/$name.log" 2>/dev/null || true
    summary=$(python3 - "$csv" "$out/$name.load.log" <<'EOF'
import sys
rows = [tuple(map(int, l.split(","))) for l in open(sys.argv[1]).read().split("\n")[1:] if l]
load = [l for l in open(sys.argv[2]) if l.startswith("t=")]
if not rows:
    print("no samples"); sys.exit(0)
end_t = rows[-1][0]
after_ramp = next((r for r in rows if r[0] >= 60), rows[0])
half = min(rows, key=lambda r: abs(r[0] - end_t / 2))
end = rows[-1]
p99 = [float(l.split("p99_ms=")[1]) for l in load if "p99_ms=" in l and "nan" not in l.split("p99_ms=")[1]]
grows = end[1] > half[1] * 1.10 + 8192
print(f"rss_kib start={after_ramp[1]} half={half[1]} end={end[1]} max={max(r[1] for r in rows)} "
      f"fds start={after_ramp[2]} end={end[2]} max={max(r[2] for r in rows)} "
      f"p99_ms median={sorted(p99)[len(p99)//2] if p99 else 'nan'} worst={max(p99) if p99 else 'nan'} "
      f"{'GROWS' if grows else 'levels_off'}")
EOF
)
    final=$(tail -1 "$out/$name.load.log")
    echo "$name  $final  $summary  (load $(cut -d' ' -f1 /proc/loadavg))"
    if [ "$broker_died" = 1 ]; then echo "$name: the broker died; its log:" >&2; tail -20 "$work/$name.log" >&2; status=1; fi
    if [ "$load_status" != 0 ]; then status=1; fi
    case "$summary" in *GROWS*) status=1 ;; esac
done
exit "$status"
