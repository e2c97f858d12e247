#!/usr/bin/env bash
# Runs the whole test suite: format and lint checks, the engine's unit and property tests, and the tests
# against the real Debian mosquitto 2.0.11 and the vendored 2.0.22 and 2.1.2 (with and without our plugin),
# Mosquitto's own acl and password tests with the plugin in place of its files (scripts/upstream-tests.sh),
# then the fuzz targets (corpora replayed, 30 s each: scripts/fuzz.sh) and the Debian package, installed and
# purged (scripts/test-package.sh, root). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# The vendored Mosquitto releases the tests run on (built once, cached under target/mosquitto/); 2.1's
# headers also let build.rs check the plugin's types for the functions 2.1 added.
echo "== scripts/build-mosquitto.sh 2.0.22 / 2.1.2"
bash scripts/build-mosquitto.sh 2.0.22 >/dev/null
MOSQUITTO_21_INCLUDE_DIR="$(bash scripts/build-mosquitto.sh 2.1.2)/include"
export MOSQUITTO_21_INCLUDE_DIR

export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path "$PWD/fuzz/Cargo.toml" -- --check
echo "== cargo clippy"
cargo clippy --release --all-targets -- -D warnings
echo "== cargo build --release (plugin .so and the mqtt-policy program)"
cargo build --release
echo "== cargo test --release"
cargo test --release
# Mosquitto's own acl and password tests (upstream's test/broker/, from Debian's source of 2.0.11), on the
# built-in files and with our plugin in their place: Debian's 2.0.11 and the vendored 2.0.22 side by side.
echo "== scripts/upstream-tests.sh: Mosquitto's own acl and password tests, built-in files vs the plugin"
bash scripts/fetch-upstream-tests.sh >/dev/null
upstream_log=$(mktemp -d)
bash scripts/upstream-tests.sh /usr/sbin/mosquitto > "$upstream_log/2.0.11" 2>&1 & upstream_2011=$!
bash scripts/upstream-tests.sh "$(bash scripts/build-mosquitto.sh 2.0.22)/mosquitto" > "$upstream_log/2.0.22" 2>&1 & upstream_2022=$!
upstream_ok=0
wait "$upstream_2011" || upstream_ok=1
wait "$upstream_2022" || upstream_ok=1
cat "$upstream_log/2.0.11" "$upstream_log/2.0.22"
rm -rf "$upstream_log"
[ "$upstream_ok" = 0 ] || { echo "upstream tests: the plugin did not give the built-in files' results" >&2; exit 1; }
# Coverage-guided fuzzing (README.md, "Fuzzing"): every file of every corpus replayed, then each target
# fuzzed for 30 s, two at a time; any crash fails the suite.
echo "== scripts/fuzz.sh all 30 (replay the corpora, fuzz each target 30 s)"
bash scripts/fuzz.sh all 30
echo "== the Debian package: build, install, use, purge (scripts/test-package.sh, root)"
bash scripts/test-package.sh
