#!/usr/bin/env bash
# A login storm: CLIENTS clients whose password-file entries are `$argon2id$` hashes (Mosquitto 2.1's
# default cost: 46 MiB, t=1, each user its own password) send their CONNECT at once, twice: cold
# (nothing remembered), then all disconnect and connect again (warm: the verified-credential cache
# answers). Meanwhile a `probe` client publishes to itself every 20 ms and measures each
# publish→receive round trip. Brokers:
#   mosquitto-2.0.11+plugin  Debian's /usr/sbin/mosquitto with libmqtt_policy.so (checks inline, cache)
#   mosquitto-2.1.2+plugin   the vendored 2.1.2 (scripts/build-mosquitto.sh) with the plugin (delayed
#                            basic auth: checks on one worker per core, cache)
#   mqtt-policy-broker       `mqtt-policy broker` (checks on one worker per core, cache)
#   mosquitto-2.0.11-nocheck a control, not in the default list: Debian's mosquitto without any password
#                            check (allow_anonymous true, no plugin): what 1,000 connects cost it alone
#   mosquitto-2.0.11+plugin-backlog100, mosquitto-2.1.2+plugin-backlog100
#                            not in the default list: the plugin with `plugin_opt_listen_backlog 0`, so
#                            Mosquitto keeps its own listen backlog of 100 (the plugin raises it to 4096)
# Each prints: seconds until every CONNACK (cold/warm), logins accepted, and the probe's worst round
# trip (ms) in each phase. The load comes from examples/loginstorm.rs. Runs alternate between the
# brokers because the machine is shared and noisy; with ROUNDS > 1 the medians are printed too.
# A benchmark, not a test: it asserts nothing.
#
# Usage: bash benches/login-storm.sh [ROUNDS]       (default 1)
# Environment: CLIENTS=1000 BROKERS="mosquitto-2.0.11+plugin mosquitto-2.1.2+plugin mqtt-policy-broker"
#   RUN_TIMEOUT=900 (seconds, per broker run)
# The password file (CLIENTS argon2id hashes, hashed on every core) is made once and kept under
# target/login-storm/.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-${ROUNDS:-1}}
clients=${CLIENTS:-1000}
brokers=${BROKERS:-"mosquitto-2.0.11+plugin mosquitto-2.1.2+plugin mqtt-policy-broker"}
run_timeout=${RUN_TIMEOUT:-900}

cargo build --release --quiet
cargo build --release --quiet --example loginstorm
plugin="$(pwd)/target/release/libmqtt_policy.so"
mqtt_policy="$(pwd)/target/release/mqtt-policy"
loginstorm="$(pwd)/target/release/examples/loginstorm"
mosquitto21="$(bash scripts/build-mosquitto.sh 2.1.2 | tail -1)/mosquitto"

cache=target/login-storm
mkdir -p "$cache"
users="$(pwd)/$cache/users-$clients.txt"
if [ ! -s "$users" ]; then
    echo "hashing $((clients + 1)) argon2id passwords (once; kept in $users)..." >&2
    "$loginstorm" passwd --clients "$clients" > "$users.tmp"
    mv "$users.tmp" "$users"
fi

# Each client is a socket on both sides.
ulimit -n $((clients * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/mqtt-policy-login-storm.XXXXXX)
chmod 0755 "$work"
cp "$users" "$work/users.txt"
chmod 0644 "$work/users.txt"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_broker() { # name port -> sets pid
    local name=$1 port=$2 conf="$work/$1.conf"
    case "$name" in
        mosquitto-2.0.11-nocheck)
            printf 'user root\nlistener %s 127.0.0.1\nmax_connections -1\nallow_anonymous true\nlog_dest none\n' \
                "$port" > "$conf"
            /usr/sbin/mosquitto -c "$conf" > "$work/$name.log" 2>&1 &
            pid=$! ;;
        mosquitto-*)
            printf 'user root\nlistener %s 127.0.0.1\nmax_connections -1\nallow_anonymous false\nplugin %s\nplugin_opt_password_file %s\nlog_dest none\n' \
                "$port" "$plugin" "$work/users.txt" > "$conf"
            case "$name" in *-backlog100) echo 'plugin_opt_listen_backlog 0' >> "$conf" ;; esac
            local bin=/usr/sbin/mosquitto
            case "$name" in mosquitto-2.1.2*) bin="$mosquitto21" ;; esac
            "$bin" -c "$conf" > "$work/$name.log" 2>&1 &
            pid=$! ;;
        mqtt-policy-broker)
            printf 'listener %s 127.0.0.1\nmax_connections -1\nallow_anonymous false\npassword_file %s\n' \
                "$port" "$work/users.txt" > "$conf"
            "$mqtt_policy" broker -c "$conf" > "$work/$name.log" 2>&1 &
            pid=$! ;;
    esac
    for _ in $(seq 1 200); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "broker $name did not start:" >&2; cat "$work/$name.log" >&2; return 1
}

declare -A results
echo "login storm: $clients clients, argon2id (m=47104 KiB, t=1, p=1), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    for name in $brokers; do
        port=$(free_port)
        start_broker "$name" "$port"
        line=$(timeout "$run_timeout" "$loginstorm" storm --port "$port" --clients "$clients" --timeout "$run_timeout" || echo "failed=1")
        kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""
        echo "round $round  $name  $line  (load $(cut -d' ' -f1 /proc/loadavg))"
        results[$name]+="$line"$'\n'
    done
done

if [ "$rounds" -gt 1 ]; then
    echo "medians over $rounds rounds:"
    for name in $brokers; do
        printf '%s' "${results[$name]}" | python3 -c '
import sys, statistics
rows = [dict(kv.split("=") for kv in l.split()) for l in sys.stdin if "=" in l and "failed" not in l]
keys = ["cold_secs", "cold_worst_rt_ms", "warm_secs", "warm_worst_rt_ms"]
print(sys.argv[1], " ".join(f"{k}={statistics.median(float(r[k]) for r in rows):.3f}" for k in keys) if rows else "no runs")
' "$name"
    done
fi
