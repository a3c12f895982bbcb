#!/usr/bin/env bash
# Runs every benchmark and prints its figures: each BUILD/bench/bench_* program (CPU cost
# of the gateway's hot paths, no I/O), then tests/bench/bench_e2e.mjs on the real stack,
# then tests/bench/bench_scale.mjs (N idle sessions on one gateway, C load client
# BUILD/tools/wsload, built here when missing).
# Benchmarks print figures, they assert nothing about speed; this script fails (exit 1)
# only when one of them cannot run or ends abnormally.
# Usage: tests/bench/run-bench.sh [BUILD]   (BUILD defaults to "build")
#   WAYMARK_BENCH_QUICK=1  smoke run: few repetitions, e2e counts divided by 10, scale
#                          bench with N = 500 2000 and short phases (unless WAYMARK_SCALE_* say)
#   WAYMARK_BENCH_ONLY=re  run only the benchmarks whose name matches the regex
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
QUICK=${WAYMARK_BENCH_QUICK:-0}
ONLY=${WAYMARK_BENCH_ONLY:-.}
C_TIMEOUT=300
E2E_TIMEOUT=900
SCALE_TIMEOUT=1800

ran=0
failed=()

# run NAME CMD...: prints the output as it comes, records a failure on a non-zero exit.
run() {
    local name=$1
    shift
    if ! [[ $name =~ $ONLY ]]; then
        return
    fi
    echo "=== bench: $name"
    local t0=$SECONDS
    "$@"
    local rc=$?
    ran=$((ran + 1))
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && echo "run-bench: $name timed out" >&2
        failed+=("$name (exit status $rc)")
    fi
    echo "--- $name: $((SECONDS - t0)) s"
}

echo "run-bench: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "build $BUILD"
echo "run-bench: figures from a shared machine are noisy: compare runs on the same machine"

shopt -s nullglob
benches=("$BUILD"/bench/bench_*)
shopt -u nullglob
if [ ${#benches[@]} -eq 0 ]; then
    echo "run-bench: no benchmark programs in $BUILD/bench (run make bench)" >&2
    failed+=("C benchmarks (none built)")
fi
runs=()
[ "$QUICK" = 1 ] && runs=(5)
for b in "${benches[@]}"; do
    [ -x "$b" ] || continue
    run "$(basename "$b")" timeout "$C_TIMEOUT" "$b" "${runs[@]}"
done

# The end-to-end benchmark needs the daemons, redis and the npm packages.
missing=""
for b in waymark-dispatcher waymark-gateway waymark-fetcher; do
    [ -x "$BUILD/$b" ] || missing="$missing $b"
done
for c in node redis-server; do
    command -v "$c" >/dev/null || missing="$missing $c"
done
[ -d "$ROOT/tests/node_modules/autobahn" ] || missing="$missing tests/node_modules (cd tests && npm ci)"
if [[ bench_e2e =~ $ONLY ]]; then
    if [ -n "$missing" ]; then
        echo "run-bench: bench_e2e cannot run, missing:$missing" >&2
        failed+=("bench_e2e (missing:$missing)")
    else
        e2e_args=()
        [ "$QUICK" = 1 ] && e2e_args=(--quick)
        run bench_e2e env WAYMARK_BUILD="$BUILD" timeout --kill-after=10 "$E2E_TIMEOUT" \
            node "$ROOT/tests/bench/bench_e2e.mjs" "${e2e_args[@]}"
    fi
fi

# The scale benchmark: the same stack, plus the C load client (a test tool, which
# `make bench` does not build by itself).
if [[ bench_scale =~ $ONLY ]]; then
    if [ -n "$missing" ]; then
        echo "run-bench: bench_scale cannot run, missing:$missing" >&2
        failed+=("bench_scale (missing:$missing)")
    elif ! [ -x "$BUILD/tools/wsload" ] && ! (cd "$ROOT" && make -s BUILD="$BUILD" "$BUILD/tools/wsload"); then
        failed+=("bench_scale (cannot build $BUILD/tools/wsload)")
    else
        scale_env=()
        if [ "$QUICK" = 1 ]; then
            scale_env=(WAYMARK_SCALE_N="${WAYMARK_SCALE_N:-500 2000}" WAYMARK_SCALE_IDLE_S="${WAYMARK_SCALE_IDLE_S:-2}"
                       WAYMARK_SCALE_BUMPS="${WAYMARK_SCALE_BUMPS:-50}" WAYMARK_SCALE_DELIVERY_S="${WAYMARK_SCALE_DELIVERY_S:-1}")
        fi
        run bench_scale env WAYMARK_BUILD="$BUILD" "${scale_env[@]}" timeout --kill-after=10 "$SCALE_TIMEOUT" \
            node "$ROOT/tests/bench/bench_scale.mjs"
    fi
fi

echo "=== bench results: $ran ran, ${#failed[@]} failed"
for f in "${failed[@]}"; do
    echo "  failed: $f"
done
[ ${#failed[@]} -eq 0 ] && [ "$ran" -gt 0 ]
