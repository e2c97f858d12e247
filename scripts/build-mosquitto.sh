#!/usr/bin/env bash
# Builds one of the vendored upstream Mosquitto releases (../shared/vendor/mosquitto-VERSION.tar.gz; test use
# only) once, and prints the directory that holds it:
#   DIR/mosquitto            the broker
#   DIR/include/             its plugin headers (2.1: DIR/include/mosquitto/broker_plugin.h and friends)
# The build is cached under target/mosquitto/VERSION-SHA (SHA: the tarball's sha256, first 16 digits), so a
# changed tarball is rebuilt and an unchanged one never is. Needs cmake, make, cc, libssl-dev, libcjson-dev
# (scripts/install-deps.sh installs them). Only the broker is built: the clients, apps and the plugins that
# ship as separate files are left out (2.1's acl_file and password_file are compiled into the broker
# itself; its sqlite persistence plugin would need libsqlite3-dev). 2.1's websockets listener
# (`protocol websockets`, used by tests/broker_websockets.rs) is built in by default (its cmake options
# WITH_WEBSOCKETS and WITH_WEBSOCKETS_BUILTIN are ON, with the HTTP parser it ships in deps/): it needs
# no libwebsockets and no flag here, so the cache key is unchanged (2.0.22 leaves websockets off unless
# built with libwebsockets).
#
# Usage: bash scripts/build-mosquitto.sh VERSION      (2.0.22 or 2.1.2: whatever the vendor folder holds)
#   MQTT_POLICY_VENDOR  the folder with the tarballs (default: ../shared/vendor beside the repository)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${1:?usage: $0 VERSION (for example 2.1.2)}
vendor=${MQTT_POLICY_VENDOR:-$root/../shared/vendor}
tarball="$vendor/mosquitto-$version.tar.gz"
[ -f "$tarball" ] || { echo "build-mosquitto: $tarball not found (set MQTT_POLICY_VENDOR)" >&2; exit 1; }
for tool in cmake make cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build-mosquitto: $tool not found (bash scripts/install-deps.sh)" >&2; exit 1; }
done

sha=$(sha256sum "$tarball" | cut -c1-16)
if [ -f "$vendor/SHA256SUMS" ]; then
    expected=$(grep " mosquitto-$version.tar.gz\$" "$vendor/SHA256SUMS" | cut -c1-16 || true)
    if [ -n "$expected" ] && [ "$expected" != "$sha" ]; then
        echo "build-mosquitto: $tarball does not match SHA256SUMS" >&2
        exit 1
    fi
fi
out="$root/target/mosquitto/$version-$sha"
if [ -x "$out/mosquitto" ] && [ -d "$out/include" ]; then
    echo "$out"
    exit 0
fi

# Build in a scratch folder and move the result in place last: an interrupted build leaves no cache.
scratch=$(mktemp -d "$root/target/mosquitto-build.XXXXXX" 2>/dev/null || { mkdir -p "$root/target" && mktemp -d "$root/target/mosquitto-build.XXXXXX"; })
trap 'rm -rf "$scratch"' EXIT
tar -xzf "$tarball" -C "$scratch"
src="$scratch/mosquitto-$version"
mkdir -p "$src/build"
(
    cd "$src/build"
    cmake .. -DCMAKE_BUILD_TYPE=Release -DDOCUMENTATION=OFF -DWITH_DOCS=OFF -DWITH_TESTS=OFF \
        -DWITH_CLIENTS=OFF -DWITH_APPS=OFF -DWITH_PLUGINS=OFF -DWITH_LTO=OFF -DWITH_CTRL_SHELL=OFF >"$scratch/cmake.log" 2>&1 \
        || { cat "$scratch/cmake.log" >&2; exit 1; }
    make -j"$(nproc)" mosquitto >"$scratch/make.log" 2>&1 || { tail -50 "$scratch/make.log" >&2; exit 1; }
)
mkdir -p "$scratch/out"
cp "$src/build/src/mosquitto" "$scratch/out/mosquitto"
cp -r "$src/include" "$scratch/out/include"
mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$scratch/out" "$out"
echo "$out"
