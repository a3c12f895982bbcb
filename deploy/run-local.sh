#!/usr/bin/env bash
# `make run`: a whole Waymark on this machine to try by hand: a private redis-server, the
# PHP demo backend (demo/), the dispatcher, the gateway and two fetchers, all on
# loopback. Ctrl-C (or SIGTERM) stops everything and removes the temp dir.
# Usage: deploy/run-local.sh [BUILD]
# Settings: WAYMARK_LISTEN (default 127.0.0.1:8800), WAYMARK_DEMO_REDIS_PORT (default: a
# free port), WAYMARK_DEMO_BACKEND_PORT (default: a free port), WAYMARK_LOG_LEVEL (info),
# WAYMARK_METRICS_BASE (default 9100: gateway 9100, dispatcher 9101, fetchers 9102, 9103).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

die() { echo "run-local: $*" >&2; exit 1; }

for b in waymark-dispatcher waymark-gateway waymark-fetcher waymark-bump; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: run make first"
done
command -v redis-server >/dev/null || die "redis-server not found: run make deps (Debian package redis-server)"
command -v node >/dev/null || die "node not found (Node.js 20+ comes with the machine)"
command -v php >/dev/null || die "php not found: run make deps (Debian packages php-cli php-redis)"

# True when something accepts connections on host:port.
in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
# A port nothing listens on, chosen by the kernel.
free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
# host:port -> "host port"; ":port" and "port" mean 127.0.0.1.
split_listen() {
    local v=$1
    case $v in
        *:*) local h=${v%:*} p=${v##*:}; echo "${h:-127.0.0.1} $p" ;;
        *) echo "127.0.0.1 $v" ;;
    esac
}
need_free() {   # need_free WHAT host port SETTING
    if in_use "$2" "$3"; then
        die "$1 port $2:$3 is already in use (another Waymark or service?). Free it or set $4."
    fi
}

LISTEN=${WAYMARK_LISTEN:-127.0.0.1:8800}
read -r WS_HOST WS_PORT < <(split_listen "$LISTEN")
need_free "websocket" "$WS_HOST" "$WS_PORT" "WAYMARK_LISTEN to another host:port"

MBASE=${WAYMARK_METRICS_BASE:-9100}
M_GW=127.0.0.1:$MBASE
M_DP=127.0.0.1:$((MBASE + 1))
M_F1=127.0.0.1:$((MBASE + 2))
M_F2=127.0.0.1:$((MBASE + 3))
for m in "$M_GW" "$M_DP" "$M_F1" "$M_F2"; do
    need_free "metrics" "${m%:*}" "${m##*:}" "WAYMARK_METRICS_BASE to another first port (4 ports are used)"
done

