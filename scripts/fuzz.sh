#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the parsers, the codec, the router and the plugin:
# the targets are in fuzz/fuzz_targets/, their seed corpora in fuzz/corpus/<target>/ (from the tests:
# fuzz/seeds.py).
#
# Usage: bash scripts/fuzz.sh TARGET|all SECONDS
#   Builds the targets, replays every file of each target's seed corpus and of what earlier runs found,
#   then fuzzes each target for SECONDS (two at a time: FUZZ_JOBS, default 2), and prints for each its
#   executions, executions/s, coverage (edges; features) and corpus size. Fails on any crash, leaving the
#   input in target/fuzz/artifacts/<target>/ (reproduce: the target's binary with that file as argument;
#   then add a regression test named after what it found, and fix).
#   SECONDS 0: replay only.
#
# New inputs found go to target/fuzz/corpus/<target>/ (kept between runs, not in the repository); to keep
# some in the repository, minimise them into fuzz/corpus/<target>/ (`cargo fuzz cmin`, or libFuzzer's
# -merge=1).
#
# Runs on stable Rust: cargo-fuzz with `--sanitizer none` passes only stable `-C` flags to rustc (see
# README.md, "Fuzzing"). Installs cargo-fuzz (the version pinned below) when the one found is not it;
# libFuzzer itself is built by the libfuzzer-sys crate with the C++ compiler (build-essential's g++).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(codec router acl acl_differential passwd conf plugin)

usage() {
    echo "usage: $0 TARGET|all SECONDS   (targets: ${TARGETS[*]})" >&2
    exit 2
}
[ $# -eq 2 ] || usage
case "$2" in '' | *[!0-9]*) usage ;; esac
seconds=$2
if [ "$1" = all ]; then
    targets=("${TARGETS[@]}")
else
    [[ " ${TARGETS[*]} " == *" $1 "* ]] || usage
    targets=("$1")
fi
jobs=${FUZZ_JOBS:-2}

# The cargo-fuzz that is run, at the pinned version.
if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "== cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
    [ "$(cargo fuzz --version)" = "cargo-fuzz $CARGO_FUZZ_VERSION" ] \
        || { echo "fuzz.sh: cargo fuzz is not $CARGO_FUZZ_VERSION after installing it" >&2; exit 1; }
fi
command -v c++ >/dev/null || { echo "fuzz.sh: no C++ compiler (c++) to build libFuzzer: apt-get install g++" >&2; exit 1; }

out=target/fuzz
bin=$out/x86_64-unknown-linux-gnu/release
echo "== cargo fuzz build (stable, no sanitizer, release with debug assertions and overflow checks)"
# -O -a: optimised, with debug assertions and overflow checks; --sanitizer none: the only setting that
# needs no nightly -Z flag.
# (`cargo fuzz build` builds one target, or all.)
one=()
[ ${#targets[@]} -eq 1 ] && one=("${targets[0]}")
cargo fuzz build --sanitizer none -O -a --target-dir "$out" "${one[@]}"
for t in "${targets[@]}"; do
    [ -x "$bin/$t" ] || { echo "fuzz.sh: $bin/$t was not built" >&2; exit 1; }
done

# run TARGET: replays the corpora, then fuzzes for $seconds; the summary goes to $out/logs/TARGET.summary.
run() {
    local t=$1 log=$out/logs/$1.log
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$out/logs"
    rm -f "$log.summary"
    local args=(-artifact_prefix="$out/artifacts/$t/" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1)
    local rc=0
    # Every file of both corpora is run once (libFuzzer's -runs=0 executes each input of the corpora
    # while reading them).
    "$bin/$t" "${args[@]}" -runs=0 "$out/corpus/$t" "fuzz/corpus/$t" >"$log.replay" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        echo "$t: FAILED replaying the corpus (exit $rc):" >"$log.summary"
        grep -E "panicked|SUMMARY|Test unit written|ERROR" "$log.replay" >>"$log.summary" || true
        return 1
    fi
    local replayed
    replayed=$(grep -oE '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log.replay" | tail -1 | grep -oE '[0-9]+' || echo 0)
    if [ "$seconds" = 0 ]; then
        echo "$t: replayed $replayed inputs, no crash" >"$log.summary"
        return 0
    fi
    # New inputs go to the first directory: target/fuzz/corpus/<target>, not the repository.
    "$bin/$t" "${args[@]}" -max_total_time="$seconds" "$out/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    local done_line execs per_s cov ft corp
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    per_s=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9A-Za-z]+).*/\1/p' <<<"$done_line")
    if [ "$rc" != 0 ]; then
        {
            echo "$t: CRASH after ${execs} executions (exit $rc):"
            grep -E "panicked|SUMMARY|Test unit written|ERROR" "$log" || true
        } >"$log.summary"
        return 1
    fi
    printf '%s: replayed %s inputs; %s s, %s executions (%s/s), coverage %s edges, %s features, corpus %s; crashes 0\n' \
        "$t" "$replayed" "$seconds" "$execs" "$per_s" "${cov:-?}" "${ft:-?}" "${corp:-?}" >"$log.summary"
}

echo "== fuzzing ${targets[*]}: ${seconds} s each, $jobs at a time"
start=$(date +%s)
pids=()
names=()
failed=0
for t in "${targets[@]}"; do
    # At most $jobs targets at once.
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    run "$t" &
    pids+=($!)
    names+=("$t")
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed=1
    cat "$out/logs/${names[$i]}.log.summary"
done
echo "== fuzzing took $(($(date +%s) - start)) s"
if [ "$failed" != 0 ]; then
    echo "fuzz.sh: a target crashed; the inputs are in $out/artifacts/<target>/ and the logs in $out/logs/" >&2
    exit 1
fi
