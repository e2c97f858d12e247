#!/usr/bin/env bash
# The Debian package, installed for real: builds it (scripts/package.sh), installs it with dpkg (root),
# and checks what it installed: Debian's own mosquitto runs the tutorial's three scenarios through the
# INSTALLED plugin (/usr/lib/libmqtt_policy.so, through a conf.d file made from the shipped example),
# the man pages and completions work, the systemd unit's command line runs as the unit would (its user,
# NOTIFY_SOCKET: READY=1, RELOADING=1/READY=1 on SIGHUP, STOPPING=1), and `dpkg -r` / `dpkg --purge`
# leave behind only what README.md says they do.
#
# It changes the system (a package, the user mqtt-policy, /etc/mqtt-policy), so it is a script run by
# scripts/test.sh after `cargo test`, not a cargo test. Whatever happens, everything it started is
# stopped and the package is purged. Needs root, mosquitto, mosquitto-clients, openssl, python3, man.
#
# Usage: bash scripts/test-package.sh [--deb FILE]   (--deb: test this .deb instead of building one)
set -uo pipefail
cd "$(dirname "$0")/.."

deb=""
while [ $# -gt 0 ]; do
    case "$1" in
        --deb) deb=$2; shift 2 ;;
        *) echo "usage: $0 [--deb FILE]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "test-package.sh installs a package: it needs root" >&2
    exit 1
fi
for tool in dpkg dpkg-deb readelf mosquitto mosquitto_pub mosquitto_sub openssl python3 man setpriv; do
    command -v "$tool" >/dev/null || { echo "test-package.sh: $tool is missing" >&2; exit 1; }
done

pkg=mqtt-policy
unit=mqtt-policy-broker.service
work=$(mktemp -d /tmp/mqtt-policy-package.XXXXXX)
chmod 0755 "$work"
pids=()
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "  ok    $1"; }
not_ok() { failed=$((failed + 1)); echo "  FAIL  $1"; }
# check DESCRIPTION COMMAND...: runs COMMAND, counts and prints the result.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
say() { printf '\n== %s\n' "$*"; }
installed() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q -v 'not-installed'; }

cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if installed; then
        echo "cleanup: dpkg --purge $pkg"
        dpkg --purge "$pkg" >/dev/null 2>&1 || echo "cleanup: dpkg --purge $pkg failed" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_port PORT PID: until 127.0.0.1:PORT accepts (10 s at most) while PID lives.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# wait_for FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN.
