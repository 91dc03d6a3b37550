#!/usr/bin/env bash
# GetState benchmark of the Java SDK over gRPC (Unix socket) and shared memory against a
# sidecar with the in-memory state store; writes sdk-java/BENCHMARK.md.
#
#   examples/java/bench.sh                 # 20k warm-up, 100k calls, 1 and 4 callers
#   CALLS=20000 examples/java/bench.sh     # shorter
source "$(cd "$(dirname "$0")" && pwd)/common.sh"
export OUTRIG_APP_ID="${OUTRIG_APP_ID:-java-bench}"
calls="${CALLS:-100000}"; warmup="${WARMUP:-20000}"; threads="${THREADS:-4}"
build_all
start_sidecar
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
table="$(java -Daddress="$OUTRIG_ADDRESS" -Dshm="${OUTRIG_SHM_SOCKET:-}" -Dcalls="$calls" \
  -Dwarmup="$warmup" -Dthreads="$threads" -cp "$classpath" dev.outrig.examples.GetStateBench)"
echo "$table"
out="$repo/sdk-java/BENCHMARK.md"
{
  echo "# Java SDK: GetState through the sidecar"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "- load average (1/5/15 min) before the run: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) — the 2 cores are shared with other work, so treat the tails (p99, p99.9) as upper bounds"
  echo "- JVM: $(java -version 2>&1 | head -1)"
  echo "- sidecar: \`outrig sidecar\` built from $(cd "$repo" && git rev-parse --short HEAD), \`state.in-memory\` store, 100-byte value, the sidecar and the JVM on the same 2 cores"
  echo "- command: \`CALLS=$calls WARMUP=$warmup THREADS=$threads examples/java/bench.sh\`"
  echo "- method: $warmup warm-up calls, then $calls timed GetState calls (System.nanoTime around each blocking call); \"callers\" threads each make calls/callers calls back to back; ops/s = calls / wall time"
  echo
  echo "$table"
} > "$out"
echo "wrote $out"
