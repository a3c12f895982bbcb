#!/usr/bin/env bash
# Builds the local Debian base image every Waymark image starts FROM (no registry is
# needed): debootstrap --variant=minbase from this machine's own apt mirror, imported
# with `docker import`. Skips the work when the image exists (--force rebuilds).
# Usage: deploy/build-base.sh [--force]     Env: WAYMARK_BASE_IMAGE, WAYMARK_BASE_SUITE
set -euo pipefail

IMAGE=${WAYMARK_BASE_IMAGE:-waymark/debian-base:bookworm}
SUITE=${WAYMARK_BASE_SUITE:-bookworm}
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

die() { echo "build-base: $*" >&2; exit 1; }

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "build-base: $IMAGE already present (use --force to rebuild)"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"

# The machine's own Debian mirror: the first URIs: of a deb822 file, else the first
# "deb" line of sources.list. Only the Debian sources are copied into the image.
SOURCES=""
MIRROR=""
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    m=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$f")
    if [ -n "$m" ]; then SOURCES=$f; MIRROR=$m; break; fi
done
if [ -z "$MIRROR" ] && [ -f /etc/apt/sources.list ]; then
    MIRROR=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    SOURCES=/etc/apt/sources.list
fi
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/*.sources}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/waymark-base.XXXXXX")
cleanup() {
    # debootstrap can leave /proc or /sys mounted in the rootfs after a failure.
    for m in $(awk -v r="$WORK/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
ROOTFS=$WORK/rootfs

echo "build-base: debootstrap $SUITE from $MIRROR"
start=$SECONDS
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

# apt inside `docker build` reaches the same mirror; nothing of it stays in a layer.
rm -f "$ROOTFS/etc/apt/sources.list"
cp "$SOURCES" "$ROOTFS/etc/apt/$( [ "${SOURCES##*.}" = sources ] && echo sources.list.d/debian.sources || echo sources.list)"
cat >"$ROOTFS/etc/apt/apt.conf.d/90waymark-slim" <<'CONF'
// Container image: keep no .deb files, no package lists beyond the build, no recommends.
APT::Keep-Downloaded-Packages "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
CONF
# Packages installed during `docker build` must not try to start their services.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/90waymark-nodoc" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CONF
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/log/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/tmp/*

tar -C "$ROOTFS" --numeric-owner -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "build-base: $IMAGE built in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1 / 1e6}'))"
