#!/usr/bin/env bash
# The whole test suite: installs what it needs (npm packages, Docker engine,
# the shed-base image), builds the CLI and server, runs every test against the
# real engine and the real OpenSSH client, and ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
npx tsc --noEmit
npx biome check src test bench scripts
report=$(mktemp /tmp/shed-vitest.XXXXXX.json)
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
set -e
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$report" || echo "0 passed, 1 failed"
exit $status
