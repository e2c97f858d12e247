#!/usr/bin/env bash
# Runs Mosquitto's own acl and password tests (from an upstream source checkout's test/broker/) twice each:
# once on the broker's built-in acl_file/password_file, and once with our plugin in their place
# (`plugin_opt_refuse_subscriptions false`, the strict-compatibility switch), and prints both results side by
# side. Swapping the built-in files for the plugin must change no outcome.
#
# Not part of the test suite: the upstream test folder is not in the vendored tarballs and cannot be fetched
# by CI. Point it at a checkout of eclipse/mosquitto (a 2.0 release branch or tag) to run it. The upstream
# tests listen on fixed ports on localhost (1888 and nearby), as upstream's own runner does.
#
# Usage: bash scripts/upstream-tests.sh MOSQUITTO_CHECKOUT [BROKER]
#   MOSQUITTO_CHECKOUT  a folder with upstream's test/ (test/broker/*.py, test/mosq_test.py)
#   BROKER              the mosquitto binary (default /usr/sbin/mosquitto; e.g. the one
#                       `bash scripts/build-mosquitto.sh 2.0.22` prints the folder of)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
checkout=${1:?usage: $0 MOSQUITTO_CHECKOUT [BROKER]}
broker=${2:-/usr/sbin/mosquitto}
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

work=$(mktemp -d /tmp/mqtt-policy-upstream.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
cp -r "$checkout/test" "$work/test"
mkdir -p "$work/src"

# The broker the tests start is ../../src/mosquitto (relative to test/broker). Two stand-ins:
#   builtin: the real broker, config unchanged;
#   plugin:  the real broker, with each `acl_file X` / `password_file X` line of the config replaced by
#            our plugin's `plugin_opt_acl_file X` / `plugin_opt_password_file X` (the `plugin` line where
#            the first of them stood, so it belongs to the same listener with per_listener_settings).
cat > "$work/rewrite.py" <<'PY'
import os, sys
plugin, conf = sys.argv[1], sys.argv[2]
out, placed = [], False
for line in open(conf).read().splitlines():
    key = line.split(None, 1)[0] if line.strip() else ""
    if key in ("acl_file", "password_file"):
        if not placed:
            out.append("plugin " + plugin)
            out.append("plugin_opt_refuse_subscriptions false")
            placed = True
        out.append("plugin_opt_" + line)
    else:
        out.append(line)
open(conf + ".plugin", "w").write("\n".join(out) + "\n")
PY
run_mode() {
    local mode=$1 t=$2
    if [ "$mode" = builtin ]; then
        printf '#!/bin/sh\nexec %q "$@"\n' "$broker" > "$work/src/mosquitto"
    else
        cat > "$work/src/mosquitto" <<SH
#!/bin/sh
# -c FILE: rewrite FILE for the plugin; other arguments unchanged.
args=""
conf=""
prev=""
for a in "\$@"; do
    if [ "\$prev" = "-c" ]; then conf="\$a"; fi
    prev="\$a"
done
if [ -n "\$conf" ]; then
    python3 "$work/rewrite.py" "$plugin" "\$conf"
    set -- \$(for a in "\$@"; do if [ "\$a" = "\$conf" ]; then echo "\$conf.plugin"; else echo "\$a"; fi; done)
fi
exec "$broker" "\$@"
SH
    fi
    chmod +x "$work/src/mosquitto"
    (cd "$work/test/broker" && timeout 120 python3 "./$t" >"$work/$mode-$t.log" 2>&1)
}

printf '%-48s %-8s %-8s\n' "upstream test ($("$broker" -h 2>&1 | head -1 | sed 's/.*version //'))" builtin plugin
failed=0
passed=0
for t in "${tests[@]}"; do
    [ -f "$work/test/broker/$t" ] || { printf '%-48s %s\n' "$t" "not in this checkout"; continue; }
    b=pass; p=pass
    run_mode builtin "$t" || b=FAIL
    run_mode plugin "$t" || p=FAIL
    printf '%-48s %-8s %-8s\n' "$t" "$b" "$p"
    if [ "$b" = "$p" ]; then passed=$((passed + 1)); else
        failed=$((failed + 1))
        sed 's/^/    /' "$work/plugin-$t.log" | tail -20
    fi
done
echo "upstream: $passed passed, $failed failed (a test passes when the plugin gives the built-in files' result)"
[ "$failed" = 0 ]
