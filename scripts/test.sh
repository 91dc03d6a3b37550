#!/usr/bin/env bash
# The test run behind `make test`: brings up the real backends (installing
# what is missing), then runs every Go test with the race detector.
# Integration tests fail (never skip) when a backend is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
if [[ "${OUTRIG_SKIP_BACKENDS:-}" != "1" ]]; then
  scripts/backends.sh up
fi
export OUTRIG_REQUIRE_BACKENDS=1

go test -race -count=1 -timeout 25m ./... ./api/... ./sdk-go/...
sdk-java/run-tests.sh
echo "make test: $(( $(date +%s) - start ))s"
