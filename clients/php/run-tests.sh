#!/usr/bin/env bash
# Runs the PHP client's PHPUnit tests (Debian phpunit, a private redis-server) and prints
# TAP: "1..N", then one "ok"/"not ok" line per test, PHPUnit's own output as "# " lines.
# Exit status: PHPUnit's (0 only when every test passed).
# Usage: clients/php/run-tests.sh   (env WAYMARK_BUILD: build dir for the waymark-bump cross-check)
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
for c in php phpunit redis-server; do
    if ! command -v "$c" >/dev/null; then
        echo "1..1"
        echo "not ok 1 - php client tests: $c not found (Debian packages php-cli php-redis phpunit redis-server)"
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/waymark-phpunit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

phpunit -c "$HERE/phpunit.xml.dist" --log-junit "$tmp/junit.xml" >"$tmp/out" 2>&1
rc=$?

# JUnit XML -> TAP. A missing or unreadable report is one failed test.
php -r '
$f = $argv[1];
$x = is_file($f) ? @simplexml_load_file($f) : false;
if ($x === false) { echo "1..1\nnot ok 1 - phpunit wrote no report\n"; exit(0); }
$cases = $x->xpath("//testcase");
echo "1.." . count($cases) . "\n";
$i = 0;
foreach ($cases as $c) {
    $i++;
    $name = str_replace(["\n", "#"], [" ", "no."], (string) $c["class"] . "::" . (string) $c["name"]);
    if (isset($c->failure) || isset($c->error)) {
        echo "not ok $i - $name\n";
        $msg = isset($c->failure) ? (string) $c->failure : (string) $c->error;
        foreach (explode("\n", trim($msg)) as $l) echo "#   $l\n";
    } elseif (isset($c->skipped)) {
        echo "ok $i - $name # SKIP\n";
    } else {
        echo "ok $i - $name\n";
    }
}
' "$tmp/junit.xml"
sed 's/^/# /' "$tmp/out"
exit $rc
