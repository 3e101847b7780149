#!/usr/bin/env bash
# The whole test suite: installs what it needs (npm packages, Docker engine,
# the shed-base image), builds the CLI and server, runs every test against the
# real engine and the real OpenSSH client, and ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
# A step before the tests that fails (setup, build, types, lint) still ends with the summary line.
trap 'echo "0 passed, 1 failed"' ERR
bash scripts/setup.sh
npm run --silent build
npx tsc --noEmit
npx biome check src test bench scripts
report=$(mktemp /tmp/shed-vitest.XXXXXX.json)
set +e
trap - ERR
# A bound on the whole run, well inside CI's 90 minutes: a run that hangs ends with a failure line, not a CI timeout.
timeout --kill-after=30s "${SHED_TEST_TIMEOUT:-75m}" npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then echo "the test run did not finish within ${SHED_TEST_TIMEOUT:-75m}" >&2; fi
set -e
# A test that did not run because its file failed (a beforeAll, an import) counts as failed, never as skipped.
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
let passed = 0, failed = 0, skipped = 0;
for (const file of r.testResults) {
  const fileFailed = file.status === "failed";
  if (fileFailed && file.assertionResults.length === 0) failed++;
  for (const t of file.assertionResults) {
    if (t.status === "passed") passed++;
    else if (t.status === "failed" || fileFailed) failed++;
    else skipped++;
  }
}
if (skipped) console.log(`(${skipped} skipped on purpose)`);
console.log(`${passed} passed, ${failed} failed`);
' "$report" || echo "0 passed, 1 failed"
exit $status
