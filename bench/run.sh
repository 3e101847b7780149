#!/usr/bin/env bash
# Benchmarks (not part of the test suite): Shed beside the reference dev-container CLI
# (@devcontainers/cli, a dev dependency) and plain Docker, the systems alternating in one run:
# create/stop/start/delete of a repo with hooks, exec, CLI start-up, `shed list` and server memory
# with 50 sheds, empty create, hook overhead and streaming. Prints medians, ratios and issue 12's
# targets, and writes bench/results.json (full runs only).
# Usage: npm run bench [-- --quick] [-- --only version|exec|create|lifecycle|hooks|stream|fifty]
# `npm run bench -- --vm` measures the QEMU backend beside Docker instead (bench/vm-results.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
npm run --silent build
if [ "${1:-}" = --vm ]; then
  shift
  exec npx tsx bench/vm.ts "$@"
fi
exec npx tsx bench/bench.ts "$@"
