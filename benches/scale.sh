#!/usr/bin/env bash
# "1M users in a second" (issue 11): start, SIGHUP reload and `check` with 1,000,000 password entries and
# 130,000 acl lines (10,000 `pattern` lines, 30,000 `user` blocks of a `user` line and three `topic`
# lines), for Debian's mosquitto loading our plugin, for our broker, and, as the anchor, for Debian's
# mosquitto with its own password_file/acl_file on the same files.
#
# The password file: hashing 1M PBKDF2 passwords would take long, so one password is hashed once
# (`$7$`, 101 iterations, as mosquitto_passwd 2.0 writes) and its hash reused with 1M distinct usernames.
# Loading does not verify hashes, so this is what a real file of that size costs to load.
#
# Measured, each RUNS times (alternating), medians printed:
# * start: from exec to the listener accepting a TCP connection (127.0.0.1), and RSS then (VmRSS);
# * reload: SIGHUP to the reload being done (the plugin's and our broker's "reloaded" log line; for
#   mosquitto's own files, the first login accepted after the signal), peak RSS (VmHWM) and RSS after;
# * `mqtt-policy check` for one user: wall time and peak RSS from /usr/bin/time -v.
#
# Usage: bash benches/scale.sh [RUNS]   (default 3; needs /usr/sbin/mosquitto, python3, GNU time)
# KINDS="plugin broker mosquitto check" (the default) chooses what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release --quiet
export PLUGIN="$(pwd)/target/release/libmqtt_policy.so" CLI="$(pwd)/target/release/mqtt-policy"
export WORK
WORK=$(mktemp -d /tmp/mqtt-policy-scale.XXXXXX)
chmod 0755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
exec python3 - "$runs" <<'PY'
import os, signal, socket, statistics, subprocess, sys, time

runs = int(sys.argv[1])
work, plugin, cli = os.environ["WORK"], os.environ["PLUGIN"], os.environ["CLI"]
USERS, PATTERNS, BLOCKS = 1_000_000, 10_000, 30_000
pw, acl = f"{work}/passwords.txt", f"{work}/acl.txt"

hashed = f"{work}/one.txt"
subprocess.run([cli, "passwd", "-c", "-b", hashed, "bench", "secret"], check=True)
hash_field = open(hashed).read().split(":", 1)[1].strip()
with open(pw, "w") as f:
    f.write("".join(f"user{i}:{hash_field}\n" for i in range(USERS)))
with open(acl, "w") as f:
    for i in range(PATTERNS):
        f.write(f"pattern readwrite site{i}/+/%u/#\n")
    for i in range(BLOCKS):
        f.write(f"user user{i}\ntopic readwrite home/user{i}/#\ntopic read shared/{i}/+\ntopic deny home/user{i}/locked\n")
os.chmod(pw, 0o644); os.chmod(acl, 0o644)
print(f"files: {USERS} password entries ({os.path.getsize(pw) >> 20} MiB), "
      f"{sum(1 for _ in open(acl))} acl lines ({os.path.getsize(acl) >> 20} MiB)", flush=True)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # MiB
    return float("nan")

def cpu(pid):
    """User + system CPU seconds the process has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def wait_for(cond, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    raise SystemExit("timed out")

def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return True
    except OSError:
        return False

def log_count(path, text):
    try:
        return open(path, errors="replace").read().count(text)
    except FileNotFoundError:
        return 0

def login_ok(port):
    r = subprocess.run(["mosquitto_pub", "-p", str(port), "-u", "user0", "-P", "secret", "-i", "scale",
                        "-t", "x", "-m", "x"], capture_output=True, timeout=30)
    return r.returncode == 0

def case(kind):
    port, log = free_port(), f"{work}/{kind}.log"
    if os.path.exists(log): os.unlink(log)
    conf = f"{work}/{kind}.conf"
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous false\n")
        if kind == "mosquitto":
            f.write(f"user root\npassword_file {pw}\nacl_file {acl}\nlog_dest stderr\nlog_type all\n")
        elif kind == "plugin":
            f.write(f"user root\nplugin {plugin}\nplugin_opt_password_file {pw}\nplugin_opt_acl_file {acl}\n"
                    "log_dest stderr\nlog_type all\n")
        else:
            f.write(f"password_file {pw}\nacl_file {acl}\n")
    cmd = ["/usr/sbin/mosquitto", "-c", conf] if kind != "broker" else [cli, "broker", "-c", conf]
    out = open(log, "w")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: p.poll() is None and accepts(port))
        start = time.monotonic() - t0
        rss, start_cpu = status(p.pid, "VmRSS"), cpu(p.pid)
        done = {"plugin": "(reloaded)", "broker": "SIGHUP: reloaded"}.get(kind)
        t0 = time.monotonic()
        p.send_signal(signal.SIGHUP)
        if done:
            wait_for(lambda: log_count(log, done) >= 1)
        else:
            wait_for(lambda: login_ok(port))
        reload = time.monotonic() - t0
        reload_cpu = cpu(p.pid) - start_cpu
        time.sleep(0.3)
        return dict(start=start, cpu=start_cpu, rss=rss, reload=reload, reload_cpu=reload_cpu,
                    hwm=status(p.pid, "VmHWM"), after=status(p.pid, "VmRSS"))
    finally:
        p.terminate()
        try: p.wait(timeout=30)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
        out.close()

def check():
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-v", cli, "check", "--acl-file", acl, "--password-file", pw,
                        "--user", "user777777", "--write", "home/user777777/x"], capture_output=True, text=True,
                       timeout=120)
    wall = time.monotonic() - t0
    def field(name):
        return [float(l.split()[-1]) for l in r.stderr.splitlines() if name in l][0]
    return dict(wall=wall, cpu=field("User time") + field("System time"),
                hwm=field("Maximum resident set size") / 1024)

kinds = os.environ.get("KINDS", "plugin broker mosquitto check").split()
results = {k: [] for k in kinds}
for i in range(runs):
    for k in kinds:
        results[k].append(check() if k == "check" else case(k))
        print(f"run {i + 1} {k}: " + ", ".join(f"{a} {b:.2f}" for a, b in results[k][-1].items()), flush=True)

def med(k, field):
    return statistics.median(r[field] for r in results[k])
print(f"\nmedians of {runs} runs")
names = {"plugin": "mosquitto + libmqtt_policy.so", "broker": "mqtt-policy broker",
         "mosquitto": "mosquitto, own password_file/acl_file"}
print("start: exec to listening (wall s, CPU s of the process), RSS then; reload: SIGHUP to done (wall s, CPU s),")
print("peak RSS of the process so far (VmHWM), RSS after the reload")
print(f"{'':40} {'start s':>8} {'cpu s':>6} {'RSS MiB':>8} {'reload s':>9} {'cpu s':>6} {'peak MiB':>9} {'after MiB':>10}")
for k in [k for k in ["plugin", "broker", "mosquitto"] if k in kinds]:
    print(f"{names[k]:40} {med(k,'start'):8.2f} {med(k,'cpu'):6.2f} {med(k,'rss'):8.0f} {med(k,'reload'):9.2f} "
          f"{med(k,'reload_cpu'):6.2f} {med(k,'hwm'):9.0f} {med(k,'after'):10.0f}")
if "check" in kinds:
    print(f"{'mqtt-policy check (one user)':40} {med('check','wall'):8.2f} {med('check','cpu'):6.2f} "
          f"{med('check','hwm'):8.0f}  (wall s, CPU s, peak RSS MiB)")
PY
