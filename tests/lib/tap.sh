# TAP-style results for the shell test drivers (compose-test, fresh-test): source it after
# setting TAP_NAME; ok/notok count, finish prints "N passed, N failed" and exits 0 only
# when something passed and nothing failed.
TAP_START=$SECONDS
pass=0
fail=0
n=0
ok()    { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }
note()  { echo "# $*"; }
finish() {
    echo "# ${TAP_NAME:-test} took $((SECONDS - TAP_START)) s"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
    exit $?
}
