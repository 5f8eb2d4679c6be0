#!/usr/bin/env bash
# The whole test suite: set-up (installs what is missing), typecheck (the build), lint,
# then every unit, contract and integration test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
# --browser: Debian's chromium for the web UI's end-to-end tests (test/e2e/ui.test.ts).
bash scripts/setup.sh --browser "$@"
echo "[test] lint (eslint)"
npx eslint --max-warnings=0 .
echo "[test] node --test"
mkdir -p test-output
files=$(find dist/src dist/test -name '*.test.js' | sort)
# shellcheck disable=SC2086
exec node --test --test-concurrency=2 --test-timeout=600000 --test-reporter=spec $files
