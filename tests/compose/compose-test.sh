#!/usr/bin/env bash
# `make compose-test`: the docker-compose deployment of deploy/ tested for real. Uses the
# running dockerd or starts its own (data root in a temp dir), builds every image, brings
# the stack up with three fetchers and runs tests/compose/compose.test.mjs against the
# published ports; then `docker-compose down` must leave nothing behind, and the dockerd
# it started is stopped. Prints TAP lines and ends with "N passed, N failed".
# The engine and the base image come from tests/lib/dockerd.sh (shared with fresh-test).
# Env: WAYMARK_DOCKER_ROOT          keep the started dockerd's data root there (image
#        cache between runs; default: inside the temp dir, removed at the end)
#      WAYMARK_COMPOSE_KEEP=1       leave the stack and dockerd running on failure
#      WAYMARK_COMPOSE_TIMEOUT      seconds for the node checks (default 600)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
TAP_NAME=compose-test
# shellcheck source=tests/lib/tap.sh
. "$ROOT/tests/lib/tap.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/waymark-compose.XXXXXX")
PROJECT=wmct$$
STACK_UP=0
COMPOSE_FILES=(-f deploy/docker-compose.yml -f deploy/docker-compose.ha.yml)

# shellcheck source=tests/lib/dockerd.sh
. "$ROOT/tests/lib/dockerd.sh"
# WAYMARK_COMPOSE_DOCKER_ROOT: the older name of WAYMARK_DOCKER_ROOT.
[ -n "${WAYMARK_COMPOSE_DOCKER_ROOT:-}" ] && export WAYMARK_DOCKER_ROOT=${WAYMARK_DOCKER_ROOT:-$WAYMARK_COMPOSE_DOCKER_ROOT}

# ---- packages: a fresh CI machine has none of them ----
docker_packages || { rm -rf "$WORK"; finish; }
if ! command -v node >/dev/null || [ ! -d tests/node_modules/autobahn ]; then
    notok "node and tests/node_modules (cd tests && npm ci) are required"; rm -rf "$WORK"; finish
fi

compose() { docker-compose -p "$PROJECT" "${COMPOSE_FILES[@]}" "$@"; }

cleanup() {
    trap - EXIT INT TERM
    if [ "${WAYMARK_COMPOSE_KEEP:-0}" = 1 ] && [ "$fail" -gt 0 ]; then
        echo "# kept: DOCKER_HOST=$DOCKER_HOST docker-compose -p $PROJECT ${COMPOSE_FILES[*]} (dockerd pid ${DOCKERD_PID:-none}, dir $WORK)"
        return
    fi
    [ "$STACK_UP" = 1 ] && compose down --remove-orphans --timeout 10 >/dev/null 2>&1
    docker_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the container engine: the running one, or our own ----
docker_start || finish
volumes_before=$("$DOCKER" volume ls -q | sort)

# ---- settings: free loopback ports, a fresh secret in an env file outside the tree ----
read -r P_WS P_WS2 P_LB P_REDIS P_BACKEND P_PROM < <(node -e '
  const net = require("net");
  const ps = [...Array(6)].map(() => new Promise((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); });
  }));
  Promise.all(ps).then((a) => console.log(a.join(" ")));')
PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$WORK/waymark.env" <<EOF
REDIS_PASSWORD=$PASSWORD
WAYMARK_REDIS_URL=redis://:$PASSWORD@redis:6379
EOF
export WAYMARK_ENV_FILE=$WORK/waymark.env WAYMARK_PUBLISH_ADDR=127.0.0.1 \
    WAYMARK_PUBLISH_WS=$P_WS WAYMARK_PUBLISH_WS2=$P_WS2 WAYMARK_PUBLISH_LB=$P_LB \
    WAYMARK_PUBLISH_REDIS=$P_REDIS WAYMARK_PUBLISH_BACKEND=$P_BACKEND \
    WAYMARK_PUBLISH_PROMETHEUS=$P_PROM WAYMARK_TAG=compose-test WAYMARK_LOG_LEVEL=info

