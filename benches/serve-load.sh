#!/usr/bin/env bash
# Authorization answers of `mqtt-policy serve` per second, and their latency, on keep-alive connections
# (benches/serve-load.rs, one thread driving every connection on epoll, as wrk does): the tutorial's acl
# file, POST /emqx/authz publish checks of user1 (alternately allowed and denied, so half are audited):
# 1 and 64 connections one request at a time, and 1 and 4 connections with 32 and 8 requests pipelined
# (as EMQX's HTTP connector sends them), each first as fast as answered and then paced at half that rate
# (or at SERVE_LOAD_PACE answers/s). Then, where Debian's `wrk` is installed (apt-get install wrk), the
# same requests from wrk (benches/wrk/*.lua): 64 connections, one at a time and 10 pipelined.
#   bash benches/serve-load.sh            # SERVE_LOAD_SECONDS=5 SERVE_LOAD_CASES="1x1 64x1 1x32 4x8" SERVE_LOAD_PACE=N
# A benchmark, not a test: nothing is asserted. The machine is shared; run it more than once.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cargo bench --bench serve-load --no-run --quiet 2>/dev/null || true
dir=$(mktemp -d)
serve_pid=
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
cp examples/tutorial/acl.txt "$dir/acl.txt"
./target/release/mqtt-policy serve --acl-file "$dir/acl.txt" --audit-log "$dir/audit.log" \
    --listen 127.0.0.1:0 2>"$dir/serve.log" &
serve_pid=$!
for _ in $(seq 100); do
    addr=$(sed -n 's|^mqtt-policy serve: listening on http://\(.*\)/$|\1|p' "$dir/serve.log")
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$dir/serve.log"; exit 1; }
echo "serve on $addr; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
SERVE_ADDR=$addr cargo bench --bench serve-load --quiet
if command -v wrk >/dev/null; then
    for depth in 1 10; do
        script=benches/wrk/authz.lua
        [ "$depth" = 1 ] || script=benches/wrk/authz-pipelined.lua
        rate=$(wrk -t1 -c64 -d"${SERVE_LOAD_SECONDS:-5}"s -s "$script" "http://$addr" -- "$depth" | sed -n 's/^Requests\/sec: *//p')
        echo "wrk, 64 connections, $depth pipelined: $rate answers/s"
    done
else
    echo "(no wrk: apt-get install wrk for a second opinion from a maintained load tool)"
fi
echo "audit records written: $(wc -l < "$dir/audit.log")"
