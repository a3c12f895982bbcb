#!/usr/bin/env bash
# Runs every libFuzzer harness for SECONDS (default 60) each, in parallel, starting from
# tests/fuzz/corpus/<target>/ (new inputs go to a scratch corpus, not into the repo).
# A crash's reproducer is saved as tests/fuzz/crashes/<target>-<kind>-<hash>.
# Usage: tests/fuzz/run-fuzz.sh [SECONDS] [BUILD]    (build first with `make fuzz`)
# Extra libFuzzer flags may come in FUZZ_ARGS, e.g. to look past a known huge-allocation
# bug: ASAN_OPTIONS=allocator_may_return_null=1 FUZZ_ARGS=-malloc_limit_mb=4000000
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SECS=${1:-60}
BUILD=${2:-$HERE/../../build}
work=$(mktemp -d "${TMPDIR:-/tmp}/waymark-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$HERE/crashes"
pids=()
names=()
for bin in "$BUILD"/fuzz/fuzz_*; do
    t=$(basename "$bin")
    mkdir -p "$work/$t"
    "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$HERE/crashes/$t-" ${FUZZ_ARGS:-} \
        "$work/$t" "$HERE/corpus/$t" >"$work/$t.log" 2>&1 &
    pids+=($!)
    names+=("$t")
done
fail=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    rc=$?
    t=${names[$i]}
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$work/$t.log")
    cov=$(grep -oE 'cov: [0-9]+' "$work/$t.log" | tail -n1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ok, ${runs:-?} runs, ${cov:-?}"
    else
        fail=1
        echo "fuzz $t: FAILED (exit $rc), ${runs:-?} runs; log tail:"
        grep -E 'ERROR|SUMMARY|Test unit written|#[0-9]+ in ' "$work/$t.log" | head -n 20
        tail -n 80 "$work/$t.log" >"$HERE/crashes/$t.log"
    fi
done
exit $fail
