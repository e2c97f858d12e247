#!/usr/bin/env bash
# Runs Mosquitto's own acl and password tests (from an upstream source tree's test/broker/) twice each:
# once on the broker's built-in acl_file/password_file, and once with our plugin in their place
# (`plugin_opt_refuse_subscriptions false`, the strict-compatibility switch), and prints both results side by
# side. Swapping the built-in files for the plugin must change no outcome.
#
# The vendored tarballs leave upstream's test/ out, so without MOSQUITTO_SOURCE the tests come from the
# source of the mosquitto Debian 12 ships: Debian's own copy of the upstream release, from the archive apt
# uses (scripts/fetch-upstream-tests.sh: fetched once, checked against its sha256, kept under target/).
# Each test gets a port picked here (upstream's tests take it as their first argument), and every
# `listener PORT` of their configs is bound to 127.0.0.1.
#
# Usage: bash scripts/upstream-tests.sh [BROKER] [MOSQUITTO_SOURCE]
#   BROKER            the mosquitto binary (default /usr/sbin/mosquitto; e.g. DIR/mosquitto with the DIR
#                     that `bash scripts/build-mosquitto.sh 2.0.22` prints)
#   MOSQUITTO_SOURCE  a folder with upstream's test/ (test/broker/*.py, test/mosq_test.py), for example a
#                     checkout of eclipse/mosquitto; default: Debian's 2.0.11 source, fetched
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
broker=${1:-/usr/sbin/mosquitto}
checkout=${2:-}
if [ -z "$checkout" ]; then
    checkout=$(bash "$root/scripts/fetch-upstream-tests.sh")
fi
[ -f "$checkout/test/mosq_test.py" ] || { echo "upstream-tests: $checkout/test/mosq_test.py not found" >&2; exit 2; }
[ -x "$broker" ] || { echo "upstream-tests: $broker is not an executable" >&2; exit 2; }
broker=$(realpath "$broker")
plugin="$root/target/release/libmqtt_policy.so"
[ -f "$plugin" ] || (cd "$root" && cargo build --release --quiet)

# Upstream's tests of the built-in acl_file and password_file (test/broker/Makefile's 01-connect-* and 09-*
# that do not load a test plugin of their own).
tests=(
    01-connect-allow-anonymous.py
    01-connect-uname-no-password-denied.py
    01-connect-uname-or-anon.py
    01-connect-uname-password-denied-no-will.py
    01-connect-uname-password-denied.py
    01-connect-uname-password-success-no-tls.py
    09-acl-access-variants.py
    09-acl-change.py
    09-acl-empty-file.py
    09-pwfile-parse-invalid.py
)
# The one that fails on the built-in files too: its password file holds a plaintext password, which
# Mosquitto 2.0 does not accept (upstream's runner leaves it out of its list). Any other builtin failure
# means this harness is broken, and the suite fails rather than compare two broken runs.
builtin_fails=" 01-connect-uname-password-success-no-tls.py "

work=$(mktemp -d /tmp/mqtt-policy-upstream.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
cp -r "$checkout/test" "$work/test"
mkdir -p "$work/src"
# Mosquitto started as root drops to the mosquitto user before it loads plugins, so the plugin must be
# where that user can read it: a copy in the work folder, which is opened to everyone (mktemp makes it
# 0700; the repository may sit under root's 0700 home, as on a fresh machine).
chmod 0755 "$work"
install -m 0644 "$plugin" "$work/libmqtt_policy.so"
plugin="$work/libmqtt_policy.so"

# The broker the tests start is ../../src/mosquitto (relative to test/broker): a wrapper that runs the
# real broker with a rewritten copy of the `-c FILE` config:
#   builtin: each `listener PORT` without an address gets 127.0.0.1, and `port PORT` becomes
#            `listener PORT 127.0.0.1`; nothing else changes;
#   plugin:  that, and each `acl_file X` / `password_file X` line replaced by our plugin's
#            `plugin_opt_acl_file X` / `plugin_opt_password_file X` (the `plugin` line where the first of
#            them stood, so it belongs to the same listener with per_listener_settings).
# (`-p PORT` without a config already listens on loopback only in Mosquitto 2.0.)
cat > "$work/rewrite.py" <<'PY'
import sys
mode, plugin, conf = sys.argv[1], sys.argv[2], sys.argv[3]
out, placed = [], False
for line in open(conf).read().splitlines():
    words = line.split()
    key = words[0] if words else ""
    if key == "listener" and len(words) == 2:
        out.append(line + " 127.0.0.1")
    elif key == "port" and len(words) == 2:
        out.append("listener " + words[1] + " 127.0.0.1")
    elif mode == "plugin" and key in ("acl_file", "password_file"):
        if not placed:
            out.append("plugin " + plugin)
            out.append("plugin_opt_refuse_subscriptions false")
            placed = True
        out.append("plugin_opt_" + line)
    else:
        out.append(line)
open(conf + "." + mode, "w").write("\n".join(out) + "\n")
PY
run_mode() {
    local mode=$1 t=$2
    cat > "$work/src/mosquitto" <<SH
#!/bin/sh
# -c FILE: run with the copy rewritten for this mode; other arguments unchanged.
conf=""
prev=""
for a in "\$@"; do
    if [ "\$prev" = "-c" ]; then conf="\$a"; fi
    prev="\$a"
done
if [ -n "\$conf" ]; then
    python3 "$work/rewrite.py" $mode "$plugin" "\$conf"
    set -- \$(for a in "\$@"; do if [ "\$a" = "\$conf" ]; then echo "\$conf.$mode"; else echo "\$a"; fi; done)
fi
exec "$broker" "\$@"
SH
    chmod +x "$work/src/mosquitto"
    # Upstream's tests take their port as the first argument (mosq_test.get_port); without one they use 1888.
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    (cd "$work/test/broker" && timeout 120 python3 "./$t" "$port" >"$work/$mode-$t.log" 2>&1)
}

printf '%-48s %-8s %-8s\n' "upstream test ($("$broker" -h 2>&1 | head -1 | sed 's/.*version //'))" builtin plugin
failed=0
passed=0
for t in "${tests[@]}"; do
    [ -f "$work/test/broker/$t" ] || { printf '%-48s %s\n' "$t" "MISSING from $checkout"; failed=$((failed + 1)); continue; }
    b=pass; p=pass
    run_mode builtin "$t" || b=FAIL
    run_mode plugin "$t" || p=FAIL
    printf '%-48s %-8s %-8s\n' "$t" "$b" "$p"
    expected=pass
    case "$builtin_fails" in *" $t "*) expected=FAIL ;; esac
    if [ "$b" != "$expected" ]; then
        failed=$((failed + 1))
        echo "    the built-in files gave $b where upstream's result is $expected: the harness is broken" >&2
        sed 's/^/    /' "$work/builtin-$t.log" | tail -20
    elif [ "$b" = "$p" ]; then passed=$((passed + 1)); else
        failed=$((failed + 1))
        sed 's/^/    /' "$work/plugin-$t.log" | tail -20
    fi
done
echo "upstream: $passed passed, $failed failed (a test passes when the plugin gives the built-in files' result)"
[ "$failed" = 0 ]