wait_for() {
    local tries=$(( ${3:-10} * 10 ))
    for _ in $(seq "$tries"); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# An ELF file without debug sections, and stripped (no symbol table but the dynamic one).
no_debug_info() { ! readelf -S "$1" | grep -E '\.debug_(info|line)' >/dev/null; }
stripped() { no_debug_info "$1" && ! readelf -S "$1" | grep -E ' \.symtab ' >/dev/null; }

say "Building the package (scripts/package.sh)"
if [ -z "$deb" ]; then
    if ! bash scripts/package.sh > "$work/package.log" 2>&1; then
        tail -n 30 "$work/package.log"
        not_ok "scripts/package.sh builds the package"
        echo "package: $passed passed, $failed failed"
        exit 1
    fi
    deb=$(tail -n 1 "$work/package.log")
fi
ddeb=$(ls "$(dirname "$deb")"/"$pkg"-dbgsym_*.ddeb 2>/dev/null | head -n 1)
echo "  $deb"
check "the package is target/debian/mqtt-policy_<version>_amd64.deb, <version> the crate's" \
    bash -c '[ "$(basename "$1")" = "mqtt-policy_$(sed -n "s/^version = \"\(.*\)\"/\1/p" Cargo.toml | head -n 1)_amd64.deb" ]' _ "$deb"

say "Installing it (dpkg -i)"
if installed; then
    echo "  an earlier $pkg is installed: purging it first"
    dpkg --purge "$pkg" >/dev/null
fi
# What existed before, to tell after the purge what the package made.
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|; s|/$||' | grep -v '^$' | sort -u > "$work/contents.txt"
while read -r f; do [ -e "$f" ] && echo "$f"; done < "$work/contents.txt" > "$work/existed-before.txt"
for d in /etc/mosquitto /etc/systemd/system; do
    find "$d" -mindepth 1 -exec ls -ld --time-style=full-iso {} + 2>/dev/null
done | sort > "$work/etc-before.txt"
had_user=no
getent passwd mqtt-policy >/dev/null && had_user=yes
check "dpkg -i installs it" bash -c 'dpkg -i "$1" > "$2" 2>&1 || { cat "$2"; exit 1; }' _ "$deb" "$work/dpkg-i.log"
dpkg -L "$pkg" | sort > "$work/dpkg-L.txt"
check "/usr/lib/libmqtt_policy.so is installed (CONTRACT.md) and stripped (no .symtab, no .debug_*)" \
    stripped /usr/lib/libmqtt_policy.so
check "/usr/bin/mqtt-policy is installed and runs" \
    bash -c '/usr/bin/mqtt-policy --version | grep -q "^mqtt-policy "'
check "...stripped" stripped /usr/bin/mqtt-policy
check "...its debug info is in the dbgsym package, under the build ids of both" bash -c '
    [ -n "$1" ] || exit 1
    for f in /usr/bin/mqtt-policy /usr/lib/libmqtt_policy.so; do
        id=$(readelf -n "$f" | sed -n "s/.*Build ID: //p")
        dpkg-deb -c "$1" | grep "usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" >/dev/null || exit 1
    done' _ "$ddeb"
for page in man1/mqtt-policy.1 man1/mqtt-policy-check.1 man1/mqtt-policy-passwd.1 man1/mqtt-policy-broker.1 \
    man5/mqtt-policy-plugin.5; do
    check "man page /usr/share/man/$page.gz" test -f "/usr/share/man/$page.gz"
done
check "completions at Debian's paths (bash, zsh, fish)" test -f /usr/share/bash-completion/completions/mqtt-policy \
    -a -f /usr/share/zsh/vendor-completions/_mqtt-policy -a -f /usr/share/fish/vendor_completions.d/mqtt-policy.fish
for f in tutorial/mosquitto.conf tutorial/mosquitto-builtin.conf tutorial/users.txt tutorial/acl.txt \
    conf.d/mqtt-policy.conf broker/mosquitto.conf; do
    check "example /usr/share/doc/mqtt-policy/examples/$f" test -f "/usr/share/doc/mqtt-policy/examples/$f"
done
check "the unit /usr/lib/systemd/system/$unit" test -f "/usr/lib/systemd/system/$unit"
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify accepts the unit" \
        bash -c 'out=$(systemd-analyze verify "$1" 2>&1); [ -z "$out" ] || { echo "$out"; exit 1; }' _ "/usr/lib/systemd/system/$unit"
fi
check "the unit is neither enabled nor started (no symlink to it in /etc/systemd/system)" \
    bash -c '! find /etc/systemd/system -name "$1" | grep -q .' _ "$unit"
check "nothing in /etc/mosquitto or /etc/systemd/system changed (a running broker keeps its security)" \
    bash -c 'for d in /etc/mosquitto /etc/systemd/system; do find "$d" -mindepth 1 -exec ls -ld --time-style=full-iso {} + 2>/dev/null; done | sort | diff "$1" -' _ "$work/etc-before.txt"
check "no file of the package is a conffile (it installs nothing in /etc)" \
    bash -c '[ -z "$(dpkg-query -W -f="\${Conffiles}" "$1")" ]' _ "$pkg"
check "the system user mqtt-policy exists, without a login shell" \
    bash -c 'getent passwd mqtt-policy | grep -q ":/usr/sbin/nologin$"'
check "/etc/mqtt-policy is root:mqtt-policy 0750" \
    bash -c '[ "$(stat -c "%U:%G %a" /etc/mqtt-policy)" = "root:mqtt-policy 750" ]'
uid_before=$(id -u mqtt-policy 2>/dev/null)
check "installing it again (as an upgrade does) succeeds and keeps the user" bash -c '
    dpkg -i "$1" > "$2" 2>&1 || { cat "$2"; exit 1; }
    [ "$(id -u mqtt-policy)" = "$3" ]' _ "$deb" "$work/dpkg-i2.log" "$uid_before"

say "Certificates and users for the brokers (the tutorial's users.txt, hashed by the installed mqtt-policy)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mqtt-policy package test CA" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
    -extfile "$work/san.ext" -out "$work/server.crt" 2>/dev/null
cp /usr/share/doc/mqtt-policy/examples/tutorial/users.txt /usr/share/doc/mqtt-policy/examples/tutorial/acl.txt "$work/"
check "mqtt-policy passwd -U hashes the tutorial's users.txt" \
    bash -c '/usr/bin/mqtt-policy passwd -U "$1" >/dev/null 2>&1 && grep -q "^user1:[$]7[$]" "$1"' _ "$work/users.txt"

say "Debian's mosquitto with the installed plugin, through the shipped conf.d example"
mkdir -p "$work/mosquitto/conf.d"
sed -e "s|/etc/mosquitto/users.txt|$work/users.txt|" -e "s|/etc/mosquitto/acl.txt|$work/acl.txt|" \
    -e "s|/var/log/mosquitto/policy.log|$work/mosquitto/policy.log|" \
    /usr/share/doc/mqtt-policy/examples/conf.d/mqtt-policy.conf > "$work/mosquitto/conf.d/mqtt-policy.conf"
check "the drop-in loads the installed plugin: 'plugin /usr/lib/libmqtt_policy.so'" \
    grep -q -x 'plugin /usr/lib/libmqtt_policy.so' "$work/mosquitto/conf.d/mqtt-policy.conf"
mport=$(free_port)
# `user root`: mosquitto started as root drops to user mosquitto otherwise, which cannot read $work.
cat > "$work/mosquitto/mosquitto.conf" <<CONF
user root
log_dest stderr
log_type all
listener $mport 127.0.0.1
cafile $work/ca.crt
certfile $work/server.crt
keyfile $work/server.key
tls_version tlsv1.2
include_dir $work/mosquitto/conf.d
CONF
mosquitto -c "$work/mosquitto/mosquitto.conf" > "$work/mosquitto/log" 2>&1 &
mpid=$!
pids+=("$mpid")
if wait_port "$mport" "$mpid"; then ok "mosquitto listens on 127.0.0.1:$mport"; else
    not_ok "mosquitto listens on 127.0.0.1:$mport"; tail -n 20 "$work/mosquitto/log"; fi
check "mosquitto loaded /usr/lib/libmqtt_policy.so" grep -q 'Loading plugin: /usr/lib/libmqtt_policy.so' "$work/mosquitto/log"
tls=(--cafile "$work/ca.crt" -h 127.0.0.1 -p "$mport")
mosquitto_sub "${tls[@]}" -u admin -P admin1234 -t '#' -q 1 -v > "$work/admin.txt" 2> "$work/admin.err" &
pids+=("$!")
wait_for "$work/mosquitto/log" "admin" 10 || true
sleep 0.5

echo "  scenario 1: user1 publishes to its own topic; the admin subscriber on # receives it"
mosquitto_pub "${tls[@]}" -u user1 -P 123456 -t colombia/cundinamarca/cajica/user1 -m "MQTT Test 1" -q 1
check "scenario 1: delivered to admin" wait_for "$work/admin.txt" '^colombia/cundinamarca/cajica/user1 MQTT Test 1$' 10

echo "  scenario 2: user1 with a wrong password"
check "scenario 2: refused (mosquitto_pub fails)" \
    bash -c '! mosquitto_pub "$@" -u user1 -P ABCDEFG -t colombia/cundinamarca/cajica/user1 -m x -q 1 2>/dev/null' _ "${tls[@]}"

echo "  scenario 3: user1 publishes to someone else's topic and to malformed ones"
for t in colombia/cundinamarca/bogota/user2 user1 panama/colon/user1; do
    mosquitto_pub "${tls[@]}" -u user1 -P 123456 -t "$t" -m "MQTT Test 3" -q 0
done
# A last message on an allowed topic: once it arrives, the three before it have been decided.
mosquitto_pub "${tls[@]}" -u user1 -P 123456 -t colombia/cundinamarca/cajica/user1 -m "after 3" -q 1
wait_for "$work/admin.txt" ' after 3$' 10 || true
for t in colombia/cundinamarca/bogota/user2 user1 panama/colon/user1; do
    check "scenario 3: $t not delivered" bash -c '! grep -q -- "^$1 " "$2"' _ "$t" "$work/admin.txt"
done
check "audit records: the wrong password and the three refused publishes" python3 - "$work/mosquitto/policy.log" <<'PY'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1])]
def has(access, topic, kind):
    return any(r["access"] == access and r.get("topic") == topic and r["username"] == "user1"
               and r["reason"]["kind"] == kind for r in records)
