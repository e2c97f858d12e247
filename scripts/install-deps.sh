#!/usr/bin/env bash
# Installs what mqtt-policy needs on Debian 12, when it is missing. Every check looks for the thing that is
# actually used, not a look-alike:
#   - the libclang that bindgen loads (clang-sys's file names: libclang.so, libclang-N.so, libclang.so.N,
#     never libclang-cpp, which a fresh machine has through llvm) and clang's own stdbool.h/stddef.h, which
#     bindgen needs to parse the headers;
#   - the three Mosquitto headers include/mqtt_policy.h includes (mosquitto.h, mosquitto_broker.h,
#     mosquitto_plugin.h);
#   - the programs the build, the main job and the tests run: cc, openssl, mosquitto_pub/_sub, Debian's
#     python3 with paho-mqtt (the tutorial's client library), and for the tests /usr/sbin/mosquitto,
#     mosquitto_passwd, and what the package test runs;
#   - for the tests that build the vendored Mosquitto 2.0.22 / 2.1.2: cmake, OpenSSL's and cJSON's headers;
#   - for the WebSocket tests: node and npm, and MQTT.js in tests/js/node_modules (`npm ci` from the
#     committed package-lock.json, when tests/js/node_modules/mqtt is missing);
#   - for the page's browser test: /usr/bin/chromium and /usr/bin/chromedriver;
#   - for the fuzz targets: a C++ compiler (libFuzzer); cargo-fuzz itself, a crate, is installed at its
#     pinned version by scripts/fuzz.sh.
#   - for the live RabbitMQ cluster test: /usr/lib/rabbitmq/bin/rabbitmq-server and ss.
# Rust crates come via cargo. The packages are named in one table below, each beside what it provides.
#
# Usage: bash scripts/install-deps.sh [--no-broker] [--check]
#   --no-broker  leaves out what only the tests need (the mosquitto broker, the build tools for the
#                vendored Mosquitto, the package test's tools): what `scripts/tutorial.sh` needs to run the
#                tutorial on our own broker
#   --check      installs nothing: prints what is missing and exits 1 if anything is
set -euo pipefail

tests=1
check_only=0
for arg in "$@"; do
    case "$arg" in
        --no-broker) tests=0 ;;
        --check) check_only=1 ;;
        *) echo "usage: $0 [--no-broker] [--check]" >&2; exit 2 ;;
    esac
done

need=()
missing=()
# want PACKAGE WHAT: PACKAGE provides WHAT, which was not found.
want() {
    need+=("$1")
    missing+=("$2 (Debian package $1)")
}
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_header() { [ -f "/usr/include/$1" ] || { [ -n "${MOSQUITTO_INCLUDE_DIR:-}" ] && [ -f "$MOSQUITTO_INCLUDE_DIR/$1" ]; }; }

