#!/usr/bin/env bash
# `make fresh-test`: the README's Quick start as a newcomer meets it. A clean Debian 12
# container (the debootstrap base image of the compose test, in the same private dockerd,
# tests/lib/dockerd.sh) gets this checkout, `make`, and, like the CI machine, Node.js 20+
# with npm (README: the two things the Quick start presumes); then, as root, exactly the
# two commands of the README:
#   make run    until it prints the demo URL and that URL serves the demo page; then
#               Ctrl-C (SIGINT to make's process group, as a terminal sends it), and
#               nothing it started may be left running;
#   make test   with WAYMARK_SKIP_COMPOSE=1 (the compose test runs outside, in make test
#               on the host), reported as one check with its own "N passed, N failed".
# Prints TAP lines and ends with "N passed, N failed" (of its own checks).
# Env: WAYMARK_FRESH_REV=REV        test that commit (git archive) instead of the
#                                   working tree (tracked and untracked, not ignored files)
#      WAYMARK_FRESH_LOGS=DIR       where the two commands' full output goes
#                                   (default build/fresh-test)
#      WAYMARK_FRESH_RUN_TIMEOUT    seconds for make run to serve the demo (default 1800)
#      WAYMARK_FRESH_TEST_TIMEOUT   seconds for make test (default 2400)
#      WAYMARK_FRESH_KEEP=1         leave the container and dockerd running on failure
#      WAYMARK_DOCKER_ROOT          see tests/lib/dockerd.sh
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
TAP_NAME=fresh-test
# shellcheck source=tests/lib/tap.sh
. "$ROOT/tests/lib/tap.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/waymark-fresh.XXXXXX")
LOGS=${WAYMARK_FRESH_LOGS:-$ROOT/build/fresh-test}
mkdir -p "$LOGS"
BOX=wmfresh$$
BOX_UP=0
RUN_EXEC=""
SRC=/root/waymark        # where the checkout lands in the container

# shellcheck source=tests/lib/dockerd.sh
. "$ROOT/tests/lib/dockerd.sh"

