#!/usr/bin/env bash
# Benchmarks (not part of the test suite): exec and create against their Docker
# floors, hook overhead, hook log streaming, and `shed list` and server memory
# with 50 sheds on one server. Prints medians and ratios and
# writes bench/results.json. Usage: npm run bench [-- --quick]
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
