#!/usr/bin/env bash
# One policy for a cluster, live (issue 12): a three-node RabbitMQ cluster from Debian's rabbitmq-server
# (its rabbitmq_mqtt and rabbitmq_auth_backend_http plugins) on loopback, each node with its own name,
# ports and data directory owned by the rabbitmq user, joined, every node asking `mqtt-policy serve`
# (the tutorial's acl file and users) over HTTP; then the tutorial's three scenarios with real MQTT
# clients (mosquitto_pub/_sub) on different nodes, and a SIGHUP of serve changing decisions on all nodes.
# Without rabbitmq_auth_backend_cache nothing is cached, so a SIGHUP counts from the next check.
# Every process it starts is stopped (nodes, their epmd on a port of its own, serve).
#
# Usage (as root: the nodes run as the rabbitmq user): bash scripts/rabbitmq-cluster.sh
# Run by tests/serve_rabbitmq_cluster.rs. Exit 0: every scenario as expected.
set -euo pipefail
cd "$(dirname "$0")/.."
MQTT_POLICY=${MQTT_POLICY:-target/release/mqtt-policy}
RABBIT=/usr/lib/rabbitmq/bin
[ -x "$RABBIT/rabbitmq-server" ] || { echo "no $RABBIT/rabbitmq-server (apt-get install rabbitmq-server)"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must run as root (the nodes run as the rabbitmq user)"; exit 2; }

dir=$(mktemp -d /tmp/mqtt-policy-rabbit.XXXXXX)
chmod 755 "$dir"
tag=$$
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
EPMD_PORT=$(free_port)
export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
serve_pid=

write_env() { # write_env N: the environment of node N, in its directory
    local n=$1 d=$dir/r$1
    cat > "$d/env.sh" <<EOF
export HOME=$d/home ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_NODENAME=r$n-$tag@localhost RABBITMQ_DIST_PORT=$(free_port)
export RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log
export RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins RABBITMQ_PID_FILE=$d/pid
export RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
EOF
}
ctl() { # ctl N ARGS: rabbitmqctl on node N
    local n=$1; shift
    # From its own directory: Erlang looks for code in the working directory first, and one the
    # rabbitmq user may not enter (a checkout under a private directory) stops the node with eacces.
    timeout 90 runuser -u rabbitmq -- bash -c 'cd "$(dirname "$0")" && . "$0"; exec "$1" -n "$RABBITMQ_NODENAME" "${@:2}"' \
        "$dir/r$n/env.sh" "$RABBIT/rabbitmqctl" "$@"
}

cleanup() {
    set +e
    for n in 1 2 3; do
        [ -f "$dir/r$n/env.sh" ] && ctl "$n" stop >/dev/null 2>&1
    done
    # Whatever did not stop: the nodes' Erlang VMs (their pid files) and their wrappers.
    for n in 1 2 3; do
        for f in "$dir/r$n/pid" "$dir/r$n/server.pid"; do
            [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
        done
    done
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    # The epmd the nodes started on our own port (never another's): the process listening there.
    for pid in $(ss -ltnpH "sport = :$EPMD_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "${KEEP:-}" = "" ]; then rm -rf "$dir"; else echo "kept $dir"; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    for n in 1 2 3; do
        echo "--- node $n log (tail)"; tail -20 "$dir/r$n/log/"*.log 2>/dev/null
        echo "--- node $n output (tail)"; tail -20 "$dir/r$n/out.log" 2>/dev/null
    done
    echo "--- serve log"; cat "$dir/serve.log"
    exit 1
}

# The policy: the tutorial's acl file and two of its users.
cp examples/tutorial/acl.txt "$dir/acl.txt"
"$MQTT_POLICY" passwd -c -b "$dir/passwd" user1 123456
"$MQTT_POLICY" passwd -b "$dir/passwd" admin admin1234
: > "$dir/serve.log"
"$MQTT_POLICY" serve --acl-file "$dir/acl.txt" --password-file "$dir/passwd" --audit-log "$dir/audit.log" \
    --listen 127.0.0.1:0 2>"$dir/serve.log" &
serve_pid=$!
serve=
for _ in $(seq 100); do
    serve=$(sed -n 's|^mqtt-policy serve: listening on http://\(.*\)/$|\1|p' "$dir/serve.log")
    [ -n "$serve" ] && break
    sleep 0.1
done
[ -n "$serve" ] || fail "serve did not start"

declare -A MQTT
for n in 1 2 3; do
    d=$dir/r$n
    mkdir -p "$d/mnesia" "$d/log" "$d/home"
    printf 'mqtt-policy-cluster-%s' "$tag" > "$d/home/.erlang.cookie"
    chmod 400 "$d/home/.erlang.cookie"
    write_env "$n"
    MQTT[$n]=$(free_port)
    cat > "$d/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(free_port)
mqtt.listeners.tcp.1 = 127.0.0.1:${MQTT[$n]}
mqtt.allow_anonymous = false
loopback_users = none
auth_backends.1 = http
auth_http.http_method = post
auth_http.user_path = http://$serve/rabbitmq/user
auth_http.vhost_path = http://$serve/rabbitmq/vhost
auth_http.resource_path = http://$serve/rabbitmq/resource
auth_http.topic_path = http://$serve/rabbitmq/topic
EOF
    echo "[rabbitmq_mqtt,rabbitmq_auth_backend_http]." > "$d/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$d"
    # A node halts when its stdin closes: it gets a fifo opened read-write, which never does.
    mkfifo "$d/stdin"
    runuser -u rabbitmq -- bash -c 'cd "$(dirname "$0")" && . "$0"; exec "$1"' "$d/env.sh" "$RABBIT/rabbitmq-server" \
        <>"$d/stdin" >"$d/out.log" 2>&1 &
    echo $! > "$d/server.pid"
done
started() { # started N: waits (90 s at most) until node N has registered and booted
    for _ in $(seq 45); do
        ctl "$1" await_startup --timeout 10 >/dev/null 2>&1 && return 0
        sleep 2
    done
    return 1
}
for n in 1 2 3; do
    started "$n" || fail "node $n did not start within 90 s"
done
for n in 2 3; do
    ctl "$n" stop_app >/dev/null && ctl "$n" join_cluster "r1-$tag@localhost" >/dev/null \
        && ctl "$n" start_app >/dev/null || fail "node $n did not join"
done
running=$(ctl 1 cluster_status --formatter json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')
[ "$running" = 3 ] || fail "$running nodes running, expected 3"
echo "three nodes joined; MQTT on ${MQTT[1]}, ${MQTT[2]}, ${MQTT[3]}; serve on $serve"

pub() { timeout 20 mosquitto_pub -h 127.0.0.1 -p "$1" -u "$2" -P "$3" -i "pub-$2-$1" -q 1 -t "$4" -m "$5" 2>&1; }

# 1. user1's message published on node 1 reaches admin subscribed on node 3.
timeout 30 mosquitto_sub -h 127.0.0.1 -p "${MQTT[3]}" -u admin -P admin1234 -i admin-sub -q 1 -t '#' -v -C 1 \
    > "$dir/sub.out" 2>&1 &
sub_pid=$!
sleep 2
pub "${MQTT[1]}" user1 123456 panama/colon/x/user1 "from node 1" || fail "user1 could not publish on node 1"
wait "$sub_pid" || fail "admin on node 3 received nothing: $(cat "$dir/sub.out")"
grep -qx 'panama/colon/x/user1 from node 1' "$dir/sub.out" || fail "admin got: $(cat "$dir/sub.out")"
echo "1. user1 on node 1 -> admin on node 3: delivered"

# 2. The wrong password is refused on every node.
for n in 1 2 3; do
    out=$(pub "${MQTT[$n]}" user1 wrong a/b/c/user1 x) && fail "a wrong password was accepted on node $n"
    grep -q "bad user name or password" <<<"$out" || fail "node $n: $out"
done
echo "2. a wrong password: refused on nodes 1, 2, 3"

# 3. user1's writes to others' topics are refused, and explained in the audit log.
for n in 1 2 3; do
    pub "${MQTT[$n]}" user1 123456 "a/b/node$n/admin" x >/dev/null && fail "user1 wrote to admin's topic on node $n"
    grep -q "\"topic\":\"a/b/node$n/admin\".*\"reason\":{\"kind\":\"no_rule_matched\"}" "$dir/audit.log" \
        || fail "no audit record for node $n: $(cat "$dir/audit.log")"
done
echo "3. user1 -> a/b/nodeN/admin: refused on nodes 1, 2, 3, each with an audit record"

# 4. A SIGHUP of serve with a changed acl changes decisions on every node (nothing cached).
printf 'pattern read +/+/+/%%u\nuser admin\ntopic readwrite #\n' > "$dir/acl.txt"
kill -HUP "$serve_pid"
for _ in $(seq 100); do grep -q "SIGHUP: reloaded" "$dir/serve.log" && break; sleep 0.1; done
grep -q "SIGHUP: reloaded" "$dir/serve.log" || fail "serve did not reload"
for n in 1 2 3; do
    pub "${MQTT[$n]}" user1 123456 "panama/colon/x/user1" x >/dev/null && fail "after SIGHUP node $n still let user1 write"
done
pub "${MQTT[2]}" admin admin1234 "panama/colon/x/user1" x >/dev/null || fail "admin could not write after SIGHUP"
echo "4. after SIGHUP (pattern read-only): user1's own writes refused on nodes 1, 2, 3; admin's allowed"
echo "PASS"
