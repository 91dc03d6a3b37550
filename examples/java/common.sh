# Shared by run.sh and bench.sh: builds the SDK, this example and the sidecar, and starts a
# sidecar on examples/resources unless OUTRIG_ADDRESS already names a running one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/outrig-java-example.XXXXXX")"
sidecar_pid=""
cleanup() {
  if [[ -n "$sidecar_pid" ]]; then kill "$sidecar_pid" 2>/dev/null || true; wait "$sidecar_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

build_all() {
  echo "building the Java SDK (sdk-java, installed into ~/.m2) and the example"
  (cd "$repo/sdk-java" && mvn -q -B install -Dmaven.test.skip=true)
  (cd "$here" && mvn -q -B compile)
  classpath="$here/target/classes:$(cat "$here/target/classpath.txt")"
}

start_sidecar() {
  if [[ -n "${OUTRIG_ADDRESS:-}" ]]; then
    echo "using the sidecar at $OUTRIG_ADDRESS"
    return
  fi
  echo "building and starting a sidecar (app id ${OUTRIG_APP_ID}) on examples/resources"
  (cd "$repo" && go build -o "$work/outrig" ./cmd/outrig)
  local admin=$(( 20000 + RANDOM % 20000 ))
  "$work/outrig" sidecar --app-id "$OUTRIG_APP_ID" --resources "$repo/examples/resources" \
    --listen "unix://$work/outrig.sock" --admin-listen "127.0.0.1:$admin" \
    --state-file "$work/config.json" --log-level warn > "$work/sidecar.log" 2>&1 &
  sidecar_pid=$!
  for _ in $(seq 1 300); do
    if curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then
      export OUTRIG_ADDRESS="unix://$work/outrig.sock"
      export OUTRIG_SHM_SOCKET="$work/outrig.sock.shm"
      return
    fi
    kill -0 "$sidecar_pid" 2>/dev/null || { cat "$work/sidecar.log"; exit 1; }
    sleep 0.1
  done
  echo "sidecar not ready in 30s"; cat "$work/sidecar.log"; exit 1
}