# ---- images ----
docker_base_image || finish
t=$SECONDS
# The Waymark image once (gateway), in parallel with the service images; then the other
# Waymark services, which find it in the layer cache.
if compose build --parallel gateway redis backend prometheus haproxy >"$WORK/build.log" 2>&1 \
   && compose build dispatcher fetcher >>"$WORK/build.log" 2>&1 \
   && docker-compose -p "$PROJECT" "${COMPOSE_FILES[@]}" -f deploy/docker-compose.demo.yml \
        build backend >>"$WORK/build.log" 2>&1; then
    ok "docker-compose build: every image in $((SECONDS - t)) s"
else
    grep -v -E '^ *(Get|Unpacking|Setting up|Selecting|Preparing)' "$WORK/build.log" | tail -n 40
    notok "docker-compose build"; finish
fi
if "$DOCKER" history --no-trunc waymark/waymark:compose-test 2>/dev/null | grep -qF "$PASSWORD" \
   || "$DOCKER" image inspect waymark/waymark:compose-test waymark/redis:compose-test | grep -qF "$PASSWORD"; then
    notok "no secret in any image"
else
    ok "no secret in any image"
fi
uid=$("$DOCKER" image inspect -f '{{.Config.User}}' waymark/waymark:compose-test)
if [ -n "$uid" ] && [ "$uid" != root ] && [ "$uid" != 0 ] \
   && "$DOCKER" run --rm waymark/waymark:compose-test \
        sh -c 'for c in gcc cc make; do command -v $c && exit 1; done; exit 0' >/dev/null; then
    ok "waymark image runs as '$uid' and carries no compiler"
else
    notok "waymark image runs as non-root ($uid) without a compiler"
fi

# ---- the stack: base file only, three fetchers ----
COMPOSE_FILES=(-f deploy/docker-compose.yml)
t=$SECONDS
STACK_UP=1
if compose up -d --scale fetcher=3 >"$WORK/up.log" 2>&1; then
    ok "docker-compose up -d --scale fetcher=3 ($((SECONDS - t)) s)"
else
    cat "$WORK/up.log"; notok "docker-compose up"
fi
COMPOSE_FILES=(-f deploy/docker-compose.yml -f deploy/docker-compose.ha.yml -f deploy/docker-compose.demo.yml)

# ---- the end-to-end checks, from the host through the published ports ----
export WM_CT_PROJECT=$PROJECT WM_CT_WORK=$WORK WM_CT_PASSWORD=$PASSWORD WM_CT_DOCKER=$DOCKER
timeout "${WAYMARK_COMPOSE_TIMEOUT:-600}" node tests/compose/compose.test.mjs >"$WORK/node.out" 2>&1
rc=$?
# Renumber the node checks into this run's TAP stream.
while IFS= read -r line; do
    case $line in
        "ok "*) ok "${line#ok * - }" ;;
        "not ok "*) notok "${line#not ok * - }" ;;
        *) echo "$line" ;;
    esac
done <"$WORK/node.out"
if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$WORK/node.out"; then
    notok "compose.test.mjs exited with status $rc"
fi
if [ "$fail" -gt 0 ]; then
    for s in $(compose ps --services 2>/dev/null); do
        echo "# --- logs: $s"
        compose logs --no-color --tail 15 "$s" 2>&1 | sed 's/^/#   /'
    done
fi
[ "${WAYMARK_COMPOSE_KEEP:-0}" = 1 ] && [ "$fail" -gt 0 ] && finish

# ---- down leaves nothing behind ----
t=$SECONDS
if compose down --remove-orphans --timeout 10 >"$WORK/down.log" 2>&1; then
    STACK_UP=0
    ok "docker-compose down ($((SECONDS - t)) s)"
else
    cat "$WORK/down.log"; notok "docker-compose down"
fi
left_c=$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
left_n=$("$DOCKER" network ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
new_v=$(comm -13 <(echo "$volumes_before") <("$DOCKER" volume ls -q | sort) | grep -c . )
if [ "$left_c" -eq 0 ] && [ "$left_n" -eq 0 ] && [ "$new_v" -eq 0 ]; then
    ok "nothing left: 0 containers, 0 networks, 0 volumes"
else
    notok "left behind: $left_c containers, $left_n networks, $new_v volumes"
fi

if [ -n "$DOCKERD_PID" ]; then
    pid=$DOCKERD_PID
    if docker_stop; then ok "stopped the dockerd it started (pid $pid)"; else notok "stop dockerd $pid"; fi
fi
finish
