#!/usr/bin/env bash
# Builds the default shed image (shed-base:latest) offline, from Debian's packages:
# debootstrap makes a rootfs, `docker import` turns it into an image, and
# image/Dockerfile adds the shed user and layout. The recipe's hash is stored as a
# label, so a second run is a no-op unless the recipe changed (or --force).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SHED_IMAGE:-shed-base:latest}
SUITE=${SHED_IMAGE_SUITE:-bookworm}
MIRROR=${SHED_IMAGE_MIRROR:-http://deb.debian.org/debian}
PACKAGES=bash,git,tmux,openssh-client,openssh-sftp-server,ca-certificates,curl,procps,sudo,less,locales,gnupg,netcat-openbsd,xz-utils
force=0
[ "${1:-}" = "--force" ] && force=1

recipe=$(cat scripts/build-image.sh image/Dockerfile; echo "$SUITE $MIRROR $PACKAGES")
hash=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)

if [ "$force" = 0 ]; then
  have=$(docker image inspect --format '{{ index .Config.Labels "dev.shed.recipe" }}' "$IMAGE" 2>/dev/null || true)
  if [ "$have" = "$hash" ]; then
    echo "image $IMAGE is up to date (recipe $hash)"
    exit 0
  fi
fi

command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
work=$(mktemp -d /tmp/shed-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "debootstrap $SUITE into $work (a few minutes)..."
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "debootstrap failed; full log above" >&2
  exit 1
}
# Keep the image small and free of the build machine's traces.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$work/rootfs/etc/apt/sources.list"

base="shed-rootfs:$hash"
echo "importing rootfs as $base..."
tar -C "$work/rootfs" -c . | docker import - "$base" >/dev/null

echo "building $IMAGE..."
docker build --quiet --build-arg "BASE=$base" --label "dev.shed.recipe=$hash" -t "$IMAGE" image >/dev/null
docker image rm "$base" >/dev/null 2>&1 || true
echo "image $IMAGE built (recipe $hash)"
