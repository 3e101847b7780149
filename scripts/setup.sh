#!/usr/bin/env bash
# Makes this machine ready to run Shed and its tests, idempotently: npm packages,
# the Docker engine (Debian's docker.io, started if not running), OpenSSH client,
# tmux, debootstrap, QEMU and passt, the shed-base image (rebuilt only when its recipe
# changes) and the VM image built from it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v ssh >/dev/null || need_apt+=(openssh-client)
command -v git >/dev/null || need_apt+=(git)
command -v python3 >/dev/null || need_apt+=(python3)
# The attach tests drive `shed attach` inside a tmux on the host, which plays the user's terminal.
command -v tmux >/dev/null || need_apt+=(tmux)
# The VM image's build unpacks the kernel with lz4 (Debian's x86 kernels; scripts/extract-vmlinux.sh).
command -v lz4 >/dev/null || need_apt+=(lz4)
# The service test checks shed-server's systemd unit with systemd's own parser (systemd-analyze verify).
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The QEMU backend and its tests boot VMs (KVM when present, else software emulation), with
# pasta (Debian's passt) as their network; without recommends, qemu-system-x86 does not pull
# in a desktop's worth of packages.
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null || ! command -v pasta >/dev/null; then
  echo "setup: installing qemu-system-x86 qemu-utils passt from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-system-x86 qemu-utils passt >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/shed-dockerd.log)"
  nohup dockerd >/var/log/shed-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/shed-dockerd.log" >&2; tail -n 20 /var/log/shed-dockerd.log >&2; exit 1; }
fi

bash scripts/build-image.sh
# The VM image holds the agent from dist/agent/, so the build comes first.
[ -f dist/agent/shed-agent.cjs ] || npm run build
bash scripts/build-vm-image.sh
