#!/usr/bin/env bash
# Runs the whole test suite: format and lint checks, the engine's unit and property tests, and the tests
# against the real Debian mosquitto (with and without our plugin), then the Debian package, installed and
# purged (scripts/test-package.sh, root). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --all-targets -- -D warnings
echo "== cargo build --release (plugin .so and the mqtt-policy program)"
cargo build --release
echo "== cargo test --release"
cargo test --release
echo "== the Debian package: build, install, use, purge (scripts/test-package.sh, root)"
bash scripts/test-package.sh