# The libclang bindgen loads: the directories and file names clang-sys searches on Linux.
libclang_found() {
    local dirs=() dir f name
    [ -n "${LIBCLANG_PATH:-}" ] && dirs+=("$LIBCLANG_PATH")
    have_cmd llvm-config && dirs+=("$(llvm-config --libdir 2>/dev/null || true)")
    dirs+=(/usr/lib/llvm-*/lib /usr/lib /usr/lib64 /usr/local/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu)
    for dir in "${dirs[@]}"; do
        [ -d "$dir" ] || continue
        for f in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.* "$dir"/libclang-*.so.*; do
            [ -e "$f" ] || continue
            name=${f##*/}
            case "$name" in *-cpp.*|*-cpp[0-9]*) continue ;; esac
            return 0
        done
    done
    return 1
}
# clang's builtin headers (stdbool.h, stddef.h) that libclang needs to parse mosquitto.h.
clang_builtin_headers_found() {
    local d
    for d in /usr/lib/llvm-*/lib/clang/*/include; do
        [ -f "$d/stdbool.h" ] && [ -f "$d/stddef.h" ] && return 0
    done
    return 1
}

# Building the plugin (bindgen over include/mqtt_policy.h) and the program.
have_cmd cc || want build-essential "a C compiler (cc)"
[ -f /usr/include/stdint.h ] || want libc6-dev "the C library headers (stdint.h)"
libclang_found || want libclang-dev "libclang for bindgen (libclang.so, not libclang-cpp)"
clang_builtin_headers_found || want libclang-dev "clang's builtin headers (stdbool.h, stddef.h)"
have_header mosquitto.h || want libmosquitto-dev "mosquitto.h"
have_header mosquitto_broker.h || want mosquitto-dev "mosquitto_broker.h"
have_header mosquitto_plugin.h || want mosquitto-dev "mosquitto_plugin.h"
# The tutorial: certificates and the command-line clients.
have_cmd openssl || want openssl "openssl"
have_cmd mosquitto_pub || want mosquitto-clients "mosquitto_pub"
have_cmd mosquitto_sub || want mosquitto-clients "mosquitto_sub"
have_cmd python3 || want python3 "python3"
# The tutorial's own client library, in Debian's interpreter: the main job's and the tests' clients
# (examples/tutorial/*.py) run with /usr/bin/python3.
[ -x /usr/bin/python3 ] || want python3 "/usr/bin/python3"
{ [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1; } \
    || want python3-paho-mqtt "paho-mqtt for /usr/bin/python3"
if [ "$tests" = 1 ]; then
    [ -x /usr/sbin/mosquitto ] || want mosquitto "/usr/sbin/mosquitto"
    have_cmd mosquitto_passwd || want mosquitto "mosquitto_passwd"
    # Building the vendored Mosquitto 2.0.22 and 2.1.2 for the version tests.
    have_cmd cmake || want cmake "cmake"
    have_cmd make || want make "make"
    [ -f /usr/include/openssl/ssl.h ] || want libssl-dev "OpenSSL's headers (openssl/ssl.h)"
    [ -f /usr/include/cjson/cJSON.h ] || want libcjson-dev "cJSON's headers (cjson/cJSON.h)"
    [ -f /usr/include/argon2.h ] || want libargon2-dev "argon2.h (Mosquitto 2.1's \$argon2id\$ hashes)"
    # The package test (scripts/test-package.sh): man pages, the stripped plugin, the unit's system calls.
    have_cmd man || want man-db "man (the package test reads the man pages)"
    have_cmd readelf || want binutils "readelf (the package test checks the plugin is stripped)"
    have_cmd strace || want strace "strace (the package test checks the unit's SystemCallFilter)"
    have_cmd systemd-analyze || want systemd "systemd-analyze (the package test verifies the unit)"
    # The WebSocket tests' JavaScript client (MQTT.js, tests/js/).
    have_cmd node || want nodejs "node (MQTT.js, the WebSocket tests' client)"
    have_cmd npm || want npm "npm (installs MQTT.js into tests/js)"
    # The page's browser test (tests/serve_browser.rs) runs these two paths: Debian's chromium and its
    # WebDriver server.
    [ -x /usr/bin/chromium ] || want chromium "/usr/bin/chromium (the page's browser test)"
    [ -x /usr/bin/chromedriver ] || want chromium-driver "/usr/bin/chromedriver (drives chromium in the page's browser test)"
    # The fuzz targets (scripts/fuzz.sh): libfuzzer-sys builds libFuzzer's C++ sources with c++.
    have_cmd c++ || want g++ "a C++ compiler (c++, for libFuzzer in scripts/fuzz.sh)"
    # The live RabbitMQ cluster test (tests/serve_rabbitmq_cluster.rs, scripts/rabbitmq-cluster.sh) runs
    # this path (with its rabbitmq_mqtt and rabbitmq_auth_backend_http plugins, both in the package) and
    # finds its epmd's pid with ss.
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || want rabbitmq-server "/usr/lib/rabbitmq/bin/rabbitmq-server (the live RabbitMQ cluster test)"
    have_cmd ss || want iproute2 "ss (the RabbitMQ cluster test stops the epmd it started)"
fi

if [ ${#need[@]} -gt 0 ]; then
    # One package may provide several missing things: install each once.
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    if [ "$check_only" = 1 ]; then
        printf 'mqtt-policy: missing: %s\n' "${missing[@]}" >&2
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        printf 'mqtt-policy: missing: %s\n' "${missing[@]}" >&2
        echo "mqtt-policy: run as root, or: apt-get install ${need[*]}" >&2
        exit 1
    fi
    echo "mqtt-policy: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # What was installed must now be there: the same checks again, installing nothing.
    # (MQTT.js comes after this, from npm: the re-check leaves it out.)
    if ! MQTT_POLICY_APT_RECHECK=1 bash "$0" "$@" --check; then
        echo "mqtt-policy: the packages above were installed but what they should provide is still missing" >&2
        exit 1
    fi
fi

# MQTT.js for the WebSocket tests, exactly as package-lock.json pins it.
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$tests" = 1 ] && [ -z "${MQTT_POLICY_APT_RECHECK:-}" ] \
    && [ ! -f "$root/tests/js/node_modules/mqtt/package.json" ]; then
    if [ "$check_only" = 1 ]; then
        echo "mqtt-policy: missing: MQTT.js in tests/js/node_modules (npm ci)" >&2
        exit 1
    fi
    echo "mqtt-policy: installing MQTT.js into tests/js (npm ci)" >&2
    (cd "$root/tests/js" && npm ci --no-audit --no-fund >/dev/null)
    [ -f "$root/tests/js/node_modules/mqtt/package.json" ] \
        || { echo "mqtt-policy: npm ci did not install tests/js/node_modules/mqtt" >&2; exit 1; }
fi

# The installed broker must not hold the tutorial's port or 1883 while tests run.
if have_cmd systemctl && systemctl is-active --quiet mosquitto 2>/dev/null; then
    systemctl stop mosquitto || true
fi

if ! have_cmd cargo; then
    echo "mqtt-policy: cargo not found. Install a Rust toolchain (1.90 or newer), e.g. with rustup, then rerun." >&2
    exit 1
fi
# The compiler cargo will run (rust-version in Cargo.toml): an older one fails deep in a dependency's build
# with an unrelated-looking error, so say it here.
min_rust=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$root/Cargo.toml")
rustc_version=$(rustc --version 2>/dev/null | awk '{print $2}')
if [ -z "$rustc_version" ]; then
    echo "mqtt-policy: rustc not found beside cargo. Install a Rust toolchain ($min_rust or newer), then rerun." >&2
    exit 1
fi
if [ "$(printf '%s\n%s\n' "$min_rust" "${rustc_version%%-*}" | sort -V | head -n1)" != "$min_rust" ]; then
    echo "mqtt-policy: rustc $rustc_version is older than $min_rust (Cargo.toml's rust-version)." \
        "Update the toolchain (rustup update stable), then rerun." >&2
    exit 1
fi
