#!/usr/bin/env bash
# Builds the sidecar and the Go example app from this repository, then runs the Java SDK's
# unit tests (surefire) and integration tests against those real binaries (failsafe).
# Called by `make test`; needs go, a JDK 17+ and mvn. Maven caches in ~/.m2.
#
#   sdk-java/run-tests.sh            # everything
#   sdk-java/run-tests.sh -Dit.test=SidecarIT   # extra Maven arguments are passed on
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
for tool in go mvn java; do
  command -v "$tool" >/dev/null || { echo "run-tests.sh: $tool not found" >&2; exit 1; }
done
bin="$(mktemp -d "${TMPDIR:-/tmp}/outrig-java-bin.XXXXXX")"
trap 'rm -rf "$bin"' EXIT
echo "sdk-java: building outrig and examples/apps/orders into $bin"
(cd "$repo" && go build -o "$bin/outrig" ./cmd/outrig && go build -o "$bin/orders" ./examples/apps/orders)
echo "sdk-java: mvn verify (unit + integration tests)"
cd "$here"
rm -rf target/surefire-reports target/failsafe-reports # the totals below count this run only
mvn -q -B verify -Doutrig.bin="$bin/outrig" -Doutrig.orders="$bin/orders" "$@"
# Surefire/failsafe print only failures in quiet mode: print the totals.
python3 - "$here/target" <<'PY' || true
import sys, glob, xml.etree.ElementTree as ET
t = f = e = s = 0
for p in glob.glob(sys.argv[1] + "/surefire-reports/TEST-*.xml") + glob.glob(sys.argv[1] + "/failsafe-reports/TEST-*.xml"):
    r = ET.parse(p).getroot()
    t += int(r.get("tests", 0)); f += int(r.get("failures", 0)); e += int(r.get("errors", 0)); s += int(r.get("skipped", 0))
print(f"sdk-java: {t - f - e - s} passed, {f + e} failed, {s} skipped")
PY
