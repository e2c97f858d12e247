#!/usr/bin/env bash
# Fetches upstream Mosquitto's test folder for scripts/upstream-tests.sh, once, and prints the folder that
# holds it (DIR/test/broker/*.py, DIR/test/mosq_test.py).
#
# The vendored tarballs (../shared/vendor/) leave test/ out. Debian's source package of the mosquitto that
# Debian 12 ships (2.0.11) is upstream's release with test/ in it, and it comes from the archive apt
# already uses (deb.debian.org; the snapshot archive as a fallback), so a machine that can install the
# test dependencies can fetch it. It is checked against the sha256 below and kept under target/upstream/.
# Only test/ is used: the tests run against the brokers the suite already has.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=mosquitto_2.0.11.orig.tar.gz
sha256=7b36a7198bce85cf31b132f5c6ee36dcf5dadf86fb768501eb1e11ce95d4f78a
urls=(
    "http://deb.debian.org/debian/pool/main/m/mosquitto/$name"
    "http://snapshot.debian.org/archive/debian/20250520T000000Z/pool/main/m/mosquitto/$name"
)
cache="$root/target/upstream"
out="$cache/mosquitto-2.0.11"
if [ -f "$out/test/mosq_test.py" ]; then
    echo "$out"
    exit 0
fi
mkdir -p "$cache"
tarball="$cache/$name"
if ! echo "$sha256  $tarball" | sha256sum -c --status 2>/dev/null; then
    fetched=""
    for url in "${urls[@]}"; do
        if python3 - "$url" "$tarball.part" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY
        then
            mv "$tarball.part" "$tarball"
            fetched=$url
            break
        fi
        echo "fetch-upstream-tests: could not fetch $url" >&2
    done
    [ -n "$fetched" ] || { echo "fetch-upstream-tests: $name could not be fetched from ${urls[*]}" >&2; exit 1; }
    echo "$sha256  $tarball" | sha256sum -c --status || {
        echo "fetch-upstream-tests: $fetched does not have the expected sha256 $sha256" >&2
        rm -f "$tarball"
        exit 1
    }
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
tar -xzf "$tarball" -C "$out.tmp" --strip-components=1 mosquitto-2.0.11/test
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
