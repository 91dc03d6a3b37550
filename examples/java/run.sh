#!/usr/bin/env bash
# Runs the example Java application against a sidecar: builds the SDK, the example and the
# sidecar, starts the sidecar on examples/resources, runs HelloOutrig twice (gRPC, then
# shared memory), stops the sidecar.
#
#   examples/java/run.sh
#   OUTRIG_ADDRESS=unix:///tmp/outrig.sock OUTRIG_APP_ID=myapp examples/java/run.sh   # your sidecar
source "$(cd "$(dirname "$0")" && pwd)/common.sh"
export OUTRIG_APP_ID="${OUTRIG_APP_ID:-java-example}"
build_all
start_sidecar
echo "--- over gRPC"
java -cp "$classpath" dev.outrig.examples.HelloOutrig
if [[ -n "${OUTRIG_SHM_SOCKET:-}" ]]; then
  echo "--- over shared memory"
  OUTRIG_SHM="$OUTRIG_SHM_SOCKET" java -cp "$classpath" dev.outrig.examples.HelloOutrig
fi