ok = has("connect", None, "wrong_password")
for t in ["colombia/cundinamarca/bogota/user2", "user1", "panama/colon/user1"]:
    ok = ok and has("write", t, "no_rule_matched")
if not ok:
    print("\n".join(json.dumps(r) for r in records))
sys.exit(0 if ok else 1)
PY
kill "$mpid" 2>/dev/null
wait "$mpid" 2>/dev/null

say "Man pages (man-db's man)"
for page in "1 mqtt-policy:mqtt-policy-passwd(1)" "1 mqtt-policy-check:--acl-file" "1 mqtt-policy-broker:--config-file" \
    "5 mqtt-policy-plugin:plugin_opt_audit_log"; do
    name=${page%%:*}
    want=${page#*:}
    check "man $name shows '$want'" bash -c 'LC_ALL=C MANWIDTH=100 man -P cat $1 2>/dev/null | grep -q -e "$2"' _ "$name" "$want"
done

say "Completions"
check "bash: sourcing the file registers 'complete -F ... mqtt-policy'" \
    bash -c 'source /usr/share/bash-completion/completions/mqtt-policy && complete -p mqtt-policy | grep -q -- "-F "'
check "bash: 'mqtt-policy pa<TAB>' completes to passwd" bash -c '
    source /usr/share/bash-completion/completions/mqtt-policy
    fn=$(complete -p mqtt-policy | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
    COMP_WORDS=(mqtt-policy pa); COMP_CWORD=1; COMP_LINE="mqtt-policy pa"; COMP_POINT=${#COMP_LINE}
    "$fn" mqtt-policy pa mqtt-policy
    [ "${COMPREPLY[*]}" = passwd ]'
if command -v zsh >/dev/null; then
    check "zsh: the completion file parses (zsh -n)" zsh -n /usr/share/zsh/vendor-completions/_mqtt-policy
else
    echo "  skip  zsh: not installed on this machine (the file is installed; not parsed)"
fi
if command -v fish >/dev/null; then
    check "fish: the completion file parses (fish -n)" fish -n /usr/share/fish/vendor_completions.d/mqtt-policy.fish
else
    echo "  skip  fish: not installed on this machine (the file is installed; not parsed)"
fi

say "The unit's command line, run as the unit would (its user, NOTIFY_SOCKET)"
unit_file=/usr/lib/systemd/system/$unit
exec_start=$(sed -n 's/^ExecStart=//p' "$unit_file")
unit_user=$(sed -n 's/^User=//p' "$unit_file")
unit_group=$(sed -n 's/^Group=//p' "$unit_file")
echo "  ExecStart=$exec_start"
echo "  User=$unit_user Group=$unit_group"
check "ExecStart reads /etc/mqtt-policy/mosquitto.conf" grep -q -- '-c /etc/mqtt-policy/mosquitto.conf' <<< "$exec_start"
# The configuration an administrator would write: the shipped example, its listener on a free port of
# 127.0.0.1, the files it names next to it, readable by the service's group.
bport=$(free_port)
sed "s/^listener 8883$/listener $bport 127.0.0.1/" /usr/share/doc/mqtt-policy/examples/broker/mosquitto.conf \
    > /etc/mqtt-policy/mosquitto.conf
check "the example's listener line was found and moved to 127.0.0.1:$bport" \
    grep -q -x "listener $bport 127.0.0.1" /etc/mqtt-policy/mosquitto.conf
cp "$work/ca.crt" "$work/server.crt" "$work/server.key" "$work/users.txt" "$work/acl.txt" /etc/mqtt-policy/
chgrp "$unit_group" /etc/mqtt-policy/*
chmod 0640 /etc/mqtt-policy/*
# What systemd does for StateDirectory= and LogsDirectory=.
install -d -m 0750 -o "$unit_user" -g "$unit_group" /var/lib/mqtt-policy /var/log/mqtt-policy
# The service manager's end: a datagram socket; every datagram is appended to notify.txt.
mkdir -p "$work/notify"
python3 - "$work/notify/socket" "$work/notify.txt" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.settimeout(1)
end = time.time() + 120
with open(sys.argv[2], "a") as out:
    while time.time() < end:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        out.write(data.decode(errors="replace").replace("\n", " ").strip() + "\n")
        out.flush()
PY
pids+=("$!")
for _ in $(seq 50); do [ -S "$work/notify/socket" ] && break; sleep 0.1; done
touch "$work/notify.txt"
# Without systemd here, the unit's SystemCallFilter= is checked against what the broker really calls:
# it runs under strace, and every system call it made must be in the filter.
tracer=()
if command -v strace >/dev/null && command -v systemd-analyze >/dev/null; then
    tracer=(strace -f -qq -o "$work/broker.trace")
else
    echo "  skip  the system call filter: strace or systemd-analyze is missing"
fi
# ExecStart as the unit runs it: its user and group, no capabilities, no new privileges, in its
# working directory. (Word splitting of $exec_start is what systemd does with this line: no quotes in it.)
# shellcheck disable=SC2086
(cd /var/lib/mqtt-policy && exec "${tracer[@]}" setpriv --reuid="$unit_user" --regid="$unit_group" --init-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET="$work/notify/socket" $exec_start) \
    > "$work/broker.log" 2>&1 &
spid=$!
pids+=("$spid")
bpid=$spid
if [ ${#tracer[@]} -gt 0 ]; then
    # The broker is strace's child (setpriv and env exec into it), found by its name: strace also
    # forks short-lived children of its own at start (to probe ptrace's options), and the first child
    # found may be one of them.
    bpid=""
    for _ in $(seq 50); do bpid=$(pgrep -P "$spid" -x mqtt-policy | head -n 1); [ -n "$bpid" ] && break; sleep 0.1; done
    bpid=${bpid:-$spid}
    # Killing strace would only detach it: the broker is stopped by its own pid.
    [ "$bpid" != "$spid" ] && pids+=("$bpid")
fi
if wait_for "$work/notify.txt" 'READY=1' 15; then ok "READY=1 arrives on NOTIFY_SOCKET"; else
    not_ok "READY=1 arrives on NOTIFY_SOCKET"; cat "$work/broker.log"; fi
check "...once the listener is bound: 127.0.0.1:$bport accepts at once" \
    bash -c '(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null' _ "$bport"
check "the broker runs as $unit_user" \
    bash -c '[ "$(stat -c %U "/proc/$1")" = "$2" ]' _ "$bpid" "$unit_user"
btls=(--cafile /etc/mqtt-policy/ca.crt -h 127.0.0.1 -p "$bport")
check "user1 publishes through it (TLS, the example's files)" \
    mosquitto_pub "${btls[@]}" -u user1 -P 123456 -t colombia/cundinamarca/cajica/user1 -m x -q 1
check "the example's persistence writes its store in the state directory, as the unit's user" \
    bash -c '[ "$(stat -c %U /var/lib/mqtt-policy/mqtt-policy.db 2>/dev/null)" = "$1" ]' _ "$unit_user"
check "a wrong password is refused and audited in /var/log/mqtt-policy/audit.log (writable by the unit's user)" \
    bash -c '! mosquitto_pub "$@" -u user1 -P ABCDEFG -t a/b/c/user1 -m x -q 1 2>/dev/null &&
        for _ in $(seq 50); do grep -q wrong_password /var/log/mqtt-policy/audit.log 2>/dev/null && exit 0; sleep 0.1; done; exit 1' \
    _ "${btls[@]}"
# ExecReload=/bin/kill -HUP $MAINPID
reload=$(sed -n 's/^ExecReload=//p' "$unit_file")
check "ExecReload is '/bin/kill -HUP \$MAINPID'" test "$reload" = '/bin/kill -HUP $MAINPID'
/bin/kill -HUP "$bpid"
check "SIGHUP: RELOADING=1 then READY=1" bash -c '
    for _ in $(seq 100); do
        if grep -n "RELOADING=1" "$1" >/dev/null; then
            r=$(grep -n "RELOADING=1" "$1" | tail -n 1 | cut -d: -f1)
            tail -n +"$((r + 1))" "$1" | grep -q "READY=1" && exit 0
        fi
        sleep 0.1
    done; cat "$1"; exit 1' _ "$work/notify.txt"
kill -TERM "$bpid"
check "SIGTERM: STOPPING=1" wait_for "$work/notify.txt" 'STOPPING=1' 10
# Exited = gone from /proc or a zombie waiting for `wait`.
check "...and the broker exits" bash -c '
    for _ in $(seq 100); do
        state=$(awk "{print \$3}" "/proc/$1/stat" 2>/dev/null)
        [ -z "$state" ] || [ "$state" = Z ] && exit 0
        sleep 0.1
    done; exit 1' _ "$bpid"
if [ "$bpid" = "$spid" ]; then
    wait "$bpid"
    check "...with status 0" test "$?" = 0
else
    wait "$spid"
    check "...with status 0 (strace passes it on)" test "$?" = 0
    check "every system call it made is allowed by the unit's SystemCallFilter= (strace -f)" \
        python3 - "$unit_file" "$work/broker.trace" <<'PY'
import functools, subprocess, sys

@functools.lru_cache(None)
def expand(token):
    """A system call name, or a @group expanded (recursively) by systemd-analyze."""
    if not token.startswith("@"):
        return frozenset([token])
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", token],
                         capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            names |= expand(line)
    return frozenset(names)

allowed, denied = set(), set()
for line in open(sys.argv[1]):
    if line.startswith("SystemCallFilter="):
        value = line.split("=", 1)[1].strip()
        target = denied if value.startswith("~") else allowed
        for token in value.lstrip("~").split():
            target |= expand(token)
used = set()
started = False
for line in open(sys.argv[2]):
    # Before its execve into mqtt-policy the process was setpriv and env (systemd's part): judge only
    # what follows it.
    if not started:
        started = 'execve("/usr/bin/mqtt-policy"' in line and line.rstrip().endswith("= 0")
        continue
    rest = line.split(None, 1)[1] if len(line.split(None, 1)) == 2 else ""
    if rest.startswith("<... "):
        used.add(rest[5:].split(" ", 1)[0])
    elif not rest.startswith(("+++", "---")):
        name = rest.split("(", 1)[0]
        if name.isidentifier():
            used.add(name)
outside = sorted(used - (allowed - denied))
print(f"    {len(used)} distinct system calls; outside the filter: {outside or 'none'}")
sys.exit(1 if outside or not used else 0)
PY
fi
echo "  notifications received:"
sed 's/^/    /' "$work/notify.txt"

say "dpkg -r: the package's files go; configuration, state and logs stay"
check "dpkg -r $pkg" bash -c 'dpkg -r "$1" > "$2" 2>&1 || { cat "$2"; exit 1; }' _ "$pkg" "$work/dpkg-r.log"
check "no file of the package is left (dpkg -L taken at install)" bash -c '
    while read -r f; do [ -d "$f" ] && continue; [ -e "$f" ] || [ -L "$f" ] && { echo "left: $f"; exit 1; }; done < "$1"; exit 0' \
    _ "$work/dpkg-L.txt"
check "/etc/mqtt-policy (configuration) is kept" test -f /etc/mqtt-policy/mosquitto.conf
check "/var/log/mqtt-policy (audit log) is kept" test -f /var/log/mqtt-policy/audit.log

say "dpkg --purge: nothing is left but the system user"
check "dpkg --purge $pkg" bash -c 'dpkg --purge "$1" > "$2" 2>&1 || { cat "$2"; exit 1; }' _ "$pkg" "$work/dpkg-purge.log"
check "dpkg forgot the package" bash -c '! dpkg-query -W -f="\${Status}" "$1" 2>/dev/null | grep -q -v not-installed' _ "$pkg"
check "no path the package made remains (files and folders that did not exist before the install)" bash -c '
    left=0
    while read -r f; do
        grep -q -x -F -- "$f" "$2" && continue
        if [ -e "$f" ] || [ -L "$f" ]; then echo "left: $f"; left=1; fi
    done < "$1"; exit $left' _ "$work/contents.txt" "$work/existed-before.txt"
for d in /etc/mqtt-policy /var/lib/mqtt-policy /var/log/mqtt-policy "/etc/systemd/system/$unit"; do
    check "$d is gone" bash -c '! [ -e "$1" ] && ! [ -L "$1" ]' _ "$d"
done
check "no deb-systemd-helper state for the unit is left" \
    bash -c '! find /var/lib/systemd -path "*deb-systemd-helper*" -name "*$1*" 2>/dev/null | grep -q .' _ "$unit"
check "nothing in /etc/mosquitto or /etc/systemd/system differs from before the install" \
    bash -c 'for d in /etc/mosquitto /etc/systemd/system; do find "$d" -mindepth 1 -exec ls -ld --time-style=full-iso {} + 2>/dev/null; done | sort | diff "$1" -' _ "$work/etc-before.txt"
check "the system user mqtt-policy is kept, as README.md documents (it existed before: $had_user)" \
    bash -c 'getent passwd mqtt-policy >/dev/null'

echo
echo "package: $passed passed, $failed failed"
[ "$failed" = 0 ]