cleanup() {
    trap - EXIT INT TERM
    if [ "${WAYMARK_FRESH_KEEP:-0}" = 1 ] && [ "$fail" -gt 0 ]; then
        echo "# kept: DOCKER_HOST=$DOCKER_HOST docker exec -it $BOX bash (dockerd pid ${DOCKERD_PID:-none}, dir $WORK)"
        return
    fi
    [ -n "$RUN_EXEC" ] && kill "$RUN_EXEC" 2>/dev/null
    [ "$BOX_UP" = 1 ] && "$DOCKER" rm -f "$BOX" >/dev/null 2>&1
    docker_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_box() { "$DOCKER" exec "$BOX" "$@"; }

# ---- what the machine brings: node and npm, found on this (CI) machine ----
NODE=$(command -v node) && NODE=$(readlink -f "$NODE")
NODE_PREFIX=$(dirname "$(dirname "${NODE:-/x/x}")")
if [ -z "$NODE" ] || [ ! -f "$NODE_PREFIX/lib/node_modules/npm/bin/npm-cli.js" ]; then
    notok "node and npm on this machine (the container gets the same)"; finish
fi

# ---- the engine and the clean Debian 12 base ----
docker_packages || finish
docker_start || finish
docker_base_image || finish
BASE=${WAYMARK_BASE_IMAGE:-waymark/debian-base:bookworm}

# ---- the fresh machine ----
# --init reaps what a stopped `make run` might orphan; Chromium needs more than the
# default 64 MB of /dev/shm; a machine has IPv6 on loopback (docker turns it off, and
# test_wm_metrics binds ::1); proxies of this machine, if any, are the machine's.
proxy_env=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && proxy_env+=(-e "$v=${!v}")
done
if ! "$DOCKER" run -d --init --name "$BOX" --hostname fresh --shm-size 1g \
        --sysctl net.ipv6.conf.all.disable_ipv6=0 --sysctl net.ipv6.conf.lo.disable_ipv6=0 \
        "${proxy_env[@]}" \
        "$BASE" sleep infinity >"$WORK/run.id" 2>&1; then
    cat "$WORK/run.id"; notok "start a container from $BASE"; finish
fi
BOX_UP=1
# The base image is slimmed for docker builds (no recommends, no docs): a machine is not.
# Its policy-rc.d stays: package installs start no services, as on a machine without
# systemd (redis-server's own would otherwise take port 6379).
in_box rm -f /etc/apt/apt.conf.d/90waymark-slim /etc/dpkg/dpkg.cfg.d/90waymark-nodoc

# Node.js 20+ is not a Debian 12 package: the CI machine comes with it, so the container
# gets this machine's node and npm under /usr/local, with its npm settings for reaching
# the registry (a CA file, proxies) when it has any.
npmrc=$WORK/npmrc
: >"$npmrc"
cafile=$(npm config get cafile 2>/dev/null)
mkdir -p "$WORK/node/etc"
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
    cp "$cafile" "$WORK/node/etc/npm-ca.crt"
    echo "cafile=/usr/local/etc/npm-ca.crt" >>"$npmrc"
fi
for k in registry proxy https-proxy; do
    v=$(npm config get "$k" 2>/dev/null)
    [ -n "$v" ] && [ "$v" != null ] && echo "$k=$v" >>"$npmrc"
done
cp "$npmrc" "$WORK/node/etc/npmrc"
mkdir -p "$WORK/node/bin"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$WORK/node/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$WORK/node/bin/npx"
if in_box mkdir -p /usr/local/bin \
   && "$DOCKER" cp "$NODE" "$BOX:/usr/local/bin/node" \
   && tar -C "$WORK/node" -c etc bin | "$DOCKER" cp - "$BOX:/usr/local" \
   && tar -C "$NODE_PREFIX" -c lib/node_modules/npm | "$DOCKER" cp - "$BOX:/usr/local" \
   && v=$(in_box node --version) && in_box npm --version >/dev/null; then
    ok "clean Debian $(in_box cat /etc/debian_version) container $BOX with node $v and npm"
else
    notok "node and npm into the container"; finish
fi

# The README's commands start with `make`, which a minimal Debian lacks: the one package
# the newcomer installs before the README (as `git` to clone it).
if in_box bash -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q make' \
        >"$WORK/make.log" 2>&1; then
    ok "apt-get install make ($(in_box dpkg-query -W -f='.' | wc -c) Debian packages in all)"
else
    tail -n 20 "$WORK/make.log"; notok "apt-get install make"; finish
fi

# ---- the checkout ----
rev=${WAYMARK_FRESH_REV:-}
in_box mkdir -p "$SRC"
if [ -n "$rev" ]; then
    what="commit $(git rev-parse --short "$rev" 2>/dev/null || echo "$rev")"
    git archive --format=tar "$rev" >"$WORK/src.tar" 2>"$WORK/src.err"
else
    what="the working tree"
    git ls-files -z -c -o --exclude-standard \
        | tar --null --ignore-failed-read -T - -cf "$WORK/src.tar" 2>"$WORK/src.err"
fi
if [ -s "$WORK/src.tar" ] && "$DOCKER" cp - "$BOX:$SRC" <"$WORK/src.tar" \
   && in_box test -f "$SRC/Makefile"; then
    ok "checkout copied in: $what ($(tar -tf "$WORK/src.tar" | grep -vc '/$') files)"
else
    cat "$WORK/src.err"; notok "copy the checkout ($what)"; finish
fi

# ---- `make run` ----
# make is started as a terminal's shell starts a foreground job: its own process group
# (set -m), SIGINT not ignored, so that Ctrl-C can be sent to that group.
t=$SECONDS
"$DOCKER" exec "$BOX" bash -c "set -m; cd $SRC && make run </dev/null & echo \$! >/tmp/make-run.pid; wait \$!" \
    >"$LOGS/make-run.log" 2>&1 &
RUN_EXEC=$!
url=""
deadline=$((SECONDS + ${WAYMARK_FRESH_RUN_TIMEOUT:-1800}))
# Waiting for output of a process that cannot tell us otherwise: re-read its log.
while [ $SECONDS -lt $deadline ]; do
    url=$(grep -m1 -oE 'http://127\.0\.0\.1:[0-9]+/\?as=alice' "$LOGS/make-run.log")
    [ -n "$url" ] && break
    kill -0 "$RUN_EXEC" 2>/dev/null || break
    sleep 1
done
if [ -n "$url" ]; then
    ok "make run printed the demo URL $url after $((SECONDS - t)) s"
else
    { grep -E 'error|Error|undefined reference|deps:|run-local:' "$LOGS/make-run.log" \
          || tail -n 5 "$LOGS/make-run.log"; } | tail -n 12 | sed 's/^/#   /'
    if kill -0 "$RUN_EXEC" 2>/dev/null; then
        notok "make run printed no demo URL within ${WAYMARK_FRESH_RUN_TIMEOUT:-1800} s (log: $LOGS/make-run.log)"
    else
        wait "$RUN_EXEC"
        notok "make run exited with status $? before printing the demo URL (log: $LOGS/make-run.log)"
    fi
fi

if [ -n "$url" ]; then
    # The page itself, fetched inside the container (a fresh machine has no curl; node is there).
    if page=$(in_box node -e '
        fetch(process.argv[1], {signal: AbortSignal.timeout(10000)})
          .then(async (r) => { const t = await r.text();
                               if (r.status !== 200) throw new Error("status " + r.status);
                               if (!t.includes("<title>Waymark demo</title>")) throw new Error("not the demo page");
                               console.log(r.status + ", " + t.length + " bytes"); })
          .catch((e) => { console.log(String(e)); process.exit(1); })' "$url"); then
        ok "the demo URL serves the demo page ($page)"
    else
        notok "the demo URL serves the demo page ($page)"
    fi

    # Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group.
    t=$SECONDS
    in_box bash -c 'kill -INT -- -"$(cat /tmp/make-run.pid)"'
    deadline=$((SECONDS + 60))
    while kill -0 "$RUN_EXEC" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$RUN_EXEC" 2>/dev/null; then
        notok "make run still running 60 s after Ctrl-C"
    else
        wait "$RUN_EXEC"
        rc=$?
        RUN_EXEC=""
        if [ $rc -eq 0 ] || [ $rc -eq 130 ]; then
            ok "Ctrl-C stopped make run in $((SECONDS - t)) s (exit status $rc)"
        else
            tail -n 5 "$LOGS/make-run.log" | sed 's/^/#   /'
            notok "make run ended with status $rc on Ctrl-C"
        fi
    fi
    # What is left: every process of the container but its init, our sleep and this probe.
    left=$(in_box bash -c 'for p in /proc/[0-9]*; do
              [ "${p#/proc/}" = $$ ] && continue
              c=$(tr "\0" " " <"$p/cmdline" 2>/dev/null) || continue
              [ -n "$c" ] && echo "${p#/proc/} $c"; done' \
           | grep -vE '^1 |^[0-9]+ sleep infinity $' \
           | grep -E 'redis-server|waymark-|php|node|make|run-local' )
    if [ -z "$left" ]; then
        ok "nothing left running after Ctrl-C (no redis-server, waymark-*, php, node)"
    else
        echo "$left" | sed 's/^/#   left: /'
        notok "processes left running after Ctrl-C"
    fi
fi

# ---- `make test` (the compose suite runs on the host, not in here) ----
t=$SECONDS
timeout --kill-after=30 "${WAYMARK_FRESH_TEST_TIMEOUT:-2400}" \
    "$DOCKER" exec -e WAYMARK_SKIP_COMPOSE=1 "$BOX" bash -c "cd $SRC && make test </dev/null" \
    >"$LOGS/make-test.log" 2>&1
rc=$?
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOGS/make-test.log" | tail -n1)
# The runner's per-suite summary, for the record.
sed -n '/^=== results$/,$p' "$LOGS/make-test.log" | sed 's/^/#   /'
if [ $rc -eq 0 ] && [ -n "$line" ] && [ "${line#*passed, }" = "0 failed" ]; then
    ok "make test (WAYMARK_SKIP_COMPOSE=1) in $((SECONDS - t)) s: $line"
else
    [ -n "$line" ] || tail -n 25 "$LOGS/make-test.log" | sed 's/^/#   /'
    notok "make test (WAYMARK_SKIP_COMPOSE=1) exit status $rc: ${line:-no summary line} (log: $LOGS/make-test.log)"
fi

"$DOCKER" rm -f "$BOX" >/dev/null 2>&1 && BOX_UP=0
if [ -n "$DOCKERD_PID" ]; then
    pid=$DOCKERD_PID
    if docker_stop; then ok "stopped the dockerd it started (pid $pid)"; else notok "stop dockerd $pid"; fi
fi
finish
