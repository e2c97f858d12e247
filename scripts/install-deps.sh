#!/usr/bin/env bash
# Installs what mqtt-policy needs on Debian 12, when it is missing: Mosquitto 2.0 (broker, clients, plugin
# headers), libclang (for bindgen), OpenSSL's command line (test certificates), paho-mqtt for Python (the
# tutorial's client library, for tests). Rust crates come via cargo.
#
# Usage: bash scripts/install-deps.sh [--no-broker]
#   --no-broker  leaves out the mosquitto broker itself (what `scripts/tutorial.sh` needs to run the tutorial
#                on our own broker: the clients, the headers to build the plugin, openssl)
set -euo pipefail

broker=1
[ "${1:-}" = --no-broker ] && broker=0

need=()
if [ "$broker" = 1 ]; then
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
    command -v mosquitto_passwd >/dev/null 2>&1 || need+=(mosquitto)
fi
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
[ -f /usr/include/mosquitto_plugin.h ] || need+=(mosquitto-dev)
[ -f /usr/include/mosquitto.h ] || need+=(libmosquitto-dev)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The tutorial's own client library, for the broker tests (Debian's interpreter: /usr/bin/python3).
/usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || need+=(python3 python3-paho-mqtt)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "mqtt-policy: missing packages: ${need[*]} (run as root, or install them with apt-get)" >&2
        exit 1
    fi
    echo "mqtt-policy: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The installed broker must not hold the tutorial's port or 1883 while tests run.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
    systemctl stop mosquitto || true
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "mqtt-policy: cargo not found. Install a Rust toolchain (1.80 or newer), e.g. with rustup, then rerun." >&2
    exit 1
fi
