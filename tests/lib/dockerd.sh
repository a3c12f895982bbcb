# shellcheck shell=bash
# tests/lib/dockerd.sh, sourced by the tests that need a container engine
# (tests/compose/compose-test.sh, tests/fresh/fresh-test.sh): installs docker.io,
# docker-compose and debootstrap when missing, uses the running dockerd or starts a
# private one (data and exec roots in the caller's temp dir, its own socket), builds the
# Debian base image (deploy/build-base.sh) and stops the dockerd it started.
# The caller defines ok/notok/note (its TAP lines) and sets WORK (its temp dir); each
# function reports through them and returns non-zero on failure.
# Env: WAYMARK_DOCKER_ROOT  keep a started dockerd's data root there (images cached
#        between runs; one dockerd at a time per root; default: inside WORK)

DOCKERD_PID=""

# Readiness of things that cannot tell us: re-check with a short pause until a deadline.
poll() {   # poll SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

# The packages for an engine and the base image; a fresh machine has none of them.
docker_packages() {
    local missing=""
    command -v dockerd >/dev/null || missing="$missing docker.io"
    command -v docker-compose >/dev/null || missing="$missing docker-compose"
    command -v debootstrap >/dev/null || missing="$missing debootstrap"
    [ -n "$missing" ] || return 0
    if [ "$(id -u)" != 0 ]; then
        notok "packages missing:$missing (as root: apt-get install -y$missing)"
        return 1
    fi
    note "installing$missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
            >"$WORK/apt.log" 2>&1 \
        || { apt-get update -q >>"$WORK/apt.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                    $missing >>"$WORK/apt.log" 2>&1; } \
        || { tail -n 20 "$WORK/apt.log"; notok "install$missing"; return 1; }
}

# Sets DOCKER (the CLI) and DOCKER_HOST: the running dockerd, else our own.
docker_start() {
    # The Debian CLI matches the Debian daemon; a newer docker earlier on PATH works too.
    DOCKER=$(command -v docker) || { notok "no docker CLI"; return 1; }
    if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ] && "$DOCKER" info >/dev/null 2>&1; then
        note "using the running dockerd (/var/run/docker.sock)"
        export DOCKER_HOST=unix:///var/run/docker.sock
        return 0
    fi
    if [ -n "${DOCKER_HOST:-}" ] && "$DOCKER" info >/dev/null 2>&1; then
        note "using the running dockerd ($DOCKER_HOST)"
        return 0
    fi
    local data=${WAYMARK_DOCKER_ROOT:-$WORK/docker}
    mkdir -p "$data" "$WORK/exec"
    dockerd --data-root "$data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
        -H "unix://$WORK/docker.sock" >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    export DOCKER_HOST=unix://$WORK/docker.sock
    if poll 60 "$DOCKER" info; then
        ok "started dockerd (pid $DOCKERD_PID, data root $data)"
    else
        tail -n 20 "$WORK/dockerd.log"
        notok "start dockerd"
        return 1
    fi
}

# Stops the dockerd docker_start started (nothing when it used a running one).
docker_stop() {
    [ -n "$DOCKERD_PID" ] || return 0
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    if ! poll 30 sh -c "! kill -0 $DOCKERD_PID"; then
        kill -KILL "$DOCKERD_PID" 2>/dev/null
        poll 5 sh -c "! kill -0 $DOCKERD_PID"
    fi
    ! kill -0 "$DOCKERD_PID" 2>/dev/null
    local rc=$?
    # containerd-shim mounts left by a killed daemon would keep the temp dir busy.
    local m
    for m in $(awk -v r="$WORK/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null
    done
    DOCKERD_PID=""
    return $rc
}

# The local Debian 12 base image every Waymark image and the fresh-test machine start from.
docker_base_image() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    if "$root/deploy/build-base.sh" >"$WORK/base.log" 2>&1; then
        ok "base image ($(tail -n 1 "$WORK/base.log" | sed 's/^build-base: //'))"
    else
        tail -n 20 "$WORK/base.log"; notok "base image"; return 1
    fi
}
