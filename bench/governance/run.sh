#!/usr/bin/env bash
# Runs the governance chain benchmarks in interleaved rounds (every
# benchmark once per round, so that load changes on a shared machine hit all
# of them alike) and summarises them with benchstat when it is installed:
#   go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
#
# Usage: bench/governance/run.sh [rounds] [benchtime]   (default 6 300ms)
# Raw results: $OUT (default /tmp/outrig-governance-bench.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-6}
benchtime=${2:-300ms}
out=${OUT:-/tmp/outrig-governance-bench.txt}
bin=$(mktemp /tmp/outrig-governance-bench.XXXXXX)
trap 'rm -f "$bin"' EXIT
go test -c -o "$bin" ./bench/governance
: >"$out"
for i in $(seq "$rounds"); do
	echo "round $i/$rounds" >&2
	"$bin" -test.run '^$' -test.bench . -test.benchmem -test.cpu 2 -test.count 1 -test.benchtime "$benchtime" >>"$out"
done
if grep -q -- '--- FAIL' "$out"; then
	grep -A2 -- '--- FAIL' "$out" >&2
	exit 1
fi
benchstat=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [ -x "$benchstat" ]; then
	"$benchstat" "$out"
else
	echo "benchstat not installed; raw results in $out" >&2
fi
