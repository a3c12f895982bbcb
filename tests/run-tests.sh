#!/usr/bin/env bash
# Runs every test suite: each cmocka unit test binary BUILD/tests/test_*, the end-to-end
# suite (node --test tests/integration/, real redis-server and daemons), the JS client and
# the demo in headless Chromium, the PHP client's PHPUnit tests, and the docker-compose
# deployment (tests/compose/compose-test.sh; WAYMARK_SKIP_COMPOSE=1 skips it locally).
# Prints each suite's result and ends with one line "N passed, N failed" summing them all.
# Exit status: 0 only when every suite ran and nothing failed.
# Usage: tests/run-tests.sh [BUILD]   (BUILD defaults to "build")
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
INTEGRATION_TIMEOUT=${WAYMARK_IT_TIMEOUT:-900}

total_pass=0
total_fail=0
broken=0          # suites that could not run or ended abnormally
summary=()
work=$(mktemp -d "${TMPDIR:-/tmp}/waymark-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT

record() {        # record NAME PASS FAIL [NOTE]
    total_pass=$((total_pass + $2))
    total_fail=$((total_fail + $3))
    summary+=("$(printf '  %-34s %4d ok, %4d not ok %s' "$1" "$2" "$3" "${4:-}")")
}

# ---- unit tests (cmocka, TAP output) ----
shopt -s nullglob
units=("$BUILD"/tests/test_*)
shopt -u nullglob
if [ ${#units[@]} -eq 0 ]; then
    echo "run-tests: no unit test binaries in $BUILD/tests (run make test)" >&2
fi
for t in "${units[@]}"; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out=$work/$name.out
    echo "=== unit: $name"
    CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    pass=$(grep -E '^ok [0-9]+' "$out" | grep -cvE '^ok [0-9]+ # SKIP')
    # cmocka reports skip() as "not ok N # SKIP": neither passed nor failed, but shown.
    skipped=$(grep -cE '^(not )?ok [0-9]+ # SKIP' "$out")
    fail=$(grep -E '^not ok [0-9]+' "$out" | grep -cvE '^not ok [0-9]+ # SKIP')
    # One "1..N" plan per cmocka group: their sum is what should have been reported.
    plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$out" | awk '{s += $1} END {if (NR) print s}')
    note=""
    [ "$skipped" -gt 0 ] && note="($skipped skipped: see SKIP above)"
    # A crash or timeout leaves tests unreported: count them (at least one) as failed.
    if [ -n "$plan" ] && [ $((pass + fail + skipped)) -lt "$plan" ]; then
        note="(only $((pass + fail + skipped)) of $plan reported)"; fail=$((plan - pass - skipped))
    fi
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        fail=1; note="(exit status $rc)"
    fi
    record "unit $name" "$pass" "$fail" "$note"
done

# ---- node --test suites: the end-to-end suite, the JS client, the demo in Chromium ----
# node's own closing summary ("# pass N", "# fail N", "# cancelled N") counts the tests
# (not the suites) exactly once each.
node_suite() {    # node_suite NAME "MISSING" PATH...
    local name=$1 missing=$2 out=$work/$1.out note="" rc pass fail cancelled skipped todo
    shift 2
    echo "=== $name: node --test $*"
    if [ -n "$missing" ]; then
        echo "run-tests: $name cannot run, missing:$missing" >&2
        record "$name" 0 1 "(could not run: missing$missing)"
        broken=1
        return
    fi
    (cd "$ROOT" && WAYMARK_BUILD=$BUILD timeout --kill-after=15 "$INTEGRATION_TIMEOUT" \
        node --test --test-reporter=tap "$@") >"$out" 2>&1
    rc=$?
    cat "$out"
    pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$out" | tail -n1)
    fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$out" | tail -n1)
    cancelled=$(sed -nE 's/^# cancelled ([0-9]+)$/\1/p' "$out" | tail -n1)
    skipped=$(sed -nE 's/^# skipped ([0-9]+)$/\1/p' "$out" | tail -n1)
    todo=$(sed -nE 's/^# todo ([0-9]+)$/\1/p' "$out" | tail -n1)
    if [ -z "$pass" ] || [ -z "$fail" ]; then
        pass=0; fail=1; note="(no summary from node --test, exit status $rc)"
        broken=1
    else
        fail=$((fail + ${cancelled:-0}))
        [ "${skipped:-0}" -gt 0 ] && note="(${skipped} skipped: see SKIP above)"
        [ "${todo:-0}" -gt 0 ] && note="$note(${todo} todo, not counted: see TODO above)"
        [ "${cancelled:-0}" -gt 0 ] && note="(${cancelled} cancelled)"
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            fail=1; note="(exit status $rc)"
        fi
        if [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then
            fail=1; note="(ran no test)"
        fi
    fi
    record "$name" "$pass" "$fail" "$note"
}

missing=""
for b in waymark-dispatcher waymark-gateway waymark-fetcher waymark-bump; do
    [ -x "$BUILD/$b" ] || missing="$missing $b"
done
command -v redis-server >/dev/null || missing="$missing redis-server"
command -v redis-cli >/dev/null || missing="$missing redis-cli"
stack_missing=$missing
[ -d "$ROOT/tests/node_modules/autobahn" ] || missing="$missing tests/node_modules (make deps)"
node_suite integration "$missing" tests/integration/

missing=$stack_missing
[ -d "$ROOT/clients/js/node_modules/autobahn" ] || missing="$missing clients/js/node_modules (make deps)"
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] || missing="$missing tests/browser/node_modules (make deps)"
command -v php >/dev/null || missing="$missing php"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
node_suite "js client + demo" "$missing" clients/js/test/ tests/browser/

# ---- the PHP client (PHPUnit against a real redis-server, TAP lines) ----
echo "=== php: clients/php/run-tests.sh"
if command -v phpunit >/dev/null && command -v php >/dev/null; then
    out=$work/php.out
    (cd "$ROOT" && WAYMARK_BUILD=$BUILD timeout 300 clients/php/run-tests.sh) >"$out" 2>&1
    rc=$?
    cat "$out"
    pass=$(grep -E '^ok [0-9]+' "$out" | grep -cvE '^ok [0-9]+ # SKIP')
    fail=$(grep -cE '^not ok [0-9]+' "$out")
    note=""
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; note="(exit status $rc)"; fi
    if [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then fail=1; note="(ran no test)"; fi
    record "php client" "$pass" "$fail" "$note"
else
    record "php client" 0 1 "(could not run: missing php/phpunit, make deps)"
    broken=1
fi

# ---- the docker-compose deployment (deploy/), built and run in its own dockerd ----
# Skipped only on request (WAYMARK_SKIP_COMPOSE=1, for quick local loops): CI runs it.
if [ "${WAYMARK_SKIP_COMPOSE:-0}" = 1 ]; then
    echo "=== compose: skipped (WAYMARK_SKIP_COMPOSE=1)"
    summary+=("$(printf '  %-34s skipped (WAYMARK_SKIP_COMPOSE=1)' compose)")
else
    echo "=== compose: tests/compose/compose-test.sh"
    out=$work/compose.out
    (cd "$ROOT" && timeout --kill-after=30 1800 tests/compose/compose-test.sh) >"$out" 2>&1
    rc=$?
    cat "$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n1)
    note=""
    if [ -z "$line" ]; then
        pass=0; fail=1; note="(no summary, exit status $rc)"; broken=1
    else
        pass=${line%% passed*}
        fail=${line#*passed, }; fail=${fail%% failed*}
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; note="(exit status $rc)"; fi
    fi
    record compose "$pass" "$fail" "$note"
fi

echo "=== results"
printf '%s\n' "${summary[@]}"
if [ ${#units[@]} -eq 0 ]; then
    echo "  (no unit test binaries found)"
fi
echo "$total_pass passed, $total_fail failed"
if [ "$total_fail" -ne 0 ] || [ "$broken" -ne 0 ] || [ "$total_pass" -eq 0 ]; then
    exit 1
fi
exit 0