REDIS_PORT=${WAYMARK_DEMO_REDIS_PORT:-$(free_port)}
need_free "redis" 127.0.0.1 "$REDIS_PORT" "WAYMARK_DEMO_REDIS_PORT to another port"
BACKEND_PORT=${WAYMARK_DEMO_BACKEND_PORT:-$(free_port)}
need_free "backend" 127.0.0.1 "$BACKEND_PORT" "WAYMARK_DEMO_BACKEND_PORT to another port"
BUMP_EP=${WAYMARK_BUMP_ENDPOINT:-tcp://127.0.0.1:$(free_port)}
FETCH_EP=${WAYMARK_FETCH_ENDPOINT:-tcp://127.0.0.1:$(free_port)}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/waymark-run.XXXXXX")
pids=()
names=()

cleanup() {
    trap - EXIT INT TERM
    local i
    for i in "${!pids[@]}"; do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
    done
    # Bounded wait for each child, then SIGKILL whatever is left.
    local deadline=$((SECONDS + 5))
    for i in "${!pids[@]}"; do
        while kill -0 "${pids[$i]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        kill -KILL "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    rm -rf "$TMP"
    echo "run-local: stopped everything, removed $TMP" >&2
}
trap cleanup EXIT
trap 'exit 0' INT   # Ctrl-C is the normal way to stop: not an error
trap 'exit 0' TERM

# Each child runs in its own session (setsid), so Ctrl-C reaches only this script, whose
# trap then stops the children in order with SIGTERM.
start() {   # start NAME LOGFILE-or-"-" CMD...
    local name=$1 log=$2
    shift 2
    if [ "$log" = - ]; then setsid "$@" & else setsid "$@" >"$log" 2>&1 & fi
    pids+=("$!")
    names+=("$name")
}

# Waits (bounded) until probe succeeds; fails if the process died.
wait_ready() {   # wait_ready NAME SECONDS PROBE...
    local name=$1 secs=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@" 2>/dev/null; do
        local i
        for i in "${!names[@]}"; do
            if [ "${names[$i]}" = "$name" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
                die "$name exited during startup (see the messages above or $TMP)"
            fi
        done
        [ $SECONDS -lt $deadline ] || die "$name not ready after ${secs}s"
        sleep 0.1
    done
}
http_ok() {
    node -e 'fetch(process.argv[1],{signal:AbortSignal.timeout(1000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))' "$1"
}

mkdir -p "$TMP/redis"
start redis "$TMP/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$TMP/redis" --daemonize no
wait_ready redis 10 in_use 127.0.0.1 "$REDIS_PORT"

# One PHP process (no PHP_CLI_SERVER_WORKERS): its workers would outlive a SIGTERM.
start backend "$TMP/backend.log" env WAYMARK_DEMO_DATA="$TMP/demo-data" \
    WAYMARK_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" WAYMARK_DEMO_WS_URL="ws://$WS_HOST:$WS_PORT/" \
    php -S "127.0.0.1:$BACKEND_PORT" "$ROOT/demo/public/index.php"
wait_ready backend 10 http_ok "http://127.0.0.1:$BACKEND_PORT/healthz"

export WAYMARK_BACKEND_URL=${WAYMARK_BACKEND_URL:-http://127.0.0.1:$BACKEND_PORT}
export WAYMARK_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export WAYMARK_LISTEN=$LISTEN
export WAYMARK_BUMP_ENDPOINT=$BUMP_EP
export WAYMARK_FETCH_ENDPOINT=$FETCH_EP
export WAYMARK_LOG_LEVEL=${WAYMARK_LOG_LEVEL:-info}

# Daemon logs (logfmt) go to this terminal.
WAYMARK_METRICS_LISTEN=$M_DP start dispatcher - "$BUILD/waymark-dispatcher"
WAYMARK_METRICS_LISTEN=$M_GW start gateway - "$BUILD/waymark-gateway"
WAYMARK_METRICS_LISTEN=$M_F1 start fetcher1 - "$BUILD/waymark-fetcher"
WAYMARK_METRICS_LISTEN=$M_F2 start fetcher2 - "$BUILD/waymark-fetcher"
wait_ready dispatcher 15 http_ok "http://$M_DP/healthz"
wait_ready gateway 15 http_ok "http://$M_GW/healthz"
wait_ready fetcher1 15 http_ok "http://$M_F1/healthz"
wait_ready fetcher2 15 http_ok "http://$M_F2/healthz"

CHANNEL=${WAYMARK_REDIS_CHANNEL:-waymark}
cat <<EOF

  Waymark is running (temp dir $TMP).
  open the demo as two users:    http://127.0.0.1:$BACKEND_PORT/?as=alice
                                 http://127.0.0.1:$BACKEND_PORT/?as=bob      (and ?as=nobody: no access)
  save a profile (bumps it):     curl -H 'Authorization: Bearer tok-alice' -H 'Content-Type: application/json' \\
                                      -d '{"bio":"hi"}' http://127.0.0.1:$BACKEND_PORT/users/1
  websocket (WAMP, realm ${WAYMARK_REALM:-waymark}):  ws://$WS_HOST:$WS_PORT/   subprotocols wamp.2.json, wamp.2.msgpack
  tokens (auth method "ticket"): tok-alice (owns /users/1), tok-bob (owns /users/2), tok-nobody (403)
  bump from the shell:           WAYMARK_REDIS_URL=$WAYMARK_REDIS_URL $BUILD/waymark-bump /users/1
                  or:            redis-cli -p $REDIS_PORT PUBLISH $CHANNEL /users/1
  metrics:                       http://$M_GW/metrics  http://$M_DP/metrics  http://$M_F1/metrics  http://$M_F2/metrics
  Ctrl-C stops everything.

EOF

# Until Ctrl-C/SIGTERM (the traps exit) or until any process dies.
set +e
wait -n "${pids[@]}"
rc=$?
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "run-local: ${names[$i]} exited (status $rc); stopping the rest" >&2
    fi
done
exit 1
