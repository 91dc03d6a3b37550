#!/usr/bin/env bash
# GetState benchmark of the Java SDK over gRPC (Unix socket; Multiplex streams and unary calls)
# and shared memory against a sidecar with the in-memory state store, side by side with the Go
# SDK (bench/sdkget, the
# same calls measured the same way) against the same sidecar in the same run, alternating
# Java and Go for ROUNDS rounds. Rewrites the "Java SDK" section of docs/benchmarks.md.
#
#   examples/java/bench.sh                 # 20k warm-up, 100k calls, 1 and 4 callers, 2 rounds
#   CALLS=20000 ROUNDS=1 examples/java/bench.sh     # shorter
#   DOC= examples/java/bench.sh            # print only, leave docs/benchmarks.md alone
source "$(cd "$(dirname "$0")" && pwd)/common.sh"
export OUTRIG_APP_ID="${OUTRIG_APP_ID:-java-bench}"
calls="${CALLS:-100000}"; warmup="${WARMUP:-20000}"; threads="${THREADS:-4}"; rounds="${ROUNDS:-2}"
doc="${DOC-$repo/docs/benchmarks.md}"
build_all
(cd "$repo" && go build -o "$work/sdkget" ./bench/sdkget)
start_sidecar
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=""
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: Java"
  out="$(java -Daddress="$OUTRIG_ADDRESS" -Dshm="${OUTRIG_SHM_SOCKET:-}" -Dcalls="$calls" \
    -Dwarmup="$warmup" -Dthreads="$threads" -cp "$classpath" dev.outrig.examples.GetStateBench)"
  rows+="$(sed "s/^| /| $r | /" <<<"$out")"$'\n'
  echo "round $r/$rounds: Go"
  out="$("$work/sdkget" -address "$OUTRIG_ADDRESS" -shm "${OUTRIG_SHM_SOCKET:-}" -calls "$calls" \
    -warmup "$warmup" -threads "$threads")"
  rows+="$(sed "s/^| /| $r | /" <<<"$out")"$'\n'
done
# Rows by transport, callers and SDK, then round.
table="| round | SDK | transport | callers | calls | p50 µs | p90 µs | p99 µs | p99.9 µs | ops/s |
|---:|---|---|---:|---:|---:|---:|---:|---:|---:|
$(sort -t'|' -k4,4 -k5,5n -k3,3 -k2,2n <<<"${rows%$'\n'}")"
echo "$table"
section="## Java SDK: GetState through the sidecar, beside the Go SDK

What is measured (issue 7 §5): GetState of a 100-byte value on a \`state.in-memory\` store, from
Java (\`examples/java\`, \`GetStateBench\`) and, as the baseline, from Go (\`bench/sdkget\`, its
twin) against the same sidecar in the same run, over gRPC on the Unix socket (\`grpc-uds\`: the
SDKs' default, unary calls on \`Multiplex\` streams; \`grpc-uds-unary\`: one gRPC call per call)
and over shared memory. Per SDK, transport and round: $warmup warm-up calls, $calls timed calls by one caller,
$warmup warm-up calls, $calls timed calls by $threads callers (each call timed on its own;
nearest-rank percentiles; ops/s = calls / wall time). Java and Go alternate, $rounds round(s).

- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr); $(java -version 2>&1 | head -1); $(go version | cut -d' ' -f3)
- Sidecar: \`outrig sidecar\` built from $(cd "$repo" && git describe --always --dirty), on examples/resources; the sidecar, the JVM and the Go program share the same cores
- Load average (1/5/15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)
- Command: \`CALLS=$calls WARMUP=$warmup THREADS=$threads ROUNDS=$rounds examples/java/bench.sh\`

$table"
if [[ -n "$doc" ]]; then
  python3 - "$doc" "$section" <<'PY'
import sys
path, section = sys.argv[1], sys.argv[2]
start, end = "<!-- java-bench:start -->", "<!-- java-bench:end -->"
text = open(path).read()
block = start + "\n" + section + "\n" + end
if start in text:
    text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
  echo "wrote the Java SDK section of $doc"
fi
